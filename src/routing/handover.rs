//! Live handover of an entity's state to its new owner (as Orleans' live grain migration does):
//! the old owner flushes, releases its claim at epoch `e`, then offers its state to the node
//! that owns the key now. That node keeps the parcel here, and the activation that claims the
//! key takes it instead of loading from the database, but only when its claim's epoch is
//! `e + 1`: no other claim came in between, so nobody can have written since the release and
//! the parcel is exactly what the database holds. Anything else (a later epoch, an expired or
//! missing parcel) falls back on the database load.
//!
//! Bounded: at most `capacity` parcels, each kept for at most `ttl`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Parcels waiting for their activation, by key.
pub struct Handovers<K, S> {
    parcels: Mutex<HashMap<K, Parcel<S>>>,
    capacity: usize,
    ttl: Duration,
}

struct Parcel<S> {
    state: S,
    released_epoch: i64,
    at: Instant,
}

impl<K: Eq + Hash, S> Handovers<K, S> {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Handovers {
            parcels: Mutex::new(HashMap::new()),
            capacity,
            ttl,
        }
    }

    /// Keeps `state`, released at `released_epoch`; false when full (the new owner then
    /// loads from the database, which holds the same).
    pub fn put(&self, key: K, state: S, released_epoch: i64) -> bool {
        let mut parcels = self.parcels.lock().unwrap_or_else(|e| e.into_inner());
        let ttl = self.ttl;
        parcels.retain(|_, p| p.at.elapsed() < ttl);
        if parcels.len() >= self.capacity {
            return false;
        }
        let parcel = Parcel {
            state,
            released_epoch,
            at: Instant::now(),
        };
        parcels.insert(key, parcel);
        true
    }

    /// The state handed over for `key` if the claim just made at `claimed_epoch` directly
    /// follows its release. The parcel is removed either way.
    pub fn take(&self, key: &K, claimed_epoch: i64) -> Option<S> {
        let mut parcels = self.parcels.lock().unwrap_or_else(|e| e.into_inner());
        let parcel = parcels.remove(key)?;
        let fresh = parcel.at.elapsed() < self.ttl;
        (fresh && parcel.released_epoch + 1 == claimed_epoch).then_some(parcel.state)
    }

    /// Parcels kept now.
    pub fn len(&self) -> usize {
        self.parcels.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parcel_serves_only_the_claim_right_after_its_release() {
        let h = Handovers::new(8, Duration::from_secs(30));
        assert!(h.put(1, "state", 4));
        assert_eq!(
            h.take(&1, 6),
            None,
            "a claim in between: the database is newer"
        );
        assert!(h.is_empty(), "taken either way");
        assert!(h.put(1, "state", 4));
        assert_eq!(h.take(&1, 5), Some("state"));
        assert_eq!(h.take(&1, 5), None);
    }

    #[test]
    fn parcels_are_bounded() {
        let h = Handovers::new(2, Duration::from_secs(30));
        assert!(h.put(1, (), 0));
        assert!(h.put(2, (), 0));
        assert!(!h.put(3, (), 0), "full");
        assert_eq!(h.take(&1, 1), Some(()));
        assert!(h.put(3, (), 0), "a taken parcel makes room");
    }

    #[test]
    fn expired_parcels_serve_nothing_and_make_room() {
        // A lifetime of zero: every parcel has expired by the time anyone looks.
        let h = Handovers::new(1, Duration::ZERO);
        assert!(h.put(1, (), 0));
        assert_eq!(h.take(&1, 1), None, "expired");
        assert!(h.put(2, (), 0));
        assert!(
            h.put(3, (), 0),
            "the expired parcel was dropped to make room"
        );
        assert_eq!(h.len(), 1);
    }
}
