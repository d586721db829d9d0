//! The flush backlog against a real PostgreSQL: an entity's critical write waits only for its
//! own rows, whatever else is queued or stuck; over the high-water mark writers wait and the
//! node turns not ready, and every queued row is still written; the age of the oldest
//! unwritten row is a metric that rises while rows wait and returns to 0.

mod common;

use std::time::{Duration, Instant};

use actix::prelude::*;
use serai::config::Config;
use serai::persistence::batch::{AttributeDirty, CharacterDirty, DirtyRow};
use serai::persistence::messages::{
    FlushEntity, FlushNow, GetStats, MarkDirty, PersistenceStats, Room,
};
use serai::persistence::{FlushPolicy, PersistenceActor};
use serai::shutdown::Shutdown;
use uuid::Uuid;

fn dirty(id: Uuid, hp: i32) -> DirtyRow {
    DirtyRow::Character(CharacterDirty {
        id,
        epoch: 0,
        location: "harbour".into(),
        hp,
        xp: 1,
        level: 1,
        skill_points: 0,
        travel: None,
    })
}

async fn hp(pg: &tokio_postgres::Client, id: Uuid) -> i32 {
    pg.query_one("SELECT hp FROM player_character WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

async fn count_hp(pg: &tokio_postgres::Client, value: i32) -> i64 {
    pg.query_one(
        "SELECT count(*) FROM player_character WHERE hp = $1",
        &[&value],
    )
    .await
    .unwrap()
    .get(0)
}

/// Polls the actor's figures until `done` holds, for at most `within`.
async fn stats_until(
    persistence: &Addr<PersistenceActor>,
    within: Duration,
    done: impl Fn(&PersistenceStats) -> bool,
) -> PersistenceStats {
    let deadline = Instant::now() + within;
    loop {
        let stats = persistence.send(GetStats).await.unwrap();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "not reached within {within:?}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn manual_policy() -> FlushPolicy {
    FlushPolicy {
        interval: Duration::from_secs(3600),
        batch_size: 10_000,
    }
}

#[actix_rt::test]
async fn an_entity_flush_writes_only_its_rows_past_a_large_backlog() {
    let (tdb, db) = common::migrated_db().await;
    let pg = common::raw_client(&tdb.url).await;
    let others = common::rows::insert_characters(&pg, 5000).await;
    let me = common::rows::insert_characters(&pg, 1).await[0];
    let persistence = PersistenceActor::new(db.clone(), manual_policy()).start();
    for id in &others {
        persistence.do_send(MarkDirty {
            row: dirty(*id, 7),
            fence: None,
        });
    }
    persistence.do_send(MarkDirty {
        row: dirty(me, 1),
        fence: None,
    });
    persistence.do_send(MarkDirty {
        row: DirtyRow::Attribute(AttributeDirty {
            character_id: me,
            epoch: 0,
            code: "strength".into(),
            value: 4,
        }),
        fence: None,
    });

    let started = Instant::now();
    persistence.send(FlushEntity(me)).await.unwrap().unwrap();
    let mine = started.elapsed();
    assert_eq!(hp(&pg, me).await, 1);
    let stats = persistence.send(GetStats).await.unwrap();
    assert_eq!(
        (stats.rows_written, stats.backlog, stats.entity_flushes),
        (2, 5000, 1),
        "only my two rows were written: {stats:?}"
    );
    assert_eq!(count_hp(&pg, 7).await, 0, "nobody else's row was written");

    // The backlog is now stuck in the database (a row of it is locked): my next critical
    // write still takes only as long as my own rows.
    let locker = common::raw_client(&tdb.url).await;
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM player_character WHERE id = '{}' FOR UPDATE",
            others[4999]
        ))
        .await
        .unwrap();
    // The node-wide flush (as a drain runs it: asked again after a failed attempt).
    let all = persistence.clone();
    let everything = actix_rt::spawn(async move {
        serai::persistence::flush_now(&all, Duration::from_secs(30)).await
    });
    stats_until(&persistence, Duration::from_secs(10), |s| {
        s.in_flight == 5000
    })
    .await;
    persistence.do_send(MarkDirty {
        row: dirty(me, 2),
        fence: None,
    });
    let started = Instant::now();
    persistence.send(FlushEntity(me)).await.unwrap().unwrap();
    let mine_while_stuck = started.elapsed();
    assert_eq!(hp(&pg, me).await, 2);
    // The stuck batch is still in flight, or failed (PostgreSQL may abort it with 40001 next
    // to my commit) and is kept for its retry: either way none of it is written yet.
    let stats = persistence.send(GetStats).await.unwrap();
    assert_eq!(stats.backlog, 5000, "{stats:?}");
    assert!(!everything.is_finished());
    println!("entity flush: {mine:?} past 5000 queued rows, {mine_while_stuck:?} past a stuck batch of 5000");
    assert!(mine < Duration::from_secs(3), "{mine:?}");
    assert!(
        mine_while_stuck < Duration::from_secs(3),
        "{mine_while_stuck:?}"
    );

    locker.batch_execute("ROLLBACK").await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), everything)
        .await
        .expect("the node-wide flush completes once the row is free")
        .unwrap()
        .unwrap();
    assert_eq!(count_hp(&pg, 7).await, 5000, "every queued row is written");
    assert_eq!(persistence.send(GetStats).await.unwrap().backlog, 0);
}

