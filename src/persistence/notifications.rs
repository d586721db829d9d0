//! Stored notifications (`notification`, schema/0012): the persistent ones, kept until their
//! player deletes them.
//!
//! Two ways in, both idempotent on the notification's id (`ON CONFLICT (id) DO NOTHING`, so a
//! transaction retried after an unknown commit stores nothing twice):
//! - [`insert_in`], inside the transaction of the change that causes the notification
//!   (an arrival, a battle's settlement): the two commit together or not at all;
//! - [`insert`], on its own, for notifications with no such transaction (the gateway's
//!   bounded store queue, a drain's reconnect notices).

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::{Db, DbError};

/// One stored notification. `content` is the JSON text the client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNotification {
    pub id: Uuid,
    pub user_id: Uuid,
    pub subject: String,
    pub content: String,
    pub code: i32,
    pub sender_id: Option<Uuid>,
    pub create_time: DateTime<Utc>,
}

/// Where a listing stopped: the last notification's creation time and id.
pub type Cursor = (DateTime<Utc>, Uuid);

const INSERT: &str = "INSERT INTO notification (id, user_id, subject, content, code, sender_id, create_time) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int4[], $6::uuid[], $7::timestamptz[]) \
     ON CONFLICT (id) DO NOTHING";

/// The statement's arrays, column by column.
type Columns = (
    Vec<Uuid>,
    Vec<Uuid>,
    Vec<String>,
    Vec<String>,
    Vec<i32>,
    Vec<Option<Uuid>>,
    Vec<DateTime<Utc>>,
);

fn columns(rows: &[StoredNotification]) -> Columns {
    let mut c: Columns = Default::default();
    for r in rows {
        c.0.push(r.id);
        c.1.push(r.user_id);
        // PostgreSQL text cannot hold NUL; content is JSON, where it is always escaped.
        c.2.push(r.subject.replace('\0', ""));
        c.3.push(r.content.replace('\0', ""));
        c.4.push(r.code);
        c.5.push(r.sender_id);
        c.6.push(r.create_time);
    }
    c
}

/// Stores `rows` inside `tx` (the caller's transaction). Returns how many were new.
pub async fn insert_in(tx: &Transaction<'_>, rows: &[StoredNotification]) -> Result<u64, DbError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let c = columns(rows);
    Ok(tx
        .execute(INSERT, &[&c.0, &c.1, &c.2, &c.3, &c.4, &c.5, &c.6])
        .await?)
}

/// Stores `rows` in a transaction of their own (retried on serialization failures). A row
/// whose user no longer exists fails the statement (foreign key): callers drop those.
pub async fn insert(db: &Db, rows: &[StoredNotification]) -> Result<u64, DbError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let rows = rows.to_vec();
    db.transact("store_notifications", move |tx| {
        let rows = rows.clone();
        Box::pin(async move { insert_in(tx, &rows).await })
    })
    .await
}

fn stored(row: &tokio_postgres::Row) -> StoredNotification {
    StoredNotification {
        id: row.get(0),
        user_id: row.get(1),
        subject: row.get(2),
        content: row.get(3),
        code: row.get(4),
        sender_id: row.get(5),
        create_time: row.get(6),
    }
}

const COLUMNS: &str = "id, user_id, subject, content, code, sender_id, create_time";

/// Up to `limit` of `user_id`'s notifications, oldest first, after `after` (keyset paging,
/// stable while notifications are added and deleted).
pub async fn list(
    db: &Db,
    user_id: Uuid,
    limit: i64,
    after: Option<Cursor>,
) -> Result<Vec<StoredNotification>, DbError> {
    let client = db.client().await?;
    let rows = match after {
        None => {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM notification WHERE user_id = $1 \
                         ORDER BY create_time, id LIMIT $2"
                    ),
                    &[&user_id, &limit],
                )
                .await?
        }
        Some((time, id)) => {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM notification WHERE user_id = $1 \
                         AND (create_time, id) > ($3, $4) ORDER BY create_time, id LIMIT $2"
                    ),
                    &[&user_id, &limit, &time, &id],
                )
                .await?
        }
    };
    Ok(rows.iter().map(stored).collect())
}

/// Deletes those of `ids` that belong to `user_id`; how many there were.
pub async fn delete(db: &Db, user_id: Uuid, ids: &[Uuid]) -> Result<u64, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let client = db.client().await?;
    Ok(client
        .execute(
            "DELETE FROM notification WHERE user_id = $1 AND id = ANY($2)",
            &[&user_id, &ids],
        )
        .await?)
}
