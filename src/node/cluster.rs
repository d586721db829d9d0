//! The node's side of the cluster: the peer listener's request handler, forwarding over the
//! peer link, cluster-wide pushes, and the probe membership uses.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use uuid::Uuid;

use crate::gateway::{Notification, Presence};
use crate::routing::forward::{ForwardError, Forwarder, Request};
use crate::routing::membership::Probe;
use crate::routing::peer::{
    self, PeerError, PeerHandler, PeerRequest, PeerResponse, Peers, RemoteError,
};
use crate::routing::placement::Member;
use crate::routing::Router;

/// Sends forwarded messages over the peer link.
pub struct PeerForwarder {
    pub peers: Peers,
    pub router: Weak<Router>,
}

impl Forwarder for PeerForwarder {
    fn forward(&self, request: Request) -> BoxFuture<'static, Result<Vec<u8>, ForwardError>> {
        let (peers, router) = (self.peers.clone(), self.router.clone());
        Box::pin(async move {
            let router = router.upgrade().ok_or(ForwardError::Unreachable)?;
            let addr = match router.placement().member(&request.node) {
                Some(m) => m.peer_addr.clone(),
                None => return Err(ForwardError::Unreachable),
            };
            let req = PeerRequest::Forward {
                kind: request.kind,
                message: request.message,
                key: request.key,
                hop: request.hop,
                body: request.body,
            };
            match peers.request(&request.node, &addr, req).await {
                Ok(PeerResponse::Forwarded(Ok(bytes))) => Ok(bytes),
                Ok(PeerResponse::Forwarded(Err(e))) | Ok(PeerResponse::Error(e)) => {
                    Err(remote_error(e))
                }
                Ok(other) => Err(ForwardError::Decode(format!("unexpected answer {other:?}"))),
                // Never delivered: safe to try again once the view settles.
                Err(e) if e.not_delivered() => Err(ForwardError::Unreachable),
                // May have run: the caller must not send it again blindly.
                Err(e) => Err(ForwardError::Unknown(e.to_string())),
            }
        })
    }
}

fn remote_error(e: RemoteError) -> ForwardError {
    match e {
        RemoteError::NotOwner { view_version } => ForwardError::NotOwner { view_version },
        RemoteError::Unavailable(m) => ForwardError::Unavailable(m),
        RemoteError::HopLimit => ForwardError::HopLimit,
        RemoteError::UnknownMessage(m) => ForwardError::UnknownMessage(m),
        RemoteError::Decode(m) => ForwardError::Decode(m),
    }
}

fn to_remote(e: ForwardError) -> RemoteError {
    match e {
        ForwardError::NotOwner { view_version } => RemoteError::NotOwner { view_version },
        ForwardError::HopLimit => RemoteError::HopLimit,
        ForwardError::UnknownMessage(m) => RemoteError::UnknownMessage(m),
        ForwardError::Decode(m) => RemoteError::Decode(m),
        ForwardError::Unreachable => RemoteError::Unavailable("unreachable".into()),
        ForwardError::Unavailable(m) => RemoteError::Unavailable(m),
        ForwardError::Unknown(m) => RemoteError::Unavailable(m),
    }
}

/// Answers what other nodes ask this one.
pub fn handler(
    node_id: String,
    router: Arc<Router>,
    presence: Presence,
    incarnation: Arc<AtomicI64>,
) -> PeerHandler {
    peer::handler(move |_from, req| {
        let (router, presence, node_id) = (router.clone(), presence.clone(), node_id.clone());
        let incarnation = incarnation.load(Ordering::Acquire);
        async move {
            match req {
                PeerRequest::Ping { .. } => PeerResponse::Pong {
                    node_id,
                    incarnation: incarnation as u64,
                    view_version: router.placement().version(),
                },
                PeerRequest::Forward {
                    kind,
                    message,
                    key,
                    hop,
                    body,
                } => PeerResponse::Forwarded(
                    router
                        .serve_forward(&kind, &message, key, hop, body)
                        .await
                        .map_err(to_remote),
                ),
                PeerRequest::Push { user_id, payload } => {
                    match serde_json::from_str::<Notification>(&payload) {
                        Ok(n) => PeerResponse::Pushed {
                            delivered: presence.notify(user_id, n) as u32,
                        },
                        Err(e) => PeerResponse::Error(RemoteError::Decode(e.to_string())),
                    }
                }
            }
        }
    })
}

/// Probes a member with a ping over the peer link.
pub fn probe(peers: Peers) -> Probe {
    Arc::new(move |m: Member| {
        let peers = peers.clone();
        Box::pin(async move {
            let started = Instant::now();
            let ping = PeerRequest::Ping {
                from: String::new(),
                incarnation: 0,
                view_version: 0,
            };
            match peers.request(&m.node_id, &m.peer_addr, ping).await {
                Ok(PeerResponse::Pong { .. }) => Ok(started.elapsed()),
                Ok(other) => Err(format!("unexpected answer {other:?}")),
                Err(e) => Err(e.to_string()),
            }
        })
    })
}

/// Pushes notifications to a user wherever their sockets are: this node's, and every other
/// member's (each delivers to the sockets it holds).
#[derive(Clone)]
pub struct Notifier {
    presence: Presence,
    peers: Peers,
    router: Weak<Router>,
}

impl Notifier {
    pub fn new(presence: Presence, peers: Peers, router: Weak<Router>) -> Self {
        Notifier {
            presence,
            peers,
            router,
        }
    }

    /// Queues `notification` for `user_id` here and sends it to the other members; never
    /// blocks the caller.
    pub fn notify(&self, user_id: Uuid, notification: Notification) {
        self.presence.notify(user_id, notification.clone());
        let Some(router) = self.router.upgrade() else {
            return;
        };
        let placement = router.placement();
        let others: Vec<Member> = placement
            .members()
            .filter(|m| m.node_id != placement.node_id())
            .cloned()
            .collect();
        if others.is_empty() {
            return;
        }
        let Ok(payload) = serde_json::to_string(&notification) else {
            return;
        };
        let peers = self.peers.clone();
        tokio::spawn(async move {
            for m in others {
                let push = PeerRequest::Push {
                    user_id,
                    payload: payload.clone(),
                };
                let result = tokio::time::timeout(
                    Duration::from_secs(2),
                    peers.request(&m.node_id, &m.peer_addr, push),
                )
                .await;
                if let Ok(Err(e)) = result {
                    if !matches!(e, PeerError::Backoff { .. }) {
                        tracing::debug!(node = %m.node_id, error = %e, "push to peer failed");
                    }
                }
            }
        });
    }
}
