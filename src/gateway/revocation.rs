//! Revoked tokens: refused on every node within a second of the logout that revoked them,
//! and after restarts, without a database read per request.
//!
//! - [`RevokedSet`]: token ids in memory (with their expiry, so they can be forgotten once the
//!   token is dead anyway). [`super::TokenIssuer::verify`] consults it for every token.
//! - [`Revocations::revoke`]: stores the ids (`persistence::revocations`, kept until the
//!   tokens expire), adds them here, and sends them to every other member of the view on the
//!   [`CHANNEL`], waiting at most [`BROADCAST_WITHIN`] for their answers.
//! - A node that missed a broadcast (link down, joining, restarted) converges by itself: at
//!   start it loads every unexpired revocation before serving, then polls every
//!   [`POLL_EVERY`] for the rows revoked since a watermark of the database's clock. The
//!   watermark trails the clock's reading by the database's statement timeout plus a margin:
//!   a revoking statement that committed after a poll read started at most that long before
//!   it, so its `revoked_at` is past the next watermark. Bound: a revocation a node missed is
//!   enforced there within `POLL_EVERY` (plus one poll's query) after it committed.
//! - Expired ids are dropped from memory and pruned from the table every [`PRUNE_EVERY`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::persistence::revocations::{self as store, Revoked};
use crate::persistence::{Db, DbError};
use crate::request::Failure;
use crate::routing::channel::{self, Channel};
use crate::routing::peer::Peers;
use crate::routing::Router;
use crate::shutdown::Shutdown;

/// The channel's name on the peer link (a wire name: never rename it).
pub const CHANNEL: &str = "revocation";
/// How long a revoking call waits for the other members' answers.
pub const BROADCAST_WITHIN: Duration = Duration::from_secs(1);
/// How often a node reads the revocations it may have missed.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How often expired ids are forgotten in memory and pruned from the table.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Rows pruned per round at most (the rest go next round).
const PRUNE_LIMIT: i64 = 10_000;
/// First byte of every body on the channel: its encoding's version.
const FORMAT: u8 = 1;

/// Token ids revoked and not yet expired, with their expiry (seconds since the Unix epoch).
#[derive(Debug, Default)]
pub struct RevokedSet {
    ids: RwLock<HashMap<String, i64>>,
}

impl RevokedSet {
    pub fn contains(&self, tid: &str) -> bool {
        let ids = self.ids.read().unwrap_or_else(|e| e.into_inner());
        !ids.is_empty() && ids.contains_key(tid)
    }

    pub fn insert(&self, tokens: impl IntoIterator<Item = (String, i64)>) {
        let mut ids = self.ids.write().unwrap_or_else(|e| e.into_inner());
        ids.extend(tokens);
    }

    /// Forgets the ids of tokens expired at `now` (they fail verification by their expiry).
    pub fn prune(&self, now: i64) {
        let mut ids = self.ids.write().unwrap_or_else(|e| e.into_inner());
        ids.retain(|_, exp| *exp > now);
    }

