//! Reads forwarded to a board's owner in parts, so that no answer depends on fitting one peer
//! frame (1 MiB): the owner answers a [`ReadPart`] with at most about [`PART_BYTES`] of
//! records ([`trim`]) and says what is left; the asking node ([`fetch`]) asks for the rest of
//! the page from a cursor after the last record it got, and for the owners' records it did not
//! get, and assembles the answer the owner would have given in one piece.
//!
//! A page assembled from parts is what one request gives as long as the records it spans do
//! not change meanwhile; when they do, the keyset cursors make the parts neither skip nor
//! repeat a record (as a client paging through the board would see it).

use uuid::Uuid;

use super::cursor::Cursor;
use super::messages::{
    LeaderboardError, List, PartRead, ReadPart, ReadPartAnswer, RecordList, RecordView,
};
use super::rank_cache::SortOrder;
use super::reads;
use super::service;
use crate::routing::Router;

/// Bytes of records in one part (half a peer frame: the envelope and the other fields fit in
/// the rest). A part always carries at least one record of the page and one owner's record
/// when any is left, so a single record larger than this still travels alone.
pub const PART_BYTES: u32 = 512 * 1024;

/// Most records a part after the first asks for.
const MAX_ASK: u32 = 10_000;

/// Most parts one read takes (a page of 1 000 records of 64 KiB each takes 126).
const MAX_PARTS: usize = 4096;

/// An upper bound of a record's size in the peer encoding (postcard: strings are their bytes
/// plus a length, numbers at most 10 bytes each, the owner id 16 or 37 bytes).
pub fn record_bytes(r: &RecordView) -> usize {
    128 + r.leaderboard_id.len() + r.username.as_deref().map_or(0, str::len) + r.metadata.len()
}

/// Cuts `list` (the owner's whole answer) to about `max_bytes`: owners' records first, then the
/// page. `expiry` is the bucket the page was read from (for the cursor resuming it).
pub fn trim(mut list: RecordList, expiry: i64, max_bytes: u32, descending: bool) -> ReadPartAnswer {
    let max = max_bytes as usize;
    let mut used = 0usize;
    let keep = |v: &[RecordView], used: &mut usize| -> usize {
        let mut n = 0;
        for r in v {
            let size = record_bytes(r);
            if n > 0 && *used + size > max {
                break;
            }
            *used += size;
            n += 1;
        }
        n
    };
    let owners = keep(&list.owner_records, &mut used);
    let owners_left: Vec<Uuid> = list
        .owner_records
        .split_off(owners)
        .into_iter()
        .map(|r| r.owner_id)
        .collect();
    let records = keep(&list.records, &mut used);
    let records_left = list.records.len() - records;
    let mut ranks_left = Vec::new();
    if records_left > 0 {
        ranks_left = list.records[records..].iter().map(|r| r.rank).collect();
        list.records.truncate(records);
        let last = list
            .records
            .last()
            .expect("a part keeps at least one record");
        list.next_cursor = Some(
            Cursor {
                is_next: true,
                board: last.leaderboard_id.clone(),
                expiry,
                score: last.score,
                subscore: last.subscore,
                owner: last.owner_id,
                rank: last.rank,
            }
            .encode(),
        );
    }
    ReadPartAnswer {
        list,
        records_left: records_left as u32,
        ranks_left,
        owners_left,
        descending,
    }
}

/// The bucket a read means on the owner's board (for [`trim`]).
pub fn bucket_of(board: &super::board::Board, read: &PartRead, now: i64) -> i64 {
    let expiry = match read {
        PartRead::List(l) => l.expiry,
        PartRead::Around(a) => a.expiry,
    };
    reads::read_bucket(board, expiry, now).unwrap_or(0)
}

/// Asks board `id`'s owner for `read` in parts of at most [`PART_BYTES`] and assembles them.
pub async fn fetch(
    router: &Router,
    id: &str,
    read: PartRead,
) -> Result<RecordList, LeaderboardError> {
    fetch_with(router, id, read, PART_BYTES).await
}

