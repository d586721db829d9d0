//! The commit ceiling of the database: what the leaderboard writes are measured against.
//!
//! `in_flight` connections each keep one batch in the database at a time (as a board keeps up
//! to `MAX_IN_FLIGHT` batches in flight), and every batch is one prepared statement that
//! upserts `batch` rows of a trivial table in one round trip and commits (autocommit): the same
//! number of commits and rows per commit as the board's batches, with none of the node's work.
//! Rows/s of this is the most the board's writes can reach on this database.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::percentile::percentile;

/// What the baseline measured.
pub struct Ceiling {
    pub rows_per_s: f64,
    pub commits_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Runs the baseline for `seconds` (after `warmup`) against `url`.
pub async fn measure(
    url: &str,
    batch: usize,
    in_flight: usize,
    warmup: u64,
    seconds: u64,
) -> Result<Ceiling, Box<dyn std::error::Error>> {
    let setup = serai::persistence::connect(url, None).await?;
    setup
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS bench_commit_ceiling (k INT8 PRIMARY KEY, v INT8 NOT NULL)",
        )
        .await?;
    let batch = batch.max(1);
    let warm_until = Instant::now() + Duration::from_secs(warmup);
    let end = warm_until + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..in_flight.max(1) {
        let client = serai::persistence::connect(url, None).await?;
        tasks.push(tokio::task::spawn_local(async move {
            let stmt = client
                .prepare(
                    "INSERT INTO bench_commit_ceiling (k, v) SELECT * FROM unnest($1::INT8[], $2::INT8[]) \
                     ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                )
                .await
                .expect("prepare the ceiling statement");
            let mut rng = rand::thread_rng();
            let mut latencies = Vec::new();
            let mut rows = 0u64;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                // Distinct keys per connection: batches in flight never wait on each other's
                // rows (the board never has two batches on one record either).
                let keys: Vec<i64> = (0..batch)
                    .map(|_| (c as i64) << 40 | rng.gen_range(0..100_000i64))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let values: Vec<i64> = keys.iter().map(|_| rng.gen()).collect();
                client
                    .execute(&stmt, &[&keys, &values])
                    .await
                    .expect("ceiling batch");
                if started >= warm_until {
                    rows += keys.len() as u64;
                    latencies.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
            }
            (rows, latencies)
        }));
    }
    let mut rows = 0u64;
    let mut latencies = Vec::new();
    for t in futures_util::future::join_all(tasks).await {
        let (r, l) = t?;
        rows += r;
        latencies.extend(l);
    }
    latencies.sort_unstable();
    let secs = seconds.max(1) as f64;
    Ok(Ceiling {
        rows_per_s: rows as f64 / secs,
        commits_per_s: latencies.len() as f64 / secs,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
    })
}
