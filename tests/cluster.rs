//! Several real nodes in one process (`TestCluster`): membership, placement, forwarding over
//! the peer link, handoff when a node leaves.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::cluster::TestCluster;
use common::{wait_for, wait_until};
use serai::domain::market::rules::Side;
use serai::market::actor::Market;
use serai::market::messages::{GetQuotes, Reserve, Settle, SettleOutcome};
use serai::request::Call;
use serai::routing::placement::Owner;

fn owners(cluster: &TestCluster, i: usize, keys: &[String]) -> Vec<String> {
    let p = cluster.node(i).services.router.placement();
    keys.iter()
        .map(|k| match p.owner("market", k.as_bytes()) {
            Owner::Local => p.node_id().to_string(),
            Owner::Remote(n) => n,
            Owner::Nobody => "nobody".into(),
        })
        .collect()
}

fn market_codes(cluster: &TestCluster) -> Vec<String> {
    cluster
        .node(0)
        .services
        .catalog
        .get()
        .nodes()
        .iter()
        .map(|n| n.code.clone())
        .collect()
}

#[actix_rt::test]
async fn three_nodes_converge_and_agree_on_every_owner() {
    let mut cluster = TestCluster::start(3, |_, _| {}).await;
    let keys: Vec<String> = (0..300).map(|i| format!("key-{i}")).collect();
    let a = owners(&cluster, 0, &keys);
    assert_eq!(a, owners(&cluster, 1, &keys));
    assert_eq!(a, owners(&cluster, 2, &keys));
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for o in &a {
        *per_node.entry(o.as_str()).or_default() += 1;
    }
    assert_eq!(per_node.len(), 3, "every node owns some keys: {per_node:?}");
    let shares: f64 = (0..3)
        .map(|i| cluster.node(i).services.router.placement().share())
        .sum();
    assert!((shares - 1.0).abs() < 1e-6, "shares sum to one: {shares}");
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn market_messages_reach_the_owner_from_any_node() {
    let mut cluster = TestCluster::start(3, |_, _| {}).await;
    let codes = market_codes(&cluster);
    let owners = owners(&cluster, 0, &codes);
    for (code, owner) in codes.iter().zip(&owners) {
        for i in 0..3 {
            let quotes = cluster
                .node(i)
                .services
                .router
                .ask::<Market, _>(code.clone(), GetQuotes)
                .await
                .unwrap();
            assert!(!quotes.is_empty(), "{code} via node-{i}");
        }
        let from = (0..3).find(|i| format!("node-{i}") != *owner).unwrap();
        let good = cluster
            .node(0)
            .services
            .catalog
            .get()
            .stock_at(code)
            .next()
            .unwrap()
            .good
            .clone();
        let reserve = Reserve {
            good,
            side: Side::Buy,
            quantity: 1,
            price_limit: None,
        };
        let reservation = cluster
            .node(from)
            .services
            .router
            .ask::<Market, _>(code.clone(), reserve)
            .await
            .unwrap()
            .unwrap();
        cluster
            .node(from)
            .services
            .router
            .ask::<Market, _>(
                code.clone(),
                Settle {
                    reservation_id: reservation.id,
                    good: reservation.good.clone(),
                    outcome: SettleOutcome::NotRun,
                },
            )
            .await
            .unwrap();
        // Only the owner activated it: its claim names the owner.
        let db = common::raw_client(&cluster.db.url).await;
        let claimed: Option<String> = db
            .query_one("SELECT owner_node FROM trade_node WHERE code = $1", &[code])
            .await
            .unwrap()
            .get(0);
        assert_eq!(claimed.as_deref(), Some(owner.as_str()), "{code}");
        let local = (0..3)
            .filter(|i| {
                cluster
                    .node(*i)
                    .services
                    .router
                    .local::<Market>(code)
                    .is_some()
            })
            .count();
        assert_eq!(local, 1, "one live market actor for {code}");
    }
    let text = cluster.node(0).services.metrics.render();
    assert!(
        text.contains("serai_forwarded_total"),
        "forwarding is counted"
    );
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn a_drained_node_leaves_and_its_keys_move() {
    let mut cluster = TestCluster::start(3, |_, _| {}).await;
    let codes = market_codes(&cluster);
    for code in &codes {
        cluster
            .node(0)
            .services
            .router
            .ask::<Market, _>(code.clone(), GetQuotes)
            .await
            .unwrap();
    }
    let before = owners(&cluster, 0, &codes);
    cluster.stop(2).await;
    cluster.wait_converged(2, Duration::from_secs(5)).await;
    let after = owners(&cluster, 0, &codes);
    assert!(after.iter().all(|o| o != "node-2"));
    for (code, (b, a)) in codes.iter().zip(before.iter().zip(&after)) {
        if b != "node-2" {
            assert_eq!(a, b, "{code} did not move");
        }
        let quotes = cluster
            .node(1)
            .services
            .router
            .ask::<Market, _>(code.clone(), GetQuotes)
            .await
            .unwrap();
        assert!(!quotes.is_empty());
    }
    let db = common::raw_client(&cluster.db.url).await;
    let left: String = db
        .query_one(
            "SELECT status FROM cluster_member WHERE node_id = 'node-2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, "left");
    let held: i64 = db
        .query_one(
            "SELECT count(*) FROM trade_node WHERE owner_node = 'node-2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 0, "the drained node released every claim");
    cluster.stop_all().await;
}

/// Fixed client ports per node, so a restarted node keeps its address.
fn fixed_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| common::node::free_port()).collect()
}

#[actix_rt::test]
async fn rolling_restart_with_clients_trading_loses_no_acknowledged_write() {
    use common::trading::{spawn_traders, Ledger, Market};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    let ports = fixed_ports(3);
    let tune = move |i: usize, c: &mut serai::config::Config| {
        c.client_addr = format!("127.0.0.1:{}", ports[i]).parse().unwrap();
    };
    let mut cluster = TestCluster::start(3, tune.clone()).await;
    let addrs: Vec<std::net::SocketAddr> = (0..3).map(|i| cluster.node(i).client_addr).collect();
    let pg = common::raw_client(&cluster.db.url).await;
    let market = Market::prepare(&addrs, 12, &pg).await;
    let ledger = Ledger::shared();
    let event_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(8);
    let traders = spawn_traders(&market, &addrs, stop_at, &ledger, &event_at);
    // The traders stop at `stop_at`: a wait for their trades cannot outlast them.
    let until_stop = || stop_at.saturating_duration_since(Instant::now());
    // Every client has a trade acknowledged before the first restart …
    let players = market.players.len();
    wait_until("every client to trade", until_stop(), async || {
        ledger.lock().unwrap().acked.len() == players
    })
    .await;
    *event_at.lock().unwrap() = Some(Instant::now());
    for i in 0..3 {
        cluster.restart(i, tune.clone()).await;
        cluster.wait_converged(3, Duration::from_secs(10)).await;
        // … and again after each restart, before the next one. An acknowledged trade moves
        // its character's cargo by one (and its gold), so the character's ledger entry is no
        // longer the one seen here.
        let seen = ledger.lock().unwrap().acked.clone();
        let restarted = Instant::now();
        wait_until(
            &format!("every client to trade again after node-{i} restarted"),
            until_stop(),
            async || {
                let now = &ledger.lock().unwrap().acked;
                seen.iter().all(|(c, before)| now.get(c) != Some(before))
            },
        )
        .await;
        eprintln!(
            "node-{i}: every client traded again {:?} after the restart ({:?} of trading left)",
            restarted.elapsed(),
            until_stop()
        );
    }
    for t in traders {
        t.await.unwrap();
    }
    let ledger = Arc::try_unwrap(ledger).unwrap().into_inner().unwrap();
    let (exact, unknown) = market.verify(&pg, &ledger).await;
    let acked: i64 = ledger.acked.values().map(|(_, c)| c.abs()).sum();
    println!(
        "rolling restart: {exact}/12 characters exact, {} trades asked again, {} failovers",
        ledger.retried,
        ledger.failovers.len()
    );
    assert!(acked > 0, "trading went on through the restarts");
    assert_eq!(
        (exact, unknown),
        (12, 0),
        "with request_ids every trade ends answered, exactly once"
    );
    cluster.stop_all().await;
}

/// One node's peer links are cut both ways while every node still reaches the database:
/// its keys stay its own (the views do not change), the others cannot reach it, and no
/// entity ever gets a second writer.
#[actix_rt::test]
async fn cut_peer_links_never_make_two_writers() {
    use common::raw::{auth, rpc};
    use serai::character::messages::ExecuteTrade;
    use serai::character::CharacterSession;
    use serai::domain::market::rules::Side;
    use serai::request::Deadline;
    use serde_json::json;

    let mut cluster = TestCluster::start(3, |_, _| {}).await;
    let addrs: Vec<std::net::SocketAddr> = (0..3).map(|i| cluster.node(i).client_addr).collect();
    let catalog = rpc(
        addrs[0],
        &auth(addrs[0], "partition-reader").await,
        "get_catalog",
        &json!({}),
    )
    .await
    .unwrap();
    let (faction, background) = (
        catalog["factions"][0]["code"].clone(),
        catalog["backgrounds"][0]["code"].clone(),
    );
    let mut players = Vec::new();
    for i in 0..6 {
        let token = auth(addrs[i % 3], &format!("partition-player-{i:03}")).await;
        let req = json!({"name": format!("Cut {i}"), "faction": faction, "background": background});
        let c = rpc(addrs[i % 3], &token, "create_character", &req)
            .await
            .unwrap();
        players.push((
            token,
            c["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap(),
        ));
    }
    // Cut node-2 off: its outbound links, and everyone's links to it.
    cluster.node(2).services.peers.isolate(true);
    for i in 0..2 {
        cluster.node(i).services.peers.cut("node-2");
    }
    for round in 0..1 {
        for (i, (token, id)) in players.iter().enumerate() {
            let node = (i + round) % 3;
            let _ = rpc(
                addrs[node],
                token,
                "get_character",
                &json!({"character_id": id}),
            )
            .await;
        }
    }
    // Two live copies may exist for a moment (a node whose heartbeat was late dropped out of
    // a view), two writers never: a write through every live copy succeeds at most once, and
    // only through the copy holding the claim.
    let pg = common::raw_client(&cluster.db.url).await;
    let home = catalog["factions"][0]["home_node"]
        .as_str()
        .unwrap()
        .to_string();
    let good = cluster
        .node(0)
        .services
        .catalog
        .get()
        .stock_at(&home)
        .next()
        .unwrap()
        .good
        .clone();
    for (_, id) in &players {
        let mut wrote = Vec::new();
        for i in 0..3 {
            let Some(session) = cluster
                .node(i)
                .services
                .router
                .local::<CharacterSession>(id)
            else {
                continue;
            };
            let trade = ExecuteTrade {
                call: Call::server(Deadline::after(std::time::Duration::from_secs(5))),
                good: good.clone(),
                side: Side::Buy,
                quantity: 1,
                price_limit: None,
            };
            if let Ok(Ok(_)) = session.send(trade).await {
                wrote.push(i);
            }
        }
        assert!(wrote.len() <= 1, "{id} was written through {wrote:?}");
        let owner: Option<String> = pg
            .query_one(
                "SELECT owner_node FROM player_character WHERE id = $1",
                &[id],
            )
            .await
            .unwrap()
            .get(0);
        if let [i] = wrote.as_slice() {
            assert_eq!(owner, Some(format!("node-{i}")), "only the claimant writes");
        }
    }
    for i in 0..3 {
        assert_eq!(
            cluster.view_of(i).len(),
            3,
            "the database still sees every node alive"
        );
    }
    cluster.node(2).services.peers.isolate(false);
    for i in 0..2 {
        cluster.node(i).services.peers.heal("node-2");
    }
    // Healed: every character answers from every node again.
    for (token, id) in &players {
        for (node, addr) in addrs.iter().enumerate() {
            wait_for(
                &format!("{id} via node-{node} after healing"),
                Duration::from_secs(10),
                async || {
                    rpc(*addr, token, "get_character", &json!({"character_id": id}))
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("{e:?}"))
                },
            )
            .await;
        }
    }
    cluster.stop_all().await;
}
