//! The commit ceiling of the database: what the leaderboard writes are measured against.
//!
//! `in_flight` connections each keep one batch in the database at a time (as a board keeps up
//! to `MAX_IN_FLIGHT` batches in flight), and every batch is one prepared statement that
//! upserts `batch` rows of a trivial table in one round trip and commits (autocommit): the same
//! number of commits and rows per commit as the board's batches, with none of the node's work.
//! Rows/s of this is the most the board's writes can reach on this database.
//!
//! [`Statement::Records`] measures the same with the board's own statement instead (fenced by
//! a `FOR SHARE` of a board row, upserting `leaderboard_record` rows with their three indexes):
//! what the database alone gives the real writes, so `write` against it is the node's share of
//! the gap and the trivial ceiling against it the table's.

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

/// What each batch commits.
#[derive(Clone, Copy, PartialEq)]
pub enum Statement {
    /// A trivial upsert of `(k, v)` rows (no secondary index): the commit ceiling.
    Trivial,
    /// The board's fenced upsert of records, as `persistence::leaderboards::flush` sends it.
    Records,
}

const TRIVIAL: &str =
    "INSERT INTO bench_commit_ceiling (k, v) SELECT * FROM unnest($1::INT8[], $2::INT8[]) \
     ON CONFLICT (k) DO UPDATE SET v = excluded.v";

/// The statement of `persistence::leaderboards::flush_upserts`, with the columns that are the
/// same for every row as constants.
const RECORDS: &str = "WITH fence AS (SELECT id FROM leaderboard \
     WHERE id = 'bench_ceiling' AND owner_node = 'bench' AND owner_epoch = 1 FOR SHARE) \
     INSERT INTO leaderboard_record (leaderboard_id, expiry_time, owner_id, username, \
     score, subscore, num_score, max_num_score, metadata, create_time, update_time) \
     SELECT fence.id, 0, md5('ceiling' || d.k)::uuid, 'ceiling', d.v, 1, 1, 1000000, '{}'::JSONB, now(), now() \
     FROM fence, unnest($1::INT8[], $2::INT8[]) AS d(k, v) \
     ON CONFLICT (leaderboard_id, expiry_time, owner_id) DO UPDATE SET \
       username = excluded.username, score = excluded.score, subscore = excluded.subscore, \
       num_score = excluded.num_score, max_num_score = excluded.max_num_score, \
       metadata = excluded.metadata, update_time = excluded.update_time RETURNING 1";

/// Runs the baseline for `seconds` (after `warmup`) against `url`.
pub async fn measure(
    statement: Statement,
    url: &str,
    batch: usize,
    in_flight: usize,
    warmup: u64,
    seconds: u64,
) -> Result<Ceiling, Box<dyn std::error::Error>> {
    let setup = serai::persistence::connect(url, None).await?;
    setup
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS bench_commit_ceiling (k INT8 PRIMARY KEY, v INT8 NOT NULL);
             INSERT INTO leaderboard (id, owner_node, owner_epoch) VALUES ('bench_ceiling', 'bench', 1)
             ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    // Records: as many per connection as players write in `write` (2000 by default), so batches
    // mostly update rows as the board's do.
    let (sql, keys_per_conn) = match statement {
        Statement::Trivial => (TRIVIAL, 100_000i64),
        Statement::Records => (RECORDS, 500i64),
    };
    let batch = batch.max(1);
    let warm_until = Instant::now() + Duration::from_secs(warmup);
    let end = warm_until + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..in_flight.max(1) {
        let client = serai::persistence::connect(url, None).await?;
        tasks.push(tokio::task::spawn_local(async move {
            let stmt = client
                .prepare(sql)
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
                    .map(|_| (c as i64) << 40 | rng.gen_range(0..keys_per_conn))
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
