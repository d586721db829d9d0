//! Leaderboards in a node: registering the actor kind (and its messages for forwarding), the
//! warm-up at start and after each view change, stopping at shutdown, and [`send`], the one
//! way handlers reach a board.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::Handler;

use super::actor::{Counters, Leaderboard, LeaderboardDeps};
use super::game_boards;
use super::messages::{
    AroundOwner, DeleteRecord, Forget, GetInfo, Join, LeaderboardError, List, Passivate, Warm,
    Write,
};
use crate::node::Services;
use crate::persistence::leaderboards;
use crate::persistence::Db;
use crate::request::Failure;
use crate::routing::placement::Owner;
use crate::routing::{Entity, Remote, Router};
use crate::shutdown::Shutdown;

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
        max_in_flight: MAX_IN_FLIGHT,
        counters: Arc::new(Counters::new(&services.db)),
    }
}

/// Registers the Leaderboard kind with the router (and its messages, so other nodes can reach
/// the boards owned here), then in the background, without holding up the node: creates the
/// game's own boards if missing and warms every board this node owns (its actor is activated
/// and loads its current bucket; a board answers once it is warm), and again after every view
/// change for the boards that moved here.
pub fn register(services: &Services) {
    let deps = deps(services);
    let r = &services.router;
    r.register::<Leaderboard>(move |id| Leaderboard::new(id, deps.clone()));
    r.register_remote::<Leaderboard, Write>();
    r.register_remote::<Leaderboard, DeleteRecord>();
    r.register_remote::<Leaderboard, Join>();
    r.register_remote::<Leaderboard, List>();
    r.register_remote::<Leaderboard, AroundOwner>();
    r.register_remote::<Leaderboard, GetInfo>();
    r.register_remote::<Leaderboard, Warm>();
    r.register_remote::<Leaderboard, Forget>();
    let (db, router, shutdown) = (
        services.db.clone(),
        services.router.clone(),
        services.shutdown.clone(),
    );
    actix_rt::spawn(async move {
        tokio::select! {
            _ = shutdown.wait() => {}
            _ = warm_forever(db, router, shutdown.clone()) => {}
        }
    });
}

async fn warm_forever(db: Db, router: Arc<Router>, shutdown: Shutdown) {
    let mut views = router.view_changes();
    warm_all(&db, &router).await;
    while views.changed().await.is_ok() {
        // Let the view settle (handoffs stop the old owners' actors) before loading.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if shutdown.is_triggered() {
            return;
        }
        warm_all(&db, &router).await;
    }
}

/// Creates the game boards and warms every board this node owns; retries while the database
/// is unreachable.
pub async fn warm_all(db: &Db, router: &Router) {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let boards = loop {
        let ensured = game_boards::ensure(db).await;
        match (ensured, leaderboards::list_boards(db).await) {
            (Ok(()), Ok(rows)) => break rows,
            (e1, e2) => {
                tracing::warn!(ensure = ?e1.err(), list = ?e2.err(), "leaderboard warm-up: database not ready, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    let mine: Vec<String> = boards
        .into_iter()
        .map(|b| b.id)
        .filter(|id| router.owner::<Leaderboard>(id) == Owner::Local)
        .filter(|id| router.local::<Leaderboard>(id).is_none())
        .collect();
    if mine.is_empty() {
        return;
    }
    let count = mine.len();
    let warmed =
        futures_util::future::join_all(mine.into_iter().map(|id| send(router, id, Warm, false)))
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

/// Sends `msg` to board `id` wherever its owner is (this node or another, over the peer
/// link). An actor that stopped under the message (fenced, deleted, moving) is asked once more
/// when `retry` (reads: a fresh activation answers); writes are not repeated: their callers
/// are told to try again.
pub async fn send<M, T>(
    router: &Router,
    id: String,
    msg: M,
    retry: bool,
) -> Result<T, LeaderboardError>
where
    M: Remote<Result = Result<T, LeaderboardError>> + Clone,
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    Leaderboard: Handler<M>,
    <Leaderboard as actix::Actor>::Context: ToEnvelope<Leaderboard, M>,
{
    let attempts = if retry { 2 } else { 1 };
    let mut last = Failure::not_run("not sent");
    for _ in 0..attempts {
        match router.ask::<Leaderboard, M>(id.clone(), msg.clone()).await {
            Ok(answer) => return answer,
            Err(e @ Failure::NotRun(_)) => last = e,
            Err(e) => {
                last = e;
                break;
            }
        }
    }
    tracing::debug!(board = %id, kind = Leaderboard::KIND, error = %last, "leaderboard unreachable");
    Err(LeaderboardError::Unavailable)
}
