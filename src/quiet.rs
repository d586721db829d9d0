//! Rate-limited warnings: a peer that dies makes every dial, link and request to it fail, and
//! one warning each would bury the log. At most one warning per key (site, and peer or cause)
//! is emitted per interval; the next one emitted says how many were suppressed in between.
//! What must be seen per request stays in the access log (its status, with the request id).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often one key may warn.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Keys kept before idle ones are forgotten.
const MAX_KEYS: usize = 1024;

/// What a warning allowed through appends to its message: nothing, or
/// ` (N similar suppressed)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed(pub u64);

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0 {
            write!(f, " ({} similar suppressed)", self.0)?;
        }
        Ok(())
    }
}

struct Entry {
    last: Instant,
    suppressed: u64,
}

/// At most one warning per key per interval, counting the rest. Pure: the caller gives the
/// time.
pub struct WarnLimiter {
    interval: Duration,
    keys: HashMap<String, Entry>,
}

impl WarnLimiter {
    pub fn new(interval: Duration) -> Self {
        WarnLimiter {
            interval,
            keys: HashMap::new(),
        }
    }

    /// `Some` (with how many were suppressed since the last one) if a warning for `key` may
    /// be emitted at `now`; `None` (and counted) if not.
    pub fn check(&mut self, key: &str, now: Instant) -> Option<Suppressed> {
        if let Some(entry) = self.keys.get_mut(key) {
            if now.saturating_duration_since(entry.last) < self.interval {
                entry.suppressed += 1;
                return None;
            }
            let suppressed = Suppressed(entry.suppressed);
            *entry = Entry {
                last: now,
                suppressed: 0,
            };
            return Some(suppressed);
        }
        if self.keys.len() >= MAX_KEYS {
            let interval = self.interval;
            self.keys
                .retain(|_, e| now.saturating_duration_since(e.last) < interval);
        }
        self.keys.insert(
            key.to_string(),
            Entry {
                last: now,
                suppressed: 0,
            },
        );
        Some(Suppressed(0))
    }
}

/// The process's limiter, [`WARN_INTERVAL`] per key: `Some` if the warning for `key` may be
/// emitted now (append the [`Suppressed`] to its message).
pub fn allow(key: &str) -> Option<Suppressed> {
    static LIMITER: OnceLock<Mutex<WarnLimiter>> = OnceLock::new();
    let limiter = LIMITER.get_or_init(|| Mutex::new(WarnLimiter::new(WARN_INTERVAL)));
    limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(key, Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_key_per_interval_then_the_count_of_the_rest() {
        let mut l = WarnLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.check("dial:b", t0), Some(Suppressed(0)));
        for i in 1..=700 {
            let t = t0 + Duration::from_millis(i * 4);
            assert_eq!(l.check("dial:b", t), None, "suppressed at {i}");
        }
        // Another key (site or peer) is independent.
        assert_eq!(
            l.check("dial:c", t0 + Duration::from_secs(1)),
            Some(Suppressed(0))
        );
        assert_eq!(
            l.check("close:b", t0 + Duration::from_secs(1)),
            Some(Suppressed(0))
        );
        let later = t0 + Duration::from_secs(10);
        assert_eq!(l.check("dial:b", later), Some(Suppressed(700)));
        assert_eq!(l.check("dial:b", later + Duration::from_secs(1)), None);
        assert_eq!(
            l.check("dial:b", later + Duration::from_secs(20)),
            Some(Suppressed(1))
        );
    }

    #[test]
    fn the_message_suffix_names_what_was_suppressed() {
        assert_eq!(Suppressed(0).to_string(), "");
        assert_eq!(Suppressed(3).to_string(), " (3 similar suppressed)");
    }

    #[test]
    fn idle_keys_are_forgotten_when_there_are_too_many() {
        let mut l = WarnLimiter::new(Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            l.check(&format!("k{i}"), t0);
        }
        let later = t0 + Duration::from_secs(2);
        assert_eq!(l.check("new", later), Some(Suppressed(0)));
        assert_eq!(l.keys.len(), 1);
    }
}
