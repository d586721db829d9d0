//! The persistence actor, one per node: it queues dirty rows (coalesced by row key) and
//! writes them, never dropping one. Two lanes: the background batch (oldest rows first, on
//! size or interval, one at a time) and entity flushes (only the rows of the entities whose
//! critical writes wait, at once, beside the batch). A row failing on its own is retried a few times, then
//! set aside (compensation) while the rest is written. Over the high-water mark writers wait.
//!
//! What to take, when a row is poison and when the backlog is too long are decided in
//! [`super::backlog`]; this actor only carries them out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::backlog::{Backlog, Flight, FlightId, FlightKind, PoisonPolicy, Watermarks};
use super::batch::RowKey;
use super::flight::{self, Landing};
use super::messages::*;
use super::retry::Backoff;
use super::{compensation, Db, DbError};
use crate::metrics::Metrics;

type Tag = Option<Recipient<Fenced>>;

/// Settings of the flush loop.
#[derive(Debug, Clone)]
pub struct FlushPolicy {
    pub interval: Duration,
    pub batch_size: usize,
}

/// Bounds on the backlog (rows queued or in flight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogLimits {
    /// At this many rows writers wait and the node reports not ready …
    pub high: usize,
    /// … until the backlog is down to this many.
    pub low: usize,
    /// A writer waits at most this long for room, then goes on (its rows are queued anyway:
    /// the wait slows writers down, it never drops anything).
    pub writer_wait: Duration,
}

impl Default for BacklogLimits {
    fn default() -> Self {
        BacklogLimits {
            high: 50_000,
            low: 25_000,
            writer_wait: Duration::from_secs(1),
        }
    }
}

/// A `FlushNow` (entity `None`) or `FlushEntity` caller, answered once nothing of its scope
/// older than `target` is left.
struct Waiter {
    entity: Option<Uuid>,
    target: u64,
    tx: oneshot::Sender<Result<(), DbError>>,
}

pub struct PersistenceActor {
    db: Db,
    policy: FlushPolicy,
    poison: PoisonPolicy,
    node_id: String,
    metrics: Arc<Metrics>,
    backlog: Backlog<Tag>,
    marks: Watermarks,
    writer_wait: Duration,
    /// Backoff of the batch lane after a failure of the database (not of a row).
    backoff: Backoff,
    retry_at: Option<Instant>,
    waiters: Vec<Waiter>,
    /// Writers waiting for room.
    room: Vec<oneshot::Sender<bool>>,
    reapplies: HashMap<FlightId, oneshot::Sender<ReapplyOutcome>>,
    /// Keys this node set aside: when a newer version of one is written, its record goes.
    set_aside_keys: HashSet<RowKey>,
    /// Entity flights under way (bounded: each holds a pooled connection).
    entity_flights: usize,
    /// When a failed row is due again (a wake-up is scheduled for then).
    wake_at: Option<(Instant, SpawnHandle)>,
    /// A count of open records is under way; `recount`: another was asked for meanwhile.
    counting: bool,
    recount: bool,
    stats: PersistenceStats,
}

impl PersistenceActor {
    pub fn new(db: Db, policy: FlushPolicy) -> Self {
        let metrics = db.metrics().clone();
        let limits = BacklogLimits::default();
        PersistenceActor {
            db,
            policy,
            poison: PoisonPolicy::default(),
            node_id: "local".into(),
            metrics,
            backlog: Backlog::new(),
            marks: Watermarks::new(limits.high, limits.low),
            writer_wait: limits.writer_wait,
            backoff: Backoff::database(),
            retry_at: None,
            waiters: Vec::new(),
            room: Vec::new(),
            reapplies: HashMap::new(),
            set_aside_keys: HashSet::new(),
            entity_flights: 0,
            wake_at: None,
            counting: false,
            recount: false,
            stats: PersistenceStats::default(),
        }
    }

    pub fn with_limits(mut self, limits: &BacklogLimits) -> Self {
        self.marks = Watermarks::new(limits.high, limits.low);
        self.writer_wait = limits.writer_wait;
        self
    }

    /// Names this node in the compensation records it writes.
    pub fn with_node_id(mut self, node_id: &str) -> Self {
        self.node_id = node_id.to_string();
        self
    }

    pub fn with_poison(mut self, poison: PoisonPolicy) -> Self {
        self.poison = poison;
        self
    }

    /// The background lane: the oldest due rows, one batch at a time, unless backing off.
    fn maybe_flush(&mut self, ctx: &mut Context<Self>) {
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        if let Some(flight) = self
            .backlog
            .take_batch(self.policy.batch_size, Instant::now())
        {
            self.launch(flight, ctx);
        }
    }

