//! Limited-time sales on three real nodes in one process, over a real PostgreSQL: 500 buyers
//! created over the three nodes buy concurrently through all of them for a stock of 100 with a
//! limit of 2 per character; exactly 100 are sold, nobody is over the limit, gold and goods are
//! conserved and every answer matches the database. Also: the admin endpoints' validation and
//! idempotency, the refusals (outside the window, at another node, over the limit), and a
//! repeated request_id answered from its receipt.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use common::raw_client;
use common::sales::{self, admin, buy_until_done, rpc, sale_body, Terms, START_GOLD};
use futures_util::future::join_all;
use serde_json::{json, Value};

const BUYERS: usize = 500;

fn addrs(cluster: &TestCluster) -> Vec<SocketAddr> {
    (0..cluster.nodes.len())
        .map(|i| cluster.node(i).client_addr)
        .collect()
}

fn admin_of(cluster: &TestCluster, i: usize) -> (SocketAddr, String) {
    let n = cluster.node(i);
    (n.admin_addr, n.services.config.admin_token.clone())
}

/// A good to sell: the first of the catalog (its weight fits a new caravan's room for a few).
fn a_good(cluster: &TestCluster) -> String {
    cluster.node(0).services.catalog.get().goods()[0]
        .code
        .clone()
}

fn other_node(cluster: &TestCluster, home: &str) -> String {
    let catalog = cluster.node(0).services.catalog.get();
    catalog
        .nodes()
        .iter()
        .find(|n| n.code != home)
        .unwrap()
        .code
        .clone()
}

async fn check_admin(cluster: &TestCluster, t: &Terms) {
    let (addr, token) = admin_of(cluster, 1);
    let body = sale_body(t);
    let field_of = |v: &Value| v["field"].as_str().unwrap_or_default().to_string();
    for (field, bad) in [
        ("node", json!("atlantis")),
        ("good", json!("unobtainium")),
        ("stock", json!(0)),
        ("price", json!(-1)),
        ("per_character_limit", json!(0)),
        ("ends_at", body["starts_at"].clone()),
    ] {
        let mut b = body.clone();
        b[field] = bad;
        let (status, v) = admin(addr, &token, "POST", &b).await;
        assert_eq!((status, field_of(&v).as_str()), (400, field), "{v}");
    }
    let (status, v) = admin(addr, "wrong", "POST", &body).await;
    assert_eq!(status, 401, "{v}");
    let (status, v) = admin(addr, &token, "GET", &Value::Null).await;
    assert_eq!(
        (status, v["sales"].as_array().map(Vec::len)),
        (200, Some(0)),
        "bad input changed nothing: {v}"
    );
    let (status, v) = admin(addr, &token, "POST", &body).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (v["stock_left"].as_i64(), v["state"].as_str()),
        (Some(t.stock), Some("open"))
    );
    let (status, _) = admin(addr, &token, "POST", &body).await;
    assert_eq!(status, 200, "the same sale again is idempotent");
    let mut different = body.clone();
    different["stock"] = json!(t.stock + 1);
    let (status, v) = admin(addr, &token, "POST", &different).await;
    assert_eq!((status, field_of(&v).as_str()), (409, "id"), "{v}");
}

