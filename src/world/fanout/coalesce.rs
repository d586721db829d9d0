//! When a world push goes out: the pure decision behind [`super::WorldFanout`], with time
//! passed in (no tokio, no clock of its own), so it is tested deterministically.
//!
//! Per topic (an event), the latest offered value wins. A value goes out at once when the topic
//! has been quiet for at least `gap` (the leading edge: the first hit after a pause is seen
//! without delay); otherwise it waits until `gap` has passed since the last send, replacing any
//! value still waiting (so at most one send per `gap` per topic, and the last value offered is
//! always sent). With `gap` = 500 ms a subscriber sees at most 2 updates per second per event.
//! The number of topics is bounded: a new topic beyond it is refused (counted by the caller).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What became of an offered value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Due now (the topic was quiet): the sender should run at once.
    Now,
    /// Waits for its topic's gap to pass, and nothing waited before: the sender must learn
    /// the new [`Coalescer::next_due`].
    Later,
    /// Replaced a value that was already waiting (the sender knows when it is due).
    Replaced,
    /// The topic is new and `max_topics` topics are held: dropped.
    Refused,
}

#[derive(Debug)]
struct Slot<T> {
    /// The value waiting to go out and when it was first offered.
    waiting: Option<(T, Instant)>,
    last_sent: Option<Instant>,
}

impl<T> Slot<T> {
    fn due_at(&self, gap: Duration) -> Option<Instant> {
        let (_, since) = self.waiting.as_ref()?;
        Some(self.last_sent.map_or(*since, |t| (t + gap).max(*since)))
    }

    fn is_due(&self, gap: Duration, now: Instant) -> bool {
        self.waiting.is_some() && self.last_sent.is_none_or(|t| now >= t + gap)
    }
}

/// The latest value per topic and when each topic last went out.
#[derive(Debug)]
pub struct Coalescer<T> {
    gap: Duration,
    max_topics: usize,
    topics: HashMap<String, Slot<T>>,
}

impl<T> Coalescer<T> {
    /// At most one send per `gap` per topic, at most `max_topics` topics held.
    pub fn new(gap: Duration, max_topics: usize) -> Coalescer<T> {
        Coalescer {
            gap,
            max_topics: max_topics.max(1),
            topics: HashMap::new(),
        }
    }

    /// Offers the latest `value` of `topic` at `now`.
    pub fn offer(&mut self, topic: &str, value: T, now: Instant) -> Offer {
        let full = self.topics.len() >= self.max_topics;
        let slot = match self.topics.get_mut(topic) {
            Some(slot) => slot,
            None if full => return Offer::Refused,
            None => self.topics.entry(topic.to_string()).or_insert(Slot {
                waiting: None,
                last_sent: None,
            }),
        };
        let replaced = slot.waiting.take();
        let since = replaced.as_ref().map_or(now, |(_, since)| *since);
        slot.waiting = Some((value, since));
        if slot.is_due(self.gap, now) {
            Offer::Now
        } else if replaced.is_some() {
            Offer::Replaced
        } else {
            Offer::Later
        }
    }

    /// Takes every value due at `now` (marking its topic sent at `now`) and forgets topics
    /// quiet for a whole gap (a later offer is a leading edge again, so nothing is lost).
    pub fn take_due(&mut self, now: Instant) -> Vec<(String, T)> {
        let gap = self.gap;
        let mut due = Vec::new();
        self.topics.retain(|topic, slot| {
            if slot.is_due(gap, now) {
                if let Some((value, _)) = slot.waiting.take() {
                    due.push((topic.clone(), value));
                }
                slot.last_sent = Some(now);
                return true;
            }
            slot.waiting.is_some() || slot.last_sent.is_some_and(|t| now < t + gap)
        });
        due
    }

    /// The earliest time a waiting value becomes due (`None`: nothing waits).
    pub fn next_due(&self) -> Option<Instant> {
        self.topics
            .values()
            .filter_map(|s| s.due_at(self.gap))
            .min()
    }

