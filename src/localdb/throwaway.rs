//! A throwaway server: starting (or reusing) it in its directory, and stopping it.

use std::path::{Path, PathBuf};

use super::binaries::PgBin;
use super::command::{current_uid, one_line, run, RunAs};
use super::directory::{lock, prepare_dir, write_file, DirError};
use super::initdb::{initdb, write_settings};
use super::port::{ours_on, pick_port, pid_file_port, read_port, throwaway_url, wait_until_ours};
use super::{LocalDbError, LocalServer};

/// TLS for a throwaway server ([`LocalServer::start_throwaway_with_tls`]): it serves this
/// certificate, and over TCP only with TLS (pg_hba.conf has `hostssl` lines and no `host`
/// ones), so a client with `sslmode=disable` is refused. Its own connections
/// (`server.admin_url`) go over the unix socket.
#[derive(Clone)]
pub struct ServerTls {
    /// The server's certificate (PEM; a chain: the server's first).
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

/// A throwaway server started (or found running) in a directory. It keeps running when this
/// value is dropped; [`Throwaway::stop`] (or `scripts/pg-stop.sh`) stops it.
#[derive(Debug)]
pub struct Throwaway {
    /// Connection to its `postgres` database as superuser `postgres`.
    pub server: LocalServer,
    /// The directory holding `data/`, `sock/`, `port`, `lock` and `postgres.log`.
    pub dir: PathBuf,
    pub port: u16,
    /// Whether this call started it (false: it was already running).
    pub started: bool,
    run_as: Option<RunAs>,
}

impl Throwaway {
    /// Stops the server (fast shutdown: sessions are disconnected). Stopping a server that is
    /// not running succeeds.
    pub async fn stop(&self) -> Result<(), LocalDbError> {
        let data = self.dir.join("data");
        if !data.join("postmaster.pid").exists() {
            return Ok(());
        }
        let version = std::fs::read_to_string(data.join("PG_VERSION")).ok();
        let bin = PgBin::find(version.as_deref().map(str::trim)).await?;
        let out = run(
            self.run_as.as_ref(),
            &self.dir,
            &bin.pg_ctl,
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "stop".as_ref(),
            ],
        )
        .await?;
        if out.status.success() || !data.join("postmaster.pid").exists() {
            Ok(())
        } else {
            Err(LocalDbError(format!(
                "pg_ctl stop in {} failed: {}",
                data.display(),
                one_line(&out)
            )))
        }
    }
}

/// The throwaway server [`LocalServer::obtain`] uses, falling back to `/tmp` when running as
/// root and the unprivileged user cannot reach the project directory.
pub(super) async fn start_default_throwaway() -> Result<Throwaway, LocalDbError> {
    start_with_fallback(&LocalServer::default_throwaway_dir()).await
}

async fn start_with_fallback(dir: &Path) -> Result<Throwaway, LocalDbError> {
    let run_as = RunAs::for_dir(dir).await?;
    match prepare_dir(dir, run_as.as_ref()).await {
        Ok(()) => start_in(dir, run_as, None).await,
        Err(DirError::Unreachable(why)) => {
            // Root with a checkout the server's user cannot traverse (e.g. under /root): keep
            // the cluster in /tmp instead, one per invoking uid. pg-stop.sh looks there too.
            let uid = current_uid().await?;
            let fallback = std::env::temp_dir().join(format!("serai-pg-{uid}"));
            tracing::info!(
                "{why}; using {} for the throwaway PostgreSQL instead",
                fallback.display()
            );
            let run_as = RunAs::for_dir(&fallback).await?;
            prepare_dir(&fallback, run_as.as_ref())
                .await
                .map_err(DirError::into_error)?;
            start_in(&fallback, run_as, None).await
        }
        Err(DirError::Other(e)) => Err(e),
    }
}

/// Starts or reuses the server in the prepared directory `dir`, holding its lock meanwhile;
/// `tls` applies when this call starts it.
pub(super) async fn start_in(
    dir: &Path,
    run_as: Option<RunAs>,
    tls: Option<&ServerTls>,
) -> Result<Throwaway, LocalDbError> {
    let _lock = lock(&dir.join("lock")).await?;
    let data = dir.join("data");
    let port_file = dir.join("port");
    let found = |server: LocalServer, port: u16, started: bool| Throwaway {
        server,
        dir: dir.to_path_buf(),
        port,
        started,
        run_as: run_as.clone(),
    };

    // Already running? Try the recorded port, then the one in postmaster.pid.
    let mut known_ports = Vec::new();
    if let Some(port) = read_port(&port_file) {
        known_ports.push(port);
    }
    if let Some(port) = pid_file_port(&data) {
        known_ports.push(port);
    }
    for port in known_ports {
        if let Some(server) = ours_on(&throwaway_url(dir, port, tls.is_some())?, &data).await {
            if read_port(&port_file) != Some(port) {
                write_file(&port_file, &format!("{port}\n"))?;
            }
            return Ok(found(server, port, false));
        }
    }

    let version = std::fs::read_to_string(data.join("PG_VERSION"))
        .ok()
        .map(|v| v.trim().to_string());
    let bin = PgBin::find(version.as_deref()).await?;
    if version.is_none() {
        initdb(dir, &bin, run_as.as_ref()).await?;
    }

    let mut last_error = String::new();
    for attempt in 0..3 {
        let port = pick_port(read_port(&port_file), attempt > 0);
        write_file(&port_file, &format!("{port}\n"))?;
        write_settings(dir, port, run_as.as_ref(), tls)?;
        let log = dir.join("postgres.log");
        let out = run(
            run_as.as_ref(),
            dir,
            &bin.pg_ctl,
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        )
        .await?;
        if out.status.success() {
            let url = throwaway_url(dir, port, tls.is_some())?;
            let server = wait_until_ours(&url, port, &data).await?;
            tracing::info!(
                "started a throwaway PostgreSQL in {} on 127.0.0.1:{port}",
                dir.display()
            );
            return Ok(found(server, port, true));
        }
        let tail = log_tail(&log);
        last_error = format!(
            "pg_ctl start in {} failed: {} (log: {tail})",
            data.display(),
            one_line(&out)
        );
        // Only a port taken between our check and the server's bind is worth another try.
        if !tail.contains("could not bind") && !tail.contains("already in use") {
            break;
        }
    }
    Err(LocalDbError(last_error))
}

/// The last lines of the server log, on one line.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
