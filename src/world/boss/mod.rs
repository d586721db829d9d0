//! World events: one boss per event id (docs/world.md#world-bosses).
//!
//! - [`actor`]: the [`WorldBoss`] actor: HP in memory, progress written at least every
//!   [`actor::WRITE_EVERY`], the kill written before it is answered, the end at `ends_at`.
//! - [`messages`]: [`Attack`], [`GetEvent`], [`Wake`] (remote: any node reaches the owner).
//! - [`rewards`]: each participant paid once through its session, retried with backoff.
//! - [`sweeper`]: wakes events nobody touches so they expire and pay.
//! - [`rpcs`]: `get_world_event`, `attack_world_boss`; [`power_cache`]: a character's attack
//!   power kept for a moment on the node its player calls.

pub mod actor;
pub mod messages;
mod power_cache;
mod rewards;
mod rpcs;
mod sweeper;

use std::sync::Arc;
use std::time::Duration;

pub use actor::{BossDeps, WorldBoss};
pub use messages::{Attack, BossError, GetEvent, Wake};

use crate::character::world_attack::WorldAttackPower;
use crate::character::world_reward::GrantWorldReward;
use crate::character::CharacterSession;
use crate::services::Services;
use crate::world::fanout::WorldFanout;

/// Registers the boss entity and the `get_world_event` / `attack_world_boss` RPCs.
pub fn register(services: &Services) {
    let deps = BossDeps {
        db: services.db.clone(),
        node_id: services.config.node_id.clone(),
        idle: services.config.idle_timeout,
        router: Arc::downgrade(&services.router),
        fanout: WorldFanout::new(services),
    };
    let r = &services.router;
    r.register::<WorldBoss>(move |id| WorldBoss::new(id, deps.clone()));
    r.register_remote::<WorldBoss, Attack>();
    r.register_remote::<WorldBoss, GetEvent>();
    r.register_remote::<WorldBoss, Wake>();
    r.register_remote::<CharacterSession, WorldAttackPower>();
    r.register_remote::<CharacterSession, GrantWorldReward>();
    rpcs::register(services);
    sweeper::start(
        services.db.clone(),
        services.router.clone(),
        services.shutdown.clone(),
    );
}

/// Stops every local boss actor after it wrote its progress.
pub async fn stop_all(services: &Services) {
    services
        .router
        .stop_local::<WorldBoss>(Duration::from_secs(20))
        .await;
}
