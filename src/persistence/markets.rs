//! The live market rows (`market_price_snapshot`): loading a node's market, writing recovery,
//! and the quota change a trade makes inside its own transaction.
//!
//! `quota` is the market's committed stock of a good. It is only ever changed by deltas
//! (`quota = quota + $delta`): the Market actor writes recovery, trades write their own change
//! in the trade transaction, and neither overwrites the other. Every such write bumps `version`
//! and returns the row ([`Committed`]): the Market adopts the newest row it hears of, so the
//! row stays the one truth of the stock (see [`crate::domain::market::ledger`]). `price` is
//! informational (the last reference or trade price); the Market never reads it back.
//! `updated_at` tells a freshly loaded market how much recovery is owed since the last write.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Db, DbError};
pub use crate::domain::market::ledger::Committed;

/// One good of a node's market as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub good: String,
    pub price: i64,
    pub quota: i64,
    pub version: i64,
    /// How long ago (database clock) the row was last written.
    pub age: Duration,
}

/// The recovery of one good to write: `quota = quota + delta`, `price = price`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDelta {
    pub good: String,
    pub delta: i64,
    pub price: i64,
}

/// Every snapshot row of `node`, ordered by good.
pub async fn load(db: &Db, node: &str) -> Result<Vec<SnapshotRow>, DbError> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT good, price, quota, updated_at, now(), version FROM market_price_snapshot \
             WHERE node = $1 ORDER BY good",
            &[&node],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let updated: DateTime<Utc> = r.try_get(3)?;
            let now: DateTime<Utc> = r.try_get(4)?;
            Ok(SnapshotRow {
                good: r.try_get(0)?,
                price: r.try_get(1)?,
                quota: r.try_get(2)?,
                version: r.try_get(5)?,
                age: (now - updated).to_std().unwrap_or_default(),
            })
        })
        .collect()
}

/// Creates the rows of goods the catalog trades at `node` that have none yet (a catalog
/// edited after the default data was seeded): `(good, price, quota)`. Existing rows are kept.
pub async fn seed(db: &Db, node: &str, rows: &[(String, i64, i64)]) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    let goods: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let prices: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let quotas: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let client = db.client().await?;
    client
        .execute(
            "INSERT INTO market_price_snapshot (node, good, price, quota, updated_at) \
             SELECT $1, d.good, d.price, d.quota, now() \
             FROM unnest($2::text[], $3::int8[], $4::int8[]) AS d(good, price, quota) \
             ON CONFLICT (node, good) DO NOTHING",
            &[&node, &goods, &prices, &quotas],
        )
        .await?;
    Ok(())
}

/// Writes recovery deltas for `node` in one transaction, fenced by the market's claim: if
/// `trade_node` is no longer owned by (`owner_node`, `epoch`) nothing is written and the
/// answer is [`DbError::Fenced`]. The row lock on `trade_node` orders this against a
/// concurrent claim. A quota never goes below zero. Answers the rows written.
pub async fn apply_recovery(
    db: &Db,
    node: &str,
    owner_node: &str,
    epoch: i64,
    deltas: &[QuotaDelta],
) -> Result<Vec<(String, Committed)>, DbError> {
    let goods: Vec<String> = deltas.iter().map(|d| d.good.clone()).collect();
    let amounts: Vec<i64> = deltas.iter().map(|d| d.delta).collect();
    let prices: Vec<i64> = deltas.iter().map(|d| d.price).collect();
    let result = db
        .transact("market_recovery", |tx| {
            let (node, owner_node) = (node.to_string(), owner_node.to_string());
            let (goods, amounts, prices) = (goods.clone(), amounts.clone(), prices.clone());
            Box::pin(async move {
                let owned = tx
                    .query_opt(
                        "SELECT owner_epoch FROM trade_node \
                         WHERE code = $1 AND owner_node = $2 AND owner_epoch = $3 FOR UPDATE",
                        &[&node, &owner_node, &epoch],
                    )
                    .await?;
                if owned.is_none() {
                    return Err(DbError::Fenced(format!("trade_node {node}")));
                }
                let rows = tx
                    .query(
                        "UPDATE market_price_snapshot AS m \
                         SET quota = GREATEST(m.quota + d.delta, 0), price = d.price, \
                             version = m.version + 1, updated_at = now() \
                         FROM unnest($2::text[], $3::int8[], $4::int8[]) AS d(good, delta, price) \
                         WHERE m.node = $1 AND m.good = d.good \
                         RETURNING m.good, m.quota, m.version",
                        &[&node, &goods, &amounts, &prices],
                    )
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), committed(r, 1))).collect())
            })
        })
        .await;
    if matches!(result, Err(DbError::Fenced(_))) {
        db.metrics().fenced_writes.increment(1);
    }
    result
}

/// The market side of a trade (`$1` node, `$2` good, `$3` quota delta, `$4` price): no row
/// when the quota would go below zero.
pub const TRADE_SQL: &str = "UPDATE market_price_snapshot \
     SET quota = quota + $3, price = $4, version = version + 1, updated_at = now() \
     WHERE node = $1 AND good = $2 AND quota + $3 >= 0 RETURNING quota, version";

/// `(quota, version)` from columns `at` and `at + 1`.
pub fn committed(row: &tokio_postgres::Row, at: usize) -> Committed {
    Committed {
        quota: row.get(at),
        version: row.get(at + 1),
    }
}

/// The row of one good as it is now, for a market whose view may be stale.
pub async fn read_stock(db: &Db, node: &str, good: &str) -> Result<Option<Committed>, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            "SELECT quota, version FROM market_price_snapshot WHERE node = $1 AND good = $2",
            &[&node, &good],
        )
        .await?;
    Ok(row.map(|r| committed(&r, 0)))
}

/// `(price, quota)` of one good at one node, for tests and the admin view.
pub async fn snapshot(db: &Db, node: &str, good: &str) -> Result<Option<(i64, i64)>, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            "SELECT price, quota FROM market_price_snapshot WHERE node = $1 AND good = $2",
            &[&node, &good],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}
