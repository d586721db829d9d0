//! Leaderboard replication with the real binary as three processes on one fresh database:
//! writes through every node; every node's top 100 and around-owner answers equal the owner
//! node's within 1 s; reads on a node that does not own the board make no peer request
//! (`serai_forwarded_total` from each node's `/metrics`); SIGKILL the owner of a board while
//! another node reads it continuously: every read answers; the killed node, restarted while
//! writes go on, catches up and answers equal.

mod common;
#[path = "leaderboard_support.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::node::http;
use common::process::NodeProcess;
use serai::localdb::TestDatabase;
use support::Player;

const ADMIN_TOKEN: &str = "leaderboard-binary-test-admin-token";
const BOARDS: usize = 3;

type Proc = NodeProcess;

fn spawn_node(url: &str, i: usize) -> Proc {
    let env = [
        ("SERAI_LEADERBOARD_SYNC_BATCH_TIMEOUT_MS", "100"),
        ("SERAI_LEADERBOARD_SYNC_READY_TIMEOUT_MS", "10000"),
    ];
    NodeProcess::spawn(url, i, ADMIN_TOKEN, "lb-binary", &env)
}

/// Waits until `answered` has grown `more` beyond `from` (the continuous reader answers
/// about every 5 ms; 15 s is far beyond that).
async fn reads_beyond(answered: &AtomicU64, from: u64, more: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while answered.load(Ordering::Acquire) < from + more {
        assert!(Instant::now() < deadline, "the reader stopped answering");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn log_tail(p: &Proc) -> String {
    let text = std::fs::read_to_string(&p.log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

async fn admin(p: &Proc, method: &str, path: &str, body: &str) -> Result<(u16, Value), String> {
    let r = http(p.admin, method, path, Some(ADMIN_TOKEN), body).await?;
    let v = serde_json::from_str(&r.body).unwrap_or(Value::String(r.body));
    Ok((r.status, v))
}

/// Waits until every node in `procs` sees `n` members and answers `/readyz` 200.
async fn wait_ready(procs: &[&Proc], n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut ok = true;
        for p in procs {
            ok = ok
                && p.members(ADMIN_TOKEN).await == n
                && matches!(http(p.admin, "GET", "/readyz", None, "").await, Ok(r) if r.status == 200);
        }
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes not ready with {n} members within {within:?}; last log lines:\n{}",
            procs
                .iter()
                .map(|p| log_tail(p))
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sum of the samples of metric `name` whose line contains `label`, from the node's `/metrics`.
async fn metric(p: &Proc, name: &str, label: &str) -> f64 {
    let r = http(p.admin, "GET", "/metrics", None, "")
        .await
        .expect("metrics");
    assert_eq!(r.status, 200);
    r.body
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `GET path` as `player` on `node`: the answer's body when 200.
async fn get(node: SocketAddr, player: &Player, path: &str) -> Result<Value, String> {
    let r = http(node, "GET", path, Some(&player.token), "").await?;
    if r.status != 200 {
        return Err(format!("status {}: {}", r.status, r.body));
    }
    serde_json::from_str(&r.body).map_err(|e| format!("{e}: {}", r.body))
}

/// The owner node of a board (its claim, once the board is loaded).
async fn owner_of(pg: &tokio_postgres::Client, board: &str, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let row = pg
            .query_one(
                "SELECT owner_node FROM leaderboard WHERE id = $1",
                &[&board],
            )
            .await
            .expect("board row");
        if let Some(owner) = row.get::<_, Option<String>>(0) {
            return owner.trim_start_matches("node-").parse().expect("node-N");
        }
        assert!(Instant::now() < deadline, "{board} has no owner");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The reads compared across nodes: top 100 and around an owner.
fn reads(board: &str, around: &Player) -> [String; 2] {
    [
        format!("/v2/leaderboard/{board}?limit=100"),
        format!("/v2/leaderboard/{board}/owner/{}?limit=5", around.id),
    ]
}

/// Waits until every node in `nodes` answers each read of `board` as node `owner` does (at
/// most `within`); returns how long it took.
async fn wait_equal(
    procs: &[Option<Proc>],
    owner: usize,
    nodes: &[usize],
    board: &str,
    reader: &Player,
    around: &Player,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    let deadline = started + within;
    loop {
        let mut equal = true;
        let mut last = String::new();
        for path in reads(board, around) {
            let want = get(procs[owner].as_ref().unwrap().client, reader, &path).await;
            for &n in nodes {
                let got = get(procs[n].as_ref().unwrap().client, reader, &path).await;
                if got.is_err() || want.is_err() || got != want {
                    equal = false;
                    last = format!("{path} on node-{n}: {got:?}\nowner node-{owner}: {want:?}");
                }
            }
        }
        if equal {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{board}: answers differ from the owner's after {within:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn write(node: SocketAddr, p: &Player, board: &str, score: i64) -> Result<(), String> {
    let body = json!({"score": score.to_string(), "subscore": "0"}).to_string();
    let r = http(
        node,
        "POST",
        &format!("/v2/leaderboard/{board}"),
        Some(&p.token),
        &body,
    )
    .await?;
    if r.status != 200 {
        return Err(format!("write {board}: status {} {}", r.status, r.body));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_replicate_boards_and_keep_reading_through_a_sigkill() {
    let started = Instant::now();
    let db = TestDatabase::create().await.expect("database");
    let mut procs: Vec<Option<Proc>> = (0..3).map(|i| Some(spawn_node(&db.url, i))).collect();
    {
        let live: Vec<&Proc> = procs.iter().flatten().collect();
        wait_ready(&live, 3, Duration::from_secs(30)).await;
    }
    let pg = common::raw_client(&db.url).await;
    let boards: Vec<String> = (0..BOARDS).map(|i| format!("bin-{i}")).collect();
    for b in &boards {
        let (s, v) = admin(
            procs[0].as_ref().unwrap(),
            "POST",
            "/admin/leaderboards",
            &json!({"id": b}).to_string(),
        )
        .await
        .expect("admin");
        assert_eq!(s, 201, "{v}");
    }
    let mut owners = Vec::new();
    for b in &boards {
        owners.push(owner_of(&pg, b, Duration::from_secs(10)).await);
    }
    println!("owners: {owners:?}");

    // Players, each authenticated on one node; every player writes every board through each
    // node in turn.
    let mut players = Vec::new();
    for k in 0..9 {
        let at = procs[k % 3].as_ref().unwrap().client;
        players.push(support::player_at(at, &format!("bin-p{k}")).await);
    }
    for (k, p) in players.iter().enumerate() {
        for (j, b) in boards.iter().enumerate() {
            let node = procs[(k + j) % 3].as_ref().unwrap().client;
            write(node, p, b, (k * 7 + j * 3) as i64).await.unwrap();
        }
    }
    // Every node's answers equal the owner node's within 1 s.
    let mut worst = Duration::ZERO;
    for (j, b) in boards.iter().enumerate() {
        let took = wait_equal(
            &procs,
            owners[j],
            &[0, 1, 2],
            b,
            &players[0],
            &players[4],
            Duration::from_secs(1),
        )
        .await;
        worst = worst.max(took);
    }
    println!("every node equal to the owner after the writes within {worst:?}");
    let v = get(
        procs[0].as_ref().unwrap().client,
        &players[0],
        &reads(&boards[0], &players[4])[0],
    )
    .await
    .unwrap();
    assert_eq!(support::records(&v, "records").len(), 9, "{v}");

    // Reads on nodes that do not own the board make no peer request.
    for (j, b) in boards.iter().enumerate() {
        for n in (0..3).filter(|n| *n != owners[j]) {
            let p = procs[n].as_ref().unwrap();
            let forwarded = metric(p, "serai_forwarded_total", "kind=\"leaderboard\"").await;
            // The counter is there: this node forwarded its writes of the board to the owner.
            assert!(forwarded > 0.0, "node-{n} forwarded writes of {b}");
            let replica = metric(p, "serai_leaderboard_reads_total", "served=\"replica\"").await;
            for _ in 0..10 {
                for path in reads(b, &players[4]) {
                    get(p.client, &players[1], &path).await.unwrap();
                }
            }
            assert_eq!(
                metric(p, "serai_forwarded_total", "kind=\"leaderboard\"").await,
                forwarded,
                "reads of {b} on node-{n} made peer requests"
            );
            assert_eq!(
                metric(p, "serai_leaderboard_reads_total", "served=\"replica\"").await,
                replica + 20.0,
                "reads of {b} on node-{n} answered from its replica"
            );
        }
    }

    // SIGKILL the owner of board 0 while another node reads it continuously.
    let board = boards[0].clone();
    let victim = owners[0];
    let reader_i = (victim + 1) % 3;
    let reader_addr = procs[reader_i].as_ref().unwrap().client;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let reading = {
        let (stop, board, p) = (stop.clone(), board.clone(), players[2].clone());
        let answered = answered.clone();
        let around = players[4].clone();
        tokio::spawn(async move {
            let (mut ok, mut failed, mut slowest) = (0u64, Vec::new(), Duration::ZERO);
            while !stop.load(Ordering::Acquire) {
                for path in reads(&board, &around) {
                    let t = Instant::now();
                    match get(reader_addr, &p, &path).await {
                        Ok(v) if !support::records(&v, "records").is_empty() => {
                            ok += 1;
                            answered.fetch_add(1, Ordering::AcqRel);
                        }
                        Ok(v) => failed.push(format!("{path}: no records: {v}")),
                        Err(e) => failed.push(format!("{path}: {e}")),
                    }
                    slowest = slowest.max(t.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, failed, slowest)
        })
    };
    // The reader is under way before the kill.
    reads_beyond(&answered, 0, 20).await;
    let killed_at = Instant::now();
    drop(procs[victim].take());
    // Until the survivors see two members and a write through the reader reaches the new
    // owner, plus a little, reads go on.
    {
        let live: Vec<&Proc> = procs.iter().flatten().collect();
        wait_ready(&live, 2, Duration::from_secs(15)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match write(reader_addr, &players[5], &board, 1000).await {
            Ok(()) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no write reached a new owner of {board}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failover = killed_at.elapsed();
    // Reads go on a while after the new owner took over.
    reads_beyond(&answered, answered.load(Ordering::Acquire), 20).await;
    stop.store(true, Ordering::Release);
    let (ok, failed, slowest) = reading.await.unwrap();
    println!(
        "failover of {board} (owner node-{victim} SIGKILLed): writes answered again after \
         {failover:?} ({attempts} attempts); reads on node-{reader_i} meanwhile: {ok} answered, \
         {} failed, slowest {slowest:?}",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "reads failed during the failover: {failed:?}"
    );
    assert!(ok > 20, "reads ran during the failover: {ok}");
    let new_owner = owner_of_live(&pg, &board, victim, Duration::from_secs(10)).await;

    // Writes go on while the killed node is down; then it restarts, catches up and answers
    // equal on every board.
    for (k, p) in players.iter().enumerate() {
        for (j, b) in boards.iter().enumerate() {
            let n = [(victim + 1) % 3, (victim + 2) % 3][(k + j) % 2];
            let node = procs[n].as_ref().unwrap().client;
            write(node, p, b, (k * 11 + j + 50) as i64)
                .await
                .unwrap_or_else(|e| panic!("write via node-{n} with node-{victim} down: {e}"));
        }
    }
    // More writes go on through the survivors while it restarts, until it is ready and a
    // moment after.
    let stop = Arc::new(AtomicBool::new(false));
    let writing = {
        let survivors: Vec<SocketAddr> = procs.iter().flatten().map(|p| p.client).collect();
        let (stop, players, boards) = (stop.clone(), players.clone(), boards.clone());
        tokio::spawn(async move {
            let (mut ok, mut refused, mut i) = (0u64, Vec::new(), 0usize);
            while !stop.load(Ordering::Acquire) {
                let (p, b) = (&players[i % players.len()], &boards[i % boards.len()]);
                let node = survivors[i % survivors.len()];
                match write(node, p, b, 100 + i as i64).await {
                    Ok(()) => ok += 1,
                    Err(e) => refused.push(e),
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, refused)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let restarted_at = Instant::now();
    procs[victim] = Some(spawn_node(&db.url, victim));
    {
        let live: Vec<&Proc> = procs.iter().flatten().collect();
        wait_ready(&live, 3, Duration::from_secs(20)).await;
    }
    let ready_after = restarted_at.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    let (written, refused) = writing.await.unwrap();
    println!(
        "writes during the restart: {written} acknowledged, {} refused (try again): {:?}",
        refused.len(),
        refused.iter().take(3).collect::<Vec<_>>()
    );
    assert!(written > 10, "writes went on during the restart: {written}");
    let restarted = procs[victim].as_ref().unwrap();
    let resyncs = [
        metric(
            restarted,
            "serai_leaderboard_sync_resyncs_total",
            "kind=\"incremental\"",
        )
        .await,
        metric(
            restarted,
            "serai_leaderboard_sync_resyncs_total",
            "kind=\"full\"",
        )
        .await,
        metric(restarted, "serai_leaderboard_sync_snapshots_total", "").await,
    ];
    println!(
        "restarted node-{victim}: resyncs incremental {} full {}, snapshots {}",
        resyncs[0], resyncs[1], resyncs[2]
    );
    let mut owners_now = Vec::new();
    for b in &boards {
        owners_now.push(owner_of(&pg, b, Duration::from_secs(10)).await);
    }
    let mut caught_up = Duration::ZERO;
    for (j, b) in boards.iter().enumerate() {
        let took = wait_equal(
            &procs,
            owners_now[j],
            &[0, 1, 2],
            b,
            &players[0],
            &players[4],
            Duration::from_secs(5),
        )
        .await;
        caught_up = caught_up.max(took);
    }
    println!(
        "node-{victim} restarted: ready after {ready_after:?}, answers equal to the owners \
         {caught_up:?} later; {board} owned by node-{new_owner} after the failover, owners now \
         {owners_now:?}"
    );
    // After a write through the restarted node, every node answers equal within 1 s.
    write(
        procs[victim].as_ref().unwrap().client,
        &players[8],
        &board,
        5000,
    )
    .await
    .unwrap();
    let owner = owner_of(&pg, &board, Duration::from_secs(10)).await;
    wait_equal(
        &procs,
        owner,
        &[0, 1, 2],
        &board,
        &players[0],
        &players[8],
        Duration::from_secs(1),
    )
    .await;

    for p in procs.iter().flatten() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(p.child.id().to_string())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for p in procs.iter_mut().flatten() {
        let status = loop {
            if let Some(status) = p.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "a node did not drain within 30 s:\n{}",
                log_tail(p)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "drained node exits 0: {status}");
    }
    println!("whole test took {:?}", started.elapsed());
}

/// The owner of `board` once it is no longer `dead` (the new owner's claim after a failover).
async fn owner_of_live(
    pg: &tokio_postgres::Client,
    board: &str,
    dead: usize,
    within: Duration,
) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let owner = owner_of(pg, board, within).await;
        if owner != dead {
            return owner;
        }
        assert!(
            Instant::now() < deadline,
            "{board} still claimed by node-{dead}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
