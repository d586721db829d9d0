//! An origin's replication log (pure): versions, the bounded buffer of recent entries that
//! replicas catch up from, and cutting the entries not sent yet into batches, deduplicated
//! per record.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

use super::wire::{Batch, Change, Entry};

/// The buffer does not reach back to the version asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evicted;

/// The log of this node's board changes.
#[derive(Debug)]
pub struct OriginLog {
    origin: String,
    incarnation: u64,
    /// The last version appended (0: none yet).
    head: u64,
    /// Recent entries, oldest first, versions contiguous up to `head`.
    buffer: VecDeque<Entry>,
    capacity: usize,
    /// The last version taken into a batch.
    sent: u64,
    /// When the oldest entry not sent yet was appended (ms, caller's clock).
    unsent_since_ms: Option<i64>,
}

impl OriginLog {
    /// `capacity`: entries kept for catch-up (at least 1).
    pub fn new(origin: impl Into<String>, incarnation: u64, capacity: usize) -> OriginLog {
        OriginLog {
            origin: origin.into(),
            incarnation,
            head: 0,
            buffer: VecDeque::new(),
            capacity: capacity.max(1),
            sent: 0,
            unsent_since_ms: None,
        }
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn head(&self) -> u64 {
        self.head
    }

    /// Entries appended and not taken into a batch yet.
    pub fn unsent(&self) -> u64 {
        self.head - self.sent
    }

    /// When the oldest unsent entry was appended.
    pub fn unsent_since_ms(&self) -> Option<i64> {
        self.unsent_since_ms
    }

    /// Appends a change committed at `now_ms`; returns its version. The oldest entry leaves
    /// the buffer once it is full.
    pub fn append(&mut self, change: Change, now_ms: i64) -> u64 {
        self.head += 1;
        if self.buffer.len() >= self.capacity {
            self.buffer.pop_front();
        }
        self.buffer.push_back(Entry {
            version: self.head,
            committed_ms: now_ms,
            change,
        });
        self.unsent_since_ms.get_or_insert(now_ms);
        self.head
    }

    /// The oldest version still buffered (`head + 1` when the buffer is empty).
    fn first(&self) -> u64 {
        self.buffer.front().map_or(self.head + 1, |e| e.version)
    }

    /// Up to `max_entries` entries after `since` (and at most about `max_bytes`, but always at
    /// least one), as a batch. [`Evicted`] when the buffer no longer holds `since + 1`.
    pub fn since(
        &self,
        since: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Batch, Evicted> {
        let since = since.min(self.head);
        if since + 1 < self.first() {
            return Err(Evicted);
        }
        let skip = (since + 1 - self.first()) as usize;
        let entries = take_bounded(self.buffer.iter().skip(skip), max_entries, max_bytes);
        let to = entries.last().map_or(since, |e| e.version);
        Ok(self.batch(since + 1, to, dedupe(entries)))
    }

    /// The entries not sent yet, deduplicated, as the next batch (up to `max_entries` and
    /// about `max_bytes`). Entries evicted before they were sent are skipped: the batch then
    /// starts later and replicas see a gap, which they resolve with a snapshot.
    pub fn take_batch(&mut self, max_entries: usize, max_bytes: usize) -> Option<Batch> {
        if self.sent >= self.head {
            return None;
        }
        let from = (self.sent + 1).max(self.first());
        let skip = (from - self.first()) as usize;
        let entries = take_bounded(self.buffer.iter().skip(skip), max_entries, max_bytes);
        let to = entries.last().map_or(from - 1, |e| e.version);
        self.sent = to;
        // Versions are consecutive in the buffer: the first unsent entry is found by index,
        // not by a scan of everything buffered (this runs once per batch sent).
        let next = (to + 1).saturating_sub(self.first()) as usize;
        self.unsent_since_ms = self.buffer.get(next).map(|e| e.committed_ms);
        Some(self.batch(from, to, dedupe(entries)))
    }

    /// "My log is at `head`", for an idle stream.
    pub fn heartbeat(&self) -> Batch {
        self.batch(self.head + 1, self.head, Vec::new())
    }

    fn batch(&self, from: u64, to: u64, entries: Vec<Entry>) -> Batch {
        Batch {
            origin: self.origin.clone(),
            incarnation: self.incarnation,
            from,
            to,
            entries,
        }
    }
}

fn take_bounded<'a>(
    entries: impl Iterator<Item = &'a Entry>,
    max_entries: usize,
    max_bytes: usize,
) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for e in entries.take(max_entries.max(1)) {
        let size = e.change.approx_bytes() + 16;
        if !out.is_empty() && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        out.push(e.clone());
    }
    out
}

