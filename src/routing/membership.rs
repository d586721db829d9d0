//! Membership: each node writes a heartbeat row, reads everyone's, probes its peers, and
//! installs a new placement in the router whenever the set of live members changes.
//!
//! The database's clock decides who is silent (one clock for all nodes). A member whose
//! heartbeat is older than the membership timeout leaves the view. A node that cannot write
//! its own heartbeat for that long knows the others have declared it dead: it stops serving
//! (no activations, entities stopped) until a heartbeat succeeds again, and then rejoins with a
//! new incarnation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use metrics::Gauge;
use tokio::sync::Notify;

use super::placement::{Member, Placement};
use super::router::Router;
use crate::persistence::heartbeat::{self, MemberRow, ALIVE, DRAINING};
use crate::persistence::{Db, DbError};
use crate::shutdown::Shutdown;

/// Probes a peer directly; answers the round-trip time.
pub type Probe = Arc<dyn Fn(Member) -> BoxFuture<'static, Result<Duration, String>> + Send + Sync>;

/// Settings of the membership loop.
#[derive(Debug, Clone)]
pub struct MembershipSettings {
    pub interval: Duration,
    pub timeout: Duration,
    pub vnodes: usize,
}

/// What membership knows, for the admin view.
#[derive(Debug, Clone, Default)]
pub struct MembershipStatus {
    pub version: u64,
    pub incarnation: i64,
    /// Members in the current view, with how long each has been silent (ms).
    pub members: Vec<(Member, i64)>,
    /// Last probe of each peer: round trip, or the error.
    pub probes: BTreeMap<String, Result<Duration, String>>,
    /// True while this node believes it is declared dead (its heartbeats fail).
    pub dead: bool,
    /// The catalog version each member row reported with its last heartbeat.
    pub catalog_versions: BTreeMap<String, i64>,
}

/// The pure decision: which rows are live members.
pub fn live_members(rows: &[MemberRow], me: &Member, timeout: Duration) -> Vec<Member> {
    let timeout_ms = timeout.as_millis() as i64;
    let mut members: Vec<Member> = rows
        .iter()
        .filter(|r| r.status == ALIVE && r.silent_ms < timeout_ms && r.node_id != me.node_id)
        .map(|r| Member {
            node_id: r.node_id.clone(),
            peer_addr: r.peer_addr.clone(),
            client_addr: r.client_addr.clone(),
            incarnation: r.incarnation,
        })
        .collect();
    members.push(me.clone());
    members.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    members
}

/// The pure count of members gone missing: rows that still say alive (the node never left)
/// but are silent past the timeout, so they are out of the view.
pub fn missing_members(rows: &[MemberRow], me: &Member, timeout: Duration) -> usize {
    let timeout_ms = timeout.as_millis() as i64;
    rows.iter()
        .filter(|r| r.status == ALIVE && r.silent_ms >= timeout_ms && r.node_id != me.node_id)
        .count()
}

/// The membership gauges: members in this node's view, and members missing from it.
#[derive(Clone)]
struct ViewGauges {
    members: Gauge,
    missing: Gauge,
}

/// Runs membership for one node.
pub struct Membership {
    db: Db,
    router: Arc<Router>,
    settings: MembershipSettings,
    me: Member,
    probe: Option<Probe>,
    status: Arc<Mutex<MembershipStatus>>,
    refresh: Arc<Notify>,
    /// When the last heartbeat that succeeded was *sent*: the database stamped it later, so
    /// this node's lease, counted from here, ends before the one peers see.
    last_ok: Arc<Mutex<Instant>>,
    on_change: Option<ViewHook>,
    /// Set by a drain: heartbeat as `draining`, leave every view (own one too), keep the
    /// lease until the node leaves.
    draining: Arc<AtomicBool>,
    gauges: ViewGauges,
    catalog_version: Option<VersionSource>,
}

/// Called with the members of every new view (the node resets peer-link backoff with it).
pub type ViewHook = Arc<dyn Fn(&[Member]) + Send + Sync>;

/// Reads the catalog version this node serves, written with each heartbeat.
pub type VersionSource = Arc<dyn Fn() -> i64 + Send + Sync>;

impl Membership {
    /// Picks this node's incarnation (newer than any recorded one) and prepares the loop.
    pub async fn new(
        db: Db,
        router: Arc<Router>,
        settings: MembershipSettings,
        mut me: Member,
        probe: Option<Probe>,
    ) -> Result<Membership, crate::persistence::DbError> {
        let recorded = heartbeat::incarnation(&db, &me.node_id).await?.unwrap_or(0);
        let now_ms = chrono::Utc::now().timestamp_millis();
        me.incarnation = now_ms.max(recorded + 1);
        let status = MembershipStatus {
            incarnation: me.incarnation,
            ..Default::default()
        };
        let gauges = ViewGauges {
            members: db.metrics().gauge("serai_cluster_members"),
            missing: db.metrics().gauge("serai_cluster_members_missing"),
        };
        Ok(Membership {
            gauges,
            db,
            router,
            settings,
            me,
            probe,
            status: Arc::new(Mutex::new(status)),
            refresh: Arc::new(Notify::new()),
            last_ok: Arc::new(Mutex::new(Instant::now())),
            on_change: None,
            draining: Arc::new(AtomicBool::new(false)),
            catalog_version: None,
        })
    }