    /// Starts whatever the waiters need: flights of the waiting entities' own rows (up to
    /// [`MAX_ENTITY_FLIGHTS`] at once), and the batch for node-wide waiters.
    fn kick(&mut self, ctx: &mut Context<Self>) {
        while self.entity_flights < MAX_ENTITY_FLIGHTS {
            let waiting: HashSet<Uuid> = self.waiters.iter().filter_map(|w| w.entity).collect();
            if waiting.is_empty() {
                break;
            }
            let taken = self
                .backlog
                .take_entities(waiting, self.policy.batch_size, Instant::now());
            let Some(flight) = taken else {
                break;
            };
            self.entity_flights += 1;
            self.stats.entity_flushes += 1;
            self.launch(flight, ctx);
        }
        if self.waiters.iter().any(|w| w.entity.is_none())
            || self.backlog.queued() >= self.policy.batch_size
        {
            self.maybe_flush(ctx);
        }
    }

    fn launch(&mut self, flight: Flight<Tag>, ctx: &mut Context<Self>) {
        let Flight { id, kind, entries } = flight;
        // A one-shot rewrite of a set-aside row must not loop back into compensation.
        let poison = (kind != FlightKind::Reapply).then_some(self.poison);
        let (db, node) = (self.db.clone(), self.node_id.clone());
        let started = Instant::now();
        let work = async move { flight::run(&db, &node, entries, poison).await };
        ctx.spawn(
            work.into_actor(self).map(move |landing, act, ctx| {
                act.landed(id, kind, landing, started.elapsed(), ctx)
            }),
        );
        self.after_change();
    }

    fn landed(
        &mut self,
        id: FlightId,
        kind: FlightKind,
        mut landing: Landing<Tag>,
        latency: Duration,
        ctx: &mut Context<Self>,
    ) {
        let entities = self.backlog.land(id);
        if kind == FlightKind::Entities {
            self.entity_flights -= 1;
        }
        self.count_written(&landing, latency);
        if kind == FlightKind::Reapply {
            // Nothing of a one-shot rewrite goes back to the queue: the record keeps the row.
            let outcome = if !landing.written.is_empty() {
                ReapplyOutcome::Written
            } else if !landing.fenced.is_empty() {
                ReapplyOutcome::Fenced
            } else if let Some((_, e)) = landing.rejected.pop() {
                ReapplyOutcome::Failed(e)
            } else {
                ReapplyOutcome::Failed(
                    landing
                        .error
                        .take()
                        .unwrap_or_else(|| DbError::Unavailable("the row was not written".into())),
                )
            };
            if let Some(tx) = self.reapplies.remove(&id) {
                let _ = tx.send(outcome);
            }
            self.after_change();
            return;
        }
        self.supersede(&landing.written, ctx);
        for entry in landing.fenced {
            let key = entry.row.key();
            tracing::warn!(?key, "dirty write fenced: a newer claim owns the row");
            if let Some(recipient) = entry.tag {
                recipient.do_send(Fenced { key });
            }
        }
        let mut refused: Vec<(Uuid, String)> = Vec::new();
        for (entry, record, error) in landing.set_aside {
            let key = entry.row.key();
            tracing::error!(?key, %record, attempts = entry.attempts, %error,
                "row set aside into compensation after its retries; the rest is written");
            self.stats.set_aside += 1;
            self.metrics.compensation_rows.increment(1);
            refused.push((
                key.id,
                format!("a row of this entity was set aside (compensation {record}): {error}"),
            ));
            self.set_aside_keys.insert(key);
            self.refresh_open_records(ctx);
        }
        if !landing.retry.is_empty() {
            let due = landing.retry.iter().filter_map(|(e, _)| e.not_before).min();
            for (entry, error) in &landing.retry {
                tracing::warn!(key = ?entry.row.key(), attempts = entry.attempts, %error,
                    "row refused by the database; retrying it alone later");
            }
            self.backlog
                .restore(landing.retry.into_iter().map(|(e, _)| e).collect());
            if let Some(due) = due {
                self.wake(due, ctx);
            }
        }
        self.backlog.restore(landing.kept);
        match landing.error {
            Some(error) => self.failed(kind, &entities, error, ctx),
            None if kind == FlightKind::Batch => {
                self.backoff.reset();
                self.retry_at = None;
            }
            None => {}
        }
        for (entity, message) in refused {
            self.answer_entity(entity, || DbError::Unavailable(message.clone()));
        }
        self.settle_waiters();
        self.after_change();
        self.kick(ctx);
    }

    fn count_written(&mut self, landing: &Landing<Tag>, latency: Duration) {
        let written = landing.written.len() as u64;
        self.stats.flushes += landing.commits as u64;
        self.stats.rows_written += written;
        self.stats.fenced += landing.fenced.len() as u64;
        self.metrics.rows_written.increment(written);
        self.metrics
            .fenced_writes
            .increment(landing.fenced.len() as u64);
        if landing.commits > 0 {
            self.stats.last_flush_latency = Some(latency);
            self.metrics.flush_latency.record(latency.as_secs_f64());
        }
    }

