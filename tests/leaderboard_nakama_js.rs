//! The real `@heroiclabs/nakama-js` client (pinned in clients/js/package.json) under Node
//! against a real node: `clients/js/leaderboard.mjs` writes leaderboard records, lists them
//! (top, owner ids, cursors both ways), lists around an owner, gets Nakama's refusals, deletes
//! its record and plays a tournament (the script asserts every answer; see its header).
//!
//! Needs `node` (18 or later) and npm on PATH; the npm packages are installed with `npm ci`
//! into clients/js/node_modules when missing (under a lock shared with tests/nakama_js.rs).

mod common;
#[path = "leaderboard_support.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use common::nodejs::{client_dir, ensure_client_deps, require_node};

#[actix_rt::test]
async fn nakama_js_leaderboards_and_tournaments() {
    let node_version = require_node();
    ensure_client_deps();
    let lb = support::start("", |_| {}).await;
    lb.create_board(json!({"id": "js_board", "operator": "best"}))
        .await;
    lb.create_board(json!({"id": "js_authoritative", "authoritative": true}))
        .await;
    lb.create_tournament(
        json!({"id": "js_cup", "duration": 3600, "join_required": true,
        "max_size": 10, "max_num_score": 3}),
    )
    .await;

    let dir = client_dir();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join("leaderboard.mjs"))
        .current_dir(&dir)
        .env("SERAI_CLIENT_ADDR", lb.client().to_string())
        .env("SERAI_SERVER_KEY", &lb.config.server_key)
        .env("SERAI_LEADERBOARD", "js_board")
        .env("SERAI_AUTHORITATIVE", "js_authoritative")
        .env("SERAI_TOURNAMENT", "js_cup")
        .env_remove("NODE_OPTIONS")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // Async: the node serves from this very runtime while the script runs.
    let run = tokio::time::timeout(Duration::from_secs(50), command.output()).await;
    lb.node.stop().await.expect("node stops");
    let out = run
        .expect("leaderboard.mjs finishes within 50 s")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!(
        "node {node_version}\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "leaderboard.mjs failed\n{report}");
    for step in [
        "-- writeLeaderboardRecord",
        "-- listLeaderboardRecords",
        "-- listLeaderboardRecordsAroundOwner",
        "-- tournament: join, write, list",
    ] {
        assert!(
            stdout.lines().any(|l| l == step),
            "missing step {step}\n{report}"
        );
    }
    common::nodejs::assert_checks(&stdout, "LEADERBOARD", 40, &report);
}
