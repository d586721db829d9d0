//! Managing boards on the admin address (behind the admin token middleware):
//!
//! - `POST /admin/leaderboards` `{id, sort_order: "desc"|"asc", operator:
//!   "best"|"set"|"incr"|"decr", authoritative, reset_schedule, metadata, enable_ranks}`;
//! - `POST /admin/tournaments`: the same plus `title, description, category, duration,
//!   start_time, end_time, max_size, max_num_score, join_required` (times in unix seconds);
//! - `GET /admin/leaderboards`: every board with its live size;
//! - `DELETE /admin/leaderboards/{id}`: the board and all its records.
//!
//! Creating is idempotent as in Nakama: an existing id is answered with the existing board
//! (`"created": false`). Boards live in the `leaderboard` table, so they survive restarts.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::http::AdminState;
use crate::leaderboard::board::{operator_to_db, Board, DEFAULT_MAX_SIZE};
use crate::leaderboard::messages::{BoardInfo, Forget, GetInfo, Warm};
use crate::leaderboard::rank_cache::SortOrder;
use crate::leaderboard::rules::Operator;
use crate::leaderboard::schedule::CronSchedule;
use crate::leaderboard::service;
use crate::persistence::leaderboards::{self, BoardRow};

/// Longest board id (Nakama's limit).
pub const MAX_ID_LEN: usize = 128;

/// Registers the routes; call from the admin app's `configure`, before its `/admin` scope.
pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/leaderboards")
            .route(web::get().to(list))
            .route(web::post().to(create_leaderboard)),
    )
    .service(web::resource("/admin/leaderboards/{id}").route(web::delete().to(delete)))
    .service(web::resource("/admin/tournaments").route(web::post().to(create_tournament)));
}

fn bad(message: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"code": 3, "message": message.into()}))
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    tracing::warn!(error = %e, "admin leaderboard request failed");
    HttpResponse::ServiceUnavailable()
        .json(json!({"code": 14, "message": format!("database unavailable: {e}")}))
}

fn field<'a>(o: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}

fn int_field(o: &serde_json::Map<String, Value>, k: &str, default: i64) -> Result<i64, String> {
    match field(o, k) {
        None => Ok(default),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| format!("{k} must be an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("{k} must be an integer")),
        Some(_) => Err(format!("{k} must be an integer")),
    }
}

fn bool_field(o: &serde_json::Map<String, Value>, k: &str, default: bool) -> Result<bool, String> {
    match field(o, k) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{k} must be true or false")),
    }
}

fn str_field(o: &serde_json::Map<String, Value>, k: &str) -> Result<String, String> {
    match field(o, k) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{k} must be a string")),
    }
}

/// The board fields shared by leaderboards and tournaments, validated.
fn board_fields(body: &Value) -> Result<BoardRow, String> {
    let o = body.as_object().ok_or("the body must be a JSON object")?;
    let id = str_field(o, "id")?;
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(|c| c.is_control()) {
        return Err(format!(
            "id must be 1-{MAX_ID_LEN} bytes without control characters"
        ));
    }
    let mut row = BoardRow::leaderboard(id);
    row.sort_order = match field(o, "sort_order") {
        None => SortOrder::Descending,
        Some(Value::String(s)) => {
            SortOrder::parse(s).ok_or("sort_order must be \"asc\" or \"desc\"")?
        }
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(SortOrder::from_nakama)
            .ok_or("sort_order must be 0 (asc) or 1 (desc)")?,
        Some(_) => return Err("sort_order must be \"asc\" or \"desc\"".into()),
    }
    .nakama_number() as i32;
    row.operator = operator_to_db(match field(o, "operator") {
        None => Operator::Best,
        Some(Value::String(s)) => {
            Operator::parse(s).ok_or("operator must be best, set, incr or decr")?
        }
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(Operator::from_nakama)
            .ok_or("operator must be 1 (best), 2 (set), 3 (incr) or 4 (decr)")?,
        Some(_) => return Err("operator must be best, set, incr or decr".into()),
    });
    row.authoritative = bool_field(o, "authoritative", false)?;
    row.enable_ranks = bool_field(o, "enable_ranks", true)?;
    row.reset_schedule = match field(o, "reset_schedule") {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => {
            CronSchedule::parse(s.trim()).map_err(|e| e.to_string())?;
            Some(s.trim().to_string())
        }
        Some(_) => return Err("reset_schedule must be a cron string".into()),
    };
    row.metadata = match field(o, "metadata") {
        None => "{}".into(),
        Some(m @ Value::Object(_)) => m.to_string(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(m @ Value::Object(_)) => m.to_string(),
            _ => return Err("metadata must be a JSON object".into()),
        },
        Some(_) => return Err("metadata must be a JSON object".into()),
    };
    Ok(row)
}

