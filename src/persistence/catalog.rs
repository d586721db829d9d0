//! Reading the static catalog tables (the indexing and checks live in `crate::domain::catalog`).
//!
//! All tables are read in one read-only snapshot, so the rows always match the
//! `catalog_meta.version` read with them even while an operator edits the catalog.
//!
//! A reload bumps the version ([`bump`]) only from the version it validated; nodes that missed
//! its broadcast find the new version with a cheap read of `catalog_meta` ([`stamp`]).

use chrono::{DateTime, Utc};
use tokio_postgres::{IsolationLevel, Row};

use super::retry::Backoff;
use super::{Db, DbError};
use crate::domain::catalog::model::*;
use crate::domain::catalog::Catalog;

/// Attempts before a catalog read gives up on retryable errors.
const MAX_ATTEMPTS: u32 = 8;

/// Reads the catalog and validates it. An invalid catalog is refused with
/// [`DbError::Rejected`] naming every problem.
pub async fn load(db: &Db) -> Result<Catalog, DbError> {
    let catalog = Catalog::from_data(read(db).await?);
    catalog.validate().map_err(|e| {
        DbError::Rejected(format!(
            "catalog version {} is invalid: {e}",
            catalog.version
        ))
    })?;
    Ok(catalog)
}

/// The catalog's version and when it was last bumped (`catalog_meta` row 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogStamp {
    pub version: i64,
    /// When the version was written, by the database's clock (`None` if never recorded).
    pub updated_at: Option<DateTime<Utc>>,
}

/// Reads the version and its time: one row, no catalog table.
pub async fn stamp(db: &Db) -> Result<CatalogStamp, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            "SELECT version, updated_at FROM catalog_meta WHERE id = 1",
            &[],
        )
        .await?
        .ok_or_else(|| DbError::NotFound("catalog_meta row 1 (run `serai migrate`)".into()))?;
    Ok(CatalogStamp {
        version: row.try_get(0)?,
        updated_at: row.try_get(1)?,
    })
}

/// Bumps the version by one, only if it is still `from` (the version the caller validated).
/// Answers the new stamp, or `None` when the version had moved on (a concurrent reload).
pub async fn bump(db: &Db, from: i64) -> Result<Option<CatalogStamp>, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            "UPDATE catalog_meta SET version = version + 1, updated_at = now() \
             WHERE id = 1 AND version = $1 RETURNING version, updated_at",
            &[&from],
        )
        .await?;
    row.map(|r| {
        Ok(CatalogStamp {
            version: r.try_get(0)?,
            updated_at: r.try_get(1)?,
        })
    })
    .transpose()
}

