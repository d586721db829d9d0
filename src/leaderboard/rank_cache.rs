//! The rank cache: per (board, expiry) bucket, the records of a leaderboard in rank order.
//!
//! Order (as Nakama's `RankAsc`/`RankDesc`): score, then subscore, then owner id (its 16 bytes
//! compared big-endian), all three in the board's direction. A descending board ranks the higher
//! score first and, on a full tie, the higher owner id first.
//!
//! SKELETON: a sorted `Vec` stands in for the order-statistic tree; the API is final.

use std::collections::HashMap;

use uuid::Uuid;

/// A board's sort order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortOrder {
    Ascending,
    Descending,
}

impl SortOrder {
    /// Nakama's numbers: 0 ascending, 1 descending.
    pub fn from_nakama(n: i64) -> Option<SortOrder> {
        match n {
            0 => Some(SortOrder::Ascending),
            1 => Some(SortOrder::Descending),
            _ => None,
        }
    }

    pub fn nakama_number(self) -> i64 {
        match self {
            SortOrder::Ascending => 0,
            SortOrder::Descending => 1,
        }
    }

    /// `"asc"`/`"ascending"` or `"desc"`/`"descending"` (case-insensitive).
    pub fn parse(s: &str) -> Option<SortOrder> {
        match s.to_ascii_lowercase().as_str() {
            "asc" | "ascending" => Some(SortOrder::Ascending),
            "desc" | "descending" => Some(SortOrder::Descending),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::Ascending => "asc",
            SortOrder::Descending => "desc",
        }
    }
}

/// One owner's entry in a bucket. `generation` is Nakama's `num_score`: an update replaces the
/// cached entry only when its generation is newer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RankEntry {
    pub owner: Uuid,
    pub score: i64,
    pub subscore: i64,
    pub generation: u32,
}

/// Normalised key: compares ascending whatever the board's order.
type Key = (i64, i64, u128);

fn key_of(order: SortOrder, score: i64, subscore: i64, owner: Uuid) -> Key {
    let o = owner.as_u128();
    match order {
        SortOrder::Ascending => (score, subscore, o),
        SortOrder::Descending => (!score, !subscore, !o),
    }
}

/// The records of one (board, expiry) bucket in rank order.
#[derive(Clone, Debug)]
pub struct RankCache {
    order: SortOrder,
    sorted: Vec<(Key, RankEntry)>,
    owners: HashMap<Uuid, RankEntry>,
}

impl RankCache {
    pub fn new(order: SortOrder) -> RankCache {
        RankCache {
            order,
            sorted: Vec::new(),
            owners: HashMap::new(),
        }
    }

    /// A bucket built from `entries` in any order (per owner the newest generation wins).
    pub fn from_entries(order: SortOrder, entries: impl IntoIterator<Item = RankEntry>) -> Self {
        let mut cache = RankCache::new(order);
        cache.warm(entries);
        cache
    }

    pub fn order(&self) -> SortOrder {
        self.order
    }

    /// Inserts or replaces `entry.owner`'s entry when `entry.generation` is newer than the
    /// cached one (or there is none). Returns whether the cache changed.
    pub fn upsert(&mut self, entry: RankEntry) -> bool {
        if let Some(old) = self.owners.get(&entry.owner) {
            if entry.generation <= old.generation {
                return false;
            }
            let old = *old;
            self.remove(old.owner);
        }
        let key = key_of(self.order, entry.score, entry.subscore, entry.owner);
        let pos = self.sorted.partition_point(|(k, _)| *k < key);
        self.sorted.insert(pos, (key, entry));
        self.owners.insert(entry.owner, entry);
        true
    }

    /// Removes `owner`'s entry; returns whether there was one.
    pub fn remove(&mut self, owner: Uuid) -> bool {
        let Some(old) = self.owners.remove(&owner) else {
            return false;
        };
        let key = key_of(self.order, old.score, old.subscore, old.owner);
        let pos = self.sorted.partition_point(|(k, _)| *k < key);
        self.sorted.remove(pos);
        true
    }

    /// `owner`'s cached entry.
    pub fn get(&self, owner: Uuid) -> Option<RankEntry> {
        self.owners.get(&owner).copied()
    }

    /// `owner`'s 1-based rank.
    pub fn rank_of(&self, owner: Uuid) -> Option<u64> {
        let e = self.owners.get(&owner)?;
        let key = key_of(self.order, e.score, e.subscore, e.owner);
        Some(self.sorted.partition_point(|(k, _)| *k < key) as u64 + 1)
    }

    /// The entry at a 1-based rank.
    pub fn at_rank(&self, rank: u64) -> Option<RankEntry> {
        let i = usize::try_from(rank.checked_sub(1)?).ok()?;
        self.sorted.get(i).map(|(_, e)| *e)
    }