    /// Registers a hook called with the members of each new view.
    pub fn on_view_change(&mut self, hook: ViewHook) {
        self.on_change = Some(hook);
    }

    /// Sets where the heartbeat reads the catalog version it reports (0 without).
    pub fn report_catalog_version(&mut self, source: VersionSource) {
        self.catalog_version = Some(source);
    }

    pub fn status(&self) -> Arc<Mutex<MembershipStatus>> {
        self.status.clone()
    }

    /// Wakes the loop for an immediate refresh (e.g. after a "not the owner" answer).
    pub fn refresher(&self) -> Arc<Notify> {
        self.refresh.clone()
    }

    pub fn incarnation(&self) -> i64 {
        self.me.incarnation
    }

    /// The switch a drain flips (see [`Membership::draining`]'s field).
    pub fn drain_switch(&self) -> Arc<AtomicBool> {
        self.draining.clone()
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// How long this node serves after its last successful heartbeat was sent: the lease
    /// (membership timeout) less a margin for the heartbeat's own delay and clock rates.
    pub fn serving_window(&self) -> Duration {
        let margin = (self.settings.interval * 2).max(self.settings.timeout / 4);
        self.settings.timeout.saturating_sub(margin)
    }

    /// One round: heartbeat, read the members, install a new view if it changed.
    pub async fn tick(&mut self) {
        let version = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .version;
        let status = if self.is_draining() { DRAINING } else { ALIVE };
        let row = MemberRow {
            node_id: self.me.node_id.clone(),
            peer_addr: self.me.peer_addr.clone(),
            client_addr: self.me.client_addr.clone(),
            incarnation: self.me.incarnation,
            status: status.to_string(),
            silent_ms: 0,
            catalog_version: self.catalog_version.as_ref().map_or(0, |read| read()),
        };
        let sent = Instant::now();
        // Bounded whatever the pool does: one hung heartbeat must not hold up the next.
        let beat = tokio::time::timeout(
            (self.settings.timeout / 4).max(Duration::from_millis(100)),
            heartbeat::heartbeat(&self.db, &row, version as i64),
        )
        .await
        .unwrap_or_else(|_| Err(DbError::Unavailable("heartbeat timed out".into())));
        match beat {
            Ok(true) => {
                *self.last_ok.lock().unwrap_or_else(|e| e.into_inner()) = sent;
                self.heartbeat_ok().await
            }
            Ok(false) => {
                // A newer process with our node id owns the row: we are the stale one.
                tracing::error!(node = %self.me.node_id, "a newer incarnation of this node id is running");
                self.heartbeat_failed();
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                self.heartbeat_failed();
            }
        }
    }

    async fn heartbeat_ok(&mut self) {
        let was_dead = self.status.lock().unwrap_or_else(|e| e.into_inner()).dead;
        if was_dead {
            // Rejoin as a new incarnation: whatever we held before was taken over.
            self.me.incarnation = chrono::Utc::now()
                .timestamp_millis()
                .max(self.me.incarnation + 1);
            self.router.reopen();
            let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
            s.dead = false;
            s.incarnation = self.me.incarnation;
            tracing::info!(
                incarnation = self.me.incarnation,
                "heartbeats work again: rejoining"
            );
        }
        let rows = match heartbeat::members(&self.db).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading members failed");
                return;
            }
        };
        let mut members = live_members(&rows, &self.me, self.settings.timeout);
        if self.is_draining() {
            // Out of its own view too: every key it holds moves, so it hands each one off.
            members.retain(|m| m.node_id != self.me.node_id);
        }
        self.gauges.members.set(members.len() as f64);
        self.gauges
            .missing
            .set(missing_members(&rows, &self.me, self.settings.timeout) as f64);
        let silent: BTreeMap<&str, i64> = rows
            .iter()
            .map(|r| (r.node_id.as_str(), r.silent_ms))
            .collect();
        let changed = {
            let s = self.status.lock().unwrap_or_else(|e| e.into_inner());
            let current: Vec<&Member> = s.members.iter().map(|(m, _)| m).collect();
            current.len() != members.len()
                || current.iter().zip(&members).any(|(a, b)| *a != b)
                || was_dead
        };
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.catalog_versions = rows
            .iter()
            .map(|r| (r.node_id.clone(), r.catalog_version))
            .collect();
        s.members = members
            .iter()
            .map(|m| {
                (
                    m.clone(),
                    silent.get(m.node_id.as_str()).copied().unwrap_or(0),
                )
            })
            .collect();
        if changed {
            s.version += 1;
            let version = s.version;
            drop(s);
            let ids: Vec<&str> = members.iter().map(|m| m.node_id.as_str()).collect();
            tracing::info!(version, members = ?ids, "membership view changed");
            let placement =
                Placement::of_view(&self.me.node_id, version, members, self.settings.vnodes);
            self.router.install(placement);
        }
    }

    /// A failed heartbeat changes nothing by itself: the lease watchdog (see
    /// [`Membership::run`]) steps down once the last success is too old.
    fn heartbeat_failed(&mut self) {}

    /// Probes every other member once, concurrently, and records the results.
    async fn probe_peers(&self) {
        let Some(probe) = &self.probe else { return };
        let members: Vec<Member> = {
            let s = self.status.lock().unwrap_or_else(|e| e.into_inner());
            s.members
                .iter()
                .map(|(m, _)| m.clone())
                .filter(|m| m.node_id != self.me.node_id)
                .collect()
        };
        let interval = self.settings.interval.max(Duration::from_millis(50));
        let results = futures_util::future::join_all(members.into_iter().map(|m| {
            let probe = probe.clone();
            async move {
                let id = m.node_id.clone();
                // Within one interval: a dead peer must not delay this node's own heartbeat.
                let r = tokio::time::timeout(interval, probe(m))
                    .await
                    .unwrap_or(Err("timeout".into()));
                (id, r)
            }
        }))
        .await;
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.probes = results.into_iter().collect();
    }

    /// Runs until shutdown: a tick every interval, or at once when asked to refresh; and,
    /// beside it, the lease watchdog.
    pub async fn run(mut self, shutdown: Shutdown) -> Membership {
        tokio::spawn(
            Watchdog {
                last_ok: self.last_ok.clone(),
                window: self.serving_window(),
                every: (self.settings.interval / 2).max(Duration::from_millis(10)),
                status: self.status.clone(),
                router: self.router.clone(),
                node_id: self.me.node_id.clone(),
                vnodes: self.settings.vnodes,
                members: self.gauges.members.clone(),
            }
            .run(shutdown.clone()),
        );
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let refresh = self.refresh.clone();
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tick.tick() => {}
                _ = refresh.notified() => {}
            }
            self.tick().await;
            self.probe_peers().await;
        }
        self
    }
}

