//! A PostgreSQL without setup, for `serai dev`, the tests and the benchmarks.
//!
//! Order of preference:
//! 1. `SERAI_DATABASE_URL` when set (for the tests: the server on which each test creates its
//!    own database; for [`dev_database`]: the database itself).
//! 2. A server answering on 127.0.0.1:5432 that lets user `postgres` in without a password.
//! 3. A throwaway server started from the system's binaries (`initdb`/`pg_ctl` on `PATH` or
//!    under `/usr/lib/postgresql/*/bin`) in `<workspace>/.serai/pg` (see
//!    [`LocalServer::default_throwaway_dir`]). It listens on 127.0.0.1 only (port 54329, or a
//!    free one recorded in `port`), trusts local users, runs with fsync off, and stays up
//!    afterwards so the next run reuses it; `scripts/pg-stop.sh` stops it.
//!
//! If none of these works, the error is one line naming what to install.
//!
//! Layout of a throwaway directory: `data/` (the cluster), `sock/` (unix socket), `port`,
//! `lock` (serialises start-up between processes, e.g. parallel test binaries) and
//! `postgres.log`.
//!
//! As root: `initdb` and `pg_ctl` refuse to run as root, so they run as user `postgres` (or
//! `nobody` when there is no such user) via `runuser` (else `setpriv`, else `su`), and the
//! directory is handed to that user. If that user cannot reach the project directory (e.g. a
//! checkout under `/root`), the default directory moves to `/tmp/serai-pg-<uid>`.
//!
//! This module is Unix-only tooling for development and tests; production nodes get their
//! database URL from the configuration.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use tokio::process::Command;
use uuid::Uuid;

/// Errors finding or preparing a local database.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LocalDbError(pub String);

/// The superuser created in a throwaway cluster, and the user tried on 127.0.0.1:5432.
const SUPERUSER: &str = "postgres";
/// Port a throwaway server prefers; another free one is chosen when it is taken.
const THROWAWAY_PORT: u16 = 54329;
/// How long to wait for another process that is starting the same throwaway server.
const LOCK_WAIT: Duration = Duration::from_secs(180);
/// What to do when no PostgreSQL can be found or started.
const INSTALL_HINT: &str = "install PostgreSQL's server binaries (Debian/Ubuntu: \
     `apt-get install postgresql`; Fedora: `dnf install postgresql-server`; macOS: \
     `brew install postgresql`) or set SERAI_DATABASE_URL";

/// A PostgreSQL server we may create databases on.
#[derive(Debug, Clone)]
pub struct LocalServer {
    /// Connection settings for the server's maintenance database.
    pub admin_url: String,
}

impl LocalServer {
    /// Finds (or starts) a server, in the order described in the module docs.
    pub async fn obtain() -> Result<LocalServer, LocalDbError> {
        if let Some(url) = env_database_url() {
            return Ok(LocalServer { admin_url: url });
        }
        let url = format!("postgresql://{SUPERUSER}@127.0.0.1:5432/postgres");
        let on_5432 = match probe(&url, Duration::from_secs(3)).await {
            Ok(_) => return Ok(LocalServer { admin_url: url }),
            Err(e) => e.0,
        };
        match start_default_throwaway().await {
            Ok(throwaway) => Ok(throwaway.server),
            Err(e) => Err(LocalDbError(format!(
                "no PostgreSQL available: SERAI_DATABASE_URL is unset; 127.0.0.1:5432 as \
                 user {SUPERUSER}: {on_5432}; throwaway server: {e}"
            ))),
        }
    }

    /// Starts (or reuses) a throwaway server whose files live in `dir`, which is created if
    /// missing. Unlike [`LocalServer::obtain`] this never moves elsewhere: if `dir` cannot be
    /// used, that is the error. Concurrent calls for the same `dir`, from any process, agree
    /// on one server.
    pub async fn start_throwaway(dir: &Path) -> Result<Throwaway, LocalDbError> {
        let dir = std::path::absolute(dir)
            .map_err(|e| LocalDbError(format!("bad directory {}: {e}", dir.display())))?;
        let run_as = RunAs::for_dir(&dir).await?;
        prepare_dir(&dir, run_as.as_ref())
            .await
            .map_err(DirError::into_error)?;
        start_in(&dir, run_as).await
    }

    /// Where [`LocalServer::obtain`] keeps its throwaway server: `<workspace>/.serai/pg`, the
    /// workspace being the crate directory this was built from if it still exists, else the
    /// current directory. (As root it may move to `/tmp/serai-pg-<uid>`, see module docs.)
    pub fn default_throwaway_dir() -> PathBuf {
        workspace_dir().join(".serai").join("pg")
    }

