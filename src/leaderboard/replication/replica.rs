//! One board's replica (pure): its definition, the owner instance it follows, and per bucket a
//! rank cache and the records reads answer with. Rank changes apply only when their generation
//! is newer than the record's, so a change seen twice or late never takes a record back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::super::board::Board;
use super::super::paging::{self, From as PageFrom};
use super::super::rank_cache::RankCache;
use super::super::reads::{rank_entry, Buckets};
use super::super::rules::Record;
use super::wire::{BoardDef, Generation, Instance, RecordData, SnapshotCursor};

/// A record in a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub rec: Record,
    pub username: Option<String>,
    pub generation: Generation,
}

/// One (board, expiry) bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub cache: RankCache,
    pub records: HashMap<Uuid, Rec>,
}

/// A replica of one board instance.
#[derive(Debug, Clone)]
pub struct BoardReplica {
    pub board: Arc<Board>,
    pub def: BoardDef,
    /// The node that owns the board (and writes its changes to its log).
    pub origin: String,
    pub instance: Instance,
    pub buckets: BTreeMap<i64, Bucket>,
    /// Holds a complete copy (of this or an earlier instance): reads may be answered.
    pub serving: bool,
    /// On the origin: the counter of the next generation.
    pub next_seq: u64,
}

impl BoardReplica {
    /// An empty replica of `def`; an unusable definition is an error.
    pub fn new(def: BoardDef, origin: &str, instance: Instance) -> Result<BoardReplica, String> {
        let board = Board::from_row(def.to_row())?;
        Ok(BoardReplica {
            board: Arc::new(board),
            def,
            origin: origin.to_string(),
            instance,
            buckets: BTreeMap::new(),
            serving: false,
            next_seq: 1,
        })
    }

    pub fn id(&self) -> &str {
        &self.def.id
    }

