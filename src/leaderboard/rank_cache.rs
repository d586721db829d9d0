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

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

use uuid::Uuid;

/// Entries per leaf.
pub const LEAF_CAP: usize = 64;
/// Children per inner node.
pub const INNER_CAP: usize = 64;
const LEAF_MIN: usize = LEAF_CAP / 4;
const INNER_MIN: usize = INNER_CAP / 4;
/// Fill of nodes built by `warm`: room for later inserts without splitting at once.
const BULK_LEAF_FILL: usize = LEAF_CAP * 7 / 8;
const BULK_INNER_FILL: usize = INNER_CAP * 7 / 8;
const NIL: u32 = u32::MAX;

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

/// Normalised key: sorts ascending whatever the board's order (field order = comparison order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    score: i64,
    sub: i64,
    owner: u128,
}

/// The owner index's hasher: owner ids are 16 random-looking bytes, so a keyed multiply-mix of
/// its two halves is enough (the key comes from the process's `RandomState`).
#[derive(Clone, Copy, Debug)]
struct OwnerHash(u64);

impl Default for OwnerHash {
    fn default() -> Self {
        OwnerHash(std::collections::hash_map::RandomState::new().hash_one(0x5e7a1u64) | 1)
    }
}

impl BuildHasher for OwnerHash {
    type Hasher = OwnerHasher;
    fn build_hasher(&self) -> OwnerHasher {
        OwnerHasher(self.0)
    }
}

struct OwnerHasher(u64);

impl Hasher for OwnerHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(b))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(31);
        }
    }

    // The length prefix of the id's byte array carries nothing.
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        // murmur3's fmix64.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

struct Leaf {
    len: u32,
    /// The leaf to the right, or NIL.
    next: u32,
    score: [i64; LEAF_CAP],
    sub: [i64; LEAF_CAP],
    owner: [u128; LEAF_CAP],
    generation: [u32; LEAF_CAP],
}

impl Leaf {
    fn boxed() -> Box<Leaf> {
        Box::new(Leaf {
            len: 0,
            next: NIL,
            score: [0; LEAF_CAP],
            sub: [0; LEAF_CAP],
            owner: [0; LEAF_CAP],
            generation: [0; LEAF_CAP],
        })
    }

    #[inline]
    fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    fn key(&self, i: usize) -> Key {
        Key {
            score: self.score[i],
            sub: self.sub[i],
            owner: self.owner[i],
        }
    }

    #[inline]
    fn set(&mut self, i: usize, k: Key, generation: u32) {
        self.score[i] = k.score;
        self.sub[i] = k.sub;
        self.owner[i] = k.owner;
        self.generation[i] = generation;
    }

    /// First position whose key is not below `k`.
    #[inline]
    fn lower_bound(&self, k: &Key) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.key(mid) < *k {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Moves entries `from..to` to start at `dest` (within the leaf).
    fn shift(&mut self, from: usize, to: usize, dest: usize) {
        self.score.copy_within(from..to, dest);
        self.sub.copy_within(from..to, dest);
        self.owner.copy_within(from..to, dest);
        self.generation.copy_within(from..to, dest);
    }

    fn insert_at(&mut self, pos: usize, k: Key, generation: u32) {
        let len = self.len();
        debug_assert!(len < LEAF_CAP && pos <= len);
        self.shift(pos, len, pos + 1);
        self.set(pos, k, generation);
        self.len += 1;
    }

    fn remove_at(&mut self, pos: usize) {
        let len = self.len();
        self.shift(pos + 1, len, pos);
        self.len -= 1;
    }

    /// Copies `src[from..to]` to `self[dest..]` (lengths are the caller's).
    fn copy_from(&mut self, src: &Leaf, from: usize, to: usize, dest: usize) {
        let n = to - from;
        self.score[dest..dest + n].copy_from_slice(&src.score[from..to]);
        self.sub[dest..dest + n].copy_from_slice(&src.sub[from..to]);
        self.owner[dest..dest + n].copy_from_slice(&src.owner[from..to]);
        self.generation[dest..dest + n].copy_from_slice(&src.generation[from..to]);
    }
}

struct Inner {
    /// Number of children.
    len: u32,
    /// Entries under each child.
    counts: [u32; INNER_CAP],
    children: [u32; INNER_CAP],
    /// Lower bound key of each child (slot 0 is not used for routing).
    score: [i64; INNER_CAP],
    sub: [i64; INNER_CAP],
    owner: [u128; INNER_CAP],
}

impl Inner {
    fn boxed() -> Box<Inner> {
        Box::new(Inner {
            len: 0,
            counts: [0; INNER_CAP],
            children: [0; INNER_CAP],
            score: [0; INNER_CAP],
            sub: [0; INNER_CAP],
            owner: [0; INNER_CAP],
        })
    }