    /// URL of database `name` on this server (same host, user and options).
    pub fn url_for(&self, name: &str) -> String {
        with_dbname(&self.admin_url, name)
    }

    /// Creates database `name` unless it exists; returns its URL.
    pub async fn ensure_database(&self, name: &str) -> Result<String, LocalDbError> {
        let client = connect(&self.admin_url).await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| LocalDbError(format!("checking for database {name}: {e}")))?
            .is_some();
        if !exists {
            let sql = format!("CREATE DATABASE {}", quote_ident(name));
            if let Err(e) = client.batch_execute(&sql).await {
                // Another process may have created it at the same moment.
                if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                    return Err(LocalDbError(format!("creating database {name}: {e}")));
                }
            }
        }
        Ok(self.url_for(name))
    }

    /// Drops database `name` if it exists, disconnecting its sessions.
    pub async fn drop_database(&self, name: &str) -> Result<(), LocalDbError> {
        let client = connect(&self.admin_url).await?;
        let ident = quote_ident(name);
        let forced = format!("DROP DATABASE IF EXISTS {ident} WITH (FORCE)");
        match client.batch_execute(&forced).await {
            Ok(()) => Ok(()),
            // CockroachDB (and PostgreSQL before 13) lack WITH (FORCE).
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::SYNTAX_ERROR) => client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {ident} CASCADE"))
                .await
                .map_err(|e| LocalDbError(format!("dropping database {name}: {e}"))),
            Err(e) => Err(LocalDbError(format!("dropping database {name}: {e}"))),
        }
    }
}

/// URL of the database `serai dev` uses: `SERAI_DATABASE_URL` as is when set, else database
/// `serai` (created if missing, kept between runs) on the server [`LocalServer::obtain`] finds.
pub async fn dev_database() -> Result<String, LocalDbError> {
    if let Some(url) = env_database_url() {
        return Ok(url);
    }
    LocalServer::obtain().await?.ensure_database("serai").await
}

/// A fresh, empty database for one test, dropped when the value is dropped.
pub struct TestDatabase {
    pub url: String,
    pub name: String,
    server: LocalServer,
}

impl TestDatabase {
    /// Creates `serai_test_<uuid>` on the server [`LocalServer::obtain`] finds.
    pub async fn create() -> Result<TestDatabase, LocalDbError> {
        let server = LocalServer::obtain().await?;
        let name = format!("serai_test_{}", Uuid::new_v4().simple());
        let url = server.ensure_database(&name).await?;
        Ok(TestDatabase { url, name, server })
    }

    /// The server the database lives on.
    pub fn server(&self) -> &LocalServer {
        &self.server
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime; a fresh thread with its own runtime is always safe.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                if let Err(e) = rt.block_on(server.drop_database(&name)) {
                    eprintln!("warning: test database {name} was not dropped: {e}");
                }
            }
        })
        .join();
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

fn env_database_url() -> Option<String> {
    std::env::var("SERAI_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

fn workspace_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    if built.join("Cargo.toml").is_file() {
        return built.to_path_buf();
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// The throwaway server [`LocalServer::obtain`] uses, falling back to `/tmp` when running as
/// root and the unprivileged user cannot reach the project directory.
async fn start_default_throwaway() -> Result<Throwaway, LocalDbError> {
    start_with_fallback(&LocalServer::default_throwaway_dir()).await
}

async fn start_with_fallback(dir: &Path) -> Result<Throwaway, LocalDbError> {
    let run_as = RunAs::for_dir(dir).await?;
    match prepare_dir(dir, run_as.as_ref()).await {
        Ok(()) => start_in(dir, run_as).await,
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
            start_in(&fallback, run_as).await
        }
        Err(DirError::Other(e)) => Err(e),
    }
}

enum DirError {
    /// The unprivileged user cannot reach the directory.
    Unreachable(String),
    Other(LocalDbError),
}

impl DirError {
    fn into_error(self) -> LocalDbError {
        match self {
            DirError::Unreachable(why) => LocalDbError(why),
            DirError::Other(e) => e,
        }
    }
}

/// Creates `dir` and its socket directory and, as root, hands them to the server's user and
/// checks that user can reach them.
async fn prepare_dir(dir: &Path, run_as: Option<&RunAs>) -> Result<(), DirError> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        DirError::Other(LocalDbError(format!("{what} {}: {e}", p.display())))
    };
    let sock = dir.join("sock");
    std::fs::create_dir_all(&sock).map_err(|e| io("cannot create", &sock, e))?;
    let Some(user) = run_as else { return Ok(()) };
    for path in [dir, &sock] {
        let meta = std::fs::symlink_metadata(path).map_err(|e| io("cannot inspect", path, e))?;
        if meta.uid() == user.uid {
            continue;
        }
        // Never take over a directory someone else made (e.g. a planted /tmp path).
        if meta.uid() != 0 || meta.file_type().is_symlink() {
            return Err(DirError::Other(LocalDbError(format!(
                "{} belongs to uid {}, expected root or {}: remove it",
                path.display(),
                meta.uid(),
                user.name
            ))));
        }
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(|e| io("cannot chown", path, e))?;
    }
    let out = run(
        Some(user),
        Path::new("/"),
        Path::new("test"),
        &["-w".as_ref(), sock.as_os_str()],
    )
    .await
    .map_err(DirError::Other)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DirError::Unreachable(format!(
            "user {} cannot reach {} (a parent directory is not searchable by it)",
            user.name,
            dir.display()
        )))
    }
}

