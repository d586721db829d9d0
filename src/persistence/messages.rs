//! Messages of the persistence actor, and the one it sends back to entity actors.

use std::time::Duration;

use actix::{Message, Recipient};

use super::batch::{DirtyRow, RowKey};
use super::DbError;

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

/// Answered once everything queued before it has been committed (or fenced).
#[derive(Message, Debug)]
#[rtype(result = "Result<(), DbError>")]
pub struct FlushNow;

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
}
