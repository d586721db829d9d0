//! Poison rows against a real PostgreSQL: a row the database refuses for a reason of its own
//! (bad data, a constraint) is retried a few times, then set aside in `compensation` while
//! the rest of its batch is written and the node's flushes go on; operators list, retry and
//! discard the records over the admin HTTP API.

mod common;

use std::time::{Duration, Instant};

use actix::prelude::*;
use serai::persistence::backlog::PoisonPolicy;
use serai::persistence::batch::{AttributeDirty, CharacterDirty, DirtyRow};
use serai::persistence::messages::{FlushEntity, GetStats, MarkDirty};
use serai::persistence::{flush_now, FlushPolicy, PersistenceActor};
use uuid::Uuid;

fn dirty(id: Uuid, location: &str, hp: i32) -> DirtyRow {
    DirtyRow::Character(CharacterDirty {
        id,
        epoch: 0,
        location: location.into(),
        hp,
        xp: 1,
        level: 1,
        skill_points: 0,
        travel: None,
    })
}

async fn hp_and_location(pg: &tokio_postgres::Client, id: Uuid) -> (i32, String) {
    let r = pg
        .query_one(
            "SELECT hp, location FROM player_character WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

fn fast_poison() -> PoisonPolicy {
    PoisonPolicy {
        max_attempts: 3,
        first_delay: Duration::from_millis(20),
    }
}

fn manual_policy() -> FlushPolicy {
    // Only explicit flushes write, so the test decides when one happens.
    FlushPolicy {
        interval: Duration::from_secs(3600),
        batch_size: 10_000,
    }
}

/// The value of a metric line `name{node="…"} v` in a Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[actix_rt::test]
async fn a_poison_row_is_set_aside_and_the_rest_of_its_batch_is_written() {
    let (tdb, db) = common::migrated_db().await;
    let pg = common::raw_client(&tdb.url).await;
    let ids = common::rows::insert_characters(&pg, 40).await;
    let poison = ids[17];
    let persistence = PersistenceActor::new(db.clone(), manual_policy())
        .with_node_id("node-p")
        .with_poison(fast_poison())
        .start();
    for id in &ids {
        // A NUL byte: PostgreSQL refuses it in text (SQLSTATE 22021), whatever is retried.
        let location = if *id == poison {
            "bad\0place"
        } else {
            "harbour"
        };
        persistence.do_send(MarkDirty {
            row: dirty(*id, location, 7),
            fence: None,
        });
    }
    // The node-wide flush completes: the poison row no longer holds anything up.
    flush_now(&persistence, Duration::from_secs(20))
        .await
        .expect("the flush completes despite the poison row");
    for id in &ids {
        let expected = if *id == poison {
            (10, "start".to_string())
        } else {
            (7, "harbour".to_string())
        };
        assert_eq!(hp_and_location(&pg, *id).await, expected, "row {id}");
    }
    let stats = persistence.send(GetStats).await.unwrap();
    assert_eq!(
        (stats.rows_written, stats.set_aside, stats.backlog),
        (39, 1, 0),
        "{stats:?}"
    );
    let records = pg
        .query(
            "SELECT row_table, row_id, node_id, attempts, error, payload FROM compensation",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.get::<_, String>(0), "player_character");
    assert_eq!(r.get::<_, Uuid>(1), poison);
    assert_eq!(r.get::<_, String>(2), "node-p");
    assert_eq!(r.get::<_, i64>(3), 3, "set aside after its bounded retries");
    let error: String = r.get(4);
    assert!(
        error.contains("22021"),
        "the database's error is kept: {error}"
    );
    let payload: DirtyRow = serde_json::from_str(&r.get::<_, String>(5)).unwrap();
    assert_eq!(
        payload,
        dirty(poison, "bad\0place", 7),
        "the row, unchanged"
    );
    let text = db.metrics().render();
    assert_eq!(metric(&text, "serai_compensation_rows_total"), Some(1.0));

    // Later flushes are not held up: a fresh batch goes straight through.
    persistence.do_send(MarkDirty {
        row: dirty(ids[0], "market", 8),
        fence: None,
    });
    flush_now(&persistence, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(hp_and_location(&pg, ids[0]).await, (8, "market".into()));

    // A newer version of the poison row is written: it supersedes the one set aside (a dirty
    // row is a whole snapshot), so the record goes rather than wait to roll the row back.
    persistence.do_send(MarkDirty {
        row: dirty(poison, "fixed", 9),
        fence: None,
    });
    flush_now(&persistence, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(hp_and_location(&pg, poison).await, (9, "fixed".into()));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open: i64 = pg
            .query_one("SELECT count(*) FROM compensation", &[])
            .await
            .unwrap()
            .get(0);
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the superseded record is still open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The critical write of an entity whose own row is poison: its flush reports the row set
/// aside (so the caller knows its rows are not all written), then the entity goes on.
#[actix_rt::test]
async fn an_entity_flush_reports_its_row_set_aside_and_then_goes_on() {
    let (tdb, db) = common::migrated_db().await;
    let pg = common::raw_client(&tdb.url).await;
    let ids = common::rows::insert_characters(&pg, 2).await;
    let (me, other) = (ids[0], ids[1]);
    let persistence = PersistenceActor::new(db.clone(), manual_policy())
        .with_poison(fast_poison())
        .start();
    persistence.do_send(MarkDirty {
        row: dirty(me, "harbour", 5),
        fence: None,
    });
    persistence.do_send(MarkDirty {
        row: DirtyRow::Attribute(AttributeDirty {
            character_id: me,
            epoch: 0,
            code: "str\0ength".into(),
            value: 3,
        }),
        fence: None,
    });
    persistence.do_send(MarkDirty {
        row: dirty(other, "elsewhere", 6),
        fence: None,
    });
    let started = Instant::now();
    let first = persistence.send(FlushEntity(me)).await.unwrap();
    let message = first.expect_err("one of my rows was set aside").to_string();
    assert!(message.contains("compensation"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(hp_and_location(&pg, me).await, (5, "harbour".into()));
    assert_eq!(
        hp_and_location(&pg, other).await,
        (10, "start".into()),
        "only my rows were written"
    );
    persistence
        .send(FlushEntity(me))
        .await
        .unwrap()
        .expect("nothing of mine is left");
    let sub: String = pg
        .query_one("SELECT row_sub FROM compensation WHERE row_id = $1", &[&me])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        sub, "str\\0ength",
        "the key is recorded, its NUL spelled out"
    );
}

#[actix_rt::test]
async fn operators_list_retry_and_discard_set_aside_rows() {
    let node = common::node::start_node().await;
    let (admin, token) = (node.node.admin_addr, node.config.admin_token.clone());
    let persistence = node.node.services.persistence.clone();
    let pg = common::raw_client(&node.db.url).await;
    let ids = common::rows::insert_characters(&pg, 3).await;
    let (constrained, garbled, fine) = (ids[0], ids[1], ids[2]);
    // A constraint an operator can lift: the row fails until then.
    pg.batch_execute(
        "ALTER TABLE player_character ADD CONSTRAINT test_hp_not_negative CHECK (hp >= 0)",
    )
    .await
    .unwrap();
    for row in [
        dirty(constrained, "harbour", -1),
        dirty(garbled, "bad\0place", 4),
        dirty(fine, "harbour", 9),
    ] {
        persistence.do_send(MarkDirty { row, fence: None });
    }
    flush_now(&persistence, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(hp_and_location(&pg, fine).await, (9, "harbour".into()));

    let http = |method: &'static str, path: String, token: Option<String>| async move {
        common::node::http(admin, method, &path, token.as_deref(), "")
            .await
            .expect("admin answers")
    };
    let tok = || Some(token.clone());
    let refused = http("GET", "/admin/compensation".into(), None).await;
    assert_eq!(refused.status, 401, "token-protected");

    // Paging: one record per page, the second page is the last.
    let page = http("GET", "/admin/compensation?limit=1".into(), tok()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.json();
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
    assert_eq!(page["open"], 2);
    let next = page["next"].as_str().expect("a next page").to_string();
    let last = http(
        "GET",
        format!("/admin/compensation?limit=1&after={next}"),
        tok(),
    )
    .await
    .json();
    assert_eq!(last["records"].as_array().unwrap().len(), 1);
    assert!(last["next"].is_null());
    let all = http("GET", "/admin/compensation".into(), tok())
        .await
        .json();
    let record_of = |row: Uuid| {
        all["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["row_id"] == row.to_string())
            .unwrap_or_else(|| panic!("a record for {row}: {all}"))
            .clone()
    };
    let (c, g) = (record_of(constrained), record_of(garbled));
    assert_eq!(c["table"], "player_character");
    assert_eq!(c["payload"]["hp"], -1);
    assert!(
        c["error"].as_str().unwrap().contains("23514"),
        "check violation: {c}"
    );
    let (c_id, g_id) = (
        c["id"].as_str().unwrap().to_string(),
        g["id"].as_str().unwrap().to_string(),
    );

    // Bad requests get clear JSON errors.
    for (method, path, status) in [
        ("GET", "/admin/compensation?limit=0".to_string(), 400),
        ("GET", "/admin/compensation?limit=many".to_string(), 400),
        ("GET", "/admin/compensation?after=nope".to_string(), 400),
        ("POST", "/admin/compensation/nope/retry".to_string(), 400),
        ("DELETE", "/admin/compensation/nope".to_string(), 400),
        (
            "POST",
            format!("/admin/compensation/{}/retry", Uuid::new_v4()),
            404,
        ),
        (
            "DELETE",
            format!("/admin/compensation/{}", Uuid::new_v4()),
            404,
        ),
    ] {
        let r = http(method, path.clone(), tok()).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        assert!(r.json()["message"].as_str().is_some(), "{}", r.body);
    }

    // Retried while the constraint holds: refused, kept with the new error.
    let again = http("POST", format!("/admin/compensation/{c_id}/retry"), tok()).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let kept = again.json();
    assert!(
        kept["message"].as_str().unwrap().contains("23514"),
        "{kept}"
    );
    assert_eq!(
        kept["record"]["attempts"],
        c["attempts"].as_i64().unwrap() + 1
    );
    assert_eq!(hp_and_location(&pg, constrained).await.0, 10);

    // The operator lifts the constraint: the retry writes the row and closes the record.
    pg.batch_execute("ALTER TABLE player_character DROP CONSTRAINT test_hp_not_negative")
        .await
        .unwrap();
    let written = http("POST", format!("/admin/compensation/{c_id}/retry"), tok()).await;
    assert_eq!(written.status, 200, "{}", written.body);
    assert_eq!(written.json()["outcome"], "written");
    assert_eq!(
        hp_and_location(&pg, constrained).await,
        (-1, "harbour".into())
    );

    // Bad data stays bad: refused again; then discarded.
    let garbled_again = http("POST", format!("/admin/compensation/{g_id}/retry"), tok()).await;
    assert_eq!(garbled_again.status, 409, "{}", garbled_again.body);
    let gone = http("DELETE", format!("/admin/compensation/{g_id}"), tok()).await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    let twice = http("DELETE", format!("/admin/compensation/{g_id}"), tok()).await;
    assert_eq!(twice.status, 404);
    let empty = http("GET", "/admin/compensation".into(), tok())
        .await
        .json();
    assert_eq!(empty["records"].as_array().unwrap().len(), 0);
    assert_eq!(empty["open"], 0);

    let metrics = http("GET", "/metrics".into(), None).await.body;
    assert_eq!(metric(&metrics, "serai_compensation_rows_total"), Some(2.0));
    assert_eq!(metric(&metrics, "serai_compensation_open"), Some(0.0));
    node.node.stop().await.unwrap();
}
