//! HTTP handlers of the client API, with Nakama's request and answer shapes.
//!
//! Bodies are read by hand with a size bound and decoded with serde_json so every malformed
//! input gets a `{"code":3,...}` answer that names the problem; actix's own extractor configs
//! (JSON, query, path, payload) are set too, with the same error shape, for any route that
//! uses them.

use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::auth::{self, IdKind, SessionUser, TokenKind};
use super::error::{ApiError, GrpcCode};
use super::rpc::{RpcContext, RpcError};
use super::GatewayState;
use crate::persistence::accounts::{self, AccountError};
use crate::persistence::DbError;
use crate::protocol::client::{AuthenticateBody, RpcResponse, SessionRefreshBody, SessionResponse};

pub(crate) fn mount(cfg: &mut web::ServiceConfig, state: GatewayState) {
    let json_limit = state.http.max_rpc_body;
    cfg.app_data(web::Data::new(state))
        .app_data(
            web::JsonConfig::default()
                .limit(json_limit)
                .content_type_required(false)
                .error_handler(|err, _req| {
                    ApiError::invalid_argument(format!("Invalid JSON request body: {err}.")).into()
                }),
        )
        .app_data(web::PayloadConfig::new(json_limit))
        .app_data(web::QueryConfig::default().error_handler(|err, _req| {
            ApiError::invalid_argument(format!("Invalid query string: {err}.")).into()
        }))
        .app_data(web::PathConfig::default().error_handler(|err, _req| {
            ApiError::invalid_argument(format!("Invalid path: {err}.")).into()
        }))
        .service(
            web::resource("/v2/account/authenticate/device")
                .route(web::post().to(authenticate_device))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v2/account/authenticate/custom")
                .route(web::post().to(authenticate_custom))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v2/account/session/refresh")
                .route(web::post().to(session_refresh))
                .default_service(web::to(method_not_allowed)),
        )
        .configure(super::accounts_http::mount)
        .service(
            web::resource("/v2/rpc/{id}")
                .route(web::post().to(rpc))
                .route(web::get().to(rpc))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/ws")
                .route(web::get().to(super::socket::connect))
                .default_service(web::to(method_not_allowed)),
        )
        .service(web::resource("/healthcheck").route(web::get().to(healthcheck)))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("Not Found: no such API endpoint."))
}

/// A route's answer to a method it does not serve (also used by the leaderboard's routes).
pub(crate) async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let e = ApiError::new(
        GrpcCode::Unimplemented,
        format!("Method {} not allowed on {}.", req.method(), req.path()),
    );
    HttpResponse::MethodNotAllowed()
        .content_type("application/json")
        .body(e.body())
}

async fn healthcheck() -> HttpResponse {
    empty_object()
}

/// `200 {}`: the answer of a call that returns nothing.
pub(crate) fn empty_object() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body("{}")
}

/// `200` with `value` as JSON.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// Database trouble as the client sees it: unavailable → 503 (retry), anything else → 500.
pub(crate) fn db_error(e: DbError) -> ApiError {
    match e {
        DbError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "database unavailable answering a client");
            ApiError::new(
                GrpcCode::Unavailable,
                "Service temporarily unavailable, try again.",
            )
        }
        DbError::NotFound(what) => ApiError::not_found(what),
        other => ApiError::internal(other),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::invalid_argument(format!(
        "Request body too large: the limit is {limit} bytes."
    ))
}

/// Reads the whole body, refusing it as soon as it passes `limit` bytes (a larger
/// `Content-Length` is refused before reading).
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large(limit));
        }
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::invalid_argument(format!("Error reading request body: {e}.")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Decodes a JSON body; an empty body is the empty message (as grpc-gateway treats it).
pub(crate) fn parse_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid JSON request body: {e}.")))
}

/// The query string decoded into `T`.
pub(crate) fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid query string: {e}.")))
}

fn authorization(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""))
}

