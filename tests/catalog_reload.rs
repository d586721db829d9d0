//! Hot catalog reload on three real nodes in one process, over a real PostgreSQL: the admin's
//! `POST /admin/catalog/reload` validates, bumps and broadcasts; every node's quotes follow;
//! a node that misses the broadcast catches up by polling; an invalid catalog changes nothing.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use common::raw::{auth, rpc};
use serai::domain::market::rules::GoodState;
use serai::market::actor::Market;
use serai::market::messages::GetQuotes;
use serde_json::{json, Value};
use uuid::Uuid;

/// Polls `probe` every 20 ms until it answers `Some`, for at most `within`; panics with
/// `what` and the last answer otherwise.
async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {within:?}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn admin(
    cluster: &TestCluster,
    i: usize,
    method: &str,
    path: &str,
) -> common::node::Response {
    let node = cluster.node(i);
    let token = node.services.config.admin_token.clone();
    common::node::http(node.admin_addr, method, path, Some(&token), "")
        .await
        .unwrap_or_else(|e| panic!("{method} {path} on node-{i}: {e}"))
}

/// The (node, good) whose price the tests change: the first good traded at the home node of
/// the first faction, where new characters start.
fn home_and_good(cluster: &TestCluster) -> (String, String, String) {
    let catalog = cluster.node(0).services.catalog.get();
    let faction = catalog.factions()[0].clone();
    let good = catalog
        .stock_at(&faction.home_node)
        .next()
        .expect("the home node trades something")
        .good
        .clone();
    (faction.code, faction.home_node, good)
}

/// One character per node, created through that node's client listener.
async fn players(cluster: &TestCluster, faction: &str) -> Vec<(SocketAddr, String, Uuid)> {
    let background = cluster.node(0).services.catalog.get().backgrounds()[0]
        .code
        .clone();
    let mut out = Vec::new();
    for i in 0..cluster.nodes.len() {
        let addr = cluster.node(i).client_addr;
        let token = auth(addr, &format!("catalog-reload-{i:03}")).await;
        let req =
            json!({"name": format!("Reload {i}"), "faction": faction, "background": background});
        let c = rpc(addr, &token, "create_character", &req)
            .await
            .unwrap_or_else(|e| panic!("create_character via node-{i}: {e:?}"));
        let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
        out.push((addr, token, id));
    }
    out
}

/// `get_trade_quotes` for `good` through the player's own node.
async fn quote(player: &(SocketAddr, String, Uuid), good: &str) -> Result<Value, String> {
    let (addr, token, id) = player;
    let quotes = rpc(
        *addr,
        token,
        "get_trade_quotes",
        &json!({"character_id": id}),
    )
    .await
    .map_err(|e| format!("get_trade_quotes via {addr}: {e:?}"))?;
    quotes["quotes"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["good"] == good).cloned())
        .ok_or_else(|| format!("no quote for {good} in {quotes}"))
}

/// The buy price of one unit at `base_price` with the quote's quota as the stock (no open
/// reservations: the quota is the stock).
fn buy_price_at(base_price: i64, base_quota: i64, restock: i64, quote: &Value) -> i64 {
    GoodState {
        base_price,
        base_quota,
        restock_per_min: restock,
        stock: quote["quota"].as_i64().expect("quota"),
    }
    .buy_price()
}

async fn set_price(pg: &tokio_postgres::Client, node: &str, good: &str, price: i64) {
    let n = pg
        .execute(
            "UPDATE trade_node_stock SET base_price = $3 WHERE node = $1 AND good = $2",
            &[&node, &good, &price],
        )
        .await
        .expect("update the stock row");
    assert_eq!(n, 1);
}

