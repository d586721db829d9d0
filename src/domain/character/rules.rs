//! Character rules: creation, cargo and capacity, trade checks, crew and skills. Pure
//! functions over plain data; the CharacterSession actor only carries out what they decide.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::state::{Caravan, CharacterState, CrewMember};
use crate::domain::catalog::Catalog;
use crate::domain::market::rules::Side;

/// How many characters one account may own.
pub const MAX_CHARACTERS_PER_ACCOUNT: i64 = 8;
/// How many crew members (alive) a caravan may have.
pub const MAX_CREW: usize = 8;
/// Name length bounds, in characters.
pub const NAME_LEN: std::ops::RangeInclusive<usize> = 2..=24;
/// A new caravan: one wagon.
pub const STARTING_CARAVAN: Caravan = Caravan {
    capacity: 200,
    speed: 10,
};
/// Skill points a new character starts with.
pub const STARTING_SKILL_POINTS: i32 = 3;

/// Why a rule refused a change. Each maps to a client error with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotAllowed(String),
}

fn invalid(msg: impl Into<String>) -> RuleError {
    RuleError::Invalid(msg.into())
}

fn not_allowed(msg: impl Into<String>) -> RuleError {
    RuleError::NotAllowed(msg.into())
}

/// Checks a character name: trimmed, 2–24 characters, letters, digits, spaces, `'`, `-`.
pub fn validate_name(name: &str) -> Result<String, RuleError> {
    let name = name.trim();
    let len = name.chars().count();
    if !NAME_LEN.contains(&len) {
        return Err(invalid(format!(
            "name must be {} to {} characters",
            NAME_LEN.start(),
            NAME_LEN.end()
        )));
    }
    let ok = name
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c == '\'' || c == '-');
    if !ok || name.contains("  ") {
        return Err(invalid(
            "name may contain letters, digits, single spaces, ' and - only",
        ));
    }
    Ok(name.to_string())
}

/// A new character of `faction` and `background`, at the faction's home node.
pub fn new_character(
    catalog: &Catalog,
    id: Uuid,
    user_id: Uuid,
    name: &str,
    faction: &str,
    background: &str,
) -> Result<CharacterState, RuleError> {
    let name = validate_name(name)?;
    let f = catalog
        .faction(faction)
        .ok_or_else(|| invalid(format!("unknown faction `{faction}`")))?;
    let b = catalog
        .background(background)
        .ok_or_else(|| invalid(format!("unknown background `{background}`")))?;
    let attributes: BTreeMap<String, i64> = [
        ("strength", b.strength),
        ("cunning", b.cunning),
        ("charisma", b.charisma),
        ("endurance", b.endurance),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v as i64))
    .collect();
    let max_hp = 50 + 5 * b.endurance.clamp(0, 100);
    Ok(CharacterState {
        id,
        user_id,
        name,
        faction: f.code.clone(),
        background: b.code.clone(),
        gold: b.starting_gold.max(0),
        location: f.home_node.clone(),
        level: 1,
        xp: 0,
        hp: max_hp,
        max_hp,
        skill_points: STARTING_SKILL_POINTS,
        attributes,
        skills: BTreeMap::new(),
        items: Vec::new(),
        crew: Vec::new(),
        caravan: STARTING_CARAVAN,
        cargo: BTreeMap::new(),
        travel: None,
        battle_id: None,
    })
}

/// Total weight the caravan can carry: wagons plus every living crew member's share.
pub fn capacity(state: &CharacterState, catalog: &Catalog) -> i64 {
    let crew: i64 = state
        .crew
        .iter()
        .filter(|c| c.alive)
        .filter_map(|c| catalog.crew(&c.archetype))
        .map(|a| a.capacity.max(0))
        .fold(0i64, |acc, c| acc.saturating_add(c));
    state.caravan.capacity.saturating_add(crew)
}

/// What a character is worth on the `wealth` board: gold plus cargo at base price.
pub fn wealth(state: &CharacterState, catalog: &Catalog) -> i64 {
    state
        .cargo
        .iter()
        .map(|(good, qty)| {
            catalog
                .good(good)
                .map_or(0, |g| g.base_price.max(0).saturating_mul(*qty))
        })
        .fold(state.gold.max(0), |acc, v| acc.saturating_add(v))
}

