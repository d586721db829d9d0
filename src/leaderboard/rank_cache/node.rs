//! The rank cache's tree nodes: leaves and inner nodes in struct-of-arrays form (one array per
//! key field), and the normalised [`Key`] they are sorted by. Nodes know nothing of owners or
//! of the board's order: the tree above them does.

/// Entries per leaf.
pub const LEAF_CAP: usize = 64;
/// Children per inner node.
pub const INNER_CAP: usize = 64;
pub(super) const LEAF_MIN: usize = LEAF_CAP / 4;
pub(super) const INNER_MIN: usize = INNER_CAP / 4;
pub(super) const NIL: u32 = u32::MAX;

/// Normalised key: sorts ascending whatever the board's order (field order = comparison order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    pub(super) score: i64,
    pub(super) sub: i64,
    pub(super) owner: u128,
}

pub(super) struct Leaf {
    pub(super) len: u32,
    /// The leaf to the right, or NIL.
    pub(super) next: u32,
    pub(super) score: [i64; LEAF_CAP],
    pub(super) sub: [i64; LEAF_CAP],
    pub(super) owner: [u128; LEAF_CAP],
    pub(super) generation: [u32; LEAF_CAP],
}

impl Leaf {
    pub(super) fn boxed() -> Box<Leaf> {
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
    pub(super) fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub(super) fn key(&self, i: usize) -> Key {
        Key {
            score: self.score[i],
            sub: self.sub[i],
            owner: self.owner[i],
        }
    }

    #[inline]
    pub(super) fn set(&mut self, i: usize, k: Key, generation: u32) {
        self.score[i] = k.score;
        self.sub[i] = k.sub;
        self.owner[i] = k.owner;
        self.generation[i] = generation;
    }

    /// First position whose key is not below `k`.
    #[inline]
    pub(super) fn lower_bound(&self, k: &Key) -> usize {
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
    pub(super) fn shift(&mut self, from: usize, to: usize, dest: usize) {
        self.score.copy_within(from..to, dest);
        self.sub.copy_within(from..to, dest);
        self.owner.copy_within(from..to, dest);
        self.generation.copy_within(from..to, dest);
    }

    pub(super) fn insert_at(&mut self, pos: usize, k: Key, generation: u32) {
        let len = self.len();
        debug_assert!(len < LEAF_CAP && pos <= len);
        self.shift(pos, len, pos + 1);
        self.set(pos, k, generation);
        self.len += 1;
    }

    pub(super) fn remove_at(&mut self, pos: usize) {
        let len = self.len();
        self.shift(pos + 1, len, pos);
        self.len -= 1;
    }

    /// Copies `src[from..to]` to `self[dest..]` (lengths are the caller's).
    pub(super) fn copy_from(&mut self, src: &Leaf, from: usize, to: usize, dest: usize) {
        let n = to - from;
        self.score[dest..dest + n].copy_from_slice(&src.score[from..to]);
        self.sub[dest..dest + n].copy_from_slice(&src.sub[from..to]);
        self.owner[dest..dest + n].copy_from_slice(&src.owner[from..to]);
        self.generation[dest..dest + n].copy_from_slice(&src.generation[from..to]);
    }
}

pub(super) struct Inner {
    /// Number of children.
    pub(super) len: u32,
    /// Entries under each child.
    pub(super) counts: [u32; INNER_CAP],
    pub(super) children: [u32; INNER_CAP],
    /// Lower bound key of each child (slot 0 is not used for routing).
    pub(super) score: [i64; INNER_CAP],
    pub(super) sub: [i64; INNER_CAP],
    pub(super) owner: [u128; INNER_CAP],
}

impl Inner {
    pub(super) fn boxed() -> Box<Inner> {
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
    pub(super) fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub(super) fn sep(&self, i: usize) -> Key {
        Key {
            score: self.score[i],
            sub: self.sub[i],
            owner: self.owner[i],
        }
    }

    #[inline]
    pub(super) fn set(&mut self, i: usize, sep: Key, child: u32, count: u32) {
        self.set_sep(i, sep);
        self.children[i] = child;
        self.counts[i] = count;
    }

    #[inline]
    pub(super) fn set_sep(&mut self, i: usize, k: Key) {
        self.score[i] = k.score;
        self.sub[i] = k.sub;
        self.owner[i] = k.owner;
    }

    /// The child whose key range holds `k`: the last one whose lower bound is not above it.
    #[inline]
    pub(super) fn child_for(&self, k: &Key) -> usize {
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
    pub(super) fn count_before(&self, c: usize) -> u64 {
        self.counts[..c].iter().map(|&n| n as u64).sum()
    }

    pub(super) fn total(&self) -> u64 {
        self.count_before(self.len())
    }

    pub(super) fn shift(&mut self, from: usize, to: usize, dest: usize) {
        self.counts.copy_within(from..to, dest);
        self.children.copy_within(from..to, dest);
        self.score.copy_within(from..to, dest);
        self.sub.copy_within(from..to, dest);
        self.owner.copy_within(from..to, dest);
    }

    pub(super) fn insert_child(&mut self, pos: usize, sep: Key, child: u32, count: u32) {
        let len = self.len();
        debug_assert!(len < INNER_CAP && pos <= len);
        self.shift(pos, len, pos + 1);
        self.set(pos, sep, child, count);
        self.len += 1;
    }

    pub(super) fn remove_child(&mut self, pos: usize) {
        let len = self.len();
        self.shift(pos + 1, len, pos);
        self.len -= 1;
    }

    pub(super) fn copy_from(&mut self, src: &Inner, from: usize, to: usize, dest: usize) {
        let n = to - from;
        self.counts[dest..dest + n].copy_from_slice(&src.counts[from..to]);
        self.children[dest..dest + n].copy_from_slice(&src.children[from..to]);
        self.score[dest..dest + n].copy_from_slice(&src.score[from..to]);
        self.sub[dest..dest + n].copy_from_slice(&src.sub[from..to]);
        self.owner[dest..dest + n].copy_from_slice(&src.owner[from..to]);
    }
}

/// Two distinct elements of a slice, mutably.
pub(super) fn two_mut<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b);
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}
