//! Leases, conditional claims, step-down and drain order (issue 10), over real nodes in this
//! process (`TestCluster`), real HTTP, and a real PostgreSQL checked directly with SQL:
//!
//! - a claim takes a row only if it is released, already the claimant's, or its owner's lease
//!   expired (heartbeat older than the lease timeout, or the owner left); a claim over a live
//!   owner fails and names it;
//! - a node whose database connection stops forwarding (a paused TCP proxy: bytes held,
//!   connections open) stops serving within its lease, before the peer that takes over claims;
//!   nothing it had in flight commits over the new claim; answers afterwards follow from the
//!   database;
//! - the heartbeat keeps its deadline while game traffic holds every connection of the main pool;
//! - a drain slower than the membership timeout keeps heartbeating, releases before any peer
//!   claims, and leaves no request unanswered.
//!
//! Ownership changes are recorded by a trigger on `player_character` (`test_owner_log`, with the
//! database's `clock_timestamp()`), which also `NOTIFY`s them, so the tests wait on the claims
//! themselves rather than on sleeps, and order them exactly.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use uuid::Uuid;

use common::client::{proxied, GameClient};
use common::cluster::TestCluster;
use common::node::parse_response;
use serai::character::CharacterSession;
use serai::config::Config;
use serai::localdb::TestDatabase;
use serai::persistence::claims::{self, EntityId, EntityTable};
use serai::routing::placement::Owner;

/// Where every character of these tests starts and trades.
const HOME: &str = "port_azul";
const FACTION: &str = "merchant_league";
const BACKGROUND: &str = "merchant_heir";

/// How long a probe waits for its answer before counting it as unanswered.
const PROBE_LIMIT: Duration = Duration::from_secs(20);

/// Records every change of a character's owner or epoch (committed ones only) with the
/// database's clock, and notifies `test_owner_log` listeners with the row as JSON.
const OWNER_LOG: &str = r#"
CREATE TABLE test_owner_log (
    seq       BIGSERIAL PRIMARY KEY,
    tbl       TEXT NOT NULL,
    entity    TEXT NOT NULL,
    old_owner TEXT NULL,
    new_owner TEXT NULL,
    old_epoch INT8 NOT NULL,
    new_epoch INT8 NOT NULL,
    at_us     INT8 NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::INT8
);
CREATE FUNCTION test_log_owner() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r test_owner_log;
BEGIN
    INSERT INTO test_owner_log (tbl, entity, old_owner, new_owner, old_epoch, new_epoch)
    VALUES (TG_TABLE_NAME, NEW.id::text, OLD.owner_node, NEW.owner_node, OLD.owner_epoch, NEW.owner_epoch)
    RETURNING * INTO r;
    PERFORM pg_notify('test_owner_log', row_to_json(r)::text);
    RETURN NEW;
END $$;
CREATE TRIGGER test_owner_log AFTER UPDATE ON player_character FOR EACH ROW
    WHEN (OLD.owner_node IS DISTINCT FROM NEW.owner_node OR OLD.owner_epoch IS DISTINCT FROM NEW.owner_epoch)
    EXECUTE FUNCTION test_log_owner();
"#;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Microseconds since the epoch by this process's clock.
fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The database clock minus this process's clock, in microseconds (error: half a round trip).
async fn db_clock_offset(pg: &tokio_postgres::Client) -> i64 {
    let before = now_us();
    let db: i64 = pg
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::INT8",
            &[],
        )
        .await
        .expect("the database clock")
        .get(0);
    let after = now_us();
    db - (before + after) / 2
}

/// A fresh database with the schema, the default catalog and the owner log.
async fn prepared_db() -> TestDatabase {
    common::migrated_db_with(OWNER_LOG).await
}

/// One change of a character's owner or epoch, as the trigger saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Transition {
    seq: i64,
    entity: String,
    old_owner: Option<String>,
    new_owner: Option<String>,
    old_epoch: i64,
    new_epoch: i64,
    /// Database clock, microseconds since the epoch.
    at_us: i64,
}

impl Transition {
    fn from_json(v: &Value) -> Transition {
        let text = |k: &str| v[k].as_str().map(str::to_string);
        let int = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}"));
        Transition {
            seq: int("seq"),
            entity: text("entity").expect("entity"),
            old_owner: text("old_owner"),
            new_owner: text("new_owner"),
            old_epoch: int("old_epoch"),
            new_epoch: int("new_epoch"),
            at_us: int("at_us"),
        }
    }

    fn is_claim_by(&self, entity: Uuid, node: &str) -> bool {
        self.entity == entity.to_string()
            && self.new_owner.as_deref() == Some(node)
            && self.new_epoch > self.old_epoch
    }

    fn describe(&self, origin_us: i64, offset_us: i64) -> String {
        format!(
            "#{} {:?}@{} -> {:?}@{} at {:+}ms",
            self.seq,
            self.old_owner,
            self.old_epoch,
            self.new_owner,
            self.new_epoch,
            (self.at_us - offset_us - origin_us) / 1000
        )
    }
}

/// Listens to the owner log: committed ownership changes, as they happen.
struct OwnerWatch {
    _client: tokio_postgres::Client,
    rx: mpsc::UnboundedReceiver<Transition>,
    seen: Vec<Transition>,
}

impl OwnerWatch {
    async fn start(url: &str) -> OwnerWatch {
        let (client, mut conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(Ok(m)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(n) = m {
                    if let Ok(v) = serde_json::from_str::<Value>(n.payload()) {
                        let _ = tx.send(Transition::from_json(&v));
                    }
                }
            }
        });
        client
            .batch_execute("LISTEN test_owner_log")
            .await
            .expect("LISTEN");
        OwnerWatch {
            _client: client,
            rx,
            seen: Vec::new(),
        }
    }

    /// The first change matching `pred` (seen before or arriving within `within`).
    async fn wait_for(
        &mut self,
        within: Duration,
        pred: impl Fn(&Transition) -> bool,
    ) -> Option<Transition> {
        if let Some(t) = self.seen.iter().find(|t| pred(t)) {
            return Some(t.clone());
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(t)) => {
                    self.seen.push(t.clone());
                    if pred(&t) {
                        return Some(t);
                    }
                }
                _ => return None,
            }
        }
    }
}