    pub fn len(&self) -> usize {
        self.ids.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The body of a broadcast: the revoked ids and their expiries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Told {
    tokens: Vec<(String, i64)>,
}

/// Where the members are, once the node has started its peer link.
#[derive(Clone)]
struct Cluster {
    node_id: String,
    peers: Peers,
    router: Weak<Router>,
}

/// The node's revocations. Cheap to clone: clones share the set.
#[derive(Clone)]
pub struct Revocations {
    set: Arc<RevokedSet>,
    db: Db,
    cluster: Arc<RwLock<Option<Cluster>>>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("revoked", &self.set.len())
            .finish_non_exhaustive()
    }
}

fn to_revoked(tid: &str, exp: i64) -> Revoked {
    Revoked {
        tid: tid.to_string(),
        expires_at: DateTime::from_timestamp(exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
    }
}

impl Revocations {
    /// Revocations kept on this node only, until [`Revocations::start`] joins it to the
    /// cluster.
    pub fn new(db: Db) -> Revocations {
        Revocations {
            set: Arc::default(),
            db,
            cluster: Arc::default(),
        }
    }

    /// The in-memory set the token issuer checks.
    pub fn set(&self) -> Arc<RevokedSet> {
        self.set.clone()
    }

    /// Loads every unexpired revocation (before the node serves clients), serves the channel
    /// and polls until `shutdown`. `statement_timeout` is the database's (see the module
    /// documentation for why the watermark trails by it).
    pub async fn start(
        &self,
        node_id: &str,
        router: &Arc<Router>,
        peers: Peers,
        statement_timeout: Duration,
        shutdown: Shutdown,
    ) -> Result<(), DbError> {
        let (rows, now) = store::since(&self.db, None).await?;
        self.insert_rows(rows);
        *self.cluster.write().unwrap_or_else(|e| e.into_inner()) = Some(Cluster {
            node_id: node_id.to_string(),
            peers,
            router: Arc::downgrade(router),
        });
        router.register_channel(CHANNEL, Arc::new(self.clone()));
        let lag = chrono::Duration::from_std(statement_timeout + Duration::from_secs(5))
            .unwrap_or(chrono::Duration::seconds(60));
        actix_rt::spawn(self.clone().poll(now - lag, lag, shutdown));
        Ok(())
    }

    fn insert_rows(&self, rows: Vec<Revoked>) {
        self.set
            .insert(rows.into_iter().map(|r| (r.tid, r.expires_at.timestamp())));
    }

    /// Revokes `tokens` (id, expiry in seconds): stored first (the answer means committed),
    /// then enforced here and sent to every other member, waiting at most
    /// [`BROADCAST_WITHIN`]; a member that misses it catches up by its poll.
    pub async fn revoke(&self, tokens: &[(String, i64)]) -> Result<(), DbError> {
        let rows: Vec<Revoked> = tokens.iter().map(|(t, e)| to_revoked(t, *e)).collect();
        store::revoke(&self.db, &rows).await?;
        self.set.insert(tokens.iter().cloned());
        self.broadcast(tokens).await;
        Ok(())
    }

    /// Uses up a refresh token: answers the user's username if this call revoked it, `None`
    /// if it was revoked already (see `persistence::revocations::consume`).
    pub async fn consume_refresh(
        &self,
        tid: &str,
        exp: i64,
        user_id: uuid::Uuid,
    ) -> Result<Option<Option<String>>, DbError> {
        let consumed = store::consume(&self.db, &to_revoked(tid, exp), user_id).await?;
        if consumed.is_some() {
            // Refreshes always ask the database, so other nodes learn it by their poll.
            self.set.insert([(tid.to_string(), exp)]);
        }
        Ok(consumed)
    }

    async fn broadcast(&self, tokens: &[(String, i64)]) {
        let Some(cluster) = self
            .cluster
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return;
        };
        let Some(router) = cluster.router.upgrade() else {
            return;
        };
        let members: Vec<_> = router
            .placement()
            .members()
            .filter(|m| m.node_id != cluster.node_id)
            .cloned()
            .collect();
        let body = channel::encode(
            FORMAT,
            &Told {
                tokens: tokens.to_vec(),
            },
        );
        let deadline = Instant::now() + BROADCAST_WITHIN;
        let calls = members.iter().map(|m| {
            let (body, peers) = (body.clone(), &cluster.peers);
            async move {
                if let Err(e) = channel::call(peers, m, CHANNEL, body, deadline).await {
                    tracing::debug!(node = %m.node_id, error = %e,
                        "revocation not delivered; the member catches up by its poll");
                }
            }
        });
        futures_util::future::join_all(calls).await;
    }

    async fn poll(self, mut watermark: DateTime<Utc>, lag: chrono::Duration, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tick.tick() => {}
            }
            match store::since(&self.db, Some(watermark)).await {
                Ok((rows, now)) => {
                    self.insert_rows(rows);
                    watermark = watermark.max(now - lag);
                }
                Err(e) => tracing::debug!(error = %e, "reading revocations failed; next poll"),
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                self.set.prune(Utc::now().timestamp());
                if let Err(e) = store::prune(&self.db, PRUNE_LIMIT).await {
                    tracing::debug!(error = %e, "pruning expired revocations failed");
                }
            }
        }
    }
}

impl Channel for Revocations {
    fn serve(&self, from: String, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, Failure>> {
        let told = channel::decode::<Told>(FORMAT, "revocation", &body);
        let set = self.set.clone();
        Box::pin(async move {
            let told = told.map_err(|e| {
                Failure::not_run(format!("undecodable revocation from {from}: {e}"))
            })?;
            set.insert(told.tokens);
            Ok(vec![FORMAT])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_forgets_expired_ids() {
        let set = RevokedSet::default();
        assert!(!set.contains("a"));
        set.insert([("a".to_string(), 100), ("b".to_string(), 200)]);
        assert!(set.contains("a") && set.contains("b"));
        set.prune(150);
        assert!(!set.contains("a") && set.contains("b"));
    }

    #[test]
    fn messages_round_trip_and_foreign_formats_are_refused() {
        let told = Told {
            tokens: vec![("tid".into(), 42)],
        };
        let bytes = channel::encode(FORMAT, &told);
        assert_eq!(channel::decode(FORMAT, "revocation", &bytes), Ok(told));
        assert!(channel::decode::<Told>(FORMAT, "revocation", &[9, 0]).is_err());
        assert!(channel::decode::<Told>(FORMAT, "revocation", &[]).is_err());
        assert!(channel::decode::<Told>(FORMAT, "revocation", &[FORMAT, 0xff, 0xff]).is_err());
    }
}
