//! Messages of the persistence actor, and the one it sends back to entity actors.

use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Message, Recipient};
use uuid::Uuid;

use super::batch::{DirtyRow, RowKey};
use super::{DbError, PersistenceActor};

/// Sent to an entity actor when a write it made was refused because a newer claim owns the
/// row: the actor must stop and drop its memory.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Fenced {
    pub key: RowKey,
}

/// Queue a row to be written in a later batch. `fence` hears about it if the write is fenced.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MarkDirty {
    pub row: DirtyRow,
    pub fence: Option<Recipient<Fenced>>,
}

/// Answered once everything queued before it has been committed (or fenced, or set aside):
/// the node-wide flush, for a drain or an operator.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), DbError>")]
pub struct FlushNow;

/// Writes one entity's queued rows at once (not waiting for the flush interval, nor for any
/// other entity's rows) and is answered once everything the entity queued before it is
/// committed or fenced: what a critical write of that entity waits for. An error when one of
/// its rows could not be written (kept and retried, or set aside).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<(), DbError>")]
pub struct FlushEntity(pub Uuid);

/// Answered once the backlog has room (it is below its low-water mark), or with `false` when
/// the writer's wait limit passed first. A writer sends it after its rows and handles nothing
/// else until answered: that is the backpressure. Its rows are queued already; nothing is
/// ever dropped.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "bool")]
pub struct Room;

/// Backpressure for an actor that has just queued dirty rows: its mailbox takes no other
/// message until the node's backlog has room (at once, unless it is over its high-water mark;
/// bounded by the writer wait).
pub fn wait_for_room<A>(persistence: &Addr<PersistenceActor>, ctx: &mut Context<A>)
where
    A: Actor<Context = Context<A>>,
{
    ctx.wait(actix::fut::wrap_future(persistence.send(Room)).map(|_, _: &mut A, _| ()));
}

/// Writes a set-aside row again through the normal flush (same statements, same fencing),
/// once, without retrying it or setting it aside again.
#[derive(Message, Debug)]
#[rtype(result = "ReapplyOutcome")]
pub struct Reapply {
    pub row: DirtyRow,
}

/// What became of a [`Reapply`].
#[derive(Debug)]
pub enum ReapplyOutcome {
    Written,
    /// A newer version of the row is queued or being written on this node: it wins.
    Superseded,
    /// A newer claim owns the row: this version can never be written.
    Fenced,
    Failed(DbError),
}

/// Asks for the actor's figures.
#[derive(Message, Debug)]
#[rtype(result = "PersistenceStats")]
pub struct GetStats;

/// What the persistence actor reports about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistenceStats {
    /// Rows queued and not yet committed (including those of the flush in flight).
    pub backlog: usize,
    pub flushes: u64,
    pub rows_written: u64,
    pub fenced: u64,
    pub failed_flushes: u64,
    pub last_flush_latency: Option<Duration>,
    pub last_error: Option<String>,
    /// Flushes of one entity's rows.
    pub entity_flushes: u64,
    /// Rows set aside into `compensation` by this node.
    pub set_aside: u64,
    /// Rows of the backlog in flushes under way.
    pub in_flight: usize,
    /// Age of the oldest change not yet committed (what a crash would lose).
    pub oldest_unflushed: Option<Duration>,
    /// Whether the backlog went over its high-water mark and has not yet come down to the
    /// low one: writers wait and the node is not ready.
    pub over_high_water: bool,
    pub high_water: usize,
    pub low_water: usize,
}

/// Asks for a node-wide flush and waits for it, asking again after a failed attempt (the
/// rows stay queued), until everything queued before the call is committed or `limit` has
/// passed.
pub async fn flush_now(
    persistence: &Addr<PersistenceActor>,
    limit: Duration,
) -> Result<(), DbError> {
    ask_until_flushed(persistence, limit, || FlushNow).await
}

/// [`flush_now`] for one entity's rows only ([`FlushEntity`]).
pub async fn flush_entity(
    persistence: &Addr<PersistenceActor>,
    entity: uuid::Uuid,
    limit: Duration,
) -> Result<(), DbError> {
    ask_until_flushed(persistence, limit, || FlushEntity(entity)).await
}

async fn ask_until_flushed<M>(
    persistence: &Addr<PersistenceActor>,
    limit: Duration,
    message: impl Fn() -> M,
) -> Result<(), DbError>
where
    M: actix::Message<Result = Result<(), DbError>> + Send + 'static,
    PersistenceActor: actix::Handler<M>,
    <PersistenceActor as actix::Actor>::Context: actix::dev::ToEnvelope<PersistenceActor, M>,
{
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let last = match tokio::time::timeout(left, persistence.send(message())).await {
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
