//! What an actor must say about itself to be reached through the router.

use std::fmt::Debug;
use std::hash::Hash;

use actix::{Actor, Context};
use uuid::Uuid;

/// A key that placement can hash: its bytes alone decide its owner, so every node (whatever
/// compiler built it) places it the same way.
pub trait RouteKey: Clone + Eq + Hash + Debug + Send + Sync + Unpin + 'static {
    fn route_bytes(&self) -> Vec<u8>;
}

impl RouteKey for Uuid {
    fn route_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl RouteKey for String {
    fn route_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

/// An actor that lives at most once per key in the cluster and is activated on demand.
pub trait Entity: Actor<Context = Context<Self>> {
    type Key: RouteKey;
    /// Short name of the kind, used in metrics and placement (`character`, `market` …).
    const KIND: &'static str;
}