/// Keeps, of several changes of one record, only the latest (in version order); board-level
/// changes all stay. Applying the result in order gives the same state as applying all.
pub fn dedupe(entries: Vec<Entry>) -> Vec<Entry> {
    let mut last: HashMap<(&str, i64, Uuid), u64> = HashMap::new();
    for e in &entries {
        if let Some(key) = e.change.record_key() {
            last.insert(key, e.version);
        }
    }
    let keep: Vec<bool> = entries
        .iter()
        .map(|e| {
            e.change
                .record_key()
                .is_none_or(|k| last.get(&k) == Some(&e.version))
        })
        .collect();
    entries
        .into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::wire::{Generation, RecordData};
    use super::*;

    fn update(owner: u128, score: i64) -> Change {
        Change::RankUpdated {
            board: "b".into(),
            expiry: 0,
            order: 1,
            record: RecordData {
                owner: Uuid::from_u128(owner),
                score,
                subscore: 0,
                num_score: 1,
                max_num_score: None,
                metadata: "{}".into(),
                create_time: 0,
                update_time: 0,
                username: None,
                generation: Generation {
                    epoch: 1,
                    seq: score as u64,
                },
            },
        }
    }

    #[test]
    fn versions_buffer_and_eviction() {
        let mut log = OriginLog::new("a", 1, 3);
        for i in 1..=5 {
            assert_eq!(log.append(update(i, i as i64), 0), i as u64);
        }
        assert_eq!(log.head(), 5);
        // 3..=5 are buffered.
        assert_eq!(log.since(1, 10, 1 << 20), Err(Evicted));
        let b = log.since(2, 10, 1 << 20).unwrap();
        assert_eq!((b.from, b.to, b.entries.len()), (3, 5, 3));
        let b = log.since(4, 1, 1 << 20).unwrap();
        assert_eq!((b.from, b.to), (5, 5));
        // Caught up: an empty batch at the head.
        let b = log.since(5, 10, 1 << 20).unwrap();
        assert_eq!((b.from, b.to, b.entries.len()), (6, 5, 0));
        let h = log.heartbeat();
        assert_eq!((h.from, h.to), (6, 5));
    }

    #[test]
    fn batches_take_unsent_entries_deduplicated() {
        let mut log = OriginLog::new("a", 1, 100);
        log.append(update(1, 1), 10);
        log.append(update(2, 2), 11);
        log.append(update(1, 3), 12);
        assert_eq!(log.unsent(), 3);
        assert_eq!(log.unsent_since_ms(), Some(10));
        let b = log.take_batch(100, 1 << 20).unwrap();
        assert_eq!((b.from, b.to), (1, 3));
        let versions: Vec<u64> = b.entries.iter().map(|e| e.version).collect();
        assert_eq!(versions, vec![2, 3]);
        assert_eq!(log.unsent(), 0);
        assert!(log.take_batch(100, 1 << 20).is_none());
        // Size-bounded: two entries per batch.
        for i in 0..5 {
            log.append(update(10 + i, 0), 20);
        }
        let b = log.take_batch(2, 1 << 20).unwrap();
        assert_eq!((b.from, b.to), (4, 5));
        assert_eq!(log.unsent_since_ms(), Some(20));
        let b = log.take_batch(100, 1).unwrap();
        assert_eq!(
            (b.from, b.to),
            (6, 6),
            "at least one entry whatever the bytes"
        );
    }

    #[test]
    fn unsent_entries_evicted_show_as_a_gap() {
        let mut log = OriginLog::new("a", 1, 2);
        for i in 1..=5 {
            log.append(update(i, 0), 0);
        }
        let b = log.take_batch(100, 1 << 20).unwrap();
        assert_eq!((b.from, b.to), (4, 5));
    }

    #[test]
    fn dedupe_keeps_board_changes_and_latest_record_changes() {
        let deleted = Change::RankDeleted {
            board: "b".into(),
            expiry: 0,
            owner: Uuid::from_u128(1),
            generation: Generation { epoch: 1, seq: 9 },
        };
        let gone = Change::BoardDeleted {
            board: "b".into(),
            instance: Default::default(),
        };
        let entries: Vec<Entry> = [update(1, 1), gone, update(1, 2), deleted, update(2, 1)]
            .into_iter()
            .enumerate()
            .map(|(i, change)| Entry {
                version: i as u64 + 1,
                committed_ms: 0,
                change,
            })
            .collect();
        let kept: Vec<u64> = dedupe(entries).iter().map(|e| e.version).collect();
        assert_eq!(kept, vec![2, 4, 5]);
    }
}
