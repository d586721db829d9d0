//! What an actor must say about itself to be reached through the router.

use std::fmt::Debug;
use std::hash::Hash;

use actix::{Actor, Context, Handler};
use uuid::Uuid;

use crate::request::Ticket;

/// A key that placement can hash: its bytes alone decide its owner, so every node (whatever
/// compiler built it) places it the same way.
pub trait RouteKey: Clone + Eq + Hash + Debug + Send + Sync + Unpin + 'static {
    fn route_bytes(&self) -> Vec<u8>;
    /// The key back from its bytes (a forwarded message names its key this way).
    fn from_route_bytes(bytes: &[u8]) -> Option<Self>;
}

impl RouteKey for Uuid {
    fn route_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_route_bytes(bytes: &[u8]) -> Option<Self> {
        Uuid::from_slice(bytes).ok()
    }
}

impl RouteKey for String {
    fn route_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_route_bytes(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

/// A message that may cross the peer link to the node owning its entity: it and its answer
/// are postcard-encoded; `NAME` identifies it on the wire (never rename a sent message).
pub trait Remote:
    actix::Message + serde::Serialize + serde::de::DeserializeOwned + Send + 'static
where
    Self::Result: serde::Serialize + serde::de::DeserializeOwned + Send,
{
    const NAME: &'static str;

    /// Gives this message a fresh [`Ticket`] and returns a handle on it, for messages whose
    /// actor takes the ticket when it starts on them (see [`crate::request::Ticket`]). The
    /// router then knows, at the deadline, whether the message ran. Default: none.
    fn renew_ticket(&mut self) -> Option<Ticket> {
        None
    }
}

/// Asks an entity to write what it holds, release its claim and stop (idle timeout, handoff,
/// drain, shutdown): the one passivation message of every kind, sent by [`Entity::stop`].
#[derive(actix::Message, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct Passivate;

/// An actor that lives at most once per key in the cluster and is activated on demand.
pub trait Entity: Actor<Context = Context<Self>> + Handler<Passivate> {
    type Key: RouteKey;
    /// Short name of the kind, used in metrics and placement (`character`, `market` …).
    const KIND: &'static str;

    /// Asks a live actor to flush, release its claim and stop: used when its key moves to
    /// another node (handoff), at drain and at shutdown.
    fn stop(addr: &actix::Addr<Self>) {
        addr.do_send(Passivate);
    }
}
