//! Pure decisions of the persistence actor, beyond coalescing ([`super::batch`]):
//!
//! - [`Backlog`]: the queue plus the flushes in flight. What a node-wide flush takes, what an
//!   entity's flush takes (only its own rows, at once), and which keys must wait because an
//!   older version of them is being written.
//! - [`Isolator`]: finding the rows that fail a batch for a reason of their own, by splitting
//!   the batch in halves, so the rest of it is written.
//! - [`PoisonPolicy`]: when such a row is retried and when it is set aside for an operator.
//! - [`Watermarks`]: when the backlog is too long (writers wait, the node is not ready) and
//!   when it is short enough again.
//!
//! No actix, tokio or SQL here; time is passed in.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::batch::{Coalescer, DirtyRow, Entry, RowKey};

/// Names one flush in flight.
pub type FlightId = u64;

/// Why a flush was started: it decides who is told about its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlightKind {
    /// The oldest rows of the node (interval, full batch, node-wide flush).
    Batch,
    /// The rows of entities whose critical writes wait for them (only theirs).
    Entities,
    /// A set-aside row written again by an operator: one shot, never retried or set aside.
    Reapply,
}

/// What is in flight, for the questions asked while it is.
#[derive(Debug)]
struct FlightInfo {
    kind: FlightKind,
    keys: Vec<RowKey>,
    oldest_seq: Option<u64>,
    since: Option<Instant>,
    /// Oldest sequence number per entity in this flight.
    entities: HashMap<Uuid, u64>,
}

/// Rows taken for one flush.
#[derive(Debug)]
pub struct Flight<T> {
    pub id: FlightId,
    pub kind: FlightKind,
    pub entries: Vec<Entry<T>>,
}

/// The queue and the flushes in flight: every row not yet committed is in exactly one of them.
#[derive(Debug)]
pub struct Backlog<T> {
    queue: Coalescer<T>,
    flights: HashMap<FlightId, FlightInfo>,
    busy: HashSet<RowKey>,
    next_flight: FlightId,
}

impl<T> Default for Backlog<T> {
    fn default() -> Self {
        Backlog {
            queue: Coalescer::new(),
            flights: HashMap::new(),
            busy: HashSet::new(),
            next_flight: 1,
        }
    }
}

