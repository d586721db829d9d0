//! What a [`super::actor::Leaderboard`] answers, and the plain data it answers with.
//!
//! Every message and answer is serde data, so a message can cross the peer link to the node
//! that owns the board. Writes ([`Write`], [`DeleteRecord`], [`Join`]) are answered only after
//! the batch holding them is committed.

use actix::Message;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rules::{ErrorSite, WriteError};
use crate::request::Caller;
use crate::routing::Remote;

/// Which API a request came through: Nakama answers leaderboards and tournaments with their
/// own messages, and a tournament is only written through the tournament API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Api {
    Leaderboard,
    Tournament,
}

/// Submits a score. Answered with the owner's record once committed.
#[derive(Debug, Clone, PartialEq, Eq, Message, Serialize, Deserialize)]
#[rtype(result = "Result<RecordView, LeaderboardError>")]
pub struct Write {
    pub api: Api,
    pub caller: Caller,
    pub owner: Uuid,
    pub username: Option<String>,
    pub score: i64,
    pub subscore: i64,
    /// JSON object text; `None` keeps the old metadata.
    pub metadata: Option<String>,
    /// Nakama's operator override: 0 none, 1 best, 2 set, 3 incr, 4 decr.
    pub operator: i64,
}

/// Deletes the owner's record in the current bucket. Answered once committed.
#[derive(Debug, Clone, PartialEq, Eq, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), LeaderboardError>")]
pub struct DeleteRecord {
    pub api: Api,
    pub caller: Caller,
    pub owner: Uuid,
}

/// Joins a tournament (a record with no score when it requires joining). Answered once
/// committed.
#[derive(Debug, Clone, PartialEq, Eq, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), LeaderboardError>")]
pub struct Join {
    pub owner: Uuid,
    pub username: Option<String>,
}

/// Lists records: a page in rank order (`limit`, `cursor`) and/or the records of
/// `owner_ids`.
#[derive(Debug, Clone, PartialEq, Eq, Message, Serialize, Deserialize)]
#[rtype(result = "Result<RecordList, LeaderboardError>")]
pub struct List {
    pub api: Api,
    pub owner_ids: Vec<Uuid>,
    /// `None`: no page, only the owners' records.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// A bucket's expiry (unix seconds); `None` or 0: the current bucket.
    pub expiry: Option<i64>,
}

/// Records around an owner (Nakama's "haystack").
#[derive(Debug, Clone, PartialEq, Eq, Message, Serialize, Deserialize)]
#[rtype(result = "Result<RecordList, LeaderboardError>")]
pub struct AroundOwner {
    pub api: Api,
    pub owner: Uuid,
    pub limit: u32,
    pub cursor: Option<String>,
    pub expiry: Option<i64>,
}

/// A read forwarded to the owner in parts (`super::parts`): the owner answers it with at most
/// about `max_bytes` of records, and says what is left (the rest of the page, from a cursor
/// after the last record it sent, and the owners whose records it did not send), so that no
/// answer depends on fitting one peer frame.
#[derive(Debug, Clone, PartialEq, Eq, Message, Serialize, Deserialize)]
#[rtype(result = "Result<ReadPartAnswer, LeaderboardError>")]
pub struct ReadPart {
    pub read: PartRead,
    pub max_bytes: u32,
}

/// The read a [`ReadPart`] carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartRead {
    List(List),
    Around(AroundOwner),
}

/// One part of a read answered in parts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadPartAnswer {
    /// The records that fit. When `records_left > 0`, `list.next_cursor` resumes right after
    /// the last record sent (not the whole page's next cursor).
    pub list: RecordList,
    /// Records of the page not sent in this part.
    pub records_left: u32,
    /// The ranks those records have in the whole answer (a read from the database numbers
    /// ranks from its cursor, so the rest read from a cursor may number them otherwise).
    pub ranks_left: Vec<u64>,
    /// Owners whose records were not sent in this part.
    pub owners_left: Vec<Uuid>,
    /// The board's sort order (to merge owners' records from several parts).
    pub descending: bool,
}

/// The board's definition and live figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Message, Serialize, Deserialize)]
#[rtype(result = "Result<BoardInfo, LeaderboardError>")]
pub struct GetInfo;

/// Activates the board and loads its current bucket (the warm-up at start); answered once
/// loaded. A board that was unknown looks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Message, Serialize, Deserialize)]
#[rtype(result = "Result<BoardInfo, LeaderboardError>")]
pub struct Warm;

/// The board was deleted: pending writes are refused and the actor stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), LeaderboardError>")]
pub struct Forget;

