//! Forwarding a message to the node that owns its entity: the encoding, the errors, the
//! sending side ([`Forwarder`], implemented over the peer link by the node) and the serving
//! side (a dispatch table of `(kind, message name)` → decode, deliver locally, encode).

use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::Handler;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::entity::{Entity, Remote, RouteKey};
use super::router::Router;
use crate::request::{Deadline, Failure};

/// A message on its way to another node.
#[derive(Debug, Clone)]
pub struct Request {
    pub node: String,
    pub kind: String,
    pub message: String,
    pub key: Vec<u8>,
    pub hop: u8,
    /// The caller's deadline: the owner refuses to start the message after it.
    pub deadline: Deadline,
    pub body: Vec<u8>,
    /// The id of the client request this message serves, for the owner's log lines.
    pub request_id: Option<std::sync::Arc<str>>,
}

/// A forwarded message as the owning node receives it.
#[derive(Debug, Clone)]
pub struct Served {
    pub kind: String,
    pub message: String,
    pub key: Vec<u8>,
    pub hop: u8,
    pub deadline: Deadline,
    pub body: Vec<u8>,
}

/// Why a forwarded message got no answer. The first two were never run, so the router may
/// send the message again (to the owner of a newer view); everything else is a [`Failure`]
/// the router passes on as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// The node asked does not own the key under its view (which has this version).
    #[error("not the owner under view {view_version}")]
    NotOwner { view_version: u64 },
    /// The request never reached the owner (no link, handshake failed, link down before
    /// sending).
    #[error("owner unreachable: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Failed(Failure),
}

/// Sends a forwarded message to its node and returns the encoded answer.
pub trait Forwarder: Send + Sync {
    fn forward(&self, request: Request) -> BoxFuture<'static, Result<Vec<u8>, ForwardError>>;
}

pub(crate) type Dispatch = Arc<
    dyn Fn(
            Arc<Router>,
            Vec<u8>,
            Vec<u8>,
            Deadline,
        ) -> BoxFuture<'static, Result<Vec<u8>, ForwardError>>
        + Send
        + Sync,
>;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(value)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The serving side of `M` sent to `A`.
pub(crate) fn dispatcher<A, M>() -> Dispatch
where
    A: Entity + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Remote,
    M::Result: Serialize + DeserializeOwned + Send,
{
    Arc::new(
        |router: Arc<Router>, key: Vec<u8>, body: Vec<u8>, deadline: Deadline| {
            Box::pin(async move {
                let not_run = |what: &str, e: String| {
                    ForwardError::Failed(Failure::not_run(format!("{what}: {e}")))
                };
                let key = A::Key::from_route_bytes(&key)
                    .ok_or_else(|| not_run("bad key", format!("{key:?}")))?;
                let mut msg: M =
                    decode(&body).map_err(|e| not_run("undecodable message", e.to_string()))?;
                let ticket = msg.renew_ticket();
                let answer = router
                    .send_local::<A, M>(key, msg, deadline, ticket)
                    .await
                    .map_err(ForwardError::Failed)?;
                // The message ran: an answer that cannot be encoded leaves its caller unsure.
                encode(&answer).map_err(|e| {
                    ForwardError::Failed(Failure::may_have_run(format!(
                        "the answer could not be encoded: {e}"
                    )))
                })
            })
        },
    )
}

/// The serving side of `M` handled by the node itself (`handle(key bytes, message)`), not by
/// an entity actor.
pub(crate) fn node_dispatcher<M, F>(handle: F) -> Dispatch
where
    M: Remote,
    M::Result: Serialize + DeserializeOwned + Send,
    F: Fn(&[u8], M) -> M::Result + Send + Sync + 'static,
{
    let handle = Arc::new(handle);
    Arc::new(move |_router, key: Vec<u8>, body: Vec<u8>, _deadline| {
        let handle = handle.clone();
        Box::pin(async move {
            let msg: M = decode(&body).map_err(|e| {
                ForwardError::Failed(Failure::not_run(format!("undecodable message: {e}")))
            })?;
            let answer = handle(&key, msg);
            encode(&answer).map_err(|e| {
                ForwardError::Failed(Failure::may_have_run(format!(
                    "the answer could not be encoded: {e}"
                )))
            })
        })
    })
}
