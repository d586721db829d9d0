//! The router's local actors: looking one up without activating it, stopping them (handoff,
//! drain, shutdown), and opening and closing activation.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Router;
use crate::routing::entity::Entity;
use crate::routing::registry::{AnyRegistry, Registry};

impl Router {
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

    /// Stops every live local actor of kind `E` through [`Entity::stop`] and waits until they
    /// have or `within` has passed; returns how many were still running then.
    pub async fn stop_local<E: Entity>(&self, within: std::time::Duration) -> usize {
        let live = self.all_local::<E>();
        for addr in &live {
            E::stop(addr);
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = live.iter().filter(|a| a.connected()).count();
            if left == 0 || tokio::time::Instant::now() >= deadline {
                return left;
            }
            // An Addr offers no "stopped" future: look again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Every kind's registry, copied out of the lock (an actor stopped from here may register
    /// or look up while we iterate).
    pub(super) fn all_registries(&self) -> Vec<Arc<dyn AnyRegistry>> {
        self.registries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Asks every live local actor to stop (drain, shutdown); returns how many were asked.
    pub fn stop_all(&self) -> usize {
        self.all_registries()
            .iter()
            .map(|r| r.stop_where(&|_| true))
            .sum()
    }

    /// Live actors by kind, after forgetting the ones that stopped.
    pub fn sweep(&self) -> Vec<(&'static str, usize)> {
        let registries = self.all_registries();
        let mut counts: Vec<_> = registries.iter().map(|r| (r.kind(), r.sweep())).collect();
        counts.sort();
        counts
    }

    /// Refuses new activations from now on (drain and shutdown).
    pub fn close(&self) {
        for r in self.all_registries() {
            r.close();
        }
    }

    /// Allows activations and serves again (a node that rejoins after being declared dead).
    pub fn reopen(&self) {
        self.serving.store(true, Ordering::Release);
        for r in self.all_registries() {
            r.reopen();
        }
    }
}
