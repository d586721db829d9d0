//! Reaching the database at start: a node retries with backoff for a while before it gives
//! up, so a database that starts a little later (or a brief outage) does not make it exit at
//! once, and every failed attempt says where the database was looked for and why it failed.

use std::time::{Duration, Instant};

use super::retry::Backoff;
use super::{Db, DbError};

/// Whether reaching the database again may succeed: refused or dropped connections, the
/// server starting or shutting down, no connection within the deadline. A wrong password or
/// a missing database is not retried.
fn worth_retrying(e: &DbError) -> bool {
    match e {
        DbError::Connect { .. } => e.sqlstate().is_none() || e.is_retryable(),
        other => other.is_retryable(),
    }
}

/// Answers once the database answers a trivial query, retrying with backoff for up to
/// `budget` (each attempt bounded by the pool's connect timeout). Each failed attempt is
/// logged once, with the server, the cause and the time left; the last error is returned.
pub async fn wait_until_reachable(db: &Db, budget: Duration) -> Result<(), DbError> {
    let start = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let e = match db.ping().await {
            Ok(()) => {
                if backoff.attempts() > 0 {
                    tracing::info!(server = %db.server(), attempts = backoff.attempts() + 1, "database reached");
                }
                return Ok(());
            }
            Err(e) => e,
        };
        let left = budget.saturating_sub(start.elapsed());
        if !worth_retrying(&e) || left.is_zero() {
            return Err(DbError::Unavailable(format!(
                "gave up after {} attempt(s) in {:.1}s: {e}",
                backoff.attempts() + 1,
                start.elapsed().as_secs_f64()
            )));
        }
        let delay = backoff.next_delay().min(left);
        tracing::warn!(
            server = %db.server(),
            attempt = backoff.attempts(),
            cause = %e,
            retry_in_ms = delay.as_millis() as u64,
            time_left_secs = format!("{:.1}", left.as_secs_f64()),
            "database not reachable at start; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}
