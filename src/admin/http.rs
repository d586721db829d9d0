//! The admin HTTP listener: `/healthz`, `/readyz` and `/metrics` are open (probes and
//! scrapers); everything else requires `Authorization: Bearer <admin token>`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::gateway::auth::constant_time_eq;
use crate::metrics::Metrics;
use crate::persistence::messages::GetStats;
use crate::persistence::{Db, PersistenceActor};
use crate::routing::membership::MembershipStatus;
use crate::routing::Router;
use crate::services::catalog_sync::CatalogSync;
use crate::shutdown::Shutdown;

/// What readiness depends on, shared with the node.
#[derive(Debug, Default)]
pub struct Readiness {
    pub catalog_loaded: AtomicBool,
    pub draining: AtomicBool,
    /// True while a starting node takes its first leaderboard snapshots.
    pub leaderboards_syncing: AtomicBool,
}

/// Everything the admin endpoints look at.
#[derive(Clone)]
pub struct AdminState {
    pub node_id: String,
    pub admin_token: Arc<str>,
    pub db: Db,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub persistence: Addr<PersistenceActor>,
    pub router: Arc<Router>,
    /// The catalog this node serves, and its reload.
    pub catalog: CatalogSync,
    pub membership: Arc<std::sync::Mutex<MembershipStatus>>,
    /// Fired by `POST /admin/drain`: the node drains and exits like on SIGTERM.
    pub shutdown: Shutdown,
}

/// Paths that answer without the admin token.
const OPEN_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Mounts the admin routes.
pub fn configure(state: AdminState) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state.clone()))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .configure(super::leaderboards::mount)
            .configure(super::compensation::mount)
            .configure(super::catalog::mount)
            .configure(super::world_events::mount)
            .configure(super::world_sales::mount)
            .service(
                web::scope("/admin")
                    .route("/status", web::get().to(status))
                    .route("/flush", web::post().to(flush))
                    .route("/cluster", web::get().to(cluster))
                    .route("/drain", web::post().to(drain)),
            );
    }
}

