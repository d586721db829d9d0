//! Loading a board: claim its `leaderboard` row (bumping `owner_epoch`), read the definition,
//! load the records of the current bucket and build its rank cache (off the arbiter) and, when
//! the board is replicated, this node's replica of it.

use std::collections::HashMap;

use uuid::Uuid;

use super::{unix_now, Entry, LeaderboardDeps};
use crate::leaderboard::board::Board;
use crate::leaderboard::paging;
use crate::leaderboard::rank_cache::{RankCache, RankCaches};
use crate::leaderboard::reads;
use crate::leaderboard::replication::replica::BoardReplica;
use crate::leaderboard::rules::Record;
use crate::persistence::claims::{self, EntityId, EntityTable};
use crate::persistence::leaderboards::{self, RecordRow};
use crate::persistence::DbError;

/// A loaded board.
pub(super) struct Loaded {
    pub(super) board: Board,
    pub(super) epoch: i64,
    pub(super) expiry: i64,
    pub(super) records: HashMap<Uuid, Entry>,
    /// The bucket's rank cache (`None` when the cache is off for the board).
    pub(super) cache: Option<RankCache>,
    /// This node's replica of the board (when it is replicated).
    pub(super) replica: Option<BoardReplica>,
    pub(super) load_ms: u64,
    pub(super) build_ms: u64,
}

pub(super) enum LoadError {
    Missing,
    Failed,
}

pub(super) fn entry_from_row(board: &Board, r: RecordRow) -> (Uuid, Entry) {
    let rec = Record {
        score: r.score,
        subscore: r.subscore,
        num_score: r.num_score.max(0) as u32,
        max_num_score: board.is_tournament().then(|| r.max_num_score.max(0) as u32),
        metadata: r.metadata,
        create_time: r.create_time,
        update_time: r.update_time,
    };
    (
        r.owner,
        Entry {
            rec,
            username: r.username,
        },
    )
}

/// Claims the board's row and loads its current bucket.
pub(super) async fn load(deps: LeaderboardDeps, id: String) -> Result<Loaded, LoadError> {
    let failed = |what: &str, e: DbError| {
        tracing::warn!(board = %id, error = %e, "leaderboard: {what} failed");
        LoadError::Failed
    };
    let key = EntityId::Text(id.clone());
    let epoch = match claims::claim(&deps.db, EntityTable::Leaderboard, &key, &deps.node_id).await {
        Ok(epoch) => epoch,
        Err(DbError::NotFound(_)) => return Err(LoadError::Missing),
        Err(e) => return Err(failed("claim", e)),
    };
    let row = match leaderboards::get_board(&deps.db, &id).await {
        Ok(Some(row)) => row,
        Ok(None) => return Err(LoadError::Missing),
        Err(e) => return Err(failed("reading the board", e)),
    };
    let board = Board::from_row(row).map_err(|e| {
        tracing::error!(board = %id, error = %e, "leaderboard row cannot be used");
        LoadError::Failed
    })?;
    let expiry = board.current_expiry(unix_now());
    let started = std::time::Instant::now();
    let rows = leaderboards::load_records(&deps.db, &id, expiry)
        .await
        .map_err(|e| failed("loading records", e))?;
    let load_ms = started.elapsed().as_millis() as u64;
    // Building a large bucket takes a while: off the arbiter, which other actors share.
    let cached = !RankCaches::new(deps.blacklist.as_ref().clone()).is_blacklisted(&id);
    let started = std::time::Instant::now();
    let sync = deps.sync.clone();
    let (board, records, cache, replica) = tokio::task::spawn_blocking(move || {
        let (board, records, cache) = build_bucket(board, rows, cached);
        let replica = sync.as_ref().and_then(|s| {
            let all = records
                .iter()
                .map(|(o, e)| (expiry, *o, &e.rec, e.username.as_deref()));
            s.prepare(&board, epoch, all)
        });
        (board, records, cache, replica)
    })
    .await
    .map_err(|e| {
        tracing::error!(board = %id, error = %e, "leaderboard: building the bucket failed");
        LoadError::Failed
    })?;
    Ok(Loaded {
        board,
        epoch,
        expiry,
        records,
        cache,
        replica,
        load_ms,
        build_ms: started.elapsed().as_millis() as u64,
    })
}

/// The records map and (when `cached`) the rank cache of a loaded bucket.
fn build_bucket(
    board: Board,
    rows: Vec<RecordRow>,
    cached: bool,
) -> (Board, HashMap<Uuid, Entry>, Option<RankCache>) {
    let order = board.order;
    let mut records = HashMap::with_capacity(rows.len());
    let mut entries = Vec::with_capacity(if cached { rows.len() } else { 0 });
    for r in rows {
        let (owner, entry) = entry_from_row(&board, r);
        if cached {
            entries.push(reads::rank_entry(owner, &entry.rec));
        }
        records.insert(owner, entry);
    }
    let cache = cached.then(|| {
        entries
            .sort_unstable_by(|a, b| paging::compare(order, paging::key_of(a), paging::key_of(b)));
        RankCache::from_entries(order, entries)
    });
    (board, records, cache)
}
