//! The Market actor against a real PostgreSQL: loading and quotes, concurrent reservations,
//! release and expiry, recovery written as deltas, claims, fencing and passivation.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;
use serai::domain::catalog::{Catalog, CatalogData};
use serai::domain::market::ledger::Committed;
use serai::domain::market::rules::GoodState;
use serai::domain::market::rules::{MarketError, Quote, Side};
use serai::market::Reservation;
use serai::market::{GetQuotes, GetStatus, Market, MarketDeps, Reserve, Settle, SettleOutcome};
use serai::persistence::claims::{self, EntityId, EntityTable};
use serai::persistence::default_catalog::default_catalog;
use serai::persistence::{markets, Db, DbError};
use serai::routing::Passivate;

const NODE_ID: &str = "node-a";

/// The market side of a trade as the character's trade transaction writes it (the same
/// statement, `markets::TRADE_SQL`), for tests that play that transaction.
async fn apply_trade(
    tx: &tokio_postgres::Transaction<'_>,
    node: &str,
    good: &str,
    quota_delta: i64,
    price: i64,
) -> Result<Committed, DbError> {
    let row = tx
        .query_opt(markets::TRADE_SQL, &[&node, &good, &quota_delta, &price])
        .await?;
    row.map(|r| markets::committed(&r, 0))
        .ok_or_else(|| DbError::Rejected(format!("the market at {node} has no {good} left")))
}

fn deps(db: &Db, catalog: Catalog) -> MarketDeps {
    MarketDeps::new(
        db.clone(),
        Arc::new(catalog),
        NODE_ID,
        Duration::from_secs(300),
    )
}

fn reserve(good: &str, side: Side, quantity: i64) -> Reserve {
    Reserve {
        good: good.into(),
        side,
        quantity,
        price_limit: None,
    }
}

async fn quota_in_db(db: &Db, node: &str, good: &str) -> i64 {
    markets::snapshot(db, node, good)
        .await
        .unwrap()
        .expect("snapshot row")
        .1
}

async fn quota_in_memory(market: &Addr<Market>, good: &str) -> i64 {
    let quotes = market.send(GetQuotes).await.unwrap();
    quotes.iter().find(|q| q.good == good).expect("quote").quota
}

/// The trade transaction's market side for a granted reservation: commits `r`'s quantity
/// (a buy) at its price and answers the row it left.
async fn commit_buy(db: &Db, node: &'static str, good: &'static str, r: &Reservation) -> Committed {
    let (quantity, price) = (r.quantity, r.unit_price);
    db.transact("test", |tx| {
        Box::pin(async move { apply_trade(tx, node, good, -quantity, price).await })
    })
    .await
    .expect("the trade commits")
}

/// Settles reservation `r` at `market` with `outcome`.
async fn settle(market: &Addr<Market>, r: &Reservation, outcome: SettleOutcome) {
    let msg = Settle {
        reservation_id: r.id,
        good: r.good.clone(),
        outcome,
    };
    market.send(msg).await.expect("the market answers");
}

/// Sets a snapshot row as if it had been written `minutes_ago`.
async fn set_row(url: &str, node: &str, good: &str, quota: i64, minutes_ago: i32) {
    common::raw_client(url)
        .await
        .execute(
            "UPDATE market_price_snapshot SET quota = $3, \
             updated_at = now() - make_interval(mins => $4) WHERE node = $1 AND good = $2",
            &[&node, &good, &quota, &minutes_ago],
        )
        .await
        .unwrap();
}

/// How long a test waits for something the market does on its own (a timer, a write).
const WAIT: Duration = Duration::from_secs(10);

/// Waits until `check` holds, for at most [`WAIT`].
async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    common::wait_until(what, WAIT, check).await
}

/// The row of `good` at `node` as the database holds it (quota and version).
async fn row_in_db(db: &Db, node: &str, good: &str) -> Committed {
    markets::read_stock(db, node, good)
        .await
        .unwrap()
        .expect("snapshot row")
}

