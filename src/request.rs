//! What every request carries across the cluster and what every failure tells its caller
//! (DESIGN §3, "Requests"). A leaf: it imports nothing of the crate, and every layer from the
//! database to the wire uses it, so the fact "did it run?" is never re-mapped on the way.
//!
//! - [`Failure`]: a request that produced no answer either was *not run* (refused before it
//!   could run: safe to retry) or *may have run* (anything after delivery: never retried by the
//!   server; the client repeats it with the same `request_id`). *Done* is the answer itself.
//! - [`Deadline`]: an absolute wall-clock instant that travels with a request over every hop;
//!   the owner refuses (*not run*) a request whose deadline passed before it started, so
//!   nothing runs after its caller gave up.
//! - [`RequestKey`]: the client's idempotency key, (user, `request_id`) plus a fingerprint of
//!   the request, so a repeat returns the stored answer and a reuse for another request is
//!   refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Why a request has no answer, in the only terms a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum Failure {
    /// Refused before it could run (not the owner, link down before sending, draining, busy,
    /// deadline already passed, database unreachable before the write): nothing changed.
    #[error("not run: {0}")]
    NotRun(String),
    /// It may have run (timeout after delivery, link lost after sending, a reply that could
    /// not be decoded or delivered, a panic, a commit whose result is unknown).
    #[error("outcome unknown: {0}")]
    MayHaveRun(String),
}

impl Failure {
    pub fn not_run(why: impl Into<String>) -> Failure {
        Failure::NotRun(why.into())
    }

    pub fn may_have_run(why: impl Into<String>) -> Failure {
        Failure::MayHaveRun(why.into())
    }

    /// Whether the server itself may send the request again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::NotRun(_))
    }

    /// The failure seen by a caller one step further away: a *not run* stays *not run*, a
    /// *may have run* stays so; only the explanation grows.
    pub fn context(self, step: &str) -> Failure {
        match self {
            Failure::NotRun(m) => Failure::NotRun(format!("{step}: {m}")),
            Failure::MayHaveRun(m) => Failure::MayHaveRun(format!("{step}: {m}")),
        }
    }
}

/// An absolute deadline, as milliseconds since the Unix epoch (wall clock), so that it keeps
/// its meaning on another node and across a stalled process: a request queued in a socket
/// while its owner was stopped is recognised as expired when the owner resumes. Nodes are
/// assumed to agree on the time within a few milliseconds (NTP), far below request deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Deadline {
    unix_ms: u64,
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            unix_ms: now_unix_ms().saturating_add(budget.as_millis() as u64),
        }
    }

    pub fn from_unix_ms(unix_ms: u64) -> Deadline {
        Deadline { unix_ms }
    }

    pub fn unix_ms(&self) -> u64 {
        self.unix_ms
    }

    /// Time left, or `None` once the deadline has passed.
    pub fn remaining(&self) -> Option<Duration> {
        let now = now_unix_ms();
        (self.unix_ms > now).then(|| Duration::from_millis(self.unix_ms - now))
    }

    pub fn passed(&self) -> bool {
        self.remaining().is_none()
    }

    /// The deadline on this process's monotonic clock, for timers.
    pub fn instant(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.remaining().unwrap_or_default()
    }

    /// *Not run* when the deadline has passed: the check every owner makes before it starts.
    pub fn check(&self) -> Result<(), Failure> {
        match self.passed() {
            true => Err(Failure::not_run(
                "the request's deadline passed before it ran",
            )),
            false => Ok(()),
        }
    }

    /// Runs `work` until the deadline; past it the work is abandoned and the caller is told
    /// it may have run (it was started).
    pub async fn run<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout_at(self.instant(), work).await {
            Ok(result) => result,
            Err(_) => Err(Failure::may_have_run(
                "no answer before the request's deadline",
            )),
        }
    }
}

/// Who decides the fate of a request queued at its owner when its deadline passes: the owner
/// starting it, or the caller abandoning it. Whichever comes first wins, so a caller that gave
/// up knows for certain the request will never run (*not run*), and one that lost the race
/// knows it started (*may have run*). Shared by the clones of one request; never on the wire.
#[derive(Debug, Clone, Default)]
pub struct Ticket(std::sync::Arc<std::sync::atomic::AtomicU8>);

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

