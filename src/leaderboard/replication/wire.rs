//! The replication channel's wire format: postcard, in an envelope byte that says whether the
//! bytes are LZ4-compressed. Compatibility rule: variants and fields are only ever appended
//! (postcard encodes a variant by its position), never renamed, reordered or removed.
//!
//! Decoding is bounded: a compressed body announcing more than [`MAX_DECODED`] bytes is
//! refused before anything is allocated, and no input makes the decoder panic.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::persistence::leaderboards::BoardRow;

/// The channel's name on the peer link (a wire name: never rename it).
pub const CHANNEL: &str = "leaderboard.sync";

const RAW: u8 = 1;
const LZ4: u8 = 2;

/// Largest body a compressed message may expand to.
pub const MAX_DECODED: usize = 16 << 20;

/// One life of a board on one owner: its row's creation time, then the owner's claim epoch.
/// A later instance supersedes everything an earlier one said (a failover's new owner claims
/// with a higher epoch; a board deleted and created again has a later creation time).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Instance {
    pub create_time: i64,
    pub epoch: i64,
}

/// A record's generation: the owner's epoch, then a counter the owner increases on every
/// change of any record of the board. Never reset by a reset bucket, a delete or a failover,
/// so a replica keeps the newest change whatever order changes arrive in.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Generation {
    pub epoch: i64,
    pub seq: u64,
}

/// A board's definition (every field a read needs, tournament fields included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardDef {
    pub id: String,
    pub sort_order: i32,
    pub operator: i32,
    pub authoritative: bool,
    pub reset_schedule: Option<String>,
    pub metadata: String,
    pub enable_ranks: bool,
    pub category: i32,
    pub title: String,
    pub description: String,
    pub duration: i32,
    pub start_time: i64,
    pub end_time: i64,
    pub max_size: i32,
    pub max_num_score: i32,
    pub join_required: bool,
    pub is_tournament: bool,
    pub create_time: i64,
}

impl From<&BoardRow> for BoardDef {
    fn from(r: &BoardRow) -> BoardDef {
        BoardDef {
            id: r.id.clone(),
            sort_order: r.sort_order,
            operator: r.operator,
            authoritative: r.authoritative,
            reset_schedule: r.reset_schedule.clone(),
            metadata: r.metadata.clone(),
            enable_ranks: r.enable_ranks,
            category: r.category,
            title: r.title.clone(),
            description: r.description.clone(),
            duration: r.duration,
            start_time: r.start_time,
            end_time: r.end_time,
            max_size: r.max_size,
            max_num_score: r.max_num_score,
            join_required: r.join_required,
            is_tournament: r.is_tournament,
            create_time: r.create_time,
        }
    }
}

impl BoardDef {
    pub fn to_row(&self) -> BoardRow {
        let mut row = BoardRow::leaderboard(self.id.clone());
        row.sort_order = self.sort_order;
        row.operator = self.operator;
        row.authoritative = self.authoritative;
        row.reset_schedule = self.reset_schedule.clone();
        row.metadata = self.metadata.clone();
        row.enable_ranks = self.enable_ranks;
        row.category = self.category;
        row.title = self.title.clone();
        row.description = self.description.clone();
        row.duration = self.duration;
        row.start_time = self.start_time;
        row.end_time = self.end_time;
        row.max_size = self.max_size;
        row.max_num_score = self.max_num_score;
        row.join_required = self.join_required;
        row.is_tournament = self.is_tournament;
        row.create_time = self.create_time;
        row
    }

    /// Bytes this definition takes on the wire, roughly (for cutting batches).
    pub fn approx_bytes(&self) -> usize {
        96 + self.id.len()
            + self.metadata.len()
            + self.title.len()
            + self.description.len()
            + self.reset_schedule.as_ref().map_or(0, String::len)
    }
}

/// One record with everything a read answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordData {
    pub owner: Uuid,
    pub score: i64,
    pub subscore: i64,
    pub num_score: u32,
    pub max_num_score: Option<u32>,
    pub metadata: String,
    pub create_time: i64,
    pub update_time: i64,
    pub username: Option<String>,
    pub generation: Generation,
}

impl RecordData {
    pub fn approx_bytes(&self) -> usize {
        80 + self.metadata.len() + self.username.as_ref().map_or(0, String::len)
    }
}

/// One change of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// The owner loaded the board (created, or taken over): `records` records were in memory
    /// then (a replica with an older instance needs a snapshot unless it is 0).
    BoardCreated {
        def: BoardDef,
        instance: Instance,
        records: u64,
    },
    /// The board was deleted: replicas of `instance` or older drop it.
    BoardDeleted { board: String, instance: Instance },
    RankUpdated {
        board: String,
        expiry: i64,
        /// The board's sort order (Nakama's number).
        order: u8,
        record: RecordData,
    },
    RankDeleted {
        board: String,
        expiry: i64,
        owner: Uuid,
        generation: Generation,
    },
}

impl Change {
    pub fn board(&self) -> &str {
        match self {
            Change::BoardCreated { def, .. } => &def.id,
            Change::BoardDeleted { board, .. }
            | Change::RankUpdated { board, .. }
            | Change::RankDeleted { board, .. } => board,
        }
    }

    /// The record a rank change is about: later changes of it supersede earlier ones.
    pub fn record_key(&self) -> Option<(&str, i64, Uuid)> {
        match self {
            Change::RankUpdated {
                board,
                expiry,
                record,
                ..
            } => Some((board, *expiry, record.owner)),
            Change::RankDeleted {
                board,
                expiry,
                owner,
                ..
            } => Some((board, *expiry, *owner)),
            _ => None,
        }
    }