/// The default world with `goods` at `node` restocking fast (100 units a second), for
/// recovery tests.
fn fast_restock_catalog(node: &str, goods: &[&str]) -> Catalog {
    let c = default_catalog();
    let mut stock = c.all_stock().to_vec();
    for s in stock.iter_mut() {
        if s.node == node && goods.contains(&s.good.as_str()) {
            s.restock_per_min = 6_000;
        }
    }
    Catalog::from_data(CatalogData {
        version: c.version,
        factions: c.factions().to_vec(),
        backgrounds: c.backgrounds().to_vec(),
        skill_trees: c.skill_trees().to_vec(),
        skills: c.skills().to_vec(),
        items: c.items().to_vec(),
        crew: c.crew_archetypes().to_vec(),
        goods: c.goods().to_vec(),
        nodes: c.nodes().to_vec(),
        routes: c.routes().to_vec(),
        stock,
    })
}

#[actix_rt::test]
async fn quotes_for_a_node_of_the_default_catalog() {
    let (_tdb, db) = common::migrated_db().await;
    let catalog = default_catalog();
    let market = Market::new("port_azul".into(), deps(&db, catalog.clone())).start();
    let quotes = market.send(GetQuotes).await.unwrap();
    let stock: Vec<_> = catalog.stock_at("port_azul").collect();
    assert_eq!(quotes.len(), stock.len());
    assert!(!quotes.is_empty());
    for (q, s) in quotes.iter().zip(&stock) {
        let at_base = GoodState::at_base(s);
        assert_eq!(q.good, s.good);
        assert_eq!(q.buy_price, at_base.buy_price());
        assert_eq!(q.sell_price, at_base.sell_price());
        assert!(q.sell_price < q.buy_price);
        assert!(q.buy_price > s.base_price && q.sell_price < s.base_price);
        assert_eq!(q.quota, s.base_quota);
        assert_eq!(q.sell_quota, 2 * s.base_quota);
    }

    // Orders are checked.
    let e = |r: Result<_, MarketError>| r.unwrap_err();
    assert_eq!(
        e(market
            .send(reserve("dragon_eggs", Side::Buy, 1))
            .await
            .unwrap()),
        MarketError::UnknownGood
    );
    for q in [0, -1, 10_001, i64::MAX, i64::MIN] {
        assert_eq!(
            e(market.send(reserve("salt", Side::Buy, q)).await.unwrap()),
            MarketError::BadQuantity
        );
    }
    let salt = &quotes.iter().find(|q| q.good == "salt").unwrap();
    let limited = Reserve {
        price_limit: Some(salt.buy_price - 1),
        ..reserve("salt", Side::Buy, 1)
    };
    assert_eq!(
        e(market.send(limited).await.unwrap()),
        MarketError::PriceLimit {
            unit_price: salt.buy_price,
            limit: salt.buy_price - 1
        }
    );
    let ok = Reserve {
        price_limit: Some(salt.buy_price),
        ..reserve("salt", Side::Buy, 1)
    };
    let r = market.send(ok).await.unwrap().unwrap();
    assert_eq!((r.unit_price, r.total), (salt.buy_price, salt.buy_price));
    assert_eq!(r.node, "port_azul");
    assert_eq!(r.stock_after, salt.quota - 1);
    // Nothing was refused into the database.
    assert_eq!(quota_in_db(&db, "port_azul", "salt").await, salt.quota);
}

#[actix_rt::test]
async fn an_unknown_node_has_no_market() {
    let (_tdb, db) = common::migrated_db().await;
    let market = Market::new("atlantis".into(), deps(&db, default_catalog())).start();
    let (quotes, reserved) = futures_util::join!(
        market.send(GetQuotes),
        market.send(reserve("salt", Side::Buy, 1))
    );
    assert!(quotes.unwrap().is_empty());
    assert_eq!(reserved.unwrap(), Err(MarketError::UnknownGood));
    eventually("the actor to stop", async || !market.connected()).await;
}