/// Middleware: refuses every non-open path without the right bearer token (401, before any
/// handler runs; unknown paths too, so the admin surface cannot be probed without the token).
pub async fn require_token(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    if OPEN_PATHS.contains(&req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let token = req
        .app_data::<web::Data<AdminState>>()
        .map(|s| s.admin_token.clone());
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (token, presented) {
        (Some(expected), Some(got)) if constant_time_eq(expected.as_bytes(), got.as_bytes()) => {
            Ok(next.call(req).await?.map_into_left_body())
        }
        _ => {
            let body = json!({"code": 16, "message": "admin token missing or wrong: send Authorization: Bearer <admin token>"});
            Ok(req
                .into_response(HttpResponse::Unauthorized().json(body))
                .map_into_right_body())
        }
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AdminState>) -> HttpResponse {
    let database = matches!(
        tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await,
        Ok(Ok(()))
    );
    let catalog = state.readiness.catalog_loaded.load(Ordering::Acquire);
    let draining = state.readiness.draining.load(Ordering::Acquire);
    // Over the high-water mark the node takes no more load: writers already wait for room.
    let stats = tokio::time::timeout(Duration::from_secs(2), state.persistence.send(GetStats))
        .await
        .ok()
        .and_then(Result::ok);
    let backlog_full = stats.as_ref().is_none_or(|s| s.over_high_water);
    let mut reasons = Vec::new();
    if !database {
        reasons.push("database unreachable".to_string());
    }
    if !catalog {
        reasons.push("catalog not loaded".to_string());
    }
    if draining {
        reasons.push("draining".to_string());
    }
    let syncing = state.readiness.leaderboards_syncing.load(Ordering::Acquire);
    if syncing {
        reasons.push("leaderboard replicas still syncing".to_string());
    }
    match &stats {
        None => reasons.push("persistence not answering".to_string()),
        Some(s) if s.over_high_water => reasons.push(format!(
            "flush backlog over its high-water mark: {} rows (high {}, ready again at {})",
            s.backlog, s.high_water, s.low_water
        )),
        Some(_) => {}
    }
    state.metrics.observe_readiness(reasons.is_empty());
    let body = json!({
        "database": database,
        "catalog": catalog,
        "draining": draining,
        "leaderboards_syncing": syncing,
        "backlog_full": backlog_full,
        "backlog": stats.as_ref().map(|s| s.backlog),
        "reasons": reasons,
    });
    if reasons.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(state: web::Data<AdminState>) -> HttpResponse {
    // Refresh the actor gauges (and forget stopped actors) so a scrape sees current counts;
    // asking the persistence actor for its figures refreshes the backlog and age gauges.
    state.router.sweep();
    let _ = tokio::time::timeout(Duration::from_secs(1), state.persistence.send(GetStats)).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

async fn status(state: web::Data<AdminState>) -> HttpResponse {
    let stats = state.persistence.send(GetStats).await.unwrap_or_default();
    let actors: serde_json::Map<String, serde_json::Value> = state
        .router
        .sweep()
        .into_iter()
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    HttpResponse::Ok().json(json!({
        "node_id": state.node_id,
        "catalog_version": state.catalog.version(),
        "actors": actors,
        "persistence": {
            "backlog": stats.backlog,
            "flushes": stats.flushes,
            "rows_written": stats.rows_written,
            "fenced": stats.fenced,
            "failed_flushes": stats.failed_flushes,
            "last_flush_latency_ms": stats.last_flush_latency.map(|d| d.as_secs_f64() * 1000.0),
            "last_error": stats.last_error,
            "entity_flushes": stats.entity_flushes,
            "set_aside": stats.set_aside,
            "in_flight": stats.in_flight,
            "oldest_unflushed_ms": stats.oldest_unflushed.map(|d| d.as_secs_f64() * 1000.0),
            "over_high_water": stats.over_high_water,
            "high_water": stats.high_water,
            "low_water": stats.low_water,
        },
    }))
}

async fn flush(state: web::Data<AdminState>) -> HttpResponse {
    match crate::persistence::flush_now(&state.persistence, Duration::from_secs(30)).await {
        Ok(()) => HttpResponse::Ok().json(json!({"flushed": true})),
        Err(e) => HttpResponse::ServiceUnavailable().json(json!({
            "code": 14,
            "message": format!("{e}; the rows are kept and retried"),
        })),
    }
}

async fn cluster(state: web::Data<AdminState>) -> HttpResponse {
    let placement = state.router.placement();
    let status = state
        .membership
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let members: Vec<serde_json::Value> = status
        .members
        .iter()
        .map(|(m, silent_ms)| {
            let probe = status.probes.get(&m.node_id).map(|p| match p {
                Ok(rtt) => json!({"ok": true, "rtt_ms": rtt.as_secs_f64() * 1000.0}),
                Err(e) => json!({"ok": false, "error": e}),
            });
            json!({
                "node_id": m.node_id,
                "peer_addr": m.peer_addr,
                "client_addr": m.client_addr,
                "incarnation": m.incarnation,
                "silent_ms": silent_ms,
                "probe": probe,
                "catalog_version": status.catalog_versions.get(&m.node_id),
            })
        })
        .collect();
    let actors: serde_json::Map<String, serde_json::Value> = state
        .router
        .sweep()
        .into_iter()
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    HttpResponse::Ok().json(json!({
        "node_id": state.node_id,
        "incarnation": status.incarnation,
        "catalog_version": state.catalog.version(),
        "view_version": placement.version(),
        "declared_dead": status.dead,
        "members": members,
        "ring_share": placement.share(),
        "actors": actors,
        "leaderboard_sync": crate::leaderboard::service::sync_status(&state.router),
    }))
}

/// Starts a drain: readiness false, entities flushed and released, the node leaves the view,
/// sockets closed with 1001, then the process exits 0 (the same path as SIGTERM).
async fn drain(state: web::Data<AdminState>) -> HttpResponse {
    state.readiness.draining.store(true, Ordering::Release);
    state.shutdown.trigger();
    HttpResponse::Accepted().json(json!({"draining": true}))
}
