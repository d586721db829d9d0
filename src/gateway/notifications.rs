//! `GET /v2/notification` and `DELETE /v2/notification`: a player's stored notifications,
//! with Nakama's shapes and rules (api_notification.go, core_notification.go).
//!
//! - List: `?limit=` 1–100 (default 1, as Nakama), `?cacheable_cursor=`; oldest first by
//!   (create_time, id). The answer's `cacheable_cursor` points after the last notification
//!   returned; with nothing new it is the cursor given (or, without one, a cursor from the
//!   start), so a client keeps it and later asks only for what arrived since.
//!   `{"notifications":[...],"cacheable_cursor":"..."}`, `notifications` left out when empty.
//! - Delete: `?ids=A&ids=B` deletes those of the caller's notifications; `{}`. No ids: `{}`.
//!   Deviation: an id that is not a UUID is refused with 400 (Nakama's query fails with 500).

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::ApiError;
use super::http::{bearer_user, db_error, empty_object, json, method_not_allowed, query};
use super::notification_store::to_wire;
use super::GatewayState;
use crate::persistence::notifications::{self as store, Cursor};
use crate::protocol::client::Notification;

/// Nakama's limit bounds and default.
const MAX_LIMIT: i64 = 100;
const DEFAULT_LIMIT: i64 = 1;

pub(crate) fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v2/notification")
            .route(web::get().to(list))
            .route(web::delete().to(delete))
            .default_service(web::to(method_not_allowed)),
    );
}

#[derive(Serialize)]
struct NotificationList {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notifications: Vec<Notification>,
    cacheable_cursor: String,
}

/// A cursor: the position after a notification, as micros since the epoch and its id, in 24
/// bytes of base64url. The nil id is "from the start" (what an empty first listing answers).
fn encode_cursor(at: Option<Cursor>) -> String {
    let (micros, id) = at.map_or((0, Uuid::nil()), |(t, id)| (t.timestamp_micros(), id));
    let mut bytes = micros.to_be_bytes().to_vec();
    bytes.extend_from_slice(id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_cursor(text: &str) -> Result<Option<Cursor>, ApiError> {
    let malformed = || ApiError::invalid_argument("Malformed cursor was used.");
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| malformed())?;
    let (micros, id) = bytes.split_at_checked(8).ok_or_else(malformed)?;
    let id = Uuid::from_slice(id).map_err(|_| malformed())?;
    if id.is_nil() {
        return Ok(None);
    }
    let micros = i64::from_be_bytes(micros.try_into().map_err(|_| malformed())?);
    let time = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(malformed)?;
    Ok(Some((time, id)))
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn list(req: HttpRequest, state: web::Data<GatewayState>) -> Result<HttpResponse, ApiError> {
    let session = bearer_user(&req, &state)?;
    let params: Vec<(String, String)> = query(&req)?;
    let limit = match param(&params, "limit") {
        None | Some("") => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::invalid_argument("Invalid limit - limit must be between 1 and 100.")
            })?,
    };
    let given = param(&params, "cacheable_cursor").filter(|c| !c.is_empty());
    let after = given.map(decode_cursor).transpose()?.flatten();
    let rows = store::list(&state.db, session.user_id, limit, after)
        .await
        .map_err(db_error)?;
    let cacheable_cursor = match rows.last() {
        Some(last) => encode_cursor(Some((last.create_time, last.id))),
        None => given.map_or_else(|| encode_cursor(None), str::to_string),
    };
    json(&NotificationList {
        notifications: rows.iter().map(to_wire).collect(),
        cacheable_cursor,
    })
}

async fn delete(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let session = bearer_user(&req, &state)?;
    let params: Vec<(String, String)> = query(&req)?;
    let ids = params
        .iter()
        .filter(|(k, v)| k == "ids" && !v.is_empty())
        .map(|(_, v)| {
            Uuid::parse_str(v)
                .map_err(|_| ApiError::invalid_argument(format!("Invalid notification id: {v:?}.")))
        })
        .collect::<Result<Vec<Uuid>, ApiError>>()?;
    store::delete(&state.db, session.user_id, &ids)
        .await
        .map_err(db_error)?;
    Ok(empty_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(
            decode_cursor(&encode_cursor(Some((at, id)))).unwrap(),
            Some((at, id))
        );
        assert_eq!(decode_cursor(&encode_cursor(None)).unwrap(), None);
        for bad in ["!!", "AAAA", "not a cursor"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
