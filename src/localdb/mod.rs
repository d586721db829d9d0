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

mod binaries;
mod command;
mod databases;
mod directory;
mod initdb;
mod port;
mod quoting;
mod server;
mod throwaway;

pub use databases::{dev_database, TestDatabase};
pub use server::LocalServer;
pub use throwaway::{ServerTls, Throwaway};

/// Errors finding or preparing a local database.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LocalDbError(pub String);

/// The superuser created in a throwaway cluster, and the user tried on 127.0.0.1:5432.
const SUPERUSER: &str = "postgres";

fn env_database_url() -> Option<String> {
    std::env::var("SERAI_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}
