//! Inserting or replacing one entry: the leaf it belongs to takes it, or splits in two, and a
//! split goes up the inner levels (a new root when the old one splits).

use uuid::Uuid;

use super::node::{two_mut, Inner, Key, Leaf, INNER_CAP, LEAF_CAP, NIL};
use super::{reindex, RankCache, RankEntry};

impl RankCache {
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
}
