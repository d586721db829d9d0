//! The messages a [`super::WorldBoss`] answers. Their wire names (`Remote::NAME`) are never
//! renamed: other nodes send them to the event's owner.

use actix::Message;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::gateway::RpcError;
use crate::protocol::world::boss::{AttackReply, EventView};
use crate::request::{Deadline, Failure};
use crate::routing::{NotRun, Remote};

/// Why a boss refused or failed a request. All but [`BossError::Failed`] are answers that
/// changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum BossError {
    #[error("world event not found")]
    NotFound,
    /// Not active (scheduled or ended), or a zero attack: the message says which.
    #[error("{0}")]
    Refused(String),
    #[error("this request_id was already used for a different request")]
    Conflict,
    #[error("{0}")]
    Failed(Failure),
}

impl From<Failure> for BossError {
    fn from(f: Failure) -> Self {
        BossError::Failed(f)
    }
}

pub type BossResult<T> = Result<T, BossError>;

impl<T> NotRun for Result<T, BossError> {
    fn not_run(&self) -> bool {
        matches!(self, Err(BossError::Failed(Failure::NotRun(_))))
    }
}

/// How a boss's refusal reaches the client.
impl From<BossError> for RpcError {
    fn from(e: BossError) -> RpcError {
        match e {
            BossError::NotFound => RpcError::not_found(e.to_string()),
            BossError::Refused(m) => RpcError::failed_precondition(m),
            BossError::Conflict => RpcError::already_exists(e.to_string()),
            BossError::Failed(f) => f.into(),
        }
    }
}

/// One attack by `character_id` (of `user_id`, checked by its session, which computed the
/// damage). A repeat under the same `(user_id, request_id)` and fingerprint is answered with
/// the first answer while this activation remembers it.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "BossResult<AttackReply>")]
pub struct Attack {
    pub character_id: Uuid,
    pub user_id: Uuid,
    pub damage: i64,
    /// `(request_id, fingerprint)` when the client named a `request_id`.
    pub request: Option<(String, String)>,
    pub deadline: Deadline,
}

/// The event as `get_world_event` shows it to `user_id` (who is subscribed by asking).
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "BossResult<EventView>")]
pub struct GetEvent {
    pub user_id: Option<Uuid>,
    pub deadline: Deadline,
}

/// Activates the event so that it ends or pays what it owes (sent by the sweeper).
#[derive(Message, Debug, Clone, Copy, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct Wake;

impl Remote for Attack {
    const NAME: &'static str = "world_boss.attack";
}

impl Remote for GetEvent {
    const NAME: &'static str = "world_boss.get";
}

impl Remote for Wake {
    const NAME: &'static str = "world_boss.wake";
}
