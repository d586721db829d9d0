//! Where the database is and how the way there is secured: every connection serai makes to
//! it (the node's pools, `serai migrate`, the tools) starts from a [`Target`].

use std::path::Path;

use deadpool_postgres::{Manager, ManagerConfig};
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::io_thread::{self, OnIoThread};
use super::tls;
use super::DbError;
use crate::config::database_tls;

/// A database URL read: tokio-postgres's settings, the TLS connector its `sslmode` asks for
/// and, for errors, which server(s) it names.
pub(crate) struct Target {
    pg: tokio_postgres::Config,
    /// `None`: plain TCP (`sslmode=disable`).
    tls: Option<MakeRustlsConnect>,
    server: String,
}

impl Target {
    /// Reads `url` (its `sslmode` and `sslrootcert` too); `ca_file` is the `database_ca_file`
    /// setting. The CA file is read now, so a missing one fails here and not at first use.
    pub(crate) fn parse(url: &str, ca_file: Option<&Path>) -> Result<Target, DbError> {
        let bad = |e: String| DbError::Unavailable(format!("bad database url: {e}"));
        let split = database_tls(url, ca_file).map_err(bad)?;
        let pg: tokio_postgres::Config = split.url.parse().map_err(|e| bad(tls::explain(&e)))?;
        let tls = tls::connector(split.mode, split.ca_file.as_deref())
            .map_err(|e| DbError::Unavailable(format!("database TLS: {e}")))?;
        let server = format!("{} (sslmode={})", servers(&pg), split.mode.as_str());
        Ok(Target { pg, tls, server })
    }

    /// tokio-postgres's settings, for the caller's deadlines and options.
    pub(crate) fn pg_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.pg
    }

    /// `host:port (sslmode=…)`, for errors.
    pub(crate) fn server(&self) -> &str {
        &self.server
    }

    /// The pool's connection manager, connecting as [`Target::connect`] does.
    pub(crate) fn into_manager(self, config: ManagerConfig) -> Manager {
        match self.tls {
            Some(tls) => Manager::from_connect(self.pg, OnIoThread { tls }, config),
            None => Manager::from_connect(self.pg, OnIoThread { tls: NoTls }, config),
        }
    }

    /// One connection, driven on the database I/O thread until the client is dropped.
    pub(crate) async fn connect(&self) -> Result<tokio_postgres::Client, DbError> {
        let failed = |source| DbError::Connect {
            server: self.server.clone(),
            source,
        };
        let pg = self.pg.clone();
        let (client, _driven) = match &self.tls {
            Some(tls) => io_thread::connect(pg, tls.clone()).await,
            None => io_thread::connect(pg, NoTls).await,
        }
        .map_err(failed)?;
        Ok(client)
    }
}

/// One connection outside any pool (for tools and harnesses), secured like the node's: `url`
/// may carry `sslmode` and `sslrootcert`, `ca_file` is the `database_ca_file` setting.
pub async fn connect(url: &str, ca_file: Option<&Path>) -> Result<tokio_postgres::Client, DbError> {
    Target::parse(url, ca_file)?.connect().await
}

/// `host:port` of every host the settings name, comma-separated.
fn servers(pg: &tokio_postgres::Config) -> String {
    let ports = pg.get_ports();
    let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    let hosts: Vec<String> = if pg.get_hosts().is_empty() {
        pg.get_hostaddrs().iter().map(ToString::to_string).collect()
    } else {
        pg.get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            })
            .collect()
    };
    let with_ports: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| format!("{h}:{}", port(i)))
        .collect();
    with_ports.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_named_with_its_port_and_mode() {
        let t = Target::parse("postgresql://u@db:26257/x?sslmode=require", None).unwrap();
        assert_eq!(t.server(), "db:26257 (sslmode=require)");
        let t = Target::parse("host=a,b port=1,2 dbname=x", None).unwrap();
        assert_eq!(t.server(), "a:1,b:2 (sslmode=prefer)");
        let t = Target::parse("postgresql://u@db/x?sslmode=disable", None).unwrap();
        assert_eq!(t.server(), "db:5432 (sslmode=disable)");
        assert!(t.tls.is_none());
    }

    #[test]
    fn bad_urls_and_missing_ca_files_fail_early() {
        let err = Target::parse("postgresql://db:notaport/x", None)
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .contains("bad database url: invalid connection string: "),
            "{err}"
        );
        let err = Target::parse(
            "postgresql://db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            None,
        )
        .err()
        .expect("refused");
        assert!(
            err.to_string()
                .contains("database TLS: CA file /nonexistent/ca.pem"),
            "{err}"
        );
    }
}
