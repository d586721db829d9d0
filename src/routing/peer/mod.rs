//! The peer link: authenticated, multiplexed request/response over TCP between nodes.
//!
//! - [`PeerServer`] listens on the node's peer address. Each connection first runs the
//!   handshake (both sides prove they know the cluster secret, the secret never crosses the
//!   wire, both agree on the newest version both speak, between [`MIN_PROTOCOL_VERSION`] and
//!   [`PROTOCOL_VERSION`]); then every request runs its handler
//!   concurrently (bounded per link) and answers go back through one writer task.
//! - [`Peers`] is the client side, one per node: one lazily opened, multiplexed connection per
//!   peer, correlation ids, a timeout per request, and capped exponential backoff after a failed
//!   connect so a dead peer is not hammered (requests fail fast meanwhile).
//!
//! A peer that sends a frame over the cap, garbage, or fails the handshake loses its link; the
//! node and its other links carry on. The wire types are in [`crate::protocol::peer`].
//!
//! Handshake (`handshake.rs`):
//! ```text
//! client → Hello     { version (the newest it speaks), node_id, client_nonce }
//! server → Challenge { version (the one agreed), node_id, server_nonce,
//!                      server_mac = HMAC-SHA256(secret, "serai-server" ‖ client_nonce ‖ server_nonce ‖ ids) }
//! client → Proof     { client_mac = HMAC-SHA256(secret, "serai-client" ‖ server_nonce ‖ client_nonce ‖ ids) }
//! server → Ready
//! ```
//! Either side answers a refusal with `Close { reason }` and drops the socket.
//!
//! Warnings about one peer (failed dials, closed links, refused handshakes) are rate-limited
//! per site and peer by [`crate::quiet`], so a dead peer does not flood the log.

mod client;
mod frame;
mod handshake;
mod server;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use metrics::Counter;

use crate::metrics::Metrics;

pub use crate::protocol::peer::{
    PeerRequest, PeerResponse, RemoteError, MAX_FRAME, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
pub use client::Peers;
pub use server::PeerServer;

/// The client half of the handshake on a raw stream, for tests that then speak frames by hand.
pub use handshake::client as client_handshake;

/// Serves one request from an authenticated peer: `(peer node id, request) → response`.
pub type PeerHandler =
    Arc<dyn Fn(String, PeerRequest) -> BoxFuture<'static, PeerResponse> + Send + Sync>;

/// Wraps an async closure as a [`PeerHandler`].
pub fn handler<F, Fut>(f: F) -> PeerHandler
where
    F: Fn(String, PeerRequest) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = PeerResponse> + Send + 'static,
{
    Arc::new(move |peer, req| Box::pin(f(peer, req)))
}

/// How a node's peer link behaves; the same for its server and its client side.
#[derive(Clone)]
pub struct PeerSettings {
    /// This node's id, sent in the handshake.
    pub node_id: String,
    /// The cluster secret both sides must know; never sent.
    pub secret: String,
    /// Largest frame body accepted or sent, in bytes.
    pub max_frame: usize,
    /// How long a request waits for its answer.
    pub request_timeout: Duration,
    /// Bound on connecting plus the whole handshake.
    pub handshake_timeout: Duration,
    /// First delay after a failed connect; doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Requests one link serves at once; further requests wait (backpressure on the socket).
    pub max_in_flight: usize,
    /// The newest version this side speaks; only tests set anything but [`PROTOCOL_VERSION`].
    pub protocol_version: u16,
    /// The oldest version this side speaks; only tests set anything but
    /// [`MIN_PROTOCOL_VERSION`].
    pub min_protocol_version: u16,
    /// Where link figures are counted (`serai_peer_*`); none by default.
    pub metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for PeerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSettings")
            .field("node_id", &self.node_id)
            .field("secret", &"<redacted>")
            .field("max_frame", &self.max_frame)
            .field("request_timeout", &self.request_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("max_in_flight", &self.max_in_flight)
            .field("protocol_version", &self.protocol_version)
            .field("min_protocol_version", &self.min_protocol_version)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl PeerSettings {
    /// Production defaults: 1 MiB frames, 5 s requests and handshakes, reconnect backoff
    /// 50 ms doubling to 1 s (a dead peer is dialled at most about once a second), 1024 requests
    /// in flight per link.
    pub fn new(node_id: impl Into<String>, secret: impl Into<String>) -> PeerSettings {
        PeerSettings {
            node_id: node_id.into(),
            secret: secret.into(),
            max_frame: MAX_FRAME,
            request_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(1),
            max_in_flight: 1024,
            protocol_version: PROTOCOL_VERSION,
            min_protocol_version: MIN_PROTOCOL_VERSION,
            metrics: None,
        }
    }

    /// Whether this side speaks protocol `version`.
    pub fn speaks(&self, version: u16) -> bool {
        (self.min_protocol_version..=self.protocol_version).contains(&version)
    }

    /// From a node's configuration (`node_id`, `cluster_secret`).
    pub fn from_config(config: &crate::config::Config) -> PeerSettings {
        PeerSettings::new(config.node_id.clone(), config.cluster_secret.clone())
    }

    /// Short timeouts and backoff for tests; node id `test-node`, a fixed secret.
    pub fn for_test() -> PeerSettings {
        PeerSettings {
            request_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_millis(200),
            ..PeerSettings::new("test-node", "test-cluster-secret")
        }
    }

    /// The same settings under another node id.
    pub fn with_node_id(mut self, node_id: impl Into<String>) -> PeerSettings {
        self.node_id = node_id.into();
        self
    }

    /// Counts link events in `metrics`: `serai_peer_requests_total{outcome}`,
    /// `serai_peer_dials_total{outcome}`, `serai_peer_inbound_links_total{outcome}` and
    /// `serai_peer_links_dropped_total{reason}`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> PeerSettings {
        self.metrics = Some(metrics);
        self
    }
}

/// Why a request to a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// No TCP connection could be made (refused, unreachable, bad address, link cut).
    #[error("cannot connect to peer: {0}")]
    Connect(String),
    /// The handshake failed: wrong secret, version mismatch, another node at that address …
    #[error("peer handshake failed: {0}")]
    Handshake(String),
    /// The last connect failed; no new attempt before the backoff delay passes.
    #[error("peer unreachable, next attempt in {retry_in:?}")]
    Backoff { retry_in: Duration },
    /// No answer within the request timeout.
    #[error("peer request timed out")]
    Timeout,
    /// The link closed before the answer arrived (the request may or may not have run).
    #[error("peer link closed")]
    Closed,
    /// The request does not fit in one frame.
    #[error("request exceeds the peer frame cap")]
    FrameTooLarge,
    /// The peer answered with an error.
    #[error("peer error: {0}")]
    Remote(RemoteError),
}

impl PeerError {
    /// True when the request certainly never reached the peer's handler, so sending it again
    /// (elsewhere or later) cannot run it twice.
    pub fn not_delivered(&self) -> bool {
        matches!(
            self,
            PeerError::Connect(_)
                | PeerError::Handshake(_)
                | PeerError::Backoff { .. }
                | PeerError::FrameTooLarge
        )
    }

    /// True when the peer looks down or unreachable (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            PeerError::Connect(_)
                | PeerError::Handshake(_)
                | PeerError::Backoff { .. }
                | PeerError::Timeout
                | PeerError::Closed
        )
    }
}