/// `Authorization: Basic base64(<server key>:)`; only the user part is checked.
pub(crate) fn check_server_key(req: &HttpRequest, state: &GatewayState) -> Result<(), ApiError> {
    let header =
        authorization(req).ok_or_else(|| ApiError::unauthenticated("Server key required"))?;
    let user =
        auth::parse_basic(header).ok_or_else(|| ApiError::unauthenticated("Server key invalid"))?;
    if !auth::constant_time_eq(user.as_bytes(), state.config.server_key.as_bytes()) {
        return Err(ApiError::unauthenticated("Server key invalid"));
    }
    Ok(())
}

/// The session of `Authorization: Bearer <token>`.
pub(crate) fn bearer_user(
    req: &HttpRequest,
    state: &GatewayState,
) -> Result<SessionUser, ApiError> {
    let header =
        authorization(req).ok_or_else(|| ApiError::unauthenticated("Auth token required"))?;
    let token = auth::parse_bearer(header)
        .ok_or_else(|| ApiError::unauthenticated("Auth token invalid"))?;
    state
        .tokens
        .verify(TokenKind::Session, token)
        .ok_or_else(|| ApiError::unauthenticated("Auth token invalid"))
}

pub(crate) fn issue_session(
    state: &GatewayState,
    user: &accounts::Authenticated,
    vars: &std::collections::HashMap<String, String>,
) -> Result<SessionResponse, ApiError> {
    Ok(SessionResponse {
        created: user.created,
        token: state
            .tokens
            .issue(TokenKind::Session, user.user_id, &user.username, vars)?,
        refresh_token: state.tokens.issue(
            TokenKind::Refresh,
            user.user_id,
            &user.username,
            vars,
        )?,
    })
}

/// The query of the authenticate calls: `create` (default true) and `username`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuthQuery {
    create: Option<String>,
    pub(crate) username: Option<String>,
}

impl AuthQuery {
    /// `create`, parsed as grpc-gateway parses booleans; true when left out.
    pub(crate) fn create(&self) -> Result<bool, ApiError> {
        match self.create.as_deref() {
            None | Some("") => Ok(true),
            Some(v) => auth::parse_bool(v).ok_or_else(|| {
                ApiError::invalid_argument("Invalid value for `create`: expected true or false.")
            }),
        }
    }
}

async fn authenticate_device(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    authenticate(IdKind::Device, req, payload, state).await
}

async fn authenticate_custom(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    authenticate(IdKind::Custom, req, payload, state).await
}

async fn authenticate(
    kind: IdKind,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    check_server_key(&req, &state)?;
    let q: AuthQuery = query(&req)?;
    let create = q.create()?;
    let username = auth::validate_username(q.username.as_deref())?;
    let body: AuthenticateBody =
        parse_json(&read_body(&req, payload, state.http.max_auth_body).await?)?;
    let id = auth::validate_id(kind, body.id.as_deref())?;
    let vars = auth::validate_vars(body.vars)?;
    let user = accounts::authenticate(&state.db, kind, &id, username.as_deref(), create)
        .await
        .map_err(|e| match e {
            AccountError::NotFound => ApiError::not_found("User account not found."),
            AccountError::UsernameTaken => ApiError::already_exists("Username is already in use."),
            AccountError::InvalidCredentials => ApiError::unauthenticated("Invalid credentials."),
            AccountError::Db(e) => db_error(e),
        })?;
    state.metrics.auth_done(user.created);
    json(&issue_session(&state, &user, &vars)?)
}

async fn session_refresh(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    check_server_key(&req, &state)?;
    let body: SessionRefreshBody =
        parse_json(&read_body(&req, payload, state.http.max_auth_body).await?)?;
    let token = body.token.unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::invalid_argument("Refresh token is required."));
    }
    let session = state
        .tokens
        .verify(TokenKind::Refresh, &token)
        .ok_or_else(|| ApiError::unauthenticated("Refresh token invalid or expired."))?;
    let vars = match body.vars {
        Some(vars) => auth::validate_vars(Some(vars))?,
        None => session.vars,
    };
    // Rotation, as Nakama does it: the refresh token used here is revoked in the same
    // statement that reads the current username (it may have changed since the token was
    // issued; the account may be gone), so a refresh token refreshes once, on any node.
    let username = state
        .revocations
        .consume_refresh(&session.token_id, session.expires_at, session.user_id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::unauthenticated("Refresh token invalid or expired."))?
        .ok_or_else(|| ApiError::not_found("User account not found."))?;
    let user = accounts::Authenticated {
        user_id: session.user_id,
        username,
        created: false,
    };
    json(&issue_session(&state, &user, &vars)?)
}

