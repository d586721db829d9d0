//! Ownership claims on entity rows: `owner_node` names the writer, `owner_epoch` is bumped on
//! every claim, and every later write of the claimant carries the epoch in its WHERE clause.

use uuid::Uuid;

use super::{Db, DbError};

/// The tables whose rows are entities with an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityTable {
    Character,
    Battle,
    Leaderboard,
    TradeNode,
}

impl EntityTable {
    pub const ALL: [EntityTable; 4] = [
        EntityTable::Character,
        EntityTable::Battle,
        EntityTable::Leaderboard,
        EntityTable::TradeNode,
    ];

    fn sql_name(self) -> (&'static str, &'static str) {
        // (table, key column)
        match self {
            EntityTable::Character => ("player_character", "id"),
            EntityTable::Battle => ("battle_encounter", "id"),
            EntityTable::Leaderboard => ("leaderboard", "id"),
            EntityTable::TradeNode => ("trade_node", "code"),
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

/// Claims the row for `node`: owner_node = node, owner_epoch + 1. Returns the new epoch, or
/// `NotFound` when there is no such row.
pub async fn claim(db: &Db, table: EntityTable, id: &EntityId, node: &str) -> Result<i64, DbError> {
    let (name, key) = table.sql_name();
    let sql = format!(
        "UPDATE {name} SET owner_node = $2, owner_epoch = owner_epoch + 1 WHERE {key} = $1 RETURNING owner_epoch"
    );
    let client = db.client().await?;
    let row = match id {
        EntityId::Uuid(u) => client.query_opt(&sql, &[u, &node]).await?,
        EntityId::Text(t) => client.query_opt(&sql, &[t, &node]).await?,
    };
    db.metrics().claims.increment(1);
    row.map(|r| r.get(0))
        .ok_or_else(|| DbError::NotFound(format!("{name} {id}")))
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
