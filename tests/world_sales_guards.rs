//! The database is the last guard of a sale: the purchase transaction itself refuses what
//! would oversell or exceed a character's limit, whatever the caller believes (a sale owner
//! with a stale view, two owners at once during a failover), and a refused purchase changes
//! nothing. Called here directly, with no sale actor at all.

mod common;

use std::sync::Arc;

use futures_util::future::join_all;
use serai::domain::world::sale::SaleSpec;
use serai::persistence::receipts::Receipt;
use serai::persistence::world_sales::{self, Answer, Created, Purchase};
use serai::persistence::{Db, DbError};
use serai::request::RequestKey;
use uuid::Uuid;

fn spec(id: &str, stock: i64, limit: i64) -> SaleSpec {
    let now = chrono::Utc::now().timestamp_millis();
    SaleSpec {
        id: id.into(),
        node: "port_azul".into(),
        good: "dates".into(),
        stock,
        price: 10,
        per_character_limit: limit,
        starts_at_ms: now - 60_000,
        ends_at_ms: now + 3_600_000,
    }
}

fn purchase(sale: &SaleSpec, character: Uuid, quantity: i64) -> Purchase {
    Purchase {
        sale_id: sale.id.clone(),
        character_id: character,
        epoch: 0,
        good: sale.good.clone(),
        quantity,
        total: sale.price * quantity,
        limit: sale.per_character_limit,
    }
}

fn no_receipt() -> Answer {
    Arc::new(|_| None)
}

