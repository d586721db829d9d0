//! Messages a [`super::Battle`] answers.

use actix::Message;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::battle::rules::{ActionRequest, Rewards, Setup, TurnRecord};
pub use crate::domain::battle::snapshot::BattleSnapshot;
use crate::domain::character::travel::Trip;
use crate::request::Call;
use crate::request::{Failure, Ticket};
use crate::routing::{NotRun, Remote};

/// Why a battle refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
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
    /// The `request_id` was used before for another request.
    #[error("this request_id was already used for a different request")]
    Conflict,
    /// No answer: not run, or may have run.
    #[error("{0}")]
    Failed(Failure),
}

impl<T> NotRun for Result<T, BattleError> {
    fn not_run(&self) -> bool {
        matches!(self, Err(BattleError::Failed(Failure::NotRun(_))))
    }
}

impl From<Failure> for BattleError {
    fn from(f: Failure) -> Self {
        BattleError::Failed(f)
    }
}

impl BattleError {
    /// The battle cannot take requests now (loading, moving): nothing ran.
    pub fn busy() -> BattleError {
        BattleError::Failed(Failure::not_run(
            "the battle is busy moving between servers, try again",
        ))
    }
}

pub type BattleResult<T> = Result<T, BattleError>;

/// Starts a battle (sent by the character's session on an encounter): inserts the encounter
/// row and sets the character's `battle_id` in one transaction fenced by the session's epoch.
/// Sent again with the same id it answers the battle as it is.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "BattleResult<BattleSnapshot>")]
pub struct StartBattle {
    pub seed: u64,
    pub setup: Setup,
    pub session_epoch: i64,
    /// The character's trip while the battle holds it.
    pub travel: Option<Trip>,
}

#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "BattleResult<BattleSnapshot>")]
pub struct GetBattle {
    pub call: Call,
}

/// The party's actions for the current turn. `turn`, when given, must be the turn being
/// played (`turn` of the battle + 1), so a late submission never lands on the next turn.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "BattleResult<(TurnRecord, BattleSnapshot)>")]
pub struct SubmitTurn {
    pub call: Call,
    pub turn: Option<u32>,
    pub actions: Vec<ActionRequest>,
}

/// Activates the battle if it is not (it then replays its log, restarts its turn timer, and
/// settles if it had ended). Answers whether the battle exists.
#[derive(Message, Debug, Clone, Copy, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub struct Resume;

// Messages other nodes may send to a battle they do not own (wire names: never rename).
impl Remote for StartBattle {
    const NAME: &'static str = "battle.start";
}

impl Remote for GetBattle {
    const NAME: &'static str = "battle.get";
    fn renew_ticket(&mut self) -> Option<Ticket> {
        self.call.ticket = Ticket::default();
        Some(self.call.ticket.clone())
    }
}

impl Remote for SubmitTurn {
    const NAME: &'static str = "battle.submit_turn";
    fn renew_ticket(&mut self) -> Option<Ticket> {
        self.call.ticket = Ticket::default();
        Some(self.call.ticket.clone())
    }
}

impl Remote for Resume {
    const NAME: &'static str = "battle.resume";
}

/// What an ended battle asks of its character's session: apply the rewards and settle
/// everything in one transaction fenced by the session's epoch and the battle's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settlement {
    pub battle_id: Uuid,
    pub battle_epoch: i64,
    pub rewards: Rewards,
}

/// How a settlement went, as far as the battle cares.
#[derive(Debug, Clone, PartialEq)]
pub enum SettleAnswer {
    /// Committed; the summary (JSON text) written to `battle_encounter.result_payload`.
    Settled(String),
    /// The battle's claim is stale (another node owns it); nothing changed.
    Fenced,
    /// Nothing to settle: settled before, or the character is not in this battle (or gone).
    /// The battle reads its row to learn which.
    NothingToSettle,
    /// No answer (unreachable, failed): try again later.
    Failed(String),
}

/// Where an ended battle is settled: its character's session, wherever it lives. The session
/// starts battles, so `character` sits above `battle`; the battle reaches back only through
/// this port, which the character module implements and `game` wires into [`BattleDeps`].
///
/// [`BattleDeps`]: super::BattleDeps
pub trait Settler: Send + Sync + 'static {
    fn settle(
        &self,
        character_id: Uuid,
        settlement: Settlement,
    ) -> BoxFuture<'static, SettleAnswer>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    use crate::character::messages::{SessionResult, SettleBattle};
    use crate::domain::battle::rules::{self, Combat};
    use crate::domain::character::rules::new_character;
    use crate::persistence::default_catalog::default_catalog;

    /// Battle and settlement messages cross the peer link postcard-encoded: they must survive
    /// a round trip (no `serde_json::Value`, no skipped fields).
    #[test]
    fn messages_survive_the_peer_link_encoding() {
        let catalog = default_catalog();
        let mut c = new_character(
            &catalog,
            Uuid::new_v4(),
            Uuid::new_v4(),
            "Ada",
            "merchant_league",
            "sellsword",
        )
        .unwrap();
        c.skills.insert("power_strike".into(), 1);
        let setup = rules::new_setup(&c, &catalog, "port_azul", "saltspire", 40, 3);
        let mut combat = Combat::new(3, setup.clone()).unwrap();
        let last = rules::resolve_turn(&mut combat, &[], true);
        let snapshot = BattleSnapshot {
            id: Uuid::new_v4(),
            combat: combat.clone(),
            last: Some(last),
            settled: true,
            result: Some(r#"{"outcome":"won"}"#.into()),
            turn_deadline: Some(Utc::now()),
        };
        let answer: BattleResult<BattleSnapshot> = Ok(snapshot.clone());
        let bytes = postcard::to_stdvec(&answer).unwrap();
        let back: BattleResult<BattleSnapshot> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, Ok(snapshot));
        let start = StartBattle {
            seed: 3,
            setup,
            session_epoch: 7,
            travel: None,
        };
        let bytes = postcard::to_stdvec(&start).unwrap();
        let back: StartBattle = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.setup, start.setup);
        combat.state.outcome = rules::Outcome::Won;
        let settle = SettleBattle(Settlement {
            battle_id: Uuid::new_v4(),
            battle_epoch: 1,
            rewards: rules::rewards(&combat).unwrap(),
        });
        let bytes = postcard::to_stdvec(&settle).unwrap();
        let back: SettleBattle = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.0, settle.0);
        let state: SessionResult<_> = Ok(c.clone());
        let bytes = postcard::to_stdvec(&state).unwrap();
        let back: SessionResult<crate::domain::character::state::CharacterState> =
            postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, Ok(c));
    }
}
