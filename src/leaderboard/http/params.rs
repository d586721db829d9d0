//! Reading a request: its session, its query parameters as grpc-gateway parses them, the
//! board id of its path.

use actix_web::{web, HttpRequest};
use uuid::Uuid;

use crate::gateway::auth::SessionUser;
use crate::gateway::http::{bearer_user, query};
use crate::gateway::{ApiError, GatewayState};
use crate::leaderboard::messages::Api;

/// The session of `Authorization: Bearer` (the gateway's state verifies its token).
pub(super) fn session(req: &HttpRequest) -> Result<SessionUser, ApiError> {
    let gateway = req
        .app_data::<web::Data<GatewayState>>()
        .ok_or_else(|| ApiError::internal("gateway state is not mounted"))?;
    bearer_user(req, gateway)
}

/// The query parameters, in order (a repeated one is there as often as it is given).
pub(super) fn params(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    query(req)
}

/// The last value of a parameter.
pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An integer query parameter, as grpc-gateway parses it.
pub(super) fn int_param(params: &[(String, String)], name: &str) -> Result<Option<i64>, ApiError> {
    match param(params, name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid_argument(format!(
                "Invalid value for `{name}`: {v:?} is not an integer."
            ))
        }),
    }
}

/// Every `owner_ids` parameter, as owner ids.
pub(super) fn owner_ids(params: &[(String, String)]) -> Result<Vec<Uuid>, ApiError> {
    params
        .iter()
        .filter(|(k, _)| k == "owner_ids")
        .map(|(_, v)| {
            Uuid::parse_str(v)
                .map_err(|_| ApiError::invalid_argument("One or more owner IDs are invalid."))
        })
        .collect()
}

/// The board id of the path (refused when empty, worded per API).
pub(super) fn board_id(id: &str, api: Api) -> Result<String, ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid_argument(match api {
            Api::Leaderboard => "Invalid leaderboard ID.",
            Api::Tournament => "Tournament ID must be provided",
        }));
    }
    Ok(id.to_string())
}
