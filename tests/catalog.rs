//! The default catalog, loaded from a real PostgreSQL after `migrate::run`.

use std::collections::HashSet;

use serai::config::Dialect;
use serai::domain::catalog::Catalog;
use serai::localdb::TestDatabase;
use serai::metrics::Metrics;
use serai::persistence::catalog;
use serai::persistence::default_catalog::default_catalog;
use serai::persistence::{migrate, Db, DbError};

async fn migrated() -> (TestDatabase, Db) {
    let tdb = TestDatabase::create().await.expect("test database");
    let db = Db::connect(&tdb.url, 8, Dialect::Postgres, Metrics::new("test")).expect("pool");
    migrate::run(&db).await.expect("migrate");
    (tdb, db)
}

async fn execute(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client.batch_execute(sql).await.expect(sql);
}

fn is_snake(code: &str) -> bool {
    !code.is_empty()
        && code.as_bytes()[0].is_ascii_lowercase()
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[tokio::test]
async fn the_default_catalog_loads_validates_and_meets_the_minimums() {
    let (_tdb, db) = migrated().await;
    let c = catalog::load(&db).await.expect("load");
    c.validate().expect("valid");
    assert_eq!(c.version, 1);
    assert!(c.factions().len() >= 3);
    assert!(c.backgrounds().len() >= 4);
    assert!(c.goods().len() >= 10);
    assert!(c.nodes().len() >= 8);
    assert_eq!(c.skill_trees().len(), 2);
    assert!(c.skills().len() >= 6);
    assert!(c.items().len() >= 10);
    assert!(c.crew_archetypes().len() >= 4);
    assert!(c.skills().iter().any(|s| s.kind == "trade"));
    assert!(c
        .skills()
        .iter()
        .any(|s| s.kind == "attack" && s.cooldown > 0));
    for f in c.factions() {
        let home = c.node(&f.home_node).expect("home node exists");
        assert!(
            c.stock_at(&home.code).count() > 0,
            "{} has a market",
            home.code
        );
        assert!(
            c.routes_from(&home.code).count() > 0,
            "{} has a road",
            home.code
        );
    }
    for n in c.nodes() {
        assert!(
            c.stock_at(&n.code).count() >= 4,
            "{} trades at least four goods",
            n.code
        );
    }
    let codes = c
        .factions()
        .iter()
        .map(|x| &x.code)
        .chain(c.backgrounds().iter().map(|x| &x.code))
        .chain(c.skill_trees().iter().map(|x| &x.code))
        .chain(c.skills().iter().map(|x| &x.code))
        .chain(c.items().iter().map(|x| &x.code))
        .chain(c.crew_archetypes().iter().map(|x| &x.code))
        .chain(c.goods().iter().map(|x| &x.code))
        .chain(c.nodes().iter().map(|x| &x.code));
    for code in codes {
        assert!(is_snake(code), "`{code}` is snake_case");
    }
}

#[tokio::test]
async fn the_database_holds_exactly_the_shipped_default() {
    let (_tdb, db) = migrated().await;
    let loaded = catalog::load(&db).await.expect("load");
    let json = |c: &Catalog| serde_json::to_value(c).unwrap();
    assert_eq!(json(&loaded), json(&default_catalog()));
}

#[tokio::test]
async fn the_live_market_starts_at_the_base_prices() {
    let (tdb, db) = migrated().await;
    let c = catalog::load(&db).await.expect("load");
    let (client, conn) = tokio_postgres::connect(&tdb.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let rows = client
        .query(
            "SELECT node, good, price, quota FROM market_price_snapshot",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), c.all_stock().len());
    for r in rows {
        let (node, good, price, quota): (String, String, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let s = c.stock(&node, &good).expect("snapshot row has a stock row");
        assert_eq!((price, quota), (s.base_price, s.base_quota));
    }
}

#[test]
fn trading_between_nodes_pays() {
    let c = default_catalog();
    // For every good traded in two places, the best margin from buying low and selling high.
    let mut profitable = HashSet::new();
    for g in c.goods() {
        let prices: Vec<i64> = c
            .nodes()
            .iter()
            .filter_map(|n| c.stock(&n.code, &g.code))
            .map(|s| s.base_price)
            .collect();
        if let (Some(lo), Some(hi)) = (prices.iter().min(), prices.iter().max()) {
            if *hi * 100 >= *lo * 130 {
                profitable.insert(g.code.clone());
            }
        }
    }
    assert!(
        profitable.len() >= 8,
        "at least eight goods have a 30 % spread: {profitable:?}"
    );
    // Some trade is profitable between direct neighbours, not only across the map.
    let neighbour_trade = c.routes().iter().any(|r| {
        c.stock_at(&r.from_node).any(|buy| {
            c.stock(&r.to_node, &buy.good)
                .is_some_and(|sell| sell.base_price * 100 >= buy.base_price * 130)
        })
    });
    assert!(neighbour_trade);
    // Dangerous roads exist, and safe ones.
    assert!(c.routes().iter().any(|r| r.danger >= 50));
    assert!(c.routes().iter().any(|r| r.danger <= 10));
}

#[tokio::test]
async fn an_edited_catalog_loads_under_the_bumped_version() {
    let (tdb, db) = migrated().await;
    let before = catalog::load(&db).await.expect("load");
    execute(
        &tdb.url,
        "UPDATE trade_good SET base_price = 12 WHERE code = 'grain'",
    )
    .await;
    execute(
        &tdb.url,
        "UPDATE catalog_meta SET version = version + 1 WHERE id = 1",
    )
    .await;
    let now = catalog::load(&db).await.expect("load");
    assert_eq!(now.version, 2);
    assert_eq!(now.good("grain").unwrap().base_price, 12);
    assert_eq!(before.version, 1);
    assert_eq!(before.good("grain").unwrap().base_price, 10);
}

#[tokio::test]
async fn an_invalid_catalog_is_refused() {
    let (tdb, db) = migrated().await;
    // A one-way road: the way back is missing.
    execute(
        &tdb.url,
        "DELETE FROM trade_route WHERE from_node = 'saltspire' AND to_node = 'port_azul'",
    )
    .await;
    execute(
        &tdb.url,
        "UPDATE catalog_meta SET version = version + 1 WHERE id = 1",
    )
    .await;
    match catalog::load(&db).await {
        Err(DbError::Rejected(msg)) => assert!(msg.contains("no way back"), "{msg}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn loading_before_migrating_is_an_error() {
    let tdb = TestDatabase::create().await.expect("test database");
    let db = Db::connect(&tdb.url, 2, Dialect::Postgres, Metrics::new("test")).expect("pool");
    assert!(catalog::load(&db).await.is_err());
}

#[tokio::test]
async fn the_version_is_bumped_only_from_the_version_validated() {
    let (_tdb, db) = migrated().await;
    let before = catalog::stamp(&db).await.expect("stamp");
    assert_eq!(before.version, 1);
    assert!(
        before.updated_at.is_some(),
        "the default catalog records its time"
    );
    let bumped = catalog::bump(&db, 1).await.expect("bump").expect("from 1");
    assert_eq!(bumped.version, 2);
    assert!(bumped.updated_at >= before.updated_at);
    assert_eq!(
        catalog::bump(&db, 1).await.expect("bump"),
        None,
        "a second bump from 1 finds 2: a concurrent reload"
    );
    assert_eq!(catalog::stamp(&db).await.unwrap(), bumped);
    assert_eq!(catalog::load(&db).await.unwrap().version, 2);
}