/// Steps the node down once its last successful heartbeat is older than its serving window,
/// by this process's monotonic clock, whatever the heartbeat itself is stuck on: peers may
/// claim its rows one full lease (by the database's clock) after a heartbeat sent later than
/// that, so the node stops serving before any of them can.
struct Watchdog {
    last_ok: Arc<Mutex<Instant>>,
    window: Duration,
    every: Duration,
    status: Arc<Mutex<MembershipStatus>>,
    router: Arc<Router>,
    node_id: String,
    vnodes: usize,
    /// Set to 0 when the node steps down (its view is empty).
    members: Gauge,
}

impl Watchdog {
    async fn run(self, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.every);
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tick.tick() => {}
            }
            let last = *self.last_ok.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= self.window {
                self.step_down();
            }
        }
    }

    fn step_down(&self) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if s.dead {
            return;
        }
        s.dead = true;
        s.version += 1;
        let version = s.version;
        s.members.clear();
        drop(s);
        self.members.set(0.0);
        tracing::error!(
            "no heartbeat within the lease: this node steps down and stops its entities"
        );
        self.router.step_down();
        self.router.install(Placement::of_view(
            &self.node_id,
            version,
            Vec::new(),
            self.vnodes,
        ));
        self.router.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, silent_ms: i64, status: &str) -> MemberRow {
        MemberRow {
            node_id: id.into(),
            peer_addr: format!("{id}:7352"),
            client_addr: format!("{id}:7350"),
            incarnation: 1,
            status: status.into(),
            silent_ms,
            catalog_version: 1,
        }
    }

    #[test]
    fn silent_and_departed_members_leave_the_view() {
        let me = Member {
            node_id: "b".into(),
            peer_addr: "b".into(),
            client_addr: "b".into(),
            incarnation: 2,
        };
        let rows = vec![
            row("a", 100, ALIVE),
            row("b", 99_999, ALIVE),
            row("c", 5_000, ALIVE),
            row("d", 10, "left"),
        ];
        let live = live_members(&rows, &me, Duration::from_secs(3));
        let ids: Vec<&str> = live.iter().map(|m| m.node_id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["a", "b"],
            "c is silent, d left; this node is always in its own view"
        );
        assert_eq!(
            live[1].incarnation, 2,
            "this node's own entry is its own, not the row's"
        );
        assert_eq!(
            missing_members(&rows, &me, Duration::from_secs(3)),
            1,
            "c is missing; d left, and b (this node) is never missing from its own view"
        );
    }
}
