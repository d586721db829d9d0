//! `/admin/world/events`: schedule, list and cancel world events (docs/world.md#world-bosses).
//!
//! - `POST /admin/world/events` `{id, kind: "boss", title, max_hp, starts_at, ends_at,
//!   reward_gold, reward_item}` (times RFC 3339): every field is checked and a 400 names the
//!   field; the same id with the same body is 200 (idempotent), with another body 409. A new
//!   event is 201. `reward_item` must be an item of the catalog, or null.
//! - `GET /admin/world/events`: every event with its HP and state.
//! - `DELETE /admin/world/events/{id}`: cancels an event that has not ended: state
//!   `cancelled`, the boss's claim bumped (its live owner is fenced and stops), no rewards.
//!   An ended event is 409, an unknown one 404.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::http::AdminState;
use crate::domain::world::boss::{self as rules, EventState};
use crate::persistence::world_events::{self, Created, EventDef, EventRow};
use crate::protocol::world::boss::{AdminEventView, CreateEvent};

/// Longest event id and title.
pub const MAX_ID_LEN: usize = 128;
pub const MAX_TITLE_LEN: usize = 200;
/// Events listed, at most.
const LIST_LIMIT: i64 = 1_000;

pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/world/events")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(web::resource("/admin/world/events/{id}").route(web::delete().to(cancel)));
}

fn bad(field: &str, message: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest()
        .json(json!({"code": 3, "field": field, "message": format!("{field}: {message}")}))
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    tracing::warn!(error = %e, "admin world event request failed");
    HttpResponse::ServiceUnavailable()
        .json(json!({"code": 14, "message": format!("database unavailable: {e}")}))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn view(r: &EventRow) -> AdminEventView {
    AdminEventView {
        id: r.def.id.clone(),
        kind: r.def.kind.clone(),
        title: r.def.title.clone(),
        max_hp: r.def.max_hp,
        hp: r.hp,
        state: r
            .boss()
            .state_at(Utc::now().timestamp_millis())
            .as_str()
            .to_string(),
        starts_at: rfc3339(r.def.starts_at),
        ends_at: rfc3339(r.def.ends_at),
        reward_gold: r.def.reward_gold,
        reward_item: r.def.reward_item.clone(),
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

/// A bad field of a definition, and why.
type FieldError = (&'static str, String);

fn field_error(field: &'static str, message: impl std::fmt::Display) -> FieldError {
    (field, message.to_string())
}

/// The definition in `body`, or the 400 naming the first bad field.
fn definition(body: &[u8]) -> Result<EventDef, FieldError> {
    let c: CreateEvent = serde_json::from_slice(body).map_err(|e| field_error("body", e))?;
    if !valid_id(&c.id) {
        return Err(field_error(
            "id",
            format!("1 to {MAX_ID_LEN} of A-Z a-z 0-9 - _ . :"),
        ));
    }
    if c.kind != "boss" {
        return Err(field_error("kind", "must be \"boss\""));
    }
    if c.title.trim().is_empty()
        || c.title.chars().count() > MAX_TITLE_LEN
        || c.title.contains('\0')
    {
        return Err(field_error(
            "title",
            format!("1 to {MAX_TITLE_LEN} characters"),
        ));
    }
    let time = |field: &'static str, s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| field_error(field, format!("not an RFC 3339 time: {e}")))
    };
    let starts_at = time("starts_at", &c.starts_at)?;
    let ends_at = time("ends_at", &c.ends_at)?;
    rules::validate(
        c.max_hp,
        starts_at.timestamp_millis(),
        ends_at.timestamp_millis(),
        c.reward_gold,
    )
    .map_err(|(field, why)| field_error(field, why))?;
    if c.reward_item
        .as_deref()
        .is_some_and(|i| i.is_empty() || i.len() > MAX_ID_LEN)
    {
        return Err(field_error(
            "reward_item",
            "an item code of the catalog, or null",
        ));
    }
    Ok(EventDef {
        id: c.id,
        kind: c.kind,
        title: c.title,
        max_hp: c.max_hp,
        // Stored to the microsecond: compare what the database keeps.
        starts_at: truncate(starts_at),
        ends_at: truncate(ends_at),
        reward_gold: c.reward_gold,
        reward_item: c.reward_item,
    })
}

fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

async fn create(state: web::Data<AdminState>, body: web::Bytes) -> HttpResponse {
    let def = match definition(&body) {
        Ok(d) => d,
        Err((field, why)) => return bad(field, why),
    };
    if let Some(item) = &def.reward_item {
        match world_events::item_exists(&state.db, item).await {
            Ok(true) => {}
            Ok(false) => return bad("reward_item", format!("no item `{item}` in the catalog")),
            Err(e) => return unavailable(e),
        }
    }
    let created = match world_events::create(&state.db, &def).await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let row = match world_events::get(&state.db, &def.id).await {
        Ok(Some(r)) => r,
        Ok(None) => return unavailable("the event vanished"),
        Err(e) => return unavailable(e),
    };
    match created {
        Created::New => HttpResponse::Created().json(view(&row)),
        Created::Same => HttpResponse::Ok().json(view(&row)),
        Created::Different => HttpResponse::Conflict().json(json!({
            "code": 6,
            "message": format!("world event `{}` exists with another definition", def.id),
        })),
    }
}

async fn list(state: web::Data<AdminState>) -> HttpResponse {
    match world_events::list(&state.db, LIST_LIMIT).await {
        Ok(rows) => HttpResponse::Ok().json(json!({
            "events": rows.iter().map(view).collect::<Vec<_>>(),
        })),
        Err(e) => unavailable(e),
    }
}

async fn cancel(state: web::Data<AdminState>, path: web::Path<String>) -> HttpResponse {
    let id = path.into_inner();
    match world_events::cancel(&state.db, &id).await {
        Ok(true) => {
            HttpResponse::Ok().json(json!({"id": id, "state": EventState::Cancelled.as_str()}))
        }
        Ok(false) => match world_events::get(&state.db, &id).await {
            Ok(None) => HttpResponse::NotFound()
                .json(json!({"code": 5, "message": format!("no world event `{id}`")})),
            Ok(Some(r)) => HttpResponse::Conflict().json(json!({
                "code": 9,
                "message": format!("world event `{id}` has ended"),
                "state": view(&r).state,
            })),
            Err(e) => unavailable(e),
        },
        Err(e) => unavailable(e),
    }
}
