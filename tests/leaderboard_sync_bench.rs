//! Replication benchmark (ignored by default; prints its figures):
//!
//! ```text
//! cargo test --release --test leaderboard_sync_bench -- --ignored --nocapture
//! ```
//!
//! Three nodes in one process on real PostgreSQL, default replication settings (batches of
//! 100 or 1 s). Node 0 compresses its stream, node 1 does not.
//! - Replication lag (owner's commit → replica's apply) p50/p99 at 1 000 and 10 000 offered
//!   writes/s (server writes straight to the owner's actor, 1 000 players, `set`).
//! - Top-10 and around-owner throughput on a node that does not own the board, as a ratio of
//!   the owner node's, measured in the same run (8 concurrent readers, 3 s each).
//! - Bytes on the wire per committed update: with dedupe (what is sent), without (one entry per
//!   update), LZ4 on (node 0's stream) and off (node 1's).

mod common;
#[path = "leaderboard_support.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use common::cluster::TestCluster;
use serai::leaderboard::actor::Leaderboard;
use serai::leaderboard::messages::{Api, AroundOwner, List, Write};
use serai::leaderboard::service;
use serai::node::RunningNode;
use serai::request::Caller;
use serai::routing::placement::Owner;

fn metric(node: &RunningNode, name: &str, label: &str) -> f64 {
    node.services
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn owner_of(cluster: &TestCluster, board: &str) -> usize {
    match cluster
        .node(0)
        .services
        .router
        .owner::<Leaderboard>(&board.to_string())
    {
        Owner::Local => 0,
        Owner::Remote(n) => n.trim_start_matches("node-").parse().unwrap(),
        Owner::Nobody => panic!("no owner"),
    }
}

/// A board id owned by node `i`.
fn board_on(cluster: &TestCluster, i: usize, prefix: &str) -> String {
    (0..1000)
        .map(|k| format!("{prefix}-{k}"))
        .find(|b| owner_of(cluster, b) == i)
        .unwrap()
}

/// Offers `rate` writes/s to `board` for `secs` seconds; returns the writes committed.
async fn write_at(node: &RunningNode, board: &str, owners: &[Uuid], rate: u64, secs: u64) -> u64 {
    let done = Arc::new(AtomicU64::new(0));
    let limit = Arc::new(tokio::sync::Semaphore::new(512));
    let started = Instant::now();
    let total = rate * secs;
    for k in 0..total {
        let due = started + Duration::from_micros(k * 1_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let (router, id, done) = (
            node.services.router.clone(),
            board.to_string(),
            done.clone(),
        );
        let msg = Write {
            api: Api::Leaderboard,
            caller: Caller::Server,
            owner: owners[(k as usize * 7919) % owners.len()],
            username: None,
            score: (k * 31 % 100_000) as i64,
            subscore: 0,
            metadata: None,
            operator: 2,
        };
        tokio::spawn(async move {
            if service::send(&router, id, msg, false).await.is_ok() {
                done.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    let _ = limit.acquire_many(512).await;
    done.load(Ordering::Relaxed)
}

/// Reads/s of `make()` answered through `node`'s read path (or, with `actor`, always by the
/// board's actor, as before replication), 8 readers for `secs`.
async fn reads_per_sec<M>(
    node: &RunningNode,
    board: &str,
    make: impl Fn() -> M,
    secs: u64,
    actor: bool,
) -> f64
where
    M: service::ReplicaRead,
    Leaderboard: actix::Handler<M>,
{
    let count = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (router, id, count) = (
            node.services.router.clone(),
            board.to_string(),
            count.clone(),
        );
        let msgs: Vec<M> = (0..64).map(|_| make()).collect();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while Instant::now() < until {
                let msg = msgs[i % msgs.len()].clone();
                let ok = if actor {
                    service::send(&router, id.clone(), msg, true).await.is_ok()
                } else {
                    service::read(&router, id.clone(), msg).await.is_ok()
                };
                if ok {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    count.load(Ordering::Relaxed) as f64 / secs as f64
}

#[actix_rt::test]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn replication_benchmark() {
    let mut cluster = TestCluster::start(3, |i, c| {
        c.leaderboard_sync_compression = i == 0;
        c.leaderboard_batch_window = Duration::from_millis(5);
    })
    .await;
    let lz4_board = board_on(&cluster, 0, "lz4");
    let plain_board = board_on(&cluster, 1, "plain");
    for b in [&lz4_board, &plain_board] {
        let auth = format!("Bearer {}", cluster.node(0).services.config.admin_token);
        let (s, v) = support::request(
            cluster.node(0).admin_addr,
            "POST",
            "/admin/leaderboards",
            &[("Authorization", auth.as_str())],
            &json!({"id": b, "operator": "set"}).to_string(),
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    let sync = |i: usize| service::sync_of(&cluster.node(i).services.router).unwrap();
    for i in 0..3 {
        assert!(sync(i).wait_synced(Duration::from_secs(20)).await);
    }
    let owners: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
    // Every player gets a record first (so later phases update, as a live board does).
    write_at(cluster.node(1), &plain_board, &owners, 2000, 1).await;

    println!("== replication lag (owner node-1 → replica node-2), default batches (100 / 1 s)");
    for rate in [1_000u64, 10_000] {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        sync(2).reset_lags();
        let started = Instant::now();
        let done = write_at(cluster.node(1), &plain_board, &owners, rate, 5).await;
        let secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let (p50, p99, n) = sync(2).lag_percentiles();
        println!(
            "offered {rate:>6}/s: committed {:>7.0}/s; lag p50 {p50} ms, p99 {p99} ms ({n} samples)",
            done as f64 / secs
        );
    }

    println!(
        "== bytes on the wire per committed update (50 hot players, same workload on each origin)"
    );
    let hot = &owners[..50];
    for (node, board, what) in [(0, &lz4_board, "LZ4 on "), (1, &plain_board, "LZ4 off")] {
        let n = cluster.node(node);
        let bytes0 = metric(
            n,
            "serai_leaderboard_sync_bytes_total",
            "direction=\"sent\"",
        );
        let entries0 = metric(
            n,
            "serai_leaderboard_sync_entries_total",
            "direction=\"sent\"",
        );
        let done = write_at(n, board, hot, 2_000, 3).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Two peers get every batch.
        let bytes = (metric(
            n,
            "serai_leaderboard_sync_bytes_total",
            "direction=\"sent\"",
        ) - bytes0)
            / 2.0;
        let entries = (metric(
            n,
            "serai_leaderboard_sync_entries_total",
            "direction=\"sent\"",
        ) - entries0)
            / 2.0;
        println!(
            "{what}: {done} updates, {entries:.0} entries sent after dedupe; {:.1} B/update with \
             dedupe, {:.1} B/update without (one entry per update)",
            bytes / done as f64,
            bytes / entries.max(1.0),
        );
    }

    println!("== read throughput on a non-owner node (node-2) vs the owner node (node-1)");
    let top = || List {
        api: Api::Leaderboard,
        owner_ids: Vec::new(),
        limit: Some(10),
        cursor: None,
        expiry: None,
    };
    let around_owners = owners.clone();
    let k = AtomicU64::new(0);
    let around = || AroundOwner {
        api: Api::Leaderboard,
        owner: around_owners[k.fetch_add(1, Ordering::Relaxed) as usize % around_owners.len()],
        limit: 10,
        cursor: None,
        expiry: None,
    };
    for (name, ratio) in [
        ("top-10", {
            let owner = reads_per_sec(cluster.node(1), &plain_board, top, 3, false).await;
            let other = reads_per_sec(cluster.node(2), &plain_board, top, 3, false).await;
            let actor = reads_per_sec(cluster.node(1), &plain_board, top, 3, true).await;
            println!(
                "top-10: owner node {owner:.0}/s, non-owner {other:.0}/s \
                 (the owner's actor alone, the old path: {actor:.0}/s)"
            );
            other / owner
        }),
        ("around-owner", {
            let owner = reads_per_sec(cluster.node(1), &plain_board, &around, 3, false).await;
            let other = reads_per_sec(cluster.node(2), &plain_board, &around, 3, false).await;
            let actor = reads_per_sec(cluster.node(1), &plain_board, &around, 3, true).await;
            println!(
                "around-owner: owner node {owner:.0}/s, non-owner {other:.0}/s \
                 (the owner's actor alone: {actor:.0}/s)"
            );
            other / owner
        }),
    ] {
        println!("{name}: non-owner / owner = {:.1} %", ratio * 100.0);
    }
    cluster.stop_all().await;
}
