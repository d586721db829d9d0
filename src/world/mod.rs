//! Server-wide state without Redis (docs/world.md): each of these is an entity like any other,
//! one owning actor per key, reached from every node through the router, with fenced writes.
//!
//! - [`boss`]: world events: a boss whose HP every player on every node attacks, rewards once
//!   per participant, HP updates pushed to subscribers, coalesced.
//! - [`sale`]: limited-time sales of scarce stock: never oversold, a limit per character.
//!
//! The cluster-wide rate limits are the third such thing; they sit in the gateway
//! ([`crate::gateway::rate_limit`]) because every RPC passes through them.

pub mod boss;
pub mod fanout;
pub mod sale;

use crate::services::Services;

/// Registers the world's entity kinds with the router and its RPCs with the gateway.
pub fn register(services: &Services) {
    boss::register(services);
    sale::register(services);
}

/// Asks every local world actor to write what it holds and stop (drain, shutdown).
pub async fn stop_all(services: &Services) {
    tokio::join!(boss::stop_all(services), sale::stop_all(services));
}
