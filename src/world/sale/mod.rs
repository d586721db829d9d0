//! Limited-time sales: one actor per sale id (docs/world.md#limited-time-sales).
//!
//! - [`actor`]: the [`Sale`] actor: claims its `world_sale` row, holds the book
//!   (`domain::world::sale`) with the open reservations.
//! - [`messages`]: [`messages::Reserve`] then [`messages::Settle`].
//! - [`rpc`]: `buy_sale`: reserve at the sale, write the purchase in the buyer's session
//!   (`character::sale_purchase`), settle the reservation with what happened.

pub mod actor;
pub mod messages;
mod rpc;

use std::time::Duration;

pub use actor::{Sale, SaleDeps};

use crate::character::sale_purchase::BuySale;
use crate::character::CharacterSession;
use crate::services::Services;

/// Registers the sale entity and the `buy_sale` RPC.
pub fn register(services: &Services) {
    let deps = SaleDeps {
        db: services.db.clone(),
        node_id: services.config.node_id.clone(),
        idle: services.config.idle_timeout,
        // A purchase settles within its deadline; past that and a margin its caller is gone.
        reservation_ttl: services.config.request_timeout + Duration::from_secs(5),
    };
    let router = &services.router;
    router.register::<Sale>(move |id| Sale::new(id, deps.clone()));
    router.register_remote::<Sale, messages::Reserve>();
    router.register_remote::<Sale, messages::Settle>();
    router.register_remote::<CharacterSession, BuySale>();
    rpc::register(services);
}

/// Stops every local sale actor after it released its claim.
pub async fn stop_all(services: &Services) {
    services
        .router
        .stop_local::<Sale>(Duration::from_secs(20))
        .await;
}
