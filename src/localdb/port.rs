//! The throwaway server's port: choosing one, the one recorded, and whether the server
//! answering on a port is ours.

use std::path::Path;
use std::time::{Duration, Instant};

use super::initdb::socket_dir;
use super::quoting::quote_literal;
use super::server::probe;
use super::{LocalDbError, LocalServer, SUPERUSER};

/// Port a throwaway server prefers; another free one is chosen when it is taken.
const THROWAWAY_PORT: u16 = 54329;

/// The recorded port if it is still free (or `avoid_recorded` is false and it is the
/// preferred one), else 54329 if free, else any free port.
pub(super) fn pick_port(recorded: Option<u16>, avoid_recorded: bool) -> u16 {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    if let Some(port) = recorded.filter(|_| !avoid_recorded) {
        if free(port) {
            return port;
        }
    }
    if !avoid_recorded && free(THROWAWAY_PORT) {
        return THROWAWAY_PORT;
    }
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(THROWAWAY_PORT)
}

pub(super) fn read_port(path: &Path) -> Option<u16> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The port line (4th) of `postmaster.pid`.
pub(super) fn pid_file_port(data: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    text.lines().nth(3)?.trim().parse().ok()
}

/// How the server in `dir` on `port` is reached as superuser: over TCP, or (`tls`: TCP
/// takes only TLS there) over its unix socket.
pub(super) fn throwaway_url(dir: &Path, port: u16, tls: bool) -> Result<String, LocalDbError> {
    if !tls {
        return Ok(format!(
            "postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
        ));
    }
    let sock = socket_dir(dir, port).ok_or_else(|| {
        LocalDbError(format!(
            "a throwaway server with TLS is reached over its unix socket, but {} is too long \
             a path for one",
            dir.display()
        ))
    })?;
    Ok(format!(
        "host={} port={port} user={SUPERUSER} dbname=postgres",
        quote_literal(&sock.display().to_string())
    ))
}

/// The server at `url` if it answers and serves `data`.
pub(super) async fn ours_on(url: &str, data: &Path) -> Option<LocalServer> {
    let client = probe(url, Duration::from_secs(2)).await.ok()?;
    let row = client.query_one("SHOW data_directory", &[]).await.ok()?;
    let served: String = row.get(0);
    let same = match (std::fs::canonicalize(&served), std::fs::canonicalize(data)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    same.then_some(LocalServer {
        admin_url: url.to_string(),
    })
}

pub(super) async fn wait_until_ours(
    url: &str,
    port: u16,
    data: &Path,
) -> Result<LocalServer, LocalDbError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(server) = ours_on(url, data).await {
            return Ok(server);
        }
        if Instant::now() > deadline {
            return Err(LocalDbError(format!(
                "the throwaway PostgreSQL in {} started but does not accept connections on \
                 127.0.0.1:{port}",
                data.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
