//! The trading clients. Each one owns one character and runs a closed loop of `execute_trade`
//! (buy and sell at its town's market) with an occasional `learn_skill`, over HTTP or over the
//! realtime socket, against any node.
//!
//! The retry recipe is the client contract of issue 9: every state-changing request carries a
//! fresh `request_id`; an answer is final when it is a result (200), a game refusal (3 or 9), or
//! a conflict (6, which must never happen here); everything else — not run (14), may have run
//! (4), internal (13), no answer — is retried with the same `request_id`, on the next node,
//! until a final answer or the request's deadline. Everything the clients were told is kept for
//! the checker.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

use super::client::{rpc_http, Reply, Socket};

/// How a request ended for the client.
#[derive(Debug, Clone)]
pub enum Final {
    Done(Value),
    /// A game refusal (gRPC 3 or 9): nothing changed.
    Refused(i64, String),
    /// gRPC 6 / HTTP 409: same `request_id`, different payload. A harness bug or a server bug.
    Conflict(String),
    /// An answer outside the contract (e.g. 5, 7, 16): final, and a failure.
    Unexpected(String),
    /// No final answer before the request's deadline: the last non-final reply.
    Unresolved(String),
}

/// Counts of attempts by what they got back.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub done: u64,
    pub refused: u64,
    pub not_run: u64,
    pub may_have_run: u64,
    pub internal: u64,
    pub not_sent: u64,
    pub lost: u64,
    pub conflict: u64,
    pub unexpected: u64,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.done += o.done;
        self.refused += o.refused;
        self.not_run += o.not_run;
        self.may_have_run += o.may_have_run;
        self.internal += o.internal;
        self.not_sent += o.not_sent;
        self.lost += o.lost;
        self.conflict += o.conflict;
        self.unexpected += o.unexpected;
    }
}

/// Settings shared by every client.
#[derive(Clone)]
pub struct Options {
    /// Whether the server accepts `request_id` (probed at start-up).
    pub request_ids: bool,
    pub attempt_timeout: Duration,
    pub request_deadline: Duration,
    pub think: Duration,
    /// Skills to try, in order (prerequisites first), and their cost in skill points. A client
    /// learns the next one when the schedule calls a learning wave (see [`Progress`]).
    pub skills: Vec<(String, i64)>,
    pub run_tag: String,
}

/// Sends one client's requests: transport, node rotation, retries and the attempt tally.
pub struct Caller {
    pub nodes: Vec<SocketAddr>,
    pub node: usize,
    pub token: String,
    pub over_socket: bool,
    socket: Option<Socket>,
    pub tally: Tally,
    pub opts: Options,
    client: usize,
    /// Which of this client's callers (set-up, load, probes): ids never repeat across them.
    instance: u32,
    seq: u64,
}

/// Numbers every [`Caller`] of the run.
static CALLERS: AtomicU32 = AtomicU32::new(0);

impl Caller {
    pub fn new(
        nodes: Vec<SocketAddr>,
        home: usize,
        token: String,
        over_socket: bool,
        client: usize,
        opts: Options,
    ) -> Caller {
        Caller {
            nodes,
            node: home,
            token,
            over_socket,
            socket: None,
            tally: Tally::default(),
            opts,
            client,
            instance: CALLERS.fetch_add(1, Ordering::Relaxed),
            seq: 0,
        }
    }

    /// A fresh `request_id`: run tag, client, caller, sequence (unique within and across
    /// runs; the same id again would be a repeat, answered with the first answer or 409).
    pub fn next_request_id(&mut self) -> String {
        self.seq += 1;
        format!(
            "{}-c{:02}-{}-{:06}",
            self.opts.run_tag, self.client, self.instance, self.seq
        )
    }

    async fn attempt(&mut self, rpc: &str, payload: &str) -> Reply {
        let (addr, timeout) = (self.nodes[self.node], self.opts.attempt_timeout);
        if !self.over_socket {
            return rpc_http(addr, &self.token, rpc, payload, timeout).await;
        }
        if self.socket.is_none() {
            match Socket::connect(addr, &self.token).await {
                Ok(s) => self.socket = Some(s),
                Err(e) => return Reply::NotSent(e),
            }
        }
        let reply = self
            .socket
            .as_mut()
            .expect("connected above")
            .rpc(rpc, payload, timeout)
            .await;
        if matches!(reply, Reply::Lost(_)) {
            self.socket = None; // its state is unknown: a late answer must not be read later
        }
        reply
    }