/// Weight of the cargo carried (goods unknown to the catalog weigh nothing).
pub fn cargo_weight(state: &CharacterState, catalog: &Catalog) -> i64 {
    state
        .cargo
        .iter()
        .map(|(good, qty)| {
            catalog
                .good(good)
                .map_or(0, |g| (g.weight.max(0) as i64).saturating_mul(*qty))
        })
        .fold(0i64, |acc, w| acc.saturating_add(w))
}

/// What a trade does to a character once the market has priced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeEffect {
    pub gold_after: i64,
    pub cargo_after: i64,
}

/// Checks what can be checked before asking the market: the character is at a market, free,
/// holds enough to sell, and has room to buy.
pub fn precheck_trade(
    state: &CharacterState,
    catalog: &Catalog,
    good: &str,
    side: Side,
    quantity: i64,
) -> Result<(), RuleError> {
    let g = catalog
        .good(good)
        .ok_or_else(|| invalid(format!("unknown good `{good}`")))?;
    if quantity <= 0 || quantity > crate::domain::market::rules::MAX_ORDER {
        return Err(invalid(format!(
            "quantity must be 1 to {}",
            crate::domain::market::rules::MAX_ORDER
        )));
    }
    if state.travel.is_some() {
        return Err(not_allowed(
            "the caravan is travelling; trade when it arrives",
        ));
    }
    if state.battle_id.is_some() {
        return Err(not_allowed("the character is in a battle"));
    }
    if catalog.stock(&state.location, good).is_none() {
        return Err(not_allowed(format!(
            "`{good}` is not traded at {}",
            state.location
        )));
    }
    match side {
        Side::Sell => {
            let held = state.cargo.get(good).copied().unwrap_or(0);
            if held < quantity {
                return Err(not_allowed(format!(
                    "cannot sell {quantity} {good}: the caravan holds {held}"
                )));
            }
        }
        Side::Buy => {
            let extra = (g.weight.max(0) as i64)
                .checked_mul(quantity)
                .ok_or_else(|| invalid("quantity too large"))?;
            let room = capacity(state, catalog).saturating_sub(cargo_weight(state, catalog));
            if extra > room {
                return Err(not_allowed(format!(
                    "not enough cargo space: needs {extra}, {room} free"
                )));
            }
        }
    }
    Ok(())
}

/// Settles the money side of a priced trade: enough gold to buy, no overflow on a sale.
pub fn trade_effect(
    state: &CharacterState,
    good: &str,
    side: Side,
    quantity: i64,
    total: i64,
) -> Result<TradeEffect, RuleError> {
    let held = state.cargo.get(good).copied().unwrap_or(0);
    match side {
        Side::Buy => {
            if total > state.gold {
                return Err(not_allowed(format!(
                    "not enough gold: the trade costs {total}, you have {}",
                    state.gold
                )));
            }
            Ok(TradeEffect {
                gold_after: state.gold - total,
                cargo_after: held
                    .checked_add(quantity)
                    .ok_or_else(|| invalid("quantity too large"))?,
            })
        }
        Side::Sell => Ok(TradeEffect {
            gold_after: state
                .gold
                .checked_add(total)
                .ok_or_else(|| not_allowed("gold would overflow"))?,
            cargo_after: held
                .checked_sub(quantity)
                .filter(|q| *q >= 0)
                .ok_or_else(|| invalid("not enough cargo"))?,
        }),
    }
}

/// Applies a committed trade to the in-memory state.
pub fn apply_trade(state: &mut CharacterState, good: &str, effect: &TradeEffect) {
    state.gold = effect.gold_after;
    if effect.cargo_after > 0 {
        state.cargo.insert(good.to_string(), effect.cargo_after);
    } else {
        state.cargo.remove(good);
    }
}

