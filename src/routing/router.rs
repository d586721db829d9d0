//! The router: every message to an entity actor goes through [`Router::send`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix::dev::ToEnvelope;
use actix::{ArbiterHandle, Handler, MailboxError, Message};

use super::entity::{Entity, RouteKey};
use super::placement::{Owner, Placement};
use super::registry::Registry;
use crate::admin::metrics::Metrics;

/// The entity kinds a node runs; their `Entity::KIND`s.
pub const KINDS: [&str; 4] = ["character", "battle", "market", "leaderboard"];

/// Why a message could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The node is draining or stopped: no new activations.
    #[error("node is shutting down")]
    ShuttingDown,
    /// The key is owned by another node and forwarding is not available.
    #[error("entity is owned by node {0}")]
    NotOwner(String),
    /// The actor stopped while handling the message (fenced, passivated, failed to load).
    #[error("entity unavailable, try again")]
    Unavailable,
    #[error("no actor kind {0} is registered")]
    UnknownKind(&'static str),
}

trait AnyRegistry: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn kind(&self) -> &'static str;
    fn sweep(&self) -> usize;
    fn close(&self);
}

impl<A: Entity> AnyRegistry for Registry<A> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn kind(&self) -> &'static str {
        A::KIND
    }
    fn sweep(&self) -> usize {
        Registry::sweep(self)
    }
    fn close(&self) {
        Registry::close(self)
    }
}

/// Resolves a key to its owner and delivers messages to the owning actor.
pub struct Router {
    placement: RwLock<Arc<Placement>>,
    registries: RwLock<HashMap<TypeId, Arc<dyn AnyRegistry>>>,
    arbiters: Vec<ArbiterHandle>,
    metrics: Arc<Metrics>,
}

impl Router {
    /// `arbiters` are the threads entity actors are spread over (none: the caller's arbiter).
    pub fn new(placement: Placement, arbiters: Vec<ArbiterHandle>, metrics: Arc<Metrics>) -> Self {
        // Every kind reports from the first scrape, before any actor of it exists.
        for kind in KINDS {
            metrics.active_actors(kind).set(0.0);
        }
        Router {
            placement: RwLock::new(Arc::new(placement)),
            registries: RwLock::new(HashMap::new()),
            arbiters,
            metrics,
        }
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

    fn registry<A: Entity>(&self) -> Result<Arc<dyn AnyRegistry>, RouteError> {
        let registries = self.registries.read().unwrap_or_else(|e| e.into_inner());
        registries
            .get(&TypeId::of::<A>())
            .cloned()
            .ok_or(RouteError::UnknownKind(A::KIND))
    }

    pub fn placement(&self) -> Arc<Placement> {
        self.placement
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Who owns `key` of kind `A` in the current view.
    pub fn owner<A: Entity>(&self, key: &A::Key) -> Owner {
        self.placement().owner(A::KIND, &key.route_bytes())
    }

    /// Delivers `msg` to the actor owning `key`, activating it here if this node owns it.
    pub async fn send<A, M>(&self, key: A::Key, msg: M) -> Result<M::Result, RouteError>
    where
        A: Entity + Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        if let Owner::Remote(node) = self.owner::<A>(&key) {
            return Err(RouteError::NotOwner(node));
        }
        let registry = self.registry::<A>()?;
        let registry = registry
            .as_any()
            .downcast_ref::<Registry<A>>()
            .ok_or(RouteError::UnknownKind(A::KIND))?;
        let addr = registry
            .get_or_activate(&key)
            .ok_or(RouteError::ShuttingDown)?;
        addr.send(msg).await.map_err(|e| match e {
            MailboxError::Closed | MailboxError::Timeout => RouteError::Unavailable,
        })
    }

    /// The live local actor for `key`, without activating one.
    pub fn local<A: Entity>(&self, key: &A::Key) -> Option<actix::Addr<A>> {
        let registry = self.registry::<A>().ok()?;
        registry.as_any().downcast_ref::<Registry<A>>()?.get(key)
    }

    /// Every live local actor of kind `A`.
    pub fn all_local<A: Entity>(&self) -> Vec<actix::Addr<A>> {
        match self.registry::<A>() {
            Ok(r) => r
                .as_any()
                .downcast_ref::<Registry<A>>()
                .map(|r| r.all())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Live actors by kind, after forgetting the ones that stopped.
    pub fn sweep(&self) -> Vec<(&'static str, usize)> {
        let registries = self.registries.read().unwrap_or_else(|e| e.into_inner());
        let mut counts: Vec<_> = registries.values().map(|r| (r.kind(), r.sweep())).collect();
        counts.sort();
        counts
    }

    /// Refuses new activations from now on (drain and shutdown).
    pub fn close(&self) {
        for r in self
            .registries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            r.close();
        }
    }
}
