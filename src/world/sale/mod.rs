//! Limited-time sales: one actor per sale id (docs/world.md#limited-time-sales).

use crate::services::Services;

/// Registers the sale entity and the `buy_sale` RPC.
pub fn register(_services: &Services) {}

/// Stops every local sale actor after it wrote what it holds.
pub async fn stop_all(_services: &Services) {}