impl Ticket {
    fn settle(&self, to: u8) -> bool {
        use std::sync::atomic::Ordering;
        match self
            .0
            .compare_exchange(QUEUED, to, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == to,
        }
    }

    /// The owner starts the request: false if its caller abandoned it first.
    pub fn start(&self) -> bool {
        self.settle(STARTED)
    }

    /// The caller gives up on it: false if the owner started it first.
    pub fn abandon(&self) -> bool {
        self.settle(ABANDONED)
    }
}

/// Tickets say nothing about what a request is.
impl PartialEq for Ticket {
    fn eq(&self, _: &Ticket) -> bool {
        true
    }
}

impl Eq for Ticket {}

tokio::task_local! {
    static CURRENT: Deadline;
}

/// Runs `work` with `deadline` as the current request's deadline: the database layer reads it
/// (see [`current_deadline`]) to give up before a commit it could not finish in time, so an
/// outage is answered "not run" instead of running past the caller's patience.
pub async fn within<F: std::future::Future>(deadline: Deadline, work: F) -> F::Output {
    CURRENT.scope(deadline, work).await
}

/// The deadline of the request being served, if the caller set one with [`within`].
pub fn current_deadline() -> Option<Deadline> {
    CURRENT.try_with(|d| *d).ok()
}

tokio::task_local! {
    static TRACE: std::sync::Arc<str>;
}

/// Runs `work` as the client request `id` (its `X-Request-Id`, or one made up for it): every
/// log line it writes is inside a `request` span naming the id, and every forward it sends to
/// another node carries the id (see [`trace_id`]), so the owner's lines name it too. Not to be
/// confused with the client's idempotency `request_id` ([`RequestKey`]).
pub async fn traced<F: std::future::Future>(id: std::sync::Arc<str>, work: F) -> F::Output {
    use tracing::Instrument;
    let span = tracing::info_span!("request", request_id = %id);
    TRACE.scope(id, work.instrument(span)).await
}

/// The id of the client request being served, if a caller set one with [`traced`].
pub fn trace_id() -> Option<std::sync::Arc<str>> {
    TRACE.try_with(|id| id.clone()).ok()
}

/// A fresh request id, for requests that bring none.
pub fn new_trace_id() -> std::sync::Arc<str> {
    uuid::Uuid::new_v4().to_string().into()
}

/// The shortest and longest `request_id` a client may send.
pub const REQUEST_ID_LEN: std::ops::RangeInclusive<usize> = 8..=64;

