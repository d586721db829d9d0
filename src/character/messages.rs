//! Messages a CharacterSession handles. Each names its caller so the session can check that
//! the caller owns the character.

use actix::Message;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::battle::messages::{BattleSnapshot, Settlement};
use crate::domain::character::state::CharacterState;
use crate::domain::market::rules::{Quote, Side};
use crate::gateway::RpcError;
use crate::request::Call;
use crate::request::{Failure, Ticket};
use crate::routing::{NotRun, Remote};

/// Why a session refused or failed a request. The first five are answers (the request was
/// decided and changed nothing); [`SessionError::Failed`] is no answer.
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
    /// The `request_id` was used before for another request.
    #[error("this request_id was already used for a different request")]
    Conflict,
    #[error("{0}")]
    Failed(Failure),
}

impl SessionError {
    /// The session cannot take requests now (loading, moving, reloading): nothing ran.
    pub fn busy() -> SessionError {
        SessionError::Failed(Failure::not_run(
            "the character is busy moving between servers, try again",
        ))
    }
}

impl From<Failure> for SessionError {
    fn from(f: Failure) -> Self {
        SessionError::Failed(f)
    }
}

pub type SessionResult<T> = Result<T, SessionError>;

impl<T> NotRun for Result<T, SessionError> {
    fn not_run(&self) -> bool {
        matches!(self, Err(SessionError::Failed(Failure::NotRun(_))))
    }
}

/// How a session's refusal reaches the client: every RPC that asks a session says it this way.
impl From<SessionError> for RpcError {
    fn from(e: SessionError) -> RpcError {
        match e {
            SessionError::NotFound => RpcError::not_found(e.to_string()),
            SessionError::NotYours => RpcError::permission_denied(e.to_string()),
            SessionError::Invalid(m) => RpcError::invalid_argument(m),
            SessionError::Refused(m) => RpcError::failed_precondition(m),
            SessionError::Conflict => RpcError::already_exists(e.to_string()),
            SessionError::Failed(f) => f.into(),
        }
    }
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct GetCharacter {
    pub call: Call,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<(String, Vec<Quote>)>")]
pub struct GetQuotes {
    pub call: Call,
}

/// The outcome of a settled trade: small, since it is also what a `request_id` stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeReceipt {
    pub gold: i64,
    pub unit_price: i64,
    pub total: i64,
    /// The caravan's cargo afterwards.
    pub cargo: std::collections::BTreeMap<String, i64>,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<TradeReceipt>")]
pub struct ExecuteTrade {
    pub call: Call,
    pub good: String,
    pub side: Side,
    pub quantity: i64,
    pub price_limit: Option<i64>,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct HireCrew {
    pub call: Call,
    pub archetype: String,
    pub name: Option<String>,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct DismissCrew {
    pub call: Call,
    pub crew_id: Uuid,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct LearnSkill {
    pub call: Call,
    pub skill: String,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<()>")]
pub struct DeleteCharacter {
    pub call: Call,
}

/// Sets the caravan on the road to `to` along a catalog route.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct Travel {
    pub call: Call,
    pub to: String,
}

/// Bandits fall upon the caravan now (server callers only: live events, tests). On the road
/// it is the trip's encounter; in town an ambush at the gates.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<BattleSnapshot>")]
pub struct ForceEncounter {
    pub call: Call,
}

/// Sent by a Battle when it has ended (through [`crate::character::BattleSettler`]): the
/// session applies the rewards and settles everything in one transaction (fenced by its own
/// epoch and the battle's), then updates its memory.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<SettleReply>")]
pub struct SettleBattle(pub Settlement);

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

// Messages other nodes may send to a character they do not own (wire names: never rename).
macro_rules! remote {
    ($($t:ty => $name:literal),* $(,)?) => {
        $(impl Remote for $t {
            const NAME: &'static str = $name;
        })*
    };
}

/// Client requests carry a [`Call`]: their ticket tells the router whether they started.
macro_rules! remote_call {
    ($($t:ty => $name:literal),* $(,)?) => {
        $(impl Remote for $t {
            const NAME: &'static str = $name;
            fn renew_ticket(&mut self) -> Option<Ticket> {
                self.call.ticket = Ticket::default();
                Some(self.call.ticket.clone())
            }
        })*
    };
}

remote_call! {
    GetCharacter => "character.get",
    GetQuotes => "character.get_quotes",
    ExecuteTrade => "character.execute_trade",
    HireCrew => "character.hire_crew",
    DismissCrew => "character.dismiss_crew",
    LearnSkill => "character.learn_skill",
    DeleteCharacter => "character.delete",
    Travel => "character.travel",
    ForceEncounter => "character.force_encounter",
}

/// The state of a session that moved, offered to the node that owns the character now by the
/// old owner once it flushed and released its claim at `released_epoch` (see
/// [`crate::routing::handover`]). Answered with whether the parcel was kept.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub struct Handover {
    pub released_epoch: i64,
    pub state: CharacterState,
}

remote! {
    SettleBattle => "character.settle_battle",
    Handover => "character.handover",
}

/// Whose a character is and where it stands, as its session last published it (see
/// [`crate::routing::published`]): enough to answer an advisory read (the quotes where the
/// character is) without a trip through the session's mailbox. Anything that changes the
/// character still goes to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whereabouts {
    pub user_id: Uuid,
    pub location: String,
}

/// Every ready session's [`Whereabouts`] on this node, by character id.
pub type CharacterWhereabouts = crate::routing::published::Published<Uuid, Whereabouts>;