impl<T> Backlog<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows not yet committed: queued plus in flight.
    pub fn len(&self) -> usize {
        self.queue.len() + self.busy.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The sequence number the next change will get.
    pub fn next_seq(&self) -> u64 {
        self.queue.next_seq()
    }

    pub fn push(&mut self, row: DirtyRow, tag: T, now: Instant) -> u64 {
        self.queue.push_at(row, tag, now)
    }

    /// Whether a node-wide batch is being written (one at a time: it is the background lane).
    pub fn batch_in_flight(&self) -> bool {
        self.flights.values().any(|f| f.kind == FlightKind::Batch)
    }

    /// The oldest `max` due rows for a node-wide batch, unless one is in flight already.
    pub fn take_batch(&mut self, max: usize, now: Instant) -> Option<Flight<T>> {
        if self.batch_in_flight() {
            return None;
        }
        let busy = &self.busy;
        let entries = self.queue.take_due(max, now, |k| busy.contains(k));
        self.launch(FlightKind::Batch, entries)
    }

    /// Every due row, not in flight, of the `waiting` entities (the ones a critical write
    /// waits for), whole entities until `max_rows` is reached: nothing of the rest of the
    /// backlog. Several entities share one flight when they wait at the same moment (a drain
    /// hands off thousands at once; one transaction each would exhaust the pool). Several
    /// flights of one entity may run together: they never share a key.
    pub fn take_entities(
        &mut self,
        waiting: impl IntoIterator<Item = Uuid>,
        max_rows: usize,
        now: Instant,
    ) -> Option<Flight<T>> {
        let mut entries = Vec::new();
        for entity in waiting {
            if entries.len() >= max_rows {
                break;
            }
            let busy = &self.busy;
            entries.extend(self.queue.take_entity(entity, now, |k| busy.contains(k)));
        }
        self.launch(FlightKind::Entities, entries)
    }

    /// A flight writing `row` once more, unless a version of its key is queued or in flight
    /// here: that version is newer and wins (then `None`).
    pub fn take_reapply(&mut self, row: DirtyRow, tag: T, now: Instant) -> Option<Flight<T>> {
        let key = row.key();
        if self.busy.contains(&key) || self.queue.contains(&key) {
            return None;
        }
        let seq = self.queue.allocate_seq();
        self.launch(FlightKind::Reapply, vec![Entry::new(row, seq, now, tag)])
    }

    fn launch(&mut self, kind: FlightKind, entries: Vec<Entry<T>>) -> Option<Flight<T>> {
        if entries.is_empty() {
            return None;
        }
        let id = self.next_flight;
        self.next_flight += 1;
        let mut entities: HashMap<Uuid, u64> = HashMap::new();
        for e in &entries {
            let seq = entities.entry(e.row.entity()).or_insert(e.first_seq);
            *seq = (*seq).min(e.first_seq);
        }
        let keys: Vec<RowKey> = entries.iter().map(|e| e.row.key()).collect();
        self.busy.extend(keys.iter().cloned());
        self.flights.insert(
            id,
            FlightInfo {
                kind,
                keys,
                oldest_seq: entries.iter().map(|e| e.first_seq).min(),
                since: entries.iter().map(|e| e.since).min(),
                entities,
            },
        );
        Some(Flight { id, kind, entries })
    }

    /// A flight ended: its keys are free again. Whatever was not written goes back through
    /// [`Backlog::restore`]. Returns the entities it carried.
    pub fn land(&mut self, id: FlightId) -> Vec<Uuid> {
        let Some(info) = self.flights.remove(&id) else {
            return Vec::new();
        };
        for key in &info.keys {
            self.busy.remove(key);
        }
        info.entities.into_keys().collect()
    }

    pub fn restore(&mut self, entries: Vec<Entry<T>>) {
        self.queue.restore(entries);
    }

    /// Oldest sequence number not yet committed, queued or in flight.
    pub fn oldest_seq(&self) -> Option<u64> {
        let flying = self.flights.values().filter_map(|f| f.oldest_seq).min();
        min_opt(self.queue.oldest(), flying)
    }

    /// Oldest sequence number of `entity` not yet committed, queued or in flight.
    pub fn oldest_seq_of(&self, entity: Uuid) -> Option<u64> {
        let flying = self
            .flights
            .values()
            .filter_map(|f| f.entities.get(&entity).copied())
            .min();
        min_opt(self.queue.oldest_of(entity), flying)
    }

    /// When the oldest change not yet committed was made (what a crash would lose).
    pub fn oldest_since(&self) -> Option<Instant> {
        let flying = self.flights.values().filter_map(|f| f.since).min();
        min_opt(self.queue.oldest_since(), flying)
    }
}

fn min_opt<V: Ord>(a: Option<V>, b: Option<V>) -> Option<V> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How one attempt at a range of a batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Committed.
    Written,
    /// Refused for a reason of some row in it (constraint, bad data): nothing committed.
    BadRow,
    /// Failed for a reason of the database or the connection: stop, keep the rest.
    Stop,
}

/// Finds the rows that make a batch fail on their own, by halving: the batch is tried whole,
/// a failing range is split in two and each half tried, down to single rows. Every other row
/// ends up in a committed range. For `b` bad rows in `n`, about `2·b·log2(n)` attempts.
#[derive(Debug)]
pub struct Isolator {
    /// Ranges still to try, the next one last.
    pending: Vec<Range<usize>>,
    bad: Vec<usize>,
    stopped: bool,
}

impl Isolator {
    pub fn new(len: usize) -> Self {
        Isolator {
            pending: (len > 0).then_some(0..len).into_iter().collect(),
            bad: Vec::new(),
            stopped: false,
        }
    }

    /// The range to try next, if any.
    pub fn next(&self) -> Option<Range<usize>> {
        if self.stopped {
            return None;
        }
        self.pending.last().cloned()
    }

    /// How the range returned by [`Isolator::next`] went.
    pub fn report(&mut self, attempt: Attempt) {
        if self.stopped {
            return;
        }
        let Some(range) = self.pending.pop() else {
            return;
        };
        match attempt {
            Attempt::Written => {}
            Attempt::BadRow if range.len() == 1 => self.bad.push(range.start),
            Attempt::BadRow => {
                let mid = range.start + range.len() / 2;
                self.pending.push(mid..range.end);
                self.pending.push(range.start..mid);
            }
            Attempt::Stop => {
                self.pending.push(range);
                self.stopped = true;
            }
        }
    }

    /// Indexes of the rows that failed alone.
    pub fn bad(&self) -> &[usize] {
        &self.bad
    }

    /// Indexes not yet tried (after a stop): their rows are kept for a later flush.
    #[cfg(test)]
    pub fn untried(&self) -> Vec<usize> {
        self.pending.iter().flat_map(|r| r.clone()).collect()
    }
}