    /// Records in every bucket.
    pub fn len(&self) -> u64 {
        self.buckets.values().map(|b| b.records.len() as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts or replaces a record when `data` is newer than the one held.
    pub fn upsert(&mut self, expiry: i64, data: &RecordData) -> bool {
        let order = self.board.order;
        let bucket = self.buckets.entry(expiry).or_insert_with(|| Bucket {
            cache: RankCache::new(order),
            records: HashMap::new(),
        });
        if let Some(old) = bucket.records.get(&data.owner) {
            if old.generation >= data.generation {
                return false;
            }
        }
        let rec = Rec {
            rec: Record {
                score: data.score,
                subscore: data.subscore,
                num_score: data.num_score,
                max_num_score: data.max_num_score,
                metadata: data.metadata.clone(),
                create_time: data.create_time,
                update_time: data.update_time,
            },
            username: data.username.clone(),
            generation: data.generation,
        };
        let entry = rank_entry(data.owner, &rec.rec);
        // The cache keeps an entry only for a newer `num_score`; the generation decided here.
        if !bucket.cache.upsert(entry) && bucket.cache.get(data.owner) != Some(entry) {
            bucket.cache.remove(data.owner);
            bucket.cache.upsert(entry);
        }
        bucket.records.insert(data.owner, rec);
        true
    }

    /// Removes a record when the delete is newer than it.
    pub fn delete(&mut self, expiry: i64, owner: Uuid, generation: Generation) -> bool {
        let Some(bucket) = self.buckets.get_mut(&expiry) else {
            return false;
        };
        match bucket.records.get(&owner) {
            Some(old) if old.generation < generation => {
                bucket.records.remove(&owner);
                bucket.cache.remove(owner);
                true
            }
            _ => false,
        }
    }

    /// Drops buckets that expired before `horizon` (as the owner trims them).
    pub fn trim(&mut self, horizon: i64) {
        self.buckets
            .retain(|&expiry, _| expiry == 0 || expiry > horizon);
    }

    /// Up to `max_records` records (and about `max_bytes`) after `after`, bucket by bucket in
    /// rank order, with the cursor of the next page.
    pub fn page(
        &self,
        after: Option<SnapshotCursor>,
        max_records: usize,
        max_bytes: usize,
    ) -> (Vec<(i64, RecordData)>, Option<SnapshotCursor>) {
        let mut out = Vec::new();
        let mut bytes = 0;
        let start = after.map_or(i64::MIN, |a| a.0);
        for (&expiry, bucket) in self.buckets.range(start..) {
            let mut from = match after {
                Some((e, score, sub, owner)) if e == expiry => PageFrom::After((score, sub, owner)),
                _ => PageFrom::Top,
            };
            loop {
                let want = (max_records - out.len()).clamp(1, 1024);
                let page = paging::page(&bucket.cache, from, want);
                for (_, e) in &page.entries {
                    let Some(rec) = bucket.records.get(&e.owner) else {
                        continue;
                    };
                    let data = record_data(e.owner, rec);
                    bytes += data.approx_bytes();
                    out.push((expiry, data));
                    let full = out.len() >= max_records || bytes >= max_bytes;
                    if full {
                        return (out, Some((expiry, e.score, e.subscore, e.owner)));
                    }
                }
                match page.next {
                    Some((_, e)) => from = PageFrom::After(paging::key_of(&e)),
                    None => break,
                }
            }
        }
        (out, None)
    }
}

/// A record as the wire carries it.
pub fn record_data(owner: Uuid, r: &Rec) -> RecordData {
    RecordData {
        owner,
        score: r.rec.score,
        subscore: r.rec.subscore,
        num_score: r.rec.num_score,
        max_num_score: r.rec.max_num_score,
        metadata: r.rec.metadata.clone(),
        create_time: r.rec.create_time,
        update_time: r.rec.update_time,
        username: r.username.clone(),
        generation: r.generation,
    }
}

impl Buckets for BoardReplica {
    fn cached(&self) -> bool {
        true
    }

    fn has_bucket(&self, expiry: i64) -> bool {
        self.buckets.contains_key(&expiry)
    }

    fn cache(&self, expiry: i64) -> Option<&RankCache> {
        self.buckets.get(&expiry).map(|b| &b.cache)
    }

    fn record(&self, expiry: i64, owner: Uuid) -> Option<(&Record, Option<&str>)> {
        let r = self.buckets.get(&expiry)?.records.get(&owner)?;
        Some((&r.rec, r.username.as_deref()))
    }

    fn bucket_len(&self, expiry: i64) -> u64 {
        self.buckets
            .get(&expiry)
            .map_or(0, |b| b.records.len() as u64)
    }
}

#[cfg(test)]
/// Rank entries of a bucket in rank order (tests compare replicas with owners through this).
pub fn ranked(bucket: &Bucket) -> Vec<super::super::rank_cache::RankEntry> {
    bucket.cache.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::leaderboards::BoardRow;

    fn data(owner: u128, score: i64, seq: u64) -> RecordData {
        RecordData {
            owner: Uuid::from_u128(owner),
            score,
            subscore: 0,
            num_score: 1,
            max_num_score: None,
            metadata: "{}".into(),
            create_time: 0,
            update_time: 0,
            username: Some(format!("u{owner}")),
            generation: Generation { epoch: 1, seq },
        }
    }

    fn replica() -> BoardReplica {
        let def = BoardDef::from(&BoardRow::leaderboard("b"));
        BoardReplica::new(def, "o", Instance::default()).unwrap()
    }

    #[test]
    fn generations_decide() {
        let mut r = replica();
        assert!(r.upsert(0, &data(1, 10, 5)));
        assert!(!r.upsert(0, &data(1, 3, 4)), "older");
        assert!(!r.upsert(0, &data(1, 3, 5)), "same");
        assert!(!r.delete(0, Uuid::from_u128(1), Generation { epoch: 1, seq: 5 }));
        // num_score unchanged, score down: the cache follows the generation.
        assert!(r.upsert(0, &data(1, 2, 6)));
        assert_eq!(
            r.buckets[&0].cache.get(Uuid::from_u128(1)).unwrap().score,
            2
        );
        assert!(r.delete(0, Uuid::from_u128(1), Generation { epoch: 1, seq: 7 }));
        assert!(r.is_empty());
        assert!(r.buckets[&0].cache.is_empty());
        // A new epoch beats any counter of an older one.
        assert!(r.upsert(0, &data(2, 1, u64::MAX)));
        let mut newer = data(2, 0, 0);
        newer.generation.epoch = 2;
        assert!(r.upsert(0, &newer));
    }

    #[test]
    fn pages_cover_every_bucket_once() {
        let mut r = replica();
        for i in 0..50u128 {
            r.upsert(0, &data(i, (i % 7) as i64, 1));
            r.upsert(100, &data(i, i as i64, 1));
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (records, next) = r.page(after, 7, 1 << 20);
            assert!(records.len() <= 7);
            seen.extend(records.into_iter().map(|(e, d)| (e, d.owner)));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen.len(), 100);
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), 100);
        assert_eq!(r.len(), 100);
        r.trim(50);
        assert_eq!(
            r.len(),
            100,
            "expiry 100 is after the horizon, 0 never expires"
        );
        r.trim(100);
        assert_eq!(r.len(), 50);
    }
}
