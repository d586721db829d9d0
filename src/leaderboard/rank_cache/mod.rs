//! The rank cache: per (board, expiry) bucket, the records of a leaderboard in rank order.
//!
//! Order (Nakama's `RankAsc`/`RankDesc` in `leaderboard_rank_cache.go`): score, then subscore,
//! then owner id (its 16 bytes compared as a big-endian number), all three in the board's
//! direction. A descending board ranks the higher score first and, on a full tie, the higher
//! owner id first.
//!
//! # Structure
//! [`RankCache`] is an order-statistic B+tree plus an owner index:
//! - keys are normalised so the tree always sorts ascending: on a descending board score,
//!   subscore and owner are stored bit-inverted (`!x` reverses the order of `i64`/`u128`);
//! - leaves hold up to [`LEAF_CAP`] entries in struct-of-arrays form (score, subscore, owner,
//!   generation: 36 bytes an entry) and are chained left to right for range scans;
//! - inner nodes hold up to [`INNER_CAP`] children with, for each, its subtree size and a lower
//!   bound key; ranks are found by summing the sizes left of the path;
//! - the owner index maps an owner to its (score, subscore), from which its key is rebuilt.
//!
//! `rank_of`, `at_rank`, `upsert` and `remove` are O(log n); `range` is O(log n + limit);
//! `warm` sorts once and builds the tree bottom-up (O(n log n), O(n) on sorted input).
//! A bucket holds at most `u32::MAX` entries.
//!
//! # Files
//! - `order`: a board's sort order ([`SortOrder`]);
//! - `node`: the tree's nodes (leaves and inner nodes, struct-of-arrays) and their keys;
//! - `owner_hash`: the owner index's hasher;
//! - `query`: ranks, entries at ranks, ranges, iteration (read-only);
//! - `insert` / `remove`: single-entry changes with node splits, merges and borrows;
//! - `bulk`: `warm`, building the tree bottom-up from sorted keys;
//! - `check`: the invariants (tests and debugging);
//! - `caches`: all buckets of a node ([`RankCaches`]).

mod bulk;
mod caches;
mod check;
mod insert;
mod node;
mod order;
mod owner_hash;
mod query;
mod remove;

use std::collections::HashMap;

use uuid::Uuid;

pub use caches::RankCaches;
pub use node::{INNER_CAP, LEAF_CAP};
pub use order::SortOrder;

use node::{Inner, Key, Leaf};
use owner_hash::OwnerHash;

/// One owner's entry in a bucket. `generation` is Nakama's `num_score`: an update replaces the
/// cached entry only when its generation is newer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RankEntry {
    pub owner: Uuid,
    pub score: i64,
    pub subscore: i64,
    pub generation: u32,
}

/// The records of one (board, expiry) bucket in rank order.
pub struct RankCache {
    order: SortOrder,
    /// XOR mask turning a stored (normalised) owner into the owner id and back.
    flip: u128,
    /// owner → the leaf holding its entry.
    owners: HashMap<Uuid, u32, OwnerHash>,
    // Boxed nodes: growing the arena moves pointers, not 2 KiB nodes, and over-allocates
    // pointers, not nodes.
    #[allow(clippy::vec_box)]
    leaves: Vec<Box<Leaf>>,
    #[allow(clippy::vec_box)]
    inners: Vec<Box<Inner>>,
    free_leaves: Vec<u32>,
    free_inners: Vec<u32>,
    root: u32,
    /// Inner levels above the leaves (0: the root is a leaf).
    height: u32,
}

impl std::fmt::Debug for RankCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RankCache")
            .field("order", &self.order)
            .field("len", &self.len())
            .field("height", &self.height)
            .finish()
    }
}

impl Clone for RankCache {
    fn clone(&self) -> Self {
        RankCache::from_entries(self.order, self.iter())
    }
}

/// Points the owner index at `leaf` for entries `from..to` of it.
fn reindex(
    owners: &mut HashMap<Uuid, u32, OwnerHash>,
    flip: u128,
    leaf: &Leaf,
    id: u32,
    from: usize,
    to: usize,
) {
    for &o in &leaf.owner[from..to] {
        if let Some(slot) = owners.get_mut(&Uuid::from_u128(o ^ flip)) {
            *slot = id;
        }
    }
}

impl RankCache {
    pub fn new(order: SortOrder) -> RankCache {
        RankCache {
            order,
            flip: match order {
                SortOrder::Ascending => 0,
                SortOrder::Descending => u128::MAX,
            },
            owners: HashMap::default(),
            leaves: vec![Leaf::boxed()],
            inners: Vec::new(),
            free_leaves: Vec::new(),
            free_inners: Vec::new(),
            root: 0,
            height: 0,
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

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    #[inline]
    fn key(&self, score: i64, subscore: i64, owner: Uuid) -> Key {
        let owner = owner.as_u128() ^ self.flip;
        match self.order {
            SortOrder::Ascending => Key {
                score,
                sub: subscore,
                owner,
            },
            SortOrder::Descending => Key {
                score: !score,
                sub: !subscore,
                owner,
            },
        }
    }

    #[inline]
    fn leaf_entry(&self, leaf: &Leaf, i: usize) -> RankEntry {
        let (score, subscore) = match self.order {
            SortOrder::Ascending => (leaf.score[i], leaf.sub[i]),
            SortOrder::Descending => (!leaf.score[i], !leaf.sub[i]),
        };
        RankEntry {
            owner: Uuid::from_u128(leaf.owner[i] ^ self.flip),
            score,
            subscore,
            generation: leaf.generation[i],
        }
    }

    /// (leaf, position) of `owner`'s entry.
    #[inline]
    fn find(&self, owner: Uuid) -> Option<(u32, usize)> {
        let leaf = *self.owners.get(&owner)?;
        let l = &self.leaves[leaf as usize];
        let o = owner.as_u128() ^ self.flip;
        let pos = l.owner[..l.len()].iter().position(|&x| x == o);
        debug_assert!(pos.is_some(), "owner index points at the wrong leaf");
        Some((leaf, pos?))
    }

    /// The leaf whose range holds `k` and the number of entries in the leaves before it.
    #[inline]
    fn descend(&self, k: &Key) -> (u32, u64) {
        let mut node = self.root;
        let mut before = 0u64;
        for _ in 0..self.height {
            let inner = &self.inners[node as usize];
            let c = inner.child_for(k);
            before += inner.count_before(c);
            node = inner.children[c];
        }
        (node, before)
    }

    /// Approximate heap bytes held (tree nodes, owner index, free lists).
    pub fn approx_bytes(&self) -> usize {
        let ptr = std::mem::size_of::<Box<Leaf>>();
        // hashbrown: a power of two of buckets, 7/8 usable, one control byte each.
        let cap = self.owners.capacity();
        let buckets = if cap == 0 {
            0
        } else {
            (cap * 8 / 7).next_power_of_two()
        };
        let index = buckets * (std::mem::size_of::<(Uuid, u32)>() + 1);
        self.leaves.len() * std::mem::size_of::<Leaf>()
            + self.inners.len() * std::mem::size_of::<Inner>()
            + (self.leaves.capacity() + self.inners.capacity()) * ptr
            + (self.free_leaves.capacity() + self.free_inners.capacity()) * 4
            + index
    }
}

#[cfg(test)]
mod tests;
