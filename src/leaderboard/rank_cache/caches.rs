//! All rank-cache buckets of a node, by board and expiry, with the config blacklist.

use std::collections::{HashMap, HashSet};

use super::{RankCache, RankEntry, SortOrder};

/// All rank-cache buckets of a node, keyed by (board id, expiry unix seconds; 0 = never).
#[derive(Debug, Default)]
pub struct RankCaches {
    blacklist_all: bool,
    blacklist: HashSet<String>,
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

    #[cfg(test)]
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

    #[cfg(test)]
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
