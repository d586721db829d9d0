//! Token-bucket arithmetic of the cluster-wide rate limits (docs/world.md "Rate limits").
//!
//! The owner node of a user holds one [`Bucket`] per (user, group) and *grants* tokens from it
//! in small batches; every node serves requests from the [`Lease`] it was granted. Pure: time
//! is a millisecond count the caller passes in, so every function is a plain test away.
//!
//! Why the cluster never accepts more than `burst + rate × elapsed`: a bucket starts with
//! `burst` tokens, gains `rate` per second and never holds more than `burst`; [`Bucket::grant`]
//! hands out only whole tokens it holds, so everything granted over any interval is at most
//! `burst + rate × elapsed` (plus what was given back, which [`Bucket::give_back`] only takes
//! from tokens a node granted earlier and no longer serves). A node accepts a request only by
//! spending a granted token, so accepted ≤ granted.

/// A group's limit: tokens per second and the most a user may spend at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: u32,
}

impl Rate {
    /// How many tokens a node asks for at once: about a quarter second's worth, at least
    /// one and at most a quarter of the burst, so the tokens stranded on nodes a user left
    /// stay a small part of what they may spend.
    pub fn lease_size(&self) -> u32 {
        let quarter = (self.per_sec / 4.0).ceil();
        let cap = (self.burst / 4).max(1);
        if quarter.is_finite() && quarter >= 1.0 {
            (quarter.min(f64::from(cap))) as u32
        } else {
            1
        }
    }

    /// Milliseconds for an empty bucket to fill up again.
    pub fn refill_ms(&self) -> u64 {
        (f64::from(self.burst) * 1000.0 / self.per_sec).ceil() as u64
    }
}

/// The owner's bucket of one (user, group).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    tokens: f64,
    at_ms: u64,
}

impl Bucket {
    /// A new bucket: full, as a user who has not called for a while.
    pub fn full(rate: &Rate, now_ms: u64) -> Bucket {
        Bucket {
            tokens: f64::from(rate.burst),
            at_ms: now_ms,
        }
    }

    /// Adds what `rate` earned since the last update, up to `burst`. A clock that went back
    /// earns nothing (the bucket keeps its time).
    fn refill(&mut self, rate: &Rate, now_ms: u64) {
        if now_ms > self.at_ms {
            let earned = (now_ms - self.at_ms) as f64 * rate.per_sec / 1000.0;
            self.tokens = (self.tokens + earned).min(f64::from(rate.burst));
            self.at_ms = now_ms;
        }
    }

    /// Takes up to `want` whole tokens the bucket holds now; answers how many.
    pub fn grant(&mut self, rate: &Rate, now_ms: u64, want: u32) -> u32 {
        self.refill(rate, now_ms);
        let n = self.tokens.floor().min(f64::from(want)).max(0.0) as u32;
        self.tokens -= f64::from(n);
        n
    }

    /// Puts back `n` tokens granted earlier and never spent (a lease that expired), up to
    /// `burst`.
    pub fn give_back(&mut self, rate: &Rate, now_ms: u64, n: u32) {
        self.refill(rate, now_ms);
        self.tokens = (self.tokens + f64::from(n)).min(f64::from(rate.burst));
    }

    /// True when the bucket is (or has refilled to) full: it can be forgotten, a new one
    /// starts the same.
    pub fn is_full(&self, rate: &Rate, now_ms: u64) -> bool {
        let mut b = self.clone();
        b.refill(rate, now_ms);
        b.tokens >= f64::from(rate.burst)
    }
}

/// The tokens one node was granted for one (user, group), usable until they expire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    tokens: u32,
    expires_ms: u64,
    /// The owner had no token left: until then the node refuses without asking again, so a
    /// user over the limit costs the owner one ask per token, not one per request.
    held_off_until_ms: u64,
}

impl Lease {
    /// Remembers that the owner's bucket was empty at `now_ms`: no token can be there before
    /// one is earned at `rate`.
    pub fn hold_off(&mut self, rate: &Rate, now_ms: u64) {
        let one_token_ms = (1000.0 / rate.per_sec).ceil() as u64;
        self.held_off_until_ms = now_ms.saturating_add(one_token_ms.max(1));
    }

    /// True while asking the owner again is pointless.
    pub fn is_held_off(&self, now_ms: u64) -> bool {
        now_ms < self.held_off_until_ms
    }