    /// A written key this node had set aside before: its record is out of date now.
    fn supersede(&mut self, written: &[RowKey], ctx: &mut Context<Self>) {
        if self.set_aside_keys.is_empty() {
            return;
        }
        let done: Vec<RowKey> = written
            .iter()
            .filter(|k| self.set_aside_keys.remove(*k))
            .cloned()
            .collect();
        if done.is_empty() {
            return;
        }
        let db = self.db.clone();
        let work = async move { compensation::supersede(&db, &done).await };
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| {
            match result {
                Ok(n) => tracing::info!(
                    records = n,
                    "newer rows written: compensation records superseded"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "could not delete superseded compensation records")
                }
            }
            act.refresh_open_records(ctx);
        }));
    }

    /// The database (not a row) failed: the rows are kept; the batch lane backs off, and
    /// whoever waits on these rows hears about it now (they are retried): a caller that must
    /// not go on without its rows written can act on it.
    fn failed(
        &mut self,
        kind: FlightKind,
        entities: &[Uuid],
        error: DbError,
        ctx: &mut Context<Self>,
    ) {
        self.stats.failed_flushes += 1;
        self.stats.last_error = Some(error.to_string());
        self.metrics.flush_failures.increment(1);
        if error.is_retryable() {
            self.metrics.db_retries.increment(1);
        }
        if kind == FlightKind::Batch {
            let delay = self.backoff.next_delay();
            tracing::warn!(error = %error, retry_in = ?delay, "flush failed; rows kept");
            let at = Instant::now() + delay;
            self.retry_at = Some(at);
            self.wake(at, ctx);
        } else {
            tracing::warn!(error = %error, "entity flush failed; rows kept");
        }
        let message = format!("flush failed, rows kept for retry: {error}");
        let (told, kept): (Vec<_>, Vec<_>) = self
            .waiters
            .drain(..)
            .partition(|w| w.entity.is_none_or(|e| entities.contains(&e)));
        self.waiters = kept;
        for w in told {
            let _ = w.tx.send(Err(DbError::Unavailable(message.clone())));
        }
    }

    fn answer_entity(&mut self, entity: Uuid, error: impl Fn() -> DbError) {
        let (told, kept): (Vec<_>, Vec<_>) = self
            .waiters
            .drain(..)
            .partition(|w| w.entity == Some(entity));
        self.waiters = kept;
        for w in told {
            let _ = w.tx.send(Err(error()));
        }
    }

    fn settle_waiters(&mut self) {
        let backlog = &self.backlog;
        let done = |w: &Waiter| {
            let oldest = match w.entity {
                Some(e) => backlog.oldest_seq_of(e),
                None => backlog.oldest_seq(),
            };
            oldest.is_none_or(|o| o >= w.target)
        };
        let (done, pending): (Vec<_>, Vec<_>) = self.waiters.drain(..).partition(done);
        self.waiters = pending;
        for w in done {
            let _ = w.tx.send(Ok(()));
        }
    }

    /// Wakes the actor when a failed row is due again (or the batch lane's backoff ends), so
    /// waiters are not left to the interval (which may be long).
    fn wake(&mut self, at: Instant, ctx: &mut Context<Self>) {
        if self.wake_at.as_ref().is_some_and(|(t, _)| *t <= at) {
            return;
        }
        if let Some((_, handle)) = self.wake_at.take() {
            ctx.cancel_future(handle);
        }
        let delay = at.saturating_duration_since(Instant::now());
        // Only for waiters: rows nobody waits for are left to the interval, so an entity's
        // retry never drags the node's batch along with it.
        let handle = ctx.run_later(delay, |act, ctx| {
            act.wake_at = None;
            act.kick(ctx);
        });
        self.wake_at = Some((at, handle));
    }

    /// After the backlog changed: gauges, and the high/low water marks (writers waiting for
    /// room are let go once the backlog is down to the low mark).
    fn after_change(&mut self) {
        let len = self.backlog.len();
        if let Some(over) = self.marks.observe(len) {
            if over {
                tracing::warn!(
                    backlog = len,
                    high = self.marks.high,
                    "flush backlog over its high-water mark: writers wait, node not ready"
                );
            } else {
                tracing::info!(
                    backlog = len,
                    low = self.marks.low,
                    "flush backlog back under its low-water mark"
                );
            }
            self.metrics.backpressure.set(if over { 1.0 } else { 0.0 });
        }
        if !self.marks.over() {
            for tx in self.room.drain(..) {
                let _ = tx.send(true);
            }
        }
        self.refresh_gauges();
    }

    fn oldest_unflushed(&self) -> Option<Duration> {
        self.backlog.oldest_since().map(|t| t.elapsed())
    }

    fn refresh_gauges(&mut self) {
        self.metrics.flush_backlog.set(self.backlog.len() as f64);
        let age = self.oldest_unflushed().unwrap_or_default();
        self.metrics.oldest_unflushed.set(age.as_secs_f64());
    }

    /// The open-records gauge counts the whole table (every node's records).
    fn refresh_open_records(&mut self, ctx: &mut Context<Self>) {
        if self.counting {
            self.recount = true;
            return;
        }
        self.counting = true;
        let db = self.db.clone();
        let work = async move { compensation::count(&db).await };
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| {
            act.counting = false;
            if let Ok(n) = result {
                act.metrics.compensation_open.set(n as f64);
            }
            if std::mem::take(&mut act.recount) {
                act.refresh_open_records(ctx);
            }
        }));
    }
}

