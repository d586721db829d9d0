//! The `compensation` table: dirty rows set aside after failing on their own (constraint, bad
//! data) too many times, so that they no longer hold up their node's flushes. One open record
//! per row key; the payload is the row as JSON text, so it can be written again unchanged.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::batch::{DirtyRow, RowKey};
use super::{Db, DbError};

/// One set-aside row.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: Uuid,
    /// The node that set it aside.
    pub node_id: String,
    pub table: String,
    pub row_id: Uuid,
    pub row_sub: String,
    /// The row as JSON text (see [`Record::row`]).
    pub payload: String,
    /// The last error writing it.
    pub error: String,
    /// How many times writing it failed, retries by an operator included.
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Record {
    /// The row to write again; an error when the payload is not a row this build knows.
    pub fn row(&self) -> Result<DirtyRow, String> {
        serde_json::from_str(&self.payload).map_err(|e| format!("payload is not a row: {e}"))
    }

    /// The payload as a JSON value, for listing.
    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|_| serde_json::Value::String(self.payload.clone()))
    }
}

/// The second part of a key as stored: text columns cannot hold NUL, and a row whose key has
/// one (bad data) must still be recordable.
fn stored_sub(key: &RowKey) -> String {
    key.sub.replace('\0', "\\0")
}

const COLUMNS: &str =
    "id, node_id, row_table, row_id, row_sub, payload, error, attempts, created_at, updated_at";

fn record(r: &tokio_postgres::Row) -> Record {
    Record {
        id: r.get(0),
        node_id: r.get(1),
        table: r.get(2),
        row_id: r.get(3),
        row_sub: r.get(4),
        payload: r.get(5),
        error: r.get(6),
        attempts: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
    }
}

/// Sets `row` aside with its error and failure count; a record of the same row key is
/// replaced (the newer version is the one that matters) and its count added to. Returns the
/// record's id. Idempotent enough to repeat after an unknown outcome: the same key, one record.
pub async fn set_aside(
    db: &Db,
    node_id: &str,
    row: &DirtyRow,
    error: &str,
    attempts: u32,
) -> Result<Uuid, DbError> {
    let key = row.key();
    // Our own row types always encode.
    let payload = serde_json::to_string(row).map_err(|e| DbError::Rejected(e.to_string()))?;
    let client = db.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO compensation (node_id, row_table, row_id, row_sub, payload, error, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (row_table, row_id, row_sub) DO UPDATE SET \
                 node_id = excluded.node_id, payload = excluded.payload, error = excluded.error, \
                 attempts = compensation.attempts + excluded.attempts, updated_at = now() \
             RETURNING id",
        )
        .await?;
    let row = client
        .query_one(
            &stmt,
            &[
                &node_id,
                &key.table.name(),
                &key.id,
                &stored_sub(&key),
                &payload,
                &error.replace('\0', "\\0"),
                &i64::from(attempts),
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// Where a page ends: the last record's creation time and id. A position, not a record, so
/// paging goes on even when that record was retried or discarded meanwhile.
pub type Cursor = (DateTime<Utc>, Uuid);

/// Up to `limit` records, oldest first, after `after` (keyset paging: stable while records
/// are added and removed).
pub async fn list(db: &Db, limit: i64, after: Option<Cursor>) -> Result<Vec<Record>, DbError> {
    let client = db.client().await?;
    let rows = match after {
        None => {
            client
                .query(
                    &format!("SELECT {COLUMNS} FROM compensation ORDER BY created_at, id LIMIT $1"),
                    &[&limit],
                )
                .await?
        }
        Some((created_at, id)) => {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM compensation WHERE (created_at, id) > ($2, $3) \
                         ORDER BY created_at, id LIMIT $1"
                    ),
                    &[&limit, &created_at, &id],
                )
                .await?
        }
    };
    Ok(rows.iter().map(record).collect())
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Record>, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM compensation WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(record))
}

/// Deletes a record; whether it was there.
pub async fn delete(db: &Db, id: Uuid) -> Result<bool, DbError> {
    let client = db.client().await?;
    Ok(client
        .execute("DELETE FROM compensation WHERE id = $1", &[&id])
        .await?
        == 1)
}

/// A retry of the record failed: keep it with the new error, one more attempt counted.
pub async fn record_failure(db: &Db, id: Uuid, error: &str) -> Result<bool, DbError> {
    let client = db.client().await?;
    Ok(client
        .execute(
            "UPDATE compensation SET error = $2, attempts = attempts + 1, updated_at = now() \
             WHERE id = $1",
            &[&id, &error.replace('\0', "\\0")],
        )
        .await?
        == 1)
}

/// Deletes the records of rows a later flush has written: a dirty row is a whole snapshot of
/// its columns, so the newer version written supersedes the one set aside (writing the old
/// one again would only roll the row back). Returns how many went.
pub async fn supersede(db: &Db, keys: &[RowKey]) -> Result<u64, DbError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let tables: Vec<&str> = keys.iter().map(|k| k.table.name()).collect();
    let ids: Vec<Uuid> = keys.iter().map(|k| k.id).collect();
    let subs: Vec<String> = keys.iter().map(stored_sub).collect();
    let client = db.client().await?;
    Ok(client
        .execute(
            "DELETE FROM compensation WHERE (row_table, row_id, row_sub) IN \
             (SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[]))",
            &[&tables, &ids, &subs],
        )
        .await?)
}

/// How many records are open (all nodes).
pub async fn count(db: &Db) -> Result<i64, DbError> {
    let client = db.client().await?;
    Ok(client
        .query_one("SELECT count(*) FROM compensation", &[])
        .await?
        .get(0))
}