/// How one RPC ended, as the client saw it.
#[derive(Debug, Clone)]
enum Outcome {
    /// 200 with its payload.
    Ok(Value),
    /// Any other HTTP answer.
    Refused {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// The connection was refused: the node never took the request.
    NotDelivered(String),
    /// Reset before any byte of an answer (what a listener closing with connections still in
    /// its backlog does).
    Reset(String),
    /// Taken, and never answered: closed without a response, or no answer within the limit.
    Unanswered(String),
}

#[derive(Debug, Clone)]
struct Probe {
    label: String,
    node: usize,
    /// The RPC's payload.
    request: Value,
    /// This process's clock, microseconds since the epoch.
    sent: i64,
    answered: i64,
    outcome: Outcome,
}

impl Probe {
    fn ok(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Ok(v) => Some(v),
            _ => None,
        }
    }

    fn answered_http(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(_) | Outcome::Refused { .. })
    }

    fn is_not_run(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Refused {
                status: 503,
                code: Some(14),
                ..
            }
        )
    }

    fn describe(&self, origin_us: i64) -> String {
        let outcome = match &self.outcome {
            Outcome::Ok(_) => "200".to_string(),
            Outcome::Refused {
                status,
                code,
                message,
            } => format!("{status}/{code:?} {message}"),
            Outcome::NotDelivered(m) => format!("not delivered ({m})"),
            Outcome::Reset(m) => format!("reset ({m})"),
            Outcome::Unanswered(m) => format!("UNANSWERED ({m})"),
        };
        format!(
            "{} [node-{}] sent {:+}ms answered {:+}ms: {outcome}",
            self.label,
            self.node,
            (self.sent - origin_us) / 1000,
            (self.answered - origin_us) / 1000
        )
    }
}

/// One game RPC over HTTP (`Connection: close`), classified.
async fn rpc(
    label: &str,
    node: usize,
    addr: SocketAddr,
    token: &str,
    id: &str,
    payload: &Value,
    limit: Duration,
) -> Probe {
    let body = serde_json::to_string(&payload.to_string()).expect("a JSON string");
    let sent = now_us();
    let outcome = exchange(addr, token, id, &body, limit).await;
    Probe {
        label: label.to_string(),
        node,
        request: payload.clone(),
        sent,
        answered: now_us(),
        outcome,
    }
}

async fn exchange(addr: SocketAddr, token: &str, id: &str, body: &str, limit: Duration) -> Outcome {
    let request = format!(
        "POST /v2/rpc/{id} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let talk = async {
        let mut stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => return Outcome::NotDelivered(format!("connect: {e}")),
        };
        if let Err(e) = stream.write_all(request.as_bytes()).await {
            return Outcome::Reset(format!("write: {e}"));
        }
        let mut raw = Vec::new();
        let read = stream.read_to_end(&mut raw).await;
        if raw.is_empty() {
            return match read {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    Outcome::Reset(format!("reset before any answer: {e}"))
                }
                Err(e) => Outcome::Unanswered(format!("read: {e}")),
                Ok(_) => Outcome::Unanswered("closed without an answer".into()),
            };
        }
        match parse_response(&raw) {
            Ok(r) if r.status == 200 => {
                let v = r.json();
                let payload = v["payload"].as_str().unwrap_or_default();
                Outcome::Ok(
                    serde_json::from_str(payload).unwrap_or(Value::String(payload.to_string())),
                )
            }
            Ok(r) => {
                let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                Outcome::Refused {
                    status: r.status,
                    code: v["code"].as_i64(),
                    message: v["message"].as_str().unwrap_or(&r.body).to_string(),
                }
            }
            Err(e) => Outcome::Unanswered(format!("answer cut short: {e}")),
        }
    };
    match tokio::time::timeout(limit, talk).await {
        Ok(o) => o,
        Err(_) => Outcome::Unanswered(format!("no answer within {limit:?}")),
    }
}

/// Sends one RPC every `every` (each in its own task, not waiting for the previous answer)
/// until finished; keeps every probe.
struct Prober {
    stop: Arc<AtomicBool>,
    probes: Arc<Mutex<Vec<Probe>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Prober {
    #[allow(clippy::too_many_arguments)]
    fn start(
        label: &str,
        node: usize,
        addr: SocketAddr,
        token: &str,
        rpc_id: &'static str,
        payload: impl Fn(u64) -> Value + Send + 'static,
        every: Duration,
    ) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let probes: Arc<Mutex<Vec<Probe>>> = Arc::default();
        let (stop2, probes2, label, token) = (
            stop.clone(),
            probes.clone(),
            label.to_string(),
            token.to_string(),
        );
        let task = tokio::spawn(async move {
            let mut in_flight = Vec::new();
            let mut n = 0u64;
            while !stop2.load(Ordering::SeqCst) {
                let (probes, label, token, body) =
                    (probes2.clone(), label.clone(), token.clone(), payload(n));
                in_flight.push(tokio::spawn(async move {
                    let p = rpc(&label, node, addr, &token, rpc_id, &body, PROBE_LIMIT).await;
                    probes.lock().unwrap().push(p);
                }));
                n += 1;
                tokio::time::sleep(every).await;
            }
            for t in in_flight {
                let _ = t.await;
            }
        });
        Prober { stop, probes, task }
    }

    fn snapshot(&self) -> Vec<Probe> {
        self.probes.lock().unwrap().clone()
    }

    /// Stops sending, waits for every answer; the probes in the order they were sent.
    async fn finish(self) -> Vec<Probe> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("prober task");
        let mut probes = std::mem::take(&mut *self.probes.lock().unwrap());
        probes.sort_by_key(|p| p.sent);
        probes
    }
}

