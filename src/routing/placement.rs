//! Which node owns a key. Pure: no actix, no I/O.

/// Where a key lives, as seen by this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Local,
    Remote(String),
}

/// The placement function of this node's current view.
#[derive(Debug, Clone)]
pub struct Placement {
    node_id: String,
}

impl Placement {
    /// A one-node view: this node owns every key.
    pub fn single(node_id: &str) -> Self {
        Placement {
            node_id: node_id.to_string(),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Owner of the key with these bytes, for entities of `kind`.
    pub fn owner(&self, _kind: &str, _key: &[u8]) -> Owner {
        Owner::Local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_node_owns_everything() {
        let p = Placement::single("a");
        assert_eq!(p.owner("character", b"anything"), Owner::Local);
        assert_eq!(p.node_id(), "a");
    }
}
