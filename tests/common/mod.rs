//! Shared test setup: a fresh migrated database per test, a TCP proxy that can cut the
//! database connection to simulate an outage, and [`wait_for`] / [`wait_until`]: the one way
//! tests wait for something to happen (a poll of an observable state with a deadline, never
//! a fixed sleep).
#![allow(dead_code)]

pub mod client;
pub mod cluster;
pub mod node;
pub mod nodejs;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod rows;
pub mod sales;
pub mod trading;

use serai::config::Dialect;
use serai::localdb::TestDatabase;
use serai::metrics::Metrics;
use serai::persistence::{migrate, Db};

use std::time::{Duration, Instant};

/// How often [`wait_for`] and [`wait_until`] look again.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `probe` (every [`POLL_EVERY`]) until it answers `Ok`, and returns that value. `Err`
/// describes what was seen instead; after `within` the test fails with `what` and the last
/// thing seen. The probe runs at least once, even when it takes longer than `within`.
pub async fn wait_for<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    loop {
        let last = match probe().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        let waited = started.elapsed();
        assert!(
            waited < within,
            "timed out after {waited:?} (deadline {within:?}) waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// [`wait_for`] a condition: polls `probe` until it is true, failing the test with `what`
/// after `within`.
pub async fn wait_until(what: &str, within: Duration, mut probe: impl AsyncFnMut() -> bool) {
    wait_for(what, within, async || {
        if probe().await {
            Ok(())
        } else {
            Err("not yet".into())
        }
    })
    .await
}

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

/// Waits until no other client session on the database at `url` has a statement running or a
/// transaction open (`pg_stat_activity`): whatever anybody sent before has then committed or
/// rolled back. For "nothing more is written" checks once the writer is known to have stopped
/// starting work.
pub async fn wait_db_quiet(url: &str, within: Duration) {
    let pg = raw_client(url).await;
    wait_for("the database to be quiet", within, async || {
        let busy: Vec<String> = pg
            .query(
                "SELECT format('pid %s %s: %s', pid, state, left(query, 120)) \
                 FROM pg_stat_activity \
                 WHERE datname = current_database() AND backend_type = 'client backend' \
                 AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .iter()
            .map(|r| r.get(0))
            .collect();
        if busy.is_empty() {
            Ok(())
        } else {
            Err(busy.join("; "))
        }
    })
    .await
}

/// Plays a peer that wrongly believes a character's owner dead (a split view): claims the row
/// whatever its lease says, bumping the epoch, so the test can show that fencing still keeps
/// the old owner from writing. The node never does this (it claims only released rows,
/// expired leases and handovers), so it is test code, not a production function.
pub async fn take_over_character(db: &Db, id: uuid::Uuid, node: &str) -> i64 {
    let node = node.to_string();
    db.transact("test_take_over", move |tx| {
        let node = node.clone();
        Box::pin(async move {
            let row = tx
                .query_one(
                    "UPDATE player_character SET owner_node = $2, owner_epoch = owner_epoch + 1 \
                     WHERE id = $1 RETURNING owner_epoch",
                    &[&id, &node],
                )
                .await?;
            Ok(row.get::<_, i64>(0))
        })
    })
    .await
    .expect("take over")
}
