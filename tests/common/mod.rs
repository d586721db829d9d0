//! Shared test setup: a fresh migrated database per test, and a TCP proxy that can cut the
//! database connection to simulate an outage.
#![allow(dead_code)]

pub mod client;
pub mod cluster;
pub mod node;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod rows;
pub mod trading;

use serai::config::Dialect;
use serai::localdb::TestDatabase;
use serai::metrics::Metrics;
use serai::persistence::{migrate, Db};

/// A fresh database with the schema and default catalog, and a pool on it.
pub async fn migrated_db() -> (TestDatabase, Db) {
    let tdb = TestDatabase::create().await.expect("a test database");
    let db = Db::connect(&tdb.url, 8, Dialect::Postgres, Metrics::new("test")).expect("pool");
    migrate::run(&db).await.expect("migrations");
    (tdb, db)
}

/// A fresh database with the schema and default catalog, then `setup` (SQL a test needs in
/// place before any node starts: frozen recovery, an audit trigger …).
pub async fn migrated_db_with(setup: &str) -> TestDatabase {
    let (tdb, _) = migrated_db().await;
    raw_client(&tdb.url)
        .await
        .batch_execute(setup)
        .await
        .expect("the test's setup SQL");
    tdb
}

/// A raw client for assertions that look at the database directly.
pub async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}
