//! One node, assembled from a [`Config`]: database pool, migrations, catalog, persistence
//! actor, router, peer link and membership, admin listener and client listener; run until the
//! [`Shutdown`] fires, then drained in order.

mod peer_handlers;
mod reconnect;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Arbiter, ArbiterHandle};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{from_fn, Condition};
use actix_web::{App, HttpServer};

pub use crate::services::Services;

use crate::admin::http::{self as admin_http, AdminState, Readiness};
use crate::config::Config;
use crate::domain::catalog::CurrentCatalog;
use crate::gateway::{
    access, cors, NotificationStore, Notifier, Presence, RateLimiter, Revocations, RpcRegistry,
};
use crate::metrics::Metrics;
use crate::persistence::{
    claims, heartbeat, migrate, BacklogLimits, Db, DbError, DbSettings, FlushPolicy,
    PersistenceActor,
};
use crate::routing::membership::{Membership, MembershipSettings, MembershipStatus};
use crate::routing::peer::{PeerServer, PeerSettings, Peers};
use crate::routing::placement::{Member, Placement};
use crate::routing::Router;
use crate::services::catalog_sync::CatalogSync;
use crate::shutdown::Shutdown;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("database: {0}")]
    Database(#[from] DbError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("catalog: {0}")]
    Catalog(String),
}

/// A started node. Dropping it does not stop it; call [`RunningNode::stop`] or fire the
/// shutdown it was started with, then [`RunningNode::wait`].
pub struct RunningNode {
    pub services: Services,
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub membership: Arc<Mutex<MembershipStatus>>,
    readiness: Arc<Readiness>,
    /// Kept: dropping the peer server closes it.
    peer_server: PeerServer,
    client: ServerHandle,
    admin: ServerHandle,
    arbiters: Vec<Arbiter>,
    /// The drain's handles on membership: the switch to `draining`, a nudge for an immediate
    /// heartbeat, and the signal that ends the heartbeat once everything is handed off.
    drain: Arc<std::sync::atomic::AtomicBool>,
    refresh: Arc<tokio::sync::Notify>,
    leave: Shutdown,
}

/// How many arbiter threads entity actors are spread over.
fn arbiter_count() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 16)
}

/// `configured` unless it names port 0, in which case the address actually bound.
fn advertised(configured: &str, bound: SocketAddr) -> String {
    if configured.ends_with(":0") {
        bound.to_string()
    } else {
        configured.to_string()
    }
}

