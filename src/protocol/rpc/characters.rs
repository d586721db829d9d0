//! Character payloads: creating, listing and showing characters, trades, crew and skills.

use super::*;

/// Requests that name only a character.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharacterRef {
    pub character_id: Uuid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCharacter {
    pub name: String,
    pub faction: String,
    pub background: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteTrade {
    pub character_id: Uuid,
    pub good: String,
    pub side: TradeSide,
    pub quantity: i64,
    #[serde(default)]
    pub price_limit: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TradeSide {
    Buy,
    Sell,
}

impl From<TradeSide> for Side {
    fn from(s: TradeSide) -> Side {
        match s {
            TradeSide::Buy => Side::Buy,
            TradeSide::Sell => Side::Sell,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HireCrew {
    pub character_id: Uuid,
    pub archetype: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DismissCrew {
    pub character_id: Uuid,
    pub crew_id: Uuid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnSkill {
    pub character_id: Uuid,
    pub skill: String,
}

#[derive(Debug, Serialize)]
pub struct CargoLine {
    pub good: String,
    pub quantity: i64,
}

#[derive(Debug, Serialize)]
pub struct CrewView {
    pub id: Uuid,
    pub archetype: String,
    pub name: String,
    pub hp: i32,
    pub max_hp: i32,
    pub alive: bool,
    pub injured: bool,
}

#[derive(Debug, Serialize)]
pub struct SkillView {
    pub code: String,
    pub rank: i64,
}

#[derive(Debug, Serialize)]
pub struct ItemView {
    pub id: Uuid,
    pub template: String,
    pub quantity: i64,
    pub equipped: bool,
}

/// A character as clients see it.
#[derive(Debug, Serialize)]
pub struct CharacterView {
    pub id: Uuid,
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
    pub cargo: Vec<CargoLine>,
    pub cargo_weight: i64,
    pub capacity: i64,
    pub crew: Vec<CrewView>,
    pub skills: Vec<SkillView>,
    pub items: Vec<ItemView>,
    pub attributes: std::collections::BTreeMap<String, i64>,
    /// The trip under way, with its progress now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub travel: Option<TravelView>,
    /// The battle the character is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battle_id: Option<Uuid>,
}

pub fn cargo_lines(cargo: &std::collections::BTreeMap<String, i64>) -> Vec<CargoLine> {
    cargo
        .iter()
        .map(|(good, quantity)| CargoLine {
            good: good.clone(),
            quantity: *quantity,
        })
        .collect()
}

impl CharacterView {
    pub fn new(s: &CharacterState, catalog: &Catalog) -> CharacterView {
        use crate::domain::character::rules;
        CharacterView {
            id: s.id,
            name: s.name.clone(),
            faction: s.faction.clone(),
            background: s.background.clone(),
            gold: s.gold,
            location: s.location.clone(),
            level: s.level,
            xp: s.xp,
            hp: s.hp,
            max_hp: s.max_hp,
            skill_points: s.skill_points,
            cargo: cargo_lines(&s.cargo),
            cargo_weight: rules::cargo_weight(s, catalog),
            capacity: rules::capacity(s, catalog),
            crew: s
                .crew
                .iter()
                .map(|c| CrewView {
                    id: c.id,
                    archetype: c.archetype.clone(),
                    name: c.name.clone(),
                    hp: c.hp,
                    max_hp: c.max_hp,
                    alive: c.alive,
                    injured: c.injured,
                })
                .collect(),
            skills: s
                .skills
                .iter()
                .map(|(code, rank)| SkillView {
                    code: code.clone(),
                    rank: *rank,
                })
                .collect(),
            items: s
                .items
                .iter()
                .map(|i| ItemView {
                    id: i.id,
                    template: i.template.clone(),
                    quantity: i.quantity,
                    equipped: i.equipped,
                })
                .collect(),
            attributes: s.attributes.clone(),
            travel: s
                .travel
                .as_ref()
                .map(|t| TravelView::new(t, Utc::now().timestamp_millis())),
            battle_id: s.battle_id,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CharacterList {
    pub characters: Vec<CharacterListEntry>,
}

#[derive(Debug, Serialize)]
pub struct CharacterListEntry {
    pub id: Uuid,
    pub name: String,
    pub faction: String,
    pub background: String,
    pub level: i32,
    pub location: String,
}

impl From<CharacterSummary> for CharacterListEntry {
    fn from(s: CharacterSummary) -> Self {
        CharacterListEntry {
            id: s.id,
            name: s.name,
            faction: s.faction,
            background: s.background,
            level: s.level,
            location: s.location,
        }
    }
}
