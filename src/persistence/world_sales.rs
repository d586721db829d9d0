//! Limited-time sales: their rows, stock and per-character purchases.
//!
//! The purchase itself ([`buy`]) is one transaction of the buyer's session: its gold (fenced
//! by its epoch), its cargo, the sale's `sold` guarded by the stock, the buyer's purchase row
//! guarded by the limit, and the receipt. The two guards make the database the last word: a
//! sale owner with a stale view (two owners during a failover) can only see a purchase
//! refused, never oversell or exceed a limit.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::characters::{change_gold, count_fenced};
use super::receipts::{self, Receipt};
use super::{Db, DbError};
use crate::domain::world::sale::{Committed, SaleSpec};

/// A sale as stored, with its units sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRow {
    pub spec: SaleSpec,
    pub sold: i64,
}

/// What [`create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Inserted(SaleRow),
    /// The same sale existed already (a repeated request).
    Same(SaleRow),
    /// Another sale has this id.
    Different(SaleRow),
}

const COLUMNS: &str = "id, node, good, stock, sold, price, per_character_limit, starts_at, ends_at";

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn row(r: &Row) -> SaleRow {
    let at = |i: usize| r.get::<_, DateTime<Utc>>(i).timestamp_millis();
    SaleRow {
        spec: SaleSpec {
            id: r.get(0),
            node: r.get(1),
            good: r.get(2),
            stock: r.get(3),
            price: r.get(5),
            per_character_limit: r.get(6),
            starts_at_ms: at(7),
            ends_at_ms: at(8),
        },
        sold: r.get(4),
    }
}

/// Schedules a sale; idempotent by id (see [`Created`]).
pub async fn create(db: &Db, s: &SaleSpec) -> Result<Created, DbError> {
    let client = db.client().await?;
    let (starts, ends) = (time(s.starts_at_ms), time(s.ends_at_ms));
    let params: [&(dyn ToSql + Sync); 8] = [
        &s.id,
        &s.node,
        &s.good,
        &s.stock,
        &s.price,
        &s.per_character_limit,
        &starts,
        &ends,
    ];
    let inserted = client
        .query_opt(
            &format!(
                "INSERT INTO world_sale (id, node, good, stock, price, per_character_limit, starts_at, ends_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}"
            ),
            &params,
        )
        .await?;
    if let Some(r) = inserted {
        return Ok(Created::Inserted(row(&r)));
    }
    let existing = get(db, &s.id)
        .await?
        .ok_or_else(|| DbError::Unavailable("the sale vanished while created".into()))?;
    Ok(match existing.spec == *s {
        true => Created::Same(existing),
        false => Created::Different(existing),
    })
}

/// One sale, if it exists.
pub async fn get(db: &Db, id: &str) -> Result<Option<SaleRow>, DbError> {
    let client = db.client().await?;
    let r = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM world_sale WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(r.as_ref().map(row))
}

/// Every sale, newest window first (bounded: an operator's list, not a player's).
pub async fn list(db: &Db) -> Result<Vec<SaleRow>, DbError> {
    let client = db.client().await?;
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM world_sale ORDER BY starts_at DESC, id LIMIT 1000"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(row).collect())
}

/// A sale with every character's bought units: what its owner loads.
pub async fn load(db: &Db, id: &str) -> Result<Option<(SaleRow, HashMap<Uuid, i64>)>, DbError> {
    let Some(sale) = get(db, id).await? else {
        return Ok(None);
    };
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT character_id, quantity FROM world_sale_purchase WHERE sale_id = $1",
            &[&id],
        )
        .await?;
    let bought = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(Some((sale, bought)))
}

/// The sale's `sold` and one character's bought units, as stored now.
pub async fn read_rows(db: &Db, id: &str, character: Uuid) -> Result<Committed, DbError> {
    let client = db.client().await?;
    let r = client
        .query_one(
            "SELECT (SELECT sold FROM world_sale WHERE id = $1), \
             (SELECT quantity FROM world_sale_purchase WHERE sale_id = $1 AND character_id = $2)",
            &[&id, &character],
        )
        .await?;
    Ok(Committed {
        sold: r.get::<_, Option<i64>>(0).unwrap_or(0),
        bought: r.get::<_, Option<i64>>(1).unwrap_or(0),
    })
}

