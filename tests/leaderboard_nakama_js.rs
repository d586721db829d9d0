//! The real `@heroiclabs/nakama-js` client (pinned in clients/js/package.json) under Node
//! against a real node: `clients/js/leaderboard.mjs` writes leaderboard records, lists them
//! (top, owner ids, cursors both ways), lists around an owner, gets Nakama's refusals, deletes
//! its record and plays a tournament (the script asserts every answer; see its header).
//!
//! Needs `node` (18 or later) and npm on PATH; the npm packages are installed with `npm ci`
//! into clients/js/node_modules when missing (under a lock shared with tests/nakama_js.rs).

#[path = "leaderboard_support.rs"]
mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/js")
}

fn require_node() -> String {
    let out = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "this test drives the server with nakama-js and needs Node.js 18+ and npm on \
                 PATH (Debian/Ubuntu: `apt-get install nodejs npm`): {e}"
            )
        });
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 18,
        "node {version} has no global fetch; 18+ needed"
    );
    version
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn deps_installed(dir: &Path) -> bool {
    let manifest = read_json(&dir.join("package.json")).expect("clients/js/package.json");
    manifest["dependencies"]
        .as_object()
        .expect("dependencies")
        .iter()
        .all(|(name, version)| {
            read_json(&dir.join("node_modules").join(name).join("package.json"))
                .is_some_and(|installed| installed["version"] == *version)
        })
}

/// `npm ci` in clients/js unless node_modules already matches package.json.
fn ensure_client_deps() {
    let dir = client_dir();
    if deps_installed(&dir) {
        return;
    }
    let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nakama-js-npm.lock");
    let lock = File::create(&lock_path).expect("npm lock file");
    lock.lock().expect("npm lock");
    if deps_installed(&dir) {
        return;
    }
    let status = Command::new("npm")
        .args([
            "ci",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
        ])
        .current_dir(&dir)
        .env("SCARF_ANALYTICS", "false")
        .stdin(Stdio::null())
        .status()
        .expect("run npm ci");
    assert!(status.success(), "npm ci in clients/js failed: {status}");
}

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
    let checks: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("LEADERBOARD OK checks="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `LEADERBOARD OK checks=N` line\n{report}"));
    assert!(checks >= 40, "only {checks} checks ran\n{report}");
}
