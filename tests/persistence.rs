//! The persistence actor and the critical path against a real PostgreSQL: coalescing, epoch
//! fencing, 40001 retries, and rows kept through a database outage.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serai::config::Dialect;
use serai::metrics::Metrics;
use serai::persistence::batch::{AttributeDirty, CharacterDirty, DirtyRow};
use serai::persistence::claims::{self, EntityId, EntityTable};
use serai::persistence::messages::{Fenced, FlushNow, GetStats, MarkDirty};
use serai::persistence::{Db, DbError, FlushPolicy, PersistenceActor};
use uuid::Uuid;

/// How long a test waits for something the persistence actor does on its own.
const WAIT: Duration = Duration::from_secs(10);

async fn insert_character(url: &str) -> Uuid {
    let id = Uuid::new_v4();
    let client = common::raw_client(url).await;
    client
        .execute(
            "INSERT INTO player_character (id, user_id, name, faction, background, gold, location, hp, max_hp) \
             VALUES ($1, $2, 'tester', 'f', 'b', 100, 'start', 10, 10)",
            &[&id, &Uuid::new_v4()],
        )
        .await
        .unwrap();
    id
}

fn dirty(id: Uuid, epoch: i64, hp: i32) -> DirtyRow {
    DirtyRow::Character(CharacterDirty {
        id,
        epoch,
        location: "somewhere".into(),
        hp,
        xp: hp as i64 * 10,
        level: 1,
        skill_points: 0,
        travel: Some(serde_json::json!({"to": "x", "progress": hp})),
    })
}

