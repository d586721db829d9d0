//! Game RPC payloads: what clients send to and get back from `create_character`,
//! `execute_trade` and the rest (documented with examples in docs/rpc.md; travel, battles and
//! their notifications in docs/battle.md).
//!
//! Requests refuse unknown fields, so a misspelt field is an error rather than a silent
//! default. Numbers are plain JSON numbers (these are game payloads, not protobuf fields).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

use crate::domain::battle::rules::{
    self as battle, Act, Event, FighterKind, SkillKind, TurnRecord,
};
use crate::domain::battle::snapshot::BattleSnapshot;
use crate::domain::catalog::Catalog;
use crate::domain::character::state::CharacterState;
use crate::domain::character::state::CharacterSummary;
use crate::domain::character::travel::{self, Trip};
use crate::domain::market::rules::{Quote, Side};

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
    pub skill_trees: &'a [crate::domain::catalog::SkillTree],
    pub skills: &'a [crate::domain::catalog::Skill],
    pub crew_archetypes: &'a [crate::domain::catalog::CrewArchetype],
    pub items: &'a [crate::domain::catalog::ItemTemplate],
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

// ---------------------------------------------------------------------------------------------
// Travel and battles (docs/battle.md)
// ---------------------------------------------------------------------------------------------

/// `travel`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TravelRequest {
    pub character_id: Uuid,
    pub to_node: String,
}

/// `force_encounter` (server-to-server).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForceEncounterRequest {
    pub character_id: Uuid,
}

/// Requests that name only a battle (`get_battle`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BattleRef {
    pub battle_id: Uuid,
}

/// `submit_turn`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitTurnRequest {
    pub battle_id: Uuid,
    /// The turn being played (`turn` + 1 of the battle); checked when given.
    #[serde(default)]
    pub turn: Option<u32>,
    #[serde(default)]
    pub actions: Vec<ActionWire>,
}

/// One action of `submit_turn`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionWire {
    pub actor: String,
    pub action: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub skill: Option<String>,
}