/// 50 callers buy the same scarce good at once, each running the whole trade: reserve, the
/// trade transaction (quota by delta), settle.
#[actix_rt::test]
async fn fifty_concurrent_buyers_never_oversell() {
    let (tdb, db) = common::migrated_db().await;
    let catalog = default_catalog();
    let (node, good) = ("port_azul", "spices");
    let stock = catalog.stock(node, good).unwrap().base_quota;
    assert!(stock < 50, "the test needs a scarce good");
    let market = Market::new(node.into(), deps(&db, catalog)).start();

    let trades = (0..50).map(|_| {
        let (market, db) = (market.clone(), db.clone());
        async move {
            let r = match market.send(reserve(good, Side::Buy, 1)).await.unwrap() {
                Ok(r) => r,
                Err(e) => return Err(e),
            };
            let (price, quantity) = (r.unit_price, r.quantity);
            let committed = db
                .transact("test", |tx| {
                    Box::pin(async move { apply_trade(tx, node, good, -quantity, price).await })
                })
                .await;
            let outcome = match &committed {
                Ok(row) => SettleOutcome::Committed(Some(*row)),
                Err(_) => SettleOutcome::NotRun,
            };
            market
                .send(Settle {
                    reservation_id: r.id,
                    good: good.into(),
                    outcome,
                })
                .await
                .unwrap();
            if let Err(e) = committed {
                panic!("trade transaction failed: {e}");
            }
            Ok(r)
        }
    });
    let results = join_all(trades.map(actix_rt::spawn)).await;
    let results: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    let granted = results.iter().filter(|r| r.is_ok()).count() as i64;
    assert_eq!(granted, stock);
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r, &MarketError::Insufficient { available: 0 });
    }
    assert_eq!(quota_in_memory(&market, good).await, 0);
    assert_eq!(quota_in_db(&db, node, good).await, 0);
    let status = market.send(GetStatus).await.unwrap().unwrap();
    assert_eq!(status.open_reservations, 0);
    let none_negative: i64 = common::raw_client(&tdb.url)
        .await
        .query_one(
            "SELECT count(*) FROM market_price_snapshot WHERE quota < 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(none_negative, 0);

    // The quota is gone: the next buyer is refused, a seller is welcome and prices reflect it.
    let quote = market.send(GetQuotes).await.unwrap();
    let quote = quote.iter().find(|q| q.good == good).unwrap();
    let base = GoodState::at_base(default_catalog().stock(node, good).unwrap());
    assert!(quote.buy_price > base.buy_price());
    assert_eq!(quote.sell_quota, 3 * stock);
}

