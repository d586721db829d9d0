//! Removing one entry: an under-full node merges with a sibling or borrows entries from it,
//! and a root left with one child gives way to it.

use uuid::Uuid;

use super::node::{two_mut, Key, INNER_CAP, INNER_MIN, LEAF_CAP, LEAF_MIN};
use super::{reindex, RankCache};

impl RankCache {
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

    pub(super) fn tree_remove(&mut self, k: &Key) {
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
}
