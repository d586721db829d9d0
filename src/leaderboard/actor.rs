//! The `Leaderboard` actor: one per board (leaderboard or tournament), keyed by the board id.
//!
//! - **Activation** (`ctx.wait`, so nothing is answered before it is done): claims the
//!   board's `leaderboard` row (bumping `owner_epoch`), reads the definition, loads the
//!   records of the current bucket into memory and the rank cache. An unknown board answers
//!   "not found" for a few seconds (so probing ids costs one query each), then stops.
//! - **Reads** (`List`, `AroundOwner`, `GetInfo`) are answered from memory: pages and ranks
//!   from the bucket's [`RankCache`], record details from the records map. Two cases go to the
//!   database instead, as Nakama would: a board whose rank cache is off (config blacklist) and
//!   a bucket that is not in memory (a past period asked for with `expiry`).
//! - **Writes** (`Write`, `DeleteRecord`, `Join`) are queued. A batch is taken when
//!   `leaderboard_batch_size` writes are waiting or the oldest has waited
//!   `leaderboard_batch_window`; its writes are applied in arrival order with
//!   [`rules::apply`] on top of the committed records, and the changed records go to the
//!   database in one fenced statement ([`leaderboards::flush`]). Only after it commits are they
//!   applied to memory and each writer answered. One batch is in flight at a time; writes
//!   arriving meanwhile form the next one. A failed batch changes nothing in memory and its
//!   writers are told to try again; a fenced one (another node claimed the board) stops the
//!   actor.
//! - **Buckets**: a board with a reset schedule writes into the bucket of the current period;
//!   a past bucket stays in memory for a minute after its expiry, then is trimmed.
//! - No idle passivation: a board stays warm. [`Passivate`] (drain, shutdown) commits what is
//!   queued, releases the claim and stops.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use metrics::Counter;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::board::Board;
use super::cursor::Cursor;
use super::messages::{
    Api, AroundOwner, BoardInfo, DeleteRecord, Forget, GetInfo, Join, LeaderboardError, List,
    PartRead, ReadPart, ReadPartAnswer, RecordList, RecordView, Warm, Write,
};
use super::paging::{self, Key};
use super::parts;
use super::rank_cache::{RankCache, RankCaches, SortOrder};
use super::reads::{self, Buckets, Plan};
use super::replication::replica::BoardReplica;
use super::replication::sync::{instance_of, local_change};
use super::replication::LeaderboardSync;
use super::rules::{self, Operator, Record, WriteContext, WriteError};
use crate::persistence::claims::{self, EntityId, EntityTable};
use crate::persistence::leaderboards::{self, FlushBatch, RecordRow};
use crate::persistence::{Db, DbError};
use crate::request::Caller;
use crate::routing::Entity;
use crate::routing::Passivate;

/// How long a past bucket stays in memory after its expiry.
pub const BUCKET_GRACE_SECS: i64 = 60;
/// How long an actor for an unknown board answers "not found" before stopping.
const MISSING_TTL: Duration = Duration::from_secs(5);

/// What a Leaderboard actor needs from its node.
#[derive(Clone)]
pub struct LeaderboardDeps {
    pub db: Db,
    /// Written as the claim's `owner_node`.
    pub node_id: String,
    /// Board ids whose rank cache is off; `*` for all.
    pub blacklist: Arc<Vec<String>>,
    /// A batch is taken once its oldest write has waited this long …
    pub batch_window: Duration,
    /// … or once this many writes wait.
    pub batch_size: usize,
    /// Batches of one board in the database at once (they never touch the same record).
    pub max_in_flight: usize,
    /// Writes waiting beyond this are refused with "try again" instead of queued.
    pub write_queue_limit: usize,
    pub counters: Arc<Counters>,
    /// This node's replication (none when it is off).
    pub sync: Option<Arc<LeaderboardSync>>,
}

impl std::fmt::Debug for LeaderboardDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderboardDeps")
            .field("node_id", &self.node_id)
            .field("blacklist", &self.blacklist)
            .field("batch_window", &self.batch_window)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// The leaderboard figures of a node.
pub struct Counters {
    pub writes_committed: Counter,
    pub writes_refused: Counter,
    pub writes_failed: Counter,
    pub batches: Counter,
    pub reads_memory: Counter,
    pub reads_database: Counter,
}