#[actix_rt::test]
async fn concurrent_orders_of_mixed_sizes_take_at_most_the_stock() {
    let (_tdb, db) = common::migrated_db().await;
    let (node, good) = ("port_azul", "wine");
    let stock = default_catalog().stock(node, good).unwrap().base_quota;
    let market = Market::new(node.into(), deps(&db, default_catalog())).start();
    let asks: Vec<i64> = (0..50).map(|i| 1 + i % 7).collect();
    assert!(asks.iter().sum::<i64>() > stock);
    let sends = asks
        .iter()
        .map(|&q| market.send(reserve(good, Side::Buy, q)));
    let results = join_all(sends).await;
    let mut left = stock;
    for (q, r) in asks.iter().zip(results) {
        match r.unwrap() {
            Ok(r) => {
                left -= q;
                assert_eq!(r.stock_after, left);
            }
            Err(MarketError::Insufficient { available }) => {
                assert_eq!(available, left);
                assert!(available < *q);
            }
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(left >= 0);
    }
    assert_eq!(quota_in_memory(&market, good).await, left);
    assert!(left < 7);
}

#[actix_rt::test]
async fn release_restores_the_stock_and_prices() {
    let (_tdb, db) = common::migrated_db().await;
    let (node, good) = ("port_azul", "furs");
    let market = Market::new(node.into(), deps(&db, default_catalog())).start();
    let before = market.send(GetQuotes).await.unwrap();

    let buy = market
        .send(reserve(good, Side::Buy, 10))
        .await
        .unwrap()
        .unwrap();
    let sell = market
        .send(reserve(good, Side::Sell, 4))
        .await
        .unwrap()
        .unwrap();
    let during = market.send(GetQuotes).await.unwrap();
    assert_ne!(during, before);
    let furs = |qs: &[Quote]| qs.iter().find(|q| q.good == good).unwrap().clone();
    // The sale is not buyable until it commits.
    assert_eq!(furs(&during).quota, furs(&before).quota - 10);
    // A buy of 10 costs more per unit than one unit; selling back pays less than that.
    assert!(buy.unit_price > furs(&before).buy_price);
    assert_eq!(buy.total, buy.unit_price * 10);
    assert!(sell.unit_price < buy.unit_price);
    assert_eq!(sell.total, sell.unit_price * 4);

    for id in [buy.id, sell.id] {
        market
            .send(Settle {
                reservation_id: id,
                good: good.into(),
                outcome: SettleOutcome::NotRun,
            })
            .await
            .unwrap();
    }
    assert_eq!(market.send(GetQuotes).await.unwrap(), before);
    // Settling again, or an unknown id, changes nothing.
    market
        .send(Settle {
            reservation_id: buy.id,
            good: good.into(),
            outcome: SettleOutcome::Committed(None),
        })
        .await
        .unwrap();
    assert_eq!(market.send(GetQuotes).await.unwrap(), before);
    assert_eq!(
        market
            .send(GetStatus)
            .await
            .unwrap()
            .unwrap()
            .open_reservations,
        0
    );
}

#[actix_rt::test]
async fn unsettled_reservations_are_released_by_the_timer() {
    let (_tdb, db) = common::migrated_db().await;
    let (node, good) = ("port_azul", "salt");
    let mut d = deps(&db, default_catalog());
    d.reservation_ttl = Duration::from_millis(300);
    let market = Market::new(node.into(), d).start();
    let full = quota_in_memory(&market, good).await;
    let r = market
        .send(reserve(good, Side::Buy, 25))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quota_in_memory(&market, good).await, full - 25);
    eventually("the reservation to expire", async || {
        quota_in_memory(&market, good).await == full
    })
    .await;
    // The trade committed after all (a slow caller): the row its settle brings is adopted.
    let row = commit_buy(&db, node, good, &r).await;
    settle(&market, &r, SettleOutcome::Committed(Some(row))).await;
    assert_eq!(quota_in_memory(&market, good).await, full - 25);
}

#[actix_rt::test]
async fn a_commit_the_market_did_not_see_is_read_from_the_row() {
    let (_tdb, db) = common::migrated_db().await;
    let (node, good) = ("port_azul", "salt");
    let mut d = deps(&db, default_catalog());
    d.reservation_ttl = Duration::from_millis(300);
    let market = Market::new(node.into(), d).start();
    let full = quota_in_memory(&market, good).await;
    let r = market
        .send(reserve(good, Side::Buy, 25))
        .await
        .unwrap()
        .unwrap();
    // The trade commits, but its settle is lost: the reservation expires, the market reads the
    // row again and holds what the database holds.
    commit_buy(&db, node, good, &r).await;
    eventually("the market to read the row", async || {
        quota_in_memory(&market, good).await == full - 25
    })
    .await;
    assert_eq!(quota_in_db(&db, node, good).await, full - 25);
    // A commit resolved without its row (from a receipt) for a reservation already gone: the
    // market reads the row and stays exact.
    let r = market
        .send(reserve(good, Side::Buy, 5))
        .await
        .unwrap()
        .unwrap();
    commit_buy(&db, node, good, &r).await;
    settle(&market, &r, SettleOutcome::Committed(None)).await;
    eventually("the market to read the row", async || {
        quota_in_memory(&market, good).await == full - 30
    })
    .await;
    assert_eq!(quota_in_db(&db, node, good).await, full - 30);
}