/// Reads every catalog table and the catalog version.
pub async fn read(db: &Db) -> Result<CatalogData, DbError> {
    let mut backoff = Backoff::database();
    loop {
        match read_once(db).await {
            Ok(data) => return Ok(data),
            Err(e) if e.is_retryable() && backoff.attempts() + 1 < MAX_ATTEMPTS => {
                db.metrics().db_retries.increment(1);
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn read_once(db: &Db) -> Result<CatalogData, DbError> {
    let mut client = db.client().await?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let version = tx
        .query_opt("SELECT version FROM catalog_meta WHERE id = 1", &[])
        .await?
        .map(|r| r.get::<_, i64>(0))
        .ok_or_else(|| DbError::NotFound("catalog_meta row 1 (run `serai migrate`)".into()))?;
    let rows = |sql: &'static str| {
        let tx = &tx;
        async move { tx.query(sql, &[]).await.map_err(DbError::from) }
    };
    let data = CatalogData {
        version,
        factions: rows("SELECT code, name, description, home_node FROM faction ORDER BY code")
            .await?
            .iter()
            .map(faction)
            .collect::<Result<_, _>>()?,
        backgrounds: rows(
            "SELECT code, name, description, starting_gold, strength, cunning, charisma, endurance \
             FROM background_archetype ORDER BY code",
        )
        .await?
        .iter()
        .map(background)
        .collect::<Result<_, _>>()?,
        skill_trees: rows("SELECT code, name, description FROM skill_tree ORDER BY code")
            .await?
            .iter()
            .map(skill_tree)
            .collect::<Result<_, _>>()?,
        skills: rows(
            "SELECT code, tree, name, description, tier, requires, cost, kind, power, cooldown \
             FROM skill_definition ORDER BY code",
        )
        .await?
        .iter()
        .map(skill)
        .collect::<Result<_, _>>()?,
        items: rows(
            "SELECT code, name, kind, rarity, value, attack, defense, weight FROM item_template ORDER BY code",
        )
        .await?
        .iter()
        .map(item)
        .collect::<Result<_, _>>()?,
        crew: rows(
            "SELECT code, name, description, hire_cost, upkeep, hp, attack, defense, capacity, speed \
             FROM crew_archetype ORDER BY code",
        )
        .await?
        .iter()
        .map(crew)
        .collect::<Result<_, _>>()?,
        goods: rows("SELECT code, name, category, base_price, weight FROM trade_good ORDER BY code")
            .await?
            .iter()
            .map(good)
            .collect::<Result<_, _>>()?,
        nodes: rows("SELECT code, name, region, faction FROM trade_node ORDER BY code")
            .await?
            .iter()
            .map(node)
            .collect::<Result<_, _>>()?,
        routes: rows("SELECT from_node, to_node, distance, danger FROM trade_route ORDER BY from_node, to_node")
            .await?
            .iter()
            .map(route)
            .collect::<Result<_, _>>()?,
        stock: rows(
            "SELECT node, good, base_price, base_quota, restock_per_min FROM trade_node_stock \
             ORDER BY node, good",
        )
        .await?
        .iter()
        .map(stock)
        .collect::<Result<_, _>>()?,
    };
    tx.commit().await?;
    Ok(data)
}

fn faction(r: &Row) -> Result<Faction, tokio_postgres::Error> {
    Ok(Faction {
        code: r.try_get(0)?,
        name: r.try_get(1)?,
        description: r.try_get(2)?,
        home_node: r.try_get(3)?,
    })
}

fn background(r: &Row) -> Result<Background, tokio_postgres::Error> {
    Ok(Background {
        code: r.try_get(0)?,
        name: r.try_get(1)?,
        description: r.try_get(2)?,
        starting_gold: r.try_get(3)?,
        strength: r.try_get(4)?,
        cunning: r.try_get(5)?,
        charisma: r.try_get(6)?,
        endurance: r.try_get(7)?,
    })
}

fn skill_tree(r: &Row) -> Result<SkillTree, tokio_postgres::Error> {
    Ok(SkillTree {
        code: r.try_get(0)?,
        name: r.try_get(1)?,
        description: r.try_get(2)?,
    })
}

fn skill(r: &Row) -> Result<Skill, tokio_postgres::Error> {
    Ok(Skill {
        code: r.try_get(0)?,
        tree: r.try_get(1)?,
        name: r.try_get(2)?,
        description: r.try_get(3)?,
        tier: r.try_get(4)?,
        requires: r.try_get(5)?,
        cost: r.try_get(6)?,
        kind: r.try_get(7)?,
        power: r.try_get(8)?,
        cooldown: r.try_get(9)?,
    })
}

fn item(r: &Row) -> Result<ItemTemplate, tokio_postgres::Error> {
    Ok(ItemTemplate {
        code: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        rarity: r.try_get(3)?,
        value: r.try_get(4)?,
        attack: r.try_get(5)?,
        defense: r.try_get(6)?,
        weight: r.try_get(7)?,
    })
}

fn crew(r: &Row) -> Result<CrewArchetype, tokio_postgres::Error> {
    Ok(CrewArchetype {
        code: r.try_get(0)?,
        name: r.try_get(1)?,
        description: r.try_get(2)?,
        hire_cost: r.try_get(3)?,
        upkeep: r.try_get(4)?,
        hp: r.try_get(5)?,
        attack: r.try_get(6)?,
        defense: r.try_get(7)?,
        capacity: r.try_get(8)?,
        speed: r.try_get(9)?,
    })
}

fn good(r: &Row) -> Result<Good, tokio_postgres::Error> {
    Ok(Good {
        code: r.try_get(0)?,
        name: r.try_get(1)?,
        category: r.try_get(2)?,
        base_price: r.try_get(3)?,
        weight: r.try_get(4)?,
    })
}

fn node(r: &Row) -> Result<TradeNode, tokio_postgres::Error> {
    Ok(TradeNode {
        code: r.try_get(0)?,
        name: r.try_get(1)?,
        region: r.try_get(2)?,
        faction: r.try_get(3)?,
    })
}

fn route(r: &Row) -> Result<Route, tokio_postgres::Error> {
    Ok(Route {
        from_node: r.try_get(0)?,
        to_node: r.try_get(1)?,
        distance: r.try_get(2)?,
        danger: r.try_get(3)?,
    })
}

fn stock(r: &Row) -> Result<Stock, tokio_postgres::Error> {
    Ok(Stock {
        node: r.try_get(0)?,
        good: r.try_get(1)?,
        base_price: r.try_get(2)?,
        base_quota: r.try_get(3)?,
        restock_per_min: r.try_get(4)?,
    })
}