    /// Sends `payload` (already carrying its `request_id`, if any) until a final answer.
    /// Returns it with the number of attempts.
    pub async fn call(&mut self, rpc: &str, payload: &Value) -> (Final, u32) {
        let text = payload.to_string();
        let start = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let reply = self.attempt(rpc, &text).await;
            let t = &mut self.tally;
            let retry = match reply {
                Reply::Ok(v) => {
                    t.done += 1;
                    return (Final::Done(v), attempts);
                }
                Reply::Err {
                    status,
                    grpc,
                    message,
                } => {
                    // A body without a gRPC code: fall back on the HTTP status.
                    let grpc = match (grpc, status) {
                        (-1, 503) => 14,
                        // The HTTP server's timer for reading the request ran out before it
                        // read it (a node resumed after a stall): the request never ran.
                        (-1, 408) => 14,
                        (-1, 504) => 4,
                        (-1, 500) => 13,
                        (-1, 409) => 6,
                        (g, _) => g,
                    };
                    match grpc {
                        3 | 9 => {
                            t.refused += 1;
                            return (Final::Refused(grpc, message), attempts);
                        }
                        6 => {
                            t.conflict += 1;
                            return (Final::Conflict(message), attempts);
                        }
                        14 | 8 => {
                            t.not_run += 1;
                            format!("not run ({grpc}): {message}")
                        }
                        4 => {
                            t.may_have_run += 1;
                            format!("may have run (4): {message}")
                        }
                        13 => {
                            t.internal += 1;
                            format!("internal (13): {message}")
                        }
                        _ => {
                            t.unexpected += 1;
                            let m = format!("HTTP {status} gRPC {grpc}: {message}");
                            return (Final::Unexpected(m), attempts);
                        }
                    }
                }
                Reply::NotSent(m) => {
                    t.not_sent += 1;
                    m
                }
                Reply::Lost(m) => {
                    t.lost += 1;
                    m
                }
            };
            if start.elapsed() >= self.opts.request_deadline {
                return (Final::Unresolved(retry), attempts);
            }
            // Any node serves any character: try the next one, after a short, growing pause.
            self.node = (self.node + 1) % self.nodes.len();
            let pause = 50 * u64::from(attempts.min(10)) + rand::thread_rng().gen_range(0..50);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
}

/// One trading client's character and what it started with (read from the database).
#[derive(Clone, Debug)]
pub struct Player {
    pub index: usize,
    pub token: String,
    pub character: String,
    pub market: String,
    pub good: String,
    pub home: usize,
    pub over_socket: bool,
    pub start: CharState,
}

/// The part of a character the checker compares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CharState {
    pub gold: i64,
    pub cargo: BTreeMap<String, i64>,
    pub skills: Vec<String>,
    pub skill_points: i64,
}

/// One request as the client saw it.
#[derive(Debug, Clone)]
pub struct RequestLog {
    pub rpc: &'static str,
    pub payload: Value,
    pub outcome: Final,
    pub attempts: u32,
}

/// Everything one client was told, for the checker.
#[derive(Debug, Default)]
pub struct ClientLog {
    pub requests: Vec<RequestLog>,
    pub tally: Tally,
    /// Sum of the answered (200) trades.
    pub gold_delta: i64,
    pub cargo_delta: BTreeMap<String, i64>,
    pub skills_acked: Vec<String>,
    pub skill_points_spent: i64,
    /// Answers that do not follow from the previous answer (two writers, double application,
    /// stale memory).
    pub chain_errors: Vec<String>,
    pub max_gap: Duration,
    /// When the longest gap ended, from the start of the load.
    pub max_gap_end: Duration,
}

/// What the clients share with the fault schedule: a stop flag, when each client last got a
/// final answer (to wait for "every client answered again" after a fault), and learning waves:
/// the schedule calls one just before a fault and waits until every client has its
/// `learn_skill` answered, so acknowledged skills are as young as possible when the fault hits
/// (a skill written after its answer is lost exactly then).
pub struct Progress {
    pub stop: AtomicBool,
    pub last_final: Mutex<Vec<Instant>>,
    pub started: Instant,
    pub wave: AtomicU32,
    /// Per client: the last wave whose `learn_skill` got a final answer.
    pub wave_answered: Mutex<Vec<u32>>,
}

impl Progress {
    pub fn new(n: usize) -> Arc<Progress> {
        let now = Instant::now();
        Arc::new(Progress {
            stop: AtomicBool::new(false),
            last_final: Mutex::new(vec![now; n]),
            started: now,
            wave: AtomicU32::new(0),
            wave_answered: Mutex::new(vec![0; n]),
        })
    }