async fn hp_of(url: &str, id: Uuid) -> i32 {
    common::raw_client(url)
        .await
        .query_one("SELECT hp FROM player_character WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

fn slow_policy() -> FlushPolicy {
    // Only explicit flushes (or a full batch) write, so tests decide when a flush happens.
    FlushPolicy {
        interval: Duration::from_secs(3600),
        batch_size: 10_000,
    }
}

#[actix_rt::test]
async fn many_updates_to_one_row_write_one_row() {
    let (tdb, db) = common::migrated_db().await;
    let id = insert_character(&tdb.url).await;
    let epoch = claims::claim(&db, EntityTable::Character, &EntityId::Uuid(id), "n1")
        .await
        .unwrap();
    let persistence = PersistenceActor::new(db.clone(), slow_policy()).start();
    for hp in 1..=500 {
        persistence
            .send(MarkDirty {
                row: dirty(id, epoch, hp),
                fence: None,
            })
            .await
            .unwrap();
    }
    assert_eq!(persistence.send(GetStats).await.unwrap().backlog, 1);
    persistence.send(FlushNow).await.unwrap().unwrap();
    let stats = persistence.send(GetStats).await.unwrap();
    assert_eq!(
        (stats.flushes, stats.rows_written, stats.backlog),
        (1, 1, 0)
    );
    assert_eq!(hp_of(&tdb.url, id).await, 500);
}

#[actix_rt::test]
async fn batch_size_triggers_a_flush_with_one_statement_per_table() {
    let (tdb, db) = common::migrated_db().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let id = insert_character(&tdb.url).await;
        let epoch = claims::claim(&db, EntityTable::Character, &EntityId::Uuid(id), "n1")
            .await
            .unwrap();
        ids.push((id, epoch));
    }
    let policy = FlushPolicy {
        interval: Duration::from_secs(3600),
        batch_size: 20,
    };
    let persistence = PersistenceActor::new(db.clone(), policy).start();
    for (id, epoch) in &ids {
        persistence.do_send(MarkDirty {
            row: dirty(*id, *epoch, 7),
            fence: None,
        });
        let attr = AttributeDirty {
            character_id: *id,
            epoch: *epoch,
            code: "strength".into(),
            value: 3,
        };
        persistence.do_send(MarkDirty {
            row: DirtyRow::Attribute(attr),
            fence: None,
        });
    }
    // 40 rows at batch size 20: two flushes happen without any interval tick.
    let stats = common::wait_for("40 rows written", WAIT, async || {
        let stats = persistence.send(GetStats).await.unwrap();
        if stats.rows_written >= 40 {
            Ok(stats)
        } else {
            Err(format!("{stats:?}"))
        }
    })
    .await;
    assert_eq!((stats.rows_written, stats.flushes), (40, 2));
    let n: i64 = common::raw_client(&tdb.url)
        .await
        .query_one(
            "SELECT count(*) FROM character_attribute WHERE code = 'strength' AND value = 3",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 20);
}

/// An entity stand-in: stops (dropping its memory) when told it was fenced.
struct Entity {
    fenced: Option<tokio::sync::oneshot::Sender<Fenced>>,
}

impl Actor for Entity {
    type Context = Context<Self>;
}

impl Handler<Fenced> for Entity {
    type Result = ();
    fn handle(&mut self, msg: Fenced, ctx: &mut Context<Self>) {
        if let Some(tx) = self.fenced.take() {
            let _ = tx.send(msg);
        }
        ctx.stop();
    }
}

#[actix_rt::test]
async fn a_write_under_an_old_epoch_is_fenced_and_the_actor_stops() {
    let (tdb, db) = common::migrated_db().await;
    let id = insert_character(&tdb.url).await;
    let key = EntityId::Uuid(id);
    let old = claims::claim(&db, EntityTable::Character, &key, "node-a")
        .await
        .unwrap();
    let new = claims::claim(&db, EntityTable::Character, &key, "node-b")
        .await
        .unwrap();
    assert_eq!(new, old + 1);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let entity = Entity { fenced: Some(tx) }.start();
    let persistence = PersistenceActor::new(db.clone(), slow_policy()).start();
    persistence
        .send(MarkDirty {
            row: dirty(id, old, 1),
            fence: Some(entity.clone().recipient()),
        })
        .await
        .unwrap();
    persistence.send(FlushNow).await.unwrap().unwrap();
    let fenced = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fenced.key.id, id);
    assert_eq!(
        hp_of(&tdb.url, id).await,
        10,
        "the stale write changed nothing"
    );
    let stats = persistence.send(GetStats).await.unwrap();
    assert_eq!((stats.fenced, stats.rows_written), (1, 0));
    assert!(db
        .metrics()
        .render()
        .contains("serai_fenced_writes_total{node=\"test\"} 1"));
    common::wait_until("the fenced actor to stop", WAIT, async || {
        !entity.connected()
    })
    .await;
    // The new owner's write goes through.
    persistence
        .send(MarkDirty {
            row: dirty(id, new, 2),
            fence: None,
        })
        .await
        .unwrap();
    persistence.send(FlushNow).await.unwrap().unwrap();
    assert_eq!(hp_of(&tdb.url, id).await, 2);
    assert_eq!(
        claims::owner(&db, EntityTable::Character, &key)
            .await
            .unwrap(),
        Some((Some("node-b".into()), new))
    );
}

#[actix_rt::test]
async fn claims_bump_and_release() {
    let (tdb, db) = common::migrated_db().await;
    let id = insert_character(&tdb.url).await;
    let key = EntityId::Uuid(id);
    let e1 = claims::claim(&db, EntityTable::Character, &key, "a")
        .await
        .unwrap();
    assert!(
        !claims::release(&db, EntityTable::Character, &key, "b", e1)
            .await
            .unwrap(),
        "not b's claim"
    );
    assert!(claims::release(&db, EntityTable::Character, &key, "a", e1)
        .await
        .unwrap());
    assert_eq!(
        claims::owner(&db, EntityTable::Character, &key)
            .await
            .unwrap(),
        Some((None, e1))
    );
    let e2 = claims::claim(&db, EntityTable::Character, &key, "a")
        .await
        .unwrap();
    assert_eq!(e2, e1 + 1, "the epoch survives a release");
    assert_eq!(claims::release_all(&db, "a").await.unwrap(), 1);
    let missing = claims::claim(
        &db,
        EntityTable::Character,
        &EntityId::Uuid(Uuid::new_v4()),
        "a",
    )
    .await;
    assert!(matches!(missing, Err(DbError::NotFound(_))));
}

