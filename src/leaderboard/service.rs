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
    AroundOwner, BoardInfo, DeleteRecord, Forget, GetInfo, Join, LeaderboardError, List, PartRead,
    ReadPart, RecordList, Warm, Write,
};
use super::parts;
use super::reads::{self, Plan};
use super::replication::replica::BoardReplica;
use super::replication::sync::Served;
use super::replication::wire::CHANNEL;
use super::replication::{net, LeaderboardSync, SyncSettings};
use super::unix_now;
use crate::persistence::leaderboards;
use crate::persistence::Db;
use crate::request::Failure;
use crate::routing::placement::Owner;
use crate::routing::{Entity, Remote, Router};
use crate::services::Services;
use crate::shutdown::Shutdown;

/// Batches of one board in the database at once, unless `leaderboard_max_in_flight` says.
pub const MAX_IN_FLIGHT: usize = crate::config::MAX_IN_FLIGHT_DEFAULT;

/// The actor's dependencies from the node's services and config.
pub fn deps(services: &Services) -> LeaderboardDeps {
    let c = &services.config;
    LeaderboardDeps {
        db: services.db.clone(),
        node_id: c.node_id.clone(),
        blacklist: Arc::new(c.rank_cache_blacklist.clone()),
        batch_window: c.leaderboard_batch_window,
        batch_size: c.leaderboard_batch_size.max(1),
        max_in_flight: c.leaderboard_max_in_flight.max(1),
        write_queue_limit: c.leaderboard_write_queue_limit.max(1),
        counters: Arc::new(Counters::new(&services.db)),
        sync: sync_of(&services.router),
    }
}

