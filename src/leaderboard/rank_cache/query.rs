//! Read-only questions to a bucket: an owner's entry and rank, how many rank before a key,
//! the entry at a rank, a range of ranks, every entry in order.

use uuid::Uuid;

use super::node::NIL;
use super::{RankCache, RankEntry};

impl RankCache {
    /// `owner`'s cached entry.
    pub fn get(&self, owner: Uuid) -> Option<RankEntry> {
        let (leaf, pos) = self.find(owner)?;
        Some(self.leaf_entry(&self.leaves[leaf as usize], pos))
    }

    /// `owner`'s 1-based rank.
    pub fn rank_of(&self, owner: Uuid) -> Option<u64> {
        self.rank_and_entry(owner).map(|(r, _)| r)
    }

    /// `owner`'s 1-based rank and entry.
    pub fn rank_and_entry(&self, owner: Uuid) -> Option<(u64, RankEntry)> {
        let (leaf, pos) = self.find(owner)?;
        let l = &self.leaves[leaf as usize];
        let (found, before) = self.descend(&l.key(pos));
        debug_assert_eq!(found, leaf);
        Some((before + pos as u64 + 1, self.leaf_entry(l, pos)))
    }

    /// How many entries rank strictly before the key (score, subscore, owner), whether or not
    /// that key is cached: the 0-based rank it has or would have. O(log n).
    pub fn count_before(&self, score: i64, subscore: i64, owner: Uuid) -> u64 {
        let k = self.key(score, subscore, owner);
        let (leaf, before) = self.descend(&k);
        before + self.leaves[leaf as usize].lower_bound(&k) as u64
    }

    /// (leaf, position) of the entry at 0-based index `i` (< len).
    pub(super) fn seek(&self, mut i: u64) -> (u32, usize) {
        let mut node = self.root;
        for _ in 0..self.height {
            let inner = &self.inners[node as usize];
            let mut c = 0;
            while c + 1 < inner.len() && i >= inner.counts[c] as u64 {
                i -= inner.counts[c] as u64;
                c += 1;
            }
            node = inner.children[c];
        }
        (node, i as usize)
    }

    /// The entry at a 1-based rank.
    pub fn at_rank(&self, rank: u64) -> Option<RankEntry> {
        if rank == 0 || rank > self.len() as u64 {
            return None;
        }
        let (leaf, pos) = self.seek(rank - 1);
        Some(self.leaf_entry(&self.leaves[leaf as usize], pos))
    }

    /// Up to `limit` entries from 1-based rank `first_rank` (0 counts as 1) on, with their
    /// ranks.
    pub fn range(&self, first_rank: u64, limit: usize) -> Vec<(u64, RankEntry)> {
        let first = first_rank.max(1);
        if first > self.len() as u64 || limit == 0 {
            return Vec::new();
        }
        let n = limit.min((self.len() as u64 - first + 1) as usize);
        let mut out = Vec::with_capacity(n);
        let (mut leaf, mut pos) = self.seek(first - 1);
        while out.len() < n {
            let l = &self.leaves[leaf as usize];
            while pos < l.len() && out.len() < n {
                out.push((first + out.len() as u64, self.leaf_entry(l, pos)));
                pos += 1;
            }
            leaf = l.next;
            pos = 0;
            if leaf == NIL {
                break;
            }
        }
        out
    }

    /// Every entry in rank order.
    pub fn iter(&self) -> impl Iterator<Item = RankEntry> + '_ {
        let mut leaf = if self.is_empty() { NIL } else { self.seek(0).0 };
        let mut pos = 0;
        std::iter::from_fn(move || loop {
            if leaf == NIL {
                return None;
            }
            let l = &self.leaves[leaf as usize];
            if pos < l.len() {
                pos += 1;
                return Some(self.leaf_entry(l, pos - 1));
            }
            leaf = l.next;
            pos = 0;
        })
    }
}