impl Counters {
    pub fn new(db: &Db) -> Counters {
        let m = db.metrics();
        Counters {
            writes_committed: m.counter("serai_leaderboard_writes_total", "outcome", "committed"),
            writes_refused: m.counter("serai_leaderboard_writes_total", "outcome", "refused"),
            writes_failed: m.counter("serai_leaderboard_writes_total", "outcome", "failed"),
            batches: m.counter("serai_leaderboard_batches_total", "outcome", "committed"),
            reads_memory: m.counter("serai_leaderboard_reads_total", "source", "memory"),
            reads_database: m.counter("serai_leaderboard_reads_total", "source", "database"),
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Loading,
    Ready,
    /// No such board.
    Missing,
    /// Fenced, deleted or failed to load: stopping.
    Failed,
    /// Passivating: queued writes are committed, new ones refused.
    Stopping,
}

/// A record in memory.
#[derive(Debug, Clone)]
struct Entry {
    rec: Record,
    username: Option<String>,
}

/// What a queued write does.
#[derive(Debug)]
enum OpKind {
    Write {
        api: Api,
        operator: Operator,
        score: i64,
        subscore: i64,
        metadata: Option<String>,
        username: Option<String>,
    },
    Delete,
    Join {
        username: Option<String>,
    },
}

/// A successful write's answer, before ranks are known.
enum Done {
    Record {
        rec: Record,
        username: Option<String>,
    },
    Nothing,
}

type Reply = oneshot::Sender<Result<Option<RecordView>, LeaderboardError>>;

struct Op {
    expiry: i64,
    owner: Uuid,
    kind: OpKind,
    reply: Reply,
    queued: Instant,
}

/// A loaded board.
struct Loaded {
    board: Board,
    epoch: i64,
    expiry: i64,
    records: HashMap<Uuid, Entry>,
    /// The bucket's rank cache (`None` when the cache is off for the board).
    cache: Option<RankCache>,
    /// This node's replica of the board (when it is replicated).
    replica: Option<BoardReplica>,
    load_ms: u64,
    build_ms: u64,
}

enum LoadError {
    Missing,
    Failed,
}

/// One board.
pub struct Leaderboard {
    id: String,
    deps: LeaderboardDeps,
    phase: Phase,
    board: Option<Arc<Board>>,
    epoch: i64,
    /// Records by bucket expiry, then owner.
    buckets: HashMap<i64, HashMap<Uuid, Entry>>,
    caches: RankCaches,
    pending: VecDeque<Op>,
    /// Batches sent to the database and not answered yet.
    in_flight: usize,
    /// Records changed by in-flight batches: a later write of the same record waits for
    /// its batch, so batches never depend on each other.
    busy: HashSet<(i64, Uuid)>,
    /// Records created (+) or deleted (−) by in-flight batches, per bucket.
    busy_size: HashMap<i64, i64>,
    /// The current bucket's size last written to `leaderboard.size`.
    stored_size: Option<u64>,
    /// A moving average of how long a batch takes to commit.
    commit_time: Duration,
    timer_armed: bool,
    stop_started: bool,
    stop_waiters: Vec<oneshot::Sender<()>>,
}

impl Entity for Leaderboard {
    type Key = String;
    const KIND: &'static str = "leaderboard";
}

/// The actor's buckets, for the reads it shares with every node's replica.
impl Buckets for Leaderboard {
    fn cached(&self) -> bool {
        !self.caches.is_blacklisted(&self.id)
    }

    fn has_bucket(&self, expiry: i64) -> bool {
        self.buckets.contains_key(&expiry)
    }

    fn cache(&self, expiry: i64) -> Option<&RankCache> {
        self.caches.get(&self.id, expiry)
    }

    fn record(&self, expiry: i64, owner: Uuid) -> Option<(&Record, Option<&str>)> {
        let e = self.entry(expiry, owner)?;
        Some((&e.rec, e.username.as_deref()))
    }

    fn bucket_len(&self, expiry: i64) -> u64 {
        self.buckets.get(&expiry).map_or(0, |b| b.len() as u64)
    }
}

impl Leaderboard {
    /// The board `id`; it loads itself when started.
    pub fn new(id: String, deps: LeaderboardDeps) -> Leaderboard {
        Leaderboard {
            caches: RankCaches::new(deps.blacklist.as_ref().clone()),
            id,
            deps,
            phase: Phase::Loading,
            board: None,
            epoch: 0,
            buckets: HashMap::new(),
            pending: VecDeque::new(),
            in_flight: 0,
            busy: HashSet::new(),
            busy_size: HashMap::new(),
            stored_size: None,
            commit_time: Duration::from_millis(2),
            timer_armed: false,
            stop_started: false,
            stop_waiters: Vec::new(),
        }
    }

    /// Starts loading; nothing else is handled until it is done.
    fn begin_load(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Loading;
        let (deps, id) = (self.deps.clone(), self.id.clone());
        ctx.wait(
            load(deps, id)
                .into_actor(self)
                .map(|result, act, ctx| act.loaded(result, ctx)),
        );
    }

    fn loaded(&mut self, result: Result<Loaded, LoadError>, ctx: &mut Context<Self>) {
        match result {
            Ok(l) => {
                let count = l.records.len();
                self.caches = RankCaches::new(self.deps.blacklist.as_ref().clone());
                if let Some(cache) = l.cache {
                    self.caches.insert(&self.id, l.expiry, cache);
                }
                self.buckets.clear();
                self.buckets.insert(l.expiry, l.records);
                self.epoch = l.epoch;
                if let (Some(sync), Some(replica)) = (&self.deps.sync, l.replica) {
                    sync.install(replica, &[l.expiry]);
                }
                self.board = Some(Arc::new(l.board));
                self.phase = Phase::Ready;
                tracing::info!(board = %self.id, records = count, expiry = l.expiry,
                    cached = self.cached(), load_ms = l.load_ms, build_ms = l.build_ms,
                    "leaderboard loaded");
            }
            Err(LoadError::Missing) => {
                self.phase = Phase::Missing;
                ctx.run_later(MISSING_TTL, |act, ctx| {
                    if act.phase == Phase::Missing {
                        ctx.stop();
                    }
                });
            }
            Err(LoadError::Failed) => self.fail(ctx),
        }
    }

    fn fail(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Failed;
        self.buckets.clear();
        self.caches = RankCaches::new(Vec::new());
        for op in self.pending.drain(..) {
            let _ = op.reply.send(Err(LeaderboardError::Unavailable));
        }
        // Stopping from a timer lets the messages already queued be answered first.
        ctx.run_later(Duration::ZERO, |_, ctx| ctx.stop());
    }

    /// The board, when it can serve `api`.
    fn ready(&self, api: Api) -> Result<Arc<Board>, LeaderboardError> {
        match self.phase {
            Phase::Ready | Phase::Stopping => {}
            Phase::Missing => return Err(LeaderboardError::NotFound(api)),
            Phase::Loading | Phase::Failed => return Err(LeaderboardError::Unavailable),
        }
        let board = self.board.clone().ok_or(LeaderboardError::Unavailable)?;
        if api == Api::Tournament && !board.is_tournament() {
            return Err(LeaderboardError::NotFound(api));
        }
        Ok(board)
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.store_size(ctx);
        let horizon = unix_now() - BUCKET_GRACE_SECS;
        let before = self.buckets.len();
        self.buckets
            .retain(|&expiry, _| expiry == 0 || expiry > horizon);
        if self.buckets.len() != before {
            self.caches.trim_expired(horizon);
            tracing::debug!(board = %self.id, "expired buckets trimmed");
        }
    }

    /// Writes the current bucket's size to `leaderboard.size` when it changed (tournament
    /// lists show it); fenced like every write of the board.
    fn store_size(&mut self, ctx: &mut Context<Self>) {
        let Some(board) = self.board.clone() else {
            return;
        };
        if self.phase != Phase::Ready {
            return;
        }
        let size = self.bucket_len(board.current_expiry(unix_now()));
        if self.stored_size == Some(size) {
            return;
        }
        self.stored_size = Some(size);
        let (db, id, node, epoch) = (
            self.deps.db.clone(),
            self.id.clone(),
            self.deps.node_id.clone(),
            self.epoch,
        );
        let write = async move { leaderboards::store_size(&db, &id, &node, epoch, size).await };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| match result {
            Ok(()) => {}
            Err(DbError::Fenced(_)) => {
                tracing::warn!(board = %act.id, "leaderboard fenced by a newer claim (or deleted), stopping");
                act.fail(ctx);
            }
            Err(e) => {
                tracing::debug!(board = %act.id, error = %e, "leaderboard size not stored, will retry");
                act.stored_size = None;
            }
        }));
    }

