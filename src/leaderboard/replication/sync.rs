//! The node's replication runtime: what the owner's actor calls when it loads, commits and
//! deletes a board, what reads call to answer from the local replica, the read-your-writes
//! pull, and the figures for metrics and `/admin/cluster`. The network side (sender, channel,
//! catch-up and snapshot tasks) is in `net.rs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{Counter, Histogram};
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use super::super::board::Board;
use super::super::rules::Record;
use super::log::OriginLog;
use super::replica::{BoardReplica, Rec};
use super::state::{LocalChange, Need, Replicas};
use super::wire::{BoardDef, Change, Generation, Instance};
use super::Blacklist;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::routing::peer::Peers;
use crate::routing::Router;

/// Recent lag samples kept for the admin view's percentiles.
const LAG_SAMPLES: usize = 4096;

/// How replication behaves (from the config).
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub node_id: String,
    /// A batch goes once this many entries wait …
    pub batch_size: usize,
    /// … or once the oldest has waited this long; an idle stream says where it is as often.
    pub batch_timeout: Duration,
    pub compression: bool,
    /// Entries kept for catch-up.
    pub buffer: usize,
    pub blacklist: Blacklist,
    /// Deadline of each request to a peer.
    pub request_timeout: Duration,
    /// A starting node turns ready after its first full sync, or after this at the latest.
    pub ready_timeout: Duration,
}

impl SyncSettings {
    /// `None` when replication is off.
    pub fn from_config(c: &Config) -> Option<SyncSettings> {
        if !c.leaderboard_sync_enabled {
            return None;
        }
        let patterns = c
            .leaderboard_sync_blacklist
            .iter()
            .chain(&c.rank_cache_blacklist)
            .cloned();
        Some(SyncSettings {
            node_id: c.node_id.clone(),
            batch_size: c.leaderboard_sync_batch_size.max(1),
            batch_timeout: c.leaderboard_sync_batch_timeout,
            compression: c.leaderboard_sync_compression,
            buffer: c.leaderboard_sync_buffer.max(1),
            blacklist: Blacklist::new(patterns),
            request_timeout: c.request_timeout.min(Duration::from_secs(5)),
            ready_timeout: c.leaderboard_sync_ready_timeout,
        })
    }
}

/// The replication figures of a node.
pub(crate) struct SyncMetrics {
    pub entries_sent: Counter,
    pub entries_received: Counter,
    pub batches_sent: Counter,
    pub batches_received: Counter,
    pub bytes_sent: Counter,
    pub bytes_received: Counter,
    pub gaps: Counter,
    pub resync_incremental: Counter,
    pub resync_full: Counter,
    pub snapshots: Counter,
    pub dropped: Counter,
    pub fail_send: Counter,
    pub fail_catch_up: Counter,
    pub fail_snapshot: Counter,
    pub fail_decode: Counter,
    pub lag: Histogram,
    pub reads_replica: Counter,
    pub reads_owner: Counter,
    pub reads_forwarded: Counter,
}

impl SyncMetrics {
    pub(crate) fn new(m: &Metrics) -> SyncMetrics {
        const E: &str = "serai_leaderboard_sync_entries_total";
        const B: &str = "serai_leaderboard_sync_batches_total";
        const BY: &str = "serai_leaderboard_sync_bytes_total";
        const R: &str = "serai_leaderboard_sync_resyncs_total";
        const F: &str = "serai_leaderboard_sync_failures_total";
        const READS: &str = "serai_leaderboard_reads_total";
        SyncMetrics {
            entries_sent: m.counter(E, "direction", "sent"),
            entries_received: m.counter(E, "direction", "received"),
            batches_sent: m.counter(B, "direction", "sent"),
            batches_received: m.counter(B, "direction", "received"),
            bytes_sent: m.counter(BY, "direction", "sent"),
            bytes_received: m.counter(BY, "direction", "received"),
            gaps: m.counter("serai_leaderboard_sync_gaps_total", "kind", "version"),
            resync_incremental: m.counter(R, "kind", "incremental"),
            resync_full: m.counter(R, "kind", "full"),
            snapshots: m.counter("serai_leaderboard_sync_snapshots_total", "outcome", "done"),
            dropped: m.counter(
                "serai_leaderboard_sync_dropped_total",
                "reason",
                "queue_full",
            ),
            fail_send: m.counter(F, "stage", "send"),
            fail_catch_up: m.counter(F, "stage", "catch_up"),
            fail_snapshot: m.counter(F, "stage", "snapshot"),
            fail_decode: m.counter(F, "stage", "decode"),
            lag: m.histogram("serai_leaderboard_sync_lag_seconds"),
            reads_replica: m.counter(READS, "served", "replica"),
            reads_owner: m.counter(READS, "served", "owner"),
            reads_forwarded: m.counter(READS, "served", "forwarded"),
        }
    }
}