/// Waits until `prober` has a probe matching `pred`; polls its records.
async fn until_probe(prober: &Prober, within: Duration, pred: impl Fn(&Probe) -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if prober.snapshot().iter().any(&pred) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Requests that were taken and never answered. A reset before any answer is tolerated only
/// where the node's listener was closing: no later request to that node got an HTTP answer.
fn unanswered(probes: &[Probe], origin_us: i64) -> Vec<String> {
    probes
        .iter()
        .filter(|p| match p.outcome {
            Outcome::Unanswered(_) => true,
            Outcome::Reset(_) => probes
                .iter()
                .any(|q| q.node == p.node && q.sent > p.sent && q.answered_http()),
            _ => false,
        })
        .map(|p| p.describe(origin_us))
        .collect()
}

fn buy(id: Uuid, good: &str, request_id: &str) -> Value {
    json!({"character_id": id, "good": good, "side": "buy", "quantity": 1,
           "request_id": request_id})
}

fn gold_of(v: &Value) -> i64 {
    v["gold"]
        .as_i64()
        .unwrap_or_else(|| panic!("no gold in {v}"))
}

#[track_caller]
fn no_violations(what: &str, violations: &[String], timeline: &[String]) {
    if violations.is_empty() {
        return;
    }
    let shown: Vec<&str> = violations.iter().take(20).map(String::as_str).collect();
    let more = match violations.len() {
        n if n > shown.len() => format!("\n  … and {} more", n - shown.len()),
        _ => String::new(),
    };
    panic!(
        "{what}: {} violation(s):\n  - {}{more}\n\ntimeline:\n  {}",
        violations.len(),
        shown.join("\n  - "),
        timeline.join("\n  ")
    );
}

struct World {
    cluster: TestCluster,
    pg: tokio_postgres::Client,
}

impl World {
    async fn on(db: TestDatabase, n: usize, tune: impl Fn(usize, &mut Config)) -> World {
        let cluster = TestCluster::start_on(db, n, tune).await;
        let pg = common::raw_client(&cluster.db.url).await;
        World { cluster, pg }
    }

    async fn stop(mut self) {
        tokio::time::timeout(Duration::from_secs(60), self.cluster.stop_all())
            .await
            .expect("the cluster stops in time");
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.cluster.node(i).client_addr
    }

    /// A new character at [`HOME`] whose key node `node` owns, created by a player talking to
    /// node `via`, with `gold` in its purse (set before any session loads it).
    async fn character_owned_by(
        &self,
        node: usize,
        via: usize,
        tag: &str,
        gold: i64,
    ) -> (GameClient, Uuid) {
        for i in 0..64 {
            let c = GameClient::device(self.addr(via), &format!("{tag}-{i:03}")).await;
            let v = c
                .rpc(
                    "create_character",
                    &json!({"name": format!("Lease {i}"), "faction": FACTION,
                            "background": BACKGROUND}),
                )
                .await
                .unwrap_or_else(|e| panic!("create_character {tag}: {e:?}"));
            assert_eq!(v["location"], HOME);
            let id: Uuid = v["id"].as_str().expect("an id").parse().expect("a UUID");
            let router = &self.cluster.node(node).services.router;
            if router.owner::<CharacterSession>(&id) == Owner::Local {
                let n = self
                    .pg
                    .execute(
                        "UPDATE player_character SET gold = $2 WHERE id = $1",
                        &[&id, &gold],
                    )
                    .await
                    .unwrap();
                assert_eq!(n, 1);
                return (c, id);
            }
        }
        panic!("no character of node-{node} in 64 tries");
    }

    /// The cheapest good to buy at [`HOME`], asked through node `via` (which activates the
    /// session and the market).
    async fn cheapest(&self, c: &GameClient, id: Uuid, via: usize) -> String {
        let c = GameClient {
            addr: self.addr(via),
            ..c.clone()
        };
        common::rows::cheapest(&c, id, HOME).await
    }

    async fn owner_row(&self, id: Uuid) -> (Option<String>, i64) {
        let r = self
            .pg
            .query_one(
                "SELECT owner_node, owner_epoch FROM player_character WHERE id = $1",
                &[&id],
            )
            .await
            .expect("character row");
        (r.get(0), r.get(1))
    }

    async fn gold(&self, id: Uuid) -> i64 {
        common::rows::gold(&self.pg, id).await
    }

    async fn has_receipt(&self, user: Uuid, request_id: &str) -> bool {
        self.pg
            .query_one(
                "SELECT count(*) FROM request_receipt WHERE user_id = $1 AND request_id = $2",
                &[&user, &request_id],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            > 0
    }

    /// Every recorded ownership change of `ids`, in order.
    async fn owner_log(&self, ids: &[Uuid]) -> Vec<Transition> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        self.pg
            .query(
                "SELECT seq, entity, old_owner, new_owner, old_epoch, new_epoch, at_us \
                 FROM test_owner_log WHERE entity = ANY($1) ORDER BY seq",
                &[&ids],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| Transition {
                seq: r.get(0),
                entity: r.get(1),
                old_owner: r.get(2),
                new_owner: r.get(3),
                old_epoch: r.get(4),
                new_epoch: r.get(5),
                at_us: r.get(6),
            })
            .collect()
    }

    /// A trade through node `via`, asked again with the same `request_id` while the answer is
    /// 503 (not run) or 504 (may have run), for at most 15 s; the 200 answer.
    async fn trade_until_done(
        &self,
        c: &GameClient,
        via: usize,
        id: Uuid,
        good: &str,
        request_id: &str,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let p = rpc(
                request_id,
                via,
                self.addr(via),
                &c.token,
                "execute_trade",
                &buy(id, good, request_id),
                PROBE_LIMIT,
            )
            .await;
            match &p.outcome {
                Outcome::Ok(v) => return v.clone(),
                Outcome::Refused {
                    status: 503 | 504, ..
                } if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                _ => panic!("trade {request_id} via node-{via}: {}", p.describe(p.sent)),
            }
        }
    }

    /// `get_character` through node `via`, asked again while it answers 503, at most 15 s.
    async fn character_via(&self, c: &GameClient, via: usize, id: Uuid) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let p = rpc(
                "get_character",
                via,
                self.addr(via),
                &c.token,
                "get_character",
                &json!({"character_id": id}),
                PROBE_LIMIT,
            )
            .await;
            match &p.outcome {
                Outcome::Ok(v) => return v.clone(),
                Outcome::Refused { status: 503, .. } if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                _ => panic!("get_character {id} via node-{via}: {}", p.describe(p.sent)),
            }
        }
    }
}