/// A tournament's fields, validated as Nakama's `checkTournamentConfig`.
fn tournament_fields(body: &Value, now: i64) -> Result<BoardRow, String> {
    let mut row = board_fields(body)?;
    let o = body.as_object().ok_or("the body must be a JSON object")?;
    row.is_tournament = true;
    row.title = str_field(o, "title")?;
    row.description = str_field(o, "description")?;
    let category = int_field(o, "category", 0)?;
    if !(0..128).contains(&category) {
        return Err("category must be 0-127".into());
    }
    row.category = category as i32;
    let duration = int_field(o, "duration", 0)?;
    if duration <= 0 || duration > i64::from(i32::MAX) {
        return Err("duration must be greater than zero (seconds)".into());
    }
    row.duration = duration as i32;
    let start = int_field(o, "start_time", 0)?;
    if start < 0 {
        return Err("start_time must be a unix time".into());
    }
    row.start_time = if start == 0 { now } else { start };
    let end = int_field(o, "end_time", 0)?;
    if end < 0 || (end > 0 && end < row.start_time) {
        return Err("end_time cannot be before start_time".into());
    }
    row.end_time = end;
    let max_size = int_field(o, "max_size", 0)?;
    if !(0..=i64::from(DEFAULT_MAX_SIZE)).contains(&max_size) {
        return Err(format!(
            "max_size must be 0 (no limit) to {DEFAULT_MAX_SIZE}"
        ));
    }
    row.max_size = if max_size == 0 {
        DEFAULT_MAX_SIZE
    } else {
        max_size as i32
    };
    let max_num_score = int_field(o, "max_num_score", 0)?;
    if !(0..=1_000_000).contains(&max_num_score) {
        return Err("max_num_score must be 0 (default) to 1000000".into());
    }
    row.max_num_score = if max_num_score == 0 {
        1_000_000
    } else {
        max_num_score as i32
    };
    row.join_required = bool_field(o, "join_required", false)?;
    if let (Some(cron), true) = (row.reset_schedule.as_deref(), row.end_time > 0) {
        let cron = CronSchedule::parse(cron).map_err(|e| e.to_string())?;
        let first = cron.next_after(row.start_time).unwrap_or(i64::MAX);
        if row.end_time <= first {
            return Err("end_time cannot be before the first reset: increase end_time or change the reset_schedule".into());
        }
    }
    Ok(row)
}

async fn create(state: web::Data<AdminState>, row: BoardRow) -> HttpResponse {
    if let Err(e) = Board::from_row(row.clone()) {
        return bad(e);
    }
    let (stored, created) = match leaderboards::create_board(&state.db, &row).await {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    // Activate it now (an actor that found no such board looks again).
    let info = match service::send(&state.router, stored.id.clone(), Warm, true).await {
        Ok(info) => info,
        Err(_) => match Board::from_row(stored) {
            Ok(b) => b.info(chrono::Utc::now().timestamp(), 0, false),
            Err(e) => return bad(e),
        },
    };
    tracing::info!(board = %info.id, created, tournament = info.is_tournament, "leaderboard created");
    let body = json!({"created": created, "leaderboard": info});
    if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

async fn create_leaderboard(state: web::Data<AdminState>, body: web::Bytes) -> HttpResponse {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("invalid JSON: {e}")),
    };
    match board_fields(&body) {
        Ok(row) => create(state, row).await,
        Err(e) => bad(e),
    }
}

