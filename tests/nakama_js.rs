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

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The npm project of the client tests.
fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/js")
}

/// Runs `program --version`, or explains what is missing.
fn tool_version(program: &str) -> Result<String, String> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{program} --version` could not run: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{program} --version` failed: {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Node and npm, or a panic that says how to get them.
fn require_node() -> String {
    let missing = |e: String| -> ! {
        panic!(
            "this test drives the server with the official nakama-js client and needs Node.js \
             18+ and npm on PATH: {e}. Install them (Debian/Ubuntu as root: \
             `apt-get install nodejs npm`, or run scripts/test.sh)."
        )
    };
    let node = tool_version("node").unwrap_or_else(|e| missing(e));
    let npm = tool_version("npm").unwrap_or_else(|e| missing(e));
    let major: u32 = node
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 18 {
        missing(format!("found node {node}, which has no global fetch"));
    }
    format!("node {node}, npm {npm}")
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Whether node_modules holds exactly the versions package.json pins.
fn deps_installed(dir: &Path) -> bool {
    let manifest = read_json(&dir.join("package.json")).expect("clients/js/package.json");
    let deps = manifest["dependencies"]
        .as_object()
        .expect("package.json has dependencies");
    deps.iter().all(|(name, version)| {
        read_json(&dir.join("node_modules").join(name).join("package.json"))
            .is_some_and(|installed| installed["version"] == *version)
    })
}

/// `npm ci` in clients/js unless node_modules already matches; concurrent test processes
/// take a lock so only one installs.
fn ensure_client_deps() {
    let dir = client_dir();
    if deps_installed(&dir) {
        return;
    }
    let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nakama-js-npm.lock");
    let lock =
        File::create(&lock_path).unwrap_or_else(|e| panic!("create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if deps_installed(&dir) {
        return;
    }
    eprintln!("nakama_js: installing the client's npm packages (npm ci in clients/js)");
    // --ignore-scripts: nothing needed here has a build step, and it keeps install-time
    // scripts (e.g. analytics pings) from running.
    let mut child = Command::new("npm")
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
        .spawn()
        .expect("run npm ci");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for npm ci") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("npm ci in clients/js did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "npm ci in clients/js failed: {status}");
    assert!(
        deps_installed(&dir),
        "npm ci succeeded but node_modules does not match clients/js/package.json"
    );
    drop(lock);
}

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
    let checks: usize = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("TRADE_FLOW OK checks="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `TRADE_FLOW OK checks=N` line\n{report}"));
    assert!(checks >= 100, "only {checks} checks ran\n{report}");
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