/// Starts a node inside the current actix System. Migrations are applied first (safe when
/// several nodes start at once), then the catalog is loaded; the first membership view is
/// installed before the client listener accepts anyone.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<RunningNode, NodeError> {
    let config = Arc::new(config);
    let metrics = Metrics::new(&config.node_id);
    let db = Db::connect_with(
        &config.database_url,
        &db_settings(&config),
        config.dialect,
        metrics.clone(),
    )?;
    crate::persistence::wait_until_reachable(&db, config.database_connect_timeout).await?;
    migrate::run(&db).await?;
    let catalog = crate::persistence::catalog::load(&db).await?;
    tracing::info!(version = catalog.version, "catalog loaded");
    let catalog = CurrentCatalog::from(catalog);

    let policy = FlushPolicy {
        interval: config.flush_interval,
        batch_size: config.flush_batch_size,
    };
    let limits = BacklogLimits {
        high: config.flush_backlog_high,
        low: config.flush_backlog_low,
        writer_wait: config.flush_backpressure_wait,
    };
    let persistence = PersistenceActor::new(db.clone(), policy)
        .with_limits(&limits)
        .with_node_id(&config.node_id)
        .start();
    let arbiters: Vec<Arbiter> = (0..arbiter_count()).map(|_| Arbiter::new()).collect();
    let handles: Vec<ArbiterHandle> = arbiters.iter().map(|a| a.handle()).collect();
    let router = Arc::new(Router::new(
        Placement::single(&config.node_id),
        handles,
        metrics.clone(),
    ));
    router.set_request_budget(config.request_timeout);
    let peers = Peers::new(PeerSettings::from_config(&config).with_metrics(metrics.clone()));
    router.set_forwarder(Arc::new(peer_handlers::PeerForwarder {
        peers: peers.clone(),
        router: Arc::downgrade(&router),
    }));
    let presence = Presence::new();
    let services = Services {
        config: config.clone(),
        db: db.clone(),
        catalog: catalog.clone(),
        persistence: persistence.clone(),
        router: router.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        rpc: Arc::new(RpcRegistry::new()),
        presence: presence.clone(),
        notifier: Notifier::new(
            presence.clone(),
            peers.clone(),
            Arc::downgrade(&router),
            NotificationStore::start(db.clone()),
        ),
        peers: peers.clone(),
        revocations: Revocations::new(db.clone()),
    };
    // Every unexpired revocation is loaded before the client listener exists: a token
    // revoked before a restart is refused from the first request on.
    services
        .revocations
        .start(
            &config.node_id,
            &router,
            peers.clone(),
            config.db_statement_timeout,
            shutdown.clone(),
        )
        .await?;
    if let Some(limits) = config.rate_limits.clone() {
        services.rpc.set_rate_limiter(RateLimiter::start(
            limits,
            &router,
            peers.clone(),
            metrics.clone(),
        ));
    }
    crate::game::register(&services);
    let catalog_sync = CatalogSync::start(&services);

    let (client_cfg, gateway_state) = crate::game::client_routes(&services);
    let draining = shutdown.clone();
    let access_log = config.access_log;
    let app = move || {
        let draining = draining.clone();
        App::new()
            .wrap_fn(move |req, srv| {
                use actix_web::dev::Service;
                let answer = srv.call(req);
                let draining = draining.clone();
                async move {
                    let mut res = answer.await?;
                    // Draining: no keep-alive, so a client's next request opens a connection
                    // elsewhere instead of racing this listener's close on an idle one.
                    if draining.is_triggered() {
                        res.response_mut()
                            .head_mut()
                            .set_connection_type(actix_web::http::ConnectionType::Close);
                    }
                    Ok(res)
                }
            })
            .configure(client_cfg.clone())
            .wrap(from_fn(cors::cors))
            .wrap(Condition::new(access_log, from_fn(access::access_log)))
            .wrap(from_fn(access::request_id))
    };
    let (client, client_addr) =
        crate::gateway::listener::bind(config.client_addr, app, gateway_state).map_err(
            |source| NodeError::Bind {
                addr: config.client_addr,
                source,
            },
        )?;

    // The peer listener answers pings with the incarnation chosen just below.
    let incarnation = Arc::new(AtomicI64::new(0));
    let handler = peer_handlers::handler(
        config.node_id.clone(),
        router.clone(),
        presence.clone(),
        incarnation.clone(),
        access_log,
    );
    let peer_server = PeerServer::bind(
        config.peer_addr,
        PeerSettings::from_config(&config).with_metrics(metrics.clone()),
        handler,
        shutdown.clone(),
    )
    .await
    .map_err(|source| NodeError::Bind {
        addr: config.peer_addr,
        source,
    })?;
    let peer_addr = peer_server.local_addr();
    let me = Member {
        node_id: config.node_id.clone(),
        peer_addr: advertised(&config.advertise_peer_addr, peer_addr),
        client_addr: advertised(&config.advertise_client_addr, client_addr),
        incarnation: 0,
    };
    let settings = MembershipSettings {
        interval: config.heartbeat_interval,
        timeout: config.membership_timeout,
        vnodes: config.ring_vnodes,
    };
    // The heartbeat has connections of its own with a deadline inside its interval, so game
    // traffic exhausting the main pool can never make this node miss its lease.
    // A lease watchdog, not these deadlines, decides when the node steps down; they only keep
    // one stuck heartbeat from holding up the next.
    let beat = (config.membership_timeout / 4).max(Duration::from_millis(100));
    let heartbeat_db = Db::connect_with(
        &config.database_url,
        &DbSettings {
            pool_size: 2,
            connect_timeout: beat,
            pool_wait: beat,
            statement_timeout: beat,
            ..db_settings(&config)
        },
        config.dialect,
        metrics.clone(),
    )?;
    let mut membership = Membership::new(
        heartbeat_db,
        router.clone(),
        settings,
        me,
        Some(peer_handlers::probe(peers.clone())),
    )
    .await?;
    incarnation.store(membership.incarnation(), Ordering::Release);
    let serving = catalog.clone();
    membership.report_catalog_version(Arc::new(move || serving.version()));
    // A member that (re)joins is worth dialing at once, not after the backoff of its old life.
    let dialer = peers.clone();
    membership.on_view_change(Arc::new(move |members: &[Member]| {
        for m in members {
            dialer.reset_backoff(&m.node_id);
        }
    }));
    membership.tick().await;
    let membership_status = membership.status();
    let (drain, refresh, leave) = (
        membership.drain_switch(),
        membership.refresher(),
        Shutdown::new(),
    );
    // Heartbeats go on through a drain (the lease holds what is not handed off yet); they end
    // when the node leaves.
    actix_rt::spawn(membership.run(leave.clone()));

    let readiness = Arc::new(Readiness::default());
    readiness.catalog_loaded.store(true, Ordering::Release);
    // Ready once this node holds the other nodes' leaderboards (bounded by their config).
    readiness
        .leaderboards_syncing
        .store(true, Ordering::Release);
    let (syncing, sync_router) = (readiness.clone(), router.clone());
    actix_rt::spawn(async move {
        crate::leaderboard::service::wait_synced(&sync_router).await;
        syncing.leaderboards_syncing.store(false, Ordering::Release);
    });
    let admin_state = AdminState {
        node_id: config.node_id.clone(),
        admin_token: config.admin_token.as_str().into(),
        db: db.clone(),
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        persistence: persistence.clone(),
        router: router.clone(),
        catalog: catalog_sync,
        membership: membership_status.clone(),
        shutdown: shutdown.clone(),
    };
    let admin = bind_admin(&config, admin_state)?;
    let admin_addr = admin.0;
    let client = client.run();
    let (client_handle, admin_handle) = (client.handle(), admin.1.handle());
    actix_rt::spawn(client);
    actix_rt::spawn(admin.1);
    spawn_sweeper(router.clone(), shutdown.clone());
    spawn_receipt_sweep(db.clone(), config.receipt_retention, shutdown.clone());
    // Readiness turns false the moment shutdown fires, before the orderly stop begins.
    let (draining, signal) = (readiness.clone(), shutdown.clone());
    actix_rt::spawn(async move {
        signal.wait().await;
        draining.draining.store(true, Ordering::Release);
    });

    tracing::info!(node = %config.node_id, %client_addr, %admin_addr, %peer_addr, "node started");
    Ok(RunningNode {
        services,
        client_addr,
        admin_addr,
        peer_addr,
        membership: membership_status,
        readiness,
        peer_server,
        client: client_handle,
        admin: admin_handle,
        arbiters,
        drain,
        refresh,
        leave,
    })
}

