//! Carrying out one flush: the rows are written in one transaction; when the server refuses
//! the data of some row (SQLSTATE 22/23), the batch is split by [`Isolator`] until the bad
//! rows are alone, so everything else is written. A bad row is retried later or, once
//! [`PoisonPolicy`] says so, set aside in the `compensation` table. Any other failure stops
//! the flush and keeps the rows not yet written.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::backlog::{Attempt, Isolator, PoisonPolicy, Verdict};
use super::batch::{Entry, RowKey};
use super::retry::Backoff;
use super::{compensation, pg, Db, DbError};

/// How a flight ended, row by row (every entry comes back in exactly one list).
#[derive(Debug)]
pub struct Landing<T> {
    pub written: Vec<RowKey>,
    /// Refused because a newer claim owns the row (the entity must stop).
    pub fenced: Vec<Entry<T>>,
    /// Failed on their own and to be tried again (attempts counted, retry time set).
    pub retry: Vec<(Entry<T>, String)>,
    /// Failed on their own too often: recorded in `compensation` (the record's id).
    pub set_aside: Vec<(Entry<T>, Uuid, String)>,
    /// Failed on their own, when no poison policy applies (a one-shot write).
    pub rejected: Vec<(Entry<T>, DbError)>,
    /// Not tried, because of `error`: kept for a later flush.
    pub kept: Vec<Entry<T>>,
    /// The failure that stopped the flight (database away, timeout …), if one did.
    pub error: Option<DbError>,
    /// Transactions committed.
    pub commits: usize,
}

/// The flush's name in the database write metrics (`op`).
const FLUSH: &str = "flush";

/// Quick retries of a flight after a retryable failure (serialization, lost connection);
/// past them the rows are kept and the caller backs off.
const QUICK_RETRIES: u32 = 3;

enum Fate {
    Untried,
    Written,
    Fenced,
    Bad(DbError),
}

/// Writes `entries`, isolating bad rows; `poison` decides their fate (`None`: report them as
/// rejected). `node_id` names this node in compensation records.
pub async fn run<T>(
    db: &Db,
    node_id: &str,
    entries: Vec<Entry<T>>,
    poison: Option<PoisonPolicy>,
) -> Landing<T> {
    let mut fates: Vec<Fate> = entries.iter().map(|_| Fate::Untried).collect();
    let mut isolator = Isolator::new(entries.len());
    let mut error = None;
    let mut commits = 0;
    let mut backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(100));
    // One write in the metrics: one range's transaction, its quick retries included.
    let mut started = Instant::now();
    while let Some(range) = isolator.next() {
        let rows: Vec<_> = entries[range.clone()].iter().map(|e| &e.row).collect();
        let result = pg::flush(db, &rows).await;
        db.count_attempt(FLUSH, &result);
        match &result {
            // A serialization failure (an entity's flush beside the batch, a critical write)
            // or a dropped connection: a flush is idempotent, so try it again at once, a few
            // times, before making whoever waits for these rows hear about it.
            Err(e) if e.is_retryable() && backoff.attempts() < QUICK_RETRIES => {
                tracing::debug!(error = %e, attempt = backoff.attempts(), "retrying a flush");
                db.metrics().db_retries.increment(1);
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
            _ => db.record_write(FLUSH, started, &result),
        }
        started = Instant::now();
        match result {
            Ok(outcome) => {
                commits += 1;
                let fenced: HashSet<RowKey> = outcome.fenced.into_iter().collect();
                for i in range {
                    fates[i] = if fenced.contains(&entries[i].row.key()) {
                        Fate::Fenced
                    } else {
                        Fate::Written
                    };
                }
                isolator.report(Attempt::Written);
            }
            Err(e) if e.is_bad_row() => {
                if range.len() == 1 {
                    fates[range.start] = Fate::Bad(e);
                }
                isolator.report(Attempt::BadRow);
            }
            Err(e) => {
                isolator.report(Attempt::Stop);
                error = Some(e);
            }
        }
    }
    let mut landing = Landing {
        written: Vec::new(),
        fenced: Vec::new(),
        retry: Vec::new(),
        set_aside: Vec::new(),
        rejected: Vec::new(),
        kept: Vec::new(),
        error,
        commits,
    };
    for (mut entry, fate) in entries.into_iter().zip(fates) {
        match fate {
            Fate::Untried => landing.kept.push(entry),
            Fate::Written => landing.written.push(entry.row.key()),
            Fate::Fenced => landing.fenced.push(entry),
            Fate::Bad(e) => {
                let Some(policy) = poison else {
                    landing.rejected.push((entry, e));
                    continue;
                };
                let message = e.to_string();
                entry.attempts = entry.attempts.saturating_add(1);
                match policy.verdict(entry.attempts) {
                    Verdict::RetryAfter(delay) => {
                        entry.not_before = Some(Instant::now() + delay);
                        landing.retry.push((entry, message));
                    }
                    Verdict::SetAside => {
                        match compensation::set_aside(
                            db,
                            node_id,
                            &entry.row,
                            &message,
                            entry.attempts,
                        )
                        .await
                        {
                            Ok(id) => landing.set_aside.push((entry, id, message)),
                            Err(e) => {
                                // Never dropped: it stays queued and is set aside next time.
                                let why = format!("{message}; setting it aside failed: {e}");
                                entry.not_before = Some(Instant::now() + policy.first_delay);
                                landing.retry.push((entry, why));
                            }
                        }
                    }
                }
            }
        }
    }
    landing
}