/// What to do with a row after it failed on its own again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again, not before this long from now.
    RetryAfter(Duration),
    /// Stop retrying: set the row aside (compensation) so it no longer holds anything up.
    SetAside,
}

/// When a row that fails for a reason of its own becomes poison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoisonPolicy {
    /// Failures of a row before it is set aside (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry; it doubles with each failure. A constraint can be
    /// satisfied a moment later (the row it needs commits), so a retry is worth a short wait.
    pub first_delay: Duration,
}

impl Default for PoisonPolicy {
    fn default() -> Self {
        PoisonPolicy {
            max_attempts: 3,
            first_delay: Duration::from_millis(100),
        }
    }
}

impl PoisonPolicy {
    /// The verdict after a row's `attempts`-th failure (counting this one).
    pub fn verdict(&self, attempts: u32) -> Verdict {
        if attempts >= self.max_attempts.max(1) {
            return Verdict::SetAside;
        }
        let doubling = 1u32 << attempts.saturating_sub(1).min(10);
        Verdict::RetryAfter(self.first_delay.saturating_mul(doubling))
    }
}

/// Hysteresis on the backlog's length: over `high` the node is under pressure (writers wait,
/// readiness is off) until the backlog is at or below `low`, so it does not flap around one
/// mark while a batch is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermarks {
    pub high: usize,
    pub low: usize,
    over: bool,
}

impl Watermarks {
    /// `low` is kept below `high`.
    pub fn new(high: usize, low: usize) -> Self {
        let high = high.max(1);
        Watermarks {
            high,
            low: low.min(high - 1),
            over: false,
        }
    }

    pub fn over(&self) -> bool {
        self.over
    }

