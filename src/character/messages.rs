//! Messages a CharacterSession handles. Each names its caller so the session can check that
//! the caller owns the character.

use actix::Message;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::state::CharacterState;
use crate::battle::messages::BattleSnapshot;
use crate::battle::rules::Rewards;
use crate::market::rules::{Quote, Side};
use crate::routing::Remote;

/// Who is asking: a player (must own the character) or the server itself (`http_key` RPCs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Caller {
    User(Uuid),
    Server,
}

/// Why a session refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SessionError {
    #[error("character not found")]
    NotFound,
    #[error("this character belongs to another account")]
    NotYours,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(String),
    /// The session lost its claim or is stopping; the client may retry.
    #[error("the character is busy moving between servers, try again")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

pub type SessionResult<T> = Result<T, SessionError>;

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct GetCharacter {
    pub caller: Caller,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<(String, Vec<Quote>)>")]
pub struct GetQuotes {
    pub caller: Caller,
}

/// The outcome of a settled trade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeReceipt {
    pub gold: i64,
    pub unit_price: i64,
    pub total: i64,
    pub state: CharacterState,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<TradeReceipt>")]
pub struct ExecuteTrade {
    pub caller: Caller,
    pub good: String,
    pub side: Side,
    pub quantity: i64,
    pub price_limit: Option<i64>,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct HireCrew {
    pub caller: Caller,
    pub archetype: String,
    pub name: Option<String>,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct DismissCrew {
    pub caller: Caller,
    pub crew_id: Uuid,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct LearnSkill {
    pub caller: Caller,
    pub skill: String,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<()>")]
pub struct DeleteCharacter {
    pub caller: Caller,
}

/// Sets the caravan on the road to `to` along a catalog route.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct Travel {
    pub caller: Caller,
    pub to: String,
}

/// Bandits fall upon the caravan now (server callers only: live events, tests). On the road
/// it is the trip's encounter; in town an ambush at the gates.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<BattleSnapshot>")]
pub struct ForceEncounter {
    pub caller: Caller,
}

/// Sent by a Battle when it has ended: the session applies the rewards and settles everything
/// in one transaction (fenced by its own epoch and the battle's), then updates its memory.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<SettleReply>")]
pub struct SettleBattle {
    pub battle_id: Uuid,
    pub battle_epoch: i64,
    pub rewards: Rewards,
}

/// How a [`SettleBattle`] went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SettleReply {
    /// Committed; the summary (JSON text) written to `battle_encounter.result_payload`.
    Settled(String),
    /// The encounter was settled before; nothing changed.
    AlreadySettled,
    /// The character is not in this battle; nothing changed.
    NotInBattle,
    /// The battle's claim is stale; nothing changed.
    BattleFenced,
}

/// Flush, release the claim and stop (idle timeout, shutdown, handoff).
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct Passivate;

// Messages other nodes may send to a character they do not own (wire names: never rename).
macro_rules! remote {
    ($($t:ty => $name:literal),* $(,)?) => {
        $(impl Remote for $t {
            const NAME: &'static str = $name;
        })*
    };
}

remote! {
    GetCharacter => "character.get",
    GetQuotes => "character.get_quotes",
    ExecuteTrade => "character.execute_trade",
    HireCrew => "character.hire_crew",
    DismissCrew => "character.dismiss_crew",
    LearnSkill => "character.learn_skill",
    DeleteCharacter => "character.delete",
    Travel => "character.travel",
    ForceEncounter => "character.force_encounter",
    SettleBattle => "character.settle_battle",
}