/// Starts or reuses the server in the prepared directory `dir`, holding its lock meanwhile.
async fn start_in(dir: &Path, run_as: Option<RunAs>) -> Result<Throwaway, LocalDbError> {
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
        if let Some(server) = ours_on(port, &data).await {
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
        write_settings(dir, port, run_as.as_ref())?;
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
            let server = wait_until_ours(port, &data).await?;
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

/// Takes the exclusive start-up lock, waiting for another process holding it.
// `File::try_lock` needs Rust 1.89; Cargo.toml's rust-version (1.85) is to be raised.
#[allow(clippy::incompatible_msrv)]
async fn lock(path: &Path) -> Result<std::fs::File, LocalDbError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| LocalDbError(format!("cannot open {}: {e}", path.display())))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LocalDbError(format!(
                    "another process has held {} for {}s",
                    path.display(),
                    LOCK_WAIT.as_secs()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(LocalDbError(format!("cannot lock {}: {e}", path.display())))
            }
        }
    }
}

async fn initdb(dir: &Path, bin: &PgBin, run_as: Option<&RunAs>) -> Result<(), LocalDbError> {
    let data = dir.join("data");
    // A half-made cluster (interrupted initdb) has no PG_VERSION: start over.
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .map_err(|e| LocalDbError(format!("cannot remove {}: {e}", data.display())))?;
    }
    let out = run(
        run_as,
        dir,
        &bin.initdb,
        &[
            "-D".as_ref(),
            data.as_os_str(),
            "-U".as_ref(),
            SUPERUSER.as_ref(),
            "--auth=trust".as_ref(),
            "--encoding=UTF8".as_ref(),
            "--no-locale".as_ref(),
            "--no-sync".as_ref(),
        ],
    )
    .await?;
    if !out.status.success() {
        return Err(LocalDbError(format!(
            "initdb {} failed: {}",
            data.display(),
            one_line(&out)
        )));
    }
    // Our settings live in serai.conf, rewritten before every start.
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf)
        .map_err(|e| LocalDbError(format!("cannot read {}: {e}", conf.display())))?;
    text.push_str("\ninclude_if_exists = 'serai.conf'\n");
    write_file(&conf, &text)
}

/// Writes `data/serai.conf`: port, addresses, socket directory and the speed settings.
fn write_settings(dir: &Path, port: u16, run_as: Option<&RunAs>) -> Result<(), LocalDbError> {
    let sock = dir.join("sock");
    // A unix socket path is limited to ~107 bytes; past that, TCP only.
    let sock_path = sock.join(format!(".s.PGSQL.{port}"));
    let sockets = if sock_path.as_os_str().len() < 100 {
        sock.display().to_string()
    } else {
        String::new()
    };
    let text = format!(
        "# Written by serai's localdb before every start; edits are overwritten.\n\
         port = {port}\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = {}\n\
         max_connections = 300\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n",
        quote_literal(&sockets)
    );
    let path = dir.join("data").join("serai.conf");
    write_file(&path, &text)?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid))
            .map_err(|e| LocalDbError(format!("cannot chown {}: {e}", path.display())))?;
    }
    Ok(())
}

