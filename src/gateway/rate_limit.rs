//! Cluster-wide rate limits per user and RPC group (docs/world.md "Rate limits"), checked by
//! [`super::RpcRegistry::call`] before a handler runs, so a refusal changes nothing.
//!
//! The user's *owner node* (ring placement of the user id, kind [`PLACEMENT_KIND`]) holds one
//! token bucket per (user, group) in memory. A node serving the user leases a small batch of
//! tokens from it over the [`CHANNEL`] channel and spends them locally: a user under the limit
//! costs one owner round trip per batch, not per request. A batch is usable for `lease_ms`;
//! what an expired batch left unspent is handed back with the node's next ask.
//!
//! The bound holds because the owner grants only whole tokens its bucket holds (see
//! [`crate::domain::rate_limit`]): across the cluster, accepted ≤ granted ≤ burst + rate ×
//! elapsed. Two things widen it, both documented: when the owner is unreachable a node falls
//! back to a bucket of its own (fail open, limited per node, so an owner failure does not take
//! the game down), and a bucket whose owner changes (a view change) starts full on its new
//! owner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use uuid::Uuid;

use super::error::GrpcCode;
use super::rpc::{RpcContext, RpcError};
use crate::config::{RateGroup, RateLimits};
use crate::domain::rate_limit::{Bucket, Lease, Rate};
use crate::metrics::Metrics;
use crate::request::Failure;
use crate::routing::channel::{self, Channel};
use crate::routing::peer::Peers;
use crate::routing::placement::Owner;
use crate::routing::Router;

/// The peer channel on which nodes lease tokens from a user's owner node.
pub const CHANNEL: &str = "rate_limit";
/// The ring kind a user's buckets are placed by.
pub const PLACEMENT_KIND: &str = "rate_limit";
/// The wire format of [`LeaseAsk`] and [`LeaseGrant`]; bump on any change.
const FORMAT: u8 = 1;
/// A lease ask waits no longer for the owner before the node falls back to its own bucket:
/// the limit must never make a request much slower than the owner's round trip.
const ASK_TIMEOUT: Duration = Duration::from_millis(250);
/// Above this many buckets a table forgets the full ones (a full bucket equals a new one).
const SWEEP_ABOVE: usize = 4096;

/// A node asking the owner for `want` tokens, handing back `returning` from an expired lease.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseAsk {
    user: Uuid,
    group: String,
    want: u32,
    returning: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct LeaseGrant {
    granted: u32,
}

type Key = (Uuid, String);

/// Token buckets by (user, group); the caller passes the group's rate.
struct Buckets {
    table: Mutex<HashMap<Key, Bucket>>,
}

impl Buckets {
    fn new() -> Buckets {
        Buckets {
            table: Mutex::new(HashMap::new()),
        }
    }

    fn grant(&self, key: Key, rate: &Rate, now: u64, want: u32, returning: u32) -> u32 {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() > SWEEP_ABOVE && !table.contains_key(&key) {
            table.retain(|_, b| !b.is_full(rate, now));
        }
        let bucket = table.entry(key).or_insert_with(|| Bucket::full(rate, now));
        bucket.give_back(rate, now, returning);
        bucket.grant(rate, now, want)
    }
}

struct Inner {
    limits: RateLimits,
    router: Weak<Router>,
    peers: Peers,
    metrics: Arc<Metrics>,
    /// Buckets this node holds as the owner of their users.
    owned: Buckets,
    /// Tokens this node was granted, by (user, group).
    leases: Mutex<HashMap<Key, Lease>>,
    /// This node's own buckets, used while a user's owner cannot be reached.
    fallback: Buckets,
    epoch: Instant,
}

/// The node's rate limiter: owner of some users' buckets, lessee of others'.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

impl RateLimiter {
    /// The limiter of `limits`, serving its channel on `router`.
    pub fn start(
        limits: RateLimits,
        router: &Arc<Router>,
        peers: Peers,
        metrics: Arc<Metrics>,
    ) -> RateLimiter {
        let limiter = RateLimiter {
            inner: Arc::new(Inner {
                limits,
                router: Arc::downgrade(router),
                peers,
                metrics,
                owned: Buckets::new(),
                leases: Mutex::new(HashMap::new()),
                fallback: Buckets::new(),
                epoch: Instant::now(),
            }),
        };
        router.register_channel(CHANNEL, Arc::new(limiter.clone()));
        limiter
    }