#[actix_rt::test]
async fn recovery_writes_a_delta_that_a_fresh_market_sees() {
    let (tdb, db) = common::migrated_db().await;
    let node = "port_azul";
    let catalog = default_catalog();
    let salt = catalog.stock(node, "salt").unwrap().clone();
    let glass = catalog.stock(node, "glassware").unwrap().clone();
    assert_eq!((salt.base_quota, salt.restock_per_min), (200, 6));
    assert_eq!((glass.base_quota, glass.restock_per_min), (54, 1));
    // Ten minutes ago salt ran low and glassware piled up.
    set_row(&tdb.url, node, "salt", 100, 10).await;
    set_row(&tdb.url, node, "glassware", 80, 10).await;

    let market = Market::new(node.into(), deps(&db, catalog.clone())).start();
    // On load the recovery owed is written: +6/min and -1/min for ten minutes.
    eventually("the recovery write", async || {
        quota_in_db(&db, node, "salt").await == 160
    })
    .await;
    assert_eq!(quota_in_db(&db, node, "glassware").await, 70);
    assert_eq!(quota_in_memory(&market, "salt").await, 160);
    assert_eq!(quota_in_memory(&market, "glassware").await, 70);
    let (price, _) = markets::snapshot(&db, node, "salt").await.unwrap().unwrap();
    assert_eq!(price, GoodState::from_stock(&salt, 160).reference_price());
    assert!(price > salt.base_price);

    market.send(Passivate).await.unwrap();
    eventually("passivation", async || !market.connected()).await;
    let (salt_row, glass_row) = (
        row_in_db(&db, node, "salt").await,
        row_in_db(&db, node, "glassware").await,
    );

    let fresh = Market::new(node.into(), deps(&db, catalog)).start();
    assert_eq!(quota_in_memory(&fresh, "salt").await, 160);
    assert_eq!(quota_in_memory(&fresh, "glassware").await, 70);
    // Nothing more was owed. Passivating answers once the fresh market's writes are done (the
    // recovery it planned on load, then its last one) and its claim is released: whatever it
    // would have written is in the database by then, and nothing was (no row version moved).
    fresh.send(Passivate).await.unwrap();
    assert_eq!(
        claims::owner(&db, EntityTable::TradeNode, &EntityId::Text(node.into()))
            .await
            .unwrap()
            .and_then(|(owner, _)| owner),
        None,
        "the fresh market finished passivating"
    );
    assert_eq!(quota_in_db(&db, node, "salt").await, 160);
    assert_eq!(row_in_db(&db, node, "salt").await, salt_row);
    assert_eq!(row_in_db(&db, node, "glassware").await, glass_row);
}