/// A crew member to hire, and what it costs.
pub fn hire(
    state: &CharacterState,
    catalog: &Catalog,
    archetype: &str,
    name: Option<&str>,
    id: Uuid,
) -> Result<(CrewMember, i64), RuleError> {
    let a = catalog
        .crew(archetype)
        .ok_or_else(|| invalid(format!("unknown crew archetype `{archetype}`")))?;
    if state.crew.iter().filter(|c| c.alive).count() >= MAX_CREW {
        return Err(not_allowed(format!(
            "a caravan has at most {MAX_CREW} crew"
        )));
    }
    if state.battle_id.is_some() {
        return Err(not_allowed("the character is in a battle"));
    }
    if state.travel.is_some() {
        return Err(not_allowed("crew is hired in town, not on the road"));
    }
    if a.hire_cost > state.gold {
        return Err(not_allowed(format!(
            "not enough gold: hiring costs {}, you have {}",
            a.hire_cost, state.gold
        )));
    }
    let name = match name {
        Some(n) => validate_name(n)?,
        None => a.name.clone(),
    };
    let member = CrewMember {
        id,
        archetype: a.code.clone(),
        name,
        hp: a.hp,
        max_hp: a.hp,
        alive: true,
        injured: false,
    };
    Ok((member, a.hire_cost))
}

/// Checks that a crew member can be dismissed without overloading the caravan.
pub fn dismiss(state: &CharacterState, catalog: &Catalog, crew_id: Uuid) -> Result<(), RuleError> {
    let member = state
        .crew
        .iter()
        .find(|c| c.id == crew_id)
        .ok_or_else(|| invalid("no such crew member"))?;
    if state.battle_id.is_some() {
        return Err(not_allowed("the character is in a battle"));
    }
    if state.travel.is_some() && member.alive {
        return Err(not_allowed("crew is dismissed in town, not on the road"));
    }
    let share = if member.alive {
        catalog
            .crew(&member.archetype)
            .map_or(0, |a| a.capacity.max(0))
    } else {
        0
    };
    let after = capacity(state, catalog).saturating_sub(share);
    if cargo_weight(state, catalog) > after {
        return Err(not_allowed(
            "dismissing this crew member would leave more cargo than the caravan can carry",
        ));
    }
    Ok(())
}

/// Learning a skill: known code, prerequisite learned, enough skill points. Returns the new rank.
pub fn learn(state: &CharacterState, catalog: &Catalog, skill: &str) -> Result<i64, RuleError> {
    let s = catalog
        .skill(skill)
        .ok_or_else(|| invalid(format!("unknown skill `{skill}`")))?;
    if state.skills.contains_key(skill) {
        return Err(not_allowed(format!("`{skill}` is already learned")));
    }
    if let Some(req) = &s.requires {
        if !state.skills.contains_key(req) {
            return Err(not_allowed(format!("`{skill}` requires `{req}` first")));
        }
    }
    if s.cost > state.skill_points {
        return Err(not_allowed(format!(
            "`{skill}` costs {} skill points, you have {}",
            s.cost, state.skill_points
        )));
    }
    Ok(1)
}

/// Highest level.
pub const MAX_LEVEL: i32 = 50;

/// Experience needed to reach `level`: 50 × level × (level − 1) (level 2 at 100, 3 at 300 …).
pub fn xp_for_level(level: i32) -> i64 {
    let l = i64::from(level.clamp(1, MAX_LEVEL));
    50 * l * (l - 1)
}

/// The level `xp` reaches.
pub fn level_for_xp(xp: i64) -> i32 {
    (1..=MAX_LEVEL)
        .take_while(|l| xp_for_level(*l) <= xp)
        .last()
        .unwrap_or(1)
}

/// What a settled battle did to a character, as the client is told (and as
/// `battle_encounter.result_payload` keeps it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BattleSummary {
    pub outcome: &'static str,
    pub turns: u32,
    pub xp: i64,
    pub level: i32,
    pub levels_gained: i32,
    /// Gold won (positive) or taken (negative).
    pub gold: i64,
    pub items: Vec<crate::domain::battle::rules::LootItem>,
    pub hp: i32,
    pub crew: Vec<crate::domain::battle::rules::CrewOutcome>,
    pub crew_lost: Vec<Uuid>,
    pub cargo_lost: Vec<CargoLoss>,
    /// Where the caravan is (lost: driven back to where the trip began).
    pub location: String,
    /// Whether the trip goes on (won, fled).
    pub travelling: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CargoLoss {
    pub good: String,
    pub quantity: i64,
}

