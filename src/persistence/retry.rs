//! Capped exponential backoff, shared by the flush loop and the transactional path.

use std::time::Duration;

/// Delays 10 ms, 20 ms, 40 ms … up to `cap`, each with up to 50 % random jitter so that
/// several nodes retrying the same conflict do not collide again in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            attempt: 0,
            base,
            cap,
        }
    }

    /// The default for database retries: 10 ms doubling up to 2 s.
    pub fn database() -> Self {
        Backoff::new(Duration::from_millis(10), Duration::from_secs(2))
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The un-jittered delay before the next attempt.
    pub fn peek(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay, with jitter, and advances the attempt counter.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.peek();
        self.attempt = self.attempt.saturating_add(1);
        let jitter = rand::random::<f64>() * 0.5;
        d.mul_f64(1.0 - jitter / 2.0)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        let seen: Vec<u128> = (0..6)
            .map(|_| {
                let p = b.peek().as_millis();
                b.next_delay();
                p
            })
            .collect();
        assert_eq!(seen, vec![10, 20, 40, 80, 100, 100]);
        for _ in 0..100 {
            let d = b.next_delay();
            assert!(d <= Duration::from_millis(100) && d >= Duration::from_millis(75));
        }
    }
}