#[actix_rt::test]
async fn recovery_is_a_delta_and_runs_on_a_timer() {
    let (tdb, db) = common::migrated_db().await;
    let (node, good) = ("port_azul", "salt");
    // Wine restocks fast too: moved below its base later, its recovery shows the timer ran.
    let marker = "wine";
    let mut d = deps(&db, fast_restock_catalog(node, &[good, marker]));
    d.recovery_interval = Duration::from_millis(100);
    let market = Market::new(node.into(), d).start();
    assert_eq!(quota_in_memory(&market, good).await, 200);

    // A trade: reserve 150, commit it in the database (quota by delta), settle.
    let r = market
        .send(reserve(good, Side::Buy, 150))
        .await
        .unwrap()
        .unwrap();
    let row = commit_buy(&db, node, good, &r).await;
    settle(&market, &r, SettleOutcome::Committed(Some(row))).await;
    // Another writer moves the quota too (a delta the market knows nothing of): recovery adds to
    // it instead of overwriting it, and the market adopts the row it wrote.
    common::raw_client(&tdb.url)
        .await
        .execute(
            "UPDATE market_price_snapshot SET quota = quota - 7 WHERE node = $1 AND good = $2",
            &[&node, &good],
        )
        .await
        .unwrap();
    // 100 units a second: back at the base within a second or two, in memory …
    eventually("recovery in memory", async || {
        quota_in_memory(&market, good).await == 200
    })
    .await;
    // … and in the database: memory is the row.
    assert_eq!(quota_in_db(&db, node, good).await, 200);
    let at_base = row_in_db(&db, node, good).await;
    // At the base nothing more is written. Shown by the timer's own work: the marker good is
    // bought below its base, and every recovery run that brings it back plans salt too (one
    // plan and one write for all goods); once the marker is back, those runs have happened
    // and salt's row has not moved (same quota, same version).
    let marker_base = quota_in_memory(&market, marker).await;
    let r = market
        .send(reserve(marker, Side::Buy, 30))
        .await
        .unwrap()
        .unwrap();
    let row = commit_buy(&db, node, marker, &r).await;
    assert_eq!(row.quota, marker_base - 30);
    settle(&market, &r, SettleOutcome::Committed(Some(row))).await;
    eventually(
        "the timer to restock the marker good in the database",
        async || {
            row_in_db(&db, node, marker).await.version > row.version
                && quota_in_db(&db, node, marker).await == marker_base
        },
    )
    .await;
    assert_eq!(quota_in_db(&db, node, good).await, 200);
    assert_eq!(row_in_db(&db, node, good).await, at_base);
}

#[actix_rt::test]
async fn claim_bumps_the_owner_epoch_and_passivation_releases_it() {
    let (_tdb, db) = common::migrated_db().await;
    let node = "saltspire";
    let id = EntityId::Text(node.into());
    let (owner, epoch) = claims::owner(&db, EntityTable::TradeNode, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner, None);

    let mut d = deps(&db, default_catalog());
    d.idle = Duration::from_millis(300);
    let market = Market::new(node.into(), d.clone()).start();
    let status = market.send(GetStatus).await.unwrap().unwrap();
    assert_eq!(status.epoch, epoch + 1);
    assert_eq!(
        claims::owner(&db, EntityTable::TradeNode, &id)
            .await
            .unwrap(),
        Some((Some(NODE_ID.to_string()), epoch + 1))
    );

    // An open reservation keeps the market alive past its idle timeout.
    let r = market
        .send(reserve("salt", Side::Sell, 3))
        .await
        .unwrap()
        .unwrap();
    // The yardstick: a market of another node with three times the idle timeout, started
    // (its last activity) after that reservation and left alone. Once it has passivated, this
    // market has been idle for more than two of its idle timeouts and its timer (one tick per
    // idle timeout) has looked at it since: without its reservation it would be gone. (The
    // twin's timer ticks as often, so it passivates soon after its own timeout.)
    let mut twin = d.clone();
    twin.idle = 3 * d.idle;
    twin.recovery_interval = d.idle;
    let twin = Market::new("port_azul".into(), twin).start();
    assert!(
        twin.send(GetStatus).await.unwrap().is_some(),
        "the twin loaded"
    );
    eventually("the idle twin market to passivate", async || {
        !twin.connected()
    })
    .await;
    assert!(market.connected());
    market
        .send(Settle {
            reservation_id: r.id,
            good: "salt".into(),
            outcome: SettleOutcome::NotRun,
        })
        .await
        .unwrap();
    // Idle: it passivates and releases its claim; the epoch stays for the next claim to bump.
    eventually("passivation", async || !market.connected()).await;
    assert_eq!(
        claims::owner(&db, EntityTable::TradeNode, &id)
            .await
            .unwrap(),
        Some((None, epoch + 1))
    );
    let again = Market::new(node.into(), d).start();
    let status = again.send(GetStatus).await.unwrap().unwrap();
    assert_eq!(status.epoch, epoch + 2);
    // Reservation ids never repeat across activations.
    let r2 = again
        .send(reserve("salt", Side::Sell, 3))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(r.id, r2.id);
}

