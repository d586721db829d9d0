//! The client API of leaderboards and tournaments, in Nakama's shapes (grpc-gateway JSON:
//! snake_case, int64 as strings, zero values left out, Nakama's error codes and messages).
//!
//! - `POST /v2/leaderboard/{id}` write, `GET` list (`owner_ids`, `limit` 1–1000, `cursor`,
//!   `expiry`), `DELETE` own record; `GET /v2/leaderboard/{id}/owner/{owner_id}` around owner
//!   (`limit` 1–100).
//! - `GET /v2/tournament` list tournaments; `POST /v2/tournament/{id}/join`; `POST`/`PUT
//!   /v2/tournament/{id}` write, `GET` list records, `DELETE` own record;
//!   `GET /v2/tournament/{id}/owner/{owner_id}`.
//!
//! Every request needs a session (`Authorization: Bearer`). Writes go to the board's
//! [`Leaderboard`] actor on its owner node, through the router; reads are answered by this
//! node's replica when it holds the board (`replication`), else by the owner.

use std::sync::Arc;

use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::board::Board;
use super::messages::{
    Api, AroundOwner, BoardInfo, DeleteRecord, GetInfo, Join, LeaderboardError, List, RecordList,
    RecordView, Write,
};
use super::service;
use crate::gateway::auth::SessionUser;
use crate::gateway::http::bearer_user;
use crate::gateway::{ApiError, GatewayState, GrpcCode};
use crate::persistence::leaderboards;
use crate::persistence::Db;
use crate::request::Caller;
use crate::routing::Router;
use crate::services::Services;

/// Largest write body (Nakama's default request size limit is larger; records are small).
const MAX_WRITE_BODY: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub router: Arc<Router>,
    pub db: Db,
}

/// Mounts the leaderboard and tournament routes. The gateway's routes (and its
/// [`GatewayState`], which verifies session tokens) must be mounted on the same app.
pub fn configure(services: &Services) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let state = web::Data::new(HttpState {
        router: services.router.clone(),
        db: services.db.clone(),
    });
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone())
            .service(
                web::resource("/v2/leaderboard/{id}")
                    .route(web::get().to(list_leaderboard))
                    .route(web::post().to(write_leaderboard))
                    .route(web::delete().to(delete_leaderboard))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/v2/leaderboard/{id}/owner/{owner_id}")
                    .route(web::get().to(around_leaderboard))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/v2/tournament")
                    .route(web::get().to(list_tournaments))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/v2/tournament/{id}")
                    .route(web::get().to(list_tournament))
                    .route(web::post().to(write_tournament))
                    .route(web::put().to(write_tournament))
                    .route(web::delete().to(delete_tournament))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/v2/tournament/{id}/join")
                    .route(web::post().to(join_tournament))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/v2/tournament/{id}/owner/{owner_id}")
                    .route(web::get().to(around_tournament))
                    .default_service(web::to(method_not_allowed)),
            );
    }
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let e = ApiError::new(
        GrpcCode::Unimplemented,
        format!("Method {} not allowed on {}.", req.method(), req.path()),
    );
    HttpResponse::MethodNotAllowed()
        .content_type("application/json")
        .body(e.body())
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Where an error is answered: Nakama words the same condition differently per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Write,
    Read,
    Delete,
}

