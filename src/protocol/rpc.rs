//! Game RPC payloads: what clients send to and get back from `create_character`,
//! `execute_trade` and the rest (documented with examples in docs/rpc.md).
//!
//! Requests refuse unknown fields, so a misspelt field is an error rather than a silent
//! default. Numbers are plain JSON numbers (these are game payloads, not protobuf fields).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::character::state::CharacterState;
use crate::market::rules::{Quote, Side};
use crate::persistence::characters::CharacterSummary;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub travel: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battle_id: Option<Uuid>,
}

pub fn cargo_lines(state: &CharacterState) -> Vec<CargoLine> {
    state
        .cargo
        .iter()
        .map(|(good, quantity)| CargoLine {
            good: good.clone(),
            quantity: *quantity,
        })
        .collect()
}

impl CharacterView {
    pub fn new(s: &CharacterState, catalog: &Catalog) -> CharacterView {
        use crate::character::rules;
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
            cargo: cargo_lines(s),
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
            travel: s.travel.clone(),
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

#[derive(Debug, Serialize)]
pub struct QuoteView {
    pub good: String,
    pub buy_price: i64,
    pub sell_price: i64,
    pub quota: i64,
    pub sell_quota: i64,
}

impl From<Quote> for QuoteView {
    fn from(q: Quote) -> Self {
        QuoteView {
            good: q.good,
            buy_price: q.buy_price,
            sell_price: q.sell_price,
            quota: q.quota,
            sell_quota: q.sell_quota,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Quotes {
    pub node: String,
    pub quotes: Vec<QuoteView>,
}

#[derive(Debug, Serialize)]
pub struct TradeResult {
    pub gold: i64,
    pub unit_price: i64,
    pub total: i64,
    pub cargo: Vec<CargoLine>,
}

#[derive(Debug, Serialize)]
pub struct Deleted {
    pub deleted: bool,
}

#[derive(Debug, Serialize)]
pub struct FactionView {
    pub code: String,
    pub name: String,
    pub description: String,
    pub home_node: String,
}

#[derive(Debug, Serialize)]
pub struct BackgroundView {
    pub code: String,
    pub name: String,
    pub description: String,
    pub starting_gold: i64,
}

#[derive(Debug, Serialize)]
pub struct GoodView {
    pub code: String,
    pub name: String,
    pub category: String,
    pub base_price: i64,
    pub weight: i32,
}

#[derive(Debug, Serialize)]
pub struct NodeView {
    pub code: String,
    pub name: String,
    pub region: String,
}

#[derive(Debug, Serialize)]
pub struct RouteView {
    pub from: String,
    pub to: String,
    pub distance: i32,
    pub danger: i32,
}

/// `get_catalog`: everything a client needs to show choices. Skills, crew archetypes and item
/// templates are sent in their catalog form.
#[derive(Debug, Serialize)]
pub struct CatalogView<'a> {
    pub version: i64,
    pub factions: Vec<FactionView>,
    pub backgrounds: Vec<BackgroundView>,
    pub goods: Vec<GoodView>,
    pub nodes: Vec<NodeView>,
    pub routes: Vec<RouteView>,
    pub skill_trees: &'a [crate::catalog::SkillTree],
    pub skills: &'a [crate::catalog::Skill],
    pub crew_archetypes: &'a [crate::catalog::CrewArchetype],
    pub items: &'a [crate::catalog::ItemTemplate],
}

impl<'a> CatalogView<'a> {
    pub fn new(c: &'a Catalog) -> Self {
        CatalogView {
            version: c.version,
            factions: c
                .factions()
                .iter()
                .map(|f| FactionView {
                    code: f.code.clone(),
                    name: f.name.clone(),
                    description: f.description.clone(),
                    home_node: f.home_node.clone(),
                })
                .collect(),
            backgrounds: c
                .backgrounds()
                .iter()
                .map(|b| BackgroundView {
                    code: b.code.clone(),
                    name: b.name.clone(),
                    description: b.description.clone(),
                    starting_gold: b.starting_gold,
                })
                .collect(),
            goods: c
                .goods()
                .iter()
                .map(|g| GoodView {
                    code: g.code.clone(),
                    name: g.name.clone(),
                    category: g.category.clone(),
                    base_price: g.base_price,
                    weight: g.weight,
                })
                .collect(),
            nodes: c
                .nodes()
                .iter()
                .map(|n| NodeView {
                    code: n.code.clone(),
                    name: n.name.clone(),
                    region: n.region.clone(),
                })
                .collect(),
            routes: c
                .routes()
                .iter()
                .map(|r| RouteView {
                    from: r.from_node.clone(),
                    to: r.to_node.clone(),
                    distance: r.distance,
                    danger: r.danger,
                })
                .collect(),
            skill_trees: c.skill_trees(),
            skills: c.skills(),
            crew_archetypes: c.crew_archetypes(),
            items: c.items(),
        }
    }
}