/// The character after a battle ends, and the summary. Won: experience, the enemies' gold and
/// the dropped items. Lost: a fifth of the experience, a share of the gold and half of every
/// good taken, and the caravan is driven back to where its trip began. Fled: some cargo
/// dropped. Always: hit points and crew as the battle left them (crew at 0 hp are dead, at a
/// third or less injured); a won or fled trip goes on from where it stopped.
pub fn apply_battle(
    state: &CharacterState,
    rewards: &crate::domain::battle::rules::Rewards,
    now_ms: i64,
) -> (CharacterState, BattleSummary) {
    use crate::domain::battle::rules::Outcome;
    let mut s = state.clone();
    let before_level = s.level;
    s.xp = s.xp.saturating_add(rewards.xp.max(0));
    let level = level_for_xp(s.xp).max(s.level);
    let gained = level - s.level;
    s.level = level;
    s.skill_points = s.skill_points.saturating_add(gained);
    s.max_hp = s.max_hp.saturating_add(5 * gained);
    let gold_before = s.gold;
    s.gold = s.gold.saturating_add(rewards.gold_found.max(0));
    s.gold -= s.gold / 100 * i64::from(rewards.gold_loss_percent.min(100))
        + s.gold % 100 * i64::from(rewards.gold_loss_percent.min(100)) / 100;
    s.gold = s.gold.max(0);
    let mut cargo_lost = Vec::new();
    for (good, qty) in s.cargo.iter_mut() {
        let lost = *qty / 100 * i64::from(rewards.cargo_loss_percent.min(100))
            + *qty % 100 * i64::from(rewards.cargo_loss_percent.min(100)) / 100;
        if lost > 0 {
            *qty -= lost;
            cargo_lost.push(CargoLoss {
                good: good.clone(),
                quantity: lost,
            });
        }
    }
    s.cargo.retain(|_, q| *q > 0);
    s.hp = rewards.character_hp.clamp(1, s.max_hp.max(1));
    let mut crew_lost = Vec::new();
    for out in &rewards.crew {
        if let Some(m) = s.crew.iter_mut().find(|m| m.id == out.id) {
            m.hp = out.hp.clamp(0, m.max_hp);
            m.alive = out.alive;
            m.injured = out.injured;
            if !out.alive {
                crew_lost.push(m.id);
            }
        }
    }
    for item in &rewards.items {
        s.items.push(super::state::Item {
            id: item.id,
            template: item.template.clone(),
            quantity: 1,
            equipped: false,
        });
    }
    s.battle_id = None;
    s.travel = match (rewards.outcome, s.travel.take()) {
        (Outcome::Lost, Some(trip)) => {
            s.location = trip.from;
            None
        }
        (_, Some(trip)) => Some(super::travel::resume(&trip, now_ms)),
        (_, None) => None,
    };
    let summary = BattleSummary {
        outcome: rewards.outcome.as_str(),
        turns: rewards.turns,
        xp: s.xp - state.xp,
        level: s.level,
        levels_gained: s.level - before_level,
        gold: s.gold - gold_before,
        items: rewards.items.clone(),
        hp: s.hp,
        crew: rewards.crew.clone(),
        crew_lost,
        cargo_lost,
        location: s.location.clone(),
        travelling: s.travel.is_some(),
    };
    (s, summary)
}

