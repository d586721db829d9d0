//! The router: every message to an entity actor goes through [`Router::send`] (local owners
//! only) or [`Router::ask`] (any owner: a remote owner is reached over the peer link).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{ArbiterHandle, Handler, MailboxError, Message};
use tokio::sync::watch;

use super::channel::{Channel, Channels};
use super::entity::{Entity, Remote, RouteKey};
use super::forward::{self, Dispatch, ForwardError, Forwarder};
use super::placement::{Owner, Placement};
use super::registry::{AnyRegistry, Registry};
use crate::metrics::Metrics;
use crate::request::{self, Deadline, Failure, Faults, Ticket};

mod local;
mod retry;

pub use retry::NotRun;

/// The entity kinds a node runs; their `Entity::KIND`s.
pub const KINDS: [&str; 6] = [
    "character",
    "battle",
    "market",
    "leaderboard",
    "world_event",
    "world_sale",
];

/// How many times [`Router::ask`] follows a "not the owner" answer before giving up.
const MAX_ATTEMPTS: usize = 3;

/// How long past a request's deadline the owner waits for a started request's verdict (an
/// actor gives up before committing once the deadline passed). Forwarders wait longer
/// (`node::peer_handlers`), so the owner's verdict reaches them.
pub const VERDICT_GRACE: Duration = Duration::from_millis(300);

/// The deadline of a request whose caller named none.
pub const DEFAULT_REQUEST_BUDGET: Duration = Duration::from_secs(5);

/// Resolves a key to its owner and delivers messages to the owning actor.
pub struct Router {
    placement: RwLock<Arc<Placement>>,
    view: watch::Sender<u64>,
    registries: RwLock<HashMap<TypeId, Arc<dyn AnyRegistry>>>,
    dispatch: RwLock<HashMap<(String, String), Dispatch>>,
    /// Messages the node takes itself ([`Router::register_node_message`]), whoever owns the key.
    node_dispatch: RwLock<HashMap<(String, String), Dispatch>>,
    forwarder: RwLock<Option<Arc<dyn Forwarder>>>,
    arbiters: Vec<ArbiterHandle>,
    metrics: Arc<Metrics>,
    /// The deadline budget of requests sent with [`Router::ask`], in milliseconds.
    budget_ms: AtomicU64,
    faults: Arc<Faults>,
    /// False once this node's lease may have lapsed: it answers nothing from memory.
    serving: AtomicBool,
    channels: Channels,
}

impl Router {
    /// `arbiters` are the threads entity actors are spread over (none: the caller's arbiter).
    pub fn new(placement: Placement, arbiters: Vec<ArbiterHandle>, metrics: Arc<Metrics>) -> Self {
        // Every kind reports from the first scrape, before any actor of it exists.
        for kind in KINDS {
            metrics.active_actors(kind).set(0.0);
        }
        let (view, _) = watch::channel(placement.version());
        Router {
            placement: RwLock::new(Arc::new(placement)),
            view,
            registries: RwLock::new(HashMap::new()),
            dispatch: RwLock::new(HashMap::new()),
            node_dispatch: RwLock::new(HashMap::new()),
            forwarder: RwLock::new(None),
            arbiters,
            metrics,
            budget_ms: AtomicU64::new(DEFAULT_REQUEST_BUDGET.as_millis() as u64),
            faults: Arc::default(),
            serving: AtomicBool::new(true),
            channels: Channels::default(),
        }
    }

    /// Stops serving: this node can no longer prove its lease, so a peer may soon own its
    /// keys. Every request is refused ("not run") and nothing is activated until
    /// [`Router::reopen`].
    pub fn step_down(&self) {
        self.serving.store(false, Ordering::Release);
        self.close();
    }

    /// Whether this node serves requests (its lease holds).
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    fn check_serving(&self) -> Result<(), Failure> {
        match self.is_serving() {
            true => Ok(()),
            false => Err(Failure::not_run(
                "this node lost its lease and serves nothing",
            )),
        }
    }

