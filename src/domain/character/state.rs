//! A character as the game sees it: plain data, loaded from and written to the database by
//! `persistence::characters`, changed only by the functions in `rules`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One member of a caravan's crew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrewMember {
    pub id: Uuid,
    pub archetype: String,
    pub name: String,
    pub hp: i32,
    pub max_hp: i32,
    pub alive: bool,
    pub injured: bool,
}

/// An item a character carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: Uuid,
    pub template: String,
    pub quantity: i64,
    pub equipped: bool,
}

/// The wagon train: how much it carries before crew, and how fast it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caravan {
    pub capacity: i64,
    pub speed: i32,
}

/// Everything a CharacterSession holds in memory (also what crosses the peer link).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharacterState {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub faction: String,
    pub background: String,
    pub gold: i64,
    pub location: String,
    pub level: i32,
    pub xp: i64,
    pub hp: i32,
    pub max_hp: i32,
    pub skill_points: i32,
    /// strength, cunning, charisma, endurance.
    pub attributes: BTreeMap<String, i64>,
    /// Learned skills by code, with their rank.
    pub skills: BTreeMap<String, i64>,
    pub items: Vec<Item>,
    pub crew: Vec<CrewMember>,
    pub caravan: Caravan,
    /// Goods carried, by code; never holds a zero or negative quantity.
    pub cargo: BTreeMap<String, i64>,
    /// The trip under way, if the caravan is on the road (see `travel`).
    pub travel: Option<super::travel::Trip>,
    /// The battle the character is in; at most one.
    pub battle_id: Option<Uuid>,
}

/// Attribute codes stored in `character_attribute`; skills are stored there as `skill:<code>`.
pub const SKILL_PREFIX: &str = "skill:";

/// A line of `list_characters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharacterSummary {
    pub id: Uuid,
    pub name: String,
    pub faction: String,
    pub background: String,
    pub level: i32,
    pub location: String,
}
