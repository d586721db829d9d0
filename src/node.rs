//! One node, assembled from a [`Config`]: database pool, migrations, catalog, persistence
//! actor, router, admin listener and client listener; run until the [`Shutdown`] fires.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Arbiter, ArbiterHandle};
use actix_web::dev::ServerHandle;
use actix_web::{middleware::from_fn, App, HttpServer};

use crate::admin::http::{self as admin_http, AdminState, Readiness};
use crate::admin::metrics::Metrics;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::gateway::{Presence, RpcRegistry};
use crate::persistence::messages::FlushNow;
use crate::persistence::{claims, migrate, Db, DbError, FlushPolicy, PersistenceActor};
use crate::routing::placement::Placement;
use crate::routing::Router;
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

/// What entity actors and handlers of this node share.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    pub catalog: Arc<Catalog>,
    pub persistence: Addr<PersistenceActor>,
    pub router: Arc<Router>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    /// The RPCs the gateway serves; game modules register theirs at start.
    pub rpc: Arc<RpcRegistry>,
    /// Sockets connected to this node, for pushes.
    pub presence: Presence,
}

/// A started node. Dropping it does not stop it; call [`RunningNode::stop`] or fire the
/// shutdown it was started with, then [`RunningNode::wait`].
pub struct RunningNode {
    pub services: Services,
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    readiness: Arc<Readiness>,
    servers: Vec<ServerHandle>,
    arbiters: Vec<Arbiter>,
}

/// How many arbiter threads entity actors are spread over.
fn arbiter_count() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 16)
}

/// Starts a node inside the current actix System. Migrations are applied first (safe when
/// several nodes start at once), then the catalog is loaded.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<RunningNode, NodeError> {
    let config = Arc::new(config);
    let metrics = Metrics::new(&config.node_id);
    let db = Db::connect(
        &config.database_url,
        config.database_pool_size,
        config.dialect,
        metrics.clone(),
    )?;
    migrate::run(&db).await?;
    let catalog = Arc::new(crate::catalog::load(&db).await?);
    tracing::info!(version = catalog.version, "catalog loaded");

    let policy = FlushPolicy {
        interval: config.flush_interval,
        batch_size: config.flush_batch_size,
    };
    let persistence = PersistenceActor::new(db.clone(), policy).start();
    let arbiters: Vec<Arbiter> = (0..arbiter_count()).map(|_| Arbiter::new()).collect();
    let handles: Vec<ArbiterHandle> = arbiters.iter().map(|a| a.handle()).collect();
    let router = Arc::new(Router::new(
        Placement::single(&config.node_id),
        handles,
        metrics.clone(),
    ));
    let services = Services {
        config: config.clone(),
        db: db.clone(),
        catalog: catalog.clone(),
        persistence: persistence.clone(),
        router: router.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        rpc: Arc::new(RpcRegistry::new()),
        presence: Presence::new(),
    };
    crate::game::register(&services);

    let readiness = Arc::new(Readiness::default());
    readiness.catalog_loaded.store(true, Ordering::Release);
    let admin_state = AdminState {
        node_id: config.node_id.clone(),
        admin_token: config.admin_token.as_str().into(),
        db: db.clone(),
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        persistence: persistence.clone(),
        router: router.clone(),
        catalog_version: catalog.version,
    };
    let admin_cfg = admin_http::configure(admin_state);
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
    let admin_addr = admin.addrs()[0];
    let admin = admin.run();

    let client_cfg = crate::game::client_routes(&services);
    let client = HttpServer::new(move || App::new().configure(client_cfg.clone()))
        .disable_signals()
        .shutdown_timeout(10)
        .bind(config.client_addr)
        .map_err(|source| NodeError::Bind {
            addr: config.client_addr,
            source,
        })?;
    let client_addr = client.addrs()[0];
    let client = client.run();
    let servers = vec![client.handle(), admin.handle()];
    actix_rt::spawn(client);
    actix_rt::spawn(admin);
    spawn_sweeper(router.clone(), shutdown.clone());
    // Readiness turns false the moment shutdown fires, before the orderly stop begins.
    let (draining, signal) = (readiness.clone(), shutdown.clone());
    actix_rt::spawn(async move {
        signal.wait().await;
        draining.draining.store(true, Ordering::Release);
    });

    tracing::info!(node = %config.node_id, %client_addr, %admin_addr, "node started");
    Ok(RunningNode {
        services,
        client_addr,
        admin_addr,
        readiness,
        servers,
        arbiters,
    })
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

impl RunningNode {
    /// Waits for the shutdown signal, then stops in order: readiness false, no new work,
    /// stop entity actors, flush everything, release claims, close the listeners.
    pub async fn wait(self) -> Result<(), NodeError> {
        self.services.shutdown.wait().await;
        self.stop().await
    }

    /// Stops the node now (see [`RunningNode::wait`] for the order).
    pub async fn stop(self) -> Result<(), NodeError> {
        let s = &self.services;
        s.shutdown.trigger();
        self.readiness.draining.store(true, Ordering::Release);
        s.router.close();
        // Client listener first: no new requests; in-flight ones finish.
        self.servers[0].stop(true).await;
        crate::game::stop_all(s).await;
        let flushed =
            tokio::time::timeout(Duration::from_secs(30), s.persistence.send(FlushNow)).await;
        match flushed {
            Ok(Ok(Ok(()))) => {}
            other => tracing::error!(
                ?other,
                "final flush did not complete; unwritten rows are lost with this process"
            ),
        }
        match claims::release_all(&s.db, &s.config.node_id).await {
            Ok(n) => tracing::info!(released = n, "claims released"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release claims; they will be taken over by the next claim")
            }
        }
        for server in &self.servers[1..] {
            server.stop(true).await;
        }
        for arbiter in self.arbiters {
            arbiter.stop();
        }
        tracing::info!("node stopped");
        Ok(())
    }
}
