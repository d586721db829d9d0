//! Reads memory cannot answer — a board whose rank cache is off (config blacklist), a bucket
//! not in memory (a past period asked for with `expiry`) — as Nakama's queries: a keyset page
//! from a cursor (ranks counted from the cursor's), owners' records, and the records around
//! an owner.

use std::sync::Arc;

use uuid::Uuid;

use super::load::entry_from_row;
use crate::leaderboard::board::Board;
use crate::leaderboard::cursor::Cursor;
use crate::leaderboard::messages::{LeaderboardError, RecordList, RecordView};
use crate::leaderboard::paging::Key;
use crate::leaderboard::rank_cache::SortOrder;
use crate::leaderboard::reads;
use crate::persistence::leaderboards::{self, RecordRow};
use crate::persistence::{Db, DbError};

fn view_of_row(board: &Board, r: RecordRow, rank: u64) -> RecordView {
    let expiry = r.expiry;
    let (owner, e) = entry_from_row(board, r);
    reads::view(board, expiry, owner, &e.rec, e.username.as_deref(), rank)
}

/// A read that failed: logged, and answered "try again".
fn read_failed(board: &Board, e: DbError) -> LeaderboardError {
    tracing::warn!(board = %board.row.id, error = %e, "leaderboard read from the database failed");
    LeaderboardError::Unavailable
}

/// The cursor of the page next to record `v` (after it when `is_next`, else before it).
fn cursor_of(board: &Board, expiry: i64, v: &RecordView, is_next: bool) -> String {
    Cursor {
        is_next,
        board: board.row.id.clone(),
        expiry,
        score: v.score,
        subscore: v.subscore,
        owner: v.owner_id,
        rank: v.rank,
    }
    .encode()
}

pub(super) async fn list_database(
    db: Db,
    board: Arc<Board>,
    expiry: i64,
    limit: Option<u32>,
    cursor: Option<Cursor>,
    owners: Vec<Uuid>,
) -> Result<RecordList, LeaderboardError> {
    let unavailable = |e: DbError| read_failed(&board, e);
    let ascending = board.order == SortOrder::Ascending;
    let mut list = RecordList::default();
    if let Some(limit) = limit {
        let after = cursor
            .as_ref()
            .map(|c| ((c.score, c.subscore, c.owner), c.is_next));
        let mut rows = leaderboards::page(
            &db,
            &board.row.id,
            expiry,
            ascending,
            after,
            i64::from(limit) + 1,
        )
        .await
        .map_err(unavailable)?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let base = cursor.as_ref().map_or(0, |c| c.rank);
        let forward = cursor.as_ref().is_none_or(|c| c.is_next);
        let mut views: Vec<RecordView> = rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let rank = if forward {
                    base + i as u64 + 1
                } else {
                    base.saturating_sub(i as u64 + 1)
                };
                view_of_row(&board, r, rank)
            })
            .collect();
        if !forward {
            views.reverse();
        }
        let cursor_at = |v: &RecordView, is_next: bool| cursor_of(&board, expiry, v, is_next);
        if forward {
            list.next_cursor = more
                .then(|| views.last().map(|v| cursor_at(v, true)))
                .flatten();
            list.prev_cursor = cursor
                .is_some()
                .then(|| views.first().map(|v| cursor_at(v, false)))
                .flatten();
        } else {
            list.next_cursor = views.last().map(|v| cursor_at(v, true));
            list.prev_cursor = more
                .then(|| views.first().map(|v| cursor_at(v, false)))
                .flatten();
        }
        list.records = views;
    }
    if !owners.is_empty() {
        let rows = leaderboards::records_of(&db, &board.row.id, expiry, &owners)
            .await
            .map_err(unavailable)?;
        list.owner_records = rows
            .into_iter()
            .map(|r| view_of_row(&board, r, 0))
            .collect();
        reads::sort_views(board.order, &mut list.owner_records);
    }
    Ok(list)
}

pub(super) async fn around_database(
    db: Db,
    board: Arc<Board>,
    expiry: i64,
    owner: Uuid,
    limit: u32,
) -> Result<RecordList, LeaderboardError> {
    let unavailable = |e: DbError| read_failed(&board, e);
    let id = board.row.id.clone();
    let own = leaderboards::records_of(&db, &id, expiry, &[owner])
        .await
        .map_err(unavailable)?;
    let Some(own) = own.into_iter().next() else {
        return Ok(RecordList::default());
    };
    let key: Key = (own.score, own.subscore, own.owner);
    let ascending = board.order == SortOrder::Ascending;
    let limit = u64::from(limit.max(1));
    let mut above = leaderboards::page(
        &db,
        &id,
        expiry,
        ascending,
        Some((key, false)),
        limit as i64 + 1,
    )
    .await
    .map_err(unavailable)?;
    let above_avail = above.len() as u64;
    above.truncate(limit as usize);
    above.reverse();
    let mut second_limit = limit / 2;
    if (above.len() as u64) < second_limit {
        second_limit = limit - above.len() as u64;
    }
    let mut below = leaderboards::page(
        &db,
        &id,
        expiry,
        ascending,
        Some((key, true)),
        second_limit as i64 + 1,
    )
    .await
    .map_err(unavailable)?;
    let set_next = below.len() as u64 > second_limit;
    below.truncate(second_limit as usize);
    let first_len = above.len() as u64;
    let mut all = above;
    all.push(own);
    all.extend(below);
    let num = all.len() as u64;
    let start = if num < limit || first_len < second_limit {
        0
    } else {
        num - limit
    };
    let end = (start + limit).min(num);
    let set_prev = above_avail > limit || start > 0;
    let records: Vec<RecordView> = all
        .into_iter()
        .skip(start as usize)
        .take((end - start) as usize)
        .map(|r| view_of_row(&board, r, 0))
        .collect();
    let cursor_at = |v: &RecordView, is_next: bool| cursor_of(&board, expiry, v, is_next);
    Ok(RecordList {
        prev_cursor: set_prev
            .then(|| records.first().map(|v| cursor_at(v, false)))
            .flatten(),
        next_cursor: set_next
            .then(|| records.last().map(|v| cursor_at(v, true)))
            .flatten(),
        records,
        owner_records: Vec::new(),
        rank_count: 0,
    })
}