#[actix_rt::test]
async fn the_oldest_unflushed_age_rises_while_rows_wait_and_returns_to_zero() {
    let (tdb, db) = common::migrated_db().await;
    let pg = common::raw_client(&tdb.url).await;
    let id = common::rows::insert_characters(&pg, 1).await[0];
    let persistence = PersistenceActor::new(db.clone(), manual_policy()).start();
    let age = || {
        let text = db.metrics().render();
        text.lines()
            .find(|l| l.starts_with("serai_persistence_oldest_unflushed_seconds{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .expect("the age gauge is exported")
    };
    persistence.send(GetStats).await.unwrap();
    assert_eq!(age(), 0.0, "nothing waits");
    persistence.do_send(MarkDirty {
        row: dirty(id, 3),
        fence: None,
    });
    let stats = stats_until(&persistence, Duration::from_secs(5), |s| {
        s.oldest_unflushed
            .is_some_and(|d| d >= Duration::from_millis(300))
    })
    .await;
    assert_eq!(stats.backlog, 1);
    assert!(age() >= 0.3, "the gauge follows: {}", age());
    persistence.send(FlushNow).await.unwrap().unwrap();
    let stats = persistence.send(GetStats).await.unwrap();
    assert_eq!((stats.backlog, stats.oldest_unflushed), (0, None));
    assert_eq!(age(), 0.0, "back to 0 once written");
    assert_eq!(hp(&pg, id).await, 3);
}

#[actix_rt::test]
async fn over_the_high_water_mark_writers_wait_and_the_node_is_not_ready_until_it_drains() {
    let tdb = serai::localdb::TestDatabase::create().await.unwrap();
    let mut config = Config::for_test(&tdb.url);
    config.flush_backlog_high = 100;
    config.flush_backlog_low = 50;
    // Long: a writer let go before this was let go because there was room.
    config.flush_backpressure_wait = Duration::from_secs(60);
    let node = serai::node::start(config.clone(), Shutdown::new())
        .await
        .unwrap();
    let admin = node.admin_addr;
    common::node::wait_for_status(admin, "/readyz", 200, Duration::from_secs(10)).await;
    let persistence = node.services.persistence.clone();
    let pg = common::raw_client(&tdb.url).await;
    let ids = common::rows::insert_characters(&pg, 300).await;

    // The database holds the first row's write (its row is locked), so the batch lane is
    // stuck and the backlog grows.
    let locker = common::raw_client(&tdb.url).await;
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM player_character WHERE id = '{}' FOR UPDATE",
            ids[0]
        ))
        .await
        .unwrap();
    persistence.do_send(MarkDirty {
        row: dirty(ids[0], 7),
        fence: None,
    });
    stats_until(&persistence, Duration::from_secs(10), |s| s.in_flight == 1).await;
    for id in &ids[1..] {
        persistence.do_send(MarkDirty {
            row: dirty(*id, 7),
            fence: None,
        });
    }
    let stats = persistence.send(GetStats).await.unwrap();
    assert!(stats.over_high_water, "{stats:?}");
    assert_eq!(stats.backlog, 300, "nothing dropped: {stats:?}");

    // A writer asking for room waits …
    let writer = actix_rt::spawn(persistence.send(Room));
    let not_ready =
        common::node::wait_for_status(admin, "/readyz", 503, Duration::from_secs(10)).await;
    let body = not_ready.json();
    assert_eq!(body["backlog_full"], true, "{body}");
    assert!(
        body["reasons"][0]
            .as_str()
            .unwrap()
            .contains("high-water mark"),
        "{body}"
    );
    persistence.send(GetStats).await.unwrap(); // the writer's request was handled before this
    assert!(!writer.is_finished(), "the writer waits for room");

    // … until the database lets the backlog drain: then it has room, readiness returns, and
    // every row queued is in the database.
    locker.batch_execute("ROLLBACK").await.unwrap();
    let room = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("the writer is let go once the backlog drained")
        .unwrap()
        .unwrap();
    assert!(room, "let go because there was room, not by its deadline");
    let ready = common::node::wait_for_status(admin, "/readyz", 200, Duration::from_secs(15)).await;
    assert_eq!(ready.json()["backlog_full"], false);
    stats_until(&persistence, Duration::from_secs(15), |s| s.backlog == 0).await;
    assert_eq!(count_hp(&pg, 7).await, 300, "none dropped");
    node.stop().await.unwrap();
}