fn bind_admin(config: &Config, state: AdminState) -> Result<(SocketAddr, Server), NodeError> {
    let admin_cfg = admin_http::configure(state);
    let admin = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(admin_http::require_token))
            .configure(admin_cfg.clone())
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .bind(config.admin_addr)
    .map_err(|source| NodeError::Bind {
        addr: config.admin_addr,
        source,
    })?;
    let addr = admin.addrs()[0];
    Ok((addr, admin.run()))
}

/// The database pool's size, deadlines and CA file, from the config.
pub fn db_settings(config: &Config) -> DbSettings {
    DbSettings {
        pool_size: config.database_pool_size,
        connect_timeout: config.db_connect_timeout,
        pool_wait: config.db_pool_wait,
        statement_timeout: config.db_statement_timeout,
        lease_timeout: config.membership_timeout,
        ca_file: config.database_ca_file.clone(),
        ..DbSettings::default()
    }
}

/// Forgets stopped actors now and then, so the registry and its gauges stay exact.
fn spawn_sweeper(router: Arc<Router>, shutdown: Shutdown) {
    actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tick.tick() => { router.sweep(); }
            }
        }
    });
}

/// Deletes idempotency receipts past their retention, every few minutes. Every node sweeps;
/// the deletes are idempotent and bounded, so their overlap costs little.
fn spawn_receipt_sweep(db: Db, keep: Duration, shutdown: Shutdown) {
    actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tick.tick() => match crate::persistence::receipts::sweep(&db, keep).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(deleted = n, "expired request receipts swept"),
                    Err(e) => tracing::warn!(error = %e, "request receipt sweep failed"),
                },
            }
        }
    });
}