    // ---------------------------------------------------------------------------------------
    // Writes
    // ---------------------------------------------------------------------------------------

    fn enqueue(
        &mut self,
        expiry: i64,
        owner: Uuid,
        kind: OpKind,
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<Option<RecordView>, LeaderboardError>> {
        let (tx, rx) = oneshot::channel();
        if self.pending.len() >= self.deps.write_queue_limit {
            // Bounded: the writer retries later rather than the queue growing.
            self.deps.counters.writes_refused.increment(1);
            let _ = tx.send(Err(LeaderboardError::Unavailable));
            return rx;
        }
        self.pending.push_back(Op {
            expiry,
            owner,
            kind,
            reply: tx,
            queued: Instant::now(),
        });
        self.maybe_flush(ctx);
        rx
    }

    /// Takes batches while one is due and fewer than `max_in_flight` are in flight; otherwise
    /// arms the window timer.
    fn maybe_flush(&mut self, ctx: &mut Context<Self>) {
        while self.in_flight < self.deps.max_in_flight.max(1) {
            let Some(oldest) = self.pending.front().map(|op| op.queued) else {
                if self.phase == Phase::Stopping && self.in_flight == 0 {
                    self.finish_stop(ctx);
                }
                return;
            };
            let waited = oldest.elapsed();
            let gather = self.deps.batch_window;
            let due = self.pending.len() >= self.deps.batch_size
                || waited >= gather
                || self.phase == Phase::Stopping;
            if !due {
                if !self.timer_armed {
                    self.timer_armed = true;
                    ctx.run_later(gather - waited, |act, ctx| {
                        act.timer_armed = false;
                        act.maybe_flush(ctx);
                    });
                }
                return;
            }
            if !self.start_flush(ctx) {
                // Everything waiting touches records of batches in flight.
                return;
            }
        }
    }

    fn entry(&self, expiry: i64, owner: Uuid) -> Option<&Entry> {
        self.buckets.get(&expiry)?.get(&owner)
    }

    /// Takes the next batch: waiting writes in arrival order, up to `batch_size`, leaving
    /// (in order) those whose record is changed by a batch in flight.
    fn take_batch(&mut self) -> Vec<Op> {
        let limit = self.deps.batch_size.max(1);
        if self.busy.is_empty() {
            let take = self.pending.len().min(limit);
            return self.pending.drain(..take).collect();
        }
        let mut ops = Vec::new();
        let mut kept = VecDeque::with_capacity(self.pending.len());
        let mut blocked: HashSet<(i64, Uuid)> = HashSet::new();
        while let Some(op) = self.pending.pop_front() {
            if ops.len() >= limit {
                kept.push_back(op);
                kept.extend(self.pending.drain(..));
                break;
            }
            let key = (op.expiry, op.owner);
            if self.busy.contains(&key) || blocked.contains(&key) {
                blocked.insert(key);
                kept.push_back(op);
            } else {
                ops.push(op);
            }
        }
        self.pending = kept;
        ops
    }

    /// Applies the next batch on top of the committed records and sends the changes to the
    /// database; memory and the writers follow once it commits. False when no write could be
    /// taken.
    fn start_flush(&mut self, ctx: &mut Context<Self>) -> bool {
        let Some(board) = self.board.clone() else {
            return false;
        };
        let ops = self.take_batch();
        if ops.is_empty() {
            return false;
        }
        let now = unix_now();
        let wctx = WriteContext {
            kind: board.kind(),
            now,
        };
        // Later writes in the batch see earlier ones: `None` = deleted.
        let mut overlay: HashMap<(i64, Uuid), Option<Entry>> = HashMap::new();
        let mut size_delta: HashMap<i64, i64> = HashMap::new();
        let mut answers: Vec<(Reply, Uuid, i64, Result<Done, LeaderboardError>)> =
            Vec::with_capacity(ops.len());
        for op in ops {
            let key = (op.expiry, op.owner);
            let existing: Option<Entry> = match overlay.get(&key) {
                Some(e) => e.clone(),
                None => self.entry(op.expiry, op.owner).cloned(),
            };
            let size = |delta: &HashMap<i64, i64>| {
                (self.bucket_len(op.expiry) as i64
                    + self.busy_size.get(&op.expiry).copied().unwrap_or(0)
                    + delta.get(&op.expiry).copied().unwrap_or(0))
                .max(0) as u64
            };
            let result = match op.kind {
                OpKind::Write {
                    api,
                    operator,
                    score,
                    subscore,
                    metadata,
                    username,
                } => match rules::apply(
                    board.order,
                    operator,
                    existing.as_ref().map(|e| &e.rec),
                    score,
                    subscore,
                    metadata.as_deref(),
                    &wctx,
                ) {
                    Err(e) => Err(LeaderboardError::write(e, api)),
                    Ok(out) => {
                        let full = out.created
                            && rules::check_max_size(size(&size_delta), board.max_size()).is_err();
                        if full {
                            Err(LeaderboardError::write(WriteError::MaxSizeReached, api))
                        } else {
                            let username = if out.changed {
                                username.or_else(|| existing.and_then(|e| e.username))
                            } else {
                                existing.and_then(|e| e.username)
                            };
                            if out.created {
                                *size_delta.entry(op.expiry).or_default() += 1;
                            }
                            if out.changed {
                                overlay.insert(
                                    key,
                                    Some(Entry {
                                        rec: out.record.clone(),
                                        username: username.clone(),
                                    }),
                                );
                            }
                            Ok(Done::Record {
                                rec: out.record,
                                username,
                            })
                        }
                    }
                },
                OpKind::Delete => {
                    if existing.is_some() {
                        overlay.insert(key, None);
                        *size_delta.entry(op.expiry).or_default() -= 1;
                    }
                    Ok(Done::Nothing)
                }
                OpKind::Join { username } => {
                    let max = match board.kind() {
                        rules::BoardKind::Tournament { max_num_score, .. } => max_num_score,
                        rules::BoardKind::Leaderboard => None,
                    };
                    match rules::join(existing.as_ref().map(|e| &e.rec), max, now) {
                        None => Ok(Done::Nothing),
                        Some(rec) => {
                            match rules::check_max_size(size(&size_delta), board.max_size()) {
                                Err(e) => Err(LeaderboardError::join(e)),
                                Ok(()) => {
                                    *size_delta.entry(op.expiry).or_default() += 1;
                                    overlay.insert(key, Some(Entry { rec, username }));
                                    Ok(Done::Nothing)
                                }
                            }
                        }
                    }
                }
            };
            answers.push((op.reply, op.owner, op.expiry, result));
        }

        let mut batch = FlushBatch::default();
        for (&(expiry, owner), change) in &overlay {
            match change {
                Some(e) => batch.upserts.push(row_of(&board, expiry, owner, e)),
                None => batch.deletes.push((expiry, owner)),
            }
        }
        if batch.is_empty() {
            self.commit(&board, overlay, answers);
            return true;
        }
        self.in_flight += 1;
        self.busy.extend(overlay.keys().copied());
        for (&expiry, &d) in &size_delta {
            *self.busy_size.entry(expiry).or_default() += d;
        }
        let (db, id, node, epoch) = (
            self.deps.db.clone(),
            self.id.clone(),
            self.deps.node_id.clone(),
            self.epoch,
        );
        let rows = batch.upserts.len() + batch.deletes.len();
        let started = std::time::Instant::now();
        let write = async move {
            let r = leaderboards::flush(&db, &id, &node, epoch, &batch).await;
            (r, started.elapsed())
        };
        ctx.spawn(write.into_actor(self).map(move |(result, db_time), act, ctx| {
            act.in_flight -= 1;
            for key in overlay.keys() {
                act.busy.remove(key);
            }
            for (expiry, d) in size_delta {
                if let Some(v) = act.busy_size.get_mut(&expiry) {
                    *v -= d;
                }
            }
            act.busy_size.retain(|_, v| *v != 0);
            act.commit_time = (act.commit_time * 7 + db_time) / 8;
            tracing::debug!(board = %act.id, rows, db_us = db_time.as_micros() as u64,
                total_us = started.elapsed().as_micros() as u64, "leaderboard batch");
            match result {
                Ok(()) => {
                    act.deps.counters.batches.increment(1);
                    act.commit(&board, overlay, answers);
                }
                Err(e) => {
                    let fenced = matches!(e, DbError::Fenced(_));
                    if fenced {
                        tracing::warn!(board = %act.id, epoch = act.epoch, "leaderboard fenced by a newer claim (or deleted), stopping");
                    } else {
                        tracing::warn!(board = %act.id, error = %e, "leaderboard batch failed; its writers are told to retry");
                    }
                    act.deps.counters.writes_failed.increment(answers.len() as u64);
                    for (reply, ..) in answers {
                        let _ = reply.send(Err(LeaderboardError::Unavailable));
                    }
                    if fenced {
                        act.fail(ctx);
                        return;
                    }
                }
            }
            act.maybe_flush(ctx);
        }));
        true
    }

    /// Applies a committed batch to memory and answers its writers.
    fn commit(
        &mut self,
        board: &Board,
        overlay: HashMap<(i64, Uuid), Option<Entry>>,
        answers: Vec<(Reply, Uuid, i64, Result<Done, LeaderboardError>)>,
    ) {
        let mut logged = Vec::new();
        for ((expiry, owner), change) in overlay {
            if self.deps.sync.is_some() {
                let record = change.as_ref().map(|e| (&e.rec, e.username.as_deref()));
                logged.push(local_change(expiry, owner, record));
            }
            match change {
                Some(e) => {
                    if let Some(cache) = self.caches.get_or_create(&self.id, expiry, board.order) {
                        cache.upsert(reads::rank_entry(owner, &e.rec));
                    }
                    self.buckets.entry(expiry).or_default().insert(owner, e);
                }
                None => {
                    if let Some(cache) = self.caches.get_mut(&self.id, expiry) {
                        cache.remove(owner);
                    }
                    if let Some(b) = self.buckets.get_mut(&expiry) {
                        b.remove(&owner);
                    }
                }
            }
        }
        // This node's reads see the batch before its writers hear back.
        if let Some(sync) = &self.deps.sync {
            sync.committed(board, self.epoch, logged);
        }
        for (reply, owner, expiry, result) in answers {
            let answer = match result {
                Ok(Done::Record { rec, username }) => {
                    self.deps.counters.writes_committed.increment(1);
                    let rank = reads::owner_rank(board, &*self, expiry, owner);
                    Ok(Some(reads::view(
                        board,
                        expiry,
                        owner,
                        &rec,
                        username.as_deref(),
                        rank,
                    )))
                }
                Ok(Done::Nothing) => {
                    self.deps.counters.writes_committed.increment(1);
                    Ok(None)
                }
                Err(e) => {
                    self.deps.counters.writes_refused.increment(1);
                    Err(e)
                }
            };
            let _ = reply.send(answer);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Stop
    // ---------------------------------------------------------------------------------------

    fn begin_stop(&mut self, ctx: &mut Context<Self>) {
        if self.phase == Phase::Ready {
            self.phase = Phase::Stopping;
        }
        self.maybe_flush(ctx);
    }

    fn finish_stop(&mut self, ctx: &mut Context<Self>) {
        if self.stop_started {
            return;
        }
        self.stop_started = true;
        let (db, id, node, epoch) = (
            self.deps.db.clone(),
            self.id.clone(),
            self.deps.node_id.clone(),
            self.epoch,
        );
        let release = async move {
            let key = EntityId::Text(id.clone());
            if let Err(e) = claims::release(&db, EntityTable::Leaderboard, &key, &node, epoch).await
            {
                tracing::warn!(board = %id, error = %e, "leaderboard: releasing the claim failed");
            }
        };
        ctx.wait(release.into_actor(self).map(|(), act, ctx| {
            for w in act.stop_waiters.drain(..) {
                let _ = w.send(());
            }
            ctx.stop();
        }));
    }
}

fn entry_from_row(board: &Board, r: RecordRow) -> (Uuid, Entry) {
    let rec = Record {
        score: r.score,
        subscore: r.subscore,
        num_score: r.num_score.max(0) as u32,
        max_num_score: board.is_tournament().then(|| r.max_num_score.max(0) as u32),
        metadata: r.metadata,
        create_time: r.create_time,
        update_time: r.update_time,
    };
    (
        r.owner,
        Entry {
            rec,
            username: r.username,
        },
    )
}

fn row_of(board: &Board, expiry: i64, owner: Uuid, e: &Entry) -> RecordRow {
    RecordRow {
        expiry,
        owner,
        username: e.username.clone(),
        score: e.rec.score,
        subscore: e.rec.subscore,
        num_score: e.rec.num_score.min(i32::MAX as u32) as i32,
        max_num_score: board
            .record_max_num_score(e.rec.max_num_score)
            .min(i32::MAX as u32) as i32,
        metadata: e.rec.metadata.clone(),
        create_time: e.rec.create_time,
        update_time: e.rec.update_time,
    }
}

fn view_of_row(board: &Board, r: RecordRow, rank: u64) -> RecordView {
    let expiry = r.expiry;
    let (owner, e) = entry_from_row(board, r);
    reads::view(board, expiry, owner, &e.rec, e.username.as_deref(), rank)
}

/// Claims the board's row and loads its current bucket.
async fn load(deps: LeaderboardDeps, id: String) -> Result<Loaded, LoadError> {
    let failed = |what: &str, e: DbError| {
        tracing::warn!(board = %id, error = %e, "leaderboard: {what} failed");
        LoadError::Failed
    };
    let key = EntityId::Text(id.clone());
    let epoch = match claims::claim(&deps.db, EntityTable::Leaderboard, &key, &deps.node_id).await {
        Ok(epoch) => epoch,
        Err(DbError::NotFound(_)) => return Err(LoadError::Missing),
        Err(e) => return Err(failed("claim", e)),
    };
    let row = match leaderboards::get_board(&deps.db, &id).await {
        Ok(Some(row)) => row,
        Ok(None) => return Err(LoadError::Missing),
        Err(e) => return Err(failed("reading the board", e)),
    };
    let board = Board::from_row(row).map_err(|e| {
        tracing::error!(board = %id, error = %e, "leaderboard row cannot be used");
        LoadError::Failed
    })?;
    let expiry = board.current_expiry(unix_now());
    let started = std::time::Instant::now();
    let rows = leaderboards::load_records(&deps.db, &id, expiry)
        .await
        .map_err(|e| failed("loading records", e))?;
    let load_ms = started.elapsed().as_millis() as u64;
    // Building a large bucket takes a while: off the arbiter, which other actors share.
    let cached = !RankCaches::new(deps.blacklist.as_ref().clone()).is_blacklisted(&id);
    let started = std::time::Instant::now();
    let sync = deps.sync.clone();
    let (board, records, cache, replica) = tokio::task::spawn_blocking(move || {
        let (board, records, cache) = build_bucket(board, rows, cached);
        let replica = sync.as_ref().and_then(|s| {
            let all = records
                .iter()
                .map(|(o, e)| (expiry, *o, &e.rec, e.username.as_deref()));
            s.prepare(&board, epoch, all)
        });
        (board, records, cache, replica)
    })
    .await
    .map_err(|e| {
        tracing::error!(board = %id, error = %e, "leaderboard: building the bucket failed");
        LoadError::Failed
    })?;
    Ok(Loaded {
        board,
        epoch,
        expiry,
        records,
        cache,
        replica,
        load_ms,
        build_ms: started.elapsed().as_millis() as u64,
    })
}

/// The records map and (when `cached`) the rank cache of a loaded bucket.
fn build_bucket(
    board: Board,
    rows: Vec<RecordRow>,
    cached: bool,
) -> (Board, HashMap<Uuid, Entry>, Option<RankCache>) {
    let order = board.order;
    let mut records = HashMap::with_capacity(rows.len());
    let mut entries = Vec::with_capacity(if cached { rows.len() } else { 0 });
    for r in rows {
        let (owner, entry) = entry_from_row(&board, r);
        if cached {
            entries.push(reads::rank_entry(owner, &entry.rec));
        }
        records.insert(owner, entry);
    }
    let cache = cached.then(|| {
        entries
            .sort_unstable_by(|a, b| paging::compare(order, paging::key_of(a), paging::key_of(b)));
        RankCache::from_entries(order, entries)
    });
    (board, records, cache)
}

// -------------------------------------------------------------------------------------------
// Database reads (rank cache off, or a bucket not in memory): Nakama's queries.
// -------------------------------------------------------------------------------------------

async fn list_database(
    db: Db,
    board: Arc<Board>,
    expiry: i64,
    limit: Option<u32>,
    cursor: Option<Cursor>,
    owners: Vec<Uuid>,
) -> Result<RecordList, LeaderboardError> {
    let unavailable = |e: DbError| {
        tracing::warn!(board = %board.row.id, error = %e, "leaderboard read from the database failed");
        LeaderboardError::Unavailable
    };
    let ascending = board.order == SortOrder::Ascending;
    let mut list = RecordList::default();
    if let Some(limit) = limit {
        let after = cursor
            .as_ref()
            .map(|c| ((c.score, c.subscore, c.owner), c.is_next));
        let mut rows = leaderboards::page(
            &db,
            &board.row.id,
            expiry,
            ascending,
            after,
            i64::from(limit) + 1,
        )
        .await
        .map_err(unavailable)?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let base = cursor.as_ref().map_or(0, |c| c.rank);
        let forward = cursor.as_ref().is_none_or(|c| c.is_next);
        let mut views: Vec<RecordView> = rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let rank = if forward {
                    base + i as u64 + 1
                } else {
                    base.saturating_sub(i as u64 + 1)
                };
                view_of_row(&board, r, rank)
            })
            .collect();
        if !forward {
            views.reverse();
        }
        let cursor_at = |v: &RecordView, is_next: bool| {
            Cursor {
                is_next,
                board: board.row.id.clone(),
                expiry,
                score: v.score,
                subscore: v.subscore,
                owner: v.owner_id,
                rank: v.rank,
            }
            .encode()
        };
        if forward {
            list.next_cursor = more
                .then(|| views.last().map(|v| cursor_at(v, true)))
                .flatten();
            list.prev_cursor = cursor
                .is_some()
                .then(|| views.first().map(|v| cursor_at(v, false)))
                .flatten();
        } else {
            list.next_cursor = views.last().map(|v| cursor_at(v, true));
            list.prev_cursor = more
                .then(|| views.first().map(|v| cursor_at(v, false)))
                .flatten();
        }
        list.records = views;
    }
    if !owners.is_empty() {
        let rows = leaderboards::records_of(&db, &board.row.id, expiry, &owners)
            .await
            .map_err(unavailable)?;
        list.owner_records = rows
            .into_iter()
            .map(|r| view_of_row(&board, r, 0))
            .collect();
        reads::sort_views(board.order, &mut list.owner_records);
    }
    Ok(list)
}

async fn around_database(
    db: Db,
    board: Arc<Board>,
    expiry: i64,
    owner: Uuid,
    limit: u32,
) -> Result<RecordList, LeaderboardError> {
    let unavailable = |e: DbError| {
        tracing::warn!(board = %board.row.id, error = %e, "leaderboard read from the database failed");
        LeaderboardError::Unavailable
    };
    let id = board.row.id.clone();
    let own = leaderboards::records_of(&db, &id, expiry, &[owner])
        .await
        .map_err(unavailable)?;
    let Some(own) = own.into_iter().next() else {
        return Ok(RecordList::default());
    };
    let key: Key = (own.score, own.subscore, own.owner);
    let ascending = board.order == SortOrder::Ascending;
    let limit = u64::from(limit.max(1));
    let mut above = leaderboards::page(
        &db,
        &id,
        expiry,
        ascending,
        Some((key, false)),
        limit as i64 + 1,
    )
    .await
    .map_err(unavailable)?;
    let above_avail = above.len() as u64;
    above.truncate(limit as usize);
    above.reverse();
    let mut second_limit = limit / 2;
    if (above.len() as u64) < second_limit {
        second_limit = limit - above.len() as u64;
    }
    let mut below = leaderboards::page(
        &db,
        &id,
        expiry,
        ascending,
        Some((key, true)),
        second_limit as i64 + 1,
    )
    .await
    .map_err(unavailable)?;
    let set_next = below.len() as u64 > second_limit;
    below.truncate(second_limit as usize);
    let first_len = above.len() as u64;
    let mut all = above;
    all.push(own);
    all.extend(below);
    let num = all.len() as u64;
    let start = if num < limit || first_len < second_limit {
        0
    } else {
        num - limit
    };
    let end = (start + limit).min(num);
    let set_prev = above_avail > limit || start > 0;
    let records: Vec<RecordView> = all
        .into_iter()
        .skip(start as usize)
        .take((end - start) as usize)
        .map(|r| view_of_row(&board, r, 0))
        .collect();
    let cursor_at = |v: &RecordView, is_next: bool| {
        Cursor {
            is_next,
            board: id.clone(),
            expiry,
            score: v.score,
            subscore: v.subscore,
            owner: v.owner_id,
            rank: v.rank,
        }
        .encode()
    };
    Ok(RecordList {
        prev_cursor: set_prev
            .then(|| records.first().map(|v| cursor_at(v, false)))
            .flatten(),
        next_cursor: set_next
            .then(|| records.last().map(|v| cursor_at(v, true)))
            .flatten(),
        records,
        owner_records: Vec::new(),
        rank_count: 0,
    })
}

// -------------------------------------------------------------------------------------------
// Actor and handlers
// -------------------------------------------------------------------------------------------

impl Actor for Leaderboard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Large boards queue many messages while loading.
        ctx.set_mailbox_capacity(4096);
        self.begin_load(ctx);
        ctx.run_interval(Duration::from_secs(1), |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        for op in self.pending.drain(..) {
            let _ = op.reply.send(Err(LeaderboardError::Unavailable));
        }
        tracing::debug!(board = %self.id, "leaderboard stopped");
    }
}