#[actix_rt::test]
async fn five_hundred_buyers_over_three_nodes_buy_exactly_the_stock() {
    let started = Instant::now();
    let cluster = TestCluster::start(3, |_, _| {}).await;
    let pg = raw_client(&cluster.db.url).await;
    let addrs = addrs(&cluster);
    let (buyers, home) = sales::prepare(&addrs, BUYERS, &pg).await;
    let t = Terms {
        id: "flash-1".into(),
        node: home.clone(),
        good: a_good(&cluster),
        stock: 100,
        price: 7,
        limit: 2,
    };
    check_admin(&cluster, &t).await;
    let give_up = Instant::now() + Duration::from_secs(40);
    let work = buyers.iter().enumerate().map(|(i, b)| {
        let first = 1 + (i % 3) as i64;
        tokio::spawn(buy_until_done(
            addrs.clone(),
            b.clone(),
            t.clone(),
            first,
            give_up,
        ))
    });
    let ledgers: Vec<_> = join_all(work)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    sales::verify(&pg, &t, &buyers, &ledgers).await;
    let over: usize = ledgers
        .iter()
        .map(|l| {
            l.refusals
                .iter()
                .filter(|m| m.contains("over the limit"))
                .count()
        })
        .sum();
    assert!(
        over > 0,
        "buyers asking for 3 were refused over the limit of 2"
    );
    let (addr, token) = admin_of(&cluster, 2);
    let (_, v) = admin(addr, &token, "GET", &Value::Null).await;
    let listed = &v["sales"][0];
    assert_eq!(
        (listed["sold"].as_i64(), listed["stock_left"].as_i64()),
        (Some(100), Some(0)),
        "{v}"
    );
    assert_eq!(listed["state"], "sold_out");
    eprintln!(
        "500 buyers, 100 sold in {:?} (setup included)",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn refusals_change_nothing_and_a_repeat_returns_its_receipt() {
    let cluster = TestCluster::start(3, |_, _| {}).await;
    let pg = raw_client(&cluster.db.url).await;
    let addrs = addrs(&cluster);
    let (buyers, home) = sales::prepare(&addrs, 3, &pg).await;
    let (admin_addr, token) = admin_of(&cluster, 0);
    let good = a_good(&cluster);
    let terms = |id: &str, node: &str| Terms {
        id: id.into(),
        node: node.into(),
        good: good.clone(),
        stock: 10,
        price: 5,
        limit: 2,
    };
    let now = chrono::Utc::now();
    let mut later = sale_body(&terms("later", &home));
    later["starts_at"] = json!((now + chrono::Duration::hours(1)).to_rfc3339());
    later["ends_at"] = json!((now + chrono::Duration::hours(2)).to_rfc3339());
    let mut past = sale_body(&terms("past", &home));
    past["starts_at"] = json!((now - chrono::Duration::hours(2)).to_rfc3339());
    past["ends_at"] = json!((now - chrono::Duration::hours(1)).to_rfc3339());
    let elsewhere = sale_body(&terms("elsewhere", &other_node(&cluster, &home)));
    let open = sale_body(&terms("open", &home));
    for body in [&later, &past, &elsewhere, &open] {
        assert_eq!(admin(admin_addr, &token, "POST", body).await.0, 201);
    }
    let b = &buyers[0];
    let buy = |sale: &str, q: i64, rid: Option<&str>| {
        let mut req = json!({"sale_id": sale, "character_id": b.character, "quantity": q});
        if let Some(rid) = rid {
            req["request_id"] = json!(rid);
        }
        let (addr, token) = (addrs[2], b.token.clone());
        async move { rpc(addr, &token, "buy_sale", &req).await }
    };
    let refused = |(status, v): (u16, Value), what: &str| {
        assert_eq!((status, v["code"].as_i64()), (400, Some(9)), "{what}: {v}");
        v["message"].as_str().unwrap().to_string()
    };
    assert!(refused(buy("later", 1, None).await, "not started").contains("not started"));
    assert!(refused(buy("past", 1, None).await, "ended").contains("ended"));
    assert!(refused(buy("elsewhere", 1, None).await, "wrong node").contains("must be there"));
    let over = buy("open", 3, None).await;
    eprintln!("example refusal: {}", over.1);
    assert!(refused(over, "over the limit").contains("over the limit"));
    let (_, v) = buy(&"x".repeat(129), 1, None).await;
    assert_eq!(v["code"].as_i64(), Some(3), "a sale_id too long: {v}");
    let (status, v) = buy("nosuch", 1, None).await;
    assert_eq!(v["code"].as_i64(), Some(5), "unknown sale: {status} {v}");
    let (status, v) = buy("open", 0, None).await;
    assert_eq!(
        v["code"].as_i64(),
        Some(3),
        "quantity 0 is invalid: {status} {v}"
    );
    // Another account's character.
    let (_, v) = rpc(
        addrs[0],
        &buyers[1].token,
        "buy_sale",
        &json!({"sale_id": "open", "character_id": b.character, "quantity": 1}),
    )
    .await;
    assert_eq!(v["code"].as_i64(), Some(7), "not yours: {v}");
    let gold: i64 = pg
        .query_one(
            "SELECT gold FROM player_character WHERE id = $1::TEXT::UUID",
            &[&b.character],
        )
        .await
        .unwrap()
        .get(0);
    let sold: i64 = pg
        .query_one("SELECT sum(sold)::INT8 FROM world_sale", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((gold, sold), (START_GOLD, 0), "refusals changed nothing");

    // A purchase with a request_id, then the same request again: the stored answer, once.
    let (status, first) = buy("open", 2, Some("request-1")).await;
    assert_eq!(status, 200, "{first}");
    eprintln!("example answer: {first}");
    assert_eq!(
        (
            first["bought"].as_i64(),
            first["stock_left"].as_i64(),
            first["gold"].as_i64()
        ),
        (Some(2), Some(8), Some(START_GOLD - 10))
    );
    // Another buyer moves the stock meanwhile; the repeat still answers what it was.
    let other = &buyers[1];
    let (status, _) = rpc(
        addrs[1],
        &other.token,
        "buy_sale",
        &json!({"sale_id": "open", "character_id": other.character, "quantity": 1}),
    )
    .await;
    assert_eq!(status, 200);
    for (node, addr) in addrs.iter().enumerate() {
        let req = json!({"sale_id": "open", "character_id": b.character, "quantity": 2, "request_id": "request-1"});
        let (status, again) = rpc(*addr, &b.token, "buy_sale", &req).await;
        assert_eq!(
            (status, &again),
            (200, &first),
            "the repeat via node-{node} is the stored answer"
        );
    }
    let (status, v) = buy("open", 1, Some("request-1")).await;
    assert_eq!(
        (status, v["code"].as_i64()),
        (409, Some(6)),
        "a request_id reused for another request: {v}"
    );
    let row: (i64, i64) = {
        let r = pg
            .query_one(
                "SELECT (SELECT sold FROM world_sale WHERE id = 'open'), \
            (SELECT gold FROM player_character WHERE id = $1::TEXT::UUID)",
                &[&b.character],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(row, (3, START_GOLD - 10), "applied once");
}
