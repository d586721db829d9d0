//! The real `@heroiclabs/nakama-js` client's set-up for the tests that drive a node with it
//! (tests/nakama_js.rs, tests/notifications.rs, tests/browser_cors.rs): Node.js and npm found
//! or explained, clients/js's npm packages installed once (under a lock) and reused while
//! they match package.json.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The npm project of the client tests.
pub fn client_dir() -> PathBuf {
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
pub fn require_node() -> String {
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
pub fn ensure_client_deps() {
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

/// How a script ended and what it printed.
pub struct ScriptRun {
    pub ok: bool,
    pub report: String,
    pub stdout: String,
}

/// Runs `node clients/js/<script>` with `env`, killed after `within`; async, so a node in the
/// same runtime keeps serving meanwhile.
pub async fn run_script(script: &str, env: &[(&str, String)], within: Duration) -> ScriptRun {
    let dir = client_dir();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join(script))
        .current_dir(&dir)
        .env_remove("NODE_OPTIONS")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    match tokio::time::timeout(within, command.output()).await {
        Err(_) => ScriptRun {
            ok: false,
            report: format!("{script} did not finish within {within:?}"),
            stdout: String::new(),
        },
        Ok(out) => {
            let out = out.unwrap_or_else(|e| panic!("run node {script}: {e}"));
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            ScriptRun {
                ok: out.status.success(),
                report: format!(
                    "{script}: {}\n--- stdout\n{stdout}\n--- stderr\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ),
                stdout,
            }
        }
    }
}
