//! The actors of one kind living on this node, by key, activated on demand.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::{Addr, ArbiterHandle};
use metrics::Gauge;

use super::entity::{Entity, RouteKey};

type Factory<A> = Arc<dyn Fn(<A as Entity>::Key) -> A + Send + Sync>;

/// Live actors of kind `A`. An actor that stopped (passivated or fenced) is replaced by a
/// fresh activation the next time its key is asked for; dead entries are swept periodically.
pub struct Registry<A: Entity> {
    actors: Mutex<HashMap<A::Key, Addr<A>>>,
    factory: Factory<A>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    gauge: Gauge,
    open: AtomicBool,
}

impl<A: Entity> Registry<A> {
    /// `factory` builds the actor for a key; the actor loads its own state when started.
    pub fn new(factory: Factory<A>, arbiters: Vec<ArbiterHandle>, gauge: Gauge) -> Self {
        Registry {
            actors: Mutex::new(HashMap::new()),
            factory,
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            gauge,
            open: AtomicBool::new(true),
        }
    }

    /// The live actor for `key`, or `None`.
    pub fn get(&self, key: &A::Key) -> Option<Addr<A>> {
        let actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        actors.get(key).filter(|a| a.connected()).cloned()
    }

    /// The live actor for `key`, activating one if there is none. `None` when closed.
    pub fn get_or_activate(&self, key: &A::Key) -> Option<Addr<A>> {
        let mut actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(addr) = actors.get(key).filter(|a| a.connected()) {
            return Some(addr.clone());
        }
        if !self.open.load(Ordering::Acquire) {
            return None;
        }
        // The actor is built on its own arbiter's thread, so it need not be `Send`.
        let addr = match self.pick_arbiter() {
            Some(arbiter) => {
                let (factory, k) = (self.factory.clone(), key.clone());
                A::start_in_arbiter(arbiter, move |_| factory(k))
            }
            None => (self.factory)(key.clone()).start(),
        };
        actors.insert(key.clone(), addr.clone());
        self.gauge.set(actors.len() as f64);
        Some(addr)
    }

    fn pick_arbiter(&self) -> Option<&ArbiterHandle> {
        if self.arbiters.is_empty() {
            return None;
        }
        let i = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        self.arbiters.get(i)
    }

    /// Forgets actors that have stopped; returns how many are still live.
    pub fn sweep(&self) -> usize {
        let mut actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        actors.retain(|_, addr| addr.connected());
        self.gauge.set(actors.len() as f64);
        actors.len()
    }

    /// Stops new activations (drain); live actors keep serving until told to stop.
    pub fn close(&self) {
        self.open.store(false, Ordering::Release);
    }

    /// Allows activations again after [`Registry::close`].
    pub fn reopen(&self) {
        self.open.store(true, Ordering::Release);
    }

    /// Every live actor with its key.
    pub fn entries(&self) -> Vec<(A::Key, Addr<A>)> {
        let actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        actors
            .iter()
            .filter(|(_, a)| a.connected())
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect()
    }

    /// Every live actor, e.g. to tell them all to stop.
    pub fn all(&self) -> Vec<Addr<A>> {
        let actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        actors.values().filter(|a| a.connected()).cloned().collect()
    }
}

/// A registry of any kind, as the router holds them all.
pub(crate) trait AnyRegistry: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn kind(&self) -> &'static str;
    fn sweep(&self) -> usize;
    fn close(&self);
    fn reopen(&self);
    fn stop_where(&self, moved: &dyn Fn(&[u8]) -> bool) -> usize;
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
    fn reopen(&self) {
        Registry::reopen(self)
    }
    fn stop_where(&self, moved: &dyn Fn(&[u8]) -> bool) -> usize {
        let mut n = 0;
        for (key, addr) in self.entries() {
            if moved(&key.route_bytes()) {
                A::stop(&addr);
                n += 1;
            }
        }
        n
    }
}