/// The link's counters, registered once; all no-ops without a [`Metrics`].
#[derive(Clone)]
pub(crate) struct LinkMetrics {
    pub requests_ok: Counter,
    pub requests_remote_error: Counter,
    pub requests_timeout: Counter,
    pub requests_closed: Counter,
    pub requests_unreachable: Counter,
    pub requests_too_large: Counter,
    pub dials_ok: Counter,
    pub dials_failed: Counter,
    pub inbound_accepted: Counter,
    pub inbound_refused: Counter,
    pub inbound_timeout: Counter,
    pub dropped_too_large: Counter,
    pub dropped_malformed: Counter,
    pub dropped_protocol: Counter,
}

impl LinkMetrics {
    pub(crate) fn new(metrics: Option<&Arc<Metrics>>) -> LinkMetrics {
        let c = |name: &'static str, label: &'static str, value: &'static str| match metrics {
            Some(m) => m.counter(name, label, value),
            None => Counter::noop(),
        };
        const REQ: &str = "serai_peer_requests_total";
        const DIAL: &str = "serai_peer_dials_total";
        const IN: &str = "serai_peer_inbound_links_total";
        const DROP: &str = "serai_peer_links_dropped_total";
        LinkMetrics {
            requests_ok: c(REQ, "outcome", "ok"),
            requests_remote_error: c(REQ, "outcome", "remote_error"),
            requests_timeout: c(REQ, "outcome", "timeout"),
            requests_closed: c(REQ, "outcome", "closed"),
            requests_unreachable: c(REQ, "outcome", "unreachable"),
            requests_too_large: c(REQ, "outcome", "too_large"),
            dials_ok: c(DIAL, "outcome", "ok"),
            dials_failed: c(DIAL, "outcome", "failed"),
            inbound_accepted: c(IN, "outcome", "accepted"),
            inbound_refused: c(IN, "outcome", "refused"),
            inbound_timeout: c(IN, "outcome", "timeout"),
            dropped_too_large: c(DROP, "reason", "too_large"),
            dropped_malformed: c(DROP, "reason", "malformed"),
            dropped_protocol: c(DROP, "reason", "protocol"),
        }
    }

    /// Counts the outcome of one request.
    pub(crate) fn request(&self, result: &Result<PeerResponse, PeerError>) {
        let counter = match result {
            Ok(_) => &self.requests_ok,
            Err(PeerError::Remote(_)) => &self.requests_remote_error,
            Err(PeerError::Timeout) => &self.requests_timeout,
            Err(PeerError::Closed) => &self.requests_closed,
            Err(PeerError::FrameTooLarge) => &self.requests_too_large,
            Err(PeerError::Connect(_) | PeerError::Handshake(_) | PeerError::Backoff { .. }) => {
                &self.requests_unreachable
            }
        };
        counter.increment(1);
    }
}