type Answer<T> = ResponseFuture<Result<T, LeaderboardError>>;

fn ready_answer<T: 'static>(v: Result<T, LeaderboardError>) -> Answer<T> {
    Box::pin(std::future::ready(v))
}

impl Handler<Write> for Leaderboard {
    type Result = Answer<RecordView>;

    fn handle(&mut self, msg: Write, ctx: &mut Context<Self>) -> Self::Result {
        let board = match self.ready(msg.api) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        let now = unix_now();
        if self.phase == Phase::Stopping {
            return ready_answer(Err(LeaderboardError::Unavailable));
        }
        if msg.api == Api::Leaderboard && board.is_tournament() {
            return ready_answer(Err(LeaderboardError::NotFound(Api::Leaderboard)));
        }
        if board.ended(now) {
            return ready_answer(Err(LeaderboardError::Ended));
        }
        if board.row.authoritative && matches!(msg.caller, Caller::User(_)) {
            return ready_answer(Err(LeaderboardError::write(
                WriteError::Authoritative,
                msg.api,
            )));
        }
        let operator = match Operator::resolve(board.operator, msg.operator) {
            Ok(op) => op,
            Err(e) => return ready_answer(Err(LeaderboardError::write(e, msg.api))),
        };
        if board.is_tournament() && !board.active(now) {
            return ready_answer(Err(LeaderboardError::write(
                WriteError::OutsideDuration,
                msg.api,
            )));
        }
        let expiry = board.current_expiry(now);
        let rx = self.enqueue(
            expiry,
            msg.owner,
            OpKind::Write {
                api: msg.api,
                operator,
                score: msg.score,
                subscore: msg.subscore,
                metadata: msg.metadata,
                username: msg.username,
            },
            ctx,
        );
        Box::pin(async move {
            match rx.await {
                Ok(Ok(Some(view))) => Ok(view),
                Ok(Ok(None)) | Err(_) => Err(LeaderboardError::Unavailable),
                Ok(Err(e)) => Err(e),
            }
        })
    }
}

