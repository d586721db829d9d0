//! Reads of a board's buckets in memory, shared by the owner's actor and every node's replica
//! (`replication`), so both answer exactly alike: pages with cursors, records of owners,
//! records around an owner, the board's info. Pure: no actor, no SQL.
//!
//! A read that memory cannot answer (rank cache off, a bucket not held) is planned as
//! [`Plan::Database`]: the actor then asks the database, a replica hands the read to the owner.

use std::collections::HashSet;

use uuid::Uuid;

use super::board::Board;
use super::cursor::Cursor;
use super::messages::{
    Api, AroundOwner, BoardInfo, LeaderboardError, List, RecordList, RecordView,
};
use super::paging::{self, From as PageFrom};
use super::rank_cache::{RankCache, RankEntry, SortOrder};
use super::rules::Record;

/// The buckets of one board as a read sees them.
pub trait Buckets {
    /// Whether the board's rank cache is on (else every read goes to the database).
    fn cached(&self) -> bool;
    fn has_bucket(&self, expiry: i64) -> bool;
    fn cache(&self, expiry: i64) -> Option<&RankCache>;
    fn record(&self, expiry: i64, owner: Uuid) -> Option<(&Record, Option<&str>)>;
    /// Records held in the bucket.
    fn bucket_len(&self, expiry: i64) -> u64;
}

/// How a read is answered.
#[derive(Debug)]
pub enum Plan<T> {
    Done(Result<T, LeaderboardError>),
    /// Not in memory: read bucket `expiry` from the database (a page from `cursor` when there
    /// is one; for [`around`] without a cursor, the haystack).
    Database {
        expiry: i64,
        cursor: Option<Cursor>,
    },
}

/// Whether the board serves `api` (a tournament only through the tournament API).
pub fn check_api(board: &Board, api: Api) -> Result<(), LeaderboardError> {
    if api == Api::Tournament && !board.is_tournament() {
        return Err(LeaderboardError::NotFound(api));
    }
    Ok(())
}

/// The bucket a read means: the requested expiry, or the current one. `None` when the current
/// period has already expired (a finished tournament period): nothing to list.
pub fn read_bucket(board: &Board, expiry: Option<i64>, now: i64) -> Option<i64> {
    match expiry {
        Some(e) if e != 0 => Some(e),
        _ => {
            let e = board.current_expiry(now);
            (!(board.is_tournament() && e != 0 && e <= now)).then_some(e)
        }
    }
}

/// Whether a bucket can be read from memory.
pub fn in_memory(board: &Board, b: &impl Buckets, expiry: i64, now: i64) -> bool {
    b.cached() && (b.has_bucket(expiry) || expiry == board.current_expiry(now))
}

fn decode_cursor(board: &Board, s: &str, expiry: i64) -> Result<Cursor, LeaderboardError> {
    match Cursor::decode(s) {
        Some(c) if c.board == board.row.id && c.expiry == expiry => Ok(c),
        _ => Err(LeaderboardError::InvalidCursor),
    }
}

fn cursor_str(board: &Board, expiry: i64, is_next: bool, at: (u64, RankEntry)) -> String {
    Cursor {
        is_next,
        board: board.row.id.clone(),
        expiry,
        score: at.1.score,
        subscore: at.1.subscore,
        owner: at.1.owner,
        rank: at.0,
    }
    .encode()
}

/// `List`: a page and/or the records of owners.
pub fn list(board: &Board, b: &impl Buckets, msg: &List, now: i64) -> Plan<RecordList> {
    if let Err(e) = check_api(board, msg.api) {
        return Plan::Done(Err(e));
    }
    if msg.api == Api::Tournament && msg.expiry.unwrap_or(0) == 0 && board.ended(now) {
        return Plan::Done(Err(LeaderboardError::Ended));
    }
    let Some(expiry) = read_bucket(board, msg.expiry, now) else {
        return Plan::Done(Ok(RecordList::default()));
    };
    let cursor = match msg.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(s) => match decode_cursor(board, s, expiry) {
            Ok(c) => Some(c),
            Err(e) => return Plan::Done(Err(e)),
        },
    };
    if !in_memory(board, b, expiry, now) {
        return Plan::Database { expiry, cursor };
    }
    Plan::Done(Ok(list_memory(
        board,
        b,
        expiry,
        msg.limit,
        cursor.as_ref(),
        &msg.owner_ids,
    )))
}

/// `AroundOwner`: Nakama's haystack, or with a cursor a plain page.
pub fn around(board: &Board, b: &impl Buckets, msg: &AroundOwner, now: i64) -> Plan<RecordList> {
    if let Err(e) = check_api(board, msg.api) {
        return Plan::Done(Err(e));
    }
    let Some(expiry) = read_bucket(board, msg.expiry, now) else {
        return Plan::Done(Ok(RecordList::default()));
    };
    let memory = in_memory(board, b, expiry, now);
    if let Some(s) = msg.cursor.as_deref().filter(|c| !c.is_empty()) {
        let cursor = match decode_cursor(board, s, expiry) {
            Ok(c) => c,
            Err(e) => return Plan::Done(Err(e)),
        };
        if !memory {
            return Plan::Database {
                expiry,
                cursor: Some(cursor),
            };
        }
        let list = list_memory(board, b, expiry, Some(msg.limit), Some(&cursor), &[]);
        return Plan::Done(Ok(list));
    }
    if !memory {
        return Plan::Database {
            expiry,
            cursor: None,
        };
    }
    Plan::Done(Ok(around_memory(board, b, expiry, msg.owner, msg.limit)))
}