    fn now_ms(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }

    /// Whether `ctx` may run RPC `id` (lower-cased) now; a refusal is RESOURCE_EXHAUSTED.
    /// Server-to-server calls (the HTTP key) are not limited.
    pub async fn admit(&self, ctx: &RpcContext, id: &str) -> Result<(), RpcError> {
        if ctx.http_key {
            return Ok(());
        }
        let Some(group) = self.inner.limits.group_of(id) else {
            return Ok(());
        };
        let rate = rate_of(group);
        let key: Key = (ctx.user_id, group.name.clone());
        let now = self.now_ms();
        let returning = {
            let mut leases = self.inner.leases.lock().unwrap_or_else(|e| e.into_inner());
            let lease = leases.entry(key.clone()).or_default();
            if lease.take(now) {
                return Ok(());
            }
            if lease.is_held_off(now) {
                drop(leases);
                return Err(self.refuse(group));
            }
            // Spent or expired: what it still holds goes back with the ask.
            let back = lease.surrender();
            if leases.len() > SWEEP_ABOVE {
                leases.retain(|_, l| !l.is_spent(now));
            }
            back
        };
        let want = rate.lease_size();
        let granted = match self.ask_owner(&key, want, returning).await {
            Ok(granted) => granted,
            Err(why) => {
                // Fail open, per node: the owner is down or unreachable.
                if let Some(suppressed) = crate::quiet::allow("rate-limit-owner") {
                    tracing::warn!(%why, group = %group.name, "rate limit owner unreachable; limiting on this node{suppressed}");
                }
                self.inner
                    .metrics
                    .counter_with(
                        "serai_rate_limit_fallbacks_total",
                        &[("group", &group.name)],
                    )
                    .increment(1);
                self.inner.fallback.grant(key.clone(), &rate, now, 1, 0)
            }
        };
        let ttl = self.inner.limits.lease.as_millis() as u64;
        let mut leases = self.inner.leases.lock().unwrap_or_else(|e| e.into_inner());
        let lease = leases.entry(key).or_default();
        if granted == 0 {
            lease.hold_off(&rate, self.now_ms());
            drop(leases);
            return Err(self.refuse(group));
        }
        lease.add(granted - 1, self.now_ms(), ttl);
        Ok(())
    }

    /// Counts a refusal of `group` and says it to the client.
    fn refuse(&self, group: &RateGroup) -> RpcError {
        self.inner
            .metrics
            .counter_with("serai_rate_limit_refusals_total", &[("group", &group.name)])
            .increment(1);
        RpcError::new(
            GrpcCode::ResourceExhausted,
            format!(
                "Rate limit exceeded for `{}` ({} per second, burst {}): nothing was run; try again later.",
                group.name, group.rate_per_sec, group.burst
            ),
        )
    }

    /// Asks the user's owner node (maybe this one) for up to `want` tokens.
    async fn ask_owner(&self, key: &Key, want: u32, returning: u32) -> Result<u32, String> {
        let router = self.inner.router.upgrade().ok_or("the node is stopping")?;
        let placement = router.placement();
        let member = match placement.owner(PLACEMENT_KIND, key.0.as_bytes()) {
            Owner::Local => return Ok(self.grant_owned(key, want, returning)),
            Owner::Remote(node) => placement
                .member(&node)
                .cloned()
                .ok_or_else(|| format!("owner {node} is not in the view"))?,
            Owner::Nobody => return Err("no live member owns the user".into()),
        };
        self.inner
            .metrics
            .counter_with("serai_rate_limit_owner_asks_total", &[("group", &key.1)])
            .increment(1);
        let ask = LeaseAsk {
            user: key.0,
            group: key.1.clone(),
            want,
            returning,
        };
        let body = channel::encode(FORMAT, &ask);
        let answer = channel::call(
            &self.inner.peers,
            &member,
            CHANNEL,
            body,
            Instant::now() + ASK_TIMEOUT,
        )
        .await
        .map_err(|e| e.to_string())?;
        channel::decode::<LeaseGrant>(FORMAT, "rate limit", &answer).map(|g| g.granted.min(want))
    }