/// The recorded port if it is still free (or `avoid_recorded` is false and it is the
/// preferred one), else 54329 if free, else any free port.
fn pick_port(recorded: Option<u16>, avoid_recorded: bool) -> u16 {
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

fn read_port(path: &Path) -> Option<u16> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The port line (4th) of `postmaster.pid`.
fn pid_file_port(data: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    text.lines().nth(3)?.trim().parse().ok()
}

fn throwaway_url(port: u16) -> String {
    format!("postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres")
}

/// The server on `port` if it answers and serves `data`.
async fn ours_on(port: u16, data: &Path) -> Option<LocalServer> {
    let url = throwaway_url(port);
    let client = probe(&url, Duration::from_secs(2)).await.ok()?;
    let row = client.query_one("SHOW data_directory", &[]).await.ok()?;
    let served: String = row.get(0);
    let same = match (std::fs::canonicalize(&served), std::fs::canonicalize(data)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    same.then_some(LocalServer { admin_url: url })
}

async fn wait_until_ours(port: u16, data: &Path) -> Result<LocalServer, LocalDbError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(server) = ours_on(port, data).await {
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

/// The `initdb` and `pg_ctl` to use.
#[derive(Debug)]
struct PgBin {
    initdb: PathBuf,
    pg_ctl: PathBuf,
}

impl PgBin {
    /// Binaries from `PATH` first, then the usual install directories (newest first). With
    /// `want` (the major version of an existing cluster), only binaries of that version.
    async fn find(want: Option<&str>) -> Result<PgBin, LocalDbError> {
        let mut found = Vec::new();
        for dir in candidate_dirs() {
            let (initdb, pg_ctl) = (dir.join("initdb"), dir.join("pg_ctl"));
            if !initdb.is_file() || !pg_ctl.is_file() {
                continue;
            }
            let version = major_version(&pg_ctl).await;
            match (want, &version) {
                (None, _) => return Ok(PgBin { initdb, pg_ctl }),
                (Some(w), Some(v)) if w == v => return Ok(PgBin { initdb, pg_ctl }),
                _ => found.push(format!(
                    "{} ({})",
                    dir.display(),
                    version.as_deref().unwrap_or("unknown version")
                )),
            }
        }
        match want {
            Some(w) if !found.is_empty() => Err(LocalDbError(format!(
                "the throwaway cluster was made by PostgreSQL {w} but only {} is installed: \
                 delete it (scripts/pg-stop.sh --purge) or install PostgreSQL {w}",
                found.join(", ")
            ))),
            _ => Err(LocalDbError(format!(
                "no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin: {INSTALL_HINT}"
            ))),
        }
    }
}

fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for (parent, prefix) in [("/usr/lib/postgresql", ""), ("/usr", "pgsql-")] {
        let mut versioned: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version = name.strip_prefix(prefix)?;
                let key = version
                    .split('.')
                    .map(|n| n.parse::<u32>().ok())
                    .collect::<Option<Vec<_>>>()?;
                Some((key, entry.path().join("bin")))
            })
            .collect();
        versioned.sort_by(|a, b| b.0.cmp(&a.0));
        dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
    }
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    dirs
}

/// Major version as written in `PG_VERSION` ("15", or "9.6" before 10), from `--version`.
async fn major_version(pg_ctl: &Path) -> Option<String> {
    let out = Command::new(pg_ctl).arg("--version").output().await.ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let number = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = number.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?;
    if major.parse::<u32>().ok()? >= 10 {
        Some(major.to_string())
    } else {
        Some(format!("{major}.{}", parts.next()?))
    }
}

/// The unprivileged user PostgreSQL runs as when we are root.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// None unless root. Else the owner of an existing `dir/data`, or `postgres`, or `nobody`.
    async fn for_dir(dir: &Path) -> Result<Option<RunAs>, LocalDbError> {
        if current_uid().await? != 0 {
            return Ok(None);
        }
        if let Ok(meta) = std::fs::metadata(dir.join("data")) {
            if meta.uid() != 0 {
                if let Some(name) = id(&["-nu", &meta.uid().to_string()]).await {
                    return Ok(Some(RunAs {
                        name,
                        uid: meta.uid(),
                        gid: meta.gid(),
                    }));
                }
            }
        }
        for name in ["postgres", "nobody"] {
            let (Some(uid), Some(gid)) = (id(&["-u", name]).await, id(&["-g", name]).await) else {
                continue;
            };
            if let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) {
                return Ok(Some(RunAs {
                    name: name.to_string(),
                    uid,
                    gid,
                }));
            }
        }
        Err(LocalDbError(
            "running as root, and there is no `postgres` or `nobody` user to run PostgreSQL as \
             (initdb refuses root): create one (`useradd --system postgres`) or run as an \
             ordinary user"
                .into(),
        ))
    }
}

