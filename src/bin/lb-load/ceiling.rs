//! The commit ceiling of the database: what the leaderboard writes are measured against.
//!
//! `in_flight` connections each keep one batch in the database at a time (as a board keeps up
//! to `MAX_IN_FLIGHT` batches in flight), and every batch is one prepared statement that
//! upserts `batch` rows of a trivial table in one round trip and commits (autocommit): the same
//! number of commits and rows per commit as the board's batches, with none of the node's work.
//! Rows/s of this is the most the board's writes can reach on this database.
//!
//! [`Statement::Records`] measures the same with the board's own write instead: the node's
//! `persistence::leaderboards::flush` (fenced by a `FOR SHARE` of a board row, upserting
//! `leaderboard_record` rows with every column the node sends), called with batches of records
//! as the board builds them. That is what the database alone gives the real writes, so `write`
//! against it is the node's share of the gap and the trivial ceiling against it the table's.

use std::time::{Duration, Instant};

use rand::Rng;
use serai::persistence::leaderboards::{self, FlushBatch, RecordRow};

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
    /// The board's own write of a batch of records: `persistence::leaderboards::flush`.
    Records,
}

const TRIVIAL: &str =
    "INSERT INTO bench_commit_ceiling (k, v) SELECT * FROM unnest($1::INT8[], $2::INT8[]) \
     ON CONFLICT (k) DO UPDATE SET v = excluded.v";

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
    // The board row the records' fence reads; its records are the `leaderboard_record` rows
    // of board `bench_ceiling`.
    setup
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS bench_commit_ceiling (k INT8 PRIMARY KEY, v INT8 NOT NULL);
             INSERT INTO leaderboard (id, owner_node, owner_epoch) VALUES ('bench_ceiling', 'bench', 1)
             ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    let batch = batch.max(1);
    let warm_until = Instant::now() + Duration::from_secs(warmup);
    let end = warm_until + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (c, committer) in Committer::open(statement, url, in_flight.max(1))
        .await?
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::task::spawn_local(async move {
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
                    .map(|_| (c as i64) << 40 | rng.gen_range(0..committer.keys()))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                committer.commit(&keys, &mut rng).await;
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

/// What one task of the baseline commits with.
enum Committer {
    /// A connection of its own and the statement prepared on it (one round trip a batch).
    Trivial(tokio_postgres::Client, tokio_postgres::Statement),
    Records(serai::persistence::Db),
}

impl Committer {
    /// `n` committers: each with a connection of its own for the trivial statement; one
    /// pool of `n` (as a node's) shared by all for the records.
    async fn open(
        statement: Statement,
        url: &str,
        n: usize,
    ) -> Result<Vec<Committer>, Box<dyn std::error::Error>> {
        let mut committers = Vec::with_capacity(n);
        match statement {
            Statement::Trivial => {
                for _ in 0..n {
                    let client = serai::persistence::connect(url, None).await?;
                    let prepared = client.prepare(TRIVIAL).await?;
                    committers.push(Committer::Trivial(client, prepared));
                }
            }
            Statement::Records => {
                let db = serai::persistence::Db::connect(
                    url,
                    n,
                    serai::config::Dialect::Postgres,
                    serai::metrics::Metrics::new("ceiling"),
                )?;
                committers.resize_with(n, || Committer::Records(db.clone()));
            }
        }
        Ok(committers)
    }

    /// Keys each task draws from: records as many as players write in `write` (2000 by
    /// default, over 4 tasks), so batches mostly update rows as the board's do.
    fn keys(&self) -> i64 {
        match self {
            Committer::Trivial(..) => 100_000,
            Committer::Records(_) => 500,
        }
    }

    async fn commit(&self, keys: &[i64], rng: &mut impl Rng) {
        match self {
            Committer::Trivial(client, prepared) => {
                let values: Vec<i64> = keys.iter().map(|_| rng.gen()).collect();
                client
                    .execute(prepared, &[&keys, &values])
                    .await
                    .expect("ceiling batch");
            }
            Committer::Records(db) => {
                let now = serai::leaderboard::unix_now();
                let upserts = keys
                    .iter()
                    .map(|&k| RecordRow {
                        expiry: 0,
                        owner: uuid::Uuid::from_u64_pair(0, k as u64),
                        username: Some(format!("player{k}")),
                        score: rng.gen_range(0..1_000_000_000),
                        subscore: rng.gen_range(0..1000),
                        num_score: 1,
                        max_num_score: 1_000_000,
                        metadata: "{}".into(),
                        create_time: now,
                        update_time: now,
                    })
                    .collect();
                let batch = FlushBatch {
                    upserts,
                    deletes: Vec::new(),
                };
                leaderboards::flush(db, "bench_ceiling", "bench", 1, &batch)
                    .await
                    .expect("ceiling batch of records");
            }
        }
    }
}