    #[inline]
    fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    fn sep(&self, i: usize) -> Key {
        Key {
            score: self.score[i],
            sub: self.sub[i],
            owner: self.owner[i],
        }
    }

    #[inline]
    fn set(&mut self, i: usize, sep: Key, child: u32, count: u32) {
        self.set_sep(i, sep);
        self.children[i] = child;
        self.counts[i] = count;
    }

    #[inline]
    fn set_sep(&mut self, i: usize, k: Key) {
        self.score[i] = k.score;
        self.sub[i] = k.sub;
        self.owner[i] = k.owner;
    }

    /// The child whose key range holds `k`: the last one whose lower bound is not above it.
    #[inline]
    fn child_for(&self, k: &Key) -> usize {
        let (mut lo, mut hi) = (1, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.sep(mid) <= *k {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo - 1
    }

    /// Entries under children `..c`.
    #[inline]
    fn count_before(&self, c: usize) -> u64 {
        self.counts[..c].iter().map(|&n| n as u64).sum()
    }

    fn total(&self) -> u64 {
        self.count_before(self.len())
    }

    fn shift(&mut self, from: usize, to: usize, dest: usize) {
        self.counts.copy_within(from..to, dest);
        self.children.copy_within(from..to, dest);
        self.score.copy_within(from..to, dest);
        self.sub.copy_within(from..to, dest);
        self.owner.copy_within(from..to, dest);
    }

    fn insert_child(&mut self, pos: usize, sep: Key, child: u32, count: u32) {
        let len = self.len();
        debug_assert!(len < INNER_CAP && pos <= len);
        self.shift(pos, len, pos + 1);
        self.set(pos, sep, child, count);
        self.len += 1;
    }

    fn remove_child(&mut self, pos: usize) {
        let len = self.len();
        self.shift(pos + 1, len, pos);
        self.len -= 1;
    }

    fn copy_from(&mut self, src: &Inner, from: usize, to: usize, dest: usize) {
        let n = to - from;
        self.counts[dest..dest + n].copy_from_slice(&src.counts[from..to]);
        self.children[dest..dest + n].copy_from_slice(&src.children[from..to]);
        self.score[dest..dest + n].copy_from_slice(&src.score[from..to]);
        self.sub[dest..dest + n].copy_from_slice(&src.sub[from..to]);
        self.owner[dest..dest + n].copy_from_slice(&src.owner[from..to]);
    }
}

/// Two distinct elements of a slice, mutably.
fn two_mut<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b);
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

/// Sizes of `parts` near-equal groups of `n` (the first `n % parts` one larger).
fn even_groups(n: usize, parts: usize) -> impl Iterator<Item = usize> {
    let (base, extra) = (n / parts, n % parts);
    (0..parts).map(move |i| base + usize::from(i < extra))
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

    /// Inserts or replaces `entry.owner`'s entry when `entry.generation` is newer than the
    /// cached one (or there is none). Returns whether the cache changed.
    pub fn upsert(&mut self, entry: RankEntry) -> bool {
        let new = self.key(entry.score, entry.subscore, entry.owner);
        if let Some((leaf, pos)) = self.find(entry.owner) {
            let l = &mut self.leaves[leaf as usize];
            if entry.generation <= l.generation[pos] {
                return false;
            }
            // Still strictly between its neighbours in the same leaf: replace in place.
            if pos > 0 && pos + 1 < l.len() && l.key(pos - 1) < new && new < l.key(pos + 1) {
                l.set(pos, new, entry.generation);
                return true;
            }
            let old = l.key(pos);
            self.tree_remove(&old);
        } else {
            assert!(self.len() < u32::MAX as usize, "rank cache bucket full");
        }
        self.tree_insert(new, entry.generation);
        true
    }

    /// Removes `owner`'s entry; returns whether there was one.
    pub fn remove(&mut self, owner: Uuid) -> bool {
        let Some((leaf, pos)) = self.find(owner) else {
            return false;
        };
        let k = self.leaves[leaf as usize].key(pos);
        self.owners.remove(&owner);
        self.tree_remove(&k);
        true
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        *self = RankCache::new(self.order);
    }

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
    fn seek(&self, mut i: u64) -> (u32, usize) {
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

    fn alloc_leaf(&mut self) -> u32 {
        if let Some(id) = self.free_leaves.pop() {
            let l = &mut self.leaves[id as usize];
            l.len = 0;
            l.next = NIL;
            return id;
        }
        self.leaves.push(Leaf::boxed());
        (self.leaves.len() - 1) as u32
    }

    fn alloc_inner(&mut self) -> u32 {
        if let Some(id) = self.free_inners.pop() {
            self.inners[id as usize].len = 0;
            return id;
        }
        self.inners.push(Inner::boxed());
        (self.inners.len() - 1) as u32
    }

    fn node_count(&self, node: u32, level: u32) -> u64 {
        if level == 0 {
            self.leaves[node as usize].len as u64
        } else {
            self.inners[node as usize].total()
        }
    }

    fn tree_insert(&mut self, k: Key, generation: u32) {
        if let Some((sep, right, right_count)) =
            self.insert_rec(self.root, self.height, &k, generation)
        {
            let left = self.root;
            let left_count = self.node_count(left, self.height) as u32;
            let root = self.alloc_inner();
            let r = &mut self.inners[root as usize];
            r.set(0, sep, left, left_count);
            r.set(1, sep, right, right_count);
            r.len = 2;
            self.root = root;
            self.height += 1;
        }
    }

    /// Inserts under `node` (at `level`); on a split returns the new right sibling's lower
    /// bound, id and entry count.
    fn insert_rec(
        &mut self,
        node: u32,
        level: u32,
        k: &Key,
        generation: u32,
    ) -> Option<(Key, u32, u32)> {
        if level == 0 {
            let owner = Uuid::from_u128(k.owner ^ self.flip);
            let leaf = &mut self.leaves[node as usize];
            let pos = leaf.lower_bound(k);
            if leaf.len() < LEAF_CAP {
                leaf.insert_at(pos, *k, generation);
                self.owners.insert(owner, node);
                return None;
            }
            let right_id = self.alloc_leaf();
            let (left, right) = two_mut(&mut self.leaves, node as usize, right_id as usize);
            let mid = LEAF_CAP / 2;
            right.copy_from(left, mid, LEAF_CAP, 0);
            right.len = (LEAF_CAP - mid) as u32;
            left.len = mid as u32;
            right.next = left.next;
            left.next = right_id;
            reindex(&mut self.owners, self.flip, right, right_id, 0, right.len());
            if pos <= mid {
                left.insert_at(pos, *k, generation);
                self.owners.insert(owner, node);
            } else {
                right.insert_at(pos - mid, *k, generation);
                self.owners.insert(owner, right_id);
            }
            return Some((right.key(0), right_id, right.len));
        }
        let inner = &mut self.inners[node as usize];
        let c = inner.child_for(k);
        inner.counts[c] += 1;
        let child = inner.children[c];
        let (sep, new_child, new_count) = self.insert_rec(child, level - 1, k, generation)?;
        let inner = &mut self.inners[node as usize];
        inner.counts[c] -= new_count;
        if inner.len() < INNER_CAP {
            inner.insert_child(c + 1, sep, new_child, new_count);
            return None;
        }
        let right_id = self.alloc_inner();
        let (left, right) = two_mut(&mut self.inners, node as usize, right_id as usize);
        let mid = INNER_CAP / 2;
        right.copy_from(left, mid, INNER_CAP, 0);
        right.len = (INNER_CAP - mid) as u32;
        left.len = mid as u32;
        if c < mid {
            left.insert_child(c + 1, sep, new_child, new_count);
        } else {
            right.insert_child(c + 1 - mid, sep, new_child, new_count);
        }
        Some((right.sep(0), right_id, right.total() as u32))
    }

    fn tree_remove(&mut self, k: &Key) {
        let removed = self.remove_rec(self.root, self.height, k);
        debug_assert!(removed, "key of an indexed owner missing from the tree");
        while self.height > 0 && self.inners[self.root as usize].len == 1 {
            let old = self.root;
            self.root = self.inners[old as usize].children[0];
            self.free_inners.push(old);
            self.height -= 1;
        }
    }

    fn remove_rec(&mut self, node: u32, level: u32, k: &Key) -> bool {
        if level == 0 {
            let leaf = &mut self.leaves[node as usize];
            let pos = leaf.lower_bound(k);
            if pos < leaf.len() && leaf.key(pos) == *k {
                leaf.remove_at(pos);
                return true;
            }
            return false;
        }
        let inner = &self.inners[node as usize];
        let c = inner.child_for(k);
        if !self.remove_rec(inner.children[c], level - 1, k) {
            return false;
        }
        let inner = &mut self.inners[node as usize];
        inner.counts[c] -= 1;
        let child = inner.children[c];
        let (child_len, min) = if level == 1 {
            (self.leaves[child as usize].len(), LEAF_MIN)
        } else {
            (self.inners[child as usize].len(), INNER_MIN)
        };
        if child_len < min && self.inners[node as usize].len > 1 {
            self.rebalance(node, c, level - 1);
        }
        true
    }

    /// Child `c` of `parent` is under-full: merge it with a sibling or take entries from one.
    fn rebalance(&mut self, parent: u32, c: usize, child_level: u32) {
        let p = &self.inners[parent as usize];
        let (li, ri) = if c > 0 { (c - 1, c) } else { (c, c + 1) };
        let (l, r) = (p.children[li] as usize, p.children[ri] as usize);
        let parent_sep = p.sep(ri);
        if child_level == 0 {
            let (left, right) = two_mut(&mut self.leaves, l, r);
            let (ll, rl) = (left.len(), right.len());
            let p = &mut self.inners[parent as usize];
            if ll + rl <= LEAF_CAP {
                left.copy_from(right, 0, rl, ll);
                left.len = (ll + rl) as u32;
                left.next = right.next;
                reindex(&mut self.owners, self.flip, left, l as u32, ll, ll + rl);
                p.counts[li] += p.counts[ri];
                p.remove_child(ri);
                self.free_leaves.push(r as u32);
            } else if ll < rl {
                let m = (rl - ll) / 2;
                left.copy_from(right, 0, m, ll);
                reindex(&mut self.owners, self.flip, left, l as u32, ll, ll + m);
                right.shift(m, rl, 0);
                left.len += m as u32;
                right.len -= m as u32;
                p.counts[li] += m as u32;
                p.counts[ri] -= m as u32;
                p.set_sep(ri, right.key(0));
            } else {
                let m = (ll - rl) / 2;
                right.shift(0, rl, m);
                right.copy_from(left, ll - m, ll, 0);
                reindex(&mut self.owners, self.flip, right, r as u32, 0, m);
                left.len -= m as u32;
                right.len += m as u32;
                p.counts[li] -= m as u32;
                p.counts[ri] += m as u32;
                p.set_sep(ri, right.key(0));
            }
            return;
        }
        let (left, right) = two_mut(&mut self.inners, l, r);
        let (ll, rl) = (left.len(), right.len());
        // The right node's first child has the parent's separator as lower bound.
        right.set_sep(0, parent_sep);
        // None: merged; Some((entries moved left to right (negative: right to left), new
        // lower bound of the right node)).
        let moved = if ll + rl <= INNER_CAP {
            left.copy_from(right, 0, rl, ll);
            left.len = (ll + rl) as u32;
            None
        } else if ll < rl {
            let m = (rl - ll) / 2;
            left.copy_from(right, 0, m, ll);
            let moved: u32 = right.counts[..m].iter().sum();
            right.shift(m, rl, 0);
            left.len += m as u32;
            right.len -= m as u32;
            Some((-(moved as i64), right.sep(0)))
        } else {
            let m = (ll - rl) / 2;
            right.shift(0, rl, m);
            right.copy_from(left, ll - m, ll, 0);
            let moved: u32 = right.counts[..m].iter().sum();
            left.len -= m as u32;
            right.len += m as u32;
            Some((moved as i64, right.sep(0)))
        };
        let p = &mut self.inners[parent as usize];
        match moved {
            None => {
                p.counts[li] += p.counts[ri];
                p.remove_child(ri);
                self.free_inners.push(r as u32);
            }
            Some((moved, sep)) => {
                p.counts[li] = (p.counts[li] as i64 - moved) as u32;
                p.counts[ri] = (p.counts[ri] as i64 + moved) as u32;
                p.set_sep(ri, sep);
            }
        }
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

    /// Checks the tree's invariants (tests and debugging); panics on a violation.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let total = self.check_node(self.root, self.height, None, None, true);
        assert_eq!(total, self.len() as u64, "tree size vs owner index");
        let mut prev: Option<Key> = None;
        let mut n = 0;
        let mut leaf = if self.is_empty() { NIL } else { self.seek(0).0 };
        while leaf != NIL {
            let l = &self.leaves[leaf as usize];
            for i in 0..l.len() {
                let k = l.key(i);
                assert!(prev.is_none_or(|p| p < k), "leaf chain out of order");
                let owner = Uuid::from_u128(k.owner ^ self.flip);
                assert_eq!(self.owners.get(&owner), Some(&leaf), "owner index");
                prev = Some(k);
                n += 1;
            }
            leaf = l.next;
        }
        assert_eq!(n, self.len(), "leaf chain length");
    }

    fn check_node(
        &self,
        node: u32,
        level: u32,
        lo: Option<Key>,
        hi: Option<Key>,
        root: bool,
    ) -> u64 {
        let in_range = |k: Key| lo.is_none_or(|lo| lo <= k) && hi.is_none_or(|hi| k < hi);
        if level == 0 {
            let l = &self.leaves[node as usize];
            assert!(root || l.len() >= LEAF_MIN, "under-full leaf");
            for i in 0..l.len() {
                assert!(in_range(l.key(i)), "leaf key outside its bounds");
                assert!(i == 0 || l.key(i - 1) < l.key(i), "leaf out of order");
            }
            return l.len() as u64;
        }
        let inner = &self.inners[node as usize];
        if let Some(lo) = lo {
            assert_eq!(
                inner.sep(0),
                lo,
                "first lower bound vs the parent's separator"
            );
        }
        assert!(
            inner.len() >= if root { 2 } else { INNER_MIN },
            "under-full inner node"
        );
        let mut total = 0;
        for c in 0..inner.len() {
            let clo = if c == 0 { lo } else { Some(inner.sep(c)) };
            let chi = if c + 1 < inner.len() {
                Some(inner.sep(c + 1))
            } else {
                hi
            };
            if c > 0 {
                assert!(in_range(inner.sep(c)), "separator outside its bounds");
            }
            let n = self.check_node(inner.children[c], level - 1, clo, chi, false);
            assert_eq!(n, inner.counts[c] as u64, "subtree count");
            total += n;
        }
        total
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn e(owner: u128, score: i64, subscore: i64, generation: u32) -> RankEntry {
        RankEntry {
            owner: Uuid::from_u128(owner),
            score,
            subscore,
            generation,
        }
    }

    /// Nakama's comparison written out plainly (the model's order).
    fn nakama_cmp(order: SortOrder, a: &RankEntry, b: &RankEntry) -> Ordering {
        let asc = a
            .score
            .cmp(&b.score)
            .then(a.subscore.cmp(&b.subscore))
            .then(a.owner.as_bytes().cmp(b.owner.as_bytes()));
        match order {
            SortOrder::Ascending => asc,
            SortOrder::Descending => asc.reverse(),
        }
    }

    /// A sorted vector with the same contract.
    struct Model {
        order: SortOrder,
        v: Vec<RankEntry>,
    }

    impl Model {
        fn upsert(&mut self, n: RankEntry) -> bool {
            if let Some(i) = self.v.iter().position(|x| x.owner == n.owner) {
                if n.generation <= self.v[i].generation {
                    return false;
                }
                self.v.remove(i);
            }
            self.v.push(n);
            let order = self.order;
            self.v.sort_by(|a, b| nakama_cmp(order, a, b));
            true
        }

        fn remove(&mut self, owner: Uuid) -> bool {
            let before = self.v.len();
            self.v.retain(|x| x.owner != owner);
            before != self.v.len()
        }
    }

    fn assert_same(cache: &RankCache, model: &Model, owners: &[Uuid]) {
        assert_eq!(cache.len(), model.v.len());
        cache.check_invariants();
        assert_eq!(cache.iter().collect::<Vec<_>>(), model.v);
        let ranks: std::collections::HashMap<Uuid, u64> = model
            .v
            .iter()
            .enumerate()
            .map(|(i, x)| (x.owner, i as u64 + 1))
            .collect();
        for o in owners {
            let want = ranks.get(o).copied();
            assert_eq!(cache.rank_of(*o), want);
            assert_eq!(
                cache.rank_and_entry(*o),
                want.map(|r| (r, model.v[r as usize - 1]))
            );
        }
        for r in 0..=model.v.len() as u64 + 1 {
            let want = r
                .checked_sub(1)
                .and_then(|i| model.v.get(i as usize))
                .copied();
            assert_eq!(cache.at_rank(r), want, "at_rank({r})");
        }
    }

    #[test]
    fn ties_descending() {
        // Higher score first; then higher subscore; then the higher owner id.
        let mut c = RankCache::new(SortOrder::Descending);
        let lo = 0x0100_0000_0000_0000_0000_0000_0000_0000;
        let hi = 0xff00_0000_0000_0000_0000_0000_0000_0000; // top bit set: unsigned compare
        c.upsert(e(lo, 10, 1, 1));
        c.upsert(e(hi, 10, 1, 1));
        c.upsert(e(2, 10, 2, 1));
        c.upsert(e(3, 11, 0, 1));
        c.upsert(e(4, 9, 9, 1));
        let order: Vec<u128> = c.iter().map(|x| x.owner.as_u128()).collect();
        assert_eq!(order, vec![3, 2, hi, lo, 4]);
        assert_eq!(c.rank_of(Uuid::from_u128(hi)), Some(3));
        assert_eq!(c.rank_of(Uuid::from_u128(lo)), Some(4));
        assert_eq!(c.at_rank(1).unwrap().owner.as_u128(), 3);
        assert_eq!(c.at_rank(6), None);
        assert_eq!(c.at_rank(0), None);
    }

    #[test]
    fn ties_ascending() {
        // Lower score first; then lower subscore; then the lower owner id.
        let mut c = RankCache::new(SortOrder::Ascending);
        let hi = 0xff00_0000_0000_0000_0000_0000_0000_0000;
        c.upsert(e(hi, 10, 1, 1));
        c.upsert(e(1, 10, 1, 1));
        c.upsert(e(2, 10, 0, 1));
        c.upsert(e(3, 9, 5, 1));
        c.upsert(e(4, 0, 0, 1));
        let order: Vec<u128> = c.iter().map(|x| x.owner.as_u128()).collect();
        assert_eq!(order, vec![4, 3, 2, 1, hi]);
        assert_eq!(
            c.range(2, 2)
                .iter()
                .map(|(r, x)| (*r, x.owner.as_u128()))
                .collect::<Vec<_>>(),
            vec![(2, 3), (3, 2)]
        );
        assert_eq!(c.range(5, 10).len(), 1);
        assert!(c.range(6, 10).is_empty());
        assert_eq!(c.range(0, 1)[0].0, 1);
        assert!(c.range(1, 0).is_empty());
    }

    #[test]
    fn generations() {
        let mut c = RankCache::new(SortOrder::Descending);
        assert!(c.upsert(e(1, 5, 0, 2)));
        assert!(!c.upsert(e(1, 50, 0, 2)), "same generation");
        assert!(!c.upsert(e(1, 50, 0, 1)), "older generation");
        assert_eq!(c.get(Uuid::from_u128(1)).unwrap().score, 5);
        assert!(c.upsert(e(1, 5, 0, 3)), "newer generation, same score");
        assert_eq!(c.get(Uuid::from_u128(1)).unwrap().generation, 3);
        assert!(c.upsert(e(1, 7, 0, 4)));
        assert_eq!(c.get(Uuid::from_u128(1)).unwrap().score, 7);
        assert!(c.remove(Uuid::from_u128(1)));
        assert!(!c.remove(Uuid::from_u128(1)));
        // After a delete any generation is accepted (a tournament join stores 0).
        assert!(c.upsert(e(1, 0, 0, 0)));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn warm_sorted_unsorted_duplicates_and_live_updates() {
        let entries: Vec<RankEntry> = (0..5000u128)
            .map(|i| e(i * 7919 % 5003, (i % 97) as i64, (i % 5) as i64, 1))
            .collect();
        for order in [SortOrder::Ascending, SortOrder::Descending] {
            // Distinct owners (7919 and 5003 are coprime).
            let mut v = entries.clone();
            v.sort_by(|a, b| nakama_cmp(order, a, b));
            let model = Model { order, v };
            let owners: Vec<Uuid> = entries.iter().map(|x| x.owner).collect();
            // Unsorted.
            let c = RankCache::from_entries(order, entries.iter().copied());
            assert_same(&c, &model, &owners);
            // Sorted.
            let c = RankCache::from_entries(order, model.v.iter().copied());
            assert_same(&c, &model, &owners);
            // Duplicates: the newest generation wins whatever its position.
            let mut dup = entries.clone();
            dup.push(e(entries[10].owner.as_u128(), 1_000, 0, 5));
            dup.insert(0, e(entries[20].owner.as_u128(), 2_000, 0, 0));
            let c = RankCache::from_entries(order, dup);
            c.check_invariants();
            assert_eq!(c.len(), entries.len());
            assert_eq!(c.get(entries[10].owner).unwrap().score, 1_000);
            assert_eq!(c.get(entries[20].owner), Some(entries[20]));
            // Live updates before warming stay unless the warmed entry is newer.
            let mut c = RankCache::new(order);
            c.upsert(e(entries[0].owner.as_u128(), 77, 0, 9));
            c.upsert(e(entries[1].owner.as_u128(), 78, 0, 1));
            c.upsert(e(123_456, 79, 0, 1));
            c.warm(entries.iter().copied());
            c.check_invariants();
            assert_eq!(c.len(), entries.len() + 1);
            assert_eq!(c.get(entries[0].owner).unwrap().score, 77);
            assert_eq!(
                c.get(entries[1].owner).unwrap().score,
                78,
                "same generation: cached wins"
            );
            // A few entries into a big bucket go one by one.
            c.warm([e(entries[2].owner.as_u128(), 1, 1, 2)]);
            c.check_invariants();
            assert_eq!(c.get(entries[2].owner).unwrap().score, 1);
            // Cloning rebuilds.
            let d = c.clone();
            assert_eq!(d.iter().collect::<Vec<_>>(), c.iter().collect::<Vec<_>>());
        }
        let empty = RankCache::from_entries(SortOrder::Descending, Vec::new());
        assert!(empty.is_empty());
        assert_eq!(empty.at_rank(1), None);
        assert!(empty.range(1, 10).is_empty());
    }

    /// Deep trees: splits, merges and borrows on inner levels, then the root collapsing.
    #[test]
    fn stress_against_model() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        for order in [SortOrder::Descending, SortOrder::Ascending] {
            let mut rng = StdRng::seed_from_u64(7);
            let owners: Vec<Uuid> = (0..12_000).map(|_| Uuid::from_u128(rng.gen())).collect();
            let mut c = RankCache::new(order);
            let mut model = std::collections::HashMap::new();
            let mut gens = std::collections::HashMap::new();
            let check = |c: &RankCache, model: &std::collections::HashMap<Uuid, RankEntry>| {
                let mut v: Vec<RankEntry> = model.values().copied().collect();
                v.sort_by(|a, b| nakama_cmp(order, a, b));
                let m = Model { order, v };
                assert_same(c, &m, &owners[..200]);
                let mut rng = StdRng::seed_from_u64(1);
                for _ in 0..200 {
                    let o = owners[rng.gen_range(0..owners.len())];
                    let want = m.v.iter().position(|x| x.owner == o).map(|i| i as u64 + 1);
                    assert_eq!(c.rank_of(o), want);
                }
                for _ in 0..50 {
                    let probe = RankEntry {
                        owner: Uuid::from_u128(rng.gen()),
                        score: rng.gen_range(-1..52),
                        subscore: rng.gen_range(0..3),
                        generation: 0,
                    };
                    let want =
                        m.v.partition_point(|x| nakama_cmp(order, x, &probe) == Ordering::Less);
                    assert_eq!(
                        c.count_before(probe.score, probe.subscore, probe.owner),
                        want as u64
                    );
                }
                let first = rng.gen_range(0..m.v.len() as u64 + 2);
                let got = c.range(first, 300);
                let skip = first.max(1) as usize - 1;
                let want: Vec<(u64, RankEntry)> =
                    m.v.iter()
                        .enumerate()
                        .skip(skip)
                        .take(300)
                        .map(|(i, x)| (i as u64 + 1, *x))
                        .collect();
                assert_eq!(got, want);
            };
            // Grow (ties on purpose: few scores), churn, shrink.
            for phase in 0..3 {
                for _ in 0..40_000 {
                    let o = owners[rng.gen_range(0..owners.len())];
                    let remove_bias = [0.1, 0.5, 0.95][phase];
                    if rng.gen_bool(remove_bias) {
                        assert_eq!(c.remove(o), model.remove(&o).is_some());
                    } else {
                        let g = gens.entry(o).or_insert(0u32);
                        *g += rng.gen_range(0..2);
                        let x = RankEntry {
                            owner: o,
                            score: rng.gen_range(0..50),
                            subscore: rng.gen_range(0..3),
                            generation: *g,
                        };
                        let newer = model
                            .get(&o)
                            .is_none_or(|old: &RankEntry| x.generation > old.generation);
                        assert_eq!(c.upsert(x), newer);
                        if newer {
                            model.insert(o, x);
                        }
                    }
                }
                check(&c, &model);
            }
            assert!(c.len() < 1000);
            for o in &owners {
                c.remove(*o);
            }
            c.check_invariants();
            assert_eq!((c.len(), c.height), (0, 0));
        }
    }

    /// Emptying key ranges makes nodes under-full next to full siblings: borrows from the
    /// right and from the left on both levels, merges, and the root collapsing.
    #[test]
    fn range_removals_rebalance() {
        // Bulk-built: leaves of 56, inner nodes of 56 children: 3 inner nodes under the root.
        let n = 56 * 56 * 3;
        for (from_left, order) in [
            (true, SortOrder::Ascending),
            (false, SortOrder::Ascending),
            (true, SortOrder::Descending),
        ] {
            let mut c =
                RankCache::from_entries(order, (0..n as u128).map(|i| e(i, i as i64, 0, 1)));
            assert_eq!(c.height, 2);
            let mut alive: Vec<u128> = (0..n as u128).collect();
            // Remove the middle inner node's range from one end, checking as we go.
            let mut victims: Vec<u128> = (n as u128 / 3..2 * n as u128 / 3).collect();
            if !from_left {
                victims.reverse();
            }
            for (i, v) in victims.iter().enumerate() {
                assert!(c.remove(Uuid::from_u128(*v)));
                if i % 97 == 0 {
                    c.check_invariants();
                }
            }
            alive.retain(|x| !victims.contains(x));
            c.check_invariants();
            let ranked: Vec<u128> = c.iter().map(|x| x.owner.as_u128()).collect();
            let mut want = alive.clone();
            if order == SortOrder::Descending {
                want.reverse();
            }
            assert_eq!(ranked, want);
            for (i, o) in want.iter().enumerate().step_by(101) {
                assert_eq!(c.rank_of(Uuid::from_u128(*o)), Some(i as u64 + 1));
            }
            // Then everything else, from the other end.
            for v in alive.iter().rev() {
                assert!(c.remove(Uuid::from_u128(*v)));
            }
            c.check_invariants();
            assert_eq!((c.len(), c.height), (0, 0));
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Upsert(usize, i64, i64, u32),
        Remove(usize),
    }

    fn op(owners: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..owners, 0i64..6, 0i64..3, 0u32..5).prop_map(|(o, s, ss, g)| Op::Upsert(o, s, ss, g)),
            1 => (0..owners).prop_map(Op::Remove),
        ]
    }

    fn owner_pool() -> impl Strategy<Value = Vec<Uuid>> {
        prop::collection::hash_set(
            prop_oneof![
                any::<u128>(),
                // Ids differing only in their last bytes, or in the top bit.
                (0u128..300).prop_map(|x| (1u128 << 127) | x),
                (0u128..300),
            ],
            1..250,
        )
        .prop_map(|s| s.into_iter().map(Uuid::from_u128).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn matches_sorted_vec(
            pool in owner_pool(),
            descending in any::<bool>(),
            ops in prop::collection::vec(op(250), 0..700),
            warm_first in prop::collection::vec((0usize..250, 0i64..6, 0i64..3, 0u32..5), 0..200),
            ranges in prop::collection::vec((0u64..260, 0usize..80), 1..8),
            probes in prop::collection::vec((-1i64..7, -1i64..4, 0usize..260, any::<bool>()), 1..12),
        ) {
            let order = if descending { SortOrder::Descending } else { SortOrder::Ascending };
            let mut cache = RankCache::new(order);
            let mut model = Model { order, v: Vec::new() };
            let pick = |i: usize| pool[i % pool.len()];
            let warm: Vec<RankEntry> = warm_first
                .iter()
                .map(|&(o, s, ss, g)| RankEntry { owner: pick(o), score: s, subscore: ss, generation: g })
                .collect();
            cache.warm(warm.iter().copied());
            for w in &warm {
                // warm keeps the newest generation, the first of equals.
                model.upsert(*w);
            }
            for op in &ops {
                match *op {
                    Op::Upsert(o, s, ss, g) => {
                        let x = RankEntry { owner: pick(o), score: s, subscore: ss, generation: g };
                        prop_assert_eq!(cache.upsert(x), model.upsert(x));
                    }
                    Op::Remove(o) => prop_assert_eq!(cache.remove(pick(o)), model.remove(pick(o))),
                }
            }
            assert_same(&cache, &model, &pool);
            for &(first, limit) in &ranges {
                let want: Vec<(u64, RankEntry)> = model
                    .v
                    .iter()
                    .enumerate()
                    .skip(first.max(1) as usize - 1)
                    .take(limit)
                    .map(|(i, x)| (i as u64 + 1, *x))
                    .collect();
                prop_assert_eq!(cache.range(first, limit), want);
            }
            for &(score, subscore, o, fresh) in &probes {
                let owner = if fresh { Uuid::from_u128(o as u128) } else { pick(o) };
                let probe = RankEntry { owner, score, subscore, generation: 0 };
                let want = model.v.iter().filter(|x| nakama_cmp(order, x, &probe) == Ordering::Less).count();
                prop_assert_eq!(cache.count_before(score, subscore, owner), want as u64);
            }
        }
    }

    #[test]
    fn caches_blacklist_and_trim() {
        let mut all = RankCaches::new(vec!["*".into()]);
        assert!(all.is_blacklisted("any"));
        assert!(all.get_or_create("any", 0, SortOrder::Ascending).is_none());
        assert!(!all.warm("any", 0, SortOrder::Ascending, [e(1, 1, 1, 1)]));

        let mut caches = RankCaches::new(vec!["off".into()]);
        assert!(caches.is_blacklisted("off"));
        assert!(!caches.is_blacklisted("on"));
        assert!(!caches.insert("off", 0, RankCache::new(SortOrder::Ascending)));
        assert!(caches.get("off", 0).is_none());
        caches
            .get_or_create("on", 0, SortOrder::Descending)
            .unwrap()
            .upsert(e(1, 1, 0, 1));
        assert!(caches.warm(
            "on",
            100,
            SortOrder::Descending,
            [e(1, 2, 0, 1), e(2, 3, 0, 1)]
        ));
        assert!(caches.warm("on", 200, SortOrder::Descending, [e(3, 2, 0, 1)]));
        assert!(caches.insert("t", 150, RankCache::new(SortOrder::Ascending)));
        assert_eq!(caches.bucket_count(), 4);
        assert_eq!(
            caches.get("on", 100).unwrap().rank_of(Uuid::from_u128(2)),
            Some(1)
        );
        caches
            .get_mut("on", 100)
            .unwrap()
            .remove(Uuid::from_u128(2));
        assert_eq!(caches.get("on", 100).unwrap().len(), 1);
        // Expired: expiry set and not after now; 0 never expires.
        assert_eq!(caches.trim_expired(150), 2);
        assert!(caches.get("on", 100).is_none());
        assert!(caches.get("t", 150).is_none());
        assert!(caches.get("on", 0).is_some());
        assert!(caches.get("on", 200).is_some());
        assert!(caches.remove("on", 200).is_some());
        assert!(caches.remove_board("on"));
        assert_eq!(caches.bucket_count(), 0);
        assert!(caches.approx_bytes() == 0);
    }
}
