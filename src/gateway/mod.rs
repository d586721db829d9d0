//! The client API on the client address: what Nakama SDKs (nakama-js, Unity, Unreal) talk to.
//!
//! - `POST /v2/account/authenticate/device`, `…/custom` (Basic server key), `POST
//!   /v2/account/session/refresh`, `GET /v2/account` (bearer token) — [`http`].
//! - `POST|GET /v2/rpc/{id}` with a bearer token or the HTTP key — [`http`], dispatching to the
//!   [`RpcRegistry`] (ids case-insensitive; `echo` is built in).
//! - `GET /ws` — the realtime socket, one actix actor per connection — [`socket`].
//! - [`Presence`]: user id → live sockets on this node, for pushes ([`Presence::notify`]).
//! - `GET`/`DELETE /v2/notification`: stored notifications — [`notifications`], written by
//!   the [`NotificationStore`] queue or in the transaction of their cause.
//! - CORS on every answer and preflights, as Nakama — [`cors`] (wrapped around the client
//!   app where the node builds it).
//! - Errors: `{"error","message","code"}` with grpc-gateway's HTTP statuses — [`error`].
//!
//! - Cluster-wide rate limits per user and RPC group, checked before a handler runs —
//!   [`rate_limit`].
//! - Request ids (`X-Request-Id`) and the access log (`serai::access`) — [`access`].
//!
//! Mount everything with [`configure`]:
//! `App::new().configure(gateway::configure(state.clone()))`.

pub mod access;
pub mod account_rules;
pub mod accounts_http;
pub mod auth;
pub mod cors;
pub mod error;
pub mod http;
pub mod listener;
pub mod notification_store;
pub mod notifications;
pub mod notifier;
pub mod passwords;
pub mod presence;
pub mod rate_limit;
pub mod revocation;
pub mod rpc;
pub mod rpc_payload;
pub mod socket;
pub mod upgrade;
pub mod ws_io;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use metrics::{Counter, Gauge};

pub use auth::{SessionUser, TokenIssuer, TokenKind};
pub use error::{ApiError, GrpcCode};
pub use notification_store::NotificationStore;
pub use notifier::Notifier;
pub use passwords::Passwords;
pub use presence::Presence;
pub use rate_limit::RateLimiter;
pub use revocation::Revocations;
pub use rpc::{RpcContext, RpcError, RpcHandler, RpcRegistry};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::persistence::Db;
pub use crate::protocol::client::Notification;

/// Limits of the realtime socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketSettings {
    /// Largest inbound message (frame, or continuation frames together), in bytes.
    pub max_message_size: usize,
    /// How often the server sends a WebSocket ping frame.
    pub ping_interval: Duration,
    /// A socket silent (no frame of any kind, pongs included) this long is closed.
    pub read_deadline: Duration,
    /// Outbound queue bound in messages; a client that lets it fill is disconnected.
    pub max_queued_messages: usize,
    /// Outbound queue bound in bytes.
    pub max_queued_bytes: usize,
    /// A single outbound frame that cannot be handed to the connection within this time
    /// means the client does not read: it is disconnected.
    pub write_timeout: Duration,
    /// RPCs running at once on one socket; more are answered with an error.
    pub max_inflight_rpcs: usize,
}

impl SocketSettings {
    pub fn from_config(config: &Config) -> SocketSettings {
        SocketSettings {
            max_message_size: config.max_message_size,
            ping_interval: Duration::from_secs(15),
            read_deadline: Duration::from_secs(25),
            max_queued_messages: 256,
            max_queued_bytes: 1 << 20,
            write_timeout: Duration::from_secs(10),
            max_inflight_rpcs: 64,
        }
    }
}

/// Limits of the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Largest body of authenticate and refresh requests.
    pub max_auth_body: usize,
    /// Largest body of an RPC request (Nakama's default `max_request_size_bytes`).
    pub max_rpc_body: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_auth_body: 16 * 1024,
            max_rpc_body: 256 * 1024,
        }
    }
}

