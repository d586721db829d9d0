//! Leaderboards in a node: registering the actor kind, the warm-up at start, stopping at
//! shutdown, and [`send`], the one way handlers reach a board.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::{Handler, Message};

use super::actor::{Counters, Leaderboard, LeaderboardDeps};
use super::game_boards;
use super::messages::{LeaderboardError, Passivate, Warm};
use crate::node::Services;
use crate::persistence::leaderboards;
use crate::persistence::Db;
use crate::routing::{RouteError, Router};

/// Batches of one board in the database at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// The actor's dependencies from the node's services and config.
pub fn deps(services: &Services) -> LeaderboardDeps {
    let c = &services.config;
    LeaderboardDeps {
        db: services.db.clone(),
        node_id: c.node_id.clone(),
        blacklist: Arc::new(c.rank_cache_blacklist.clone()),
        batch_window: c.leaderboard_batch_window,
        batch_size: c.leaderboard_batch_size.max(1),
        max_in_flight: std::env::var("SERAI_LB_IN_FLIGHT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MAX_IN_FLIGHT),
        counters: Arc::new(Counters::new(&services.db)),
    }
}

/// Registers the Leaderboard kind with the router, then (in the background, without holding
/// up the node) creates the game's own boards if missing and warms every board: each board's
/// actor is activated and loads its current bucket. A board answers once it is warm.
pub fn register(services: &Services) {
    let deps = deps(services);
    services
        .router
        .register::<Leaderboard>(move |id| Leaderboard::new(id, deps.clone()));
    let (db, router, shutdown) = (
        services.db.clone(),
        services.router.clone(),
        services.shutdown.clone(),
    );
    actix_rt::spawn(async move {
        tokio::select! {
            _ = shutdown.wait() => {}
            _ = warm_all(db, router) => {}
        }
    });
}

/// Creates the game boards and warms every board; retries while the database is unreachable.
pub async fn warm_all(db: Db, router: Arc<Router>) {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let boards = loop {
        let ensured = game_boards::ensure(&db).await;
        match (ensured, leaderboards::list_boards(&db).await) {
            (Ok(()), Ok(rows)) => break rows,
            (e1, e2) => {
                tracing::warn!(ensure = ?e1.err(), list = ?e2.err(), "leaderboard warm-up: database not ready, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    let count = boards.len();
    let warmed = futures_util::future::join_all(
        boards.into_iter().map(|b| send(&router, b.id, Warm, false)),
    )
    .await;
    let failed = warmed.iter().filter(|r| r.is_err()).count();
    tracing::info!(
        boards = count,
        failed,
        ms = started.elapsed().as_millis() as u64,
        "leaderboards warmed"
    );
}

/// Asks every local board to commit what it has queued, release its claim and stop; returns
/// once they have (or after 20 s).
pub async fn stop_all(services: &Services) {
    let boards = services.router.all_local::<Leaderboard>();
    let asks = boards.iter().map(|a| a.send(Passivate));
    let _ = tokio::time::timeout(
        Duration::from_secs(20),
        futures_util::future::join_all(asks),
    )
    .await;
}

/// Sends `msg` to board `id` through the router. An actor that stopped under the message
/// (fenced, deleted) is asked once more when `retry` (reads: a fresh activation answers);
/// writes are not repeated, their callers are told to try again.
pub async fn send<M, T>(
    router: &Router,
    id: String,
    msg: M,
    retry: bool,
) -> Result<T, LeaderboardError>
where
    M: Message<Result = Result<T, LeaderboardError>> + Clone + Send + 'static,
    T: Send + 'static,
    Leaderboard: Handler<M>,
    <Leaderboard as actix::Actor>::Context: ToEnvelope<Leaderboard, M>,
{
    let attempts = if retry { 2 } else { 1 };
    for attempt in 1..=attempts {
        match router.send::<Leaderboard, M>(id.clone(), msg.clone()).await {
            Ok(answer) => return answer,
            Err(RouteError::Unavailable) if attempt < attempts => continue,
            Err(e) => {
                tracing::debug!(board = %id, error = %e, "leaderboard unreachable");
                return Err(LeaderboardError::Unavailable);
            }
        }
    }
    Err(LeaderboardError::Unavailable)
}
