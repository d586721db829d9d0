//! Battle rules: pure, deterministic functions over plain data. No actix, tokio or SQL.
//!
//! A battle is a [`Combat`]: the [`Setup`] fixed at the start (fighters, skills, loot table,
//! flee chance), the seed, and the [`BattleState`] that turns change. A turn takes the party's
//! validated [`Action`]s and resolves with the RNG stream of `(seed, turn)`, so the same seed
//! and the same actions always give the same turn, and a battle can be rebuilt from its log
//! ([`replay`]). The log of a turn ([`TurnLog`]) is postcard-encoded: the actions as resolved
//! (targets filled in), whether the turn timed out, and every fighter's hp afterwards.
//!
//! Order of a turn:
//! 1. A `flee` by the character is rolled first against `flee_chance`: on success the battle
//!    ends as `fled`; on failure the character loses its action.
//! 2. Party fighters that `defend`, or have no action, defend (incoming damage against twice
//!    their defense + 2).
//! 3. Party actions in fighter order: attacks, attack skills, heals, buffs (a buff raises the
//!    whole party's attack and defense by its power in percent for [`BUFF_TURNS`] turns).
//! 4. If every enemy is down the battle is `won`; else each enemy still standing attacks a
//!    random party fighter still standing.
//! 5. The battle is `lost` when the character is down. At [`MAX_TURNS`] without an end, the
//!    enemies give up the chase: the battle ends as `fled`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rng::Rng;
use crate::domain::catalog::{skill_kind, Catalog};
use crate::domain::character::rules::RuleError;
use crate::domain::character::state::CharacterState;

/// A battle ends after at most this many turns.
pub const MAX_TURNS: u32 = 40;
/// At most this many enemies.
pub const MAX_ENEMIES: usize = 5;
/// A buff lasts this many turns, the turn it is cast included.
pub const BUFF_TURNS: u32 = 3;
/// Version of the encoded [`TurnLog`].
pub const LOG_VERSION: u8 = 1;
/// Version of the [`Setup`] stored in `battle_encounter.enemy`.
pub const SETUP_VERSION: u8 = 1;
/// The RNG stream of the settlement (loot); turns use streams 1..=MAX_TURNS.
const LOOT_STREAM: u64 = 0x4C4F_4F54;
/// The RNG stream that builds the enemy group.
const ENEMY_STREAM: u64 = 0x454E_454D;

fn invalid(m: impl Into<String>) -> RuleError {
    RuleError::Invalid(m.into())
}

fn not_allowed(m: impl Into<String>) -> RuleError {
    RuleError::NotAllowed(m.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Party,
    Enemy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FighterKind {
    Character,
    Crew,
    Enemy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SkillKind {
    Attack,
    Heal,
    Buff,
}

/// A combat skill as it was when the battle started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillSpec {
    pub code: String,
    pub kind: SkillKind,
    pub power: i32,
    pub cooldown: u32,
}

/// One fighter as it entered the battle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fighter {
    /// The character's or crew member's UUID, `enemy-N` for enemies.
    pub id: String,
    pub name: String,
    pub kind: FighterKind,
    pub side: Side,
    pub max_hp: i32,
    pub hp: i32,
    pub attack: i32,
    pub defense: i32,
    #[serde(default)]
    pub skills: Vec<SkillSpec>,
}

impl Fighter {
    pub fn is_party(&self) -> bool {
        self.side == Side::Party
    }
}

/// An item that may drop, with its weight in the draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LootEntry {
    pub template: String,
    pub weight: u32,
}

/// Everything fixed when a battle starts. Stored as JSON in `battle_encounter.enemy`, so a
/// battle replays the same after a catalog reload. Fighter 0 is always the character.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    pub version: u8,
    pub character_id: Uuid,
    pub user_id: Uuid,
    pub from: String,
    pub to: String,
    pub danger: i32,
    /// Percent chance that a `flee` succeeds.
    pub flee_chance: u32,
    pub fighters: Vec<Fighter>,
    pub loot: Vec<LootEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Active,
    Won,
    Lost,
    Fled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Active => "active",
            Outcome::Won => "won",
            Outcome::Lost => "lost",
            Outcome::Fled => "fled",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "active" => Outcome::Active,
            "won" => Outcome::Won,
            "lost" => Outcome::Lost,
            "fled" => Outcome::Fled,
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        match self {
            Outcome::Active => 0,
            Outcome::Won => 1,
            Outcome::Lost => 2,
            Outcome::Fled => 3,
        }
    }
}

/// What turns change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BattleState {
    /// Turns resolved so far; the next turn is `turn + 1`.
    pub turn: u32,
    /// Hit points by fighter index; never negative, never above the fighter's max.
    pub hp: Vec<i32>,
    /// By fighter, by skill index: the first turn the skill may be used again.
    pub ready_at: Vec<Vec<u32>>,
    /// The party's buff: (percent, last turn it applies).
    pub buff: Option<(i32, u32)>,
    pub outcome: Outcome,
}

/// A battle: its setup, its seed and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Combat {
    pub seed: u64,
    pub setup: Setup,
    pub state: BattleState,
}

/// What a party fighter does in a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Act {
    Attack,
    Defend,
    /// Index into the fighter's skills.
    Skill(u8),
    Flee,
}

/// A validated action: indices into the setup, targets filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub actor: u8,
    pub act: Act,
    pub target: Option<u8>,
}

/// An action as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActionRequest {
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub skill: Option<String>,
}

/// What happened in a turn, for the client. Not logged: a replay recomputes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Flee {
        actor: u8,
        success: bool,
    },
    Defend {
        actor: u8,
        /// No action was given for this fighter (or the turn timed out).
        auto: bool,
    },
    Hit {
        actor: u8,
        target: u8,
        skill: Option<u8>,
        damage: i32,
        critical: bool,
        killed: bool,
    },
    Heal {
        actor: u8,
        target: u8,
        skill: u8,
        amount: i32,
    },
    Buff {
        actor: u8,
        skill: u8,
        percent: i32,
        until_turn: u32,
    },
}

/// One resolved turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnRecord {
    pub turn: u32,
    pub timed_out: bool,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
    pub hp_after: Vec<i32>,
    pub outcome: Outcome,
}

/// The compact, logged form of a turn (postcard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnLog {
    pub v: u8,
    pub turn: u32,
    pub timed_out: bool,
    pub actions: Vec<Action>,
    pub hp: Vec<i32>,
    pub outcome: u8,
}

impl TurnRecord {
    pub fn log(&self) -> TurnLog {
        TurnLog {
            v: LOG_VERSION,
            turn: self.turn,
            timed_out: self.timed_out,
            actions: self.actions.clone(),
            hp: self.hp_after.clone(),
            outcome: self.outcome.code(),
        }
    }
}

impl TurnLog {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a turn log always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<TurnLog, String> {
        let log: TurnLog = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
        if log.v != LOG_VERSION {
            return Err(format!("turn log version {} is not {LOG_VERSION}", log.v));
        }
        Ok(log)
    }
}

mod rewards;
mod setup;
mod turn;

pub use rewards::*;
pub use setup::*;
pub use turn::*;

#[cfg(test)]
mod tests;