async fn id(args: &[&str]) -> Option<String> {
    let out = Command::new("id").args(args).output().await.ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

async fn current_uid() -> Result<u32, LocalDbError> {
    id(&["-u"])
        .await
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(|| LocalDbError("cannot tell the current user id (`id -u` failed)".into()))
}

/// Runs `program args` in `cwd`, as `run_as` when given (we are root then).
async fn run(
    run_as: Option<&RunAs>,
    cwd: &Path,
    program: &Path,
    args: &[&std::ffi::OsStr],
) -> Result<Output, LocalDbError> {
    let mut cmd = match run_as {
        None => Command::new(program),
        Some(user) if on_path("runuser") => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", &user.name, "--"]).arg(program);
            cmd
        }
        Some(user) if on_path("setpriv") => {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .args(["--clear-groups", "--"])
                .arg(program);
            cmd
        }
        Some(user) => {
            let mut cmd = Command::new("su");
            cmd.args([
                "-s",
                "/bin/sh",
                "-c",
                "exec \"$0\" \"$@\"",
                "--",
                &user.name,
            ])
            .arg(program);
            cmd
        }
    };
    cmd.args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd.output()
        .await
        .map_err(|e| LocalDbError(format!("cannot run {}: {e}", program.display())))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// A command's stderr (else stdout) on one line.
fn one_line(out: &Output) -> String {
    let text = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        &out.stderr
    } else {
        &out.stdout
    };
    let text = String::from_utf8_lossy(text);
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    format!("{} ({joined})", out.status)
}

/// The last lines of the server log, on one line.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

fn write_file(path: &Path, text: &str) -> Result<(), LocalDbError> {
    std::fs::write(path, text)
        .map_err(|e| LocalDbError(format!("cannot write {}: {e}", path.display())))
}

/// Connects with a bounded wait.
async fn probe(url: &str, timeout: Duration) -> Result<tokio_postgres::Client, LocalDbError> {
    let mut cfg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| LocalDbError(format!("bad database URL: {e}")))?;
    cfg.connect_timeout(timeout);
    let (client, conn) = tokio::time::timeout(timeout * 2, cfg.connect(tokio_postgres::NoTls))
        .await
        .map_err(|_| LocalDbError(format!("no answer within {}s", timeout.as_secs() * 2)))?
        .map_err(|e| LocalDbError(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, LocalDbError> {
    probe(url, Duration::from_secs(15)).await
}

/// `url` with its database replaced by `name`: the path of a `postgres://` URL, or a
/// `dbname=` setting appended to a `key=value` connection string (the last one wins).
fn with_dbname(url: &str, name: &str) -> String {
    for scheme in ["postgresql://", "postgres://"] {
        let Some(rest) = url.strip_prefix(scheme) else {
            continue;
        };
        let (before_query, query) = match rest.find('?') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let authority = before_query.split('/').next().unwrap_or("");
        return format!("{scheme}{authority}/{}{query}", percent_encode(name));
    }
    format!("{url} dbname={}", quote_literal(name))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A single-quoted literal for postgresql.conf and libpq connection strings.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_for_replaces_only_the_database() {
        assert_eq!(
            with_dbname("postgresql://postgres@127.0.0.1:5432/postgres", "serai"),
            "postgresql://postgres@127.0.0.1:5432/serai"
        );
        assert_eq!(
            with_dbname(
                "postgres://u:p%40ss@db:26257/defaultdb?sslmode=require",
                "t 1"
            ),
            "postgres://u:p%40ss@db:26257/t%201?sslmode=require"
        );
        assert_eq!(with_dbname("postgresql://h", "x"), "postgresql://h/x");
        assert_eq!(
            with_dbname("host=/tmp user=me", "x"),
            "host=/tmp user=me dbname='x'"
        );
        let cfg: tokio_postgres::Config = with_dbname("host=/tmp dbname=a", "b").parse().unwrap();
        assert_eq!(cfg.get_dbname(), Some("b"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it\\'s'");
    }

    #[tokio::test]
    async fn missing_binaries_name_what_to_install() {
        // No version of PostgreSQL is "0", so nothing matches; with nothing installed at all
        // the message is the install hint.
        let err = PgBin::find(Some("0")).await.unwrap_err().0;
        assert!(
            err.contains("PostgreSQL 0") || err.contains("apt-get install postgresql"),
            "{err}"
        );
        assert!(!INSTALL_HINT.contains('\n'));
        assert!(INSTALL_HINT.contains("apt-get install postgresql"));
    }

    #[tokio::test]
    async fn version_of_installed_binaries() {
        if let Ok(bin) = PgBin::find(None).await {
            let v = major_version(&bin.pg_ctl).await.expect("pg_ctl --version");
            assert!(v.chars().next().unwrap().is_ascii_digit(), "{v}");
        }
    }
}