impl Handler<DeleteRecord> for Leaderboard {
    type Result = Answer<()>;

    fn handle(&mut self, msg: DeleteRecord, ctx: &mut Context<Self>) -> Self::Result {
        let board = match self.ready(msg.api) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        if self.phase == Phase::Stopping {
            return ready_answer(Err(LeaderboardError::Unavailable));
        }
        if msg.api == Api::Leaderboard && board.is_tournament() {
            return ready_answer(Err(LeaderboardError::NotFound(Api::Leaderboard)));
        }
        if board.row.authoritative && matches!(msg.caller, Caller::User(_)) {
            return ready_answer(Err(LeaderboardError::write(
                WriteError::Authoritative,
                msg.api,
            )));
        }
        let expiry = board.current_expiry(unix_now());
        let rx = self.enqueue(expiry, msg.owner, OpKind::Delete, ctx);
        Box::pin(async move {
            match rx.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(LeaderboardError::Unavailable),
            }
        })
    }
}

impl Handler<Join> for Leaderboard {
    type Result = Answer<()>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        let board = match self.ready(Api::Tournament) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        if !board.row.join_required {
            return ready_answer(Ok(()));
        }
        if self.phase == Phase::Stopping {
            return ready_answer(Err(LeaderboardError::Unavailable));
        }
        let now = unix_now();
        let d = board.deadlines(now);
        if d.end_active <= now {
            return ready_answer(Err(LeaderboardError::join(WriteError::OutsideDuration)));
        }
        let rx = self.enqueue(
            d.expiry,
            msg.owner,
            OpKind::Join {
                username: msg.username,
            },
            ctx,
        );
        Box::pin(async move {
            match rx.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(LeaderboardError::Unavailable),
            }
        })
    }
}