    /// Test hooks: see [`Faults`].
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Sets the deadline budget of requests that name none (`request_timeout` in config).
    pub fn set_request_budget(&self, budget: Duration) {
        self.budget_ms
            .store(budget.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    /// A deadline one request budget from now.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(Duration::from_millis(
            self.budget_ms.load(Ordering::Relaxed),
        ))
    }

    /// Makes actors of kind `A` reachable; `factory` builds one for a key.
    pub fn register<A: Entity>(&self, factory: impl Fn(A::Key) -> A + Send + Sync + 'static) {
        let gauge = self.metrics.active_actors(A::KIND);
        let registry: Arc<dyn AnyRegistry> = Arc::new(Registry::<A>::new(
            Arc::new(factory),
            self.arbiters.clone(),
            gauge,
        ));
        self.registries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(TypeId::of::<A>(), registry);
    }

    /// Lets other nodes send `M` to actors of kind `A` owned here.
    pub fn register_remote<A, M>(&self)
    where
        A: Entity + Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Remote,
        M::Result: serde::Serialize + serde::de::DeserializeOwned + Send,
    {
        let key = (A::KIND.to_string(), M::NAME.to_string());
        self.dispatch
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, forward::dispatcher::<A, M>());
    }

    /// Serves `M` for kind `kind` with `handle(key bytes, message)` instead of an actor: for
    /// what a node takes on behalf of an entity that is not running yet (a handover).
    pub fn register_node_message<M, F>(&self, kind: &'static str, handle: F)
    where
        M: Remote,
        M::Result: serde::Serialize + serde::de::DeserializeOwned + Send,
        F: Fn(&[u8], M) -> M::Result + Send + Sync + 'static,
    {
        let key = (kind.to_string(), M::NAME.to_string());
        self.node_dispatch
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, forward::node_dispatcher::<M, F>(handle));
    }

    /// Sends `msg` once to whichever node owns `key` of kind `A` in this node's view, to its
    /// node message handler ([`Router::register_node_message`]), which takes it even if its
    /// own view does not yet make it the owner. Never retried: for offers the receiver may
    /// ignore (a handover falls back on the database).
    pub async fn offer<A: Entity, M>(
        self: &Arc<Self>,
        key: &A::Key,
        msg: M,
        deadline: Deadline,
    ) -> Result<M::Result, Failure>
    where
        M: Remote,
        M::Result: serde::Serialize + serde::de::DeserializeOwned + Send,
    {
        let body = forward::encode(&msg).map_err(|e| Failure::not_run(e.to_string()))?;
        let key = key.route_bytes();
        let answer = match self.placement().owner(A::KIND, &key) {
            Owner::Local => {
                let dispatch = lookup(&self.node_dispatch, A::KIND, M::NAME)
                    .ok_or_else(|| Failure::not_run(format!("no handler for {}", M::NAME)))?;
                dispatch(self.clone(), key, body, deadline).await
            }
            Owner::Remote(node) => {
                let forwarder = self
                    .forwarder
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let forwarder = forwarder.ok_or_else(|| Failure::not_run("no peer link"))?;
                let (kind, message) = (A::KIND.to_string(), M::NAME.to_string());
                let request = forward::Request {
                    node,
                    kind,
                    message,
                    key,
                    hop: 1,
                    deadline,
                    body,
                    request_id: request::trace_id(),
                };
                forwarder.forward(request).await
            }
            Owner::Nobody => return Err(Failure::not_run("no live member owns the entity")),
        };
        match answer {
            Ok(bytes) => forward::decode(&bytes).map_err(|e| Failure::may_have_run(e.to_string())),
            Err(ForwardError::Failed(f)) => Err(f),
            Err(e) => Err(Failure::not_run(e.to_string())),
        }
    }

    /// Serves requests on channel `name` from other nodes with `channel` (see
    /// [`super::channel`]).
    pub fn register_channel<C: Channel>(&self, name: &'static str, channel: Arc<C>) {
        self.channels.register(name, channel);
    }

    /// The service registered for channel `name`, if it is a `C`.
    pub fn channel<C: Channel>(&self, name: &str) -> Option<Arc<C>> {
        self.channels.get(name)
    }

    /// Serves a channel request from node `from`.
    pub async fn serve_channel(
        &self,
        from: String,
        name: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, Failure> {
        self.channels.serve(from, name, body).await
    }

    /// How this node reaches other nodes (set once the peer link is up).
    pub fn set_forwarder(&self, forwarder: Arc<dyn Forwarder>) {
        *self.forwarder.write().unwrap_or_else(|e| e.into_inner()) = Some(forwarder);
    }

    fn registry<A: Entity>(&self) -> Result<Arc<dyn AnyRegistry>, Failure> {
        let registries = self.registries.read().unwrap_or_else(|e| e.into_inner());
        registries
            .get(&TypeId::of::<A>())
            .cloned()
            .ok_or_else(|| Failure::not_run(format!("no actor kind {} is registered", A::KIND)))
    }

    pub fn placement(&self) -> Arc<Placement> {
        self.placement
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Watches the view version: changes whenever a new placement is installed.
    pub fn view_changes(&self) -> watch::Receiver<u64> {
        self.view.subscribe()
    }

    /// Installs a new view. Local actors whose key now belongs elsewhere are asked to stop
    /// (they flush and release their claim; the new owner activates from the database).
    /// Returns how many were asked.
    pub fn install(&self, placement: Placement) -> usize {
        let placement = Arc::new(placement);
        *self.placement.write().unwrap_or_else(|e| e.into_inner()) = placement.clone();
        self.view.send_replace(placement.version());
        let mut moved = 0;
        for r in self.all_registries() {
            let kind = r.kind();
            moved += r.stop_where(&|key| placement.owner(kind, key) != Owner::Local);
        }
        if moved > 0 {
            tracing::info!(
                moved,
                version = placement.version(),
                "handoff: stopping entities that moved"
            );
            self.metrics
                .counter("serai_handoffs_total", "reason", "view_change")
                .increment(moved as u64);
        }
        moved
    }

    /// Who owns `key` of kind `A` in the current view.
    pub fn owner<A: Entity>(&self, key: &A::Key) -> Owner {
        self.placement().owner(A::KIND, &key.route_bytes())
    }

    /// Delivers `msg` to the actor owning `key` if this node owns it, activating it on demand.
    pub async fn send<A, M>(&self, key: A::Key, msg: M) -> Result<M::Result, Failure>
    where
        A: Entity + Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match self.owner::<A>(&key) {
            Owner::Local => {
                self.send_local::<A, M>(key, msg, self.deadline(), None)
                    .await
            }
            Owner::Remote(node) => Err(Failure::not_run(format!("entity is owned by node {node}"))),
            Owner::Nobody => Err(Failure::not_run("no live member owns the entity")),
        }
    }

    /// Delivers `msg` to the local actor of `key`. Refused (*not run*) when the deadline has
    /// passed or the actor cannot take it. Once the message is in the actor's mailbox, no
    /// answer before the deadline *may have run* (actors check the deadline again when they
    /// start on it, see `Deadline::check`, so a late one is refused rather than run).
    ///
    /// An actor that stops without answering dropped the message unstarted: every handler
    /// answers, and state changes run as atomic responses (`ctx.wait`), which finish and answer
    /// before a stop takes effect; what a stopping actor drops is its mailbox. So a closed
    /// mailbox is *not run*. (A panicking handler takes its arbiter down; the node is then
    /// broken, not retrying.)
    pub(crate) async fn send_local<A, M>(
        &self,
        key: A::Key,
        msg: M,
        deadline: Deadline,
        ticket: Option<Ticket>,
    ) -> Result<M::Result, Failure>
    where
        A: Entity + Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        deadline.check()?;
        self.check_serving()?;
        let registry = self.registry::<A>()?;
        let registry = registry
            .as_any()
            .downcast_ref::<Registry<A>>()
            .ok_or_else(|| Failure::not_run(format!("no actor kind {}", A::KIND)))?;
        let addr = registry
            .get_or_activate(&key)
            .ok_or_else(|| Failure::not_run("node is shutting down"))?;
        let mut answer = Box::pin(addr.send(msg));
        let mailbox = |e: MailboxError| match e {
            MailboxError::Closed => {
                Failure::not_run("the actor stopped before it took the message")
            }
            MailboxError::Timeout => Failure::may_have_run("the actor did not answer"),
        };
        if let Ok(done) = tokio::time::timeout_at(deadline.instant(), &mut answer).await {
            return done.map_err(mailbox);
        }
        // Still queued, or running: the ticket says which, and a queued one never runs. A
        // running one gives up before its commit at the deadline (`request::within`): wait
        // a moment for that verdict.
        if ticket.is_some_and(|t| t.abandon()) {
            return Err(Failure::not_run(
                "the deadline passed while the request waited for its actor",
            ));
        }
        match tokio::time::timeout(VERDICT_GRACE, answer).await {
            Ok(done) => done.map_err(mailbox),
            Err(_) => Err(Failure::may_have_run(
                "no answer before the request's deadline",
            )),
        }
    }

    /// [`Router::ask_until`] with the node's default deadline.
    pub async fn ask<A, M>(&self, key: A::Key, msg: M) -> Result<M::Result, Failure>
    where
        A: Entity + Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Remote,
        M::Result: serde::Serialize + serde::de::DeserializeOwned + Send,
    {
        self.ask_until::<A, M>(key, msg, self.deadline()).await
    }

    /// Delivers `msg` to the owner of `key`, wherever it is: locally, or over the peer link,
    /// with `deadline` travelling along. An owner that no longer owns the key under its newer
    /// view says so (*not run*); the router then waits for its own view to change and tries
    /// again, a bounded number of times and never past the deadline. Nothing that may have
    /// run is ever sent again.
    pub async fn ask_until<A, M>(
        &self,
        key: A::Key,
        msg: M,
        deadline: Deadline,
    ) -> Result<M::Result, Failure>
    where
        A: Entity + Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Remote,
        M::Result: serde::Serialize + serde::de::DeserializeOwned + Send,
    {
        let mut msg = Some(msg);
        let mut body: Option<Vec<u8>> = None;
        let ticket_of = |m: &mut M| m.renew_ticket();
        let mut last = Failure::not_run("the owner could not be reached");
        for _ in 0..MAX_ATTEMPTS {
            deadline.check()?;
            let placement = self.placement();
            let node = match placement.owner(A::KIND, &key.route_bytes()) {
                Owner::Local => {
                    let mut m = match msg.take() {
                        Some(m) => m,
                        None => forward::decode::<M>(body.as_deref().unwrap_or_default())
                            .map_err(|e| Failure::not_run(e.to_string()))?,
                    };
                    let ticket = ticket_of(&mut m);
                    return self.send_local::<A, M>(key, m, deadline, ticket).await;
                }
                Owner::Nobody => return Err(Failure::not_run("no live member owns the entity")),
                Owner::Remote(node) => node,
            };
            let forwarder = self
                .forwarder
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let Some(forwarder) = forwarder else {
                return Err(Failure::not_run(format!("entity is owned by node {node}")));
            };
            if body.is_none() {
                let m = msg
                    .take()
                    .ok_or_else(|| Failure::not_run("message already sent"))?;
                body = Some(forward::encode(&m).map_err(|e| Failure::not_run(e.to_string()))?);
            }
            let started = std::time::Instant::now();
            let request = forward::Request {
                node: node.clone(),
                kind: A::KIND.to_string(),
                message: M::NAME.to_string(),
                key: key.route_bytes(),
                hop: 1,
                deadline,
                body: body.clone().unwrap_or_default(),
                request_id: request::trace_id(),
            };
            let answer = forwarder.forward(request).await;
            self.metrics
                .counter("serai_forwarded_total", "kind", A::KIND)
                .increment(1);
            self.metrics
                .forward_latency
                .record(started.elapsed().as_secs_f64());
            let wait = match answer {
                // It ran: an answer that cannot be read is still an answer we cannot give.
                Ok(bytes) => {
                    return forward::decode::<M::Result>(&bytes).map_err(|e| {
                        Failure::may_have_run(format!("the owner's reply is unreadable: {e}"))
                    })
                }
                Err(ForwardError::Failed(failure)) => {
                    return Err(failure.context(&format!("node {node}")))
                }
                // View versions are per node and not comparable: the answering node is still
                // catching up (or we are). Give both about one heartbeat, then retry.
                Err(ForwardError::NotOwner { .. }) => Duration::from_millis(300),
                // Never delivered; the owner may have died: give membership a moment.
                Err(ForwardError::Unreachable(why)) => {
                    last = Failure::not_run(format!("node {node} unreachable: {why}"));
                    Duration::from_millis(500)
                }
            };
            let wait = wait.min(deadline.remaining().unwrap_or_default());
            self.await_view_after(placement.version(), wait).await;
        }
        Err(last)
    }

    /// Waits until the installed view is newer than `version`, at most `limit`.
    async fn await_view_after(&self, version: u64, limit: Duration) {
        let mut rx = self.view_changes();
        let _ = tokio::time::timeout(limit, rx.wait_for(|v| *v > version)).await;
    }

    /// Serves a message forwarded by another node (see [`Router::register_remote`]). A
    /// request whose deadline passed while it travelled or waited is refused unrun.
    pub async fn serve_forward(
        self: Arc<Self>,
        request: forward::Served,
    ) -> Result<Vec<u8>, ForwardError> {
        if request.hop as usize > MAX_ATTEMPTS {
            return Err(ForwardError::Failed(Failure::not_run("hop limit reached")));
        }
        request.deadline.check().map_err(ForwardError::Failed)?;
        self.check_serving().map_err(ForwardError::Failed)?;
        if let Some(dispatch) = lookup(&self.node_dispatch, &request.kind, &request.message) {
            return dispatch(self.clone(), request.key, request.body, request.deadline).await;
        }
        let placement = self.placement();
        if placement.owner(&request.kind, &request.key) != Owner::Local {
            return Err(ForwardError::NotOwner {
                view_version: placement.version(),
            });
        }
        let Some(dispatch) = lookup(&self.dispatch, &request.kind, &request.message) else {
            return Err(ForwardError::Failed(Failure::not_run(format!(
                "unknown message {}/{}",
                request.kind, request.message
            ))));
        };
        let answer = dispatch(self.clone(), request.key, request.body, request.deadline).await;
        match answer {
            Ok(_) if Faults::take(&self.faults.garble_reply) => Ok(vec![0xff; 3]),
            other => other,
        }
    }
}

/// The handler of `message` for `kind` in a dispatch table.
fn lookup(
    table: &RwLock<HashMap<(String, String), Dispatch>>,
    kind: &str,
    message: &str,
) -> Option<Dispatch> {
    let table = table.read().unwrap_or_else(|e| e.into_inner());
    table.get(&(kind.to_string(), message.to_string())).cloned()
}
