//! Set-aside rows on the admin address (behind the admin token middleware):
//!
//! - `GET /admin/compensation?limit=N&after=<cursor>`: open records, oldest first; `next` is
//!   the `after` of the following page (null on the last one);
//! - `POST /admin/compensation/{id}/retry`: writes the row again through the normal flush
//!   (same statements, same fencing). Written (or superseded by a newer version queued on
//!   this node): the record is deleted. Refused: the record stays with the new error.
//! - `DELETE /admin/compensation/{id}`: discards the record (the row is not written).
//!
//! Errors are JSON `{code, message}` with gRPC codes, like every admin endpoint.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde_json::json;
use uuid::Uuid;

use super::http::AdminState;
use crate::persistence::compensation::{self, Record};
use crate::persistence::messages::{Reapply, ReapplyOutcome};
use crate::persistence::DbError;

/// Records per page unless `limit` says otherwise, and the most one page holds.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// Registers the routes; call from the admin app's `configure`, before its `/admin` scope.
pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/compensation").route(web::get().to(list)))
        .service(web::resource("/admin/compensation/{id}").route(web::delete().to(discard)))
        .service(web::resource("/admin/compensation/{id}/retry").route(web::post().to(retry)));
}

fn error(
    status: actix_web::http::StatusCode,
    code: u8,
    message: impl Into<String>,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({"code": code, "message": message.into()}))
}

fn bad(message: impl Into<String>) -> HttpResponse {
    error(actix_web::http::StatusCode::BAD_REQUEST, 3, message)
}

fn not_found(id: Uuid) -> HttpResponse {
    error(
        actix_web::http::StatusCode::NOT_FOUND,
        5,
        format!("no compensation record {id}"),
    )
}

fn unavailable(e: &DbError) -> HttpResponse {
    tracing::warn!(error = %e, "admin compensation request failed");
    error(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        14,
        format!("database unavailable: {e}"),
    )
}

/// A record id, or the message of the 400 to answer.
fn parse_id(raw: &str) -> Result<Uuid, String> {
    Uuid::parse_str(raw.trim()).map_err(|_| format!("`{raw}` is not a record id (a UUID)"))
}

fn view(r: &Record) -> serde_json::Value {
    json!({
        "id": r.id,
        "node_id": r.node_id,
        "table": r.table,
        "row_id": r.row_id,
        "row_sub": r.row_sub,
        "payload": r.payload_json(),
        "error": r.error,
        "attempts": r.attempts,
        "created_at": r.created_at.to_rfc3339(),
        "updated_at": r.updated_at.to_rfc3339(),
    })
}

/// The `next` of a page: the last record's position (creation time in microseconds, id).
fn cursor(r: &Record) -> String {
    format!("{}_{}", r.created_at.timestamp_micros(), r.id)
}

fn parse_cursor(raw: &str) -> Result<compensation::Cursor, String> {
    let bad = || format!("`{raw}` is not a page cursor (use the `next` of the previous page)");
    let (micros, id) = raw.trim().split_once('_').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// Sets the open-records gauge after a change made here (the persistence actor also
/// refreshes it on its own).
async fn refresh_gauge(state: &AdminState) -> Option<i64> {
    let open = compensation::count(&state.db).await.ok()?;
    state.metrics.compensation_open.set(open as f64);
    Some(open)
}

async fn list(
    state: web::Data<AdminState>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let limit = match query.get("limit").map(|v| v.trim().parse::<i64>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return bad(format!("limit must be an integer from 1 to {MAX_LIMIT}")),
    };
    let after = match query.get("after").map(|v| parse_cursor(v)) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(m)) => return bad(m),
    };
    // One more than asked tells whether another page follows.
    let mut records = match compensation::list(&state.db, limit + 1, after).await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    let more = records.len() as i64 > limit;
    records.truncate(limit as usize);
    let next = more.then(|| records.last().map(cursor)).flatten();
    let open = refresh_gauge(&state).await;
    HttpResponse::Ok().json(json!({
        "records": records.iter().map(view).collect::<Vec<_>>(),
        "next": next,
        "open": open,
    }))
}

async fn discard(state: web::Data<AdminState>, path: web::Path<String>) -> HttpResponse {
    let id = match parse_id(&path) {
        Ok(id) => id,
        Err(m) => return bad(m),
    };
    match compensation::delete(&state.db, id).await {
        Ok(true) => {
            tracing::warn!(record = %id, "compensation record discarded by an operator");
            refresh_gauge(&state).await;
            HttpResponse::Ok().json(json!({"id": id, "discarded": true}))
        }
        Ok(false) => not_found(id),
        Err(e) => unavailable(&e),
    }
}

async fn retry(state: web::Data<AdminState>, path: web::Path<String>) -> HttpResponse {
    let id = match parse_id(&path) {
        Ok(id) => id,
        Err(m) => return bad(m),
    };
    let record = match compensation::get(&state.db, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(id),
        Err(e) => return unavailable(&e),
    };
    let row = match record.row() {
        Ok(row) => row,
        Err(m) => {
            return error(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                3,
                format!("record {id} cannot be retried: {m}; discard it"),
            )
        }
    };
    let outcome = match state.persistence.send(Reapply { row }).await {
        Ok(o) => o,
        Err(_) => ReapplyOutcome::Failed(DbError::Unavailable("persistence actor stopped".into())),
    };
    let (status, code, message) = match outcome {
        ReapplyOutcome::Written | ReapplyOutcome::Superseded => {
            let superseded = matches!(outcome, ReapplyOutcome::Superseded);
            if let Err(e) = compensation::delete(&state.db, id).await {
                // The row is written; only the record's deletion failed: say so, keep it.
                return unavailable(&e);
            }
            refresh_gauge(&state).await;
            tracing::info!(record = %id, superseded, "compensation record retried and resolved");
            let outcome = if superseded { "superseded" } else { "written" };
            return HttpResponse::Ok().json(json!({"id": id, "outcome": outcome}));
        }
        ReapplyOutcome::Fenced => (
            actix_web::http::StatusCode::CONFLICT,
            9,
            "fenced: a newer claim owns the row, this version can never be written; discard it"
                .to_string(),
        ),
        ReapplyOutcome::Failed(e) if e.is_bad_row() => (
            actix_web::http::StatusCode::CONFLICT,
            9,
            format!("the database refused the row again: {e}"),
        ),
        ReapplyOutcome::Failed(e) => (
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            14,
            format!("the row was not written: {e}"),
        ),
    };
    // The record stays, with the error of this attempt.
    if let Err(e) = compensation::record_failure(&state.db, id, &message).await {
        tracing::warn!(record = %id, error = %e, "could not record the failed retry");
    }
    let record = compensation::get(&state.db, id).await.ok().flatten();
    HttpResponse::build(status).json(json!({
        "code": code,
        "message": message,
        "record": record.as_ref().map(view),
    }))
}
