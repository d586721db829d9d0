//! [`CurrentCatalog`]: the catalog a node serves right now, swapped whole when a newer version
//! is loaded. Everyone holding the cell sees the swap; whoever took a catalog with
//! [`CurrentCatalog::get`] keeps that one until it asks again, so one request is answered
//! from one version.

use std::fmt;
use std::sync::{Arc, RwLock};

use super::Catalog;

/// A shared, swappable `Arc<Catalog>`. Cloning shares the cell.
#[derive(Clone)]
pub struct CurrentCatalog {
    cell: Arc<RwLock<Arc<Catalog>>>,
}

impl CurrentCatalog {
    pub fn new(catalog: Arc<Catalog>) -> CurrentCatalog {
        CurrentCatalog {
            cell: Arc::new(RwLock::new(catalog)),
        }
    }

    /// The catalog now; take it once per request.
    pub fn get(&self) -> Arc<Catalog> {
        self.cell.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The version of the catalog now.
    pub fn version(&self) -> i64 {
        self.cell.read().unwrap_or_else(|e| e.into_inner()).version
    }

    /// Swaps in `catalog` if its version is newer than the current one; answers whether it
    /// did. An older or equal version never replaces the current one, so installs arriving
    /// out of order (a broadcast and a poll) end on the newest.
    pub fn install(&self, catalog: Arc<Catalog>) -> bool {
        let mut current = self.cell.write().unwrap_or_else(|e| e.into_inner());
        if catalog.version > current.version {
            *current = catalog;
            true
        } else {
            false
        }
    }
}

impl From<Arc<Catalog>> for CurrentCatalog {
    fn from(catalog: Arc<Catalog>) -> CurrentCatalog {
        CurrentCatalog::new(catalog)
    }
}

impl From<Catalog> for CurrentCatalog {
    fn from(catalog: Catalog) -> CurrentCatalog {
        CurrentCatalog::new(Arc::new(catalog))
    }
}

impl fmt::Debug for CurrentCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentCatalog")
            .field("version", &self.version())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::CatalogData;

    fn at(version: i64) -> Arc<Catalog> {
        Arc::new(Catalog::from_data(CatalogData {
            version,
            ..CatalogData::default()
        }))
    }

    #[test]
    fn only_a_newer_version_is_installed_and_every_clone_sees_it() {
        let current = CurrentCatalog::from(at(3));
        let shared = current.clone();
        let held = current.get();
        assert!(!current.install(at(3)), "the same version is not newer");
        assert!(!current.install(at(2)), "an older version never replaces");
        assert_eq!(shared.version(), 3);
        assert!(current.install(at(5)));
        assert_eq!(shared.version(), 5);
        assert_eq!(shared.get().version, 5);
        assert_eq!(held.version, 3, "a catalog taken before keeps its version");
        assert!(!shared.install(at(4)));
        assert_eq!(current.version(), 5);
    }

    #[test]
    fn converts_from_a_catalog_or_an_arc() {
        let from_value: CurrentCatalog = Catalog::from_data(CatalogData {
            version: 7,
            ..CatalogData::default()
        })
        .into();
        assert_eq!(from_value.version(), 7);
        let arc = at(8);
        let from_arc: CurrentCatalog = arc.clone().into();
        assert!(Arc::ptr_eq(&from_arc.get(), &arc));
        assert_eq!(format!("{from_arc:?}"), "CurrentCatalog { version: 8 }");
    }
}