// Every message may be forwarded to the node owning the board (names are wire names: never
// rename one that has been sent).
impl Remote for Write {
    const NAME: &'static str = "leaderboard.write";
}
impl Remote for DeleteRecord {
    const NAME: &'static str = "leaderboard.delete_record";
}
impl Remote for Join {
    const NAME: &'static str = "leaderboard.join";
}
impl Remote for List {
    const NAME: &'static str = "leaderboard.list";
}
impl Remote for AroundOwner {
    const NAME: &'static str = "leaderboard.around_owner";
}
impl Remote for GetInfo {
    const NAME: &'static str = "leaderboard.get_info";
}
impl Remote for Warm {
    const NAME: &'static str = "leaderboard.warm";
}
impl Remote for Forget {
    const NAME: &'static str = "leaderboard.forget";
}
impl Remote for ReadPart {
    const NAME: &'static str = "leaderboard.read_part";
}

/// One record as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordView {
    pub leaderboard_id: String,
    pub owner_id: Uuid,
    pub username: Option<String>,
    pub score: i64,
    pub subscore: i64,
    pub num_score: u32,
    pub max_num_score: u32,
    /// JSON object text.
    pub metadata: String,
    /// Unix seconds.
    pub create_time: i64,
    pub update_time: i64,
    /// Unix seconds; 0 = never.
    pub expiry_time: i64,
    /// 1-based; 0 = not known (ranks disabled, rank cache off).
    pub rank: u64,
}

/// A page of records and/or the records of some owners.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordList {
    pub records: Vec<RecordView>,
    pub owner_records: Vec<RecordView>,
    pub next_cursor: Option<String>,
    pub prev_cursor: Option<String>,
    /// Records in the bucket; 0 when ranks are not known.
    pub rank_count: u64,
}

/// A board's definition plus live figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardInfo {
    pub id: String,
    /// 0 ascending, 1 descending.
    pub sort_order: u32,
    /// Nakama's API numbers: 1 best, 2 set, 3 incr, 4 decr.
    pub operator: u32,
    pub authoritative: bool,
    pub reset_schedule: Option<String>,
    pub metadata: String,
    pub enable_ranks: bool,
    pub is_tournament: bool,
    pub category: u32,
    pub title: String,
    pub description: String,
    pub duration: u32,
    pub start_time: i64,
    pub end_time: i64,
    pub max_size: u32,
    pub max_num_score: u32,
    pub join_required: bool,
    pub create_time: i64,
    /// Records in the current bucket.
    pub size: u64,
    /// Expiry of the current bucket (0 = never).
    pub expiry: i64,
    /// Tournament window of the current period (0 for leaderboards).
    pub start_active: i64,
    pub end_active: i64,
    /// Start of the current reset period (0 without a reset schedule).
    pub prev_reset: i64,
    /// Whether the rank cache holds this board.
    pub cached: bool,
}

/// Why a leaderboard request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum LeaderboardError {
    /// No such board (or not of the kind the API expects).
    #[error("{} not found", match .0 { Api::Leaderboard => "leaderboard", Api::Tournament => "tournament" })]
    NotFound(Api),
    /// A tournament whose end time has passed.
    #[error("tournament has ended")]
    Ended,
    #[error("{0}")]
    Write(#[serde(with = "write_error")] WriteError, Api, bool),
    #[error("cursor is invalid or expired")]
    InvalidCursor,
    #[error("{0}")]
    InvalidArgument(String),
    /// The database could not take the write (or the board is moving): try again.
    #[error("leaderboard unavailable, try again")]
    Unavailable,
}

impl LeaderboardError {
    /// A write error at a join (`true`) or a write.
    pub fn write(e: WriteError, api: Api) -> LeaderboardError {
        LeaderboardError::Write(e, api, false)
    }

    pub fn join(e: WriteError) -> LeaderboardError {
        LeaderboardError::Write(e, Api::Tournament, true)
    }

    /// Where Nakama answers this write error, for its status and message.
    pub fn site(api: Api, join: bool) -> ErrorSite {
        match (api, join) {
            (_, true) => ErrorSite::TournamentJoin,
            (Api::Leaderboard, false) => ErrorSite::LeaderboardWrite,
            (Api::Tournament, false) => ErrorSite::TournamentWrite,
        }
    }
}

/// `WriteError` is the colleague's pure type without serde: carried as its name.
mod write_error {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::WriteError;

    const ALL: [WriteError; 8] = [
        WriteError::NegativeScore,
        WriteError::Overflow,
        WriteError::InvalidOperator,
        WriteError::MaxNumScoreReached,
        WriteError::JoinRequired,
        WriteError::MaxSizeReached,
        WriteError::OutsideDuration,
        WriteError::Authoritative,
    ];

    pub fn serialize<S: Serializer>(e: &WriteError, s: S) -> Result<S::Ok, S::Error> {
        let i = ALL.iter().position(|x| x == e).unwrap_or(0) as u8;
        i.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<WriteError, D::Error> {
        let i = u8::deserialize(d)?;
        ALL.get(usize::from(i))
            .copied()
            .ok_or_else(|| serde::de::Error::custom("unknown write error"))
    }
}
