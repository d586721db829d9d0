//! Which node owns a key under this node's current membership view. Pure: no actix, no I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::ring::Ring;

/// Where a key lives, as seen by this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Local,
    Remote(String),
    /// No member is serving (this node declared itself dead, or the view is empty).
    Nobody,
}

/// A live member: where to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node_id: String,
    pub peer_addr: String,
    pub client_addr: String,
    pub incarnation: i64,
}

/// The placement function of one membership view.
#[derive(Debug, Clone)]
pub struct Placement {
    node_id: String,
    version: u64,
    members: BTreeMap<String, Member>,
    ring: Option<Arc<Ring>>,
}

impl Placement {
    /// A one-node view: this node owns every key (no cluster configured yet).
    pub fn single(node_id: &str) -> Self {
        Placement {
            node_id: node_id.to_string(),
            version: 0,
            members: BTreeMap::new(),
            ring: None,
        }
    }

    /// The placement of a view of `members` (which should include this node).
    pub fn of_view(node_id: &str, version: u64, members: Vec<Member>, vnodes: usize) -> Self {
        let ids: Vec<String> = members.iter().map(|m| m.node_id.clone()).collect();
        let ring = Arc::new(Ring::new(&ids, vnodes));
        let members = members
            .into_iter()
            .map(|m| (m.node_id.clone(), m))
            .collect();
        Placement {
            node_id: node_id.to_string(),
            version,
            members,
            ring: Some(ring),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The view's version (0 for the one-node placement).
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn member(&self, node_id: &str) -> Option<&Member> {
        self.members.get(node_id)
    }

    /// Owner of the key with these bytes, for entities of `kind`.
    pub fn owner(&self, kind: &str, key: &[u8]) -> Owner {
        let Some(ring) = &self.ring else {
            return Owner::Local;
        };
        match ring.owner(kind, key) {
            None => Owner::Nobody,
            Some(id) if id == self.node_id => Owner::Local,
            Some(id) => Owner::Remote(id.to_string()),
        }
    }

    /// This node's share of the ring (1.0 alone).
    pub fn share(&self) -> f64 {
        self.ring.as_ref().map_or(1.0, |r| r.share(&self.node_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> Member {
        Member {
            node_id: id.into(),
            peer_addr: String::new(),
            client_addr: String::new(),
            incarnation: 1,
        }
    }

    #[test]
    fn single_node_owns_everything() {
        let p = Placement::single("a");
        assert_eq!(p.owner("character", b"anything"), Owner::Local);
        assert_eq!(p.node_id(), "a");
    }

    #[test]
    fn a_view_splits_keys_between_members() {
        let a = Placement::of_view("a", 1, vec![member("a"), member("b")], 128);
        let b = Placement::of_view("b", 1, vec![member("a"), member("b")], 128);
        let (mut local_a, mut local_b) = (0, 0);
        for i in 0..1000u32 {
            let key = i.to_be_bytes();
            match (a.owner("character", &key), b.owner("character", &key)) {
                (Owner::Local, Owner::Remote(r)) => {
                    assert_eq!(r, "a");
                    local_a += 1
                }
                (Owner::Remote(r), Owner::Local) => {
                    assert_eq!(r, "b");
                    local_b += 1
                }
                other => panic!("views disagree: {other:?}"),
            }
        }
        assert!(local_a > 300 && local_b > 300);
        let empty = Placement::of_view("a", 2, vec![], 128);
        assert_eq!(empty.owner("character", b"k"), Owner::Nobody);
    }
}