/// Registers the Leaderboard kind with the router (and its messages, so other nodes can reach
/// the boards owned here), then in the background, without holding up the node: creates the
/// game's own boards if missing and warms every board this node owns (its actor is activated
/// and loads its current bucket; a board answers once it is warm), and again after every view
/// change for the boards that moved here.
pub fn register(services: &Services) {
    if let Some(settings) = SyncSettings::from_config(&services.config) {
        let sync = Arc::new(LeaderboardSync::new(
            settings,
            services.peers.clone(),
            Arc::downgrade(&services.router),
            &services.metrics,
        ));
        services.router.register_channel(CHANNEL, sync.clone());
        net::start(sync, services.router.clone(), services.shutdown.clone());
    }
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
    r.register_remote::<Leaderboard, ReadPart>();
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
    let router = &services.router;
    router
        .stop_local::<Leaderboard>(Duration::from_secs(20))
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

/// This node's replication, when it is on.
pub fn sync_of(router: &Router) -> Option<Arc<LeaderboardSync>> {
    router.channel::<LeaderboardSync>(CHANNEL)
}

/// Replication figures for `/admin/cluster` (`null` when replication is off).
pub fn sync_status(router: &Router) -> serde_json::Value {
    sync_of(router).map_or(serde_json::Value::Null, |s| s.status())
}

/// Waits until this node holds every replicated board (at most the configured ready timeout):
/// a starting node turns ready after it.
pub async fn wait_synced(router: &Router) -> bool {
    match sync_of(router) {
        Some(s) => s.wait_synced(s.settings.ready_timeout).await,
        None => true,
    }
}

/// A read a replica can answer exactly as the owner would.
pub trait ReplicaRead: Remote<Result = Result<Self::Answer, LeaderboardError>> + Clone {
    type Answer: serde::Serialize + serde::de::DeserializeOwned + Send + 'static;

    /// The answer from `replica`; `None` when only the owner can answer (a bucket it does not
    /// hold, which the owner reads from the database).
    fn answer(
        &self,
        replica: &BoardReplica,
        now: i64,
    ) -> Option<Result<Self::Answer, LeaderboardError>>;

    /// This read as parts ([`parts`]) when its answer can outgrow a peer frame.
    fn part(&self) -> Option<PartRead> {
        None
    }

    /// The answer assembled from parts.
    fn from_parts(_: RecordList) -> Option<Self::Answer> {
        None
    }
}

fn planned<T>(plan: Plan<T>) -> Option<Result<T, LeaderboardError>> {
    match plan {
        Plan::Done(answer) => Some(answer),
        Plan::Database { .. } => None,
    }
}

impl ReplicaRead for List {
    type Answer = RecordList;
    fn answer(&self, r: &BoardReplica, now: i64) -> Option<Result<RecordList, LeaderboardError>> {
        planned(reads::list(&r.board, r, self, now))
    }
    fn part(&self) -> Option<PartRead> {
        Some(PartRead::List(self.clone()))
    }
    fn from_parts(list: RecordList) -> Option<RecordList> {
        Some(list)
    }
}

impl ReplicaRead for AroundOwner {
    type Answer = RecordList;
    fn answer(&self, r: &BoardReplica, now: i64) -> Option<Result<RecordList, LeaderboardError>> {
        planned(reads::around(&r.board, r, self, now))
    }
    fn part(&self) -> Option<PartRead> {
        Some(PartRead::Around(self.clone()))
    }
    fn from_parts(list: RecordList) -> Option<RecordList> {
        Some(list)
    }
}

impl ReplicaRead for GetInfo {
    type Answer = BoardInfo;
    fn answer(&self, r: &BoardReplica, now: i64) -> Option<Result<BoardInfo, LeaderboardError>> {
        Some(Ok(reads::info(&r.board, r, now)))
    }
}

/// Answers a read from this node's replica when it can; otherwise from the owner (this node's
/// actor, or another node's over the peer link, in parts that each fit a peer frame). Counted
/// by where it was answered.
pub async fn read<M>(router: &Router, id: String, msg: M) -> Result<M::Answer, LeaderboardError>
where
    M: ReplicaRead,
    Leaderboard: Handler<M>,
    <Leaderboard as actix::Actor>::Context: ToEnvelope<Leaderboard, M>,
{
    let sync = sync_of(router);
    if let Some(s) = &sync {
        if let Some(answer) = s.read(&id, |r| msg.answer(r, unix_now())) {
            s.count_read(Served::Replica);
            return answer;
        }
    }
    let served = match router.owner::<Leaderboard>(&id) {
        Owner::Local => Served::Owner,
        _ => Served::Forwarded,
    };
    let answer = match (served, msg.part()) {
        (Served::Forwarded, Some(part)) => parts::fetch(router, &id, part)
            .await
            .and_then(|list| M::from_parts(list).ok_or(LeaderboardError::Unavailable)),
        _ => send(router, id, msg, true).await,
    };
    if let Some(s) = &sync {
        s.count_read(served);
    }
    answer
}

/// A leaderboard's top page (`List` with a limit and nothing else: no owners, cursor or
/// expiry), serialized by `serialize`. From this node's replica, the page is serialized once
/// per change of the replicas and served from the stored bytes until the next
/// ([`super::replication::pages`]); otherwise as [`read`] answers it.
pub async fn read_top<E>(
    router: &Router,
    id: String,
    msg: List,
    serialize: impl Fn(&RecordList) -> Result<actix_web::web::Bytes, E>,
) -> Result<Result<actix_web::web::Bytes, E>, LeaderboardError> {
    let plain = msg.owner_ids.is_empty() && msg.cursor.is_none() && msg.expiry.is_none();
    if let (Some(s), Some(limit), true) = (sync_of(router), msg.limit, plain) {
        let now = unix_now();
        let answer = s.read(&id, |r| {
            // Under the replicas' read lock: the version and the page agree.
            let version = s.pages.version();
            let bucket = reads::read_bucket(&r.board, None, now);
            // Only plain leaderboards: a tournament's page also depends on its windows.
            let key = (r.board.row.id.clone(), limit, bucket?);
            if r.board.is_tournament() || msg.api != super::messages::Api::Leaderboard {
                return None;
            }
            if let Some(bytes) = s.pages.get(&key, version) {
                return Some(Ok(Ok(bytes)));
            }
            Some(msg.answer(r, now)?.map(|list| {
                let bytes = serialize(&list);
                if let Ok(b) = &bytes {
                    s.pages.put(key, version, b.clone());
                }
                bytes
            }))
        });
        if let Some(answer) = answer {
            s.count_read(Served::Replica);
            return answer;
        }
    }
    let list = read(router, id, msg).await?;
    Ok(serialize(&list))
}

/// Sends a write to the board's owner. When the owner is another node, this node's replica
/// pulls the owner's log before the answer leaves, so a read here shows the write (or, when
/// the pull fails, reads of the board go to the owner until a pull succeeds).
pub async fn write<M, T>(router: &Router, id: String, msg: M) -> Result<T, LeaderboardError>
where
    M: Remote<Result = Result<T, LeaderboardError>> + Clone,
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    Leaderboard: Handler<M>,
    <Leaderboard as actix::Actor>::Context: ToEnvelope<Leaderboard, M>,
{
    let owner = router.owner::<Leaderboard>(&id);
    let answer = send(router, id.clone(), msg, false).await?;
    if let (Some(s), Owner::Remote(node)) = (sync_of(router), owner) {
        if s.replicated(&id) {
            net::read_your_write(&s, &id, &node).await;
        }
    }
    Ok(answer)
}
