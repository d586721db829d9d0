//! `get_world_event` and `attack_world_boss` (docs/world.md#world-bosses).
//!
//! An attack goes: the character's session (wherever it lives) checks the caller owns the
//! character and computes its damage ([`WorldAttackPower`]); then the boss's owner applies it
//! ([`Attack`]). Each leg is asked again while it answers *not run* (moving, loading, the owner
//! unreachable), within the request's deadline; nothing that may have run is sent again — the
//! client repeats it with its `request_id`, which the boss answers from memory.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::actor::WorldBoss;
use super::messages::{Attack, BossError, GetEvent};
use crate::character::messages::SessionError;
use crate::character::world_attack::WorldAttackPower;
use crate::character::CharacterSession;
use crate::gateway::rpc::{RpcContext, RpcError};
use crate::protocol::world::boss::{AttackRequest, GetWorldEventRequest};
use crate::request::{request_key, Call, Caller, Deadline, Failure};
use crate::routing::{Entity, Remote, Router};
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
    rpc.register_fn("attack_world_boss", move |ctx, payload| {
        let router = router.clone();
        async move { attack_world_boss(router, ctx, payload).await }
    });
}

fn parse(payload: &str) -> Result<serde_json::Value, RpcError> {
    if payload.trim().is_empty() {
        return Err(RpcError::invalid_argument("a JSON payload is required"));
    }
    serde_json::from_str(payload)
        .map_err(|e| RpcError::invalid_argument(format!("invalid payload: {e}")))
}

fn typed<T: DeserializeOwned>(mut value: serde_json::Value) -> Result<T, RpcError> {
    if let Some(map) = value.as_object_mut() {
        map.remove("request_id");
    }
    serde_json::from_value(value)
        .map_err(|e| RpcError::invalid_argument(format!("invalid payload: {e}")))
}

fn check_id(id: &str) -> Result<(), RpcError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(RpcError::invalid_argument(format!(
            "event_id must be 1 to {MAX_ID_LEN} characters"
        )));
    }
    Ok(())
}

fn user(ctx: &RpcContext) -> Result<uuid::Uuid, RpcError> {
    if ctx.http_key {
        return Err(RpcError::invalid_argument(
            "this RPC needs a user session, not the http key",
        ));
    }
    Ok(ctx.user_id)
}

fn boss_error(e: BossError) -> RpcError {
    match e {
        BossError::NotFound => RpcError::not_found("world event not found"),
        BossError::Refused(m) => RpcError::failed_precondition(m),
        BossError::Conflict => RpcError::already_exists(e.to_string()),
        BossError::Failed(f) => f.into(),
    }
}

fn session_error(e: SessionError) -> RpcError {
    match e {
        SessionError::NotFound => RpcError::not_found("character not found"),
        SessionError::NotYours => {
            RpcError::permission_denied("this character belongs to another account")
        }
        SessionError::Invalid(m) => RpcError::invalid_argument(m),
        SessionError::Refused(m) => RpcError::failed_precondition(m),
        SessionError::Conflict => RpcError::already_exists(e.to_string()),
        SessionError::Failed(f) => f.into(),
    }
}

/// Whether an answer is a *not run* failure, worth asking again.
fn not_run<T, E>(r: &Result<T, E>, failed: impl Fn(&E) -> Option<&Failure>) -> bool {
    matches!(r, Err(e) if matches!(failed(e), Some(Failure::NotRun(_))))
}

/// Asks the owner of `key`, again while the answer is *not run*, with backoff, until the
/// deadline (a few attempts, each only if it can finish before it).
async fn ask<A, M, T, E>(
    router: &Router,
    key: A::Key,
    m: M,
    deadline: Deadline,
    failed: impl Fn(&E) -> Option<&Failure>,
) -> Result<Result<T, E>, Failure>
where
    A: Entity + actix::Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: Remote<Result = Result<T, E>> + Clone,
    T: Serialize + DeserializeOwned + Send,
    E: Serialize + DeserializeOwned + Send,
{
    let mut pause = Duration::from_millis(20);
    loop {
        let answer = router
            .ask_until::<A, M>(key.clone(), m.clone(), deadline)
            .await;
        let again = match &answer {
            Ok(r) => not_run(r, &failed),
            Err(f) => matches!(f, Failure::NotRun(_)),
        };
        let room = deadline.remaining().is_some_and(|left| left > pause * 3);
        if !again || !room {
            return answer;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(400));
    }
}

fn boss_failure(e: &BossError) -> Option<&Failure> {
    match e {
        BossError::Failed(f) => Some(f),
        _ => None,
    }
}

fn session_failure(e: &SessionError) -> Option<&Failure> {
    match e {
        SessionError::Failed(f) => Some(f),
        _ => None,
    }
}

async fn get_world_event(
    router: Arc<Router>,
    ctx: RpcContext,
    payload: String,
) -> Result<String, RpcError> {
    let req: GetWorldEventRequest = typed(parse(&payload)?)?;
    check_id(&req.event_id)?;
    let deadline = router.deadline();
    let user_id = (!ctx.http_key).then_some(ctx.user_id);
    let m = GetEvent { user_id, deadline };
    let view = ask::<WorldBoss, _, _, _>(&router, req.event_id, m, deadline, boss_failure)
        .await?
        .map_err(boss_error)?;
    serde_json::to_string(&view).map_err(|e| RpcError::internal(e.to_string()))
}

async fn attack_world_boss(
    router: Arc<Router>,
    ctx: RpcContext,
    payload: String,
) -> Result<String, RpcError> {
    let user_id = user(&ctx)?;
    let value = parse(&payload)?;
    let key =
        request_key(user_id, "attack_world_boss", &value).map_err(RpcError::invalid_argument)?;
    let req: AttackRequest = typed(value)?;
    check_id(&req.event_id)?;
    let deadline = router.deadline();
    let call = Call {
        caller: Caller::User(user_id),
        deadline,
        key: None,
        ticket: Default::default(),
    };
    let power = ask::<CharacterSession, _, _, _>(
        &router,
        req.character_id,
        WorldAttackPower { call },
        deadline,
        session_failure,
    )
    .await?
    .map_err(session_error)?;
    let m = Attack {
        character_id: req.character_id,
        user_id: power.user_id,
        damage: power.damage,
        request: key.map(|k| (k.request_id, k.fingerprint)),
        deadline,
    };
    let reply = ask::<WorldBoss, _, _, _>(&router, req.event_id, m, deadline, boss_failure)
        .await?
        .map_err(boss_error)?;
    serde_json::to_string(&reply).map_err(|e| RpcError::internal(e.to_string()))
}