/// Single flight of catch-ups from one origin: a pull that starts after a caller asked covers
/// that caller.
#[derive(Default)]
pub(crate) struct Pull {
    pub lock: tokio::sync::Mutex<()>,
    pub started: AtomicU64,
    pub done: AtomicU64,
}

/// A node's replication.
pub struct LeaderboardSync {
    pub(crate) settings: SyncSettings,
    /// Lock order: `replicas` before `log`.
    pub(crate) replicas: RwLock<Replicas>,
    pub(crate) log: Mutex<OriginLog>,
    /// Wakes the sender (a batch is full, or the first entry of one arrived).
    pub(crate) wake: Notify,
    pub(crate) peers: Peers,
    pub(crate) router: Weak<Router>,
    pub(crate) metrics: SyncMetrics,
    /// Catch-ups and snapshots under way (by "origin" / "board" key).
    pub(crate) inflight: Mutex<HashSet<String>>,
    pub(crate) pulls: Mutex<HashMap<String, Arc<Pull>>>,
    /// Boards whose reads go to the owner until a pull from this origin succeeds (a write
    /// acknowledged here could not be pulled in time).
    pub(crate) fences: Mutex<HashMap<String, String>>,
    pub(crate) lags: Mutex<VecDeque<i64>>,
    /// Serialized top pages, valid until the replicas change.
    pub(crate) pages: super::pages::PageCache,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl LeaderboardSync {
    /// Replication for a node (not started: see `net::start`).
    pub fn new(
        settings: SyncSettings,
        peers: Peers,
        router: Weak<Router>,
        metrics: &Metrics,
    ) -> LeaderboardSync {
        // A new life of this node's log: replicas see the change and start it over.
        let incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        let replay_limit = settings.buffer.max(10_000);
        LeaderboardSync {
            replicas: RwLock::new(Replicas::new(
                settings.node_id.clone(),
                settings.blacklist.clone(),
                replay_limit,
            )),
            log: Mutex::new(OriginLog::new(
                settings.node_id.clone(),
                incarnation,
                settings.buffer,
            )),
            settings,
            wake: Notify::new(),
            peers,
            router,
            metrics: SyncMetrics::new(metrics),
            inflight: Mutex::new(HashSet::new()),
            pulls: Mutex::new(HashMap::new()),
            fences: Mutex::new(HashMap::new()),
            lags: Mutex::new(VecDeque::new()),
            pages: Default::default(),
        }
    }

    pub(crate) fn read_replicas(&self) -> std::sync::RwLockReadGuard<'_, Replicas> {
        self.replicas.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Every change of a replica goes through here: the stored pages miss from now on.
    pub(crate) fn write_replicas(&self) -> std::sync::RwLockWriteGuard<'_, Replicas> {
        let guard = self.replicas.write().unwrap_or_else(|e| e.into_inner());
        self.pages.changed();
        guard
    }

    pub fn node_id(&self) -> &str {
        &self.settings.node_id
    }

    pub fn replicated(&self, board: &str) -> bool {
        self.settings.blacklist.replicated(board)
    }

    // -------------------------------------------------------------------------------------
    // The owner's actor
    // -------------------------------------------------------------------------------------