/// Entity flights at once. Critical writes of different entities wait in parallel up to this;
/// beyond it, entities waiting at the same moment share a flight, so that a burst (a drain
/// hands off every entity at once) costs a few transactions, not one per entity holding a
/// pooled connection each.
const MAX_ENTITY_FLIGHTS: usize = 4;
/// How often the gauges are refreshed while nothing happens (the age grows by itself).
const GAUGE_REFRESH: Duration = Duration::from_secs(1);
/// How often the open compensation records are counted.
const OPEN_RECORDS_REFRESH: Duration = Duration::from_secs(10);

impl Actor for PersistenceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.policy.interval, |act, ctx| act.maybe_flush(ctx));
        ctx.run_interval(GAUGE_REFRESH, |act, _| act.refresh_gauges());
        ctx.run_interval(OPEN_RECORDS_REFRESH, |act, ctx| {
            act.refresh_open_records(ctx)
        });
        self.refresh_open_records(ctx);
    }
}

impl Handler<MarkDirty> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, msg: MarkDirty, ctx: &mut Self::Context) {
        self.backlog.push(msg.row, msg.fence, Instant::now());
        self.after_change();
        if self.backlog.queued() >= self.policy.batch_size {
            self.maybe_flush(ctx);
        }
    }
}

impl Handler<FlushNow> for PersistenceActor {
    type Result = ResponseFuture<Result<(), DbError>>;

    fn handle(&mut self, _: FlushNow, ctx: &mut Self::Context) -> Self::Result {
        self.wait_for(None, ctx)
    }
}

impl Handler<FlushEntity> for PersistenceActor {
    type Result = ResponseFuture<Result<(), DbError>>;

    fn handle(&mut self, msg: FlushEntity, ctx: &mut Self::Context) -> Self::Result {
        self.wait_for(Some(msg.0), ctx)
    }
}

impl PersistenceActor {
    fn wait_for(
        &mut self,
        entity: Option<Uuid>,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<(), DbError>> {
        let (tx, rx) = oneshot::channel();
        self.waiters.push(Waiter {
            entity,
            target: self.backlog.next_seq(),
            tx,
        });
        self.settle_waiters();
        self.kick(ctx);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(DbError::Unavailable("persistence actor stopped".into())))
        })
    }
}

impl Handler<Room> for PersistenceActor {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, _: Room, ctx: &mut Self::Context) -> Self::Result {
        if !self.marks.over() {
            return Box::pin(async { true });
        }
        self.room.retain(|tx| !tx.is_closed());
        let (tx, rx) = oneshot::channel();
        self.room.push(tx);
        self.maybe_flush(ctx);
        let wait = self.writer_wait;
        Box::pin(async move { matches!(tokio::time::timeout(wait, rx).await, Ok(Ok(true))) })
    }
}

impl Handler<Reapply> for PersistenceActor {
    type Result = ResponseFuture<ReapplyOutcome>;

    fn handle(&mut self, msg: Reapply, ctx: &mut Self::Context) -> Self::Result {
        let Some(flight) = self.backlog.take_reapply(msg.row, None, Instant::now()) else {
            return Box::pin(async { ReapplyOutcome::Superseded });
        };
        let (tx, rx) = oneshot::channel();
        self.reapplies.insert(flight.id, tx);
        self.launch(flight, ctx);
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                ReapplyOutcome::Failed(DbError::Unavailable("persistence actor stopped".into()))
            })
        })
    }
}

impl Handler<GetStats> for PersistenceActor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        self.refresh_gauges();
        let mut stats = self.stats.clone();
        stats.backlog = self.backlog.len();
        stats.in_flight = self.backlog.len() - self.backlog.queued();
        stats.oldest_unflushed = self.oldest_unflushed();
        stats.over_high_water = self.marks.over();
        stats.high_water = self.marks.high;
        stats.low_water = self.marks.low;
        MessageResult(stats)
    }
}
