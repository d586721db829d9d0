//! Leaderboards on three nodes: every board lives in one actor on its owner node; a write to
//! any node reaches it over the peer link, every node answers the same reads (from its replica,
//! within the replication batch timeout), and when the owner drains the board moves (its
//! records come back from the database on the new owner).

mod common;
#[path = "leaderboard_support.rs"]
mod support;

use std::time::Duration;

use serde_json::{json, Value};

use common::cluster::TestCluster;
use serai::leaderboard::actor::Leaderboard;
use serai::routing::placement::Owner;
use support::{int64, records, request, Player};

async fn admin(
    cluster: &TestCluster,
    i: usize,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let node = cluster.node(i);
    let auth = format!("Bearer {}", node.services.config.admin_token);
    request(
        node.admin_addr,
        method,
        path,
        &[("Authorization", &auth)],
        &body.to_string(),
    )
    .await
}

fn owner_of(cluster: &TestCluster, i: usize, board: &str) -> String {
    let router = &cluster.node(i).services.router;
    match router.owner::<Leaderboard>(&board.to_string()) {
        Owner::Local => cluster.node(i).services.config.node_id.clone(),
        Owner::Remote(n) => n,
        Owner::Nobody => "nobody".into(),
    }
}

#[actix_rt::test]
async fn boards_answer_from_every_node_and_move_on_drain() {
    let mut cluster = TestCluster::start(3, |_, _| {}).await;
    let boards: Vec<String> = (0..6).map(|i| format!("global-{i}")).collect();
    for b in &boards {
        let (s, v) = admin(&cluster, 0, "POST", "/admin/leaderboards", json!({"id": b})).await;
        assert_eq!(s, 201, "{v}");
    }
    let owners: Vec<String> = boards.iter().map(|b| owner_of(&cluster, 0, b)).collect();
    assert!(
        owners
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1,
        "boards spread over nodes: {owners:?}"
    );

    // Players authenticate on node 0; their tokens work on every node.
    let mut players = Vec::new();
    for i in 0..3 {
        players.push(support::player_at(cluster.node(0).client_addr, &format!("g{i}")).await);
    }
    // Each player writes every board through a different node.
    for (n, p) in players.iter().enumerate() {
        let p = Player {
            addr: cluster.node(n).client_addr,
            ..p.clone()
        };
        for (k, b) in boards.iter().enumerate() {
            let r = p.write_ok(b, (n * 10 + k) as i64, 0).await;
            assert_eq!(r["leaderboard_id"], b.as_str());
        }
    }
    // Every node answers the same page: reads are answered by each node's replica, which
    // follows the owner within the replication batch timeout (1 s).
    for b in &boards {
        let mut pages = Vec::new();
        for n in 0..3 {
            let p = Player {
                addr: cluster.node(n).client_addr,
                ..players[0].clone()
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            let v = loop {
                let v = p.get(&format!("/v2/leaderboard/{b}?limit=10")).await;
                if records(&v, "records").len() == 3 || std::time::Instant::now() > deadline {
                    break v;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert_eq!(records(&v, "records").len(), 3, "{b} via node-{n}: {v}");
            assert_eq!(int64(&v["rank_count"]), 3);
            pages.push(v);
        }
        assert_eq!(pages[0], pages[1]);
        assert_eq!(pages[1], pages[2]);
        assert_eq!(
            records(&pages[0], "records")[0]["owner_id"],
            players[2].id.to_string()
        );
    }

    // Drain the owner of the first board: it moves, and its records with it.
    let board = &boards[0];
    let owner: usize = owners[0].trim_start_matches("node-").parse().unwrap();
    let other = (0..3).find(|i| *i != owner).unwrap();
    cluster.stop(owner).await;
    cluster.wait_converged(2, Duration::from_secs(10)).await;
    assert_ne!(owner_of(&cluster, other, board), owners[0]);
    let p = Player {
        addr: cluster.node(other).client_addr,
        ..players[1].clone()
    };
    let r = p.write_ok(board, 100, 0).await;
    assert_eq!((int64(&r["rank"]), r["num_score"].as_u64()), (1, Some(2)));
    let v = p.get(&format!("/v2/leaderboard/{board}?limit=10")).await;
    let ids: Vec<String> = records(&v, "records")
        .iter()
        .map(|r| r["owner_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "the records came back from the database: {v}");
    assert_eq!(ids[0], players[1].id.to_string());
    cluster.stop_all().await;
}
