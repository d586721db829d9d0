//! Hot catalog reload: "write the database, bump the version, publish an invalidation so
//! every node agrees".
//!
//! - [`CatalogSync::reload`] (the admin's `POST /admin/catalog/reload`): reads and validates
//!   the catalog in the database, bumps `catalog_meta.version` only from the version it
//!   validated (a concurrent bump is a conflict), reads it again at the new version, installs
//!   it here and sends an invalidation to every member of the view.
//! - The [`CHANNEL`] on the peer link serves invalidations: a node behind the announced
//!   version loads the catalog from the database and installs it, then answers the version it
//!   serves.
//! - A poll reads the version (one row) every `catalog_poll_interval` and catches up the same
//!   way, so a node that missed a broadcast (its links were down, the version was bumped by
//!   hand) converges within one interval.
//!
//! Installing swaps [`CurrentCatalog`]: actors take the new catalog at their next request. A
//! version whose tables do not validate is never installed (the node keeps serving the one it
//! has, and says so once per version in its log).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Services;
use crate::domain::catalog::{Catalog, CurrentCatalog};
use crate::metrics::Metrics;
use crate::persistence::catalog::{self as store, CatalogStamp};
use crate::persistence::{Db, DbError};
use crate::request::Failure;
use crate::routing::channel::{self, Channel};
use crate::routing::peer::Peers;
use crate::routing::Router;
use crate::shutdown::Shutdown;

/// The channel's name on the peer link (a wire name: never rename it).
pub const CHANNEL: &str = "catalog";

/// The first byte of every body on the channel: its encoding's version. Fields are only ever
/// appended (postcard), and a new layout takes a new byte.
const FORMAT: u8 = 1;

/// "Version `version` exists since `bumped_at_ms`": the body of an invalidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Invalidation {
    version: i64,
    /// When the version was bumped (database clock, ms since the Unix epoch), for the sync
    /// delay metric.
    bumped_at_ms: Option<i64>,
}

/// The answer: the version the node serves once it handled the invalidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Serving {
    version: i64,
}

/// Why a reload changed nothing (or not everything).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The catalog in the database does not validate: nothing was bumped.
    #[error("{0}")]
    Invalid(String),
    /// The version moved while reloading (another reload ran, or the tables changed between
    /// the validation and the bump).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Database(DbError),
}

/// What a reload did: the version installed, when it was bumped, and what every member of the
/// view answered (the version it serves, or why it did not answer).
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub version: i64,
    pub updated_at: Option<DateTime<Utc>>,
    pub nodes: BTreeMap<String, Result<i64, String>>,
}

/// The node's side of catalog reloads. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct CatalogSync {
    node_id: String,
    db: Db,
    current: CurrentCatalog,
    peers: Peers,
    router: Weak<Router>,
    metrics: Arc<Metrics>,
    request_timeout: Duration,
    /// One load from the database at a time: a broadcast and a poll arriving together load once.
    loading: Arc<tokio::sync::Mutex<()>>,
    /// The newest version that did not validate here, so it is neither loaded nor logged again.
    refused: Arc<Mutex<i64>>,
}

impl CatalogSync {
    /// Serves the channel and polls the version until the node's shutdown.
    pub fn start(services: &Services) -> CatalogSync {
        let sync = CatalogSync {
            node_id: services.config.node_id.clone(),
            db: services.db.clone(),
            current: services.catalog.clone(),
            peers: services.peers.clone(),
            router: Arc::downgrade(&services.router),
            metrics: services.metrics.clone(),
            request_timeout: services.config.request_timeout,
            loading: Arc::default(),
            refused: Arc::default(),
        };
        sync.metrics
            .catalog_version
            .set(sync.current.version() as f64);
        services
            .router
            .register_channel(CHANNEL, Arc::new(sync.clone()));
        actix_rt::spawn(sync.clone().poll(
            services.config.catalog_poll_interval,
            services.shutdown.clone(),
        ));
        sync
    }

    /// The catalog this node serves (take it with `get()` once per request).
    pub fn current(&self) -> &CurrentCatalog {
        &self.current
    }

    /// The catalog version this node serves.
    pub fn version(&self) -> i64 {
        self.current.version()
    }