    /// Spends one token if the lease holds one and has not expired.
    pub fn take(&mut self, now_ms: u64) -> bool {
        if self.tokens > 0 && now_ms < self.expires_ms {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }

    /// Gives up the unspent tokens (to return to the owner); the lease is empty afterwards.
    pub fn surrender(&mut self) -> u32 {
        std::mem::take(&mut self.tokens)
    }

    /// Adds `n` newly granted tokens, valid for `ttl_ms` from now (older ones too).
    pub fn add(&mut self, n: u32, now_ms: u64, ttl_ms: u64) {
        self.tokens = self.tokens.saturating_add(n);
        self.expires_ms = now_ms.saturating_add(ttl_ms);
    }

    /// True when nothing is left to spend or the lease expired.
    pub fn is_spent(&self, now_ms: u64) -> bool {
        self.tokens == 0 || now_ms >= self.expires_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RATE: Rate = Rate {
        per_sec: 10.0,
        burst: 5,
    };

    #[test]
    fn a_full_bucket_grants_its_burst_then_refills_at_the_rate() {
        let mut b = Bucket::full(&RATE, 0);
        assert_eq!(b.grant(&RATE, 0, 3), 3);
        assert_eq!(b.grant(&RATE, 0, 3), 2);
        assert_eq!(b.grant(&RATE, 0, 1), 0);
        // 10/s: one token per 100 ms, never more than the burst.
        assert_eq!(b.grant(&RATE, 99, 1), 0);
        assert_eq!(b.grant(&RATE, 100, 5), 1);
        assert_eq!(b.grant(&RATE, 10_000, 100), 5);
        assert!(!b.is_full(&RATE, 10_000));
        assert!(b.is_full(&RATE, 10_500));
    }

    #[test]
    fn given_back_tokens_are_capped_at_the_burst_and_the_clock_never_runs_back() {
        let mut b = Bucket::full(&RATE, 1_000);
        b.give_back(&RATE, 1_000, 3);
        assert_eq!(b.grant(&RATE, 1_000, 100), 5);
        // An earlier time earns nothing.
        assert_eq!(b.grant(&RATE, 0, 1), 0);
        b.give_back(&RATE, 1_000, 2);
        assert_eq!(b.grant(&RATE, 1_000, 100), 2);
    }

    #[test]
    fn a_lease_spends_until_empty_or_expired() {
        let mut l = Lease::default();
        assert!(!l.take(0));
        l.add(2, 0, 100);
        assert!(l.take(10) && l.take(20) && !l.take(30));
        l.add(2, 50, 100);
        assert!(!l.take(150), "expired at 150");
        l.hold_off(&RATE, 150);
        assert!(l.is_held_off(249) && !l.is_held_off(250));
        assert!(l.is_spent(150));
        assert_eq!(l.surrender(), 2);
        assert_eq!(l.surrender(), 0);
    }

    #[test]
    fn lease_sizes_stay_small_against_the_burst() {
        let size = |per_sec, burst| Rate { per_sec, burst }.lease_size();
        assert_eq!(size(10.0, 5), 1);
        assert_eq!(size(100.0, 200), 25);
        assert_eq!(size(40.0, 100), 10);
        assert_eq!(size(1000.0, 20), 5);
        assert_eq!(size(0.5, 1), 1);
    }

    /// One step of a simulated cluster: after `dt_ms`, node `node` either spends from its
    /// lease, asks the owner for `want` tokens (returning what its lease holds when expired),
    /// or its lease expires.
    fn step() -> impl Strategy<Value = (u64, usize, u32, bool)> {
        (0u64..300, 0usize..3, 1u32..8, any::<bool>())
    }

    proptest! {
        /// Whatever the nodes do, the requests they accept never exceed burst + rate × time.
        #[test]
        fn accepted_never_exceeds_burst_plus_rate_times_elapsed(
            per_sec in 0.5f64..200.0,
            burst in 1u32..50,
            steps in proptest::collection::vec(step(), 1..400),
        ) {
            let rate = Rate { per_sec, burst };
            let ttl = 200;
            let mut owner = Bucket::full(&rate, 0);
            let mut leases = [Lease::default(), Lease::default(), Lease::default()];
            let (mut now, mut accepted) = (0u64, 0u64);
            for (dt, node, want, ask) in steps {
                now += dt;
                let lease = &mut leases[node];
                if lease.take(now) {
                    accepted += 1;
                } else if ask {
                    let back = if lease.is_spent(now) { lease.surrender() } else { 0 };
                    owner.give_back(&rate, now, back);
                    let granted = owner.grant(&rate, now, want);
                    prop_assert!(granted <= want);
                    if granted > 0 {
                        accepted += 1;
                        lease.add(granted - 1, now, ttl);
                    }
                }
                let bound = f64::from(burst) + per_sec * now as f64 / 1000.0;
                prop_assert!(accepted as f64 <= bound + 1e-9, "{accepted} > {bound} at {now}");
            }
        }

        /// A user who spends at most the rate (one request per 1/rate seconds) is never
        /// refused by a single owner.
        #[test]
        fn a_user_at_the_rate_is_never_refused(per_sec in 1.0f64..100.0, burst in 1u32..20, n in 1usize..200) {
            let rate = Rate { per_sec, burst };
            let gap = (1000.0 / per_sec).ceil() as u64;
            let mut owner = Bucket::full(&rate, 0);
            for i in 0..n as u64 {
                prop_assert_eq!(owner.grant(&rate, i * gap, 1), 1);
            }
        }
    }
}
