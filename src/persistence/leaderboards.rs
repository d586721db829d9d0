//! Leaderboards and tournaments in the database: board definitions (`leaderboard`), the
//! records of every board and reset bucket (`leaderboard_record`), the batched fenced flush of
//! a Leaderboard actor, and the listing queries used when a board's rank cache is off
//! (blacklisted) or a past bucket is asked for.
//!
//! Times are written as `TIMESTAMPTZ` and handed to callers as unix seconds; `expiry_time` is
//! unix seconds, 0 = never.

use chrono::{DateTime, TimeZone, Utc};
use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::retry::Backoff;
use super::{Db, DbError};

/// A board (leaderboard or tournament) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardRow {
    pub id: String,
    /// Nakama's numbers: 0 ascending, 1 descending.
    pub sort_order: i32,
    /// Nakama's internal numbers: 0 best, 1 set, 2 increment, 3 decrement.
    pub operator: i32,
    pub authoritative: bool,
    pub reset_schedule: Option<String>,
    /// A JSON object, as text.
    pub metadata: String,
    pub enable_ranks: bool,
    pub category: i32,
    pub title: String,
    pub description: String,
    /// Seconds a tournament period stays open.
    pub duration: i32,
    pub start_time: i64,
    /// Unix seconds; 0 = no end.
    pub end_time: i64,
    pub max_size: i32,
    pub max_num_score: i32,
    pub join_required: bool,
    pub is_tournament: bool,
    pub size: i32,
    pub create_time: i64,
}

impl BoardRow {
    /// A plain leaderboard with Nakama's defaults (descending, best, ranks on).
    pub fn leaderboard(id: impl Into<String>) -> BoardRow {
        BoardRow {
            id: id.into(),
            sort_order: 1,
            operator: 0,
            authoritative: false,
            reset_schedule: None,
            metadata: "{}".into(),
            enable_ranks: true,
            category: 0,
            title: String::new(),
            description: String::new(),
            duration: 0,
            start_time: 0,
            end_time: 0,
            max_size: 100_000_000,
            max_num_score: 1_000_000,
            join_required: false,
            is_tournament: false,
            size: 0,
            create_time: 0,
        }
    }
}

/// One record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub expiry: i64,
    pub owner: Uuid,
    pub username: Option<String>,
    pub score: i64,
    pub subscore: i64,
    pub num_score: i32,
    pub max_num_score: i32,
    /// A JSON object, as text.
    pub metadata: String,
    pub create_time: i64,
    pub update_time: i64,
}

const BOARD_COLUMNS: &str =
    "id, sort_order, operator, authoritative, reset_schedule, metadata::TEXT, \
     enable_ranks, category, title, description, duration, start_time, end_time, max_size, \
     max_num_score, join_required, is_tournament, size, create_time";

const RECORD_COLUMNS: &str = "expiry_time, owner_id, username, score, subscore, num_score, \
     max_num_score, metadata::TEXT, create_time, update_time";

fn ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn board_from_row(r: &Row) -> Result<BoardRow, DbError> {
    let start: DateTime<Utc> = r.try_get(11)?;
    let end: Option<DateTime<Utc>> = r.try_get(12)?;
    let created: DateTime<Utc> = r.try_get(18)?;
    Ok(BoardRow {
        id: r.try_get(0)?,
        sort_order: r.try_get(1)?,
        operator: r.try_get(2)?,
        authoritative: r.try_get(3)?,
        reset_schedule: r.try_get(4)?,
        metadata: r.try_get(5)?,
        enable_ranks: r.try_get(6)?,
        category: r.try_get(7)?,
        title: r.try_get(8)?,
        description: r.try_get(9)?,
        duration: r.try_get(10)?,
        start_time: start.timestamp(),
        end_time: end.map_or(0, |e| e.timestamp()),
        max_size: r.try_get(13)?,
        max_num_score: r.try_get(14)?,
        join_required: r.try_get(15)?,
        is_tournament: r.try_get(16)?,
        size: r.try_get(17)?,
        create_time: created.timestamp(),
    })
}

