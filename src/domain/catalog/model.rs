//! The catalog's plain records, one struct per catalog table. Read-only once loaded.
//!
//! Field names follow the columns of `schema/0002_catalog.sql`. Money is in whole gold
//! (`i64`), weights in abstract units, distances in leagues, danger in 0..=100.

use serde::Serialize;

/// A faction a character can join; new characters of it start at its home node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Faction {
    pub code: String,
    pub name: String,
    pub description: String,
    pub home_node: String,
}

/// A background chosen at character creation: starting gold and base attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Background {
    pub code: String,
    pub name: String,
    pub description: String,
    pub starting_gold: i64,
    pub strength: i32,
    pub cunning: i32,
    pub charisma: i32,
    pub endurance: i32,
}

/// A group of skills (e.g. commerce, combat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkillTree {
    pub code: String,
    pub name: String,
    pub description: String,
}

/// Well-known values of [`Skill::kind`]; the catalog may hold others.
pub mod skill_kind {
    pub const ATTACK: &str = "attack";
    pub const HEAL: &str = "heal";
    pub const BUFF: &str = "buff";
    pub const TRADE: &str = "trade";
    pub const TRAVEL: &str = "travel";
}

/// One learnable skill. `requires` names a skill that must be learned first; `cost` is in
/// skill points; `power` is the skill's strength (damage, healing, or a percentage for
/// trade and travel skills); `cooldown` is in battle turns (0 = none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skill {
    pub code: String,
    pub tree: String,
    pub name: String,
    pub description: String,
    pub tier: i32,
    pub requires: Option<String>,
    pub cost: i32,
    pub kind: String,
    pub power: i32,
    pub cooldown: i32,
}

/// An item characters can own: weapons, armor, shields, consumables, trinkets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemTemplate {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub rarity: String,
    pub value: i64,
    pub attack: i32,
    pub defense: i32,
    pub weight: i32,
}

/// A kind of crew member a caravan can hire: cost, upkeep, fighting strength, and what it
/// adds to the caravan (`capacity` in weight units, `speed` bonus).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrewArchetype {
    pub code: String,
    pub name: String,
    pub description: String,
    pub hire_cost: i64,
    pub upkeep: i64,
    pub hp: i32,
    pub attack: i32,
    pub defense: i32,
    pub capacity: i64,
    pub speed: i32,
}

/// A trade good; `weight` is per unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Good {
    pub code: String,
    pub name: String,
    pub category: String,
    pub base_price: i64,
    pub weight: i32,
}

/// A place on the map with a market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeNode {
    pub code: String,
    pub name: String,
    pub region: String,
    pub faction: Option<String>,
}

/// A road from one node to another. Both directions are stored as separate routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub from_node: String,
    pub to_node: String,
    pub distance: i32,
    /// Chance-like measure of an encounter on the way, 0..=100.
    pub danger: i32,
}

/// A good traded at a node: its price there, how many units the market takes or gives
/// before running dry, and how fast that quota recovers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stock {
    pub node: String,
    pub good: String,
    pub base_price: i64,
    pub base_quota: i64,
    pub restock_per_min: i64,
}

/// Every catalog row, as read from the database or parsed from the default catalog, before
/// it is indexed into a [`super::Catalog`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogData {
    pub version: i64,
    pub factions: Vec<Faction>,
    pub backgrounds: Vec<Background>,
    pub skill_trees: Vec<SkillTree>,
    pub skills: Vec<Skill>,
    pub items: Vec<ItemTemplate>,
    pub crew: Vec<CrewArchetype>,
    pub goods: Vec<Good>,
    pub nodes: Vec<TradeNode>,
    pub routes: Vec<Route>,
    pub stock: Vec<Stock>,
}
