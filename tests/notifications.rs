//! Stored notifications against real nodes and a real PostgreSQL:
//! - the official nakama-js client (clients/js/notifications.mjs): an offline player finds
//!   its arrival after logging in, cacheable cursors, live pushes equal to the stored ones,
//!   Nakama's refusals, deletion;
//! - a drain's reconnect notice is stored for every socket it is pushed to;
//! - a persistent notification sent through the notifier (no transaction of its own) is
//!   stored through the bounded queue; a non-persistent one is not.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::client::{start_game_node, GameClient};
use common::node::http;
use common::nodejs::{ensure_client_deps, require_node, run_script};
use serai::gateway::Notification;

async fn listed(addr: std::net::SocketAddr, token: &str) -> Vec<Value> {
    let r = http(addr, "GET", "/v2/notification?limit=100", Some(token), "")
        .await
        .expect("an answer");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[actix_rt::test]
async fn nakama_js_offline_player_finds_stored_notifications() {
    let node_version = require_node();
    ensure_client_deps();
    let t = start_game_node("", |c| {
        c.encounter_rate = Some(0.0);
        c.travel_time_scale = 0.002;
    })
    .await;
    let run = run_script(
        "notifications.mjs",
        &[
            ("SERAI_CLIENT_ADDR", t.node.client_addr.to_string()),
            ("SERAI_SERVER_KEY", t.config.server_key.clone()),
        ],
        Duration::from_secs(50),
    )
    .await;
    t.node.stop().await.expect("node stops");
    let report = run.report();
    println!("{report}");
    let ok = run.status.is_some_and(|s| s.success());
    assert!(ok, "with node {node_version}: {report}");
    common::nodejs::assert_checks(&run.stdout, "NOTIFICATIONS", 19, &report);
}

#[actix_rt::test]
async fn a_drains_reconnect_notice_is_stored() {
    let t = start_game_node("", |_| {}).await;
    let player = GameClient::device(t.node.client_addr, "notify-drain-device").await;
    let mut socket = player.socket().await;
    // The socket is registered once it answers (presence is filled on connect).
    socket.rpc("echo", &json!({"x": 1})).await.expect("echo");
    let (config, db) = (t.config.clone(), t.db);
    let stopping = tokio::spawn(t.node.stop());
    let pushed = loop {
        let v = socket.next_json().await;
        if let Some(n) = v["notifications"]["notifications"].get(0) {
            break n.clone();
        }
    };
    stopping.await.unwrap().expect("node stops");
    assert_eq!(pushed["subject"], "server_draining");
    assert_eq!(pushed["persistent"], true, "{pushed}");

    let again = serai::node::start(config, serai::shutdown::Shutdown::new())
        .await
        .expect("node restarts");
    let player = GameClient {
        addr: again.client_addr,
        ..player
    };
    let stored = listed(again.client_addr, &player.token).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["id"], pushed["id"]);
    assert_eq!(stored[0]["code"], 105);
    again.stop().await.expect("node stops");
    drop(db);
}

#[actix_rt::test]
async fn persistent_notifications_sent_through_the_notifier_are_stored() {
    let t = start_game_node("", |_| {}).await;
    let player = GameClient::device(t.node.client_addr, "notify-queue-device").await;
    let notifier = &t.node.services.notifier;
    let mut kept = Notification::new("quest_done", 201, &json!({"quest": 7}));
    kept.persistent = true;
    notifier.notify(player.user_id, kept.clone());
    notifier.notify(
        player.user_id,
        Notification::new("fleeting", 202, &json!({})),
    );
    assert!(
        notifier.store().flush(Duration::from_secs(5)).await,
        "the store queue is written"
    );
    let stored = listed(t.node.client_addr, &player.token).await;
    assert_eq!(stored.len(), 1, "only the persistent one: {stored:?}");
    assert_eq!(stored[0]["id"], kept.id.as_str());
    assert_eq!(stored[0]["subject"], "quest_done");
    assert_eq!(stored[0]["persistent"], true);
    assert_eq!(
        serde_json::from_str::<Value>(stored[0]["content"].as_str().unwrap()).unwrap(),
        json!({"quest": 7})
    );
    // Deleting someone else's notification deletes nothing.
    let other = GameClient::device(t.node.client_addr, "notify-queue-other").await;
    let path = format!("/v2/notification?ids={}", kept.id);
    let r = http(t.node.client_addr, "DELETE", &path, Some(&other.token), "")
        .await
        .unwrap();
    assert_eq!((r.status, r.json()), (200, json!({})));
    assert_eq!(listed(t.node.client_addr, &player.token).await.len(), 1);
    let r = http(
        t.node.client_addr,
        "DELETE",
        "/v2/notification?ids=nope",
        Some(&player.token),
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    t.node.stop().await.expect("node stops");
}

/// The queue never makes its sender wait: with the database away and the queue full, a
/// notification is refused at once (delivered live only, counted), and a flush still ends
/// once the writer has given up on what it held.
#[actix_rt::test]
async fn a_full_store_queue_refuses_without_waiting() {
    let metrics = serai::metrics::Metrics::new("queue-test");
    // Nothing listens on port 1: every write fails fast with a refused connection.
    let db = serai::persistence::Db::connect(
        "postgresql://postgres@127.0.0.1:1/nowhere",
        1,
        serai::config::Dialect::Postgres,
        metrics.clone(),
    )
    .expect("a pool (it connects lazily)");
    let store = serai::gateway::NotificationStore::start_with(db, 2);
    let user = uuid::Uuid::new_v4();
    let mut n = Notification::new("quest_done", 201, &json!({}));
    n.persistent = true;
    let started = std::time::Instant::now();
    let accepted: Vec<bool> = (0..6)
        .map(|_| {
            n.id = uuid::Uuid::new_v4().to_string();
            store.enqueue(user, &n)
        })
        .collect();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "enqueue never waits: {:?}",
        started.elapsed()
    );
    assert!(accepted[0] && accepted[1], "{accepted:?}");
    assert!(!accepted[5], "the bound holds: {accepted:?}");
    assert!(
        store.flush(Duration::from_secs(30)).await,
        "the writer gives up and answers"
    );
    let scrape = metrics.render();
    for reason in ["queue_full", "write_failed"] {
        assert!(
            scrape
                .lines()
                .any(|l| l.starts_with("serai_notifications_unstored_total")
                    && l.contains(reason)
                    && !l.ends_with(" 0")),
            "{reason} counted:\n{scrape}"
        );
    }
}
