//! The persistence actor, one per node: it queues dirty rows (coalesced by row key), flushes
//! them on size or interval, one flush in flight at a time, and never drops a row that failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::batch::{Coalescer, Entry};
use super::messages::{Fenced, FlushNow, GetStats, MarkDirty, PersistenceStats};
use super::pg::{self, FlushOutcome};
use super::retry::Backoff;
use super::{Db, DbError};
use crate::admin::metrics::Metrics;

type Tag = Option<Recipient<Fenced>>;

/// Settings of the flush loop.
#[derive(Debug, Clone)]
pub struct FlushPolicy {
    pub interval: Duration,
    pub batch_size: usize,
}

pub struct PersistenceActor {
    db: Db,
    policy: FlushPolicy,
    metrics: Arc<Metrics>,
    queue: Coalescer<Tag>,
    /// Oldest sequence number in the flush under way, if one is.
    in_flight: Option<(u64, usize)>,
    backoff: Backoff,
    retry_at: Option<Instant>,
    /// `flush_now` callers: answered once nothing older than their sequence number is left.
    waiters: Vec<(u64, oneshot::Sender<Result<(), DbError>>)>,
    stats: PersistenceStats,
}

impl PersistenceActor {
    pub fn new(db: Db, policy: FlushPolicy) -> Self {
        let metrics = db.metrics().clone();
        PersistenceActor {
            db,
            policy,
            metrics,
            queue: Coalescer::new(),
            in_flight: None,
            backoff: Backoff::database(),
            retry_at: None,
            waiters: Vec::new(),
            stats: PersistenceStats::default(),
        }
    }

    fn backlog(&self) -> usize {
        self.queue.len() + self.in_flight.map_or(0, |(_, n)| n)
    }

    fn oldest_outstanding(&self) -> Option<u64> {
        match (self.queue.oldest(), self.in_flight.map(|(s, _)| s)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn maybe_flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight.is_some() || self.queue.is_empty() {
            return;
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let entries = self.queue.take(self.policy.batch_size);
        let oldest = entries.iter().map(|e| e.first_seq).min().unwrap_or(0);
        self.in_flight = Some((oldest, entries.len()));
        let db = self.db.clone();
        let started = Instant::now();
        let fut = async move {
            let rows: Vec<_> = entries.iter().map(|e| &e.row).collect();
            let result = pg::flush(&db, &rows).await;
            (entries, result)
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(move |(entries, result), act, ctx| {
                    act.in_flight = None;
                    match result {
                        Ok(outcome) => act.flushed(entries, outcome, started.elapsed()),
                        Err(e) => act.failed(entries, e),
                    }
                    act.settle_waiters();
                    act.metrics.flush_backlog.set(act.backlog() as f64);
                    if act.queue.len() >= act.policy.batch_size
                        || (!act.waiters.is_empty() && act.retry_at.is_none())
                    {
                        act.maybe_flush(ctx);
                    }
                }),
        );
    }

    fn flushed(&mut self, entries: Vec<Entry<Tag>>, outcome: FlushOutcome, latency: Duration) {
        self.backoff.reset();
        self.retry_at = None;
        self.stats.flushes += 1;
        self.stats.rows_written += outcome.written as u64;
        self.stats.fenced += outcome.fenced.len() as u64;
        self.stats.last_flush_latency = Some(latency);
        self.metrics.rows_written.increment(outcome.written as u64);
        self.metrics
            .fenced_writes
            .increment(outcome.fenced.len() as u64);
        self.metrics.flush_latency.record(latency.as_secs_f64());
        if outcome.fenced.is_empty() {
            return;
        }
        for entry in entries {
            let key = entry.row.key();
            if outcome.fenced.contains(&key) {
                tracing::warn!(?key, "dirty write fenced: a newer claim owns the row");
                if let Some(recipient) = entry.tag {
                    recipient.do_send(Fenced { key });
                }
            }
        }
    }

    fn failed(&mut self, entries: Vec<Entry<Tag>>, error: DbError) {
        let delay = self.backoff.next_delay();
        tracing::warn!(error = %error, rows = entries.len(), retry_in = ?delay, "flush failed; rows kept");
        self.stats.failed_flushes += 1;
        self.stats.last_error = Some(error.to_string());
        self.metrics.flush_failures.increment(1);
        if error.is_retryable() {
            self.metrics.db_retries.increment(1);
        }
        self.retry_at = Some(Instant::now() + delay);
        self.queue.restore(entries);
        // Whoever waits on a flush hears about the failure now (the rows stay queued and are
        // retried): a caller that must not go on without its rows written can act on it.
        for (_, tx) in self.waiters.drain(..) {
            let _ = tx.send(Err(DbError::Unavailable(format!(
                "flush failed, rows kept for retry: {error}"
            ))));
        }
    }

    fn settle_waiters(&mut self) {
        let oldest = self.oldest_outstanding();
        let (done, pending): (Vec<_>, Vec<_>) = self
            .waiters
            .drain(..)
            .partition(|(target, _)| oldest.is_none_or(|o| o >= *target));
        self.waiters = pending;
        for (_, tx) in done {
            let _ = tx.send(Ok(()));
        }
    }
}

impl Actor for PersistenceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.policy.interval, |act, ctx| act.maybe_flush(ctx));
    }
}

impl Handler<MarkDirty> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, msg: MarkDirty, ctx: &mut Self::Context) {
        self.queue.push(msg.row, msg.fence);
        self.metrics.flush_backlog.set(self.backlog() as f64);
        if self.queue.len() >= self.policy.batch_size {
            self.maybe_flush(ctx);
        }
    }
}

impl Handler<FlushNow> for PersistenceActor {
    type Result = ResponseFuture<Result<(), DbError>>;

    fn handle(&mut self, _: FlushNow, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.waiters.push((self.queue.next_seq(), tx));
        self.settle_waiters();
        self.maybe_flush(ctx);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(DbError::Unavailable("persistence actor stopped".into())))
        })
    }
}

impl Handler<GetStats> for PersistenceActor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        let mut stats = self.stats.clone();
        stats.backlog = self.backlog();
        MessageResult(stats)
    }
}

/// Asks for a flush and waits for it, asking again after a failed attempt (the rows stay
/// queued), until everything queued before the call is committed or `limit` has passed.
pub async fn flush_now(
    persistence: &Addr<PersistenceActor>,
    limit: Duration,
) -> Result<(), DbError> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let last = match tokio::time::timeout(left, persistence.send(FlushNow)).await {
            Ok(Ok(Ok(()))) => return Ok(()),
            Ok(Ok(Err(e))) => e,
            Ok(Err(_)) => return Err(DbError::Unavailable("persistence actor stopped".into())),
            Err(_) => DbError::Unavailable(format!("flush did not complete within {limit:?}")),
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(
            Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }
}