async fn state(pg: &tokio_postgres::Client, sale: &str, c: Uuid) -> (i64, i64, i64, i64) {
    let r = pg
        .query_one(
            "SELECT (SELECT sold FROM world_sale WHERE id = $1), \
             (SELECT gold FROM player_character WHERE id = $2), \
             COALESCE((SELECT quantity FROM caravan_cargo WHERE character_id = $2), 0), \
             COALESCE((SELECT quantity FROM world_sale_purchase WHERE sale_id = $1 AND character_id = $2), 0)",
            &[&sale, &c],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

async fn create(db: &Db, s: &SaleSpec) {
    assert!(matches!(
        world_sales::create(db, s).await,
        Ok(Created::Inserted(_))
    ));
}

#[actix_rt::test]
async fn the_purchase_transaction_refuses_overselling_and_over_the_limit() {
    let (tdb, db) = common::migrated_db().await;
    let pg = common::raw_client(&tdb.url).await;
    let c = common::rows::insert_characters(&pg, 2).await;
    let sale = spec("guarded", 3, 2);
    create(&db, &sale).await;
    assert!(matches!(
        world_sales::create(&db, &sale).await,
        Ok(Created::Same(_))
    ));
    let mut other = sale.clone();
    other.price = 11;
    assert!(matches!(
        world_sales::create(&db, &other).await,
        Ok(Created::Different(_))
    ));

    let done = world_sales::buy(&db, &purchase(&sale, c[0], 2), no_receipt())
        .await
        .unwrap();
    assert_eq!(
        (done.gold, done.held, done.rows.sold, done.rows.bought),
        (80, 2, 2, 2)
    );
    // Over the limit: refused, nothing changed.
    let r = world_sales::buy(&db, &purchase(&sale, c[0], 1), no_receipt()).await;
    assert!(matches!(r, Err(DbError::Rejected(_))), "{r:?}");
    assert_eq!(state(&pg, "guarded", c[0]).await, (2, 80, 2, 2));
    // More than is left: refused, nothing changed.
    let r = world_sales::buy(&db, &purchase(&sale, c[1], 2), no_receipt()).await;
    assert!(matches!(r, Err(DbError::Rejected(_))), "{r:?}");
    assert_eq!(state(&pg, "guarded", c[1]).await, (2, 100, 0, 0));
    // A stale epoch (another node owns the buyer now): fenced, nothing changed.
    let mut stale = purchase(&sale, c[1], 1);
    stale.epoch = 7;
    let r = world_sales::buy(&db, &stale, no_receipt()).await;
    assert!(matches!(r, Err(DbError::Fenced(_))), "{r:?}");
    assert_eq!(state(&pg, "guarded", c[1]).await, (2, 100, 0, 0));
    // Not enough gold: refused.
    pg.execute(
        "UPDATE player_character SET gold = 5 WHERE id = $1",
        &[&c[1]],
    )
    .await
    .unwrap();
    let r = world_sales::buy(&db, &purchase(&sale, c[1], 1), no_receipt()).await;
    assert!(matches!(r, Err(DbError::Rejected(_))), "{r:?}");
    pg.execute(
        "UPDATE player_character SET gold = 100 WHERE id = $1",
        &[&c[1]],
    )
    .await
    .unwrap();
    // The receipt commits with the purchase; the same key again is a duplicate, applied once.
    let key = RequestKey {
        user_id: Uuid::new_v4(),
        request_id: "guard-request-1".into(),
        fingerprint: "f".into(),
    };
    let answer: Answer = Arc::new(move |b| {
        Some(Receipt {
            key: key.clone(),
            answer: b.rows.sold.to_string(),
        })
    });
    let done = world_sales::buy(&db, &purchase(&sale, c[1], 1), answer.clone())
        .await
        .unwrap();
    assert_eq!(done.rows.sold, 3);
    let mut again = sale.clone();
    again.id = "guarded-2".into();
    create(&db, &again).await;
    let r = world_sales::buy(&db, &purchase(&again, c[1], 1), answer).await;
    assert!(matches!(r, Err(DbError::DuplicateRequest)), "{r:?}");
    assert_eq!(state(&pg, "guarded-2", c[1]).await, (0, 90, 1, 0));
}

#[actix_rt::test]
async fn concurrent_purchases_without_any_owner_never_oversell() {
    let (tdb, db) = common::migrated_db().await;
    let pg = common::raw_client(&tdb.url).await;
    let c = common::rows::insert_characters(&pg, 40).await;
    let sale = spec("race", 25, 2);
    create(&db, &sale).await;
    // Every character asks for 1 three times at once: 120 requests for 25 units, limit 2.
    let attempts = c.iter().flat_map(|id| [*id; 3]).map(|id| {
        let (db, p) = (db.clone(), purchase(&sale, id, 1));
        async move { world_sales::buy(&db, &p, no_receipt()).await }
    });
    let results = join_all(attempts).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(_) | Err(DbError::Rejected(_)))));
    let sold: i64 = pg
        .query_one("SELECT sold FROM world_sale WHERE id = 'race'", &[])
        .await
        .unwrap()
        .get(0);
    let over: i64 = pg
        .query_one(
            "SELECT count(*) FROM world_sale_purchase WHERE quantity > 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let spent: i64 = pg
        .query_one("SELECT sum(100 - gold)::INT8 FROM player_character", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((ok as i64, sold, over, spent), (25, 25, 0, 250));
}

mod actor {
    use std::time::Duration;

    use actix::Actor;
    use serai::domain::world::sale::{Committed, Outcome, SaleError};
    use serai::world::sale::messages::{GetStatus, Reserve, SaleStatus, Settle};
    use serai::world::sale::{Sale, SaleDeps};

    use super::*;

    fn deps(db: &Db, ttl: Duration) -> SaleDeps {
        SaleDeps {
            db: db.clone(),
            node_id: "node-test".into(),
            idle: Duration::from_secs(60),
            reservation_ttl: ttl,
        }
    }

    async fn status(sale: &actix::Addr<Sale>) -> SaleStatus {
        sale.send(GetStatus).await.unwrap().expect("loaded")
    }

    /// A reservation nobody settles is released after its lifetime; a commit that landed
    /// meanwhile is read back; a new activation (a failover) loads sold and the buyers' units.
    #[actix_rt::test]
    async fn unsettled_reservations_expire_and_a_new_owner_loads_the_rows() {
        let (tdb, db) = common::migrated_db().await;
        let pg = common::raw_client(&tdb.url).await;
        let c = common::rows::insert_characters(&pg, 2).await;
        let s = spec("timed", 4, 2);
        create(&db, &s).await;
        let sale = Sale::new("timed".into(), deps(&db, Duration::from_millis(300))).start();
        let grant = sale
            .send(Reserve {
                character_id: c[0],
                quantity: 2,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!((grant.total, grant.node.as_str()), (20, "port_azul"));
        let refused = sale
            .send(Reserve {
                character_id: c[0],
                quantity: 1,
            })
            .await
            .unwrap();
        assert_eq!(refused, Err(SaleError::OverLimit { limit: 2, left: 0 }));
        // The purchase commits but its caller dies before settling.
        world_sales::buy(&db, &purchase(&s, c[0], 2), no_receipt())
            .await
            .unwrap();
        common::wait_until(
            "the reservation expires",
            Duration::from_secs(5),
            async || {
                let st = status(&sale).await;
                st.open_reservations == 0 && st.sold == 2
            },
        )
        .await;
        let refused = sale
            .send(Reserve {
                character_id: c[0],
                quantity: 1,
            })
            .await
            .unwrap();
        assert!(
            matches!(refused, Err(SaleError::OverLimit { .. })),
            "the commit was read back"
        );
        // A settle of an earlier activation's reservation still teaches the rows.
        let done = world_sales::buy(&db, &purchase(&s, c[1], 1), no_receipt())
            .await
            .unwrap();
        sale.send(Settle {
            reservation_id: 99,
            character_id: c[1],
            outcome: Outcome::Committed(Some(done.rows)),
        })
        .await
        .unwrap();
        assert_eq!(status(&sale).await.sold, 3);
        assert_eq!(done.rows, Committed { sold: 3, bought: 1 });
        // Another node takes over (the first one's lease is gone): it loads the rows.
        pg.execute("UPDATE world_sale SET owner_node = NULL", &[])
            .await
            .unwrap();
        let mut other = deps(&db, Duration::from_secs(5));
        other.node_id = "node-other".into();
        let next = Sale::new("timed".into(), other).start();
        let st = status(&next).await;
        assert_eq!((st.sold, st.epoch), (3, 2));
        let r = next
            .send(Reserve {
                character_id: c[1],
                quantity: 2,
            })
            .await
            .unwrap();
        assert_eq!(
            r,
            Err(SaleError::OverLimit { limit: 2, left: 1 }),
            "its purchase was loaded"
        );
        let r = next
            .send(Reserve {
                character_id: c[1],
                quantity: 1,
            })
            .await
            .unwrap();
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(status(&next).await.reserved, 1);
        let missing = Sale::new("nosuch".into(), deps(&db, Duration::from_secs(5))).start();
        let r = missing
            .send(Reserve {
                character_id: c[1],
                quantity: 1,
            })
            .await
            .unwrap();
        assert_eq!(r, Err(SaleError::NotFound));
    }
}
