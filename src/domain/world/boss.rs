//! The rules of a world boss: damage, HP, state over time, rewards.
//!
//! A boss is plain data ([`Boss`]): its HP, its window (`starts_at` .. `ends_at`, Unix ms) and
//! its stored end ([`Ended`]), if it has one. Its state at a moment ([`Boss::state_at`]) follows
//! from those: an end once stored is final; before the window it is scheduled, after it expired,
//! inside it active. [`Boss::attack`] is the one way HP changes: never below 0, refused unless
//! active, and exactly one attack (the one that takes the last HP) kills.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::battle::rules::party;
use crate::domain::catalog::{skill_kind, Catalog};
use crate::domain::character::state::CharacterState;

/// The longest a boss's HP may be (keeps sums of damage far from overflow).
pub const MAX_HP: i64 = 1_000_000_000_000;

/// What a world event is at a moment, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    Scheduled,
    Active,
    Defeated,
    Expired,
    Cancelled,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Scheduled => "scheduled",
            EventState::Active => "active",
            EventState::Defeated => "defeated",
            EventState::Expired => "expired",
            EventState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<EventState> {
        [
            EventState::Scheduled,
            EventState::Active,
            EventState::Defeated,
            EventState::Expired,
            EventState::Cancelled,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }

    /// Defeated, expired or cancelled: nothing changes any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            EventState::Defeated | EventState::Expired | EventState::Cancelled
        )
    }

    /// Whether its participants are owed their reward (a cancelled event pays nothing).
    pub fn rewards(self) -> bool {
        matches!(self, EventState::Defeated | EventState::Expired)
    }
}

/// A boss's HP and window. `ended` is the stored end (`state` column): `None` while open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boss {
    pub max_hp: i64,
    pub hp: i64,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub ended: Option<EventState>,
}

/// What one counted attack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// The damage counted: the attack's damage, or the HP that was left if less.
    pub damage: i64,
    /// HP afterwards.
    pub hp: i64,
    /// This attack took the last HP.
    pub killed: bool,
}

/// Why an attack was refused (nothing changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// Not active: scheduled, defeated, expired or cancelled (the state it is in).
    NotActive(EventState),
    /// A damage of zero or less.
    NoDamage,
}

impl Boss {
    /// The state at `now_ms`: a stored end is final; HP 0 is defeated even before it is stored.
    pub fn state_at(&self, now_ms: i64) -> EventState {
        match self.ended {
            Some(s) => s,
            None if self.hp <= 0 => EventState::Defeated,
            None if now_ms < self.starts_at_ms => EventState::Scheduled,
            None if now_ms >= self.ends_at_ms => EventState::Expired,
            None => EventState::Active,
        }
    }

    /// Applies an attack of `damage` at `now_ms`: refused unless active; HP never below 0.
    pub fn attack(&mut self, damage: i64, now_ms: i64) -> Result<Hit, Refusal> {
        let state = self.state_at(now_ms);
        if state != EventState::Active {
            return Err(Refusal::NotActive(state));
        }
        if damage <= 0 {
            return Err(Refusal::NoDamage);
        }
        let counted = damage.min(self.hp);
        self.hp -= counted;
        Ok(Hit {
            damage: counted,
            hp: self.hp,
            killed: self.hp == 0,
        })
    }
}

/// The damage a character deals to a boss in one attack: the attack of its whole party (itself
/// with its weapon, trinket and strength, and every living crew member, as in battle) plus
/// the power of each attack skill it knows. At least 1.
pub fn damage(state: &CharacterState, catalog: &Catalog) -> i64 {
    let fighters: i64 = party(state, catalog)
        .iter()
        .map(|f| i64::from(f.attack.max(0)))
        .sum();
    let skills: i64 = state
        .skills
        .keys()
        .filter_map(|code| catalog.skill(code))
        .filter(|s| s.kind == skill_kind::ATTACK)
        .map(|s| i64::from(s.power.max(0)))
        .sum();
    (fighters + skills).max(1)
}

/// One participant's part in an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub user_id: Uuid,
    pub damage: i64,
}

/// Adds a counted hit to its character's damage.
pub fn record(
    participants: &mut BTreeMap<Uuid, Participant>,
    character_id: Uuid,
    user_id: Uuid,
    damage: i64,
) {
    let p = participants
        .entry(character_id)
        .or_insert(Participant { user_id, damage: 0 });
    p.damage = p.damage.saturating_add(damage.max(0));
}

/// The participants still owed a reward, in character order: every participant of an event
/// that pays ([`EventState::rewards`]) without a reward row yet.
pub fn unrewarded(
    state: EventState,
    participants: &BTreeMap<Uuid, Participant>,
    rewarded: &BTreeSet<Uuid>,
) -> Vec<(Uuid, Participant)> {
    if !state.rewards() {
        return Vec::new();
    }
    participants
        .iter()
        .filter(|(c, _)| !rewarded.contains(*c))
        .map(|(c, p)| (*c, *p))
        .collect()
}

/// Checks an event's definition; the error names the field.
pub fn validate(
    max_hp: i64,
    starts_at_ms: i64,
    ends_at_ms: i64,
    reward_gold: i64,
) -> Result<(), (&'static str, String)> {
    if !(1..=MAX_HP).contains(&max_hp) {
        return Err(("max_hp", format!("must be between 1 and {MAX_HP}")));
    }
    if ends_at_ms <= starts_at_ms {
        return Err(("ends_at", "must be after starts_at".into()));
    }
    if !(0..=1_000_000_000).contains(&reward_gold) {
        return Err(("reward_gold", "must be between 0 and 1000000000".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