impl Handler<List> for Leaderboard {
    type Result = Answer<RecordList>;

    fn handle(&mut self, msg: List, _: &mut Context<Self>) -> Self::Result {
        let board = match self.ready(msg.api) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        match reads::list(&board, &*self, &msg, unix_now()) {
            Plan::Done(answer) => {
                self.deps.counters.reads_memory.increment(1);
                ready_answer(answer)
            }
            Plan::Database { expiry, cursor } => {
                self.deps.counters.reads_database.increment(1);
                let db = self.deps.db.clone();
                Box::pin(list_database(
                    db,
                    board,
                    expiry,
                    msg.limit,
                    cursor,
                    msg.owner_ids,
                ))
            }
        }
    }
}

impl Handler<AroundOwner> for Leaderboard {
    type Result = Answer<RecordList>;

    fn handle(&mut self, msg: AroundOwner, _: &mut Context<Self>) -> Self::Result {
        let board = match self.ready(msg.api) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        let db = self.deps.db.clone();
        match reads::around(&board, &*self, &msg, unix_now()) {
            Plan::Done(answer) => {
                self.deps.counters.reads_memory.increment(1);
                ready_answer(answer)
            }
            Plan::Database {
                expiry,
                cursor: Some(cursor),
            } => {
                self.deps.counters.reads_database.increment(1);
                let limit = Some(msg.limit);
                Box::pin(list_database(
                    db,
                    board,
                    expiry,
                    limit,
                    Some(cursor),
                    Vec::new(),
                ))
            }
            Plan::Database { expiry, .. } => {
                self.deps.counters.reads_database.increment(1);
                Box::pin(around_database(db, board, expiry, msg.owner, msg.limit))
            }
        }
    }
}

