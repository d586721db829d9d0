//! The real `serai` binary at start: an unreachable database is retried with backoff for
//! `database_connect_timeout_secs`, each attempt logged with the server and the cause, and
//! only then does the node exit 1 (not at once, which on Kubernetes is a restart loop).

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_serai");

/// A loopback port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn an_unreachable_database_is_retried_then_named_and_the_node_exits_1() {
    let port = closed_port();
    let mut cmd = Command::new(BIN);
    cmd.arg("node");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SERAI_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("SERAI_LOG", "info")
        .env(
            "SERAI_DATABASE_URL",
            format!("postgres://serai@127.0.0.1:{port}/serai?sslmode=disable"),
        )
        .env("SERAI_DATABASE_CONNECT_TIMEOUT_SECS", "2")
        .env("SERAI_ALLOW_DEFAULT_SECRETS", "true")
        .env("SERAI_CLIENT_ADDR", "127.0.0.1:0")
        .env("SERAI_ADMIN_ADDR", "127.0.0.1:0")
        .env("SERAI_PEER_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null());
    let start = Instant::now();
    let out = cmd.output().expect("run serai");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit status; stderr:\n{stderr}");
    assert!(
        took >= Duration::from_secs(2),
        "gave up after {took:?}, before the 2 s connect timeout; stderr:\n{stderr}"
    );
    assert!(
        took < Duration::from_secs(20),
        "took {took:?}; stderr:\n{stderr}"
    );
    let server = format!("127.0.0.1:{port}");
    let retries = stderr
        .lines()
        .filter(|l| l.contains("database not reachable at start; retrying"))
        .collect::<Vec<_>>();
    assert!(retries.len() >= 2, "retried; stderr:\n{stderr}");
    for line in &retries {
        assert!(line.contains(&server), "names the server: {line}");
        assert!(line.contains("time_left_secs"), "time left: {line}");
    }
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("serai: "), "final error line: {stderr}");
    assert!(last.contains(&server), "names host and port: {last}");
    assert!(
        last.to_lowercase().contains("connection refused"),
        "names the cause: {last}"
    );
    assert!(last.contains("attempt"), "says it retried: {last}");
}
