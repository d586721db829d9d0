//! The node's side of the cluster: the peer listener's request handler, forwarding over the
//! peer link, cluster-wide pushes, and the probe membership uses.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::gateway::{Notification, Presence};
use crate::protocol::peer::Forward;
use crate::request::{self, Deadline, Failure};
use crate::routing::forward::{ForwardError, Forwarder, Request, Served};
use crate::routing::membership::Probe;
use crate::routing::peer::{
    self, PeerError, PeerHandler, PeerRequest, PeerResponse, Peers, RemoteError,
};
use crate::routing::placement::Member;
use crate::routing::{Router, VERDICT_GRACE};

/// How long past a request's deadline the forwarder waits for the owner's verdict: the
/// owner's own grace plus a network round trip.
const FORWARD_GRACE: Duration = Duration::from_millis(VERDICT_GRACE.as_millis() as u64 + 300);

/// Sends forwarded messages over the peer link.
pub struct PeerForwarder {
    pub peers: Peers,
    pub router: Weak<Router>,
}

impl Forwarder for PeerForwarder {
    fn forward(&self, request: Request) -> BoxFuture<'static, Result<Vec<u8>, ForwardError>> {
        let (peers, router) = (self.peers.clone(), self.router.clone());
        Box::pin(async move {
            let unreachable = |why: &str| ForwardError::Unreachable(why.to_string());
            let router = router
                .upgrade()
                .ok_or_else(|| unreachable("node stopping"))?;
            let addr = match router.placement().member(&request.node) {
                Some(m) => m.peer_addr.clone(),
                None => return Err(unreachable("not a member")),
            };
            let deadline = request.deadline;
            let forward = Forward {
                kind: request.kind,
                message: request.message,
                key: request.key,
                hop: request.hop,
                deadline_ms: deadline.unix_ms(),
                body: request.body,
            };
            let req = match request.request_id {
                Some(id) => PeerRequest::Traced {
                    request_id: id.to_string(),
                    forward,
                },
                None => PeerRequest::Forward(forward),
            };
            // The owner answers "not run" for a request still queued at the deadline: wait a
            // moment past it for that verdict rather than guess "may have run".
            let answer = peers
                .request_until(
                    &request.node,
                    &addr,
                    req,
                    deadline.instant() + FORWARD_GRACE,
                )
                .await;
            forward_outcome(answer)
        })
    }
}

/// What a peer's answer to a forward means for the request: the one table from link errors
/// to [`Failure`] (see the tests).
fn forward_outcome(answer: Result<PeerResponse, PeerError>) -> Result<Vec<u8>, ForwardError> {
    match answer {
        Ok(PeerResponse::Forwarded(Ok(bytes))) => Ok(bytes),
        Ok(PeerResponse::Forwarded(Err(e))) | Err(PeerError::Remote(e)) => Err(remote_error(e)),
        Ok(PeerResponse::Error(e)) => Err(remote_error(e)),
        Ok(other) => Err(ForwardError::Failed(Failure::may_have_run(format!(
            "unexpected answer {other:?}"
        )))),
        // Never delivered: safe to try again once the view settles.
        Err(e) if e.not_delivered() => Err(ForwardError::Unreachable(e.to_string())),
        // Delivered, or possibly: it may have run and is never sent again.
        Err(e) => Err(ForwardError::Failed(Failure::may_have_run(e.to_string()))),
    }
}

fn remote_error(e: RemoteError) -> ForwardError {
    match e {
        RemoteError::NotOwner { view_version } => ForwardError::NotOwner { view_version },
        RemoteError::Failed(f) => ForwardError::Failed(f),
    }
}

fn to_remote(e: ForwardError) -> RemoteError {
    match e {
        ForwardError::NotOwner { view_version } => RemoteError::NotOwner { view_version },
        // Two hops away, "unreachable" still means nothing ran.
        ForwardError::Unreachable(m) => RemoteError::not_run(m),
        ForwardError::Failed(f) => RemoteError::Failed(f),
    }
}

/// Serves a forwarded message as the client request it is part of (`request_id`, or a fresh
/// id from a node that sends none), and, with `access_log`, writes one line for it on this
/// node: which node asked, for which entity, and how it ended.
async fn serve_forward(
    router: Arc<Router>,
    from: &str,
    forward: Forward,
    request_id: Option<String>,
    access_log: bool,
) -> PeerResponse {
    let started = Instant::now();
    let entity = access_log.then(|| format!("{}/{}", forward.kind, forward.message));
    let served = Served {
        kind: forward.kind,
        message: forward.message,
        key: forward.key,
        hop: forward.hop,
        deadline: Deadline::from_unix_ms(forward.deadline_ms),
        body: forward.body,
    };
    let id = request_id.map_or_else(request::new_trace_id, Arc::from);
    request::traced(id, async {
        let answer = router.serve_forward(served).await;
        if let Some(entity) = entity {
            let outcome = match &answer {
                Ok(_) => "ok",
                Err(ForwardError::NotOwner { .. }) => "not_owner",
                Err(ForwardError::Unreachable(_)) => "not_run",
                Err(ForwardError::Failed(f)) if f.is_retryable() => "not_run",
                Err(ForwardError::Failed(_)) => "may_have_run",
            };
            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            tracing::info!(
                target: "serai::access",
                %from,
                %entity,
                outcome,
                duration_ms = format!("{duration_ms:.1}"),
                "forward {entity} from {from} {outcome}"
            );
        }
        PeerResponse::Forwarded(answer.map_err(to_remote))
    })
    .await
}

