//! A character's attack power, remembered for a moment on the node its player calls.
//!
//! An attack takes two legs: the character's session computes the damage (and checks the
//! caller owns the character), then the boss applies it. In a fight a player attacks many times
//! a second through the same socket, and the power changes only when the character hires or
//! dismisses crew or learns a skill. So the node that took the RPC keeps each answer for
//! [`POWER_TTL`] and spares the session's leg (usually a hop to another node) meanwhile: a
//! change of power reaches the boss at most that late. The entry is the session's answer for
//! that user only; another user's attack with the same character id still asks the session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::character::world_attack::AttackPower;

/// How long an answer is used.
pub const POWER_TTL: Duration = Duration::from_secs(2);
/// The most characters remembered per node; beyond, answers are not kept until some expire.
pub const POWER_CAPACITY: usize = 100_000;

pub struct PowerCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Uuid, (AttackPower, Instant)>>,
}

impl PowerCache {
    pub fn new(ttl: Duration, capacity: usize) -> PowerCache {
        PowerCache {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The power the session answered `user` for `character` less than the TTL before `now`.
    pub fn get(&self, character: Uuid, user: Uuid, now: Instant) -> Option<AttackPower> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (power, at) = entries.get(&character)?;
        let fresh = now.saturating_duration_since(*at) < self.ttl;
        (fresh && power.user_id == user).then_some(*power)
    }

    /// Remembers the session's answer, taken at `at`.
    pub fn put(&self, character: Uuid, power: AttackPower, at: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&character) {
            let ttl = self.ttl;
            entries.retain(|_, (_, t)| at.saturating_duration_since(*t) < ttl);
            if entries.len() >= self.capacity {
                return;
            }
        }
        entries.insert(character, (power, at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl PowerCache {
        fn len(&self) -> usize {
            self.entries.lock().unwrap().len()
        }
    }

    fn power(user: Uuid, damage: i64) -> AttackPower {
        AttackPower {
            user_id: user,
            damage,
        }
    }

    #[test]
    fn an_answer_is_used_for_its_user_until_it_expires() {
        let cache = PowerCache::new(Duration::from_secs(2), 10);
        let (c, u, t0) = (Uuid::new_v4(), Uuid::new_v4(), Instant::now());
        cache.put(c, power(u, 7), t0);
        assert_eq!(
            cache.get(c, u, t0 + Duration::from_secs(1)),
            Some(power(u, 7))
        );
        assert_eq!(
            cache.get(c, Uuid::new_v4(), t0),
            None,
            "another user asks the session"
        );
        assert_eq!(
            cache.get(c, u, t0 + Duration::from_secs(2)),
            None,
            "expired"
        );
        assert_eq!(cache.get(Uuid::new_v4(), u, t0), None);
    }

    #[test]
    fn a_full_cache_makes_room_from_expired_entries_only() {
        let cache = PowerCache::new(Duration::from_secs(2), 2);
        let u = Uuid::new_v4();
        let t0 = Instant::now();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        cache.put(a, power(u, 1), t0);
        cache.put(b, power(u, 2), t0 + Duration::from_secs(1));
        cache.put(c, power(u, 3), t0 + Duration::from_secs(1));
        assert_eq!(cache.len(), 2, "nothing expired: not kept");
        assert_eq!(cache.get(c, u, t0 + Duration::from_secs(1)), None);
        cache.put(c, power(u, 3), t0 + Duration::from_secs(2));
        assert_eq!(cache.len(), 2, "a expired and made room");
        assert_eq!(
            cache.get(c, u, t0 + Duration::from_secs(2)),
            Some(power(u, 3))
        );
        assert_eq!(
            cache.get(b, u, t0 + Duration::from_secs(2)),
            Some(power(u, 2))
        );
    }
}
