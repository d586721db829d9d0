//! The real `@heroiclabs/nakama-js` client (pinned in clients/js/package.json) under Node
//! against a real node on a fresh PostgreSQL database: `clients/js/trade_flow.mjs` plays a game
//! client from device auth to trading, disconnects, comes back and finds its state intact
//! (the script asserts every answer; see its header).
//!
//! Needs `node` (18 or later: global `fetch`) and `npm` on PATH; without them this test fails
//! and says so (`scripts/test.sh` installs them). The npm packages are installed with
//! `npm ci` into clients/js/node_modules the first time (under a lock, so concurrent test
//! runs install once), and reused while they match package.json.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::nodejs::{client_dir, ensure_client_deps, require_node};

/// What the script printed, and how it ended.
struct Run {
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
    restarts: usize,
    timed_out: bool,
}

#[actix_rt::test]
async fn nakama_js_trade_flow() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let started = Instant::now();
    let tools = require_node();
    // Before the node starts: blocking here stalls nothing.
    ensure_client_deps();
    let installed = started.elapsed();

    let common::node::TestNode { node, config, db } = common::node::start_node().await;
    let dir = client_dir();
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("trade_flow.mjs"))
        .current_dir(&dir)
        .env("SERAI_CLIENT_ADDR", node.client_addr.to_string())
        .env("SERAI_SERVER_KEY", &config.server_key)
        .env("SERAI_PAUSE_FOR_RESTART", "1")
        .env_remove("SERAI_DEVICE_ID")
        .env_remove("NODE_OPTIONS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node clients/js/trade_flow.mjs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = child.stderr.take().expect("stderr");
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    // The node serves from this very runtime while the script runs: everything here is async.
    // When the script pauses (after its disconnect), the node is stopped and a new one is
    // started on the same database, so the reconnect reads the state back from the database.
    let mut node = Some(node);
    let mut run = Run {
        status: None,
        stdout: String::new(),
        stderr: String::new(),
        restarts: 0,
        timed_out: false,
    };
    let drive = async {
        while let Some(line) = lines.next_line().await.expect("read the script's stdout") {
            run.stdout.push_str(&line);
            run.stdout.push('\n');
            if line == "PAUSED" {
                node.take()
                    .expect("a running node")
                    .stop()
                    .await
                    .expect("node stops");
                let again = serai::node::start(config.clone(), serai::shutdown::Shutdown::new())
                    .await
                    .expect("node restarts on the same database");
                let resume = format!("RESUME {}\n", again.client_addr);
                node = Some(again);
                run.restarts += 1;
                stdin
                    .write_all(resume.as_bytes())
                    .await
                    .expect("answer the script");
                stdin.flush().await.expect("flush the script's stdin");
            }
        }
        child.wait().await.expect("wait for the script")
    };
    match tokio::time::timeout(Duration::from_secs(50), drive).await {
        Ok(status) => run.status = Some(status),
        Err(_) => run.timed_out = true,
    }
    drop(child); // kills the script if it is still running
    run.stderr = tokio::time::timeout(Duration::from_secs(5), stderr_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if let Some(node) = node {
        node.stop().await.expect("node stops");
    }
    drop(db);

    let report = format!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    // Shown with --nocapture (and by the harness when the test fails).
    println!("{report}");
    assert!(
        !run.timed_out,
        "trade_flow.mjs did not finish within 50 s\n{report}"
    );
    let status = run.status.expect("an exit status");
    assert!(
        status.success(),
        "trade_flow.mjs failed ({status}) with {tools}\n{report}"
    );
    assert_eq!(
        run.restarts, 1,
        "the script paused once for the restart\n{report}"
    );
    for expected in [
        "-- authenticateDevice (create)",
        "-- create_character over the socket",
        "-- execute_trade buy over the socket",
        "-- execute_trade sell over HTTP",
        "-- disconnect",
        "-- paused while the node restarts",
        "-- reconnect the socket; the state is intact",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == expected),
            "missing step {expected:?}\n{report}"
        );
    }
    let checks = common::nodejs::assert_checks(&run.stdout, "TRADE_FLOW", 100, &report);
    assert!(
        !run.stderr.contains("lifetime too short"),
        "nakama-js warned about the token lifetimes\n{report}"
    );
    eprintln!(
        "nakama_js: {checks} checks passed with {tools} in {:.1} s (npm step {:.1} s)",
        started.elapsed().as_secs_f64(),
        installed.as_secs_f64()
    );
}
