//! The network side of replication: the sender (batches by size or timeout, a heartbeat when
//! idle, one bounded queue per peer), the channel's serving side, and the tasks that fill gaps
//! (catch-up, full resync) and build boards from snapshot pages.
//!
//! Every request has a deadline and every queue a bound: a peer whose queue is full misses
//! batches (counted) and catches up by itself once it sees the gap.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::state::Need;
use super::sync::{lock, now_ms, LeaderboardSync};
use super::wire::{self, Batch, Request, Response, CHANNEL};
use crate::leaderboard::actor::Leaderboard;
use crate::request::Failure;
use crate::routing::channel::{self, Channel};
use crate::routing::placement::Member;
use crate::routing::Router;
use crate::shutdown::Shutdown;

/// Bytes of entries in one batch (well inside a peer frame, compressed or not).
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Entries per catch-up answer, and bytes.
const CATCH_UP_ENTRIES: u32 = 2_000;
/// Records per snapshot page, and bytes.
const PAGE_RECORDS: u32 = 4_000;
const PAGE_BYTES: usize = 384 * 1024;
/// Batches queued for one peer.
const PEER_QUEUE: usize = 64;
/// Catch-up rounds in one go (each at most `CATCH_UP_ENTRIES`).
const MAX_ROUNDS: usize = 10_000;

type Queues = Mutex<HashMap<String, mpsc::Sender<Arc<Vec<u8>>>>>;

/// How long the sender goes on after shutdown fires: the drain commits boards' last writes.
const DRAIN_LIMIT: Duration = Duration::from_secs(40);

/// Starts the sender and the reconcile tick. The tick ends with `shutdown`; the sender goes
/// on through the drain until every local board stopped and its log is sent (at most
/// [`DRAIN_LIMIT`]).
pub fn start(sync: Arc<LeaderboardSync>, router: Arc<Router>, shutdown: Shutdown) {
    let queues: Arc<Queues> = Arc::new(Mutex::new(HashMap::new()));
    let (s, q, stop) = (sync.clone(), queues.clone(), shutdown.clone());
    tokio::spawn(async move { send_loop(s, q, router, stop).await });
    tokio::spawn(async move { tick_loop(sync, queues, shutdown).await });
}