/// Answers what other nodes ask this one; with `access_log`, one log line per forwarded
/// message served.
pub fn handler(
    node_id: String,
    router: Arc<Router>,
    presence: Presence,
    incarnation: Arc<AtomicI64>,
    access_log: bool,
) -> PeerHandler {
    peer::handler(move |from, req| {
        let (router, presence, node_id) = (router.clone(), presence.clone(), node_id.clone());
        let incarnation = incarnation.load(Ordering::Acquire);
        async move {
            match req {
                PeerRequest::Ping { .. } => PeerResponse::Pong {
                    node_id,
                    incarnation: incarnation as u64,
                    view_version: router.placement().version(),
                },
                PeerRequest::Forward(forward) => {
                    serve_forward(router, &from, forward, None, access_log).await
                }
                PeerRequest::Traced {
                    request_id,
                    forward,
                } => serve_forward(router, &from, forward, Some(request_id), access_log).await,
                PeerRequest::Channel { channel, body } => PeerResponse::Channel(
                    router
                        .serve_channel(from, &channel, body)
                        .await
                        .map_err(RemoteError::Failed),
                ),
                PeerRequest::Push { user_id, payload } => {
                    match serde_json::from_str::<Notification>(&payload) {
                        Ok(n) => PeerResponse::Pushed {
                            delivered: presence.notify(user_id, n) as u32,
                        },
                        Err(e) => PeerResponse::Error(RemoteError::not_run(format!(
                            "undecodable push: {e}"
                        ))),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(r: Result<Vec<u8>, ForwardError>) -> Option<Failure> {
        match r {
            Err(ForwardError::Failed(f)) => Some(f),
            _ => None,
        }
    }

    /// The outcome table of the peer link: every way a forward can end, and what it means.
    #[test]
    fn forward_outcome_table() {
        use PeerError as P;
        // Done.
        assert_eq!(
            forward_outcome(Ok(PeerResponse::Forwarded(Ok(vec![1])))),
            Ok(vec![1])
        );
        // Not run: never delivered, or refused by the owner before running.
        for e in [
            P::Connect("refused".into()),
            P::Handshake("bad secret".into()),
            P::Backoff {
                retry_in: Duration::from_millis(5),
            },
            P::FrameTooLarge,
        ] {
            assert!(matches!(
                forward_outcome(Err(e)),
                Err(ForwardError::Unreachable(_))
            ));
        }
        assert!(matches!(
            forward_outcome(Ok(PeerResponse::Forwarded(Err(RemoteError::NotOwner {
                view_version: 3
            })))),
            Err(ForwardError::NotOwner { view_version: 3 })
        ));
        let refused = RemoteError::not_run("deadline passed");
        assert!(matches!(
            failure(forward_outcome(Ok(PeerResponse::Forwarded(Err(refused))))),
            Some(Failure::NotRun(_))
        ));
        // May have run: anything after delivery.
        for e in [P::Timeout, P::Closed] {
            assert!(matches!(
                failure(forward_outcome(Err(e))),
                Some(Failure::MayHaveRun(_))
            ));
        }
        let panicked = RemoteError::may_have_run("request handler failed");
        assert!(matches!(
            failure(forward_outcome(Ok(PeerResponse::Error(panicked.clone())))),
            Some(Failure::MayHaveRun(_))
        ));
        assert!(matches!(
            failure(forward_outcome(Err(P::Remote(panicked)))),
            Some(Failure::MayHaveRun(_))
        ));
        assert!(matches!(
            failure(forward_outcome(Ok(PeerResponse::Pushed { delivered: 1 }))),
            Some(Failure::MayHaveRun(_))
        ));
    }

    /// Two hops away the kind is kept: a *may have run* never turns into a retryable answer.
    #[test]
    fn relayed_errors_keep_their_kind() {
        let unknown = ForwardError::Failed(Failure::may_have_run("link lost"));
        assert_eq!(to_remote(unknown), RemoteError::may_have_run("link lost"));
        assert!(matches!(
            to_remote(ForwardError::Unreachable("x".into())),
            RemoteError::Failed(Failure::NotRun(_))
        ));
        assert!(matches!(
            remote_error(RemoteError::may_have_run("x")),
            ForwardError::Failed(Failure::MayHaveRun(_))
        ));
    }
}
