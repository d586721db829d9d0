//! Revoked token ids (logout, and refresh tokens used up by a refresh), each kept until the
//! token it names would have expired anyway.
//!
//! Nodes keep the set in memory and read it here only at start and when catching up:
//! [`since`] answers the rows revoked since a watermark of the database's clock, and the
//! clock's reading in the same statement, so the next watermark comes from the same clock as
//! `revoked_at` (no skew between nodes).

use chrono::{DateTime, Utc};

use super::{Db, DbError};

/// One revoked token: its id and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub tid: String,
    pub expires_at: DateTime<Utc>,
}

/// Revokes `tokens` (already revoked ones stay as they are).
pub async fn revoke(db: &Db, tokens: &[Revoked]) -> Result<(), DbError> {
    if tokens.is_empty() {
        return Ok(());
    }
    let tids: Vec<&str> = tokens.iter().map(|t| t.tid.as_str()).collect();
    let expiries: Vec<DateTime<Utc>> = tokens.iter().map(|t| t.expires_at).collect();
    let client = db.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO revoked_token (tid, expires_at, revoked_at)
             SELECT t.tid, t.expires_at, now()
             FROM unnest($1::TEXT[], $2::TIMESTAMPTZ[]) AS t (tid, expires_at)
             ON CONFLICT (tid) DO NOTHING",
        )
        .await?;
    client.execute(&stmt, &[&tids, &expiries]).await?;
    Ok(())
}

/// Revokes a refresh token as it is used and answers the user's current username: `None`
/// when the token was revoked already (used by another refresh, or logged out), so each
/// refresh token refreshes once even when two refreshes race on different nodes. `Some(None)`:
/// the token is now revoked but the user no longer exists.
pub async fn consume(
    db: &Db,
    token: &Revoked,
    user_id: uuid::Uuid,
) -> Result<Option<Option<String>>, DbError> {
    let client = db.client().await?;
    let stmt = client
        .prepare_cached(
            "WITH r AS (
                INSERT INTO revoked_token (tid, expires_at, revoked_at) VALUES ($1, $2, now())
                ON CONFLICT (tid) DO NOTHING
                RETURNING tid
             )
             SELECT (SELECT count(*) FROM r), (SELECT username FROM users WHERE id = $3)",
        )
        .await?;
    let row = client
        .query_one(&stmt, &[&token.tid, &token.expires_at, &user_id])
        .await?;
    let inserted: i64 = row.try_get(0)?;
    Ok((inserted > 0).then(|| row.try_get(1)).transpose()?)
}

/// The unexpired tokens revoked at or after `watermark` (all of them when `None`), and the
/// database's clock when it read them.
pub async fn since(
    db: &Db,
    watermark: Option<DateTime<Utc>>,
) -> Result<(Vec<Revoked>, DateTime<Utc>), DbError> {
    let from = watermark.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let client = db.client().await?;
    // The left join answers the clock even when no row matches.
    let stmt = client
        .prepare_cached(
            "SELECT now(), r.tid, r.expires_at
             FROM (SELECT 1) AS one
             LEFT JOIN revoked_token r ON r.revoked_at >= $1 AND r.expires_at > now()",
        )
        .await?;
    let rows = client.query(&stmt, &[&from]).await?;
    let mut now = Utc::now();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        now = row.try_get(0)?;
        if let Some(tid) = row.try_get::<_, Option<String>>(1)? {
            out.push(Revoked {
                tid,
                expires_at: row.try_get(2)?,
            });
        }
    }
    Ok((out, now))
}

/// Deletes up to `limit` rows of tokens that have expired; answers how many.
pub async fn prune(db: &Db, limit: i64) -> Result<u64, DbError> {
    let client = db.client().await?;
    Ok(client
        .execute(
            "DELETE FROM revoked_token WHERE tid IN (
                SELECT tid FROM revoked_token WHERE expires_at < now() LIMIT $1)",
            &[&limit],
        )
        .await?)
}