impl RunningNode {
    /// Waits, at most `limit`, until this node's draining view has moved every entity away
    /// and each has flushed and released its claim; returns how many were handed off.
    async fn hand_off(&self, limit: Duration) -> usize {
        let router = &self.services.router;
        let view = router.placement().version();
        let mut views = router.view_changes();
        let _ = tokio::time::timeout(limit, views.wait_for(|v| *v > view)).await;
        let deadline = tokio::time::Instant::now() + limit;
        let mut most = 0;
        loop {
            let live: usize = router.sweep().iter().map(|(_, n)| n).sum();
            most = most.max(live);
            if live == 0 || tokio::time::Instant::now() >= deadline {
                if live > 0 {
                    tracing::warn!(live, "drain: entities still live after the hand-off limit");
                }
                return most;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the shutdown signal (SIGTERM, SIGINT, `POST /admin/drain`), then drains.
    pub async fn wait(self) -> Result<(), NodeError> {
        self.services.shutdown.wait().await;
        self.stop().await
    }

    /// Drains and stops the node now, in the order that loses nothing: readiness false; the
    /// node heartbeats as `draining`, so it leaves every view (its own too) while its lease
    /// still holds what it has not released; every entity hands off (flush, release: the new
    /// owner claims only after); requests in flight are answered; sockets are told to
    /// reconnect elsewhere and closed with 1001; then the node leaves and its listeners stop.
    pub async fn stop(self) -> Result<(), NodeError> {
        let s = &self.services;
        s.shutdown.trigger();
        self.readiness.draining.store(true, Ordering::Release);
        self.drain.store(true, Ordering::Release);
        self.refresh.notify_one();
        let handed = self.hand_off(Duration::from_secs(30)).await;
        s.router.close();
        crate::game::stop_all(s).await;
        if let Err(e) = crate::persistence::flush_now(&s.persistence, Duration::from_secs(30)).await
        {
            tracing::error!(error = %e, "final flush did not complete; unwritten rows are lost with this process");
        }
        match claims::release_all(&s.db, &s.config.node_id).await {
            Ok(n) => tracing::info!(released = n, handed, "claims released"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release claims; they will be taken over when the lease ends")
            }
        }
        // The listener keeps serving (forwarding to the new owners) until the very end; its
        // graceful stop below answers what is in flight. Closing it earlier would leave
        // connections queued in the kernel's backlog unanswered.
        if !s.notifier.store().flush(Duration::from_secs(5)).await {
            tracing::warn!("queued notifications not all stored before the drain ended");
        }
        let told = reconnect::tell_sockets(s).await;
        tracing::info!(sockets = told, "sockets told to reconnect elsewhere");
        self.leave.trigger();
        let incarnation = self
            .membership
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .incarnation;
        if let Err(e) = heartbeat::leave(&s.db, &s.config.node_id, incarnation).await {
            tracing::warn!(error = %e, "could not leave the view; this node will time out instead");
        }
        let closed = s
            .presence
            .close_all(actix_ws::CloseCode::Away, "server is shutting down");
        tracing::info!(sockets = closed, "client sockets closed");
        self.client.stop(true).await;
        self.admin.stop(true).await;
        self.peer_server.stop();
        for arbiter in self.arbiters {
            arbiter.stop();
        }
        tracing::info!("node stopped");
        Ok(())
    }
}