/// The gateway's figures, registered once.
#[derive(Clone)]
pub(crate) struct GatewayMetrics {
    pub sockets: Gauge,
    pub slow_disconnects: Counter,
    pub auth_created: Counter,
    pub auth_existing: Counter,
    metrics: Arc<Metrics>,
}

impl GatewayMetrics {
    fn new(m: &Arc<Metrics>, presence: &Presence) -> GatewayMetrics {
        // Users online: read off the presence registry at each scrape (sockets come and go
        // on every arbiter; the registry is the one place that knows the count).
        let (online, users) = (m.gauge("serai_sessions_online"), presence.clone());
        m.on_render(move || online.set(users.online_users() as f64));
        GatewayMetrics {
            sockets: m.active_actors("socket"),
            slow_disconnects: m.counter("serai_client_disconnects_total", "reason", "slow_reader"),
            auth_created: m.counter("serai_client_auth_total", "account", "created"),
            auth_existing: m.counter("serai_client_auth_total", "account", "existing"),
            metrics: m.clone(),
        }
    }

    /// One successful authentication, of a new or an existing account.
    pub(crate) fn auth_done(&self, created: bool) {
        if created {
            self.auth_created.increment(1);
        } else {
            self.auth_existing.increment(1);
        }
    }

    /// One RPC of `id` over `transport` (`http`, `socket`) ended with `result`.
    pub(crate) fn rpc_done(
        &self,
        id: &str,
        transport: &'static str,
        started: Instant,
        result: &Result<String, RpcError>,
    ) {
        let outcome = result.as_ref().map_or_else(RpcError::outcome, |_| "ok");
        let id = id.to_lowercase();
        self.metrics
            .rpc(&id, transport, outcome, started.elapsed().as_secs_f64());
    }
}

/// Everything the client API needs; cheap to clone (a handful of `Arc`s).
#[derive(Clone)]
pub struct GatewayState {
    pub config: Arc<Config>,
    pub db: Db,
    pub rpc: Arc<RpcRegistry>,
    pub presence: Presence,
    /// Built from `config` by [`GatewayState::new`]; refuses the tokens `revocations` holds.
    pub tokens: Arc<TokenIssuer>,
    /// Revoked tokens: this node's alone until [`GatewayState::with_revocations`] hands it
    /// the node's (joined to the cluster).
    pub revocations: Revocations,
    /// Password hashing, bounded and off the executor threads.
    pub passwords: Passwords,
    pub socket: SocketSettings,
    pub http: HttpSettings,
    pub(crate) metrics: GatewayMetrics,
}

impl std::fmt::Debug for GatewayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayState")
            .field("rpc", &self.rpc)
            .field("presence", &self.presence)
            .field("socket", &self.socket)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl GatewayState {
    /// Socket limits come from `config.max_message_size` plus Nakama's timings (ping every
    /// 15 s, 25 s read deadline); adjust the pub fields before calling [`configure`] if needed.
    pub fn new(
        config: Arc<Config>,
        db: Db,
        rpc: Arc<RpcRegistry>,
        presence: Presence,
    ) -> GatewayState {
        let revocations = Revocations::new(db.clone());
        let tokens = Arc::new(TokenIssuer::with_revoked(&config, revocations.set()));
        let socket = SocketSettings::from_config(&config);
        let metrics = GatewayMetrics::new(db.metrics(), &presence);
        GatewayState {
            config,
            db,
            rpc,
            presence,
            tokens,
            revocations,
            passwords: Passwords::for_machine(),
            socket,
            http: HttpSettings::default(),
            metrics,
        }
    }
}

impl GatewayState {
    /// Uses the node's revocations (loaded, polled and broadcast by the node) instead of
    /// this state's own.
    pub fn with_revocations(mut self, revocations: Revocations) -> GatewayState {
        self.tokens = Arc::new(TokenIssuer::with_revoked(&self.config, revocations.set()));
        self.revocations = revocations;
        self
    }
}

/// Mounts every client route (and JSON error handlers for malformed input) on an app.
pub fn configure(state: GatewayState) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        notifications::mount(cfg);
        http::mount(cfg, state.clone())
    }
}
