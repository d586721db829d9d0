//! Numbered schema migrations from `schema/`, embedded in the binary, plus the default catalog.
//!
//! [`run`] is safe to start from several nodes at the same moment against one database, on
//! PostgreSQL and on CockroachDB, without any lock:
//!
//! - every DDL statement is idempotent (`IF NOT EXISTS`) and changes one thing;
//! - each statement runs on its own, outside any explicit transaction (CockroachDB commits
//!   before each DDL anyway, so a migration is never atomic: it must be safe to repeat);
//! - the races PostgreSQL lets through concurrent `CREATE … IF NOT EXISTS` (a unique violation
//!   on its catalogs, `duplicate_table`, `duplicate_object`, a deadlock) and serialization
//!   failures are retried with backoff: the repeated statement then finds the object and
//!   does nothing;
//! - a version is recorded in `schema_migrations` only after all of its statements succeeded
//!   (`INSERT … ON CONFLICT DO NOTHING`), so a node that sees it recorded may skip it.
//!
//! The default catalog (`schema/default_catalog.sql`) is applied afterwards, in one
//! transaction, only when `catalog_meta` has no row yet; its last statement writes that row.
//! An operator's later edits to the catalog tables are therefore never overwritten.
//!
//! Rules for the files, checked by tests: a statement ends with `;` at the end of a line and
//! `;` appears nowhere else; lines starting with `--` are comments; no `UPSERT`, sequences,
//! `SERIAL` or advisory locks.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::retry::Backoff;
use super::{Db, DbError};

/// One numbered migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    /// The file name without the number and extension, e.g. `accounts`.
    pub name: &'static str,
    /// The file name in `schema/`.
    pub file: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:expr, $name:expr, $file:expr) => {
        Migration {
            version: $version,
            name: $name,
            file: $file,
            sql: include_str!(concat!("../../schema/", $file)),
        }
    };
}

/// Every migration, in the order applied. A test checks that each `schema/NNNN_*.sql` is here.
pub static MIGRATIONS: &[Migration] = &[
    migration!(1, "accounts", "0001_accounts.sql"),
    migration!(2, "catalog", "0002_catalog.sql"),
    migration!(3, "player", "0003_player.sql"),
    migration!(4, "battle", "0004_battle.sql"),
    migration!(5, "leaderboard", "0005_leaderboard.sql"),
    migration!(6, "cluster", "0006_cluster.sql"),
    migration!(7, "request_receipt", "0007_request_receipt.sql"),
    migration!(8, "market_version", "0008_market_version.sql"),
    migration!(9, "compensation", "0009_compensation.sql"),
    migration!(
        10,
        "member_catalog_version",
        "0010_member_catalog_version.sql"
    ),
    migration!(
        11,
        "accounts_profile_email_revocation",
        "0011_accounts_profile_email_revocation.sql"
    ),
    migration!(12, "notification", "0012_notification.sql"),
    migration!(13, "world_event", "0013_world_event.sql"),
    migration!(14, "world_sale", "0014_world_sale.sql"),
    migration!(
        15,
        "leaderboard_record_hot_updates",
        "0015_leaderboard_record_hot_updates.sql"
    ),
];

/// File name of the default catalog data in `schema/`.
pub const DEFAULT_CATALOG_FILE: &str = "default_catalog.sql";

/// The default catalog: `INSERT … ON CONFLICT DO NOTHING` statements, ending with the
/// `catalog_meta` row.
pub static DEFAULT_CATALOG: &str = include_str!("../../schema/default_catalog.sql");

/// The table that records applied versions; created by [`run`] itself before anything else.
const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INT8        PRIMARY KEY,
    name       TEXT        NOT NULL,
    checksum   TEXT        NOT NULL DEFAULT '',
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// How often one statement is attempted before the run fails.
const MAX_STATEMENT_ATTEMPTS: u32 = 20;

/// What one [`run`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions this run executed and recorded (another node may have recorded some first).
    pub applied: Vec<i64>,
    /// Versions found already recorded when the run started.
    pub already_applied: Vec<i64>,
    /// Versions recorded in the database that this binary does not know (a newer node ran).
    pub unknown: Vec<i64>,
    /// Whether this run inserted the default catalog (false when a catalog was present).
    pub catalog_seeded: bool,
    /// The catalog version in `catalog_meta` after the run.
    pub catalog_version: i64,
}

/// Applies every pending migration, then the default catalog if the database has none.
pub async fn run(db: &Db) -> Result<MigrationReport, DbError> {
    execute_idempotent(db, BOOTSTRAP).await?;
    let mut report = MigrationReport::default();
    let recorded = recorded_versions(db).await?;
    for (version, checksum) in &recorded {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            Some(m) => {
                report.already_applied.push(*version);
                if !checksum.is_empty() && *checksum != self::checksum(m.sql) {
                    tracing::warn!(
                        version,
                        file = m.file,
                        "applied migration differs from the embedded file"
                    );
                }
            }
            None => report.unknown.push(*version),
        }
    }
    if !report.unknown.is_empty() {
        tracing::warn!(versions = ?report.unknown, "database has migrations this binary does not know");
    }
    for m in MIGRATIONS {
        if report.already_applied.contains(&m.version) {
            continue;
        }
        apply(db, m).await?;
        report.applied.push(m.version);
        tracing::info!(version = m.version, name = m.name, "migration applied");
    }
    let (seeded, version) = seed_catalog(db).await?;
    report.catalog_seeded = seeded;
    report.catalog_version = version;
    Ok(report)
}

