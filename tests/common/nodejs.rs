//! Node.js for the tests that drive a node with the official Nakama JavaScript client
//! (clients/js): node and npm found or a panic that says how to get them, the npm packages
//! installed once with `npm ci` (under a lock, so concurrent test processes install once), and
//! a script run with a deadline.

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

/// Node 18+ and npm, or a panic that says how to get them; returns their versions.
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
/// take a lock so only one installs. Call it before a node starts: it blocks.
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
    eprintln!("nakama-js: installing the client's npm packages (npm ci in clients/js)");
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

/// What a script printed, and how it ended (`status` is None when it ran past its deadline).
pub struct ScriptRun {
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptRun {
    /// Both outputs, for assertion messages.
    pub fn report(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Runs `node clients/js/<script>` with `env` and waits for it at most `within`, without
/// blocking the runtime (a node under test may serve from it); killed when late.
pub async fn run_script(script: &str, env: &[(&str, String)], within: Duration) -> ScriptRun {
    let dir = client_dir();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join(script))
        .current_dir(&dir)
        .env_remove("NODE_OPTIONS")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run node clients/js/{script}: {e}"));
    match tokio::time::timeout(within, child.wait_with_output()).await {
        Ok(output) => {
            let output = output.unwrap_or_else(|e| panic!("wait for {script}: {e}"));
            ScriptRun {
                status: Some(output.status),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        }
        // Dropping the future drops the child, which kills it (kill_on_drop).
        Err(_) => ScriptRun {
            status: None,
            stdout: String::new(),
            stderr: format!("{script} did not finish within {within:?}"),
        },
    }
}

/// Asserts that a scenario script (clients/js/scenario.mjs) printed its last line,
/// `<name> OK checks=<n>`, with at least `min_checks` checks; `report` is shown on failure.
/// The number of checks.
pub fn assert_checks(stdout: &str, name: &str, min_checks: usize, report: &str) -> usize {
    let prefix = format!("{name} OK checks=");
    let checks: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}N` line\n{report}"));
    assert!(checks >= min_checks, "only {checks} checks ran\n{report}");
    checks
}