/// The character once its caravan reaches the end of its trip: at the destination, rested
/// (hit points full, crew injuries healed).
pub fn arrive(state: &CharacterState) -> CharacterState {
    let mut s = state.clone();
    if let Some(trip) = s.travel.take() {
        s.location = trip.to;
    }
    s.hp = s.max_hp;
    for m in s.crew.iter_mut().filter(|m| m.alive) {
        m.hp = m.max_hp;
        m.injured = false;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::default_catalog::default_catalog;
    use proptest::prelude::*;

    fn fresh() -> (Catalog, CharacterState) {
        let catalog = default_catalog();
        let f = catalog.factions()[0].code.clone();
        let b = catalog.backgrounds()[0].code.clone();
        let c = new_character(&catalog, Uuid::new_v4(), Uuid::new_v4(), "Ada", &f, &b).unwrap();
        (catalog, c)
    }

    fn traded_good(catalog: &Catalog, state: &CharacterState) -> String {
        catalog
            .stock_at(&state.location)
            .next()
            .expect("home node trades something")
            .good
            .clone()
    }

    #[test]
    fn wealth_is_gold_plus_cargo_at_base_price() {
        let (catalog, mut c) = fresh();
        let good = catalog.goods()[0].clone();
        c.gold = 100;
        c.cargo.insert(good.code.clone(), 3);
        assert_eq!(wealth(&c, &catalog), 100 + 3 * good.base_price);
        c.cargo.insert(good.code.clone(), i64::MAX);
        assert_eq!(wealth(&c, &catalog), i64::MAX, "saturates, never overflows");
    }

    #[test]
    fn names() {
        assert_eq!(validate_name("  Ada Lovelace ").unwrap(), "Ada Lovelace");
        for bad in [
            "a",
            "",
            "x".repeat(25).as_str(),
            "tab\there",
            "two  spaces",
            "semi;colon",
            "new\nline",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_new_character_starts_home_with_the_background_gold() {
        let (catalog, c) = fresh();
        let f = catalog.faction(&c.faction).unwrap();
        assert_eq!(c.location, f.home_node);
        assert_eq!(
            c.gold,
            catalog.background(&c.background).unwrap().starting_gold
        );
        assert!(c.hp > 0 && c.hp == c.max_hp);
        assert!(new_character(
            &catalog,
            Uuid::new_v4(),
            Uuid::new_v4(),
            "Bo",
            "nope",
            &c.background
        )
        .is_err());
        assert!(new_character(
            &catalog,
            Uuid::new_v4(),
            Uuid::new_v4(),
            "Bo",
            &c.faction,
            "nope"
        )
        .is_err());
    }

    #[test]
    fn trades_check_cargo_space_gold_and_holdings() {
        let (catalog, mut c) = fresh();
        let good = traded_good(&catalog, &c);
        assert!(
            precheck_trade(&c, &catalog, &good, Side::Sell, 1).is_err(),
            "nothing to sell"
        );
        assert!(precheck_trade(&c, &catalog, &good, Side::Buy, 0).is_err());
        assert!(precheck_trade(&c, &catalog, &good, Side::Buy, -5).is_err());
        assert!(precheck_trade(&c, &catalog, &good, Side::Buy, i64::MAX).is_err());
        assert!(precheck_trade(&c, &catalog, "unobtainium", Side::Buy, 1).is_err());
        assert!(precheck_trade(&c, &catalog, &good, Side::Buy, 1).is_ok());
        assert!(
            trade_effect(&c, &good, Side::Buy, 1, c.gold + 1).is_err(),
            "too expensive"
        );
        let effect = trade_effect(&c, &good, Side::Buy, 2, 10).unwrap();
        apply_trade(&mut c, &good, &effect);
        assert_eq!(c.cargo[&good], 2);
        let effect = trade_effect(&c, &good, Side::Sell, 2, 8).unwrap();
        apply_trade(&mut c, &good, &effect);
        assert!(!c.cargo.contains_key(&good), "an emptied good is removed");
        c.gold = i64::MAX;
        c.cargo.insert(good.clone(), 1);
        assert!(
            trade_effect(&c, &good, Side::Sell, 1, 1).is_err(),
            "gold never overflows"
        );
    }

    #[test]
    fn crew_and_skills() {
        let (catalog, mut c) = fresh();
        c.gold = 1_000_000;
        let arch = catalog.crew_archetypes()[0].code.clone();
        let before = capacity(&c, &catalog);
        for _ in 0..MAX_CREW {
            let (m, cost) = hire(&c, &catalog, &arch, None, Uuid::new_v4()).unwrap();
            c.gold -= cost;
            c.crew.push(m);
        }
        assert!(capacity(&c, &catalog) >= before);
        assert!(
            hire(&c, &catalog, &arch, None, Uuid::new_v4()).is_err(),
            "crew is full"
        );
        let id = c.crew[0].id;
        assert!(dismiss(&c, &catalog, id).is_ok());
        assert!(dismiss(&c, &catalog, Uuid::new_v4()).is_err());
        let root = catalog
            .skills()
            .iter()
            .find(|s| s.requires.is_none() && s.cost <= c.skill_points)
            .unwrap();
        assert_eq!(learn(&c, &catalog, &root.code), Ok(1));
        c.skills.insert(root.code.clone(), 1);
        assert!(learn(&c, &catalog, &root.code).is_err(), "already learned");
        if let Some(dep) = catalog
            .skills()
            .iter()
            .find(|s| s.requires.is_some() && !c.skills.contains_key(s.requires.as_ref().unwrap()))
        {
            assert!(
                learn(&c, &catalog, &dep.code).is_err(),
                "prerequisite missing"
            );
        }
        c.skill_points = 0;
        assert!(catalog
            .skills()
            .iter()
            .filter(|s| s.cost > 0)
            .all(|s| learn(&c, &catalog, &s.code).is_err()));
    }

    fn rewards(
        outcome: crate::domain::battle::rules::Outcome,
    ) -> crate::domain::battle::rules::Rewards {
        crate::domain::battle::rules::Rewards {
            outcome,
            turns: 4,
            xp: 120,
            gold_found: 30,
            gold_loss_percent: 20,
            cargo_loss_percent: 50,
            items: vec![crate::domain::battle::rules::LootItem {
                id: Uuid::from_u128(7),
                template: "iron_sword".into(),
            }],
            character_hp: 0,
            crew: Vec::new(),
        }
    }

    #[test]
    fn levels_follow_experience() {
        assert_eq!(level_for_xp(0), 1);
        assert_eq!(level_for_xp(99), 1);
        assert_eq!(level_for_xp(100), 2);
        assert_eq!(level_for_xp(299), 2);
        assert_eq!(level_for_xp(300), 3);
        assert_eq!(level_for_xp(i64::MAX), MAX_LEVEL);
    }

    #[test]
    fn a_battle_settles_onto_the_character() {
        use crate::domain::battle::rules::{CrewOutcome, Outcome};
        use crate::domain::character::travel::{self, TravelSettings};
        let (catalog, mut c) = fresh();
        c.gold = 101;
        c.cargo.insert("salt".into(), 7);
        c.cargo.insert("silk".into(), 1);
        let to = catalog
            .routes_from(&c.location)
            .next()
            .unwrap()
            .to_node
            .clone();
        let trip = travel::plan(&c, &catalog, &to, &TravelSettings::default(), 1, 0).unwrap();
        let battle = Uuid::new_v4();
        c.travel = Some(travel::pause(&trip, 1000, battle));
        c.battle_id = Some(battle);
        let arch = catalog.crew_archetypes()[0].code.clone();
        for k in 0..2u128 {
            let (mut m, _) = hire(
                &CharacterState {
                    travel: None,
                    battle_id: None,
                    ..c.clone()
                },
                &catalog,
                &arch,
                None,
                Uuid::from_u128(100 + k),
            )
            .unwrap();
            m.max_hp = 30;
            c.crew.push(m);
        }

        // Won: experience (a level), gold, the item, crew as the battle left them; the trip
        // goes on from where it stopped.
        let mut won = rewards(Outcome::Won);
        won.gold_loss_percent = 0;
        won.cargo_loss_percent = 0;
        won.character_hp = 12;
        won.crew = vec![
            CrewOutcome {
                id: Uuid::from_u128(100),
                hp: 0,
                alive: false,
                injured: false,
            },
            CrewOutcome {
                id: Uuid::from_u128(101),
                hp: 5,
                alive: true,
                injured: true,
            },
        ];
        let (after, summary) = apply_battle(&c, &won, 5000);
        assert_eq!(
            (after.xp, after.level, after.skill_points),
            (120, 2, c.skill_points + 1)
        );
        assert_eq!(after.max_hp, c.max_hp + 5);
        assert_eq!(after.gold, 131);
        assert_eq!(after.hp, 12);
        assert_eq!(after.items.len(), 1);
        assert_eq!(after.battle_id, None);
        assert!(!after.crew[0].alive && after.crew[1].injured);
        assert_eq!(summary.crew_lost, vec![Uuid::from_u128(100)]);
        let resumed = after.travel.as_ref().expect("the trip goes on");
        assert_eq!(resumed.paused_elapsed_ms, None);
        assert_eq!(
            travel::elapsed(resumed, 5000),
            travel::elapsed(c.travel.as_ref().unwrap(), 0)
        );
        assert_eq!(after.location, c.location);
        assert!(summary.travelling && summary.levels_gained == 1);

        // Lost: a fifth of the gold and half the cargo taken, back where the trip began.
        let (after, summary) = apply_battle(&c, &rewards(Outcome::Lost), 5000);
        assert_eq!(after.gold, 101 + 30 - 26);
        assert_eq!(after.cargo.get("salt"), Some(&4));
        assert_eq!(after.cargo.get("silk"), Some(&1), "half of one is nothing");
        assert_eq!(
            summary.cargo_lost,
            vec![CargoLoss {
                good: "salt".into(),
                quantity: 3
            }]
        );
        assert_eq!(after.hp, 1, "beaten, not killed");
        assert_eq!(
            (after.location.as_str(), after.travel.is_none()),
            (c.location.as_str(), true)
        );
        assert!(!summary.travelling);

        // Arrival: at the destination, rested.
        let mut on_road = c.clone();
        on_road.battle_id = None;
        on_road.travel = Some(trip);
        on_road.hp = 3;
        on_road.crew[1].injured = true;
        let there = arrive(&on_road);
        assert_eq!(there.location, to);
        assert_eq!(there.hp, there.max_hp);
        assert!(there.travel.is_none() && !there.crew[1].injured);
    }

    proptest! {
        /// Gold and cargo never go negative whatever the loss percentages.
        #[test]
        fn battle_losses_never_go_negative(gold in 0i64..=i64::MAX / 2, qty in 0i64..=i64::MAX / 2,
                                           gold_pct in 0u32..=1000, cargo_pct in 0u32..=1000, found in 0i64..1_000_000) {
            let (_, mut c) = fresh();
            c.gold = gold;
            c.cargo.insert("salt".into(), qty);
            let mut r = rewards(crate::domain::battle::rules::Outcome::Lost);
            r.gold_loss_percent = gold_pct;
            r.cargo_loss_percent = cargo_pct;
            r.gold_found = found;
            let (after, summary) = apply_battle(&c, &r, 0);
            prop_assert!(after.gold >= 0 && after.cargo.values().all(|q| *q > 0));
            let lost: i64 = summary.cargo_lost.iter().map(|l| l.quantity).sum();
            prop_assert_eq!(after.cargo.get("salt").copied().unwrap_or(0) + lost, qty);
        }

        /// Whatever the quantities and prices, a trade either is refused or keeps gold and
        /// cargo non-negative and conserves them exactly.
        #[test]
        fn trades_never_go_negative_or_overflow(gold in 0i64..=i64::MAX, held in 0i64..=i64::MAX / 2,
                                                qty in i64::MIN..=i64::MAX, total in 0i64..=i64::MAX, buy in any::<bool>()) {
            let (_, mut c) = fresh();
            c.gold = gold;
            c.cargo.insert("grain".into(), held);
            let side = if buy { Side::Buy } else { Side::Sell };
            if let Ok(e) = trade_effect(&c, "grain", side, qty.max(1), total) {
                prop_assert!(e.gold_after >= 0 && e.cargo_after >= 0);
                match side {
                    Side::Buy => prop_assert_eq!(gold - e.gold_after, total),
                    Side::Sell => prop_assert_eq!(e.gold_after - gold, total),
                }
            }
        }
    }
}