/// One purchase to write.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub sale_id: String,
    pub character_id: Uuid,
    /// The buyer's claim epoch.
    pub epoch: i64,
    pub good: String,
    pub quantity: i64,
    pub total: i64,
    pub limit: i64,
}

/// The receipt of a purchase's answer, built from the rows it left (the answer tells the
/// stock left, which only the transaction knows).
pub type Answer = Arc<dyn Fn(&Bought) -> Option<Receipt> + Send + Sync>;

/// A committed purchase: the buyer's gold and units of the good held, and the sale's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bought {
    pub gold: i64,
    pub held: i64,
    pub rows: Committed,
}

const SOLD_SQL: &str = "UPDATE world_sale SET sold = sold + $2 \
     WHERE id = $1 AND sold + $2 <= stock RETURNING sold";

const PURCHASE_SQL: &str = "INSERT INTO world_sale_purchase (sale_id, character_id, quantity) \
     SELECT $1::TEXT, $2::UUID, $3::INT8 WHERE $3::INT8 <= $4::INT8 \
     ON CONFLICT (sale_id, character_id) DO UPDATE SET quantity = world_sale_purchase.quantity + EXCLUDED.quantity \
     WHERE world_sale_purchase.quantity + EXCLUDED.quantity <= $4 RETURNING quantity";

const CARGO_SQL: &str = "INSERT INTO caravan_cargo (character_id, good, quantity) VALUES ($1, $2, $3) \
     ON CONFLICT (character_id, good) DO UPDATE SET quantity = caravan_cargo.quantity + excluded.quantity \
     RETURNING quantity";

/// Writes a purchase and the receipt of its answer in one transaction. `Rejected` when a
/// guard refused it (not enough gold, sold out, over the limit): nothing changed. `Fenced`
/// when the buyer's row has a newer owner; `DuplicateRequest` when the receipt exists.
pub async fn buy(db: &Db, p: &Purchase, answer: Answer) -> Result<Bought, DbError> {
    let p = p.clone();
    let result = db
        .transact_guarded("buy_sale", move |tx| {
            let (p, answer) = (p.clone(), answer.clone());
            Box::pin(async move {
                let sold_params: [&(dyn ToSql + Sync); 2] = [&p.sale_id, &p.quantity];
                let purchase_params: [&(dyn ToSql + Sync); 4] =
                    [&p.sale_id, &p.character_id, &p.quantity, &p.limit];
                let cargo_params: [&(dyn ToSql + Sync); 3] =
                    [&p.character_id, &p.good, &p.quantity];
                // Independent statements, pipelined in one round trip; the sale's row (the hot
                // one) is locked last. Any error rolls all of them back.
                let (gold, held, purchase, sold) = futures_util::join!(
                    change_gold(tx, p.character_id, p.epoch, -p.total),
                    tx.query_one(CARGO_SQL, &cargo_params),
                    tx.query_opt(PURCHASE_SQL, &purchase_params),
                    tx.query_opt(SOLD_SQL, &sold_params),
                );
                let gold = gold?;
                let held: i64 = held?.get(0);
                let Some(bought) = purchase? else {
                    return Err(DbError::Rejected(format!(
                        "over the limit of {} per character",
                        p.limit
                    )));
                };
                let Some(sold) = sold? else {
                    return Err(DbError::Rejected("sold out".into()));
                };
                let rows = Committed {
                    sold: sold.get(0),
                    bought: bought.get(0),
                };
                let bought = Bought { gold, held, rows };
                receipts::store(tx, answer(&bought).as_ref()).await?;
                Ok(bought)
            })
        })
        .await;
    count_fenced(db, result)
}