#[actix_rt::test]
async fn a_newer_claim_fences_the_market() {
    let (tdb, db) = common::migrated_db().await;
    let (node, good) = ("port_azul", "salt");
    let mut d = deps(&db, fast_restock_catalog(node, &[good]));
    d.recovery_interval = Duration::from_millis(100);
    let market = Market::new(node.into(), d).start();
    let r = market
        .send(reserve(good, Side::Buy, 150))
        .await
        .unwrap()
        .unwrap();
    let row = commit_buy(&db, node, good, &r).await;
    settle(&market, &r, SettleOutcome::Committed(Some(row))).await;
    // Another node takes the market over.
    let id = EntityId::Text(node.into());
    let theirs = claims::claim(&db, EntityTable::TradeNode, &id, "node-b")
        .await
        .unwrap();
    let written = quota_in_db(&db, node, good).await;
    // Its next recovery write is fenced: nothing is written and the actor stops. Once it is
    // gone it can start nothing more, and once no other session on the database has a
    // statement running or a transaction open, nothing it started can still land.
    eventually("the fenced market to stop", async || !market.connected()).await;
    common::wait_db_quiet(&tdb.url, WAIT).await;
    assert_eq!(quota_in_db(&db, node, good).await, written);
    assert_eq!(
        claims::owner(&db, EntityTable::TradeNode, &id)
            .await
            .unwrap(),
        Some((Some("node-b".to_string()), theirs))
    );
}

#[actix_rt::test]
async fn apply_trade_refuses_to_take_a_quota_below_zero() {
    let (_tdb, db) = common::migrated_db().await;
    let (node, good) = ("port_azul", "spices");
    let quota = quota_in_db(&db, node, good).await;
    let over = db
        .transact("test", |tx| {
            Box::pin(async move { apply_trade(tx, node, good, -(quota + 1), 1).await })
        })
        .await;
    assert!(matches!(over, Err(DbError::Rejected(_))));
    assert_eq!(quota_in_db(&db, node, good).await, quota);
    db.transact("test", |tx| {
        Box::pin(async move { apply_trade(tx, node, good, 5, 99).await })
    })
    .await
    .unwrap();
    assert_eq!(
        markets::snapshot(&db, node, good).await.unwrap(),
        Some((99, quota + 5))
    );
}

/// A market that moves while a trade is in flight (handoff): the new activation loaded the row
/// before the trade committed; the settle of a reservation it never granted still brings the
/// row, so it holds what the database holds and never grants the units twice.
#[actix_rt::test]
async fn a_trade_in_flight_across_a_handoff_reaches_the_new_activation() {
    let (_tdb, db) = common::migrated_db().await;
    let (node, good) = ("port_azul", "salt");
    let old = Market::new(node.into(), deps(&db, default_catalog())).start();
    let full = quota_in_memory(&old, good).await;
    let r = old
        .send(reserve(good, Side::Buy, 40))
        .await
        .unwrap()
        .unwrap();
    old.send(Passivate).await.unwrap();
    let new = Market::new(node.into(), deps(&db, default_catalog())).start();
    assert_eq!(quota_in_memory(&new, good).await, full);
    let price = r.unit_price;
    let row = db
        .transact("test", |tx| {
            Box::pin(async move { apply_trade(tx, node, good, -40, price).await })
        })
        .await
        .unwrap();
    new.send(Settle {
        reservation_id: r.id,
        good: good.into(),
        outcome: SettleOutcome::Committed(Some(row)),
    })
    .await
    .unwrap();
    assert_eq!(quota_in_memory(&new, good).await, full - 40);
    assert_eq!(quota_in_db(&db, node, good).await, full - 40);
    // Everything left can be bought, and not one unit more.
    let rest = new
        .send(reserve(good, Side::Buy, full - 40))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest.quantity, full - 40);
    assert_eq!(
        new.send(reserve(good, Side::Buy, 1)).await.unwrap(),
        Err(MarketError::Insufficient { available: 0 })
    );
}