async fn create_tournament(state: web::Data<AdminState>, body: web::Bytes) -> HttpResponse {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("invalid JSON: {e}")),
    };
    match tournament_fields(&body, chrono::Utc::now().timestamp()) {
        Ok(row) => create(state, row).await,
        Err(e) => bad(e),
    }
}

async fn list(state: web::Data<AdminState>) -> HttpResponse {
    let rows = match leaderboards::list_boards(&state.db).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(e),
    };
    let now = chrono::Utc::now().timestamp();
    let live = futures_util::future::join_all(
        rows.iter()
            .map(|r| service::read(&state.router, r.id.clone(), GetInfo)),
    )
    .await;
    let boards: Vec<BoardInfo> = rows
        .into_iter()
        .zip(live)
        .filter_map(|(row, live)| match live {
            Ok(info) => Some(info),
            Err(_) => Board::from_row(row.clone())
                .ok()
                .map(|b| b.info(now, row.size.max(0) as u64, false)),
        })
        .collect();
    HttpResponse::Ok().json(json!({"leaderboards": boards}))
}

async fn delete(state: web::Data<AdminState>, path: web::Path<String>) -> HttpResponse {
    let id = path.into_inner();
    match leaderboards::delete_board(&state.db, &id).await {
        Ok(true) => {}
        Ok(false) => {
            return HttpResponse::NotFound()
                .json(json!({"code": 5, "message": "Leaderboard not found."}))
        }
        Err(e) => return unavailable(e),
    }
    // The board row is gone: its actor (on whichever node owns it) would be fenced at its
    // next batch; stop it now so it serves no more reads from memory.
    let _ = service::send(&state.router, id.clone(), Forget, false).await;
    match leaderboards::purge_records(&state.db, &id, 5_000).await {
        Ok(n) => {
            tracing::info!(board = %id, records = n, "leaderboard deleted");
            HttpResponse::Ok().json(json!({"deleted": true, "records_deleted": n}))
        }
        Err(e) => unavailable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_fields_are_validated() {
        let row = board_fields(&json!({"id": "w", "sort_order": "asc", "operator": "incr",
            "authoritative": true, "reset_schedule": "0 0 * * 1", "metadata": {"a": 1}}))
        .unwrap();
        assert_eq!((row.sort_order, row.operator), (0, 2));
        assert!(row.authoritative && row.enable_ranks);
        assert_eq!(row.metadata, "{\"a\":1}");
        assert!(board_fields(&json!({"id": ""})).is_err());
        assert!(board_fields(&json!({"id": "x", "sort_order": "up"})).is_err());
        assert!(board_fields(&json!({"id": "x", "operator": "max"})).is_err());
        assert!(board_fields(&json!({"id": "x", "reset_schedule": "every day"})).is_err());
        assert!(board_fields(&json!({"id": "x", "metadata": [1]})).is_err());
        let d = board_fields(&json!({"id": "x"})).unwrap();
        assert_eq!((d.sort_order, d.operator), (1, 0));
    }

    #[test]
    fn tournament_fields_are_validated() {
        let now = 1_700_000_000;
        let t = tournament_fields(
            &json!({"id": "t", "duration": 3600, "max_size": 10, "join_required": true}),
            now,
        )
        .unwrap();
        assert!(t.is_tournament && t.join_required);
        assert_eq!(
            (t.start_time, t.max_size, t.max_num_score),
            (now, 10, 1_000_000)
        );
        assert!(tournament_fields(&json!({"id": "t"}), now).is_err());
        assert!(tournament_fields(
            &json!({"id": "t", "duration": 10, "start_time": now, "end_time": now - 1}),
            now
        )
        .is_err());
        assert!(tournament_fields(
            &json!({"id": "t", "duration": 10, "reset_schedule": "0 0 * * *",
                    "start_time": now, "end_time": now + 60}),
            now
        )
        .is_err());
    }
}