/// Two SERIALIZABLE transactions in a write-skew (each reads the row the other writes) cannot
/// both commit: one gets 40001, and the critical path runs it again whole.
#[actix_rt::test]
async fn serialization_failures_are_retried_whole() {
    let (tdb, db) = common::migrated_db().await;
    let (a, b) = (
        insert_character(&tdb.url).await,
        insert_character(&tdb.url).await,
    );
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let attempts = Arc::new(AtomicUsize::new(0));
    let skew = |read: Uuid, write: Uuid| {
        let (db, barrier, attempts) = (db.clone(), barrier.clone(), attempts.clone());
        async move {
            db.transact("test", move |tx| {
                let (barrier, attempts) = (barrier.clone(), attempts.clone());
                Box::pin(async move {
                    let first = attempts.fetch_add(1, Ordering::SeqCst) < 2;
                    let hp: i32 = tx
                        .query_one("SELECT hp FROM player_character WHERE id = $1", &[&read])
                        .await?
                        .get(0);
                    if first {
                        barrier.wait().await; // both have read before either writes
                    }
                    tx.execute(
                        "UPDATE player_character SET hp = $2 WHERE id = $1",
                        &[&write, &(hp + 1)],
                    )
                    .await?;
                    Ok::<_, DbError>(())
                })
            })
            .await
        }
    };
    let (ra, rb) = tokio::join!(skew(a, b), skew(b, a));
    ra.unwrap();
    rb.unwrap();
    assert!(
        attempts.load(Ordering::SeqCst) >= 3,
        "one transaction ran again"
    );
    assert!(db.metrics().render().contains("serai_db_retries_total"));
    let total = hp_of(&tdb.url, a).await + hp_of(&tdb.url, b).await;
    assert_eq!(
        total, 23,
        "the retried transaction saw the other's commit (10+11+... serial order)"
    );
}

#[actix_rt::test]
async fn rows_are_kept_while_the_database_is_unreachable() {
    let (tdb, direct) = common::migrated_db().await;
    let id = insert_character(&tdb.url).await;
    let epoch = claims::claim(&direct, EntityTable::Character, &EntityId::Uuid(id), "n1")
        .await
        .unwrap();
    let mut cfg: tokio_postgres::Config = tdb.url.parse().unwrap();
    let target = match cfg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(ref h) => format!("{h}:{}", cfg.get_ports()[0]),
        _ => panic!("test needs a TCP database"),
    };
    let proxy = common::proxy::Proxy::start(
        tokio::net::lookup_host(target)
            .await
            .unwrap()
            .next()
            .unwrap(),
    )
    .await;
    cfg.host("127.0.0.1").port(proxy.addr.port());
    let url = format!(
        "postgresql://{}@127.0.0.1:{}/{}",
        cfg.get_user().unwrap_or("postgres"),
        proxy.addr.port(),
        cfg.get_dbname().unwrap()
    );
    let db = Db::connect(&url, 2, Dialect::Postgres, Metrics::new("outage")).unwrap();
    let policy = FlushPolicy {
        interval: Duration::from_millis(20),
        batch_size: 100,
    };
    let persistence = PersistenceActor::new(db.clone(), policy).start();

    proxy.cut();
    persistence
        .send(MarkDirty {
            row: dirty(id, epoch, 42),
            fence: None,
        })
        .await
        .unwrap();
    let stats = common::wait_for(
        "flushes to fail while the database is away",
        WAIT,
        async || {
            let stats = persistence.send(GetStats).await.unwrap();
            if stats.failed_flushes >= 2 {
                Ok(stats)
            } else {
                Err(format!("{stats:?}"))
            }
        },
    )
    .await;
    assert!(
        stats.failed_flushes >= 2,
        "flushes failed while the database was away: {stats:?}"
    );
    assert_eq!(stats.backlog, 1, "the row is kept");
    // A flush asked for while the database is away answers with the failure, not never.
    let refused = tokio::time::timeout(Duration::from_secs(10), persistence.send(FlushNow)).await;
    assert!(
        matches!(refused, Ok(Ok(Err(_)))),
        "flush_now reports the failure: {refused:?}"
    );
    assert_eq!(hp_of(&tdb.url, id).await, 10);

    proxy.restore();
    serai::persistence::flush_now(&persistence, Duration::from_secs(20))
        .await
        .expect("flush completes once the database is back");
    assert_eq!(hp_of(&tdb.url, id).await, 42);
    assert_eq!(persistence.send(GetStats).await.unwrap().backlog, 0);
}