fn record_from_row(r: &Row) -> Result<RecordRow, DbError> {
    let created: DateTime<Utc> = r.try_get(8)?;
    let updated: DateTime<Utc> = r.try_get(9)?;
    Ok(RecordRow {
        expiry: r.try_get(0)?,
        owner: r.try_get(1)?,
        username: r.try_get(2)?,
        score: r.try_get(3)?,
        subscore: r.try_get(4)?,
        num_score: r.try_get(5)?,
        max_num_score: r.try_get(6)?,
        metadata: r.try_get(7)?,
        create_time: created.timestamp(),
        update_time: updated.timestamp(),
    })
}

/// Creates a board unless one with this id exists (Nakama's create is idempotent). Returns the
/// stored board and whether this call created it.
pub async fn create_board(db: &Db, b: &BoardRow) -> Result<(BoardRow, bool), DbError> {
    let client = db.client().await?;
    let end = (b.end_time > 0).then(|| ts(b.end_time));
    let start = ts(b.start_time);
    let sql = format!(
        "INSERT INTO leaderboard (id, sort_order, operator, authoritative, reset_schedule, metadata, \
         enable_ranks, category, title, description, duration, start_time, end_time, max_size, \
         max_num_score, join_required, is_tournament) \
         VALUES ($1, $2, $3, $4, $5, $6::TEXT::JSONB, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (id) DO NOTHING RETURNING {BOARD_COLUMNS}"
    );
    let params: [&(dyn ToSql + Sync); 17] = [
        &b.id,
        &b.sort_order,
        &b.operator,
        &b.authoritative,
        &b.reset_schedule,
        &b.metadata,
        &b.enable_ranks,
        &b.category,
        &b.title,
        &b.description,
        &b.duration,
        &start,
        &end,
        &b.max_size,
        &b.max_num_score,
        &b.join_required,
        &b.is_tournament,
    ];
    if let Some(row) = client.query_opt(&sql, &params).await? {
        return Ok((board_from_row(&row)?, true));
    }
    drop(client);
    let existing = get_board(db, &b.id)
        .await?
        .ok_or_else(|| DbError::NotFound(format!("leaderboard {}", b.id)))?;
    Ok((existing, false))
}

/// The board with this id.
pub async fn get_board(db: &Db, id: &str) -> Result<Option<BoardRow>, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            &format!("SELECT {BOARD_COLUMNS} FROM leaderboard WHERE id = $1"),
            &[&id],
        )
        .await?;
    row.as_ref().map(board_from_row).transpose()
}

/// Every board, ordered by id.
pub async fn list_boards(db: &Db) -> Result<Vec<BoardRow>, DbError> {
    let client = db.client().await?;
    let rows = client
        .query(
            &format!("SELECT {BOARD_COLUMNS} FROM leaderboard ORDER BY id"),
            &[],
        )
        .await?;
    rows.iter().map(board_from_row).collect()
}

/// Deletes the board row; its records are removed by [`purge_records`]. Returns whether a
/// board was deleted.
pub async fn delete_board(db: &Db, id: &str) -> Result<bool, DbError> {
    let client = db.client().await?;
    let n = client
        .execute("DELETE FROM leaderboard WHERE id = $1", &[&id])
        .await?;
    Ok(n > 0)
}