async fn send_loop(
    sync: Arc<LeaderboardSync>,
    queues: Arc<Queues>,
    router: Arc<Router>,
    shutdown: Shutdown,
) {
    let timeout = sync.settings.batch_timeout;
    let size = sync.settings.batch_size;
    let mut last_sent = Instant::now();
    let mut drain_started: Option<Instant> = None;
    loop {
        if shutdown.is_triggered() {
            let started = *drain_started.get_or_insert_with(Instant::now);
            let idle =
                lock(&sync.log).unsent() == 0 && router.all_local::<Leaderboard>().is_empty();
            if idle || started.elapsed() >= DRAIN_LIMIT {
                return;
            }
        }
        let wait = {
            let log = lock(&sync.log);
            if log.unsent() >= size as u64 {
                Duration::ZERO
            } else if let Some(since) = log.unsent_since_ms() {
                let age = Duration::from_millis((now_ms() - since).max(0) as u64);
                timeout.saturating_sub(age)
            } else {
                timeout.saturating_sub(last_sent.elapsed())
            }
        };
        let stopping = shutdown.is_triggered();
        // While draining, look often: the last commits go out at once.
        let wait = if stopping {
            wait.min(Duration::from_millis(20))
        } else {
            wait
        };
        tokio::select! {
            _ = sync.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        let heartbeat_due = last_sent.elapsed() >= timeout;
        let due = {
            let log = lock(&sync.log);
            let aged = log
                .unsent_since_ms()
                .is_some_and(|since| now_ms() - since >= timeout.as_millis() as i64);
            log.unsent() >= size as u64 || aged || heartbeat_due || (stopping && log.unsent() > 0)
        };
        if !due {
            continue;
        }
        let mut sent_any = false;
        loop {
            let batch = lock(&sync.log).take_batch(size, MAX_BATCH_BYTES);
            let Some(batch) = batch else { break };
            broadcast(&sync, &queues, &batch);
            sent_any = true;
            if !stopping && lock(&sync.log).unsent() < size as u64 {
                break;
            }
        }
        if !sent_any && heartbeat_due {
            let heartbeat = lock(&sync.log).heartbeat();
            broadcast(&sync, &queues, &heartbeat);
        }
        last_sent = Instant::now();
    }
}

/// Queues a batch for every other member.
fn broadcast(sync: &Arc<LeaderboardSync>, queues: &Arc<Queues>, batch: &Batch) {
    let Some(router) = sync.router.upgrade() else {
        return;
    };
    let placement = router.placement();
    let others: Vec<Member> = placement
        .members()
        .filter(|m| m.node_id != sync.settings.node_id)
        .cloned()
        .collect();
    if others.is_empty() {
        return;
    }
    let bytes = Arc::new(wire::encode(
        &Request::Batch(batch.clone()),
        sync.settings.compression,
    ));
    let mut q = lock(queues);
    for m in others {
        let tx = q
            .entry(m.node_id.clone())
            .or_insert_with(|| spawn_worker(sync.clone(), m.node_id.clone()));
        match tx.try_send(bytes.clone()) {
            Ok(()) => {
                sync.metrics.batches_sent.increment(1);
                sync.metrics
                    .entries_sent
                    .increment(batch.entries.len() as u64);
                sync.metrics.bytes_sent.increment(bytes.len() as u64);
            }
            Err(_) => sync.metrics.dropped.increment(1),
        }
    }
}

/// Sends one peer its batches in order, each with a deadline.
fn spawn_worker(sync: Arc<LeaderboardSync>, node: String) -> mpsc::Sender<Arc<Vec<u8>>> {
    let (tx, mut rx) = mpsc::channel::<Arc<Vec<u8>>>(PEER_QUEUE);
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let Some(member) = member(&sync, &node) else {
                continue;
            };
            let deadline = Instant::now() + sync.settings.request_timeout;
            let sent = channel::call(&sync.peers, &member, CHANNEL, bytes.to_vec(), deadline).await;
            if let Err(e) = sent {
                sync.metrics.fail_send.increment(1);
                tracing::debug!(node = %node, error = %e, "replication batch not delivered");
            }
        }
    });
    tx
}

fn member(sync: &LeaderboardSync, node: &str) -> Option<Member> {
    let router = sync.router.upgrade()?;
    let placement = router.placement();
    placement.member(node).cloned()
}

/// Every half second: start what is missing (streams never heard from, stale boards), trim
/// expired buckets, and stop the queues of peers that left.
async fn tick_loop(sync: Arc<LeaderboardSync>, queues: Arc<Queues>, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        let members = sync.members();
        let needs = sync.write_replicas().reconcile(&members);
        run_needs(&sync, needs);
        sync.write_replicas()
            .trim(now_ms() / 1000 - super::super::actor::BUCKET_GRACE_SECS);
        lock(&queues).retain(|node, _| members.contains(node));
    }
}

/// Starts a task for each need not already under way.
pub(crate) fn run_needs(sync: &Arc<LeaderboardSync>, needs: Vec<Need>) {
    for need in needs {
        let key = LeaderboardSync::need_key(&need);
        if !lock(&sync.inflight).insert(key.clone()) {
            continue;
        }
        let sync = sync.clone();
        tokio::spawn(async move {
            match need {
                Need::CatchUp { origin, .. } | Need::Boards { origin } => {
                    if let Err(e) = catch_up(&sync, &origin, None).await {
                        tracing::debug!(%origin, error = %e, "replication catch-up failed");
                    }
                }
                Need::Snapshot {
                    origin,
                    board,
                    instance,
                    after,
                    build,
                } => snapshot(&sync, &origin, &board, instance, after, build).await,
            }
            lock(&sync.inflight).remove(&key);
        });
    }
}

async fn ask(sync: &LeaderboardSync, origin: &str, req: &Request) -> Result<Response, String> {
    let member = member(sync, origin).ok_or_else(|| format!("{origin} is not a member"))?;
    let deadline = Instant::now() + sync.settings.request_timeout;
    let body = wire::encode(req, false);
    let bytes = channel::call(&sync.peers, &member, CHANNEL, body, deadline)
        .await
        .map_err(|e| e.to_string())?;
    sync.metrics.bytes_received.increment(bytes.len() as u64);
    wire::decode::<Response>(&bytes).inspect_err(|_| sync.metrics.fail_decode.increment(1))
}

