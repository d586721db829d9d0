//! Writing records: a score (`POST`/`PUT`), deleting one's own record (`DELETE`), joining a
//! tournament. Each goes to the board's actor on its owner node and is answered once the batch
//! holding it is committed.

use actix_web::{web, HttpRequest, HttpResponse};

use super::answers;
use super::errors::{api_error, Call};
use super::params::{board_id, session};
use super::HttpState;
use crate::gateway::http::{empty_object, json, read_body};
use crate::gateway::ApiError;
use crate::leaderboard::messages::{Api, DeleteRecord, Join, Write};
use crate::leaderboard::service;
use crate::protocol::leaderboard::parse_write_body;
use crate::request::Caller;

/// Largest write body (Nakama's default request size limit is larger; records are small).
const MAX_WRITE_BODY: usize = 64 * 1024;

async fn write(
    api: Api,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    let user = session(&req)?;
    let id = board_id(&path.into_inner(), api)?;
    let body = parse_write_body(&read_body(&req, payload, MAX_WRITE_BODY).await?)
        .map_err(ApiError::invalid_argument)?;
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
    json(&answers::record(&record))
}

pub(super) async fn write_leaderboard(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    write(Api::Leaderboard, req, path, payload, state).await
}

pub(super) async fn write_tournament(
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

pub(super) async fn delete_leaderboard(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    delete(Api::Leaderboard, req, path, state).await
}

pub(super) async fn delete_tournament(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    delete(Api::Tournament, req, path, state).await
}

pub(super) async fn join_tournament(
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