    /// Starts a learning wave and waits (bounded) until every client's `learn_skill` of it is
    /// answered; how many clients answered.
    pub async fn learning_wave(&self, within: Duration) -> usize {
        let wave = self.wave.fetch_add(1, Ordering::AcqRel) + 1;
        let deadline = Instant::now() + within;
        loop {
            let answered = {
                let w = self.wave_answered.lock().unwrap();
                w.iter().filter(|x| **x >= wave).count()
            };
            if answered == self.wave_answered.lock().unwrap().len() || Instant::now() >= deadline {
                return answered;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until every client has had a final answer after `since`; the clients still
    /// waiting when `within` ran out.
    pub async fn wait_all_answered_since(&self, since: Instant, within: Duration) -> Vec<usize> {
        let deadline = Instant::now() + within;
        loop {
            let behind: Vec<usize> = {
                let last = self.last_final.lock().unwrap();
                (0..last.len()).filter(|i| last[*i] <= since).collect()
            };
            if behind.is_empty() || Instant::now() >= deadline {
                return behind;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Adds `request_id` to a payload when the server takes it.
pub fn with_id(caller: &mut Caller, mut payload: Value) -> Value {
    if caller.opts.request_ids {
        payload["request_id"] = json!(caller.next_request_id());
    }
    payload
}

fn held(answer: &Value, good: &str) -> i64 {
    answer["cargo"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["good"] == good)
        .filter_map(|c| c["quantity"].as_i64())
        .sum()
}

/// Runs one client until `progress.stop`; returns its log.
pub async fn run_client(p: Player, mut caller: Caller, progress: Arc<Progress>) -> ClientLog {
    let mut log = ClientLog::default();
    let (mut gold, mut cargo, mut points) = (
        p.start.gold,
        p.start.cargo.get(&p.good).copied().unwrap_or(0),
        p.start.skill_points,
    );
    let mut skills = caller.opts.skills.clone().into_iter();
    let mut last_final = Instant::now();
    let mut seen_wave = 0;
    let mut buy = true;
    while !progress.stop.load(Ordering::Acquire) {
        let wave = progress.wave.load(Ordering::Acquire);
        let skill = if wave > seen_wave {
            seen_wave = wave;
            // Out of skills: the wave still counts as answered.
            let next = skills.next();
            if next.is_none() {
                progress.wave_answered.lock().unwrap()[p.index] = wave;
            }
            next
        } else {
            None
        };
        let (rpc, payload, qty) = match &skill {
            Some((code, _)) => {
                let payload = json!({"character_id": p.character, "skill": code});
                ("learn_skill", payload, 0)
            }
            None => {
                buy = buy || cargo == 0;
                let want = rand::thread_rng().gen_range(1..=3);
                let qty = if buy { want } else { want.min(cargo) };
                let side = if buy { "buy" } else { "sell" };
                let payload = json!({"character_id": p.character, "good": p.good,
                                     "side": side, "quantity": qty});
                ("execute_trade", payload, qty)
            }
        };
        let payload = with_id(&mut caller, payload);
        let (outcome, attempts) = caller.call(rpc, &payload).await;
        let now = Instant::now();
        if !matches!(outcome, Final::Unresolved(_)) {
            let gap = now - last_final;
            if gap > log.max_gap {
                log.max_gap = gap;
                log.max_gap_end = now - progress.started;
            }
            last_final = now;
            progress.last_final.lock().unwrap()[p.index] = now;
            if skill.is_some() {
                progress.wave_answered.lock().unwrap()[p.index] = seen_wave;
            }
        }
        if let Final::Done(v) = &outcome {
            let (ans_gold, ans_cargo) = (v["gold"].as_i64().unwrap_or(i64::MIN), held(v, &p.good));
            let rid = format!(
                "request #{} {}, {attempts} attempt(s)",
                log.requests.len() + 1,
                payload["request_id"]
                    .as_str()
                    .unwrap_or("without request_id")
            );
            if let Some((code, cost)) = &skill {
                log.skills_acked.push(code.clone());
                log.skill_points_spent += cost;
                let ans_points = v["skill_points"].as_i64().unwrap_or(i64::MIN);
                if ans_gold != gold || ans_cargo != cargo || ans_points != points - cost {
                    log.chain_errors.push(format!(
                        "learn_skill {code} ({rid}): answered gold {ans_gold}, {} {ans_cargo}, \
                         skill points {ans_points}; expected {gold}, {cargo}, {}",
                        p.good,
                        points - cost
                    ));
                }
                points = ans_points;
            } else {
                let total = v["total"].as_i64().unwrap_or(0);
                let (dg, dc) = if buy { (-total, qty) } else { (total, -qty) };
                log.gold_delta += dg;
                *log.cargo_delta.entry(p.good.clone()).or_default() += dc;
                if ans_gold != gold + dg || ans_cargo != cargo + dc {
                    log.chain_errors.push(format!(
                        "{} {qty} ({rid}): answered gold {ans_gold}, {} {ans_cargo}; expected \
                         {} and {} from the previous answer",
                        if buy { "buy" } else { "sell" },
                        p.good,
                        gold + dg,
                        cargo + dc
                    ));
                }
                buy = !buy;
            }
            // Follow the server's word from here, so one bad answer is reported once.
            (gold, cargo) = (ans_gold, ans_cargo);
        } else if skill.is_none() {
            buy = !buy; // refused or unresolved: try the other side next
        }
        log.requests.push(RequestLog {
            rpc,
            payload,
            outcome,
            attempts,
        });
        let think = caller.opts.think.as_millis() as u64;
        let pause = rand::thread_rng().gen_range(think / 2..=think + think / 2);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    log.tally = caller.tally;
    log
}
