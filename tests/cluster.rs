//! Several real nodes in one process (`TestCluster`): membership, placement, forwarding over
//! the peer link, handoff when a node leaves.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::cluster::TestCluster;
use serai::market::actor::Market;
use serai::market::messages::{GetQuotes, Reserve, Settle};
use serai::market::rules::Side;
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
                    committed: false,
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
