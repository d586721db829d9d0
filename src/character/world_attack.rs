//! The character's side of a world boss attack: the session checks that the caller owns the
//! character and computes its damage from its stats (pure rules,
//! [`crate::domain::world::boss::damage`]). The RPC then takes the damage to the boss: the
//! session's mailbox is not held while the boss answers.

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::actor::CharacterSession;
use super::messages::SessionResult;
use crate::domain::world::boss;
use crate::request::{Call, Ticket};
use crate::routing::Remote;

/// How hard the character hits a boss now, for the caller in `call` (who must own it).
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<AttackPower>")]
pub struct WorldAttackPower {
    pub call: Call,
}

/// The character's owner and its damage per attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackPower {
    pub user_id: Uuid,
    pub damage: i64,
}

impl Remote for WorldAttackPower {
    const NAME: &'static str = "character.world_attack_power";
    fn renew_ticket(&mut self) -> Option<Ticket> {
        self.call.ticket = Ticket::default();
        Some(self.call.ticket.clone())
    }
}

impl Handler<WorldAttackPower> for CharacterSession {
    type Result = SessionResult<AttackPower>;

    fn handle(&mut self, msg: WorldAttackPower, _: &mut Self::Context) -> Self::Result {
        let catalog = self.deps.catalog.get();
        let (state, _) = self.start(&msg.call)?;
        Ok(AttackPower {
            user_id: state.user_id,
            damage: boss::damage(state, &catalog),
        })
    }
}
