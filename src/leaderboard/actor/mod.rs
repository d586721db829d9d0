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
//!   `leaderboard_batch_size` writes are waiting, or the oldest has waited
//!   `leaderboard_batch_window` and either no batch is in flight or the waiting writes fill
//!   a batch worth its own commit (group commit, `batch::due`); its writes are applied in
//!   arrival order with [`rules::apply`](super::rules::apply) on top of the committed
//!   records, and the changed records go to the database in one fenced statement
//!   ([`leaderboards::flush`](crate::persistence::leaderboards::flush)). Only after it commits
//!   are they applied to memory and each writer answered. A few batches may be in flight at
//!   once (`max_in_flight`), never two changing the same record; writes arriving meanwhile
//!   form the next one. A failed batch changes nothing in memory and its writers are told to
//!   try again; a fenced one (another node claimed the board) stops the actor.
//! - **Buckets**: a board with a reset schedule writes into the bucket of the current period;
//!   a past bucket stays in memory for a minute after its expiry, then is trimmed.
//! - No idle passivation: a board stays warm. [`Passivate`](crate::routing::Passivate)
//!   (drain, shutdown) commits what is queued, releases the claim and stops.
//!
//! Files: this one holds the actor's state and its start and stop; `deps` what it needs
//! from its node; `lifecycle` activation, housekeeping, passivation and deletion; `load` the
//! claim and the loading of a bucket; `writes` the write messages and their queue; `batch`
//! taking, committing and answering batches; `apply` a batch's writes applied on top of the
//! committed records; `read_path` the read messages (memory first); `database_reads` the reads
//! memory cannot answer, with their paging.

mod apply;
mod batch;
mod database_reads;
mod deps;
mod lifecycle;
mod load;
mod read_path;
mod writes;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::board::Board;
use super::messages::{Api, LeaderboardError};
use super::rank_cache::{RankCache, RankCaches};
use super::reads::Buckets;
use super::rules::Record;
use super::unix_now;
use crate::routing::Entity;
use writes::Op;

pub use deps::{Counters, LeaderboardDeps};

/// How long a past bucket stays in memory after its expiry.
pub const BUCKET_GRACE_SECS: i64 = 60;

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

    /// A record of a bucket in memory.
    fn entry(&self, expiry: i64, owner: Uuid) -> Option<&Entry> {
        self.buckets.get(&expiry)?.get(&owner)
    }
}

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
