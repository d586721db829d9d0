//! The tree's invariants, checked by the tests (and when debugging): order, bounds, subtree
//! counts, fill, the leaf chain and the owner index.

use uuid::Uuid;

use super::node::{Key, INNER_MIN, LEAF_MIN, NIL};
use super::RankCache;

impl RankCache {
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
