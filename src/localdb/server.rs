//! A server to create databases on: finding one, connecting to it, creating and dropping
//! databases.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::command::RunAs;
use super::directory::{prepare_dir, DirError};
use super::quoting::{quote_ident, with_dbname};
use super::throwaway::{start_default_throwaway, start_in, ServerTls, Throwaway};
use super::{env_database_url, LocalDbError, SUPERUSER};

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
        Self::start_throwaway_in(dir, None).await
    }

    /// Like [`LocalServer::start_throwaway`], for a server that serves TLS and takes TCP
    /// connections only with it (see [`ServerTls`]); `server.admin_url` is its unix socket.
    pub async fn start_throwaway_with_tls(
        dir: &Path,
        tls: &ServerTls,
    ) -> Result<Throwaway, LocalDbError> {
        Self::start_throwaway_in(dir, Some(tls)).await
    }

    async fn start_throwaway_in(
        dir: &Path,
        tls: Option<&ServerTls>,
    ) -> Result<Throwaway, LocalDbError> {
        let dir = std::path::absolute(dir)
            .map_err(|e| LocalDbError(format!("bad directory {}: {e}", dir.display())))?;
        let run_as = RunAs::for_dir(&dir).await?;
        prepare_dir(&dir, run_as.as_ref())
            .await
            .map_err(DirError::into_error)?;
        start_in(&dir, run_as, tls).await
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

fn workspace_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    if built.join("Cargo.toml").is_file() {
        return built.to_path_buf();
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// Connects with a bounded wait.
pub(super) async fn probe(
    url: &str,
    timeout: Duration,
) -> Result<tokio_postgres::Client, LocalDbError> {
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