/// Deletes every record of a board, `batch` rows per statement (large deletes in one
/// transaction hurt CockroachDB). Returns how many were deleted.
pub async fn purge_records(db: &Db, id: &str, batch: i64) -> Result<u64, DbError> {
    let mut total = 0;
    loop {
        let client = db.client().await?;
        let n = client
            .execute(
                "DELETE FROM leaderboard_record WHERE leaderboard_id = $1 AND (expiry_time, owner_id) IN \
                 (SELECT expiry_time, owner_id FROM leaderboard_record WHERE leaderboard_id = $1 LIMIT $2)",
                &[&id, &batch],
            )
            .await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

/// Every record of one bucket, in no particular order (the rank cache sorts).
pub async fn load_records(db: &Db, id: &str, expiry: i64) -> Result<Vec<RecordRow>, DbError> {
    let client = db.client().await?;
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = $2"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let params: [&(dyn ToSql + Sync); 2] = [&id, &expiry];
    let stream = client.query_raw(&stmt, params).await?;
    pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(row) = stream.try_next().await? {
        out.push(record_from_row(&row)?);
    }
    Ok(out)
}

/// What one flush of a Leaderboard actor writes.
#[derive(Debug, Clone, Default)]
pub struct FlushBatch {
    /// Records to insert or overwrite (absolute values: the actor is the only writer).
    pub upserts: Vec<RecordRow>,
    /// (expiry, owner) of records to delete.
    pub deletes: Vec<(i64, Uuid)>,
}

impl FlushBatch {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }
}

/// How many times [`flush`] tries a batch before giving up (about 10 s of backoff).
const FLUSH_ATTEMPTS: u32 = 10;

const UPSERT_FROM_FENCE: &str =
    "INSERT INTO leaderboard_record (leaderboard_id, expiry_time, owner_id, username, \
     score, subscore, num_score, max_num_score, metadata, create_time, update_time) \
     SELECT fence.id, d.expiry, d.owner, d.username, d.score, d.subscore, d.num_score, \
            d.max_num_score, d.metadata::JSONB, d.create_time, d.update_time \
     FROM fence, unnest($4::INT8[], $5::UUID[], $6::TEXT[], $7::INT8[], $8::INT8[], $9::INT4[], \
                        $10::INT4[], $11::TEXT[], $12::TIMESTAMPTZ[], $13::TIMESTAMPTZ[]) \
          AS d(expiry, owner, username, score, subscore, num_score, max_num_score, metadata, \
               create_time, update_time) \
     ON CONFLICT (leaderboard_id, expiry_time, owner_id) DO UPDATE SET \
       username = excluded.username, score = excluded.score, subscore = excluded.subscore, \
       num_score = excluded.num_score, max_num_score = excluded.max_num_score, \
       metadata = excluded.metadata, update_time = excluded.update_time";

/// Writes one batch of a board's records, fenced by the board's claim: nothing is written
/// unless `leaderboard` still names (`node`, `epoch`) as owner, and then the answer is
/// [`DbError::Fenced`]. Without deletes the batch is a single statement (the fence is a
/// `SELECT … FOR SHARE` in a CTE: a concurrent claim, an `UPDATE` of the board row, waits
/// until the statement commits, and one that committed first is seen, so nothing is written;
/// several batches of the board may run at once); with deletes it is one transaction. Serialization failures and lost
/// connections are retried with backoff (the batch holds absolute values, so repeating it is
/// harmless).
pub async fn flush(
    db: &Db,
    board: &str,
    node: &str,
    epoch: i64,
    batch: &FlushBatch,
) -> Result<(), DbError> {
    let started = std::time::Instant::now();
    let result = flush_retried(db, board, node, epoch, batch).await;
    db.record_write(FLUSH_OP, started, &result);
    result
}

/// The leaderboard batch's name in the database write metrics (`op`).
const FLUSH_OP: &str = "leaderboard_flush";

async fn flush_retried(
    db: &Db,
    board: &str,
    node: &str,
    epoch: i64,
    batch: &FlushBatch,
) -> Result<(), DbError> {
    let mut backoff = Backoff::database();
    loop {
        let attempt = if batch.deletes.is_empty() {
            flush_upserts(db, board, node, epoch, batch).await
        } else {
            flush_with_deletes(db, board, node, epoch, batch).await
        };
        db.count_attempt(FLUSH_OP, &attempt);
        match attempt {
            Err(e) if e.is_retryable() && backoff.attempts() + 1 < FLUSH_ATTEMPTS => {
                tracing::debug!(board, error = %e, "retrying leaderboard flush");
                db.metrics().db_retries.increment(1);
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(DbError::Fenced(what)) => {
                db.metrics().fenced_writes.increment(1);
                return Err(DbError::Fenced(what));
            }
            other => return other,
        }
    }
}

struct Columns<'a> {
    expiry: Vec<i64>,
    owner: Vec<Uuid>,
    username: Vec<Option<&'a str>>,
    score: Vec<i64>,
    subscore: Vec<i64>,
    num_score: Vec<i32>,
    max_num_score: Vec<i32>,
    metadata: Vec<&'a str>,
    create_time: Vec<DateTime<Utc>>,
    update_time: Vec<DateTime<Utc>>,
}

impl<'a> Columns<'a> {
    fn of(rows: &'a [RecordRow]) -> Columns<'a> {
        Columns {
            expiry: rows.iter().map(|r| r.expiry).collect(),
            owner: rows.iter().map(|r| r.owner).collect(),
            username: rows.iter().map(|r| r.username.as_deref()).collect(),
            score: rows.iter().map(|r| r.score).collect(),
            subscore: rows.iter().map(|r| r.subscore).collect(),
            num_score: rows.iter().map(|r| r.num_score).collect(),
            max_num_score: rows.iter().map(|r| r.max_num_score).collect(),
            metadata: rows.iter().map(|r| r.metadata.as_str()).collect(),
            create_time: rows.iter().map(|r| ts(r.create_time)).collect(),
            update_time: rows.iter().map(|r| ts(r.update_time)).collect(),
        }
    }
}

async fn flush_upserts(
    db: &Db,
    board: &str,
    node: &str,
    epoch: i64,
    batch: &FlushBatch,
) -> Result<(), DbError> {
    let c = Columns::of(&batch.upserts);
    let client = db.client().await?;
    let sql = format!(
        "WITH fence AS (SELECT id FROM leaderboard \
         WHERE id = $1 AND owner_node = $2 AND owner_epoch = $3 FOR SHARE) \
         {UPSERT_FROM_FENCE} RETURNING 1"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let params: [&(dyn ToSql + Sync); 13] = [
        &board,
        &node,
        &epoch,
        &c.expiry,
        &c.owner,
        &c.username,
        &c.score,
        &c.subscore,
        &c.num_score,
        &c.max_num_score,
        &c.metadata,
        &c.create_time,
        &c.update_time,
    ];
    let n = client.execute(&stmt, &params).await?;
    if n == 0 && !batch.upserts.is_empty() {
        return Err(DbError::Fenced(format!("leaderboard {board}")));
    }
    Ok(())
}

async fn flush_with_deletes(
    db: &Db,
    board: &str,
    node: &str,
    epoch: i64,
    batch: &FlushBatch,
) -> Result<(), DbError> {
    let mut client = db.client().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::Serializable)
        .start()
        .await?;
    let owned = tx
        .query_opt(
            "SELECT id FROM leaderboard WHERE id = $1 AND owner_node = $2 AND owner_epoch = $3 \
             FOR SHARE",
            &[&board, &node, &epoch],
        )
        .await?;
    if owned.is_none() {
        return Err(DbError::Fenced(format!("leaderboard {board}")));
    }
    let expiries: Vec<i64> = batch.deletes.iter().map(|d| d.0).collect();
    let owners: Vec<Uuid> = batch.deletes.iter().map(|d| d.1).collect();
    tx.execute(
        "DELETE FROM leaderboard_record WHERE leaderboard_id = $1 AND (expiry_time, owner_id) IN \
         (SELECT e, o FROM unnest($2::INT8[], $3::UUID[]) AS d(e, o))",
        &[&board, &expiries, &owners],
    )
    .await?;
    if !batch.upserts.is_empty() {
        let c = Columns::of(&batch.upserts);
        let sql = format!(
            "WITH fence AS (SELECT id FROM leaderboard WHERE id = $1 AND owner_node = $2 AND owner_epoch = $3) \
             {UPSERT_FROM_FENCE}"
        );
        let params: [&(dyn ToSql + Sync); 13] = [
            &board,
            &node,
            &epoch,
            &c.expiry,
            &c.owner,
            &c.username,
            &c.score,
            &c.subscore,
            &c.num_score,
            &c.max_num_score,
            &c.metadata,
            &c.create_time,
            &c.update_time,
        ];
        tx.execute(&sql, &params).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Stores the size of a board's current bucket (what tournament lists show), fenced by the
/// board's claim.
pub async fn store_size(
    db: &Db,
    board: &str,
    node: &str,
    epoch: i64,
    size: u64,
) -> Result<(), DbError> {
    let size = i32::try_from(size).unwrap_or(i32::MAX);
    let client = db.client().await?;
    let n = client
        .execute(
            "UPDATE leaderboard SET size = $4 WHERE id = $1 AND owner_node = $2 AND owner_epoch = $3",
            &[&board, &node, &epoch, &size],
        )
        .await?;
    if n == 0 {
        return Err(DbError::Fenced(format!("leaderboard {board}")));
    }
    Ok(())
}

/// A position in a board's order: (score, subscore, owner).
pub type OrderKey = (i64, i64, Uuid);

/// One page of a bucket in board order, read from the database (the path for blacklisted
/// boards and past buckets). `after`: resume strictly after (`forward`) or before (`!forward`)
/// that key in board order. Returns up to `limit` rows in the direction of travel.
pub async fn page(
    db: &Db,
    board: &str,
    expiry: i64,
    ascending: bool,
    after: Option<(OrderKey, bool)>,
    limit: i64,
) -> Result<Vec<RecordRow>, DbError> {
    let client = db.client().await?;
    let base = format!(
        "SELECT {RECORD_COLUMNS} FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = $2"
    );
    let asc = " ORDER BY score ASC, subscore ASC, owner_id ASC";
    let desc = " ORDER BY score DESC, subscore DESC, owner_id DESC";
    let rows = match after {
        None => {
            let sql = format!("{base}{} LIMIT $3", if ascending { asc } else { desc });
            client.query(&sql, &[&board, &expiry, &limit]).await?
        }
        Some(((score, subscore, owner), forward)) => {
            // Ascending board going forward == descending board going back: larger keys.
            let larger = ascending == forward;
            let sql = if larger {
                format!("{base} AND (score, subscore, owner_id) > ($4, $5, $6){asc} LIMIT $3")
            } else {
                format!("{base} AND (score, subscore, owner_id) < ($4, $5, $6){desc} LIMIT $3")
            };
            client
                .query(&sql, &[&board, &expiry, &limit, &score, &subscore, &owner])
                .await?
        }
    };
    rows.iter().map(record_from_row).collect()
}

/// The records of `owners` in one bucket (database path).
pub async fn records_of(
    db: &Db,
    board: &str,
    expiry: i64,
    owners: &[Uuid],
) -> Result<Vec<RecordRow>, DbError> {
    let client = db.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM leaderboard_record \
                 WHERE leaderboard_id = $1 AND expiry_time = $2 AND owner_id = ANY($3)"
            ),
            &[&board, &expiry, &owners],
        )
        .await?;
    rows.iter().map(record_from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_in_seconds() {
        assert_eq!(ts(1_700_000_000).timestamp(), 1_700_000_000);
        assert_eq!(ts(0).timestamp(), 0);
    }

    #[test]
    fn default_board_is_nakamas() {
        let b = BoardRow::leaderboard("x");
        assert_eq!((b.sort_order, b.operator, b.enable_ranks), (1, 0, true));
        assert!(!b.is_tournament && !b.authoritative);
    }
}
