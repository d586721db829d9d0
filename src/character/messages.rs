//! Messages a CharacterSession handles. Each names its caller so the session can check that
//! the caller owns the character.

use actix::Message;
use uuid::Uuid;

use super::state::CharacterState;
use crate::market::rules::{Quote, Side};

/// Who is asking: a player (must own the character) or the server itself (`http_key` RPCs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    User(Uuid),
    Server,
}

/// Why a session refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

#[derive(Message, Debug, Clone)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct GetCharacter {
    pub caller: Caller,
}

#[derive(Message, Debug, Clone)]
#[rtype(result = "SessionResult<(String, Vec<Quote>)>")]
pub struct GetQuotes {
    pub caller: Caller,
}

/// The outcome of a settled trade.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeReceipt {
    pub gold: i64,
    pub unit_price: i64,
    pub total: i64,
    pub state: CharacterState,
}

#[derive(Message, Debug, Clone)]
#[rtype(result = "SessionResult<TradeReceipt>")]
pub struct ExecuteTrade {
    pub caller: Caller,
    pub good: String,
    pub side: Side,
    pub quantity: i64,
    pub price_limit: Option<i64>,
}

#[derive(Message, Debug, Clone)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct HireCrew {
    pub caller: Caller,
    pub archetype: String,
    pub name: Option<String>,
}

#[derive(Message, Debug, Clone)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct DismissCrew {
    pub caller: Caller,
    pub crew_id: Uuid,
}

#[derive(Message, Debug, Clone)]
#[rtype(result = "SessionResult<CharacterState>")]
pub struct LearnSkill {
    pub caller: Caller,
    pub skill: String,
}

#[derive(Message, Debug, Clone)]
#[rtype(result = "SessionResult<()>")]
pub struct DeleteCharacter {
    pub caller: Caller,
}

/// Flush, release the claim and stop (idle timeout, shutdown, handoff).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Passivate;
