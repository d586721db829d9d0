//! Bulk loading: `warm` sorts once and builds the tree bottom-up (O(n log n), O(n) on sorted
//! input), nodes filled to 7/8 so that later inserts do not split at once.

use uuid::Uuid;

use super::node::{Inner, Key, Leaf, INNER_CAP, LEAF_CAP, NIL};
use super::{RankCache, RankEntry};

/// Fill of nodes built by `warm`: room for later inserts without splitting at once.
const BULK_LEAF_FILL: usize = LEAF_CAP * 7 / 8;
const BULK_INNER_FILL: usize = INNER_CAP * 7 / 8;

/// Sizes of `parts` near-equal groups of `n` (the first `n % parts` one larger).
fn even_groups(n: usize, parts: usize) -> impl Iterator<Item = usize> {
    let (base, extra) = (n / parts, n % parts);
    (0..parts).map(move |i| base + usize::from(i < extra))
}

impl RankCache {
    /// Bulk load: entries in any order (sorted input is fastest); per owner the newest
    /// generation wins, and an entry already cached is replaced only by a newer generation (a
    /// live update received while warming stays).
    pub fn warm(&mut self, entries: impl IntoIterator<Item = RankEntry>) {
        let incoming = entries.into_iter();
        if !self.is_empty() {
            let (lo, _) = incoming.size_hint();
            if lo < self.len() / 4 {
                for e in incoming {
                    self.upsert(e);
                }
                return;
            }
            // Many entries: rebuild from both, the cached ones first so they win ties.
            let all: Vec<RankEntry> = self.iter().chain(incoming).collect();
            self.build(all);
            return;
        }
        self.build(incoming.collect());
    }

    /// Rebuilds from scratch out of `entries` (duplicates: newest generation, then first).
    fn build(&mut self, mut entries: Vec<RankEntry>) {
        if self.build_from(&entries) {
            return;
        }
        // Keep, per owner, the newest generation (the first of equals: stable sort).
        entries.sort_by(|a, b| a.owner.cmp(&b.owner).then(b.generation.cmp(&a.generation)));
        entries.dedup_by_key(|e| e.owner);
        let built = self.build_from(&entries);
        debug_assert!(built);
    }

    /// Rebuilds from `entries`; false when an owner appears twice.
    fn build_from(&mut self, entries: &[RankEntry]) -> bool {
        *self = RankCache::new(self.order);
        let mut keyed: Vec<(Key, u32)> = entries
            .iter()
            .map(|e| (self.key(e.score, e.subscore, e.owner), e.generation))
            .collect();
        if !keyed.windows(2).all(|w| w[0].0 < w[1].0) {
            keyed.sort_unstable_by_key(|&(k, _)| k);
        }
        self.build_tree(&keyed)
    }

    /// Builds the tree bottom-up and the owner index from sorted keys into an empty cache;
    /// false when an owner appears twice.
    fn build_tree(&mut self, keyed: &[(Key, u32)]) -> bool {
        let n = keyed.len();
        if n == 0 {
            return true;
        }
        let num_leaves = n.div_ceil(BULK_LEAF_FILL);
        self.leaves.clear();
        self.leaves.reserve_exact(num_leaves);
        self.owners.reserve(n);
        let mut distinct = true;
        // (node, lower bound, count) of the level being built.
        let mut level: Vec<(u32, Key, u32)> = Vec::with_capacity(num_leaves);
        let mut at = 0;
        for size in even_groups(n, num_leaves) {
            let mut leaf = Leaf::boxed();
            let id = self.leaves.len() as u32;
            for (i, &(k, g)) in keyed[at..at + size].iter().enumerate() {
                leaf.set(i, k, g);
                distinct &= self
                    .owners
                    .insert(Uuid::from_u128(k.owner ^ self.flip), id)
                    .is_none();
            }
            leaf.len = size as u32;
            leaf.next = if (id as usize) + 1 < num_leaves {
                id + 1
            } else {
                NIL
            };
            level.push((id, keyed[at].0, size as u32));
            self.leaves.push(leaf);
            at += size;
        }
        let mut height = 0;
        while level.len() > 1 {
            let parents = level.len().div_ceil(BULK_INNER_FILL);
            let mut next = Vec::with_capacity(parents);
            let mut at = 0;
            for size in even_groups(level.len(), parents) {
                let mut inner = Inner::boxed();
                let mut total = 0u32;
                for (i, &(child, k, count)) in level[at..at + size].iter().enumerate() {
                    inner.set(i, k, child, count);
                    total += count;
                }
                inner.len = size as u32;
                let id = self.inners.len() as u32;
                next.push((id, level[at].1, total));
                self.inners.push(inner);
                at += size;
            }
            level = next;
            height += 1;
        }
        self.root = level[0].0;
        self.height = height;
        distinct
    }
}
