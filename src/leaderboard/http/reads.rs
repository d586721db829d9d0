//! Reading records: a page and/or owners' records (`GET /v2/{leaderboard,tournament}/{id}`),
//! and the records around an owner (`…/{id}/owner/{owner_id}`), with Nakama's limits and
//! defaults. Answered by this node's replica when it holds the board, else by the owner.

use actix_web::{web, HttpRequest, HttpResponse};
use uuid::Uuid;

use super::answers;
use super::errors::{api_error, Call};
use super::params::{board_id, int_param, owner_ids, param, params, session};
use super::HttpState;
use crate::gateway::http::json;
use crate::gateway::ApiError;
use crate::leaderboard::messages::{Api, AroundOwner, List, RecordList};
use crate::leaderboard::service;

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
    if msg.owner_ids.is_empty() && msg.cursor.is_none() && msg.expiry.is_none() {
        let serialize = |list: &RecordList| {
            serde_json::to_vec(&answers::record_list(list)).map(web::Bytes::from)
        };
        let body = service::read_top(&state.router, id, msg, serialize)
            .await
            .map_err(|e| api_error(e, Call::Read))?
            .map_err(ApiError::internal)?;
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(body));
    }
    let list = service::read(&state.router, id, msg)
        .await
        .map_err(|e| api_error(e, Call::Read))?;
    json(&answers::record_list(&list))
}

pub(super) async fn list_leaderboard(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    list(Api::Leaderboard, req, path, state).await
}

pub(super) async fn list_tournament(
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
    json(&answers::record_list(&list))
}

pub(super) async fn around_leaderboard(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    around(Api::Leaderboard, req, path, state).await
}

pub(super) async fn around_tournament(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    around(Api::Tournament, req, path, state).await
}