/// Checks a client's `request_id`: 8 to 64 characters of `[A-Za-z0-9_-]`.
pub fn validate_request_id(id: &str) -> Result<(), String> {
    if !REQUEST_ID_LEN.contains(&id.len()) {
        return Err(format!(
            "request_id must be {} to {} characters long",
            REQUEST_ID_LEN.start(),
            REQUEST_ID_LEN.end()
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("request_id may contain only A-Z, a-z, 0-9, '_' and '-'".into());
    }
    Ok(())
}

/// A client's idempotency key with the fingerprint of the request it named.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestKey {
    pub user_id: Uuid,
    pub request_id: String,
    /// Hex SHA-256 of the RPC id and the payload without its `request_id` (see
    /// [`fingerprint`]): a repeat must match it, else it is another request.
    pub fingerprint: String,
}

/// The fingerprint of a request: its RPC id and its JSON payload with `request_id` taken out,
/// keys sorted (serde_json's map is ordered), so that whitespace and key order do not matter.
pub fn fingerprint(rpc: &str, payload: &serde_json::Value) -> String {
    let mut payload = payload.clone();
    if let Some(map) = payload.as_object_mut() {
        map.remove("request_id");
    }
    let mut hash = Sha256::new();
    hash.update(rpc.as_bytes());
    hash.update([0]);
    hash.update(payload.to_string().as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of an RPC call: `None` when the payload has no `request_id`; an error (the request
/// is refused, nothing runs) when it has one that is not a valid id.
pub fn request_key(
    user_id: Uuid,
    rpc: &str,
    payload: &serde_json::Value,
) -> Result<Option<RequestKey>, String> {
    let id = match payload.get("request_id") {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err("request_id must be a string".into()),
    };
    validate_request_id(id)?;
    Ok(Some(RequestKey {
        user_id,
        request_id: id.clone(),
        fingerprint: fingerprint(rpc, payload),
    }))
}

/// Answers an actor stored under idempotency keys, kept in memory for repeats that reach the
/// same actor (the database has them all; this spares the lookup). Bounded: the oldest go.
#[derive(Debug, Default)]
pub struct Answers {
    by_id: std::collections::HashMap<String, (String, String)>,
    order: std::collections::VecDeque<String>,
}

/// How many answers an actor keeps in memory.
const ANSWERS_KEPT: usize = 64;

/// A repeat found in [`Answers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The same request: its stored answer (JSON text).
    Same(String),
    /// The same `request_id` for another request.
    Conflict,
}

impl Answers {
    /// Remembers `answer` (JSON text) under `key`.
    pub fn remember(&mut self, key: &RequestKey, answer: String) {
        let entry = (key.fingerprint.clone(), answer);
        if self.by_id.insert(key.request_id.clone(), entry).is_none() {
            self.order.push_back(key.request_id.clone());
        }
        while self.order.len() > ANSWERS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }

    /// The stored answer for a repeat of `key`, if this actor stored one.
    pub fn replay(&self, key: &RequestKey) -> Option<Replay> {
        let (fingerprint, answer) = self.by_id.get(&key.request_id)?;
        Some(match *fingerprint == key.fingerprint {
            true => Replay::Same(answer.clone()),
            false => Replay::Conflict,
        })
    }
}

/// Faults a test injects into a running node to reach failure points that real faults hit
/// only by timing (a commit whose answer is lost, a reply that cannot be read). Each counter
/// is the number of next occurrences to spoil; all are zero in production.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next N commits succeed but report that their outcome is unknown.
    pub commit_unknown: std::sync::atomic::AtomicU32,
    /// The next N forwarded replies reach their caller as unreadable bytes.
    pub garble_reply: std::sync::atomic::AtomicU32,
}

impl Faults {
    /// Takes one occurrence of `fault`, if any is armed.
    pub fn take(fault: &std::sync::atomic::AtomicU32) -> bool {
        use std::sync::atomic::Ordering;
        fault
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Who is asking: a player (a session checks that they own the character; an authoritative
/// leaderboard refuses them) or the server itself (`http_key` RPCs, the game's own writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Caller {
    User(Uuid),
    Server,
}

/// One request to an entity: who asks, until when, and under which idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub caller: Caller,
    /// The entity refuses (*not run*) a request it reaches after this.
    pub deadline: Deadline,
    /// The client's `request_id` (state-changing requests): a repeat returns the stored
    /// answer.
    pub key: Option<RequestKey>,
    /// Taken by the entity when it starts on the request (see [`Ticket`]); per node, never
    /// on the wire.
    #[serde(skip)]
    pub ticket: Ticket,
}

impl Call {
    /// A call by the server itself, without an idempotency key.
    pub fn server(deadline: Deadline) -> Call {
        Call {
            caller: Caller::Server,
            deadline,
            key: None,
            ticket: Ticket::default(),
        }
    }

    /// Whether the request may start now: before its deadline, and not abandoned by its
    /// caller. Takes the ticket: from here on the caller hears that it may have run.
    pub fn start(&self) -> Result<(), Failure> {
        self.deadline.check()?;
        match self.ticket.start() {
            true => Ok(()),
            false => Err(Failure::not_run("the caller gave up before it started")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_ids_are_checked() {
        assert!(validate_request_id("abcd-123_X").is_ok());
        assert!(validate_request_id(&"a".repeat(64)).is_ok());
        assert!(validate_request_id("short").is_err());
        assert!(validate_request_id(&"a".repeat(65)).is_err());
        assert!(validate_request_id("has space1").is_err());
        assert!(validate_request_id("ünïcödé-id").is_err());
    }

    #[test]
    fn fingerprint_ignores_request_id_order_and_spacing() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"good":"timber","quantity":2,"request_id":"r-00000001"}"#)
                .unwrap();
        let b: serde_json::Value = serde_json::from_str(
            r#"{ "request_id": "r-00000002", "quantity": 2, "good": "timber" }"#,
        )
        .unwrap();
        assert_eq!(
            fingerprint("execute_trade", &a),
            fingerprint("execute_trade", &b)
        );
        assert_ne!(
            fingerprint("execute_trade", &a),
            fingerprint("hire_crew", &a)
        );
        let c = json!({"good": "timber", "quantity": 3});
        assert_ne!(
            fingerprint("execute_trade", &a),
            fingerprint("execute_trade", &c)
        );
    }

    #[test]
    fn request_key_from_payload() {
        let user = Uuid::new_v4();
        assert_eq!(request_key(user, "x", &json!({"a": 1})), Ok(None));
        assert_eq!(
            request_key(user, "x", &json!({"request_id": null})),
            Ok(None)
        );
        assert!(request_key(user, "x", &json!({"request_id": 12345678})).is_err());
        assert!(request_key(user, "x", &json!({"request_id": "bad id!!"})).is_err());
        let key = request_key(user, "x", &json!({"request_id": "good-id-1"}))
            .unwrap()
            .unwrap();
        assert_eq!((key.user_id, key.request_id.as_str()), (user, "good-id-1"));
    }

    #[test]
    fn deadlines() {
        let d = Deadline::after(Duration::from_secs(5));
        assert!(!d.passed());
        assert!(d.remaining().unwrap() <= Duration::from_secs(5));
        assert!(d.check().is_ok());
        let past = Deadline::from_unix_ms(d.unix_ms() - 10_000);
        assert!(past.passed());
        assert!(matches!(past.check(), Err(Failure::NotRun(_))));
    }

    #[tokio::test]
    async fn the_current_deadline_is_scoped() {
        assert_eq!(current_deadline(), None);
        let d = Deadline::after(Duration::from_secs(3));
        assert_eq!(within(d, async { current_deadline() }).await, Some(d));
        assert_eq!(current_deadline(), None);
    }

    #[tokio::test]
    async fn work_past_its_deadline_may_have_run() {
        let d = Deadline::after(Duration::from_millis(20));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Failure>(())
        };
        assert!(matches!(d.run(slow).await, Err(Failure::MayHaveRun(_))));
        let fast = async { Ok::<_, Failure>(7) };
        assert_eq!(
            Deadline::after(Duration::from_secs(1)).run(fast).await,
            Ok(7)
        );
    }

    #[test]
    fn answers_replay_and_stay_bounded() {
        let user = Uuid::new_v4();
        let key = |id: &str, fp: &str| RequestKey {
            user_id: user,
            request_id: id.into(),
            fingerprint: fp.into(),
        };
        let mut answers = Answers::default();
        answers.remember(&key("req-0000", "a"), "{\"gold\":1}".into());
        assert_eq!(
            answers.replay(&key("req-0000", "a")),
            Some(Replay::Same("{\"gold\":1}".into()))
        );
        assert_eq!(
            answers.replay(&key("req-0000", "b")),
            Some(Replay::Conflict)
        );
        assert_eq!(answers.replay(&key("req-0001", "a")), None);
        for i in 0..200 {
            answers.remember(&key(&format!("req-{i:04}x"), "a"), String::new());
        }
        assert_eq!(answers.replay(&key("req-0000", "a")), None);
        assert!(answers.by_id.len() <= ANSWERS_KEPT && answers.order.len() <= ANSWERS_KEPT);
    }

    #[test]
    fn a_ticket_is_started_or_abandoned_once() {
        let t = Ticket::default();
        let shared = t.clone();
        assert!(t.abandon());
        assert!(!shared.start(), "an abandoned request never starts");
        assert!(t.abandon(), "abandoning twice is still abandoned");
        let t = Ticket::default();
        assert!(t.start());
        assert!(!t.clone().abandon(), "a started request may have run");
        assert!(t.start());
    }

    #[test]
    fn context_keeps_the_kind() {
        assert!(matches!(
            Failure::not_run("x").context("hop"),
            Failure::NotRun(m) if m == "hop: x"
        ));
        assert!(matches!(
            Failure::may_have_run("x").context("hop"),
            Failure::MayHaveRun(_)
        ));
    }
}