    fn grant_owned(&self, key: &Key, want: u32, returning: u32) -> u32 {
        let Some(group) = self.group_named(&key.1) else {
            return 0;
        };
        let rate = rate_of(group);
        let now = self.now_ms();
        self.inner
            .owned
            .grant(key.clone(), &rate, now, want, returning)
    }

    fn group_named(&self, name: &str) -> Option<&RateGroup> {
        let limits = &self.inner.limits;
        limits
            .groups
            .iter()
            .chain(limits.default.as_ref())
            .find(|g| g.name == name)
    }
}

impl Channel for RateLimiter {
    fn serve(&self, _from: String, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, Failure>> {
        let answer = channel::decode::<LeaseAsk>(FORMAT, "rate limit", &body)
            .map(|ask| {
                // A group this node does not know (configs differ during a rollout) grants
                // nothing, so the asking node refuses rather than over-admits.
                let granted = self.grant_owned(&(ask.user, ask.group), ask.want, ask.returning);
                channel::encode(FORMAT, &LeaseGrant { granted })
            })
            .map_err(Failure::not_run);
        Box::pin(async move { answer })
    }
}

fn rate_of(group: &RateGroup) -> Rate {
    Rate {
        per_sec: group.rate_per_sec,
        burst: group.burst,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateGroup;
    use crate::routing::peer::PeerSettings;
    use crate::routing::placement::{Member, Placement};

    fn limits(burst: u32) -> RateLimits {
        RateLimits {
            lease: Duration::from_millis(1000),
            default: Some(RateGroup {
                name: "default".into(),
                rate_per_sec: 0.5,
                burst,
                rpcs: vec![],
            }),
            groups: vec![],
        }
    }

    fn user() -> RpcContext {
        RpcContext {
            user_id: Uuid::new_v4(),
            username: "u".into(),
            vars: Default::default(),
            http_key: false,
        }
    }

    /// A node `a` in a view with `b`, whose peer address refuses connections.
    fn limiter_with_dead_peer(burst: u32) -> (RateLimiter, Arc<Router>, Arc<Metrics>) {
        let member = |id: &str, peer: &str| Member {
            node_id: id.into(),
            peer_addr: peer.into(),
            client_addr: String::new(),
            incarnation: 1,
        };
        let view = vec![member("a", "127.0.0.1:9"), member("b", "127.0.0.1:1")];
        let metrics = Metrics::new("a");
        let router = Arc::new(Router::new(
            Placement::of_view("a", 1, view, 64),
            Vec::new(),
            metrics.clone(),
        ));
        let peers = Peers::new(PeerSettings::new("a", "secret-secret"));
        let limiter = RateLimiter::start(limits(burst), &router, peers, metrics.clone());
        (limiter, router, metrics)
    }

    /// A user whose owner is (`local`) or is not this node.
    fn user_owned(router: &Router, local: bool) -> RpcContext {
        loop {
            let ctx = user();
            let owner = router
                .placement()
                .owner(PLACEMENT_KIND, ctx.user_id.as_bytes());
            if (owner == Owner::Local) == local {
                return ctx;
            }
        }
    }

    #[actix_rt::test]
    async fn an_unreachable_owner_fails_open_with_a_per_node_limit() {
        let (limiter, router, metrics) = limiter_with_dead_peer(2);
        let ctx = user_owned(&router, false);
        assert!(limiter.admit(&ctx, "anything").await.is_ok());
        assert!(limiter.admit(&ctx, "anything").await.is_ok());
        let refused = limiter.admit(&ctx, "anything").await.unwrap_err();
        assert_eq!(refused.grpc_code(), GrpcCode::ResourceExhausted);
        let text = metrics.render();
        assert!(
            text.lines()
                .any(|l| l.starts_with("serai_rate_limit_fallbacks_total{") && l.ends_with(" 3")),
            "{text}"
        );
    }

    #[actix_rt::test]
    async fn a_local_owner_grants_its_burst_and_server_calls_are_not_limited() {
        let (limiter, router, _) = limiter_with_dead_peer(3);
        let ctx = user_owned(&router, true);
        for _ in 0..3 {
            limiter.admit(&ctx, "anything").await.unwrap();
        }
        assert!(limiter.admit(&ctx, "anything").await.is_err());
        for _ in 0..10 {
            limiter
                .admit(&RpcContext::server(), "anything")
                .await
                .unwrap();
        }
    }
}