fn api_error(e: LeaderboardError, call: Call) -> ApiError {
    match e {
        LeaderboardError::NotFound(Api::Leaderboard) => {
            ApiError::not_found("Leaderboard not found.")
        }
        LeaderboardError::NotFound(Api::Tournament) => ApiError::not_found("Tournament not found."),
        LeaderboardError::Ended => match call {
            Call::Write => ApiError::not_found("Tournament not found or has ended."),
            _ => ApiError::not_found("Tournament has ended."),
        },
        LeaderboardError::Write(e, api, join) => {
            let s = e.status(LeaderboardError::site(api, join));
            ApiError::new(GrpcCode::from_i32(s.grpc_code), s.message)
        }
        LeaderboardError::InvalidCursor => {
            ApiError::invalid_argument("Cursor is invalid or expired.")
        }
        LeaderboardError::InvalidArgument(m) => ApiError::invalid_argument(m),
        LeaderboardError::Unavailable => ApiError::new(
            GrpcCode::Unavailable,
            "Service temporarily unavailable, try again.",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn int64(v: i64) -> Option<String> {
    (v != 0).then(|| v.to_string())
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// `api.LeaderboardRecord`.
#[derive(Serialize)]
struct JsonRecord<'a> {
    leaderboard_id: &'a str,
    owner_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscore: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    num_score: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    create_time: String,
    update_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiry_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rank: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    max_num_score: u32,
}

impl<'a> JsonRecord<'a> {
    fn of(r: &'a RecordView) -> JsonRecord<'a> {
        JsonRecord {
            leaderboard_id: &r.leaderboard_id,
            owner_id: r.owner_id.to_string(),
            username: r.username.as_deref(),
            score: int64(r.score),
            subscore: int64(r.subscore),
            num_score: r.num_score,
            metadata: &r.metadata,
            create_time: rfc3339(r.create_time),
            update_time: rfc3339(r.update_time),
            expiry_time: (r.expiry_time != 0).then(|| rfc3339(r.expiry_time)),
            rank: int64(r.rank as i64),
            max_num_score: r.max_num_score,
        }
    }
}

/// `api.LeaderboardRecordList` / `api.TournamentRecordList`.
#[derive(Serialize)]
struct JsonRecordList<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    records: Vec<JsonRecord<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    owner_records: Vec<JsonRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev_cursor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rank_count: Option<String>,
}

impl<'a> JsonRecordList<'a> {
    fn of(l: &'a RecordList) -> JsonRecordList<'a> {
        JsonRecordList {
            records: l.records.iter().map(JsonRecord::of).collect(),
            owner_records: l.owner_records.iter().map(JsonRecord::of).collect(),
            next_cursor: l.next_cursor.as_deref(),
            prev_cursor: l.prev_cursor.as_deref(),
            rank_count: int64(l.rank_count as i64),
        }
    }
}

/// `api.Tournament`.
#[derive(Serialize)]
struct JsonTournament<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    title: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    category: u32,
    #[serde(skip_serializing_if = "is_zero")]
    sort_order: u32,
    #[serde(skip_serializing_if = "is_zero")]
    size: u32,
    #[serde(skip_serializing_if = "is_zero")]
    max_size: u32,
    #[serde(skip_serializing_if = "is_zero")]
    max_num_score: u32,
    #[serde(skip_serializing_if = "is_false")]
    can_enter: bool,
    #[serde(skip_serializing_if = "is_zero")]
    end_active: u32,
    #[serde(skip_serializing_if = "is_zero")]
    next_reset: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    create_time: String,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    duration: u32,
    #[serde(skip_serializing_if = "is_zero")]
    start_active: u32,
    #[serde(skip_serializing_if = "is_zero")]
    prev_reset: u32,
    #[serde(skip_serializing_if = "is_zero")]
    operator: u32,
    #[serde(skip_serializing_if = "is_false")]
    authoritative: bool,
}

fn unix_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

impl<'a> JsonTournament<'a> {
    fn of(t: &'a BoardInfo, now: i64) -> JsonTournament<'a> {
        let can_enter = t.start_active <= now
            && t.end_active >= now
            && (t.max_size == 0 || t.size < u64::from(t.max_size));
        JsonTournament {
            id: &t.id,
            title: &t.title,
            description: &t.description,
            category: t.category,
            sort_order: t.sort_order,
            size: u32::try_from(t.size).unwrap_or(u32::MAX),
            max_size: t.max_size,
            max_num_score: t.max_num_score,
            can_enter,
            end_active: unix_u32(t.end_active),
            next_reset: unix_u32(t.expiry),
            metadata: &t.metadata,
            create_time: rfc3339(t.create_time),
            start_time: rfc3339(t.start_time),
            end_time: (t.end_time > 0).then(|| rfc3339(t.end_time)),
            duration: t.duration,
            start_active: unix_u32(t.start_active),
            prev_reset: unix_u32(t.prev_reset),
            operator: t.operator,
            authoritative: t.authoritative,
        }
    }
}

fn json<T: Serialize>(value: &T) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

fn empty_object() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body("{}")
}

// ---------------------------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------------------------

fn session(req: &HttpRequest) -> Result<SessionUser, ApiError> {
    let gateway = req
        .app_data::<web::Data<GatewayState>>()
        .ok_or_else(|| ApiError::internal("gateway state is not mounted"))?;
    bearer_user(req, gateway)
}

fn params(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid query string: {e}.")))
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An integer query parameter, as grpc-gateway parses it.
fn int_param(params: &[(String, String)], name: &str) -> Result<Option<i64>, ApiError> {
    match param(params, name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid_argument(format!(
                "Invalid value for `{name}`: {v:?} is not an integer."
            ))
        }),
    }
}

fn owner_ids(params: &[(String, String)]) -> Result<Vec<Uuid>, ApiError> {
    params
        .iter()
        .filter(|(k, _)| k == "owner_ids")
        .map(|(_, v)| {
            Uuid::parse_str(v)
                .map_err(|_| ApiError::invalid_argument("One or more owner IDs are invalid."))
        })
        .collect()
}

fn board_id(id: &str, api: Api) -> Result<String, ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid_argument(match api {
            Api::Leaderboard => "Invalid leaderboard ID.",
            Api::Tournament => "Tournament ID must be provided",
        }));
    }
    Ok(id.to_string())
}