    /// Validates the catalog in the database, bumps its version, installs it here and tells
    /// every member (see the module documentation).
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let validated = store::load(&self.db).await.map_err(|e| match e {
            DbError::Rejected(why) => ReloadError::Invalid(why),
            e => ReloadError::Database(e),
        })?;
        let stamp = store::bump(&self.db, validated.version)
            .await
            .map_err(ReloadError::Database)?
            .ok_or_else(|| {
                ReloadError::Conflict(format!(
                    "the catalog version moved on from {} while reloading (another reload?): \
                     nothing was bumped; reload again",
                    validated.version
                ))
            })?;
        let catalog = store::load(&self.db).await.map_err(|e| match e {
            DbError::Rejected(why) => ReloadError::Conflict(format!(
                "the catalog tables changed between the validation and the bump to version {}: \
                 {why}; fix them and reload again",
                stamp.version
            )),
            e => ReloadError::Database(e),
        })?;
        let version = catalog.version;
        let bumped_at = (version == stamp.version)
            .then_some(stamp.updated_at)
            .flatten();
        self.install(Arc::new(catalog), bumped_at);
        tracing::info!(version, "catalog reloaded; telling every member");
        let nodes = self.broadcast(version, bumped_at).await;
        Ok(Reloaded {
            version,
            updated_at: stamp.updated_at,
            nodes,
        })
    }

    /// Sends the invalidation to every other member of the view at once; answers what each
    /// serves afterwards (this node included).
    async fn broadcast(
        &self,
        version: i64,
        bumped_at: Option<DateTime<Utc>>,
    ) -> BTreeMap<String, Result<i64, String>> {
        let body = channel::encode(
            FORMAT,
            &Invalidation {
                version,
                bumped_at_ms: bumped_at.map(|t| t.timestamp_millis()),
            },
        );
        let members = match self.router.upgrade() {
            Some(router) => router
                .placement()
                .members()
                .filter(|m| m.node_id != self.node_id)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let deadline = Instant::now() + self.request_timeout;
        let calls = members.into_iter().map(|m| {
            let body = body.clone();
            async move {
                let answer = channel::call(&self.peers, &m, CHANNEL, body, deadline)
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| channel::decode::<Serving>(FORMAT, "catalog", &bytes))
                    .map(|s| s.version);
                (m.node_id, answer)
            }
        });
        let mut nodes: BTreeMap<String, Result<i64, String>> =
            futures_util::future::join_all(calls)
                .await
                .into_iter()
                .collect();
        nodes.insert(self.node_id.clone(), Ok(self.version()));
        nodes
    }

    /// Loads the catalog from the database and installs it, unless this node already serves
    /// `version` or newer. `bumped_at` is when `version` was bumped (for the delay metric).
    async fn catch_up(
        &self,
        version: i64,
        bumped_at: Option<DateTime<Utc>>,
    ) -> Result<i64, Failure> {
        let _one = self.loading.lock().await;
        if self.version() >= version {
            return Ok(self.version());
        }
        if *self.refused.lock().unwrap_or_else(|e| e.into_inner()) >= version {
            return Err(Failure::not_run(format!(
                "catalog version {version} does not validate"
            )));
        }
        match store::load(&self.db).await {
            Ok(catalog) => {
                let at = (catalog.version == version).then_some(bumped_at).flatten();
                self.install(Arc::new(catalog), at);
                Ok(self.version())
            }
            Err(DbError::Rejected(why)) => {
                let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
                if *refused < version {
                    *refused = version;
                    tracing::error!(version, error = %why, serving = self.version(),
                        "the catalog in the database does not validate: keeping the one served");
                }
                Err(Failure::not_run(why))
            }
            Err(e) => {
                tracing::warn!(version, error = %e, "loading the catalog failed; the poll tries again");
                Err(Failure::not_run(format!("loading the catalog: {e}")))
            }
        }
    }

    /// Swaps `catalog` in if it is newer than the one served; counts the version and how long
    /// after its bump it arrived here.
    fn install(&self, catalog: Arc<Catalog>, bumped_at: Option<DateTime<Utc>>) -> bool {
        let version = catalog.version;
        if !self.current.install(catalog) {
            return false;
        }
        self.metrics.catalog_version.set(version as f64);
        if let Some(at) = bumped_at {
            let delay = (Utc::now() - at).to_std().unwrap_or(Duration::ZERO);
            self.metrics.catalog_sync_delay.record(delay.as_secs_f64());
        }
        tracing::info!(version, "catalog installed");
        true
    }

    /// Every `every`: reads the version and catches up when it is newer than the one served.
    async fn poll(self, every: Duration, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tick.tick() => {}
            }
            match store::stamp(&self.db).await {
                Ok(CatalogStamp {
                    version,
                    updated_at,
                }) if version > self.version() => {
                    // Failures are logged inside and tried again next round.
                    let _ = self.catch_up(version, updated_at).await;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "reading the catalog version failed"),
            }
        }
    }
}

impl Channel for CatalogSync {
    fn serve(&self, from: String, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, Failure>> {
        let sync = self.clone();
        Box::pin(async move {
            let told: Invalidation = channel::decode(FORMAT, "catalog", &body).map_err(|e| {
                Failure::not_run(format!("undecodable catalog invalidation from {from}: {e}"))
            })?;
            let bumped_at = told
                .bumped_at_ms
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
            let version = sync.catch_up(told.version, bumped_at).await?;
            Ok(channel::encode(FORMAT, &Serving { version }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_foreign_formats_are_refused() {
        let told = Invalidation {
            version: 42,
            bumped_at_ms: Some(1_700_000_000_123),
        };
        let bytes = channel::encode(FORMAT, &told);
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(
            channel::decode::<Invalidation>(FORMAT, "catalog", &bytes),
            Ok(told)
        );
        assert_eq!(
            channel::decode::<Serving>(
                FORMAT,
                "catalog",
                &channel::encode(FORMAT, &Serving { version: 7 })
            ),
            Ok(Serving { version: 7 })
        );
        let mut foreign = bytes.clone();
        foreign[0] = 9;
        assert!(channel::decode::<Invalidation>(FORMAT, "catalog", &foreign).is_err());
        assert!(channel::decode::<Invalidation>(FORMAT, "catalog", &[]).is_err());
        assert!(channel::decode::<Invalidation>(FORMAT, "catalog", &[FORMAT, 0xff]).is_err());
    }
}