/// Brings this node up to the head `origin` has now: entries from its buffer, or a full
/// resync when they are gone. Single flight per origin; with `covers`, returns at once when a
/// catch-up that started after the caller asked (pull number `covers`) already finished.
pub(crate) async fn catch_up(
    sync: &Arc<LeaderboardSync>,
    origin: &str,
    covers: Option<u64>,
) -> Result<(), String> {
    let pull = sync.pull_of(origin);
    let _guard = pull.lock.lock().await;
    if covers.is_some_and(|want| pull.done.load(Ordering::Acquire) >= want) {
        return Ok(());
    }
    let seq = pull.started.fetch_add(1, Ordering::AcqRel) + 1;
    let result = catch_up_rounds(sync, origin).await;
    if result.is_ok() {
        pull.done.store(seq, Ordering::Release);
        lock(&sync.fences).retain(|_, o| o != origin);
    } else {
        sync.metrics.fail_catch_up.increment(1);
    }
    result
}

async fn catch_up_rounds(sync: &Arc<LeaderboardSync>, origin: &str) -> Result<(), String> {
    for round in 0..MAX_ROUNDS {
        let (incarnation, since) = sync
            .read_replicas()
            .origins
            .get(origin)
            .map_or((0, 0), |c| (c.incarnation, c.applied));
        let req = Request::CatchUp {
            incarnation,
            since,
            max_entries: CATCH_UP_ENTRIES,
        };
        match ask(sync, origin, &req).await? {
            Response::Entries { head, batch } => {
                if round == 0 && batch.to > since {
                    sync.metrics.resync_incremental.increment(1);
                }
                let to = batch.to;
                let applied = sync.write_replicas().on_batch(&batch, now_ms());
                sync.metrics
                    .entries_received
                    .increment(applied.entries as u64);
                sync.record_lags(&applied.lags_ms);
                let (snapshots, _gaps): (Vec<Need>, Vec<Need>) = applied
                    .needs
                    .into_iter()
                    .partition(|n| matches!(n, Need::Snapshot { .. }));
                run_needs(sync, snapshots);
                if to >= head {
                    return Ok(());
                }
            }
            Response::Evicted { head, .. } => {
                sync.metrics.resync_full.increment(1);
                let Response::Boards {
                    incarnation,
                    version,
                    boards,
                } = ask(sync, origin, &Request::Boards).await?
                else {
                    return Err(format!("{origin} did not list its boards"));
                };
                tracing::info!(%origin, incarnation, version, head, boards = boards.len(),
                    "replication: full resync from origin");
                let needs = sync
                    .write_replicas()
                    .on_boards(origin, incarnation, version, &boards);
                run_needs(sync, needs);
                return Ok(());
            }
            other => return Err(format!("unexpected answer {other:?}")),
        }
    }
    Err("catch-up did not reach the head".into())
}

/// Builds a board from snapshot pages (the state replays what the stream applied meanwhile).
async fn snapshot(
    sync: &Arc<LeaderboardSync>,
    origin: &str,
    board: &str,
    instance: super::wire::Instance,
    mut after: Option<super::wire::SnapshotCursor>,
    build: u64,
) {
    loop {
        let req = Request::Snapshot {
            board: board.to_string(),
            instance,
            after,
            max_records: PAGE_RECORDS,
        };
        let page = match ask(sync, origin, &req).await {
            Ok(Response::Page(page)) => *page,
            other => {
                let why = match other {
                    Ok(Response::Refused(why)) => why,
                    Ok(r) => format!("unexpected answer {r:?}"),
                    Err(e) => e,
                };
                tracing::debug!(%origin, %board, error = %why, "replication snapshot failed");
                sync.metrics.fail_snapshot.increment(1);
                sync.write_replicas().snapshot_failed(board, build);
                return;
            }
        };
        let next = sync.write_replicas().on_page(origin, board, build, page);
        match next.into_iter().next() {
            Some(Need::Snapshot { after: a, .. }) => after = a,
            _ => {
                if sync.read_replicas().serving(board).is_some() {
                    sync.metrics.snapshots.increment(1);
                }
                return;
            }
        }
    }
}