/// Rows of `test_owner_log`: every epoch is at least the one before it, per entity.
fn epochs_only_grow(log: &[Transition]) -> Vec<String> {
    let mut last: std::collections::HashMap<&str, i64> = Default::default();
    let mut bad = Vec::new();
    for t in log {
        if t.new_epoch < t.old_epoch {
            bad.push(format!(
                "{} went back from epoch {} to {}",
                t.entity, t.old_epoch, t.new_epoch
            ));
        }
        if let Some(prev) = last.get(t.entity.as_str()) {
            if t.new_epoch < *prev {
                bad.push(format!(
                    "{} went back to epoch {} after {prev}",
                    t.entity, t.new_epoch
                ));
            }
        }
        last.insert(&t.entity, t.new_epoch);
    }
    bad
}

// ---------------------------------------------------------------------------------------------
// 1. Conditional claims
// ---------------------------------------------------------------------------------------------

/// Two nodes; node-0 owns a character (its session claimed the row). Node-1 claiming it while
/// node-0's heartbeat is fresh must fail, naming node-0, and change nothing; once node-0 has
/// drained (and released), the claim succeeds with the next epoch.
#[actix_rt::test]
async fn a_claim_over_a_live_owner_fails_until_the_owner_released_it() {
    let mut w = World::on(prepared_db().await, 2, |_, _| {}).await;
    let (c, id) = w.character_owned_by(0, 1, "claim-live", 1_000).await;
    let first = w.character_via(&c, 0, id).await;
    let (owner, epoch) = w.owner_row(id).await;
    assert_eq!(
        owner.as_deref(),
        Some("node-0"),
        "node-0's session claimed {id}"
    );

    let db1 = w.cluster.node(1).services.db.clone();
    let taken = claims::claim(&db1, EntityTable::Character, &EntityId::Uuid(id), "node-1").await;
    let after = w.owner_row(id).await;
    match &taken {
        Ok(e) => panic!(
            "node-1 claimed character {id} (epoch {e}) while its owner node-0 is alive, its \
             heartbeat fresh and its session serving; the row is now {after:?}. A claim may take \
             only a released row, the claimant's own, or one whose owner's lease expired"
        ),
        Err(e) => {
            let why = format!("{e} / {e:?}");
            assert!(why.contains("node-0"), "the refusal names the owner: {why}");
        }
    }
    assert_eq!(
        after,
        (Some("node-0".to_string()), epoch),
        "a refused claim changes nothing"
    );
    // node-0 still serves the character, directly and through node-1.
    assert_eq!(gold_of(&w.character_via(&c, 0, id).await), gold_of(&first));
    assert_eq!(gold_of(&w.character_via(&c, 1, id).await), gold_of(&first));

    w.cluster.stop(0).await;
    assert_eq!(
        w.owner_row(id).await,
        (None, epoch),
        "the drain released the row"
    );
    let taken = claims::claim(&db1, EntityTable::Character, &EntityId::Uuid(id), "node-1")
        .await
        .expect("a released row can be claimed");
    assert_eq!(taken, epoch + 1, "a claim bumps the epoch");
    assert_eq!(w.owner_row(id).await, (Some("node-1".into()), epoch + 1));
    w.stop().await;
}