async fn db_version(pg: &tokio_postgres::Client) -> i64 {
    pg.query_one("SELECT version FROM catalog_meta WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0)
}

/// Every member in node `i`'s `/admin/cluster` reports `version`.
async fn cluster_view_shows(cluster: &TestCluster, i: usize, version: i64) -> Result<(), String> {
    let view = admin(cluster, i, "GET", "/admin/cluster").await.json();
    let members = view["members"].as_array().cloned().unwrap_or_default();
    let all = members.len() == cluster.nodes.len()
        && members.iter().all(|m| m["catalog_version"] == version)
        && view["catalog_version"] == version;
    all.then_some(())
        .ok_or_else(|| format!("node-{i}'s view: {view}"))
}

#[actix_rt::test]
async fn a_reload_reaches_every_node_within_two_seconds() {
    // Polls far apart: within the test, only the broadcast can bring the new version.
    let mut cluster = TestCluster::start(3, |_, c| {
        c.catalog_poll_interval = Duration::from_secs(600);
    })
    .await;
    let (faction, home, good) = home_and_good(&cluster);
    let stock = cluster
        .node(0)
        .services
        .catalog
        .get()
        .stock(&home, &good)
        .cloned()
        .unwrap();
    let players = players(&cluster, &faction).await;
    for p in &players {
        let q = quote(p, &good).await.unwrap();
        let old = buy_price_at(
            stock.base_price,
            stock.base_quota,
            stock.restock_per_min,
            &q,
        );
        assert_eq!(q["buy_price"], old, "{q}");
    }
    let pg = common::raw_client(&cluster.db.url).await;
    let new_base = stock.base_price * 3;
    set_price(&pg, &home, &good, new_base).await;

    let started = Instant::now();
    let reloaded = admin(&cluster, 0, "POST", "/admin/catalog/reload").await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    let body = reloaded.json();
    assert_eq!(body["version"], 2, "{body}");
    assert_eq!(body["all_serving"], true, "{body}");
    for i in 0..3 {
        assert_eq!(body["nodes"][format!("node-{i}")]["version"], 2, "{body}");
    }
    assert_eq!(db_version(&pg).await, 2);

    // The changed base price, in every node's get_trade_quotes.
    for (i, p) in players.iter().enumerate() {
        wait_until(
            &format!("the new price via node-{i}"),
            Duration::from_secs(2).saturating_sub(started.elapsed()),
            || async {
                let q = quote(p, &good).await?;
                let want = buy_price_at(new_base, stock.base_quota, stock.restock_per_min, &q);
                (q["buy_price"] == want)
                    .then_some(())
                    .ok_or_else(|| format!("{q}, want buy_price {want}"))
            },
        )
        .await;
    }
    let took = started.elapsed();
    // And /admin/cluster shows the new version for every member, on every node.
    for i in 0..3 {
        wait_until(
            &format!("node-{i}'s /admin/cluster"),
            Duration::from_secs(2),
            || cluster_view_shows(&cluster, i, 2),
        )
        .await;
        assert_eq!(
            admin(&cluster, i, "GET", "/admin/status").await.json()["catalog_version"],
            2
        );
        let metrics = cluster.node(i).services.metrics.render();
        assert!(
            metrics.contains(&format!("serai_catalog_version{{node=\"node-{i}\"}} 2")),
            "{metrics}"
        );
        assert!(metrics.contains("serai_catalog_sync_delay_seconds"));
    }
    println!("reload to new quotes on 3 nodes: {took:?}");
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn a_node_that_misses_the_broadcast_catches_up_by_polling() {
    let poll = Duration::from_millis(1000);
    let mut cluster = TestCluster::start(3, |_, c| c.catalog_poll_interval = poll).await;
    let (_, home, good) = home_and_good(&cluster);
    let pg = common::raw_client(&cluster.db.url).await;

    // node-2's peer links are cut both ways: the invalidation cannot reach it.
    cluster.node(2).services.peers.isolate(true);
    for i in 0..2 {
        cluster.node(i).services.peers.cut("node-2");
    }
    set_price(&pg, &home, &good, 4242).await;
    let started = Instant::now();
    let reloaded = admin(&cluster, 0, "POST", "/admin/catalog/reload").await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    let body = reloaded.json();
    assert_eq!(body["version"], 2);
    assert_eq!(body["nodes"]["node-1"]["version"], 2, "{body}");
    assert!(body["nodes"]["node-2"]["error"].is_string(), "{body}");
    assert_eq!(body["all_serving"], false);
    let node2 = &cluster.node(2).services.catalog;
    wait_until(
        "node-2 polls the new version",
        poll + Duration::from_secs(1),
        || async {
            let c = node2.get();
            let price = c.stock(&home, &good).map(|s| s.base_price);
            (c.version == 2 && price == Some(4242))
                .then_some(())
                .ok_or_else(|| format!("version {}, price {price:?}", c.version))
        },
    )
    .await;
    println!("cut-off node caught up after {:?}", started.elapsed());
    cluster.node(2).services.peers.isolate(false);
    for i in 0..2 {
        cluster.node(i).services.peers.heal("node-2");
    }

    // A version bumped by hand, without the endpoint: nobody broadcasts, every node polls.
    set_price(&pg, &home, &good, 777).await;
    pg.execute(
        "UPDATE catalog_meta SET version = version + 1, updated_at = now() WHERE id = 1",
        &[],
    )
    .await
    .unwrap();
    for i in 0..3 {
        let services = &cluster.node(i).services;
        wait_until(
            &format!("node-{i} polls version 3"),
            poll + Duration::from_secs(1),
            || async {
                let quotes = services
                    .router
                    .ask::<Market, _>(home.clone(), GetQuotes)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                let q = quotes.iter().find(|q| q.good == good).ok_or("no quote")?;
                let c = services.catalog.get();
                let s = c.stock(&home, &good).unwrap();
                let want = GoodState {
                    stock: q.quota,
                    ..GoodState::from_stock(s, 0)
                }
                .buy_price();
                (c.version == 3 && s.base_price == 777 && q.buy_price == want)
                    .then_some(())
                    .ok_or_else(|| format!("version {}, quote {q:?}", c.version))
            },
        )
        .await;
    }
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn an_invalid_catalog_is_refused_and_every_node_keeps_its_version_and_prices() {
    let mut cluster = TestCluster::start(3, |_, c| {
        c.catalog_poll_interval = Duration::from_millis(200);
    })
    .await;
    let (_, home, good) = home_and_good(&cluster);
    let pg = common::raw_client(&cluster.db.url).await;
    let quotes_everywhere = || async {
        let mut out = Vec::new();
        for i in 0..3 {
            let quotes = cluster
                .node(i)
                .services
                .router
                .ask::<Market, _>(home.clone(), GetQuotes)
                .await
                .unwrap();
            out.push(quotes);
        }
        out
    };
    let before = quotes_everywhere().await;

    // A one-way road (the way back is missing), and a price change riding along.
    pg.batch_execute(
        "DELETE FROM trade_route WHERE from_node = 'saltspire' AND to_node = 'port_azul'",
    )
    .await
    .unwrap();
    set_price(&pg, &home, &good, 9999).await;
    let refused = admin(&cluster, 1, "POST", "/admin/catalog/reload").await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let body = refused.json();
    assert!(
        body["message"].as_str().unwrap().contains("no way back"),
        "the validation error is named: {body}"
    );
    assert_eq!(body["version"], 1);
    assert_eq!(db_version(&pg).await, 1, "nothing was bumped");
    for i in 0..3 {
        assert_eq!(cluster.node(i).services.catalog.version(), 1);
        cluster_view_shows(&cluster, i, 1).await.unwrap();
    }
    assert_eq!(quotes_everywhere().await, before, "prices unchanged");

    // Put the road back: the same endpoint now reloads (version 2, the new price).
    pg.batch_execute(
        "INSERT INTO trade_route (from_node, to_node, distance, danger) \
         SELECT to_node, from_node, distance, danger FROM trade_route \
         WHERE from_node = 'port_azul' AND to_node = 'saltspire'",
    )
    .await
    .unwrap();
    let reloaded = admin(&cluster, 1, "POST", "/admin/catalog/reload").await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    assert_eq!(reloaded.json()["version"], 2);
    for i in 0..3 {
        let c = cluster.node(i).services.catalog.get();
        assert_eq!(c.version, 2, "node-{i}");
        assert_eq!(c.stock(&home, &good).unwrap().base_price, 9999);
    }
    cluster.stop_all().await;
}