async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::invalid_argument(format!("Error reading request body: {e}.")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::invalid_argument(format!(
                "Request body too large: the limit is {limit} bytes."
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A write's body (`api.WriteLeaderboardRecordRequest.LeaderboardRecordWrite`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteBody {
    pub score: i64,
    pub subscore: i64,
    pub metadata: Option<String>,
    pub operator: i64,
}

fn int64_field(v: &Value, name: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::invalid_argument(format!(
            "Invalid JSON request body: `{name}` must be an int64 (a string or a number)."
        ))
    };
    match v {
        Value::Null => Ok(0),
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => s.trim().parse().map_err(|_| bad()),
        Value::Number(n) => n.as_i64().ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// Parses a write body: int64 fields as strings or numbers, `metadata` a string holding a JSON
/// object (as nakama-js sends it) or an object, `operator` a number or an enum name.
pub fn parse_write_body(body: &[u8]) -> Result<WriteBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_argument(
            "Invalid input, record score value is required.",
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid JSON request body: {e}.")))?;
    let Value::Object(o) = v else {
        return Err(ApiError::invalid_argument(
            "Invalid JSON request body: expected an object.",
        ));
    };
    let get = |k: &str| o.get(k).unwrap_or(&Value::Null);
    let metadata_error = || ApiError::invalid_argument("Metadata value must be JSON, if provided.");
    let metadata = match get("metadata") {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(m @ Value::Object(_)) => Some(m.to_string()),
            _ => return Err(metadata_error()),
        },
        m @ Value::Object(_) => Some(m.to_string()),
        _ => return Err(metadata_error()),
    };
    let operator = match get("operator") {
        Value::Null => 0,
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            ApiError::invalid_argument("Invalid JSON request body: bad `operator`.")
        })?,
        Value::String(s) => match s.to_ascii_uppercase().as_str() {
            "" | "NO_OVERRIDE" => 0,
            "BEST" => 1,
            "SET" => 2,
            "INCREMENT" | "INCR" => 3,
            "DECREMENT" | "DECR" => 4,
            other => other.parse().map_err(|_| {
                ApiError::invalid_argument(format!(
                    "Invalid JSON request body: unknown operator {s:?}."
                ))
            })?,
        },
        _ => {
            return Err(ApiError::invalid_argument(
                "Invalid JSON request body: bad `operator`.",
            ))
        }
    };
    Ok(WriteBody {
        score: int64_field(get("score"), "score")?,
        subscore: int64_field(get("subscore"), "subscore")?,
        metadata,
        operator,
    })
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

async fn write(
    api: Api,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    let user = session(&req)?;
    let id = board_id(&path.into_inner(), api)?;
    let body = parse_write_body(&read_body(payload, MAX_WRITE_BODY).await?)?;
    let msg = Write {
        api,
        caller: Caller::User(user.user_id),
        owner: user.user_id,
        username: Some(user.username),
        score: body.score,
        subscore: body.subscore,
        metadata: body.metadata,
        operator: body.operator,
    };
    let record = service::write(&state.router, id, msg)
        .await
        .map_err(|e| api_error(e, Call::Write))?;
    json(&JsonRecord::of(&record))
}

async fn write_leaderboard(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    write(Api::Leaderboard, req, path, payload, state).await
}

async fn write_tournament(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    write(Api::Tournament, req, path, payload, state).await
}

async fn delete(
    api: Api,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    let user = session(&req)?;
    let id = board_id(&path.into_inner(), api)?;
    let msg = DeleteRecord {
        api,
        caller: Caller::User(user.user_id),
        owner: user.user_id,
    };
    service::write(&state.router, id, msg)
        .await
        .map_err(|e| api_error(e, Call::Delete))?;
    Ok(empty_object())
}

async fn delete_leaderboard(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    delete(Api::Leaderboard, req, path, state).await
}

async fn delete_tournament(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    delete(Api::Tournament, req, path, state).await
}

async fn list(
    api: Api,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    session(&req)?;
    let id = board_id(&path.into_inner(), api)?;
    let params = params(&req)?;
    let owners = owner_ids(&params)?;
    let cursor = param(&params, "cursor")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let (max, default_when) = match api {
        // Nakama: without a limit, 1 record unless only owners were asked for.
        Api::Leaderboard => (1000, owners.is_empty() || cursor.is_some()),
        Api::Tournament => (100, owners.is_empty() || cursor.is_none()),
    };
    let limit = match int_param(&params, "limit")? {
        Some(l) if !(1..=max).contains(&l) => {
            return Err(ApiError::invalid_argument(format!(
                "Invalid limit - limit must be between 1 and {max}."
            )))
        }
        Some(l) => Some(l as u32),
        None if default_when => Some(if api == Api::Leaderboard { 1 } else { 10 }),
        None => None,
    };
    let msg = List {
        api,
        owner_ids: owners,
        limit,
        cursor,
        expiry: int_param(&params, "expiry")?,
    };
    let list = service::read(&state.router, id, msg)
        .await
        .map_err(|e| api_error(e, Call::Read))?;
    json(&JsonRecordList::of(&list))
}

async fn list_leaderboard(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    list(Api::Leaderboard, req, path, state).await
}

async fn list_tournament(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    list(Api::Tournament, req, path, state).await
}

async fn around(
    api: Api,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    session(&req)?;
    let (id, owner) = path.into_inner();
    let id = board_id(&id, api)?;
    let params = params(&req)?;
    let limit = match int_param(&params, "limit")? {
        None => 1,
        Some(l) if (1..=100).contains(&l) => l as u32,
        Some(_) => {
            return Err(ApiError::invalid_argument(
                "Invalid limit - limit must be between 1 and 100.",
            ))
        }
    };
    if owner.is_empty() {
        return Err(ApiError::invalid_argument(
            "Owner ID must be provided for a haystack query.",
        ));
    }
    let owner = Uuid::parse_str(&owner)
        .map_err(|_| ApiError::invalid_argument("Invalid owner ID provided."))?;
    let msg = AroundOwner {
        api,
        owner,
        limit,
        cursor: param(&params, "cursor")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        expiry: int_param(&params, "expiry")?,
    };
    let list = service::read(&state.router, id, msg)
        .await
        .map_err(|e| api_error(e, Call::Read))?;
    json(&JsonRecordList::of(&list))
}

async fn around_leaderboard(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    around(Api::Leaderboard, req, path, state).await
}

async fn around_tournament(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    around(Api::Tournament, req, path, state).await
}

async fn join_tournament(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    let user = session(&req)?;
    let id = board_id(&path.into_inner(), Api::Tournament)?;
    let msg = Join {
        owner: user.user_id,
        username: Some(user.username),
    };
    service::write(&state.router, id, msg)
        .await
        .map_err(|e| api_error(e, Call::Write))?;
    Ok(empty_object())
}

/// `GET /v2/tournament`: Nakama's filters (`category_start`/`category_end` 0–127,
/// `start_time`, `end_time`: by default current and future tournaments), its order (start
/// time, end time descending, category, id) and an id cursor.
async fn list_tournaments(
    req: HttpRequest,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    session(&req)?;
    let params = params(&req)?;
    let category_start = int_param(&params, "category_start")?.unwrap_or(0);
    let category_end = match int_param(&params, "category_end")? {
        None => 127,
        Some(e) if e >= 128 => {
            return Err(ApiError::invalid_argument(
                "Tournament category end must be >=0 and <128.",
            ))
        }
        Some(e) if e < category_start => {
            return Err(ApiError::invalid_argument(
                "Tournament category end must be greater than category start.",
            ))
        }
        Some(e) => e,
    };
    let start_time = int_param(&params, "start_time")?.unwrap_or(-1);
    let end_time = match int_param(&params, "end_time")? {
        None => -1,
        Some(e) if e != 0 && e < start_time => {
            return Err(ApiError::invalid_argument(
                "Tournament end time must be greater than start time.",
            ))
        }
        Some(e) => e,
    };
    let limit = match int_param(&params, "limit")? {
        None => 100,
        Some(l) if (1..=100).contains(&l) => l as usize,
        Some(_) => {
            return Err(ApiError::invalid_argument(
                "Limit must be between 1 and 100.",
            ))
        }
    };
    let after = match param(&params, "cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            URL_SAFE_NO_PAD
                .decode(c.trim_end_matches('='))
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::invalid_argument("Cursor is invalid or expired."))?,
        ),
    };
    let now = chrono::Utc::now().timestamp();
    let rows = leaderboards::list_boards(&state.db)
        .await
        .map_err(crate::gateway::http::db_error)?;
    let mut tournaments: Vec<Board> = rows
        .into_iter()
        .filter(|r| r.is_tournament)
        .filter_map(|r| Board::from_row(r).ok())
        .collect();
    tournaments.sort_by(|a, b| {
        let (a, b) = (&a.row, &b.row);
        a.start_time
            .cmp(&b.start_time)
            .then(b.end_time.cmp(&a.end_time))
            .then(a.category.cmp(&b.category))
            .then(a.id.cmp(&b.id))
    });
    let mut skipping = after.is_some();
    let mut page = Vec::new();
    let mut next = None;
    for t in tournaments {
        if skipping {
            skipping = after.as_deref() != Some(t.id());
            continue;
        }
        let r = &t.row;
        let category = i64::from(r.category);
        if category < category_start || category > category_end || r.start_time < start_time {
            continue;
        }
        let skip_end = (end_time == 0 && r.end_time != 0)
            || (end_time == -1 && r.end_time != 0 && r.end_time < now)
            || (end_time > 0 && (r.end_time == 0 || r.end_time > end_time));
        if skip_end {
            continue;
        }
        if page.len() >= limit {
            next = page
                .last()
                .map(|t: &Board| URL_SAFE_NO_PAD.encode(t.id().as_bytes()));
            break;
        }
        page.push(t);
    }
    // Live sizes from the tournaments' actors (the stored size otherwise).
    let infos = futures_util::future::join_all(page.iter().map(|t| {
        let router = state.router.clone();
        let id = t.id().to_string();
        async move { service::read(&router, id, GetInfo).await }
    }))
    .await;
    let infos: Vec<BoardInfo> = page
        .iter()
        .zip(infos)
        .map(|(t, live)| live.unwrap_or_else(|_| t.info(now, t.row.size.max(0) as u64, false)))
        .collect();
    #[derive(Serialize)]
    struct JsonTournamentList<'a> {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tournaments: Vec<JsonTournament<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    }
    json(&JsonTournamentList {
        tournaments: infos.iter().map(|t| JsonTournament::of(t, now)).collect(),
        cursor: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_bodies() {
        let b =
            parse_write_body(br#"{"score":"100","subscore":5,"metadata":"{\"a\": 1}"}"#).unwrap();
        assert_eq!(
            b,
            WriteBody {
                score: 100,
                subscore: 5,
                metadata: Some("{\"a\":1}".into()),
                operator: 0
            }
        );
        let b = parse_write_body(br#"{"score":"7","metadata":{"k":"v"},"operator":"INCREMENT"}"#)
            .unwrap();
        assert_eq!((b.score, b.operator), (7, 3));
        assert_eq!(b.metadata.as_deref(), Some("{\"k\":\"v\"}"));
        assert_eq!(parse_write_body(br#"{"operator":4}"#).unwrap().operator, 4);
        for bad in [
            &br#"{"metadata":"[1]"}"#[..],
            br#"{"metadata":"nope"}"#,
            br#"{"metadata":5}"#,
        ] {
            assert_eq!(
                parse_write_body(bad).unwrap_err().message,
                "Metadata value must be JSON, if provided."
            );
        }
        assert!(parse_write_body(br#"{"score":"x"}"#).is_err());
        assert!(parse_write_body(br#"[1]"#).is_err());
        assert!(parse_write_body(b"").is_err());
        assert_eq!(parse_write_body(br#"{"score":"-3"}"#).unwrap().score, -3);
    }

    #[test]
    fn record_json_leaves_zero_values_out() {
        let r = RecordView {
            leaderboard_id: "b".into(),
            owner_id: Uuid::nil(),
            username: Some("u".into()),
            score: 0,
            subscore: 12,
            num_score: 1,
            max_num_score: 1_000_000,
            metadata: "{}".into(),
            create_time: 1_700_000_000,
            update_time: 1_700_000_001,
            expiry_time: 0,
            rank: 3,
        };
        let v: Value = serde_json::to_value(JsonRecord::of(&r)).unwrap();
        assert_eq!(v.get("score"), None);
        assert_eq!(v["subscore"], "12");
        assert_eq!(v["rank"], "3");
        assert_eq!(v["num_score"], 1);
        assert_eq!(v.get("expiry_time"), None);
        assert_eq!(v["create_time"], "2023-11-14T22:13:20Z");
        let list = RecordList::default();
        assert_eq!(
            serde_json::to_string(&JsonRecordList::of(&list)).unwrap(),
            "{}"
        );
    }

    #[test]
    fn errors_have_nakamas_codes() {
        let e = api_error(LeaderboardError::NotFound(Api::Leaderboard), Call::Read);
        assert_eq!(
            (e.code, e.message.as_ref()),
            (GrpcCode::NotFound, "Leaderboard not found.")
        );
        let e = api_error(
            LeaderboardError::write(
                super::super::rules::WriteError::Authoritative,
                Api::Leaderboard,
            ),
            Call::Write,
        );
        assert_eq!(e.code, GrpcCode::PermissionDenied);
        let e = api_error(LeaderboardError::Ended, Call::Write);
        assert_eq!(e.message, "Tournament not found or has ended.");
    }
}