    /// Looks at the backlog's length; returns the new state when it changed.
    pub fn observe(&mut self, backlog: usize) -> Option<bool> {
        let next = if self.over {
            backlog > self.low
        } else {
            backlog >= self.high
        };
        (next != self.over).then(|| {
            self.over = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::batch::CharacterDirty;
    use proptest::prelude::*;

    fn row(id: Uuid, hp: i32) -> DirtyRow {
        DirtyRow::Character(CharacterDirty {
            id,
            epoch: 1,
            location: "a".into(),
            hp,
            xp: 0,
            level: 1,
            skill_points: 0,
            travel: None,
        })
    }

    #[test]
    fn an_entity_flush_takes_only_its_rows_and_waits_for_its_rows_in_flight() {
        let mut b: Backlog<()> = Backlog::new();
        let now = Instant::now();
        let e = Uuid::new_v4();
        b.push(row(e, 1), (), now);
        for i in 0..1000 {
            b.push(row(Uuid::new_v4(), i), (), now);
        }
        let batch = b.take_batch(10, now).unwrap();
        assert!(batch.entries.iter().any(|x| x.row.entity() == e));
        assert!(b.take_batch(10, now).is_none(), "one batch at a time");
        b.push(row(e, 2), (), now); // a newer version while the older is being written
        assert!(
            b.take_entities([e], 100, now).is_none(),
            "the newer version waits for the one in flight"
        );
        assert_eq!(b.oldest_seq_of(e), Some(1));
        assert_eq!(b.land(batch.id).len(), 10);
        assert_eq!(
            b.oldest_seq_of(e),
            Some(1002),
            "the committed change is gone"
        );
        let mine = b.take_entities([e], 100, now).unwrap();
        assert_eq!(mine.entries.len(), 1);
        assert_eq!(mine.kind, FlightKind::Entities);
        assert_eq!(b.len(), 992, "991 others queued, one in flight");
        let other = b.take_batch(2000, now).unwrap();
        assert_eq!(
            other.entries.len(),
            991,
            "a batch runs beside an entity flush"
        );
        assert!(other.entries.iter().all(|x| x.row.entity() != e));
    }

    #[test]
    fn waiting_entities_share_a_flight_up_to_the_row_limit() {
        let mut b: Backlog<()> = Backlog::new();
        let now = Instant::now();
        let waiting: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        for e in &waiting {
            b.push(row(*e, 1), (), now);
        }
        b.push(row(Uuid::new_v4(), 1), (), now); // nobody waits for this one
        let first = b.take_entities(waiting.iter().copied(), 3, now).unwrap();
        assert_eq!(first.entries.len(), 3, "whole entities until the limit");
        let second = b.take_entities(waiting.iter().copied(), 3, now).unwrap();
        assert_eq!(second.entries.len(), 2);
        assert!(b.take_entities(waiting.iter().copied(), 3, now).is_none());
        assert_eq!(b.queued(), 1, "the row nobody waits for stays queued");
    }

    #[test]
    fn a_reapplied_row_loses_to_a_newer_queued_version() {
        let mut b: Backlog<()> = Backlog::new();
        let now = Instant::now();
        let (e, f) = (Uuid::new_v4(), Uuid::new_v4());
        b.push(row(e, 1), (), now);
        assert!(b.take_reapply(row(e, 0), (), now).is_none());
        let flight = b.take_reapply(row(f, 0), (), now).unwrap();
        assert_eq!(flight.kind, FlightKind::Reapply);
        assert!(b.take_reapply(row(f, 0), (), now).is_none(), "in flight");
        b.land(flight.id);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn oldest_age_covers_rows_in_flight() {
        let mut b: Backlog<()> = Backlog::new();
        let t0 = Instant::now();
        b.push(row(Uuid::new_v4(), 1), (), t0);
        b.push(row(Uuid::new_v4(), 1), (), t0 + Duration::from_secs(1));
        let flight = b.take_batch(1, t0).unwrap();
        assert_eq!(b.oldest_since(), Some(t0));
        b.land(flight.id);
        assert_eq!(b.oldest_since(), Some(t0 + Duration::from_secs(1)));
        let rest = b.take_batch(1, t0).unwrap();
        b.land(rest.id);
        assert_eq!((b.oldest_since(), b.oldest_seq(), b.len()), (None, None, 0));
    }

    #[test]
    fn poison_after_bounded_retries() {
        let p = PoisonPolicy::default();
        assert_eq!(
            p.verdict(1),
            Verdict::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(
            p.verdict(2),
            Verdict::RetryAfter(Duration::from_millis(200))
        );
        assert_eq!(p.verdict(3), Verdict::SetAside);
        assert_eq!(p.verdict(30), Verdict::SetAside);
        let once = PoisonPolicy {
            max_attempts: 0,
            ..p
        };
        assert_eq!(once.verdict(1), Verdict::SetAside);
    }

    #[test]
    fn watermarks_have_hysteresis() {
        let mut w = Watermarks::new(100, 50);
        assert_eq!(w.observe(99), None);
        assert_eq!(w.observe(100), Some(true));
        assert_eq!(w.observe(70), None, "still over until the low mark");
        assert_eq!(w.observe(50), Some(false));
        assert_eq!(w.observe(99), None);
        let silly = Watermarks::new(10, 20);
        assert_eq!((silly.high, silly.low), (10, 9));
    }

    #[test]
    fn a_stop_keeps_every_untried_row() {
        let mut iso = Isolator::new(8);
        assert_eq!(iso.next(), Some(0..8));
        iso.report(Attempt::BadRow);
        assert_eq!(iso.next(), Some(0..4));
        iso.report(Attempt::Written);
        assert_eq!(iso.next(), Some(4..8));
        iso.report(Attempt::Stop);
        assert_eq!(iso.next(), None);
        assert_eq!(iso.untried(), vec![4, 5, 6, 7]);
        assert!(iso.bad().is_empty());
    }

    proptest! {
        /// Whatever rows are bad, halving finds exactly them, every other row is in a written
        /// range, and it takes no more than about 2·b·log2(n) + 1 attempts.
        #[test]
        fn halving_finds_exactly_the_bad_rows(n in 1usize..300, bad in proptest::collection::hash_set(0usize..300, 0..6)) {
            let bad: HashSet<usize> = bad.into_iter().filter(|i| *i < n).collect();
            let mut iso = Isolator::new(n);
            let mut written = vec![false; n];
            let mut attempts = 0;
            while let Some(range) = iso.next() {
                attempts += 1;
                if range.clone().any(|i| bad.contains(&i)) {
                    iso.report(Attempt::BadRow);
                } else {
                    range.for_each(|i| written[i] = true);
                    iso.report(Attempt::Written);
                }
            }
            let found: HashSet<usize> = iso.bad().iter().copied().collect();
            prop_assert_eq!(&found, &bad);
            for (i, w) in written.iter().enumerate() {
                prop_assert_eq!(*w, !bad.contains(&i));
            }
            let depth = (usize::BITS - n.leading_zeros()) as usize + 1;
            prop_assert!(attempts <= 1 + 2 * bad.len() * depth, "{} attempts", attempts);
        }
    }
}