impl From<ActionWire> for battle::ActionRequest {
    fn from(a: ActionWire) -> Self {
        battle::ActionRequest {
            actor: a.actor,
            action: a.action,
            target: a.target,
            skill: a.skill,
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn rfc3339_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map_or_else(String::new, rfc3339)
}

/// A trip as clients see it.
#[derive(Debug, Serialize)]
pub struct TravelView {
    pub from: String,
    pub to: String,
    pub distance: i32,
    pub danger: i32,
    pub departed_at: String,
    /// When the caravan arrives; absent while a battle holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrives_at: Option<String>,
    pub duration_ms: i64,
    /// 0.0 at departure, 1.0 at arrival.
    pub progress: f64,
    pub remaining_ms: i64,
    /// A battle holds the caravan.
    pub paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battle_id: Option<Uuid>,
}

impl TravelView {
    pub fn new(t: &Trip, now_ms: i64) -> TravelView {
        let elapsed = travel::elapsed(t, now_ms);
        TravelView {
            from: t.from.clone(),
            to: t.to.clone(),
            distance: t.distance,
            danger: t.danger,
            departed_at: rfc3339_ms(t.departed_at_ms),
            arrives_at: travel::arrives_at(t).map(rfc3339_ms),
            duration_ms: t.duration_ms,
            progress: travel::progress(t, now_ms),
            remaining_ms: (t.duration_ms - elapsed).max(0),
            paused: t.paused_elapsed_ms.is_some(),
            battle_id: t.battle_id,
        }
    }
}

/// A skill of a fighter, with its cooldown now.
#[derive(Debug, Serialize)]
pub struct FighterSkillView {
    pub code: String,
    pub kind: SkillKind,
    pub power: i32,
    pub cooldown: u32,
    /// Turns until it may be used again (0: now).
    pub ready_in: u32,
}

/// One fighter of a battle.
#[derive(Debug, Serialize)]
pub struct CombatantView {
    pub id: String,
    pub name: String,
    pub kind: FighterKind,
    pub side: battle::Side,
    pub hp: i32,
    pub max_hp: i32,
    pub alive: bool,
    pub attack: i32,
    pub defense: i32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<FighterSkillView>,
}

/// An action as resolved (targets filled in).
#[derive(Debug, Serialize)]
pub struct ActionView {
    pub actor: String,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
}

/// What happened in a turn, in order.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventView {
    Flee {
        actor: String,
        success: bool,
    },
    Defend {
        actor: String,
        auto: bool,
    },
    Hit {
        actor: String,
        target: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        skill: Option<String>,
        damage: i32,
        critical: bool,
        killed: bool,
    },
    Heal {
        actor: String,
        target: String,
        skill: String,
        amount: i32,
    },
    Buff {
        actor: String,
        skill: String,
        percent: i32,
        until_turn: u32,
    },
}

/// One resolved turn.
#[derive(Debug, Serialize)]
pub struct TurnView {
    pub turn: u32,
    pub timed_out: bool,
    /// The battle's state after the turn.
    pub state: &'static str,
    pub actions: Vec<ActionView>,
    pub events: Vec<EventView>,
}

impl TurnView {
    pub fn new(c: &battle::Combat, r: &TurnRecord) -> TurnView {
        let id = |i: u8| {
            c.setup
                .fighters
                .get(usize::from(i))
                .map_or_else(String::new, |f| f.id.clone())
        };
        let skill = |actor: u8, k: u8| {
            c.setup
                .fighters
                .get(usize::from(actor))
                .and_then(|f| f.skills.get(usize::from(k)))
                .map_or_else(String::new, |s| s.code.clone())
        };
        TurnView {
            turn: r.turn,
            timed_out: r.timed_out,
            state: r.outcome.as_str(),
            actions: r
                .actions
                .iter()
                .map(|a| ActionView {
                    actor: id(a.actor),
                    action: match a.act {
                        Act::Attack => "attack",
                        Act::Defend => "defend",
                        Act::Skill(_) => "skill",
                        Act::Flee => "flee",
                    },
                    target: a.target.map(id),
                    skill: match a.act {
                        Act::Skill(k) => Some(skill(a.actor, k)),
                        _ => None,
                    },
                })
                .collect(),
            events: r
                .events
                .iter()
                .map(|e| match *e {
                    Event::Flee { actor, success } => EventView::Flee {
                        actor: id(actor),
                        success,
                    },
                    Event::Defend { actor, auto } => EventView::Defend {
                        actor: id(actor),
                        auto,
                    },
                    Event::Hit {
                        actor,
                        target,
                        skill: k,
                        damage,
                        critical,
                        killed,
                    } => EventView::Hit {
                        actor: id(actor),
                        target: id(target),
                        skill: k.map(|k| skill(actor, k)),
                        damage,
                        critical,
                        killed,
                    },
                    Event::Heal {
                        actor,
                        target,
                        skill: k,
                        amount,
                    } => EventView::Heal {
                        actor: id(actor),
                        target: id(target),
                        skill: skill(actor, k),
                        amount,
                    },
                    Event::Buff {
                        actor,
                        skill: k,
                        percent,
                        until_turn,
                    } => EventView::Buff {
                        actor: id(actor),
                        skill: skill(actor, k),
                        percent,
                        until_turn,
                    },
                })
                .collect(),
        }
    }
}

/// `get_battle`: a battle as clients see it.
#[derive(Debug, Serialize)]
pub struct BattleView {
    pub battle_id: Uuid,
    pub character_id: Uuid,
    /// `active`, `won`, `lost` or `fled`.
    pub state: &'static str,
    /// Turns resolved so far; the turn being played is `turn + 1`.
    pub turn: u32,
    pub max_turns: u32,
    pub from: String,
    pub to: String,
    pub danger: i32,
    /// Percent chance that a `flee` succeeds.
    pub flee_chance: u32,
    pub combatants: Vec<CombatantView>,
    /// When the current turn is resolved as `defend` if no actions came (active battles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_deadline: Option<String>,
    /// Whether the end has been settled (experience, loot, losses committed).
    pub settled: bool,
    /// What the settlement did (once settled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_turn: Option<TurnView>,
}

impl BattleView {
    pub fn new(b: &BattleSnapshot) -> BattleView {
        let c = &b.combat;
        BattleView {
            battle_id: b.id,
            character_id: c.setup.character_id,
            state: c.state.outcome.as_str(),
            turn: c.state.turn,
            max_turns: battle::MAX_TURNS,
            from: c.setup.from.clone(),
            to: c.setup.to.clone(),
            danger: c.setup.danger,
            flee_chance: c.setup.flee_chance,
            combatants: c
                .setup
                .fighters
                .iter()
                .enumerate()
                .map(|(i, f)| CombatantView {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    kind: f.kind,
                    side: f.side,
                    hp: c.state.hp.get(i).copied().unwrap_or(0),
                    max_hp: f.max_hp,
                    alive: c.alive(i),
                    attack: f.attack,
                    defense: f.defense,
                    skills: f
                        .skills
                        .iter()
                        .enumerate()
                        .map(|(k, s)| FighterSkillView {
                            code: s.code.clone(),
                            kind: s.kind,
                            power: s.power,
                            cooldown: s.cooldown,
                            ready_in: c.ready_in(i, k),
                        })
                        .collect(),
                })
                .collect(),
            turn_deadline: b.turn_deadline.map(rfc3339),
            settled: b.settled,
            result: b
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            last_turn: b.last.as_ref().map(|r| TurnView::new(c, r)),
        }
    }
}

/// `submit_turn`: the battle after the turn, and the turn resolved.
#[derive(Debug, Serialize)]
pub struct SubmitTurnAnswer {
    #[serde(flatten)]
    pub battle: BattleView,
    pub resolved: TurnView,
}

/// Notification subjects and codes (`notifications` pushes; content is JSON).
pub mod notify {
    /// The caravan reached the end of its trip: [`super::ArrivedNotice`].
    pub const TRAVEL_ARRIVED: (&str, i32) = ("travel_arrived", 101);
    /// Bandits stopped the caravan; a battle began: [`super::EncounterNotice`].
    pub const TRAVEL_ENCOUNTER: (&str, i32) = ("travel_encounter", 102);
    /// A battle turn was resolved (submitted or timed out): [`super::TurnNotice`].
    pub const BATTLE_TURN: (&str, i32) = ("battle_turn", 103);
    /// A battle ended and was settled: [`super::BattleEndedNotice`].
    pub const BATTLE_ENDED: (&str, i32) = ("battle_ended", 104);
    /// This node is draining: reconnect to one of `reconnect_to` (client addresses); the
    /// socket closes with 1001 next.
    pub const SERVER_DRAINING: (&str, i32) = ("server_draining", 105);
}

#[derive(Debug, Serialize)]
pub struct ArrivedNotice {
    pub character_id: Uuid,
    pub node: String,
    pub from: String,
    pub arrived_at: String,
}

impl ArrivedNotice {
    pub fn new(character_id: Uuid, from: &str, node: &str) -> ArrivedNotice {
        ArrivedNotice {
            character_id,
            node: node.to_string(),
            from: from.to_string(),
            arrived_at: rfc3339(Utc::now()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EncounterNotice {
    pub character_id: Uuid,
    pub battle_id: Uuid,
    pub from: String,
    pub to: String,
    /// Where on the road (0.0..=1.0).
    pub progress: f64,
    pub battle: BattleView,
}

#[derive(Debug, Serialize)]
pub struct TurnNotice {
    pub battle_id: Uuid,
    pub character_id: Uuid,
    pub resolved: TurnView,
    pub battle: BattleView,
}

#[derive(Debug, Serialize)]
pub struct BattleEndedNotice {
    pub battle_id: Uuid,
    pub character_id: Uuid,
    pub outcome: String,
    /// The settlement summary (as in `battle_encounter.result_payload`).
    pub result: serde_json::Value,
    pub character: CharacterView,
}