/// `GetInfo`: the definition with the current bucket's size.
pub fn info(board: &Board, b: &impl Buckets, now: i64) -> BoardInfo {
    board.info(now, b.bucket_len(board.current_expiry(now)), b.cached())
}

/// The owner's rank as Nakama reports it outside page listings: 0 when ranks are disabled or
/// the rank cache is off.
pub fn owner_rank(board: &Board, b: &impl Buckets, expiry: i64, owner: Uuid) -> u64 {
    if !board.row.enable_ranks {
        return 0;
    }
    b.cache(expiry).and_then(|c| c.rank_of(owner)).unwrap_or(0)
}

fn view_of(
    board: &Board,
    b: &impl Buckets,
    expiry: i64,
    owner: Uuid,
    rank: u64,
) -> Option<RecordView> {
    let (rec, username) = b.record(expiry, owner)?;
    Some(view(board, expiry, owner, rec, username, rank))
}

/// A page (and owners' records) of an in-memory bucket.
pub fn list_memory(
    board: &Board,
    b: &impl Buckets,
    expiry: i64,
    limit: Option<u32>,
    cursor: Option<&Cursor>,
    owners: &[Uuid],
) -> RecordList {
    let empty = RankCache::new(board.order);
    let cache = b.cache(expiry).unwrap_or(&empty);
    let mut list = RecordList::default();
    if let Some(limit) = limit {
        let from = match cursor {
            None => PageFrom::Top,
            Some(c) if c.is_next => PageFrom::After((c.score, c.subscore, c.owner)),
            Some(c) => PageFrom::Before((c.score, c.subscore, c.owner)),
        };
        let page = paging::page(cache, from, limit as usize);
        list.records = page
            .entries
            .iter()
            .filter_map(|&(rank, e)| view_of(board, b, expiry, e.owner, rank))
            .collect();
        list.next_cursor = page.next.map(|at| cursor_str(board, expiry, true, at));
        list.prev_cursor = page.prev.map(|at| cursor_str(board, expiry, false, at));
    }
    list.owner_records = owner_records(board, b, expiry, owners);
    if board.row.enable_ranks {
        list.rank_count = cache.len() as u64;
    }
    list
}

fn owner_records(board: &Board, b: &impl Buckets, expiry: i64, owners: &[Uuid]) -> Vec<RecordView> {
    let mut seen = HashSet::new();
    let mut out: Vec<RecordView> = owners
        .iter()
        .filter(|o| seen.insert(**o))
        .filter_map(|&o| {
            let rank = owner_rank(board, b, expiry, o);
            view_of(board, b, expiry, o, rank)
        })
        .collect();
    sort_views(board.order, &mut out);
    out
}

fn around_memory(
    board: &Board,
    b: &impl Buckets,
    expiry: i64,
    owner: Uuid,
    limit: u32,
) -> RecordList {
    let Some(cache) = b.cache(expiry) else {
        return RecordList::default();
    };
    let Some(rank) = cache.rank_of(owner) else {
        return RecordList::default();
    };
    let n = cache.len() as u64;
    let (first, last, set_prev, set_next) = paging::haystack(n, rank, u64::from(limit));
    let entries = cache.range(first, (last - first + 1) as usize);
    let ranks = board.row.enable_ranks;
    let records: Vec<RecordView> = entries
        .iter()
        .filter_map(|&(r, e)| view_of(board, b, expiry, e.owner, if ranks { r } else { 0 }))
        .collect();
    RecordList {
        prev_cursor: set_prev
            .then(|| {
                entries
                    .first()
                    .map(|&at| cursor_str(board, expiry, false, at))
            })
            .flatten(),
        next_cursor: set_next
            .then(|| {
                entries
                    .last()
                    .map(|&at| cursor_str(board, expiry, true, at))
            })
            .flatten(),
        records,
        owner_records: Vec::new(),
        rank_count: if ranks { n } else { 0 },
    }
}

/// One record as clients see it.
pub fn view(
    board: &Board,
    expiry: i64,
    owner: Uuid,
    rec: &Record,
    username: Option<&str>,
    rank: u64,
) -> RecordView {
    RecordView {
        leaderboard_id: board.row.id.clone(),
        owner_id: owner,
        username: username.map(str::to_string),
        score: rec.score,
        subscore: rec.subscore,
        num_score: rec.num_score,
        max_num_score: board.record_max_num_score(rec.max_num_score),
        metadata: rec.metadata.clone(),
        create_time: rec.create_time,
        update_time: rec.update_time,
        expiry_time: expiry,
        rank,
    }
}

/// Records in board order.
pub fn sort_views(order: SortOrder, v: &mut [RecordView]) {
    v.sort_by(|a, b| {
        paging::compare(
            order,
            (a.score, a.subscore, a.owner_id),
            (b.score, b.subscore, b.owner_id),
        )
    });
}

/// The rank cache entry of a record (its generation is Nakama's `num_score`).
pub fn rank_entry(owner: Uuid, rec: &Record) -> RankEntry {
    RankEntry {
        owner,
        score: rec.score,
        subscore: rec.subscore,
        generation: rec.num_score,
    }
}
