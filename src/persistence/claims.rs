//! Ownership claims on entity rows: `owner_node` names the writer, `owner_epoch` is bumped on
//! every claim, and every later write of the claimant carries the epoch in its WHERE clause.

use uuid::Uuid;

use super::heartbeat::{ALIVE, DRAINING};
use super::{Db, DbError};

/// The tables whose rows are entities with an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityTable {
    Character,
    Battle,
    Leaderboard,
    TradeNode,
    WorldEvent,
    WorldSale,
}

impl EntityTable {
    pub const ALL: [EntityTable; 6] = [
        EntityTable::Character,
        EntityTable::Battle,
        EntityTable::Leaderboard,
        EntityTable::TradeNode,
        EntityTable::WorldEvent,
        EntityTable::WorldSale,
    ];

    fn sql_name(self) -> (&'static str, &'static str) {
        // (table, key column)
        match self {
            EntityTable::Character => ("player_character", "id"),
            EntityTable::Battle => ("battle_encounter", "id"),
            EntityTable::Leaderboard => ("leaderboard", "id"),
            EntityTable::TradeNode => ("trade_node", "code"),
            EntityTable::WorldEvent => ("world_event", "id"),
            EntityTable::WorldSale => ("world_sale", "id"),
        }
    }
}

/// An entity's key as stored: UUID keys for player entities, text codes for catalog-backed ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntityId {
    Uuid(Uuid),
    Text(String),
}

impl std::fmt::Display for EntityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntityId::Uuid(u) => write!(f, "{u}"),
            EntityId::Text(t) => f.write_str(t),
        }
    }
}

/// Claims the row for `node`: owner_node = node, owner_epoch + 1, returning the new epoch —
/// but only over a released row, a row `node` itself holds (a restarted process of the same
/// node id), or a row whose owner's lease expired (its heartbeat is older than the lease
/// timeout, or it left). A live owner hands a row over by releasing it; until it does, the
/// claim waits (polling, at most [`Db::claim_wait`]) and then fails with
/// [`DbError::Claimed`] ("not run": the caller may try again). `NotFound` when there is no
/// such row.
pub async fn claim(db: &Db, table: EntityTable, id: &EntityId, node: &str) -> Result<i64, DbError> {
    let started = std::time::Instant::now();
    loop {
        match claim_once(db, table, id, node).await {
            Err(DbError::Claimed(owner)) if started.elapsed() < db.claim_wait() => {
                tracing::debug!(%id, %owner, "waiting for the live owner to hand over");
                tokio::time::sleep(CLAIM_POLL).await;
            }
            other => return other,
        }
    }
}

/// How often a waiting claim looks again.
const CLAIM_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// One attempt of [`claim`].
pub async fn claim_once(
    db: &Db,
    table: EntityTable,
    id: &EntityId,
    node: &str,
) -> Result<i64, DbError> {
    let (name, key) = table.sql_name();
    let sql = format!(
        "UPDATE {name} AS t SET owner_node = $2, owner_epoch = t.owner_epoch + 1 \
         WHERE t.{key} = $1 AND (t.owner_node IS NULL OR t.owner_node = $2 OR NOT EXISTS ( \
           SELECT 1 FROM cluster_member m WHERE m.node_id = t.owner_node \
           AND m.status IN ('{ALIVE}', '{DRAINING}') \
           AND m.last_heartbeat > now() - ($3::FLOAT8 * INTERVAL '1 millisecond'))) \
         RETURNING t.owner_epoch"
    );
    let lease = db.lease_timeout().as_millis() as f64;
    let client = db.client().await?;
    let row = match id {
        EntityId::Uuid(u) => client.query_opt(&sql, &[u, &node, &lease]).await?,
        EntityId::Text(t) => client.query_opt(&sql, &[t, &node, &lease]).await?,
    };
    if let Some(r) = row {
        db.metrics().claims.increment(1);
        return Ok(r.get(0));
    }
    // Refused: a live owner holds it, or there is no such row.
    match owner(db, table, id).await? {
        Some((Some(holder), _)) => Err(DbError::Claimed(holder)),
        Some((None, _)) => Err(DbError::Claimed("a concurrent claim".into())),
        None => Err(DbError::NotFound(format!("{name} {id}"))),
    }
}

/// Gives up a claim if it is still ours at `epoch`. The epoch stays, so the next claim bumps it.
pub async fn release(
    db: &Db,
    table: EntityTable,
    id: &EntityId,
    node: &str,
    epoch: i64,
) -> Result<bool, DbError> {
    let (name, key) = table.sql_name();
    let sql = format!(
        "UPDATE {name} SET owner_node = NULL WHERE {key} = $1 AND owner_node = $2 AND owner_epoch = $3"
    );
    let client = db.client().await?;
    let n = match id {
        EntityId::Uuid(u) => client.execute(&sql, &[u, &node, &epoch]).await?,
        EntityId::Text(t) => client.execute(&sql, &[t, &node, &epoch]).await?,
    };
    Ok(n == 1)
}

/// Releases every claim `node` still holds, in every entity table (the end of a drain).
pub async fn release_all(db: &Db, node: &str) -> Result<u64, DbError> {
    let client = db.client().await?;
    let mut total = 0;
    for table in EntityTable::ALL {
        let (name, _) = table.sql_name();
        total += client
            .execute(
                &format!("UPDATE {name} SET owner_node = NULL WHERE owner_node = $1"),
                &[&node],
            )
            .await?;
    }
    Ok(total)
}

/// The current (owner node, epoch) of a row, for tests and the admin view.
pub async fn owner(
    db: &Db,
    table: EntityTable,
    id: &EntityId,
) -> Result<Option<(Option<String>, i64)>, DbError> {
    let (name, key) = table.sql_name();
    let sql = format!("SELECT owner_node, owner_epoch FROM {name} WHERE {key} = $1");
    let client = db.client().await?;
    let row = match id {
        EntityId::Uuid(u) => client.query_opt(&sql, &[u]).await?,
        EntityId::Text(t) => client.query_opt(&sql, &[t]).await?,
    };
    Ok(row.map(|r| (r.get(0), r.get(1))))
}