/// A newer catalog installed while the market runs: at its next request the goods it still
/// trades take the new parameters (committed stock and open reservations kept), a good no
/// longer traded there leaves, and a good newly traded there joins once its row is seeded.
#[actix_rt::test]
async fn a_new_catalog_version_reprices_adds_and_removes_goods_at_the_next_request() {
    use serai::domain::catalog::{CurrentCatalog, Stock};
    let (_tdb, db) = common::migrated_db().await;
    let node = "port_azul";
    let base = default_catalog();
    let current = CurrentCatalog::from(base.clone());
    let d = MarketDeps::new(
        db.clone(),
        current.clone(),
        NODE_ID,
        Duration::from_secs(300),
    );
    let market = Market::new(node.into(), d).start();
    let held: Vec<Stock> = base.stock_at(node).cloned().collect();
    let (kept, dropped) = (held[0].clone(), held[1].clone());
    let fresh = base
        .goods()
        .iter()
        .find(|g| base.stock(node, &g.code).is_none())
        .expect("a good not traded here")
        .code
        .clone();
    let open = market
        .send(reserve(&kept.good, Side::Buy, 5))
        .await
        .unwrap()
        .unwrap();

    // Version 2: `kept` at twice its base price, `dropped` gone, `fresh` traded here.
    let mut stock: Vec<Stock> = base
        .all_stock()
        .iter()
        .filter(|s| !(s.node == node && s.good == dropped.good))
        .cloned()
        .collect();
    for s in stock.iter_mut() {
        if s.node == node && s.good == kept.good {
            s.base_price *= 2;
        }
    }
    let added = Stock {
        node: node.into(),
        good: fresh.clone(),
        base_price: 50,
        base_quota: 40,
        restock_per_min: 1,
    };
    stock.push(added.clone());
    let next = Catalog::from_data(CatalogData {
        version: 2,
        factions: base.factions().to_vec(),
        backgrounds: base.backgrounds().to_vec(),
        skill_trees: base.skill_trees().to_vec(),
        skills: base.skills().to_vec(),
        items: base.items().to_vec(),
        crew: base.crew_archetypes().to_vec(),
        goods: base.goods().to_vec(),
        nodes: base.nodes().to_vec(),
        routes: base.routes().to_vec(),
        stock,
    });
    next.validate().expect("a valid catalog");
    assert!(current.install(Arc::new(next)));

    let quotes = market.send(GetQuotes).await.unwrap();
    assert!(quotes.iter().all(|q| q.good != dropped.good), "{quotes:?}");
    let status = market.send(GetStatus).await.unwrap().expect("loaded");
    assert_eq!(status.open_reservations, 1);
    let ledger = status
        .goods
        .iter()
        .find(|(g, _)| *g == kept.good)
        .map(|(_, l)| *l)
        .expect("kept");
    assert_eq!(ledger.state.base_price, kept.base_price * 2);
    assert_eq!(ledger.committed.quota, kept.base_quota, "the row is kept");
    assert_eq!(ledger.open_buys, 5, "the reservation is kept");
    let q = quotes.iter().find(|q| q.good == kept.good).unwrap();
    assert_eq!(q.quota, kept.base_quota - 5);
    assert_eq!(q.buy_price, ledger.state.buy_price());
    assert!(q.buy_price > GoodState::at_base(&kept).buy_price() * 19 / 10);
    assert_eq!(
        market
            .send(reserve(&dropped.good, Side::Buy, 1))
            .await
            .unwrap(),
        Err(MarketError::UnknownGood)
    );
    eventually("the new good joins", async || {
        let quotes = market.send(GetQuotes).await.unwrap();
        quotes
            .iter()
            .any(|q| q.good == fresh && q.buy_price == GoodState::at_base(&added).buy_price())
    })
    .await;
    assert_eq!(
        quota_in_db(&db, node, &fresh).await,
        40,
        "its row is seeded"
    );
    settle(&market, &open, SettleOutcome::NotRun).await;
    assert_eq!(quota_in_memory(&market, &kept.good).await, kept.base_quota);
}