impl Handler<ReadPart> for Leaderboard {
    type Result = Answer<ReadPartAnswer>;

    fn handle(&mut self, msg: ReadPart, ctx: &mut Context<Self>) -> Self::Result {
        let api = match &msg.read {
            PartRead::List(l) => l.api,
            PartRead::Around(a) => a.api,
        };
        let board = match self.ready(api) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        let expiry = parts::bucket_of(&board, &msg.read, unix_now());
        let descending = board.order == SortOrder::Descending;
        let whole = match msg.read {
            PartRead::List(l) => <Self as Handler<List>>::handle(self, l, ctx),
            PartRead::Around(a) => <Self as Handler<AroundOwner>>::handle(self, a, ctx),
        };
        let max = msg.max_bytes;
        Box::pin(async move { Ok(parts::trim(whole.await?, expiry, max, descending)) })
    }
}

impl Handler<GetInfo> for Leaderboard {
    type Result = Result<BoardInfo, LeaderboardError>;

    fn handle(&mut self, _: GetInfo, _: &mut Context<Self>) -> Self::Result {
        let board = self.ready(Api::Leaderboard)?;
        Ok(reads::info(&board, &*self, unix_now()))
    }
}

impl Handler<Warm> for Leaderboard {
    type Result = ResponseActFuture<Self, Result<BoardInfo, LeaderboardError>>;

    fn handle(&mut self, _: Warm, ctx: &mut Context<Self>) -> Self::Result {
        if self.phase == Phase::Missing {
            // Created since: look again (the answer below waits for the load).
            self.begin_load(ctx);
        }
        Box::pin(
            async {}
                .into_actor(self)
                .map(|(), act, ctx| act.handle(GetInfo, ctx)),
        )
    }
}

impl Handler<Forget> for Leaderboard {
    type Result = Result<(), LeaderboardError>;

    fn handle(&mut self, _: Forget, ctx: &mut Context<Self>) -> Self::Result {
        tracing::info!(board = %self.id, "leaderboard deleted, stopping");
        if let Some(sync) = &self.deps.sync {
            let instance = self.board.as_ref().map(|b| instance_of(b, self.epoch));
            sync.deleted(&self.id, instance);
        }
        self.fail(ctx);
        Ok(())
    }
}

impl Handler<Passivate> for Leaderboard {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Passivate, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        match self.phase {
            Phase::Ready | Phase::Stopping => {
                self.stop_waiters.push(tx);
                self.begin_stop(ctx);
            }
            Phase::Loading | Phase::Missing | Phase::Failed => {
                drop(tx);
                ctx.stop();
            }
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
