//! A PostgreSQL without setup, for `serai dev`, the tests and the benchmarks.
//!
//! Order of preference: `SERAI_DATABASE_URL` when set; else a server answering on
//! 127.0.0.1:5432; else a throwaway server started from the system's binaries in a
//! project-local directory. (Minimal version: the throwaway server is still to come.)

use uuid::Uuid;

/// Errors finding or preparing a local database.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LocalDbError(pub String);

/// A PostgreSQL server we may create databases on.
#[derive(Debug, Clone)]
pub struct LocalServer {
    /// Connection settings for the server's maintenance database.
    pub admin_url: String,
}

impl LocalServer {
    /// Finds (or starts) a server, in the order described in the module docs.
    pub async fn obtain() -> Result<LocalServer, LocalDbError> {
        if let Ok(url) = std::env::var("SERAI_DATABASE_URL") {
            return Ok(LocalServer { admin_url: url });
        }
        let url = "postgresql://postgres@127.0.0.1:5432/postgres".to_string();
        if connect(&url).await.is_ok() {
            return Ok(LocalServer { admin_url: url });
        }
        Err(LocalDbError("no PostgreSQL found: set SERAI_DATABASE_URL or install postgresql".into()))
    }

    /// URL of database `name` on this server.
    pub fn url_for(&self, name: &str) -> String {
        let mut cfg: tokio_postgres::Config = self.admin_url.parse().expect("valid url");
        cfg.dbname(name);
        config_to_url(&cfg)
    }

    /// Creates database `name` unless it exists.
    pub async fn ensure_database(&self, name: &str) -> Result<String, LocalDbError> {
        let client = connect(&self.admin_url).await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| LocalDbError(e.to_string()))?
            .is_some();
        if !exists {
            if let Err(e) = client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await {
                // Another process may have created it at the same moment.
                if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                    return Err(LocalDbError(e.to_string()));
                }
            }
        }
        Ok(self.url_for(name))
    }

    async fn drop_database(&self, name: &str) -> Result<(), LocalDbError> {
        let client = connect(&self.admin_url).await?;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .map_err(|e| LocalDbError(e.to_string()))
    }
}

/// A fresh, empty database for one test, dropped when the value is dropped.
pub struct TestDatabase {
    pub url: String,
    pub name: String,
    server: LocalServer,
}

impl TestDatabase {
    pub async fn create() -> Result<TestDatabase, LocalDbError> {
        let server = LocalServer::obtain().await?;
        let name = format!("serai_test_{}", Uuid::new_v4().simple());
        let url = server.ensure_database(&name).await?;
        Ok(TestDatabase { url, name, server })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime; a fresh thread with its own runtime is always safe.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                let _ = rt.block_on(server.drop_database(&name));
            }
        })
        .join();
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, LocalDbError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| LocalDbError(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn config_to_url(cfg: &tokio_postgres::Config) -> String {
    let user = cfg.get_user().unwrap_or("postgres");
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "127.0.0.1".to_string(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let db = cfg.get_dbname().unwrap_or("postgres");
    let password = cfg.get_password().map(|p| format!(":{}", String::from_utf8_lossy(p))).unwrap_or_default();
    if host.starts_with('/') {
        format!("postgresql://{user}{password}@/{db}?host={host}&port={port}")
    } else {
        format!("postgresql://{user}{password}@{host}:{port}/{db}")
    }
}
