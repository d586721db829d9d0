//! Messages a [`super::Battle`] answers.

use actix::Message;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::rules::{ActionRequest, Combat, Setup, TurnRecord};
use crate::character::messages::Caller;

/// Why a battle refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BattleError {
    #[error("battle not found")]
    NotFound,
    #[error("this battle belongs to another account")]
    NotYours,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(String),
    /// The character's session lost its claim while starting the battle.
    #[error("the character moved to another server")]
    Stale,
    #[error("the battle is busy moving between servers, try again")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

pub type BattleResult<T> = Result<T, BattleError>;

/// A battle as seen at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct BattleSnapshot {
    pub id: Uuid,
    pub combat: Combat,
    /// The last resolved turn.
    pub last: Option<TurnRecord>,
    /// Whether the end of the battle has been settled (committed) yet.
    pub settled: bool,
    /// The settlement summary, once settled.
    pub result: Option<serde_json::Value>,
    /// When the current turn times out (active battles).
    pub turn_deadline: Option<DateTime<Utc>>,
}

/// Starts a battle (sent by the character's session on an encounter): inserts the encounter
/// row and sets the character's `battle_id` in one transaction fenced by the session's epoch.
/// Sent again with the same id it answers the battle as it is.
#[derive(Message, Debug, Clone)]
#[rtype(result = "BattleResult<BattleSnapshot>")]
pub struct StartBattle {
    pub seed: u64,
    pub setup: Setup,
    pub session_epoch: i64,
    /// The character's `travel` column while the battle lasts.
    pub travel: Option<serde_json::Value>,
}

#[derive(Message, Debug, Clone)]
#[rtype(result = "BattleResult<BattleSnapshot>")]
pub struct GetBattle {
    pub caller: Caller,
}

/// The party's actions for the current turn. `turn`, when given, must be the turn being
/// played (`turn` of the battle + 1), so a late submission never lands on the next turn.
#[derive(Message, Debug, Clone)]
#[rtype(result = "BattleResult<(TurnRecord, BattleSnapshot)>")]
pub struct SubmitTurn {
    pub caller: Caller,
    pub turn: Option<u32>,
    pub actions: Vec<ActionRequest>,
}

/// Activates the battle if it is not (it then replays its log, restarts its turn timer, and
/// settles if it had ended). Answers whether the battle exists.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "bool")]
pub struct Resume;

/// Flush the log, release the claim and stop (shutdown, handoff). Answers once done.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Passivate;