    /// Topics held (waiting, or sent less than a gap ago).
    pub fn len(&self) -> usize {
        self.topics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GAP: Duration = Duration::from_millis(500);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_change_after_a_quiet_period_goes_at_once() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(GAP, 8);
        assert_eq!(c.offer("boss", 1, t0), Offer::Now);
        assert_eq!(c.take_due(t0), vec![("boss".to_string(), 1)]);
        assert!(c.take_due(t0).is_empty(), "taken once");
        // Quiet for a gap: the topic is forgotten and the next change is a leading edge.
        assert!(c.take_due(t0 + GAP).is_empty());
        assert!(c.is_empty());
        assert_eq!(c.offer("boss", 2, t0 + ms(2000)), Offer::Now);
    }

    #[test]
    fn changes_within_the_gap_coalesce_to_the_latest() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(GAP, 8);
        c.offer("boss", 1, t0);
        c.take_due(t0);
        assert_eq!(c.offer("boss", 2, t0 + ms(10)), Offer::Later);
        assert_eq!(c.offer("boss", 3, t0 + ms(20)), Offer::Replaced);
        assert_eq!(c.next_due(), Some(t0 + GAP));
        assert!(c.take_due(t0 + ms(499)).is_empty());
        assert_eq!(c.take_due(t0 + GAP), vec![("boss".to_string(), 3)]);
        assert_eq!(c.next_due(), None);
    }

    #[test]
    fn topics_are_independent_and_bounded() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(GAP, 2);
        assert_eq!(c.offer("a", 1, t0), Offer::Now);
        assert_eq!(c.offer("b", 1, t0), Offer::Now);
        assert_eq!(c.offer("c", 1, t0), Offer::Refused);
        assert_eq!(
            c.offer("a", 2, t0),
            Offer::Now,
            "a known topic is still served"
        );
        let mut due = c.take_due(t0);
        due.sort();
        assert_eq!(due, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
        // Once both have been quiet for a gap, they make room.
        c.take_due(t0 + GAP);
        assert_eq!(c.offer("c", 1, t0 + GAP), Offer::Now);
    }

    proptest! {
        /// Whatever the offers' timing: sends of a topic are at least a gap apart, every sent
        /// value is the latest offered before its send, and the last value offered is sent.
        /// The sender is modelled as the real one runs: it looks again only when an offer
        /// wakes it (`Now`, `Later`) or at the `next_due` it computed after its last look.
        #[test]
        fn at_most_one_send_per_gap_and_the_last_value_is_never_lost(
            steps in proptest::collection::vec((0u64..400, 0usize..3, any::<bool>()), 1..200),
        ) {
            let t0 = Instant::now();
            let mut c = Coalescer::new(GAP, 8);
            let mut now = t0;
            let mut latest: HashMap<String, u32> = HashMap::new();
            let mut sent: HashMap<String, Vec<(Instant, u32)>> = HashMap::new();
            let (mut woken, mut wake_at) = (false, None::<Instant>);
            for (i, (advance, topic, offer)) in steps.into_iter().enumerate() {
                now += ms(advance);
                let topic = format!("t{topic}");
                if offer {
                    match c.offer(&topic, i as u32, now) {
                        Offer::Refused => prop_assert!(false, "refused"),
                        Offer::Now | Offer::Later => woken = true,
                        Offer::Replaced => {}
                    }
                    latest.insert(topic, i as u32);
                }
                if woken || wake_at.is_some_and(|t| now >= t) {
                    for (topic, v) in c.take_due(now) {
                        prop_assert_eq!(latest.get(&topic), Some(&v));
                        sent.entry(topic).or_default().push((now, v));
                    }
                    (woken, wake_at) = (false, c.next_due());
                }
            }
            // The sender keeps going after the last offer: everything waiting goes out.
            while let Some(at) = wake_at {
                now = now.max(at);
                for (topic, v) in c.take_due(now) {
                    sent.entry(topic).or_default().push((now, v));
                }
                wake_at = c.next_due();
            }
            for (topic, v) in &latest {
                let sends = &sent[topic];
                prop_assert_eq!(sends.last().map(|s| s.1), Some(*v));
                for pair in sends.windows(2) {
                    prop_assert!(pair[1].0 >= pair[0].0 + GAP);
                }
            }
        }
    }
}