    /// Up to `limit` entries from 1-based rank `first_rank` on, with their ranks.
    pub fn range(&self, first_rank: u64, limit: usize) -> Vec<(u64, RankEntry)> {
        let first = first_rank.max(1);
        let Ok(start) = usize::try_from(first - 1) else {
            return Vec::new();
        };
        self.sorted
            .iter()
            .skip(start)
            .take(limit)
            .enumerate()
            .map(|(i, (_, e))| (first + i as u64, *e))
            .collect()
    }

    /// Bulk load: records in any order (sorted input is fastest). Existing entries stay unless
    /// a warmed entry for the same owner has a newer generation.
    pub fn warm(&mut self, entries: impl IntoIterator<Item = RankEntry>) {
        for e in entries {
            self.upsert(e);
        }
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Approximate heap bytes held.
    pub fn approx_bytes(&self) -> usize {
        self.sorted.capacity() * std::mem::size_of::<(Key, RankEntry)>()
            + self.owners.capacity() * (std::mem::size_of::<(Uuid, RankEntry)>() + 1)
    }
}

/// All rank-cache buckets of a node, keyed by (board id, expiry unix seconds; 0 = never).
#[derive(Debug, Default)]
pub struct RankCaches {
    blacklist_all: bool,
    blacklist: std::collections::HashSet<String>,
    boards: HashMap<String, HashMap<i64, RankCache>>,
}

impl RankCaches {
    /// `blacklist`: board ids whose ranks are not cached; `*` turns the cache off for all.
    pub fn new(blacklist: Vec<String>) -> RankCaches {
        RankCaches {
            blacklist_all: blacklist.iter().any(|b| b == "*"),
            blacklist: blacklist.into_iter().filter(|b| b != "*").collect(),
            boards: HashMap::new(),
        }
    }

    pub fn is_blacklisted(&self, board_id: &str) -> bool {
        self.blacklist_all || self.blacklist.contains(board_id)
    }

    pub fn get(&self, board_id: &str, expiry: i64) -> Option<&RankCache> {
        self.boards.get(board_id)?.get(&expiry)
    }

    pub fn get_mut(&mut self, board_id: &str, expiry: i64) -> Option<&mut RankCache> {
        self.boards.get_mut(board_id)?.get_mut(&expiry)
    }

    /// Stores a bucket (replacing any). Returns false, storing nothing, when the board is
    /// blacklisted.
    pub fn insert(&mut self, board_id: &str, expiry: i64, cache: RankCache) -> bool {
        if self.is_blacklisted(board_id) {
            return false;
        }
        self.boards
            .entry(board_id.to_string())
            .or_default()
            .insert(expiry, cache);
        true
    }

    /// The bucket, created empty when missing; `None` when the board is blacklisted.
    pub fn get_or_create(
        &mut self,
        board_id: &str,
        expiry: i64,
        order: SortOrder,
    ) -> Option<&mut RankCache> {
        if self.is_blacklisted(board_id) {
            return None;
        }
        if !self.boards.contains_key(board_id) {
            self.boards.insert(board_id.to_string(), HashMap::new());
        }
        let buckets = self.boards.get_mut(board_id)?;
        Some(
            buckets
                .entry(expiry)
                .or_insert_with(|| RankCache::new(order)),
        )
    }

    /// Bulk-loads entries into a bucket (created when missing). False when blacklisted.
    pub fn warm(
        &mut self,
        board_id: &str,
        expiry: i64,
        order: SortOrder,
        entries: impl IntoIterator<Item = RankEntry>,
    ) -> bool {
        match self.get_or_create(board_id, expiry, order) {
            Some(cache) => {
                cache.warm(entries);
                true
            }
            None => false,
        }
    }

    /// Drops one bucket.
    pub fn remove(&mut self, board_id: &str, expiry: i64) -> Option<RankCache> {
        let buckets = self.boards.get_mut(board_id)?;
        let removed = buckets.remove(&expiry);
        if buckets.is_empty() {
            self.boards.remove(board_id);
        }
        removed
    }

    /// Drops every bucket of a board.
    pub fn remove_board(&mut self, board_id: &str) -> bool {
        self.boards.remove(board_id).is_some()
    }

    /// Drops buckets whose expiry is set and not after `now_unix` (as Nakama's `TrimExpired`).
    /// Returns how many were dropped.
    pub fn trim_expired(&mut self, now_unix: i64) -> usize {
        let mut dropped = 0;
        self.boards.retain(|_, buckets| {
            buckets.retain(|&expiry, _| {
                let keep = expiry == 0 || expiry > now_unix;
                if !keep {
                    dropped += 1;
                }
                keep
            });
            !buckets.is_empty()
        });
        dropped
    }

    /// Number of buckets.
    pub fn bucket_count(&self) -> usize {
        self.boards.values().map(|b| b.len()).sum()
    }

    /// (board id, expiry, bucket) for every bucket.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64, &RankCache)> {
        self.boards
            .iter()
            .flat_map(|(id, b)| b.iter().map(move |(e, c)| (id.as_str(), *e, c)))
    }

    pub fn approx_bytes(&self) -> usize {
        self.iter().map(|(_, _, c)| c.approx_bytes()).sum()
    }
}
