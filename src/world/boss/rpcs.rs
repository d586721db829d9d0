//! `get_world_event` and `attack_world_boss` (docs/world.md#world-bosses).
//!
//! An attack goes: the character's session (wherever it lives) checks the caller owns the
//! character and computes its damage ([`WorldAttackPower`], kept for a moment by
//! [`PowerCache`]); then the boss's owner applies it
//! ([`Attack`]). Each leg is asked again while it answers *not run* (moving, loading, the owner
//! unreachable), within the request's deadline; nothing that may have run is sent again — the
//! client repeats it with its `request_id`, which the boss answers from memory.

use std::sync::Arc;
use std::time::Instant;

use super::actor::WorldBoss;
use super::messages::{Attack, GetEvent};
use super::power_cache::{PowerCache, POWER_CAPACITY, POWER_TTL};
use crate::character::world_attack::WorldAttackPower;
use crate::character::CharacterSession;
use crate::gateway::rpc::{RpcContext, RpcError};
use crate::gateway::rpc_payload::{self, encode, Decoded};
use crate::protocol::world::boss::{AttackRequest, GetWorldEventRequest};
use crate::routing::Router;
use crate::services::Services;

/// The longest event id accepted.
pub const MAX_ID_LEN: usize = 128;

pub fn register(services: &Services) {
    let rpc = &services.rpc;
    let router = services.router.clone();
    rpc.register_fn("get_world_event", move |ctx, payload| {
        let router = router.clone();
        async move { get_world_event(router, ctx, payload).await }
    });
    let router = services.router.clone();
    let powers = Arc::new(PowerCache::new(POWER_TTL, POWER_CAPACITY));
    rpc.register_fn("attack_world_boss", move |ctx, payload| {
        let (router, powers) = (router.clone(), powers.clone());
        async move { attack_world_boss(router, powers, ctx, payload).await }
    });
}

fn check_id(id: &str) -> Result<(), RpcError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(RpcError::invalid_argument(format!(
            "event_id must be 1 to {MAX_ID_LEN} characters"
        )));
    }
    Ok(())
}

async fn get_world_event(
    router: Arc<Router>,
    ctx: RpcContext,
    payload: String,
) -> Result<String, RpcError> {
    let Decoded { req, call } = rpc_payload::decode::<GetWorldEventRequest>(
        &ctx,
        "get_world_event",
        &payload,
        router.deadline(),
    )?;
    check_id(&req.event_id)?;
    let user_id = (!ctx.http_key).then_some(ctx.user_id);
    let m = GetEvent {
        user_id,
        deadline: call.deadline,
    };
    let view = router
        .ask_retrying::<WorldBoss, _>(req.event_id, m, call.deadline)
        .await??;
    encode(&view)
}

async fn attack_world_boss(
    router: Arc<Router>,
    powers: Arc<PowerCache>,
    ctx: RpcContext,
    payload: String,
) -> Result<String, RpcError> {
    let user_id = ctx.session_user()?;
    let Decoded { req, mut call } = rpc_payload::decode::<AttackRequest>(
        &ctx,
        "attack_world_boss",
        &payload,
        router.deadline(),
    )?;
    check_id(&req.event_id)?;
    // The boss remembers the request id (its answer is in memory there); the session's
    // leg only computes the damage, so it needs none.
    let key = call.key.take();
    let deadline = call.deadline;
    let power = match powers.get(req.character_id, user_id, Instant::now()) {
        Some(power) => power,
        None => {
            let asked = Instant::now();
            let power = router
                .ask_retrying::<CharacterSession, _>(
                    req.character_id,
                    WorldAttackPower { call },
                    deadline,
                )
                .await??;
            powers.put(req.character_id, power, asked);
            power
        }
    };
    let m = Attack {
        character_id: req.character_id,
        user_id: power.user_id,
        damage: power.damage,
        request: key.map(|k| (k.request_id, k.fingerprint)),
        deadline,
    };
    let reply = router
        .ask_retrying::<WorldBoss, _>(req.event_id, m, deadline)
        .await??;
    encode(&reply)
}
