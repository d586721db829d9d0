//! `POST /admin/catalog/reload` (behind the admin token): the catalog tables were edited, now
//! every node serves them. See [`crate::services::catalog_sync`] for what a reload does.
//!
//! - 200 `{version, updated_at, nodes: {node_id: {version} | {error}}, all_serving}`: the new
//!   version is installed here and was sent to every member; a member that did not answer
//!   (`error`) catches up by polling within its `catalog_poll_interval`.
//! - 422 (code 9): the catalog in the database does not validate; the message lists every
//!   problem. Nothing was bumped: every node keeps the version it serves.
//! - 409 (code 10): the version moved while reloading (a concurrent reload); reload again.
//! - 503 (code 14): the database could not be reached.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::http::AdminState;
use crate::services::catalog_sync::ReloadError;

/// Registers the route; call from the admin app's `configure`, before its `/admin` scope.
pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/catalog/reload").route(web::post().to(reload)));
}

async fn reload(state: web::Data<AdminState>) -> HttpResponse {
    let serving = state.catalog.version();
    let (status, code, message) = match state.catalog.reload().await {
        Ok(done) => {
            let nodes: serde_json::Map<String, serde_json::Value> = done
                .nodes
                .iter()
                .map(|(id, answer)| {
                    let v = match answer {
                        Ok(version) => json!({"version": version}),
                        Err(e) => json!({"error": e}),
                    };
                    (id.clone(), v)
                })
                .collect();
            let all_serving = done
                .nodes
                .values()
                .all(|a| a.as_ref().is_ok_and(|v| *v >= done.version));
            return HttpResponse::Ok().json(json!({
                "version": done.version,
                "updated_at": done.updated_at,
                "nodes": nodes,
                "all_serving": all_serving,
            }));
        }
        Err(ReloadError::Invalid(why)) => (StatusCode::UNPROCESSABLE_ENTITY, 9, why),
        Err(ReloadError::Conflict(why)) => (StatusCode::CONFLICT, 10, why),
        Err(ReloadError::Database(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            14,
            format!("database unavailable: {e}"),
        ),
    };
    tracing::warn!(%message, "catalog reload refused");
    HttpResponse::build(status).json(json!({
        "code": code,
        "message": message,
        "version": serving,
    }))
}
