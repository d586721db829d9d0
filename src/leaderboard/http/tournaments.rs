//! Listing tournaments (`GET /v2/tournament`) with Nakama's filters, order and cursor; each
//! with its live size from its actor.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::answers;
use super::params::{int_param, param, params, session};
use super::HttpState;
use crate::gateway::http::{db_error, json};
use crate::gateway::ApiError;
use crate::leaderboard::board::Board;
use crate::leaderboard::messages::{BoardInfo, GetInfo};
use crate::leaderboard::service;
use crate::persistence::leaderboards;
use crate::protocol::leaderboard::TournamentList;

/// `GET /v2/tournament`: Nakama's filters (`category_start`/`category_end` 0–127,
/// `start_time`, `end_time`: by default current and future tournaments), its order (start
/// time, end time descending, category, id) and an id cursor.
pub(super) async fn list_tournaments(
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
        .map_err(db_error)?;
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
    json(&TournamentList {
        tournaments: infos.iter().map(|t| answers::tournament(t, now)).collect(),
        cursor: next,
    })
}
