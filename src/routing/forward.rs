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
use super::router::{RouteError, Router};

/// A message on its way to another node.
#[derive(Debug, Clone)]
pub struct Request {
    pub node: String,
    pub kind: String,
    pub message: String,
    pub key: Vec<u8>,
    pub hop: u8,
    pub body: Vec<u8>,
}

/// Why a forwarded message got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// The node asked does not own the key under its view (which has this version).
    #[error("not the owner under view {view_version}")]
    NotOwner { view_version: u64 },
    /// The owner could not be reached (no link, timeout, link closed).
    #[error("owner unreachable")]
    Unreachable,
    /// The owner refused before doing anything (stopping, fenced, not loaded): nothing happened.
    #[error("entity unavailable: {0}")]
    Unavailable(String),
    /// The link failed after the message was sent: it may or may not have been handled.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    #[error("hop limit reached")]
    HopLimit,
    #[error("unknown message {0}")]
    UnknownMessage(String),
    #[error("undecodable: {0}")]
    Decode(String),
}

/// Sends a forwarded message to its node and returns the encoded answer.
pub trait Forwarder: Send + Sync {
    fn forward(&self, request: Request) -> BoxFuture<'static, Result<Vec<u8>, ForwardError>>;
}

pub(crate) type Dispatch = Arc<
    dyn Fn(Arc<Router>, Vec<u8>, Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, ForwardError>>
        + Send
        + Sync,
>;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ForwardError> {
    postcard::to_allocvec(value).map_err(|e| ForwardError::Decode(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ForwardError> {
    postcard::from_bytes(bytes).map_err(|e| ForwardError::Decode(e.to_string()))
}

/// The serving side of `M` sent to `A`.
pub(crate) fn dispatcher<A, M>() -> Dispatch
where
    A: Entity + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Remote,
    M::Result: Serialize + DeserializeOwned + Send,
{
    Arc::new(|router: Arc<Router>, key: Vec<u8>, body: Vec<u8>| {
        Box::pin(async move {
            let key = A::Key::from_route_bytes(&key)
                .ok_or_else(|| ForwardError::Decode("bad key".into()))?;
            let msg: M = decode(&body)?;
            let answer = router
                .send_local::<A, M>(key, msg)
                .await
                .map_err(|e| match e {
                    RouteError::ShuttingDown => {
                        ForwardError::Unavailable("owner is shutting down".into())
                    }
                    other => ForwardError::Unavailable(other.to_string()),
                })?;
            encode(&answer)
        })
    })
}