    /// Builds this node's replica of a board the actor loaded (off the actor's thread: a
    /// large board takes a while). `None` when the board is not replicated.
    pub fn prepare<'a>(
        &self,
        board: &Board,
        epoch: i64,
        records: impl IntoIterator<Item = (i64, Uuid, &'a Record, Option<&'a str>)>,
    ) -> Option<BoardReplica> {
        if !self.replicated(board.id()) {
            return None;
        }
        let instance = instance_of(board, epoch);
        let mut replica =
            BoardReplica::new(BoardDef::from(&board.row), self.node_id(), instance).ok()?;
        let generation = Generation { epoch, seq: 0 };
        for (expiry, owner, rec, username) in records {
            let data = super::replica::record_data(
                owner,
                &Rec {
                    rec: rec.clone(),
                    username: username.map(str::to_string),
                    generation,
                },
            );
            replica.upsert(expiry, &data);
        }
        Some(replica)
    }

    /// The actor loaded its board into `replica` (with `buckets` in memory): it becomes this
    /// node's copy, and the log says so.
    pub fn install(&self, replica: BoardReplica, buckets: &[i64]) {
        let mut replica = replica;
        for &expiry in buckets {
            let order = replica.board.order;
            replica
                .buckets
                .entry(expiry)
                .or_insert_with(|| super::replica::Bucket {
                    cache: super::super::rank_cache::RankCache::new(order),
                    records: HashMap::new(),
                });
        }
        let change = Change::BoardCreated {
            def: replica.def.clone(),
            instance: replica.instance,
            records: replica.len(),
        };
        let mut replicas = self.write_replicas();
        if replicas.install_local(replica) {
            self.append(vec![change]);
        }
    }

    /// The actor committed a batch: this node's replica shows it from now on, and the log
    /// carries it to the others. Called before the writers are answered.
    pub fn committed(&self, board: &Board, epoch: i64, changes: Vec<LocalChange>) {
        if changes.is_empty() || !self.replicated(board.id()) {
            return;
        }
        let instance = instance_of(board, epoch);
        let mut replicas = self.write_replicas();
        let changes = replicas.commit_local(board.id(), instance, changes);
        self.append(changes);
    }

    /// The board was deleted (its actor heard so): replicas drop it.
    pub fn deleted(&self, board: &str, instance: Option<Instance>) {
        // Not loaded here: every instance up to now is gone.
        let instance = instance.unwrap_or(Instance {
            create_time: i64::MAX,
            epoch: i64::MAX,
        });
        let mut replicas = self.write_replicas();
        if let Some(change) = replicas.delete_local(board, instance) {
            self.append(vec![change]);
        }
    }

    /// Appends to the log (the caller holds the replicas' write lock, so a snapshot page never
    /// sees a change without its version).
    fn append(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let now = now_ms();
        let mut log = lock(&self.log);
        let was_idle = log.unsent() == 0;
        for c in changes {
            log.append(c, now);
        }
        let full = log.unsent() >= self.settings.batch_size as u64;
        drop(log);
        if was_idle || full {
            self.wake.notify_one();
        }
    }

    // -------------------------------------------------------------------------------------
    // Reads
    // -------------------------------------------------------------------------------------

    /// Answers from the local replica of `board` when it holds a complete copy (and no
    /// acknowledged write is still on its way here): `f` may still decline (`None`).
    pub fn read<T>(&self, board: &str, f: impl FnOnce(&BoardReplica) -> Option<T>) -> Option<T> {
        if !lock(&self.fences).is_empty() && lock(&self.fences).contains_key(board) {
            return None;
        }
        let replicas = self.read_replicas();
        replicas.serving(board).and_then(f)
    }

    /// Counts a read by where it was answered.
    pub fn count_read(&self, served: Served) {
        match served {
            Served::Replica => self.metrics.reads_replica.increment(1),
            Served::Owner => self.metrics.reads_owner.increment(1),
            Served::Forwarded => self.metrics.reads_forwarded.increment(1),
        }
    }

    /// Whether reads of `board` may be answered here right now.
    pub fn serves(&self, board: &str) -> bool {
        self.read(board, |_| Some(())).is_some()
    }

    pub(crate) fn record_lags(&self, lags: &[i64]) {
        if lags.is_empty() {
            return;
        }
        for &ms in lags {
            self.metrics.lag.record(ms as f64 / 1000.0);
        }
        let mut samples = lock(&self.lags);
        for &ms in lags {
            if samples.len() >= LAG_SAMPLES {
                samples.pop_front();
            }
            samples.push_back(ms);
        }
    }

    /// (p50, p99) of the recent commit-to-apply lags in ms, and how many samples.
    pub fn lag_percentiles(&self) -> (i64, i64, usize) {
        let mut v: Vec<i64> = lock(&self.lags).iter().copied().collect();
        if v.is_empty() {
            return (0, 0, 0);
        }
        v.sort_unstable();
        let at = |p: usize| v[(v.len() * p / 100).min(v.len() - 1)];
        (at(50), at(99), v.len())
    }

    /// Forgets the lag samples (benchmarks measure one phase at a time).
    pub fn reset_lags(&self) {
        lock(&self.lags).clear();
    }

    /// Members of the current view (their node ids).
    pub(crate) fn members(&self) -> Vec<String> {
        match self.router.upgrade() {
            Some(r) => r.placement().members().map(|m| m.node_id.clone()).collect(),
            None => Vec::new(),
        }
    }

    /// Whether this node has heard every member's stream and no board waits for a snapshot.
    pub fn synced(&self) -> bool {
        let members = self.members();
        self.read_replicas().synced(&members)
    }

    /// Waits until [`LeaderboardSync::synced`], at most `limit`; returns whether it is.
    pub async fn wait_synced(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.synced() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last version applied from `origin` (and its incarnation).
    pub fn applied(&self, origin: &str) -> Option<(u64, u64)> {
        self.read_replicas()
            .origins
            .get(origin)
            .map(|c| (c.incarnation, c.applied))
    }

    /// This node's log head (its incarnation and last version).
    pub fn head(&self) -> (u64, u64) {
        let log = lock(&self.log);
        (log.incarnation(), log.head())
    }

    /// The figures `/admin/cluster` shows: per origin the version applied, how far behind the
    /// origin's head it is and the last lag; this node's own log.
    pub fn status(&self) -> serde_json::Value {
        let (p50, p99, samples) = self.lag_percentiles();
        let replicas = self.read_replicas();
        let mut origins: Vec<serde_json::Value> = replicas
            .origins
            .iter()
            .map(|(node, c)| {
                json!({
                    "origin": node,
                    "incarnation": c.incarnation,
                    "applied_version": c.applied,
                    "origin_version": c.head,
                    "behind": c.head.saturating_sub(c.applied),
                    "last_lag_ms": c.last_lag_ms,
                })
            })
            .collect();
        origins.sort_by(|a, b| a["origin"].as_str().cmp(&b["origin"].as_str()));
        let serving = replicas.boards.values().filter(|b| b.serving).count();
        let (incarnation, head) = self.head();
        json!({
            "log": {"incarnation": incarnation, "version": head},
            "origins": origins,
            "boards": replicas.boards.len(),
            "boards_serving": serving,
            "boards_stale": replicas.stale_count(),
            "lag_ms": {"p50": p50, "p99": p99, "samples": samples},
        })
    }

    // -------------------------------------------------------------------------------------
    // Needs
    // -------------------------------------------------------------------------------------

    /// The key under which a need runs at most once at a time.
    pub(crate) fn need_key(need: &Need) -> String {
        match need {
            Need::CatchUp { origin, .. } | Need::Boards { origin } => format!("origin/{origin}"),
            Need::Snapshot { board, build, .. } => format!("board/{board}/{build}"),
        }
    }

    pub(crate) fn pull_of(&self, origin: &str) -> Arc<Pull> {
        lock(&self.pulls)
            .entry(origin.to_string())
            .or_default()
            .clone()
    }

    pub(crate) fn next_pull_seq(&self, origin: &str) -> u64 {
        self.pull_of(origin).started.load(Ordering::Acquire) + 1
    }
}

/// Where a read was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// From this node's replica.
    Replica,
    /// By the board's actor on this node (its owner).
    Owner,
    /// By the owner on another node.
    Forwarded,
}

/// The instance of a board loaded under claim `epoch`.
pub fn instance_of(board: &Board, epoch: i64) -> Instance {
    Instance {
        create_time: board.row.create_time,
        epoch,
    }
}

/// A record of the actor as a committed change.
pub fn local_change(
    expiry: i64,
    owner: Uuid,
    record: Option<(&Record, Option<&str>)>,
) -> LocalChange {
    LocalChange {
        expiry,
        owner,
        record: record.map(|(r, u)| (r.clone(), u.map(str::to_string))),
    }
}
