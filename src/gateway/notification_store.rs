//! Writes persistent notifications that have no transaction of their own, without making
//! the sender wait: a bounded queue and one writer task per node.
//!
//! Where a notification comes from a state change that has a transaction (an arrival, a
//! battle's settlement), it is written in that transaction instead
//! ([`crate::persistence::notifications::insert_in`]) and only pushed afterwards
//! ([`super::Notifier::push`]): stored if and only if the change committed.
//!
//! The queue's guarantees, for everything else ([`super::Notifier::notify`] with
//! `persistent: true`):
//! - [`NotificationStore::enqueue`] never blocks: with the queue full ([`QUEUE_CAPACITY`]
//!   notifications waiting) the notification is delivered live but not stored; it is counted
//!   in `serai_notifications_unstored_total{reason="queue_full"}` and logged.
//! - The writer takes up to [`BATCH`] at a time and writes them in one statement, retrying a
//!   failed write [`ATTEMPTS`] times with backoff; after that the batch is dropped
//!   (`reason="write_failed"`) so a database outage cannot grow memory without bound.
//! - On a graceful stop the node calls [`NotificationStore::flush`], which returns once
//!   everything queued before it is written. On a crash what is still queued (at most the
//!   queue's capacity) is lost: the live push may have reached the player, the stored copy
//!   does not exist.

use std::time::Duration;

use metrics::Counter;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::persistence::notifications::{self as store, StoredNotification};
use crate::persistence::Db;
use crate::protocol::client::Notification;

/// Notifications waiting to be written, at most.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Notifications written per statement, at most.
pub const BATCH: usize = 500;
/// Attempts at writing one batch before it is dropped.
pub const ATTEMPTS: u32 = 3;

enum Job {
    Store(StoredNotification),
    Flush(oneshot::Sender<()>),
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct NotificationStore {
    queue: mpsc::Sender<Job>,
    stored: Counter,
    queue_full: Counter,
}

/// The row of `notification` for `user_id`: its id must be a UUID (every id this node makes
/// is), the sender's too when there is one.
pub fn to_stored(user_id: Uuid, n: &Notification) -> Option<StoredNotification> {
    Some(StoredNotification {
        id: Uuid::parse_str(&n.id).ok()?,
        user_id,
        subject: n.subject.clone(),
        content: n.content.clone(),
        code: n.code,
        sender_id: match n.sender_id.as_str() {
            "" => None,
            s => Some(Uuid::parse_str(s).ok()?),
        },
        create_time: n.create_time,
    })
}

/// A stored notification as the client sees it.
pub fn to_wire(row: &StoredNotification) -> Notification {
    Notification {
        id: row.id.to_string(),
        subject: row.subject.clone(),
        content: row.content.clone(),
        code: row.code,
        sender_id: row.sender_id.map(|s| s.to_string()).unwrap_or_default(),
        create_time: row.create_time,
        persistent: true,
    }
}

impl NotificationStore {
    /// Starts the writer on the current runtime.
    pub fn start(db: Db) -> NotificationStore {
        NotificationStore::start_with(db, QUEUE_CAPACITY)
    }

    /// [`NotificationStore::start`] with another queue bound (tests fill a small one).
    pub fn start_with(db: Db, capacity: usize) -> NotificationStore {
        let metrics = db.metrics().clone();
        let (queue, jobs) = mpsc::channel(capacity.max(1));
        let unstored =
            |reason| metrics.counter("serai_notifications_unstored_total", "reason", reason);
        let store = NotificationStore {
            queue,
            stored: metrics.counter("serai_notifications_stored_total", "path", "queue"),
            queue_full: unstored("queue_full"),
        };
        tokio::spawn(write_loop(
            db,
            jobs,
            store.stored.clone(),
            unstored("write_failed"),
        ));
        store
    }

    /// Queues `n` for `user_id`; never waits. False when it will not be stored (queue full,
    /// writer gone, or an id that is not a UUID).
    pub fn enqueue(&self, user_id: Uuid, n: &Notification) -> bool {
        let Some(row) = to_stored(user_id, n) else {
            tracing::warn!(id = %n.id, "persistent notification with a non-UUID id not stored");
            return false;
        };
        match self.queue.try_send(Job::Store(row)) {
            Ok(()) => true,
            Err(_) => {
                self.queue_full.increment(1);
                tracing::warn!(%user_id, subject = %n.subject, "notification store queue full: delivered live only");
                false
            }
        }
    }

    /// Waits, at most `within`, until everything queued before this call is written (or
    /// dropped after its attempts). False on the deadline.
    pub async fn flush(&self, within: Duration) -> bool {
        let (done, written) = oneshot::channel();
        let asked =
            async { self.queue.send(Job::Flush(done)).await.is_ok() && written.await.is_ok() };
        tokio::time::timeout(within, asked).await.unwrap_or(false)
    }
}

async fn write_loop(db: Db, mut jobs: mpsc::Receiver<Job>, stored: Counter, write_failed: Counter) {
    while let Some(first) = jobs.recv().await {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Store(row) => batch.push(row),
                Job::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < BATCH {
                jobs.try_recv().ok()
            } else {
                None
            };
        }
        write_batch(&db, &batch, &stored, &write_failed).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn write_batch(db: &Db, batch: &[StoredNotification], stored: &Counter, failed: &Counter) {
    if batch.is_empty() {
        return;
    }
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        match store::insert(db, batch).await {
            Ok(n) => {
                stored.increment(n);
                return;
            }
            // One row the database refuses (its user was deleted meanwhile: foreign key)
            // must not cost the others their place: write them one by one.
            Err(e) if e.is_bad_row() && batch.len() > 1 => {
                for row in batch {
                    match store::insert(db, std::slice::from_ref(row)).await {
                        Ok(n) => stored.increment(n),
                        Err(e) => {
                            failed.increment(1);
                            tracing::warn!(error = %e, id = %row.id, "notification refused by the database");
                        }
                    }
                }
                return;
            }
            Err(e) if attempt == ATTEMPTS => {
                failed.increment(batch.len() as u64);
                tracing::error!(error = %e, count = batch.len(), "notifications not stored after {ATTEMPTS} attempts");
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "storing notifications failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
        }
    }
}