/// [`fetch`] with parts of `max_bytes`.
pub async fn fetch_with(
    router: &Router,
    id: &str,
    read: PartRead,
    max_bytes: u32,
) -> Result<RecordList, LeaderboardError> {
    let (api, expiry) = match &read {
        PartRead::List(l) => (l.api, l.expiry),
        PartRead::Around(a) => (a.api, a.expiry),
    };
    let part = |read: PartRead| ReadPart { read, max_bytes };
    let first: ReadPartAnswer = service::send(router, id.to_string(), part(read), true).await?;
    let order = if first.descending {
        SortOrder::Descending
    } else {
        SortOrder::Ascending
    };
    // Each part after the first asks for at most twice the records the last part carried, so
    // the owner reads little more than what it sends.
    let mut ask = (first.list.records.len() as u32).max(1) * 2;
    let mut out = first.list;
    let mut records_left = first.records_left;
    // The rest of the page keeps the ranks of the owner's whole answer.
    let mut ranks = first.ranks_left.into_iter();
    let mut paged = false;
    let mut owners_left = first.owners_left;
    let mut owner_parts = 1;
    for _ in 0..MAX_PARTS {
        if records_left == 0 && owners_left.is_empty() {
            break;
        }
        let paging = records_left > 0;
        let next = List {
            api,
            owner_ids: std::mem::take(&mut owners_left),
            limit: paging.then_some(records_left.min(ask)),
            cursor: if paging {
                out.next_cursor.clone()
            } else {
                None
            },
            expiry,
        };
        let asked_owners = !next.owner_ids.is_empty();
        let got: ReadPartAnswer =
            service::send(router, id.to_string(), part(PartRead::List(next)), true).await?;
        if paging {
            let n = got.list.records.len() as u32;
            out.next_cursor = got.list.next_cursor;
            if n == 0 || (got.records_left == 0 && out.next_cursor.is_none()) {
                // The board ends here (records went meanwhile): so does the page.
                records_left = 0;
            } else {
                records_left = records_left.saturating_sub(n);
                ask = n.saturating_mul(2).clamp(1, MAX_ASK);
            }
            out.records
                .extend(got.list.records.into_iter().map(|mut r| {
                    r.rank = ranks.next().unwrap_or(r.rank);
                    r
                }));
            out.rank_count = got.list.rank_count;
            paged = true;
        }
        if asked_owners {
            owner_parts += 1;
            out.owner_records.extend(got.list.owner_records);
        }
        owners_left = got.owners_left;
    }
    if records_left > 0 || !owners_left.is_empty() {
        tracing::warn!(board = %id, "a read in parts took too many parts");
        return Err(LeaderboardError::Unavailable);
    }
    if owner_parts > 1 {
        reads::sort_views(order, &mut out.owner_records);
    }
    if paged {
        out.next_cursor = out.next_cursor.map(|c| with_rank(c, out.records.last()));
    }
    Ok(out)
}

/// The page's next cursor with the rank its last record has in the assembled answer (the
/// owner makes it at its last record, with that record's rank).
fn with_rank(cursor: String, last: Option<&RecordView>) -> String {
    match (Cursor::decode(&cursor), last) {
        (Some(mut c), Some(last)) if c.owner == last.owner_id && c.rank != last.rank => {
            c.rank = last.rank;
            c.encode()
        }
        _ => cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64, pad: usize) -> RecordView {
        RecordView {
            leaderboard_id: "b".into(),
            owner_id: Uuid::from_u128(u128::from(i)),
            username: Some(format!("u{i}")),
            score: 1000 - i as i64,
            subscore: 0,
            num_score: 1,
            max_num_score: 0,
            metadata: "x".repeat(pad),
            create_time: 0,
            update_time: 0,
            expiry_time: 0,
            rank: i,
        }
    }

    #[test]
    fn a_part_fits_and_resumes_after_its_last_record() {
        let list = RecordList {
            records: (1..=10).map(|i| rec(i, 1000)).collect(),
            owner_records: (1..=3).map(|i| rec(i, 1000)).collect(),
            next_cursor: Some("whole".into()),
            prev_cursor: None,
            rank_count: 10,
        };
        let part = trim(list.clone(), 0, 5000, true);
        assert_eq!(part.list.owner_records.len(), 3);
        assert!(part.owners_left.is_empty());
        assert_eq!(part.list.records.len(), 1);
        assert_eq!(part.records_left, 9);
        let c = Cursor::decode(part.list.next_cursor.as_deref().unwrap()).unwrap();
        assert!(c.is_next);
        assert_eq!((c.owner, c.rank, c.score), (Uuid::from_u128(1), 1, 999));
        // Too small for anything: still one owner's record and one record of the page.
        let part = trim(list.clone(), 0, 10, true);
        assert_eq!(part.list.owner_records.len(), 1);
        assert_eq!(part.owners_left.len(), 2);
        assert_eq!(part.list.records.len(), 1);
        // Large enough: the whole answer, untouched.
        let part = trim(list.clone(), 0, 1 << 20, true);
        assert_eq!(part.list, list);
        assert_eq!((part.records_left, part.owners_left.len()), (0, 0));
    }
}