/// The channel's serving side.
impl Channel for LeaderboardSync {
    fn serve(&self, from: String, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, Failure>> {
        let answer = self.answer(&from, &body);
        Box::pin(async move { answer })
    }
}

impl LeaderboardSync {
    fn answer(&self, _from: &str, body: &[u8]) -> Result<Vec<u8>, Failure> {
        let req = wire::decode::<Request>(body).map_err(|e| {
            self.metrics.fail_decode.increment(1);
            Failure::not_run(format!("undecodable replication request: {e}"))
        })?;
        let compress = self.settings.compression;
        let response = match req {
            Request::Batch(batch) => {
                self.metrics.batches_received.increment(1);
                self.metrics.bytes_received.increment(body.len() as u64);
                let applied = self.write_replicas().on_batch(&batch, now_ms());
                self.metrics
                    .entries_received
                    .increment(applied.entries as u64);
                self.record_lags(&applied.lags_ms);
                if applied
                    .needs
                    .iter()
                    .any(|n| matches!(n, Need::CatchUp { .. }))
                {
                    self.metrics.gaps.increment(1);
                }
                if !applied.needs.is_empty() {
                    self.needs_later(applied.needs);
                }
                Response::Ack
            }
            Request::CatchUp {
                incarnation,
                since,
                max_entries,
            } => {
                let log = lock(&self.log);
                // Another life of this node's log: the asker starts from the beginning.
                let since = if incarnation == log.incarnation() {
                    since
                } else {
                    0
                };
                let max = (max_entries as usize).clamp(1, CATCH_UP_ENTRIES as usize);
                match log.since(since, max, MAX_BATCH_BYTES * 2) {
                    Ok(batch) => Response::Entries {
                        head: log.head(),
                        batch,
                    },
                    Err(_) => Response::Evicted {
                        incarnation: log.incarnation(),
                        head: log.head(),
                    },
                }
            }
            Request::Boards => {
                let replicas = self.read_replicas();
                let boards = replicas.local_boards();
                let log = lock(&self.log);
                Response::Boards {
                    incarnation: log.incarnation(),
                    version: log.head(),
                    boards,
                }
            }
            Request::Snapshot {
                board,
                instance,
                after,
                max_records,
            } => {
                let replicas = self.read_replicas();
                let max = (max_records as usize).clamp(1, PAGE_RECORDS as usize);
                let head = {
                    let log = lock(&self.log);
                    (log.incarnation(), log.head())
                };
                match replicas.local_page(&board, instance, after, max, PAGE_BYTES, head) {
                    Ok(page) => Response::Page(Box::new(page)),
                    Err(why) => Response::Refused(why),
                }
            }
        };
        Ok(wire::encode(&response, compress))
    }

    /// Runs needs found while serving a request (the serving side holds no `Arc` of itself).
    fn needs_later(&self, needs: Vec<Need>) {
        let Some(router) = self.router.upgrade() else {
            return;
        };
        if let Some(me) = router.channel::<LeaderboardSync>(CHANNEL) {
            run_needs(&me, needs);
        }
    }
}

/// After a write acknowledged by `origin` for `board`: pull the origin's log so this node's
/// reads show the write before its answer leaves. A pull that fails within a second fences
/// the board (its reads go to the owner) until one succeeds.
pub async fn read_your_write(sync: &Arc<LeaderboardSync>, board: &str, origin: &str) {
    let want = sync.next_pull_seq(origin);
    let limit = sync.settings.request_timeout.min(Duration::from_secs(1));
    let pulled = tokio::time::timeout(limit, catch_up(sync, origin, Some(want))).await;
    if matches!(pulled, Ok(Ok(()))) {
        return;
    }
    lock(&sync.fences).insert(board.to_string(), origin.to_string());
    run_needs(
        sync,
        vec![Need::CatchUp {
            origin: origin.to_string(),
            incarnation: 0,
            since: 0,
        }],
    );
}
