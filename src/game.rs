//! Wires the game into a node: which entity kinds the router activates, which routes the
//! client listener serves, and how entity actors are stopped at shutdown.

use actix_web::web;

use crate::node::Services;

/// Registers every entity kind with the router.
pub fn register(_services: &Services) {}

/// The client listener's routes.
pub fn client_routes(
    _services: &Services,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    |_cfg: &mut web::ServiceConfig| {}
}

/// Asks every local entity actor to flush and stop; returns once they have.
pub async fn stop_all(_services: &Services) {}