/// Who calls an RPC over HTTP: `?http_key=`, `Authorization: Basic base64(<http key>:)`, or a
/// bearer session token — in Nakama's order, with Nakama's messages.
fn rpc_caller(
    req: &HttpRequest,
    http_key: Option<&str>,
    state: &GatewayState,
) -> Result<RpcContext, ApiError> {
    let key_ok =
        |key: &str| auth::constant_time_eq(key.as_bytes(), state.config.http_key.as_bytes());
    if let Some(key) = http_key.filter(|k| !k.is_empty()) {
        return if key_ok(key) {
            Ok(RpcContext::server())
        } else {
            Err(ApiError::unauthenticated("HTTP key invalid"))
        };
    }
    let Some(header) = authorization(req) else {
        return Err(ApiError::unauthenticated("Auth token or HTTP key required"));
    };
    if let Some(key) = auth::parse_basic(header) {
        return if key_ok(&key) {
            Ok(RpcContext::server())
        } else {
            Err(ApiError::unauthenticated("HTTP key invalid"))
        };
    }
    let token = auth::parse_bearer(header)
        .ok_or_else(|| ApiError::unauthenticated("Auth token invalid"))?;
    let user = state
        .tokens
        .verify(TokenKind::Session, token)
        .ok_or_else(|| ApiError::unauthenticated("Auth token invalid"))?;
    Ok(RpcContext {
        user_id: user.user_id,
        username: user.username,
        vars: user.vars,
        http_key: false,
    })
}

async fn rpc(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let params: Vec<(String, String)> = query(&req)?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let caller = rpc_caller(&req, param("http_key"), &state)?;
    let id = path.into_inner();
    if id.is_empty() {
        return Err(ApiError::invalid_argument("RPC ID must be set"));
    }
    if state.rpc.get(&id).is_none() {
        return Err(ApiError::not_found("RPC function not found"));
    }
    let unwrap = param("unwrap").is_some();
    let input = if req.method() == actix_web::http::Method::GET {
        param("payload").unwrap_or("").to_string()
    } else {
        let body = read_body(&req, payload, state.http.max_rpc_body).await?;
        if unwrap || body.is_empty() {
            String::from_utf8(body.to_vec())
                .map_err(|_| ApiError::invalid_argument("Request body must be UTF-8 text."))?
        } else {
            serde_json::from_slice::<String>(&body).map_err(|e| {
                ApiError::invalid_argument(format!(
                    "Request body must be a JSON string holding the payload, e.g. \"{{\\\"key\\\":1}}\" \
                     (or add ?unwrap to send the payload as is): {e}."
                ))
            })?
        }
    };
    let Some(call) = state.rpc.call(&id, caller, input) else {
        return Err(ApiError::not_found("RPC function not found"));
    };
    let started = Instant::now();
    let result = call.await;
    state.metrics.rpc_done(&id, "http", started, &result);
    match result {
        Ok(result) => {
            if unwrap {
                let content_type = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .cloned()
                    .unwrap_or_else(|| HeaderValue::from_static("text/plain"));
                Ok(HttpResponse::Ok()
                    .insert_header((header::CONTENT_TYPE, content_type))
                    .body(result))
            } else {
                json(&RpcResponse {
                    id: &id,
                    payload: &result,
                })
            }
        }
        Err(RpcError { code, message }) => Err(ApiError::new(GrpcCode::from_i32(code), message)),
    }
}
