//! Serialized top pages of the replicated boards: a board's first page of a given size is
//! serialized once per change of the replicas and then served as bytes, not rebuilt and
//! serialized per request.
//!
//! Validity: every write access to the replicas ([`super::LeaderboardSync::write_replicas`])
//! bumps `changes` while it holds the write lock, and a page is stored and looked up with the
//! value of `changes` read under the read lock it was built under. So a stored page is
//! exactly the page of the replicas at that value, and any change since (to any board: the
//! counter is shared, which costs a rebuild, never a stale page) makes it miss.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use actix_web::web::Bytes;

/// Pages kept at most; past that the cache starts afresh (pages are rebuilt on demand).
const MAX_PAGES: usize = 4096;

/// Which page: board, page size, bucket (expiry).
pub type PageKey = (String, u32, i64);

#[derive(Default)]
pub struct PageCache {
    changes: AtomicU64,
    pages: Mutex<HashMap<PageKey, (u64, Bytes)>>,
}

impl PageCache {
    /// Called with the replicas' write lock held.
    pub(crate) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// The replicas' change count; read it with the replicas' read lock held.
    pub(crate) fn version(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// The page built at `version`, if it is stored.
    pub(crate) fn get(&self, key: &PageKey, version: u64) -> Option<Bytes> {
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        match pages.get(key) {
            Some((v, bytes)) if *v == version => Some(bytes.clone()),
            _ => None,
        }
    }

    pub(crate) fn put(&self, key: PageKey, version: u64, bytes: Bytes) {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        if pages.len() >= MAX_PAGES && !pages.contains_key(&key) {
            pages.clear();
        }
        pages.insert(key, (version, bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_makes_stored_pages_miss() {
        let c = PageCache::default();
        let key = ("b".to_string(), 10, 0);
        let v = c.version();
        c.put(key.clone(), v, Bytes::from_static(b"page"));
        assert_eq!(c.get(&key, c.version()).as_deref(), Some(&b"page"[..]));
        c.changed();
        assert!(c.get(&key, c.version()).is_none());
    }
}