    pub fn approx_bytes(&self) -> usize {
        match self {
            Change::BoardCreated { def, .. } => 32 + def.approx_bytes(),
            Change::BoardDeleted { board, .. } => 32 + board.len(),
            Change::RankUpdated { board, record, .. } => 16 + board.len() + record.approx_bytes(),
            Change::RankDeleted { board, .. } => 48 + board.len(),
        }
    }
}

/// A change with its place in its origin's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// One more than the origin's previous entry.
    pub version: u64,
    /// When the owner committed it (unix ms, the origin's clock): replication lag is measured
    /// from here.
    pub committed_ms: i64,
    pub change: Change,
}

/// Entries `from..=to` of an origin's log (some versions may be missing from `entries`: a
/// later change of the same record replaced them). `from == to + 1` with no entries says
/// "my log is at `to`" (sent when idle, so a replica notices a gap at the tail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub origin: String,
    pub incarnation: u64,
    pub from: u64,
    pub to: u64,
    pub entries: Vec<Entry>,
}

/// Where a snapshot resumes: after (expiry, score, subscore, owner).
pub type SnapshotCursor = (i64, i64, i64, Uuid);

/// What a node asks an origin on the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The origin pushes entries (answered with [`Response::Ack`]).
    Batch(Batch),
    /// Entries after `since` from the origin's buffer of recent entries.
    CatchUp {
        incarnation: u64,
        since: u64,
        max_entries: u32,
    },
    /// The boards the origin owns (for a full resync).
    Boards,
    /// A page of a board's records, every bucket in turn.
    Snapshot {
        board: String,
        instance: Instance,
        after: Option<SnapshotCursor>,
        max_records: u32,
    },
}

/// A page of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub incarnation: u64,
    /// The origin's log version when the page was read.
    pub version: u64,
    pub def: BoardDef,
    pub instance: Instance,
    /// Every bucket the owner holds.
    pub buckets: Vec<i64>,
    pub records: Vec<(i64, RecordData)>,
    /// Where the next page starts; `None`: this was the last.
    pub next: Option<SnapshotCursor>,
}

/// The origin's answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Ack,
    /// Entries after the asked version; `head` is the origin's latest version.
    Entries {
        head: u64,
        batch: Batch,
    },
    /// The buffer no longer holds the entries asked for: take a full snapshot.
    Evicted {
        incarnation: u64,
        head: u64,
    },
    Boards {
        incarnation: u64,
        version: u64,
        boards: Vec<(String, Instance)>,
    },
    /// Boxed: a page is large (postcard encodes a box as its content).
    Page(Box<Page>),
    /// The origin does not hold that board instance (any more).
    Refused(String),
}

/// Encodes a message, LZ4-compressed when `compress`.
pub fn encode<T: Serialize>(value: &T, compress: bool) -> Vec<u8> {
    let raw = postcard::to_allocvec(value).unwrap_or_default();
    if compress {
        let mut out = vec![LZ4];
        out.extend_from_slice(&lz4_flex::block::compress_prepend_size(&raw));
        out
    } else {
        let mut out = Vec::with_capacity(raw.len() + 1);
        out.push(RAW);
        out.extend_from_slice(&raw);
        out
    }
}

/// Decodes a message of either envelope.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (&kind, body) = bytes.split_first().ok_or("empty message")?;
    let owned;
    let raw = match kind {
        RAW => body,
        LZ4 => {
            let size = body
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or("truncated compressed message")?;
            if size > MAX_DECODED {
                return Err(format!("compressed message expands to {size} bytes"));
            }
            owned = lz4_flex::block::decompress_size_prepended(body).map_err(|e| e.to_string())?;
            &owned[..]
        }
        other => return Err(format!("unknown envelope {other}")),
    };
    let (value, rest) = postcard::take_from_bytes::<T>(raw).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes", rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Request {
        let record = RecordData {
            owner: Uuid::from_u128(7),
            score: 10,
            subscore: -3,
            num_score: 2,
            max_num_score: Some(5),
            metadata: "{\"a\":1}".into(),
            create_time: 1,
            update_time: 2,
            username: Some("u".into()),
            generation: Generation { epoch: 3, seq: 9 },
        };
        let entries = (1..=50)
            .map(|v| Entry {
                version: v,
                committed_ms: 1_700_000_000_000,
                change: Change::RankUpdated {
                    board: "weekly".into(),
                    expiry: 0,
                    order: 1,
                    record: record.clone(),
                },
            })
            .collect();
        Request::Batch(Batch {
            origin: "node-1".into(),
            incarnation: 42,
            from: 1,
            to: 50,
            entries,
        })
    }

    #[test]
    fn round_trips_with_and_without_compression() {
        let req = sample();
        let raw = encode(&req, false);
        let lz4 = encode(&req, true);
        assert!(lz4.len() < raw.len() / 2, "{} vs {}", lz4.len(), raw.len());
        assert_eq!(decode::<Request>(&raw).unwrap(), req);
        assert_eq!(decode::<Request>(&lz4).unwrap(), req);
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let mut bomb = vec![LZ4];
        bomb.extend_from_slice(&(MAX_DECODED as u32 + 1).to_le_bytes());
        bomb.extend_from_slice(&[0; 16]);
        assert!(decode::<Request>(&bomb).is_err());
        assert!(decode::<Request>(&[]).is_err());
        assert!(decode::<Request>(&[9, 1, 2]).is_err());
        let mut trailing = encode(&Request::Boards, false);
        trailing.push(0);
        assert!(decode::<Request>(&trailing).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<Request>(&bytes);
            let _ = decode::<Response>(&bytes);
            let mut lz = vec![LZ4];
            lz.extend_from_slice(&bytes);
            let _ = decode::<Request>(&lz);
        }
    }
}
