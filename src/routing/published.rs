//! Read-only snapshots that entity actors publish for their keys, so that a read which needs
//! no fencing (an advisory answer, such as a market's quotes) is answered on the reader's own
//! thread instead of a round trip through the actor's mailbox.
//!
//! The owner is the only writer of its key's entry: it publishes after each change of what the
//! snapshot shows, and withdraws it when it stops serving (stopping, fenced, reloading). Every
//! entry carries the epoch of the activation that published it, so that a late withdrawal by a
//! stopped activation cannot remove what its successor published. Readers get an `Arc` of the
//! value: a snapshot is never changed in place, a newer one replaces it.
//!
//! A read through a snapshot never reaches the owner's mailbox, so the owner would think itself
//! idle: each entry remembers that it was read, and the owner asks ([`Published::take_read`])
//! before it passivates for want of requests.
//!
//! A snapshot says what its owner held when it published, nothing more: a reader that needs an
//! answer ordered with the owner's writes (anything that changes state, or is fenced) still
//! sends its message to the owner.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// One key's snapshot: the activation that published it, the value, whether it was read since
/// the owner last asked.
struct Entry<V> {
    epoch: i64,
    value: Arc<V>,
    read: AtomicBool,
}

impl<V> Entry<V> {
    fn new(epoch: i64, value: V) -> Entry<V> {
        Entry {
            epoch,
            value: Arc::new(value),
            read: AtomicBool::new(false),
        }
    }
}

/// The snapshots of one kind on this node, by key.
pub struct Published<K, V> {
    entries: RwLock<HashMap<K, Entry<V>>>,
}

impl<K, V> std::fmt::Debug for Published<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.entries.read().map_or(0, |e| e.len());
        f.debug_struct("Published").field("entries", &n).finish()
    }
}

impl<K: Eq + Hash + Clone, V> Default for Published<K, V> {
    fn default() -> Self {
        Published {
            entries: RwLock::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V> Published<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the snapshot of `key` with `value`, published by the activation `epoch`. An
    /// older activation's publication never replaces a newer one's.
    pub fn publish(&self, key: &K, epoch: i64, value: V) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        match entries.get_mut(key) {
            Some(held) if held.epoch > epoch => {}
            Some(held) => {
                held.epoch = epoch;
                held.value = Arc::new(value);
            }
            None => {
                entries.insert(key.clone(), Entry::new(epoch, value));
            }
        }
    }

    /// Removes the snapshot of `key` if activation `epoch` (or an older one) published it.
    pub fn withdraw(&self, key: &K, epoch: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.get(key).is_some_and(|held| held.epoch <= epoch) {
            entries.remove(key);
        }
    }

    /// The snapshot of `key`, if its owner published one.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(key)?;
        if !entry.read.load(Ordering::Relaxed) {
            entry.read.store(true, Ordering::Relaxed);
        }
        Some(entry.value.clone())
    }

    /// Whether `key`'s snapshot was read since the last call: the owner counts such reads as
    /// activity (they never reach its mailbox).
    pub fn take_read(&self, key: &K) -> bool {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .is_some_and(|e| e.read.swap(false, Ordering::Relaxed))
    }

    /// How many keys have a snapshot.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_activations_win_and_late_withdrawals_do_nothing() {
        let p: Published<&str, u32> = Published::new();
        assert!(p.get(&"a").is_none());
        p.publish(&"a", 1, 10);
        assert_eq!(*p.get(&"a").unwrap(), 10);
        p.publish(&"a", 2, 20);
        // The first activation, stopping late, neither overwrites nor removes the second's.
        p.publish(&"a", 1, 11);
        p.withdraw(&"a", 1);
        assert_eq!(*p.get(&"a").unwrap(), 20);
        // Reads are remembered until the owner asks.
        assert!(p.take_read(&"a"));
        assert!(!p.take_read(&"a"));
        p.withdraw(&"a", 2);
        assert!(p.get(&"a").is_none());
        assert!(!p.take_read(&"a"));
        assert!(p.is_empty());
    }
}