/// The versions recorded in `schema_migrations`, with their checksums, in order.
pub async fn recorded_versions(db: &Db) -> Result<Vec<(i64, String)>, DbError> {
    with_retry(db, "read schema_migrations", || async {
        let client = db.client().await?;
        let rows = client
            .query(
                "SELECT version, checksum FROM schema_migrations ORDER BY version",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })
    .await
}

async fn apply(db: &Db, m: &Migration) -> Result<(), DbError> {
    for statement in split_statements(m.sql) {
        execute_idempotent(db, &statement).await.map_err(|e| {
            DbError::Migration(format!("{} ({}): {e}", m.file, first_line(&statement)))
        })?;
    }
    let sum = checksum(m.sql);
    with_retry(db, "record migration", || async {
        let client = db.client().await?;
        client
            .execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3) \
                 ON CONFLICT (version) DO NOTHING",
                &[&m.version, &m.name, &sum],
            )
            .await?;
        Ok(())
    })
    .await
}

/// Inserts the default catalog in one transaction unless `catalog_meta` already has its row.
/// Returns whether it did, and the catalog version now in the database.
async fn seed_catalog(db: &Db) -> Result<(bool, i64), DbError> {
    db.transact("seed_catalog", |tx| {
        Box::pin(async move {
            if let Some(row) = tx
                .query_opt("SELECT version FROM catalog_meta WHERE id = 1", &[])
                .await?
            {
                return Ok((false, row.get::<_, i64>(0)));
            }
            for statement in split_statements(DEFAULT_CATALOG) {
                tx.batch_execute(&statement).await?;
            }
            let row = tx
                .query_one("SELECT version FROM catalog_meta WHERE id = 1", &[])
                .await
                .map_err(|_| {
                    DbError::Migration(format!(
                        "{DEFAULT_CATALOG_FILE} did not write catalog_meta row 1"
                    ))
                })?;
            Ok((true, row.get::<_, i64>(0)))
        })
    })
    .await
}

/// Runs one idempotent statement on its own (autocommit), retrying the races of concurrent
/// migrators and serialization failures until it succeeds.
async fn execute_idempotent(db: &Db, statement: &str) -> Result<(), DbError> {
    with_retry(db, statement, || async {
        let client = db.client().await?;
        client.batch_execute(statement).await?;
        Ok(())
    })
    .await
}

/// Whether a failed migration statement should simply be run again: the concurrency races of
/// `CREATE … IF NOT EXISTS` on PostgreSQL, and everything [`DbError::is_retryable`] covers.
fn is_migration_race(e: &DbError) -> bool {
    if e.is_retryable() {
        return true;
    }
    let Some(code) = e.sqlstate() else {
        return false;
    };
    *code == SqlState::UNIQUE_VIOLATION
        || *code == SqlState::DUPLICATE_TABLE
        || *code == SqlState::DUPLICATE_OBJECT
        || *code == SqlState::DUPLICATE_COLUMN
        || *code == SqlState::T_R_DEADLOCK_DETECTED
}

async fn with_retry<T, F, Fut>(db: &Db, what: &str, mut attempt: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if is_migration_race(&e) && backoff.attempts() + 1 < MAX_STATEMENT_ATTEMPTS => {
                tracing::debug!(error = %e, statement = first_line(what), "retrying migration statement");
                db.metrics().db_retries.increment(1);
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Splits a file into statements: a statement ends at a line whose last non-blank character
/// is `;`. Lines whose first non-blank characters are `--` are dropped. The trailing `;` is
/// removed; empty statements are skipped.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        let ends = trimmed.ends_with(';');
        let text = if ends {
            line.trim_end().trim_end_matches(';')
        } else {
            line.trim_end()
        };
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(text);
        if ends {
            let statement = current.trim().to_string();
            if !statement.is_empty() {
                out.push(statement);
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// A stable checksum of a migration's text (FNV-1a, 64 bit, hex), stored with its version.
pub fn checksum(sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn first_line(statement: &str) -> &str {
    statement.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolon_at_end_of_line() {
        let sql = "-- comment; with a semicolon\nCREATE TABLE a (\n  x INT4\n);\n\nINSERT INTO a VALUES (1);  \nSELECT 1";
        assert_eq!(
            split_statements(sql),
            vec![
                "CREATE TABLE a (\n  x INT4\n)",
                "INSERT INTO a VALUES (1)",
                "SELECT 1"
            ]
        );
    }

    #[test]
    fn versions_are_increasing_and_names_match_files() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
        for m in MIGRATIONS {
            assert_eq!(m.file, format!("{:04}_{}.sql", m.version, m.name));
        }
    }

    #[test]
    fn checksum_is_stable() {
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_eq!(checksum("a"), "af63dc4c8601ec8c");
    }
}
