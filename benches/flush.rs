//! Flush benchmark: N dirty character rows written through the persistence actor (coalesced,
//! one multi-row `unnest` statement per batch) against one UPDATE per row, on the same
//! database in the same run. Prints rows/s for both and the ratio.
//!
//! `cargo bench --bench flush` (sizes: SERAI_BENCH_SIZES=10000,100000 by default).

use std::time::{Duration, Instant};

use actix::Actor;
use serai::config::Dialect;
use serai::localdb::TestDatabase;
use serai::metrics::Metrics;
use serai::persistence::batch::{CharacterDirty, DirtyRow};
use serai::persistence::messages::{FlushNow, MarkDirty};
use serai::persistence::{migrate, pg, Db, FlushPolicy, PersistenceActor};
use uuid::Uuid;

fn rows(ids: &[Uuid], round: i32) -> Vec<CharacterDirty> {
    ids.iter()
        .map(|id| CharacterDirty {
            id: *id,
            epoch: 1,
            location: format!("node_{}", round % 8),
            hp: round,
            xp: round as i64 * 3,
            level: 1 + round % 5,
            skill_points: round % 3,
            travel: Some(serde_json::json!({"to": "harbor", "progress": round})),
        })
        .collect()
}

async fn seed(url: &str, n: usize) -> Vec<Uuid> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    actix_rt::spawn(async move {
        let _ = conn.await;
    });
    client
        .batch_execute("TRUNCATE player_character CASCADE")
        .await
        .expect("truncate");
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    client
        .execute(
            "INSERT INTO player_character (id, user_id, name, faction, background, gold, location, hp, max_hp, owner_node, owner_epoch) \
             SELECT id, id, 'bench', 'f', 'b', 100, 'start', 10, 10, 'bench', 1 FROM unnest($1::uuid[]) AS t(id)",
            &[&ids],
        )
        .await
        .expect("seed");
    client
        .batch_execute("VACUUM ANALYZE player_character")
        .await
        .expect("vacuum");
    ids
}

async fn batched(db: &Db, ids: &[Uuid], round: i32) -> Duration {
    let policy = FlushPolicy {
        interval: Duration::from_millis(200),
        batch_size: 1000,
    };
    let actor = PersistenceActor::new(db.clone(), policy).start();
    let start = Instant::now();
    for row in rows(ids, round) {
        actor.do_send(MarkDirty {
            row: DirtyRow::Character(row),
            fence: None,
        });
    }
    actor.send(FlushNow).await.expect("actor").expect("flush");
    start.elapsed()
}

async fn row_by_row(db: &Db, ids: &[Uuid], round: i32) -> Duration {
    let rows = rows(ids, round);
    let start = Instant::now();
    let n = pg::flush_characters_row_by_row(db, &rows)
        .await
        .expect("row by row");
    assert_eq!(n, ids.len());
    start.elapsed()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: then run a small
    // smoke-sized pass so the suite stays fast but the bench still works.
    let benching = std::env::args().any(|a| a == "--bench");
    let default_sizes = if benching { "10000,100000" } else { "500" };
    let sizes: Vec<usize> = std::env::var("SERAI_BENCH_SIZES")
        .unwrap_or_else(|_| default_sizes.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    actix_rt::System::new().block_on(async move {
        let tdb = TestDatabase::create().await.expect("test database");
        let db = Db::connect(&tdb.url, 4, Dialect::Postgres, Metrics::new("bench")).expect("pool");
        migrate::run(&db).await.expect("migrate");
        println!(
            "{:>8} {:>14} {:>14} {:>8}",
            "rows", "batched rows/s", "per-row rows/s", "ratio"
        );
        for n in sizes {
            let ids = seed(&tdb.url, n).await;
            // Warm both paths once on a small slice so connection setup is not measured.
            batched(&db, &ids[..ids.len().min(500)], 0).await;
            row_by_row(&db, &ids[..ids.len().min(500)], 0).await;
            let b = batched(&db, &ids, 1).await;
            let r = row_by_row(&db, &ids, 2).await;
            let rate = |d: Duration| n as f64 / d.as_secs_f64();
            println!(
                "{:>8} {:>14.0} {:>14.0} {:>7.1}x",
                n,
                rate(b),
                rate(r),
                r.as_secs_f64() / b.as_secs_f64()
            );
        }
    });
}
