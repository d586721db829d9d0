//! Idempotency receipts (`request_receipt`): the answer to a state-changing request, written
//! by [`store`] inside the transaction of its change, so that the change and its answer
//! commit together or not at all. A second insert of one (user, request_id) fails with a
//! unique violation, which rolls the whole change back: that is what makes concurrent
//! duplicates apply once, on any node.

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::{Db, DbError};
use crate::request::RequestKey;

/// An answer to store with its change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub key: RequestKey,
    /// The answer as JSON text (the actor's reply, replayed to a repeat).
    pub answer: String,
}

impl Receipt {
    /// The receipt of `answer` under `key`, if the request has a key.
    pub fn of<T: serde::Serialize>(key: Option<&RequestKey>, answer: &T) -> Option<Receipt> {
        let key = key?.clone();
        // Our own types always encode; a failure would only lose idempotency, never data.
        let answer = serde_json::to_string(answer).ok()?;
        Some(Receipt { key, answer })
    }
}

/// A stored receipt as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub fingerprint: String,
    pub answer: String,
}

/// Writes `receipt` in `tx`. An existing receipt for the same key fails the transaction with
/// [`DbError::DuplicateRequest`]: the caller rolls back and answers the stored one.
pub async fn store(tx: &Transaction<'_>, receipt: Option<&Receipt>) -> Result<(), DbError> {
    let Some(r) = receipt else {
        return Ok(());
    };
    let inserted = tx
        .execute(
            "INSERT INTO request_receipt (user_id, request_id, fingerprint, answer) \
             VALUES ($1, $2, $3, $4)",
            &[
                &r.key.user_id,
                &r.key.request_id,
                &r.key.fingerprint,
                &r.answer,
            ],
        )
        .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(DbError::DuplicateRequest),
        Err(e) => Err(e.into()),
    }
}

/// The receipt stored under (user, request_id), if any.
pub async fn find(db: &Db, user_id: Uuid, request_id: &str) -> Result<Option<Stored>, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            "SELECT fingerprint, answer FROM request_receipt WHERE user_id = $1 AND request_id = $2",
            &[&user_id, &request_id],
        )
        .await?;
    Ok(row.map(|r| Stored {
        fingerprint: r.get(0),
        answer: r.get(1),
    }))
}

/// Deletes receipts older than `keep`, in bounded batches (rows far below CockroachDB's
/// transaction limits); returns how many went.
pub async fn sweep(db: &Db, keep: Duration) -> Result<u64, DbError> {
    let client = db.client().await?;
    let secs = keep.as_secs_f64();
    let mut total = 0;
    loop {
        let n = client
            .execute(
                "DELETE FROM request_receipt WHERE (user_id, request_id) IN (\
                 SELECT user_id, request_id FROM request_receipt \
                 WHERE created_at < now() - ($1::FLOAT8 * INTERVAL '1 second') LIMIT 1000)",
                &[&secs],
            )
            .await?;
        total += n;
        if n < 1000 {
            return Ok(total);
        }
    }
}
