//! World pushes on three real nodes in one process (real sockets, real peer link, real
//! PostgreSQL for the accounts): updates published on one node reach the subscribed sockets on
//! every node, coalesced to at most 2 per second per socket, the first at once and the latest
//! never lost; a socket whose user is not subscribed gets none.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use common::client::{GameClient, GameSocket};
use common::cluster::TestCluster;
use serai::gateway::Notification;
use serai::world::fanout::{WorldFanout, SUBJECT};

/// The last HP published: each socket reads until it sees it.
const FINAL_HP: i64 = 0;
/// Received pushes are timed at the client, after the network: three consecutive ones at
/// least 500 ms apart at the sender may look this much closer.
const JITTER: Duration = Duration::from_millis(60);

/// The `world_event` pushes a socket receives until it sees `FINAL_HP` or `within` passes:
/// (when, hp).
async fn collect(mut socket: GameSocket, within: Duration) -> Vec<(Instant, i64)> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline.into(), socket.ws.next()).await {
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(text.as_str()).expect("a JSON frame");
        for n in v["notifications"]["notifications"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(n["subject"], SUBJECT, "{n}");
            let content: Value = serde_json::from_str(n["content"].as_str().unwrap()).unwrap();
            let hp = content["hp"].as_i64().expect("hp");
            got.push((Instant::now(), hp));
            if hp == FINAL_HP {
                return got;
            }
        }
    }
    got
}

/// An authenticated socket on `addr`, registered in the node's presence (it answered).
async fn connect(addr: std::net::SocketAddr, device: &str) -> (Uuid, GameSocket) {
    let player = GameClient::device(addr, device).await;
    let mut socket = player.socket().await;
    socket.rpc("echo", &json!({"x": 1})).await.expect("echo");
    (player.user_id, socket)
}

#[actix_rt::test]
async fn pushes_reach_every_node_coalesced_to_two_per_second() {
    let mut cluster = TestCluster::start(3, |_, _| {}).await;
    // Every node made its fan-out at start (world::register); this answers node 0's.
    let fanout = WorldFanout::new(&cluster.node(0).services);
    let mut users = Vec::new();
    let mut readers = Vec::new();
    for node in 0..3 {
        let addr = cluster.node(node).client_addr;
        for k in 0..3 {
            let (user, socket) = connect(addr, &format!("fanout-{node}-{k}")).await;
            users.push(user);
            readers.push((node, tokio::spawn(collect(socket, Duration::from_secs(15)))));
        }
    }
    // Two sockets of one user on different nodes: both get every update.
    let (_, second) = connect(cluster.node(2).client_addr, "fanout-0-0").await;
    readers.push((2, tokio::spawn(collect(second, Duration::from_secs(15)))));
    let (_, outsider) = connect(cluster.node(1).client_addr, "fanout-outsider").await;
    let outsider = tokio::spawn(collect(outsider, Duration::from_secs(4)));

    // A fight on node 0: a hit every 5 ms for 3 s, each one publishing the new HP.
    let users: Arc<[Uuid]> = users.into();
    let started = Instant::now();
    let mut hp = 600;
    while hp > FINAL_HP {
        hp -= 1;
        let n = Notification::new(SUBJECT, 0, &json!({"event_id": "boss-1", "hp": hp}));
        fanout.publish("boss-1", n, users.clone());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let published_for = started.elapsed();

    for (node, reader) in readers {
        let got = reader.await.expect("reader");
        assert_eq!(
            got.last().map(|g| g.1),
            Some(FINAL_HP),
            "a socket on node {node} missed the last update: {got:?}"
        );
        // Leading edge: the first hit goes out at once.
        let first = got[0].0.duration_since(started);
        assert!(first < Duration::from_millis(400), "first after {first:?}");
        // At most 2 per second: any three consecutive ones span a second.
        for w in got.windows(3) {
            let span = w[2].0.duration_since(w[0].0);
            assert!(
                span + JITTER >= Duration::from_secs(1),
                "node {node}: {got:?}"
            );
        }
        // Coalesced, yet steadily updated: about 2 per second over the fight, not 600.
        let most = 2 * published_for.as_secs() as usize + 3;
        assert!(got.len() >= 4 && got.len() <= most, "node {node}: {got:?}");
        // Each value is newer than the one before (latest wins, in order).
        assert!(got.windows(2).all(|w| w[1].1 < w[0].1), "{got:?}");
    }
    assert!(outsider.await.unwrap().is_empty(), "not subscribed");
    let text = cluster.node(1).services.metrics.render();
    assert!(
        text.contains("serai_world_pushes_total{node=\"node-1\",to=\"socket\"}"),
        "{text}"
    );
    cluster.stop_all().await;
}