/// The claim rule on rows whose owners are fake members with hand-set heartbeat rows: which
/// rows a claimant may take, and that a refused claim changes nothing.
#[actix_rt::test]
async fn a_claim_takes_a_row_only_when_released_its_own_or_its_owners_lease_expired() {
    let (tdb, db) = common::migrated_db().await;
    let pg = common::raw_client(&tdb.url).await;
    pg.batch_execute(
        "INSERT INTO cluster_member (node_id, peer_addr, client_addr, incarnation, status, last_heartbeat) VALUES \
           ('claimant',       'x:1', 'x:2', 1, 'alive',    now()), \
           ('fresh-alive',    'x:1', 'x:2', 1, 'alive',    now()), \
           ('fresh-draining', 'x:1', 'x:2', 1, 'draining', now()), \
           ('stale-alive',    'x:1', 'x:2', 1, 'alive',    now() - interval '1 hour'), \
           ('stale-draining', 'x:1', 'x:2', 1, 'draining', now() - interval '1 hour'), \
           ('left',           'x:1', 'x:2', 1, 'left',     now())",
    )
    .await
    .expect("member rows");
    // The live fake members keep heartbeating, as a node would, for as long as the test runs
    // (a claim may wait out a lease before it gives up).
    let beating = Arc::new(AtomicBool::new(true));
    let heart = {
        let (beating, hb) = (beating.clone(), common::raw_client(&tdb.url).await);
        tokio::spawn(async move {
            while beating.load(Ordering::SeqCst) {
                hb.execute(
                    "UPDATE cluster_member SET last_heartbeat = now() \
                     WHERE node_id IN ('claimant', 'fresh-alive', 'fresh-draining')",
                    &[],
                )
                .await
                .expect("heartbeat");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // (owner, may the claimant take it, why)
    let cases: [(Option<&str>, bool, &str); 8] = [
        (None, true, "the row is released"),
        (Some("claimant"), true, "the claimant owns it already"),
        (
            Some("stale-alive"),
            true,
            "its owner's heartbeat is an hour old",
        ),
        (
            Some("stale-draining"),
            true,
            "its draining owner's heartbeat is an hour old",
        ),
        (Some("left"), true, "its owner left the cluster"),
        (
            Some("never-joined"),
            true,
            "its owner has no heartbeat row at all",
        ),
        (
            Some("fresh-alive"),
            false,
            "its owner is alive and its heartbeat fresh",
        ),
        (
            Some("fresh-draining"),
            false,
            "its owner is draining and still heartbeating",
        ),
    ];
    let mut wrong = Vec::new();
    for (owner, claimable, why) in cases {
        let id = Uuid::new_v4();
        pg.execute(
            "INSERT INTO player_character (id, user_id, name, faction, background, gold, location, \
             hp, max_hp, owner_node, owner_epoch) VALUES ($1, $2, 'Lease', $3, $4, 0, $5, 10, 10, $6, 7)",
            &[&id, &Uuid::new_v4(), &FACTION, &BACKGROUND, &HOME, &owner],
        )
        .await
        .expect("character row");
        let asked = Instant::now();
        let result =
            claims::claim(&db, EntityTable::Character, &EntityId::Uuid(id), "claimant").await;
        let took = asked.elapsed();
        if took > Duration::from_secs(10) {
            wrong.push(format!(
                "owner {owner:?} ({why}): the claim took {took:?}; a claimant waits a few seconds at most"
            ));
        }
        let row: (Option<String>, i64) = {
            let r = pg
                .query_one(
                    "SELECT owner_node, owner_epoch FROM player_character WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1))
        };
        match (claimable, &result) {
            (true, Ok(8)) if row == (Some("claimant".into()), 8) => {}
            (true, _) => wrong.push(format!(
                "owner {owner:?} ({why}): the claim must succeed with epoch 8; got {result:?}, row {row:?}"
            )),
            (false, Err(e)) if row == (owner.map(str::to_string), 7) => {
                let text = format!("{e} / {e:?}");
                if !text.contains(owner.unwrap_or("?")) {
                    wrong.push(format!(
                        "owner {owner:?} ({why}): refused, but the error does not name the owner: {text}"
                    ));
                }
            }
            (false, _) => wrong.push(format!(
                "owner {owner:?} ({why}): the claim must fail and change nothing; got {result:?}, row {row:?}"
            )),
        }
    }
    beating.store(false, Ordering::SeqCst);
    heart.await.expect("heartbeat task");
    assert!(
        wrong.is_empty(),
        "claims against the lease rule:\n  {}",
        wrong.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Step-down when the database connection stalls
// ---------------------------------------------------------------------------------------------

/// node-0 reaches the database (main pool and heartbeat) through a proxy that is paused: bytes
/// held, connections open, as a silently dropped connection. Within its lease node-0 stops
/// serving its characters from memory (503/14 or no answer, never 200), and it does so before
/// node-1 claims them (the claim's time from the owner log, on the database clock mapped to
/// this process's). A trade node-0 had in flight never commits over node-1's claim; epochs
/// only grow; after the proxy resumes and the views converge, every answer follows from the
/// database (node-0 serves nothing from its old memory).
#[actix_rt::test]
async fn a_node_whose_database_stalls_steps_down_before_a_peer_claims_its_characters() {
    let timeout = Duration::from_millis(3000);
    let db = prepared_db().await;
    let (proxy, stalled_url) = proxied(&db).await;
    let w = World::on(db, 2, move |i, c| {
        c.membership_timeout = timeout;
        if i == 0 {
            c.database_url = stalled_url.clone();
            // The in-flight trade must outlive the stall: only the fence may stop it.
            c.request_timeout = Duration::from_secs(12);
        }
    })
    .await;
    // Two characters of node-0, active there: X is read during the stall, Y has a trade in
    // flight when the database goes silent.
    let (cx, x) = w.character_owned_by(0, 1, "stall-x", 100_000).await;
    let (cy, y) = w.character_owned_by(0, 1, "stall-y", 100_000).await;
    let good = w.cheapest(&cx, x, 0).await;
    w.cheapest(&cy, y, 0).await;
    for id in [x, y] {
        assert_eq!(w.owner_row(id).await.0.as_deref(), Some("node-0"));
    }
    let mut watch = OwnerWatch::start(&w.cluster.db.url).await;
    let offset = db_clock_offset(&w.pg).await;

    let paused = now_us();
    proxy.pause();
    let inflight = {
        let (addr, token, body) = (w.addr(0), cy.token.clone(), buy(y, &good, "inflight-y-000"));
        tokio::spawn(async move {
            rpc(
                "in-flight trade of Y",
                0,
                addr,
                &token,
                "execute_trade",
                &body,
                Duration::from_secs(30),
            )
            .await
        })
    };
    let read_x = move |_| json!({"character_id": x});
    let from_a = Prober::start(
        "X via node-0",
        0,
        w.addr(0),
        &cx.token,
        "get_character",
        read_x,
        Duration::from_millis(25),
    );
    let from_b = Prober::start(
        "X via node-1",
        1,
        w.addr(1),
        &cx.token,
        "get_character",
        read_x,
        Duration::from_millis(50),
    );

    // node-1 takes X over once node-0 is out of its view.
    let claim = watch
        .wait_for(timeout * 4, |t| t.is_claim_by(x, "node-1"))
        .await;
    let Some(claim) = claim else {
        let (a, b) = (from_a.finish().await, from_b.finish().await);
        proxy.resume();
        let timeline: Vec<String> = a.iter().chain(&b).map(|p| p.describe(paused)).collect();
        panic!(
            "node-1 did not claim X within {:?} of node-0's database stalling; views {:?} / {:?}\n  {}",
            timeout * 4,
            w.cluster.view_of(0),
            w.cluster.view_of(1),
            timeline.join("\n  ")
        );
    };
    let claimed = claim.at_us - offset;
    let served = until_probe(&from_b, Duration::from_secs(10), |p| {
        p.sent > claimed && p.ok().is_some()
    })
    .await;
    // Keep asking node-0 for half a lease more: it must not serve X again.
    tokio::time::sleep(timeout / 2).await;
    // The new owner changes both characters (it claims Y on the way).
    let x_after = w
        .trade_until_done(&cx, 1, x, &good, "x-by-node-1-000")
        .await;
    let y_after = w
        .trade_until_done(&cy, 1, y, &good, "y-by-node-1-000")
        .await;
    let a = from_a.finish().await;
    let b = from_b.finish().await;

    proxy.resume();
    let resumed = now_us();
    let inflight = inflight.await.expect("in-flight trade task");
    w.cluster.wait_converged(2, Duration::from_secs(30)).await;

    let ms = |t: i64| (t - paused) / 1000;
    let mut violations = Vec::new();
    if !served {
        violations.push("node-1 never answered X with a 200 after its claim".to_string());
    }
    // node-0 gave its state only before node-1's claim.
    let late: Vec<&Probe> = a
        .iter()
        .filter(|p| p.ok().is_some() && p.answered >= claimed)
        .collect();
    if let (Some(first), Some(last)) = (late.first(), late.last()) {
        violations.push(format!(
            "node-0 answered X with its state {} time(s) after node-1 claimed it at {:+}ms (first \
             sent {:+}ms, answered {:+}ms; last answered {:+}ms): two live owners",
            late.len(),
            ms(claimed),
            ms(first.sent),
            ms(first.answered),
            ms(last.answered)
        ));
    }
    // ... and none to requests sent later than its lease after the stall.
    let lease_end = paused + timeout.as_micros() as i64;
    let past_lease = a
        .iter()
        .filter(|p| p.ok().is_some() && p.sent > lease_end)
        .count();
    if past_lease > 0 {
        violations.push(format!(
            "node-0 served X from memory to {past_lease} request(s) sent more than the membership \
             timeout ({timeout:?}) after its database stalled"
        ));
    }
    // It refused before the claim: it had stepped down when node-1 took over.
    match a.iter().find(|p| p.ok().is_none()) {
        None => violations.push("node-0 never refused X while its database stalled".into()),
        Some(p) if p.sent >= claimed => violations.push(format!(
            "node-0's first refusal was to a request sent at {:+}ms, not before node-1's claim at {:+}ms",
            ms(p.sent),
            ms(claimed)
        )),
        Some(_) => {}
    }
    // Its refusals say "not run" (or nothing).
    for p in a.iter().filter(|p| p.ok().is_none()) {
        if !(p.is_not_run() || matches!(p.outcome, Outcome::Unanswered(_))) {
            violations.push(format!(
                "node-0 refused X with something else than 503/14: {}",
                p.describe(paused)
            ));
            break;
        }
    }
    // Nothing node-0 had in flight committed over node-1's claim.
    if w.has_receipt(cy.user_id, "inflight-y-000").await {
        violations.push(format!(
            "node-0's in-flight trade of Y committed after node-1 claimed Y ({})",
            inflight.describe(paused)
        ));
    }
    for (name, id, expected) in [("X", x, &x_after), ("Y", y, &y_after)] {
        let db_gold = w.gold(id).await;
        if db_gold != gold_of(expected) {
            violations.push(format!(
                "{name}'s gold is {db_gold} in the database, but node-1's last trade answered {}",
                gold_of(expected)
            ));
        }
    }
    let log = w.owner_log(&[x, y]).await;
    violations.extend(epochs_only_grow(&log));
    // After the stall: every answer, through either node, follows from the database.
    for (name, c, id) in [("X", &cx, x), ("Y", &cy, y)] {
        for via in 0..2 {
            let v = w.character_via(c, via, id).await;
            let db_gold = w.gold(id).await;
            if gold_of(&v) != db_gold {
                violations.push(format!(
                    "after the stall, {name} via node-{via} answered gold {} but the database holds \
                     {db_gold}: an answer from stale memory",
                    gold_of(&v)
                ));
            }
        }
    }

    let mut timeline = vec![
        format!(
            "stall at +0ms, node-1's claim of X at {:+}ms, resumed at {:+}ms",
            ms(claimed),
            ms(resumed)
        ),
        format!("in flight: {}", inflight.describe(paused)),
    ];
    timeline.extend(
        log.iter()
            .map(|t| format!("owner {} {}", &t.entity[..8], t.describe(paused, offset))),
    );
    let mut probes: Vec<&Probe> = a.iter().chain(&b).collect();
    probes.sort_by_key(|p| p.sent);
    // The interesting stretch: around node-0's last 200 and around node-1's claim.
    let last_ok = a
        .iter()
        .filter(|p| p.ok().is_some())
        .map(|p| p.answered)
        .max()
        .unwrap_or(paused);
    timeline.extend(
        probes
            .iter()
            .filter(|p| (p.sent - last_ok).abs() < 200_000 || (p.sent - claimed).abs() < 200_000)
            .map(|p| p.describe(paused)),
    );
    if violations.is_empty() {
        println!("{}", timeline.join("\n"));
    }
    no_violations("step-down on a stalled database", &violations, &timeline);
    w.stop().await;
    drop(proxy);
}

// ---------------------------------------------------------------------------------------------
// 3. Heartbeats while the main pool is exhausted
// ---------------------------------------------------------------------------------------------

/// node-0's main pool has two connections; two trades hold both for more than twice the
/// membership timeout (their characters' rows are locked by another client, so each trade waits
/// inside its transaction). node-0 stays in every view the whole time and its heartbeat row
/// stays fresh; once the rows are free, the trades complete.
#[actix_rt::test]
async fn heartbeats_keep_their_deadline_while_game_traffic_holds_the_whole_pool() {
    let timeout = Duration::from_millis(2000);
    let w = World::on(prepared_db().await, 2, move |i, c| {
        c.membership_timeout = timeout;
        if i == 0 {
            c.database_pool_size = 2;
            c.db_statement_timeout = Duration::from_secs(30);
            c.request_timeout = Duration::from_secs(20);
        }
    })
    .await;
    let (c1, l1) = w.character_owned_by(0, 1, "pool-a", 100_000).await;
    let (c2, l2) = w.character_owned_by(0, 1, "pool-b", 100_000).await;
    let good = w.cheapest(&c1, l1, 0).await;
    w.cheapest(&c2, l2, 0).await;

    let mut locker = common::raw_client(&w.cluster.db.url).await;
    let lock = locker.transaction().await.expect("BEGIN");
    lock.query(
        "SELECT id FROM player_character WHERE id = ANY($1) FOR UPDATE",
        &[&vec![l1, l2]],
    )
    .await
    .expect("lock the two rows");
    let trades: Vec<_> = [(&c1, l1, "pool-trade-a-000"), (&c2, l2, "pool-trade-b-000")]
        .into_iter()
        .map(|(c, id, rid)| {
            let (addr, token, body) = (w.addr(0), c.token.clone(), buy(id, &good, rid));
            tokio::spawn(async move {
                rpc(
                    rid,
                    0,
                    addr,
                    &token,
                    "execute_trade",
                    &body,
                    Duration::from_secs(40),
                )
                .await
            })
        })
        .collect();
    // Both of node-0's connections wait on the locked rows (only node-0 writes them).
    let waiters = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND wait_event_type = 'Lock' AND query ILIKE '%player_character%'";
    let held_since = Instant::now();
    loop {
        let n: i64 = w.pg.query_one(waiters, &[]).await.unwrap().get(0);
        if n >= 2 {
            break;
        }
        assert!(
            held_since.elapsed() < Duration::from_secs(10),
            "the trades did not come to hold node-0's two connections ({n} waiting)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = Instant::now();
    let mut violations = Vec::new();
    let mut worst_silence = 0i64;
    let mut samples = 0;
    while held.elapsed() < timeout * 5 / 2 {
        let at = held.elapsed().as_millis();
        if !w.cluster.view_of(1).contains(&"node-0".to_string()) {
            violations.push(format!(
                "node-1's view lost node-0 at +{at}ms: {:?}",
                w.cluster.view_of(1)
            ));
        }
        if !w.cluster.view_of(0).contains(&"node-1".to_string()) {
            violations.push(format!(
                "node-0's view lost node-1 at +{at}ms: {:?}",
                w.cluster.view_of(0)
            ));
        }
        if w.cluster.node(0).membership.lock().unwrap().dead {
            violations.push(format!("node-0 believes itself dead at +{at}ms"));
        }
        let silent: i64 =
            w.pg.query_one(
                "SELECT (extract(epoch FROM now() - last_heartbeat) * 1000)::INT8 \
                 FROM cluster_member WHERE node_id = 'node-0'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        worst_silence = worst_silence.max(silent);
        let n: i64 = w.pg.query_one(waiters, &[]).await.unwrap().get(0);
        assert!(
            n >= 2,
            "the load stopped holding node-0's pool at +{at}ms ({n} connections waiting): the test \
             proves nothing past this point"
        );
        samples += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lock.rollback().await.expect("ROLLBACK");
    let mut answers = Vec::new();
    for t in trades {
        answers.push(t.await.expect("trade task"));
    }
    println!(
        "pool held {:?}, {samples} samples, node-0's longest heartbeat silence {worst_silence}ms",
        held.elapsed()
    );
    if worst_silence >= timeout.as_millis() as i64 {
        violations.push(format!(
            "node-0's heartbeat row was {worst_silence}ms old while its pool was busy (timeout {timeout:?})"
        ));
    }
    for p in &answers {
        if p.ok().is_none() {
            violations.push(format!(
                "a trade holding the pool did not complete once the rows were free: {}",
                p.describe(p.sent)
            ));
        }
    }
    no_violations("heartbeats under an exhausted pool", &violations, &[]);
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. A drain slower than the membership timeout
// ---------------------------------------------------------------------------------------------

/// node-0 drains while one of its characters' rows is locked by another client for twice the
/// membership timeout, so its hand-off (flush, release) cannot finish before the timeout has
/// passed. Meanwhile clients read every character through both nodes and trade through node-0.
/// node-0 keeps heartbeating ('draining') until it has handed off; no character goes from
/// node-0 straight to another owner (only node-0 → released → new owner); every request gets
/// an answer (503/14 is one); every acknowledged trade is in the database; afterwards node-1
/// serves every character from the database.
#[actix_rt::test]
async fn a_drain_slower_than_the_membership_timeout_releases_before_any_peer_claims() {
    let timeout = Duration::from_millis(2000);
    let mut w = World::on(prepared_db().await, 2, move |i, c| {
        c.membership_timeout = timeout;
        if i == 0 {
            // node-0's writes wait for the locked row rather than give up.
            c.db_statement_timeout = Duration::from_secs(30);
        }
    })
    .await;
    let mut chars = Vec::new();
    for k in 0..3 {
        chars.push(
            w.character_owned_by(0, 1, &format!("drain-{k}"), 100_000)
                .await,
        );
    }
    let good = w.cheapest(&chars[0].0, chars[0].1, 0).await;
    for (c, id) in &chars[1..] {
        w.cheapest(c, *id, 0).await;
    }
    let ids: Vec<Uuid> = chars.iter().map(|(_, id)| *id).collect();
    for id in &ids {
        assert_eq!(w.owner_row(*id).await.0.as_deref(), Some("node-0"));
    }
    let offset = db_clock_offset(&w.pg).await;
    let (addr0, addr1) = (w.addr(0), w.addr(1));

    // Reads of every character through both nodes, trades of the two unlocked ones through
    // node-0 (fresh request ids), all the way through the drain.
    let mut probers = Vec::new();
    for (k, (c, id)) in chars.iter().enumerate() {
        let id = *id;
        for (node, addr) in [(0, addr0), (1, addr1)] {
            let prober = Prober::start(
                &format!("read D{k} via node-{node}"),
                node,
                addr,
                &c.token,
                "get_character",
                move |_| json!({"character_id": id}),
                Duration::from_millis(60),
            );
            probers.push((prober, node));
        }
    }
    let mut traders = Vec::new();
    for (k, (c, id)) in chars.iter().enumerate().skip(1) {
        let (id, good) = (*id, good.clone());
        traders.push((
            c.user_id,
            Prober::start(
                &format!("trade D{k} via node-0"),
                0,
                addr0,
                &c.token,
                "execute_trade",
                move |n| buy(id, &good, &format!("drain-trade-{k}-{n:05}")),
                Duration::from_millis(120),
            ),
        ));
    }
    for (_, t) in &traders {
        assert!(
            until_probe(t, Duration::from_secs(10), |p| p.ok().is_some()).await,
            "trades go through before the drain"
        );
    }

    // The slow database: D0's row, locked by another client from before the drain until twice
    // the membership timeout into it.
    let mut locker = common::raw_client(&w.cluster.db.url).await;
    let lock = locker.transaction().await.expect("BEGIN");
    lock.query(
        "SELECT id FROM player_character WHERE id = $1 FOR UPDATE",
        &[&ids[0]],
    )
    .await
    .expect("lock D0");
    let node0 = w.cluster.nodes[0].take().expect("node-0 runs");
    let started = now_us();
    let t0 = Instant::now();
    let drain = actix_rt::spawn(async move {
        let stopped = node0.stop().await;
        (stopped.is_ok(), now_us())
    });
    let mut heartbeats = Vec::new();
    while t0.elapsed() < timeout * 2 {
        let r =
            w.pg.query_one(
                "SELECT status, (extract(epoch FROM now() - last_heartbeat) * 1000)::INT8 \
                 FROM cluster_member WHERE node_id = 'node-0'",
                &[],
            )
            .await
            .unwrap();
        heartbeats.push((
            t0.elapsed().as_millis(),
            r.get::<_, String>(0),
            r.get::<_, i64>(1),
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lock.rollback().await.expect("ROLLBACK");
    let (stopped, drained) = tokio::time::timeout(Duration::from_secs(60), drain)
        .await
        .expect("the drain ends within 60 s of the row being free")
        .expect("drain task");
    assert!(stopped, "node-0 stopped cleanly");
    // Every character answers through node-1 now; then the clients stop.
    for (prober, node) in &probers {
        if *node == 1 {
            assert!(
                until_probe(prober, Duration::from_secs(15), |p| p.sent > drained
                    && p.ok().is_some())
                .await,
                "every character answers through node-1 after the drain"
            );
        }
    }
    let mut probes = Vec::new();
    for (p, _) in probers {
        probes.extend(p.finish().await);
    }
    let mut trades = Vec::new();
    for (user, t) in traders {
        trades.extend(t.finish().await.into_iter().map(|p| (user, p)));
    }

    let ms = |t: i64| (t - started) / 1000;
    let drain_ms = ms(drained);
    assert!(
        drain_ms > timeout.as_millis() as i64,
        "the drain took {drain_ms}ms, not longer than the membership timeout: the test proves nothing"
    );
    let mut violations = Vec::new();
    // Only node-0 -> released -> new owner.
    let log = w.owner_log(&ids).await;
    for t in &log {
        if t.old_owner.as_deref() == Some("node-0")
            && t.new_owner.as_deref().is_some_and(|n| n != "node-0")
        {
            violations.push(format!(
                "{} was claimed straight from node-0 by {:?} at {:+}ms (drain {:+}ms..{:+}ms), before node-0 released it",
                &t.entity[..8],
                t.new_owner,
                ms(t.at_us - offset),
                0,
                drain_ms
            ));
        }
    }
    violations.extend(epochs_only_grow(&log));
    // node-0 heartbeats through its drain, marked draining.
    if let Some((at, status, silent)) = heartbeats
        .iter()
        .find(|(_, _, s)| *s >= timeout.as_millis() as i64)
    {
        violations.push(format!(
            "node-0 stopped heartbeating during its drain: its row ({status}) was {silent}ms old at {at}ms into the drain"
        ));
    }
    if !heartbeats.iter().any(|(_, s, _)| s == "draining") {
        violations.push(format!(
            "node-0's member row never said 'draining' during the drain (saw {:?})",
            heartbeats
                .iter()
                .map(|(_, s, _)| s.as_str())
                .collect::<std::collections::BTreeSet<_>>()
        ));
    }
    // Every request answered.
    let all: Vec<Probe> = probes
        .iter()
        .cloned()
        .chain(trades.iter().map(|(_, p)| p.clone()))
        .collect();
    violations.extend(
        unanswered(&all, started)
            .into_iter()
            .map(|d| format!("no answer: {d}")),
    );
    // Every acknowledged trade is in the database.
    for (user, p) in &trades {
        if let (Some(_), Some(rid)) = (p.ok(), p.request["request_id"].as_str()) {
            if !w.has_receipt(*user, rid).await {
                violations.push(format!("acknowledged trade lost: {}", p.describe(started)));
            }
        }
    }
    // node-1 serves every character from the database.
    for (c, id) in &chars {
        let v = w.character_via(c, 1, *id).await;
        let db_gold = w.gold(*id).await;
        if gold_of(&v) != db_gold {
            violations.push(format!(
                "after the drain node-1 answered gold {} for {} but the database holds {db_gold}",
                gold_of(&v),
                &id.to_string()[..8]
            ));
        }
    }

    let mut timeline = vec![format!(
        "drain {:+}ms..{:+}ms (row free at {:+}ms)",
        0,
        drain_ms,
        (timeout * 2).as_millis()
    )];
    timeline.extend(
        log.iter()
            .map(|t| format!("owner {} {}", &t.entity[..8], t.describe(started, offset))),
    );
    timeline.extend(
        heartbeats
            .iter()
            .step_by(4)
            .map(|(at, s, silent)| format!("node-0 heartbeat row at {at}ms: {s}, {silent}ms old")),
    );
    let count = |f: &dyn Fn(&Probe) -> bool| all.iter().filter(|p| f(p)).count();
    timeline.push(format!(
        "{} requests: {} ok, {} not run (503/14), {} other answers, {} not delivered, {} reset, {} unanswered",
        all.len(),
        count(&|p| p.ok().is_some()),
        count(&|p| p.is_not_run()),
        count(&|p| matches!(p.outcome, Outcome::Refused { .. }) && !p.is_not_run()),
        count(&|p| matches!(p.outcome, Outcome::NotDelivered(_))),
        count(&|p| matches!(p.outcome, Outcome::Reset(_))),
        count(&|p| matches!(p.outcome, Outcome::Unanswered(_))),
    ));
    if violations.is_empty() {
        println!("{}", timeline.join("\n"));
    }
    no_violations(
        "drain slower than the membership timeout",
        &violations,
        &timeline,
    );
    w.stop().await;
}
