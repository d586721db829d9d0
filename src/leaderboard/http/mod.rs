//! The client API of leaderboards and tournaments, in Nakama's shapes (grpc-gateway JSON:
//! snake_case, int64 as strings, zero values left out, Nakama's error codes and messages).
//!
//! - `POST /v2/leaderboard/{id}` write, `GET` list (`owner_ids`, `limit` 1–1000, `cursor`,
//!   `expiry`), `DELETE` own record; `GET /v2/leaderboard/{id}/owner/{owner_id}` around owner
//!   (`limit` 1–100).
//! - `GET /v2/tournament` list tournaments; `POST /v2/tournament/{id}/join`; `POST`/`PUT
//!   /v2/tournament/{id}` write, `GET` list records, `DELETE` own record;
//!   `GET /v2/tournament/{id}/owner/{owner_id}`.
//!
//! Every request needs a session (`Authorization: Bearer`). Writes go to the board's
//! [`Leaderboard`](super::actor::Leaderboard) actor on its owner node, through the router;
//! reads are answered by this node's replica when it holds the board (`replication`), else by
//! the owner.
//!
//! Files: this one mounts the routes; `params` reads a request (session, query, path),
//! `writes` and `reads` are the handlers of records, `tournaments` lists tournaments,
//! `answers` fills the wire shapes of [`crate::protocol::leaderboard`], `errors` words a
//! [`super::messages::LeaderboardError`] as Nakama does. Bodies, JSON answers and the
//! "method not allowed" answer are the gateway's ([`crate::gateway::http`]).

mod answers;
mod errors;
mod params;
mod reads;
mod tournaments;
mod writes;

use std::sync::Arc;

use actix_web::web;

use crate::gateway::http::method_not_allowed;
use crate::persistence::Db;
use crate::routing::Router;
use crate::services::Services;
use reads::{around_leaderboard, around_tournament, list_leaderboard, list_tournament};
use tournaments::list_tournaments;
use writes::{
    delete_leaderboard, delete_tournament, join_tournament, write_leaderboard, write_tournament,
};

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub router: Arc<Router>,
    pub db: Db,
}

/// Mounts the leaderboard and tournament routes. The gateway's routes (and its
/// [`crate::gateway::GatewayState`], which verifies session tokens) must be mounted on the
/// same app.
pub fn configure(services: &Services) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let state = web::Data::new(HttpState {
        router: services.router.clone(),
        db: services.db.clone(),
    });
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone())
            .service(
                web::resource("/v2/leaderboard/{id}")
                    .route(web::get().to(list_leaderboard))
                    .route(web::post().to(write_leaderboard))
                    .route(web::delete().to(delete_leaderboard))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/v2/leaderboard/{id}/owner/{owner_id}")
                    .route(web::get().to(around_leaderboard))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/v2/tournament")
                    .route(web::get().to(list_tournaments))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/v2/tournament/{id}")
                    .route(web::get().to(list_tournament))
                    .route(web::post().to(write_tournament))
                    .route(web::put().to(write_tournament))
                    .route(web::delete().to(delete_tournament))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/v2/tournament/{id}/join")
                    .route(web::post().to(join_tournament))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/v2/tournament/{id}/owner/{owner_id}")
                    .route(web::get().to(around_tournament))
                    .default_service(web::to(method_not_allowed)),
            );
    }
}
