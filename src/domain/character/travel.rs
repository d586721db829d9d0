//! Travel rules: pure functions over plain data and wall-clock milliseconds.
//!
//! A trip follows one catalog route. Its duration comes from the route's distance and the
//! caravan's speed (wagons, crew, cargo load), times the node's `travel_time_scale`. Whether
//! the caravan meets bandits, and where on the road, is drawn once at departure from the
//! trip's seed: the chance comes from the route's danger and who holds the destination (see
//! [`encounter_chance`]), unless `encounter_rate` overrides it. At most one encounter per trip.
//!
//! A [`Trip`] holds only absolute times, so it survives passivation and a move to another
//! node: the session that loads it asks [`next`] what is due now.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rules::{capacity, cargo_weight, RuleError};
use super::state::CharacterState;
use crate::domain::battle::rng::Rng;
use crate::domain::catalog::{skill_kind, Catalog};

/// Milliseconds one league takes at speed 1 (at the starting speed of 10: 3 s a league).
pub const LEAGUE_MS_AT_SPEED_1: f64 = 30_000.0;
/// A full caravan goes this much slower (fraction of its speed lost at full load).
pub const FULL_LOAD_SLOWDOWN: f64 = 0.4;
/// Encounters happen between these fractions of the road.
pub const ENCOUNTER_WINDOW: (f64, f64) = (0.25, 0.75);

/// The node-wide settings of travel (from the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TravelSettings {
    /// Overrides every route's encounter chance (0.0..=1.0).
    pub encounter_rate: Option<f64>,
    /// Factor on every trip's duration.
    pub time_scale: f64,
}

impl Default for TravelSettings {
    fn default() -> Self {
        TravelSettings {
            encounter_rate: None,
            time_scale: 1.0,
        }
    }
}

/// A caravan on the road. Stored as JSON in `player_character.travel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trip {
    pub from: String,
    pub to: String,
    pub distance: i32,
    pub danger: i32,
    pub seed: u64,
    /// Wall-clock departure (Unix ms). After a battle it is moved so that the time already
    /// travelled still counts.
    pub departed_at_ms: i64,
    pub duration_ms: i64,
    /// When the encounter happens, in ms after departure; `None`: a quiet road.
    #[serde(default)]
    pub encounter_after_ms: Option<i64>,
    #[serde(default)]
    pub encounter_done: bool,
    /// While a battle holds the caravan: ms travelled when it stopped.
    #[serde(default)]
    pub paused_elapsed_ms: Option<i64>,
    #[serde(default)]
    pub battle_id: Option<Uuid>,
}

/// What is due on a trip now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing yet: look again in this many ms.
    Wait(i64),
    Encounter,
    Arrive,
    /// A battle holds the caravan.
    Paused,
}

/// The caravan's speed in leagues per (league time at speed 1): wagons plus crew, slowed by
/// the load. At least 1.
pub fn speed(state: &CharacterState, catalog: &Catalog) -> f64 {
    let crew: i64 = state
        .crew
        .iter()
        .filter(|c| c.alive)
        .filter_map(|c| catalog.crew(&c.archetype))
        .map(|a| i64::from(a.speed.max(0)))
        .sum();
    let base = (i64::from(state.caravan.speed.max(1)) + crew) as f64;
    let cap = capacity(state, catalog).max(1) as f64;
    let load = (cargo_weight(state, catalog) as f64 / cap).clamp(0.0, 1.0);
    (base * (1.0 - FULL_LOAD_SLOWDOWN * load)).max(1.0)
}

/// How long a trip of `distance` leagues takes at `speed`, scaled: at least 1 ms.
pub fn duration_ms(distance: i32, speed: f64, scale: f64) -> i64 {
    let ms = f64::from(distance.max(1)) * LEAGUE_MS_AT_SPEED_1 / speed.max(1.0) * scale;
    if ms.is_finite() {
        ms.round().clamp(1.0, 1e12) as i64
    } else {
        1
    }
}

/// The chance of an encounter on the road to `to`: the route's danger (percent), lowered by
/// travel skills (their power in percent), halved on the way to a node of the character's own
/// faction and raised by a quarter towards another faction's. `encounter_rate` overrides it.
pub fn encounter_chance(
    state: &CharacterState,
    catalog: &Catalog,
    to: &str,
    danger: i32,
    settings: &TravelSettings,
) -> f64 {
    if let Some(rate) = settings.encounter_rate {
        return rate.clamp(0.0, 1.0);
    }
    let mut p = f64::from(danger.clamp(0, 100)) / 100.0;
    let caution: i32 = state
        .skills
        .keys()
        .filter_map(|s| catalog.skill(s))
        .filter(|s| s.kind == skill_kind::TRAVEL)
        .map(|s| s.power.clamp(0, 100))
        .sum();
    p *= f64::from(100 - caution.min(90)) / 100.0;
    match catalog.node(to).and_then(|n| n.faction.as_deref()) {
        Some(f) if f == state.faction => p *= 0.5,
        Some(_) => p *= 1.25,
        None => {}
    }
    p.clamp(0.0, 1.0)
}

/// Plans a trip from the character's node to `to`, leaving at `now_ms`.
pub fn plan(
    state: &CharacterState,
    catalog: &Catalog,
    to: &str,
    settings: &TravelSettings,
    seed: u64,
    now_ms: i64,
) -> Result<Trip, RuleError> {
    if catalog.node(to).is_none() {
        return Err(RuleError::Invalid(format!("unknown node `{to}`")));
    }
    if state.battle_id.is_some() {
        return Err(RuleError::NotAllowed("the character is in a battle".into()));
    }
    if let Some(t) = &state.travel {
        return Err(RuleError::NotAllowed(format!(
            "the caravan is already on the road to {}",
            t.to
        )));
    }
    if to == state.location {
        return Err(RuleError::Invalid(format!(
            "the caravan is already at {to}"
        )));
    }
    let route = catalog.route(&state.location, to).ok_or_else(|| {
        RuleError::NotAllowed(format!("there is no road from {} to {to}", state.location))
    })?;
    if cargo_weight(state, catalog) > capacity(state, catalog) {
        return Err(RuleError::NotAllowed(
            "the caravan carries more than it can haul".into(),
        ));
    }
    let duration = duration_ms(route.distance, speed(state, catalog), settings.time_scale);
    let mut rng = Rng::derive(seed, 0);
    let chance = encounter_chance(state, catalog, to, route.danger, settings);
    let encounter_after_ms = (rng.unit() < chance).then(|| {
        let (lo, hi) = ENCOUNTER_WINDOW;
        let at = lo + (hi - lo) * rng.unit();
        ((duration as f64) * at).round() as i64
    });
    Ok(Trip {
        from: state.location.clone(),
        to: to.to_string(),
        distance: route.distance,
        danger: route.danger,
        seed,
        departed_at_ms: now_ms,
        duration_ms: duration,
        encounter_after_ms,
        encounter_done: false,
        paused_elapsed_ms: None,
        battle_id: None,
    })
}

/// Ms travelled at `now_ms`, 0..=duration.
pub fn elapsed(trip: &Trip, now_ms: i64) -> i64 {
    let e = trip
        .paused_elapsed_ms
        .unwrap_or_else(|| now_ms.saturating_sub(trip.departed_at_ms));
    e.clamp(0, trip.duration_ms.max(0))
}

/// Fraction of the road behind, 0.0..=1.0.
pub fn progress(trip: &Trip, now_ms: i64) -> f64 {
    if trip.duration_ms <= 0 {
        return 1.0;
    }
    elapsed(trip, now_ms) as f64 / trip.duration_ms as f64
}

/// When the caravan arrives (Unix ms), unless a battle holds it.
pub fn arrives_at(trip: &Trip) -> Option<i64> {
    match trip.paused_elapsed_ms {
        Some(_) => None,
        None => Some(trip.departed_at_ms.saturating_add(trip.duration_ms)),
    }
}

/// What is due at `now_ms`.
pub fn next(trip: &Trip, now_ms: i64) -> Next {
    if trip.paused_elapsed_ms.is_some() || trip.battle_id.is_some() {
        return Next::Paused;
    }
    let e = now_ms.saturating_sub(trip.departed_at_ms);
    if let (Some(at), false) = (trip.encounter_after_ms, trip.encounter_done) {
        return if e >= at {
            Next::Encounter
        } else {
            Next::Wait(at - e)
        };
    }
    if e >= trip.duration_ms {
        Next::Arrive
    } else {
        Next::Wait(trip.duration_ms - e)
    }
}

/// The battle an encounter on this trip starts: its id and seed, both from the trip's seed
/// (a retried start names the same battle).
pub fn encounter_battle(trip: &Trip) -> (Uuid, u64) {
    let mut rng = Rng::derive(trip.seed, 1);
    (rng.uuid(), rng.next_u64())
}

/// The trip held by battle `battle_id` at `now_ms`: the encounter is used up.
pub fn pause(trip: &Trip, now_ms: i64, battle_id: Uuid) -> Trip {
    Trip {
        paused_elapsed_ms: Some(elapsed(trip, now_ms)),
        battle_id: Some(battle_id),
        encounter_done: true,
        ..trip.clone()
    }
}

/// The trip going on after a battle, at `now_ms`: the time already travelled still counts.
pub fn resume(trip: &Trip, now_ms: i64) -> Trip {
    let done = trip
        .paused_elapsed_ms
        .unwrap_or_else(|| elapsed(trip, now_ms));
    Trip {
        departed_at_ms: now_ms.saturating_sub(done),
        paused_elapsed_ms: None,
        battle_id: None,
        encounter_done: true,
        ..trip.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::character::rules::new_character;
    use crate::persistence::default_catalog::default_catalog;
    use proptest::prelude::*;

    fn at_port() -> (Catalog, CharacterState) {
        let catalog = default_catalog();
        let c = new_character(
            &catalog,
            Uuid::new_v4(),
            Uuid::new_v4(),
            "Ada",
            "merchant_league",
            "sellsword",
        )
        .unwrap();
        assert_eq!(c.location, "port_azul");
        (catalog, c)
    }

    fn forced(rate: f64, scale: f64) -> TravelSettings {
        TravelSettings {
            encounter_rate: Some(rate),
            time_scale: scale,
        }
    }

    #[test]
    fn plans_follow_routes() {
        let (catalog, c) = at_port();
        let s = TravelSettings::default();
        assert!(
            plan(&c, &catalog, "frostgate", &s, 1, 0).is_err(),
            "no road"
        );
        assert!(plan(&c, &catalog, "atlantis", &s, 1, 0).is_err());
        assert!(
            plan(&c, &catalog, "port_azul", &s, 1, 0).is_err(),
            "already there"
        );
        let t = plan(&c, &catalog, "saltspire", &s, 1, 1000).unwrap();
        assert_eq!((t.from.as_str(), t.distance), ("port_azul", 40));
        // 40 leagues at speed 10: 2 minutes.
        assert_eq!(t.duration_ms, 120_000);
        let mut busy = c.clone();
        busy.travel = Some(t.clone());
        assert!(plan(&busy, &catalog, "saltspire", &s, 1, 0).is_err());
        let mut fighting = c.clone();
        fighting.battle_id = Some(Uuid::new_v4());
        assert!(plan(&fighting, &catalog, "saltspire", &s, 1, 0).is_err());
    }

    #[test]
    fn load_slows_and_scale_shortens() {
        let (catalog, mut c) = at_port();
        let quick = speed(&c, &catalog);
        c.cargo.insert("salt".into(), 100); // 200 weight: full
        assert!(speed(&c, &catalog) < quick);
        assert_eq!(duration_ms(40, 10.0, 0.001), 120);
        assert_eq!(duration_ms(40, 10.0, 1e-9), 1);
    }

    #[test]
    fn encounter_rate_forces_one_or_none() {
        let (catalog, c) = at_port();
        for seed in 0..50 {
            let t = plan(&c, &catalog, "saltspire", &forced(1.0, 1.0), seed, 0).unwrap();
            let at = t.encounter_after_ms.expect("forced");
            assert!((30_000..=90_000).contains(&at), "{at}");
            let t = plan(&c, &catalog, "saltspire", &forced(0.0, 1.0), seed, 0).unwrap();
            assert_eq!(t.encounter_after_ms, None);
        }
        // Own faction's port is safer than a rival's marsh.
        let s = TravelSettings::default();
        let own = encounter_chance(&c, &catalog, "saltspire", 40, &s);
        let rival = encounter_chance(&c, &catalog, "greenmarsh", 40, &s);
        let neutral = encounter_chance(&c, &catalog, "kings_crossing", 40, &s);
        assert!(own < neutral && neutral < rival);
    }

    #[test]
    fn a_trip_waits_meets_pauses_resumes_and_arrives() {
        let (catalog, c) = at_port();
        let t = plan(&c, &catalog, "saltspire", &forced(1.0, 1.0), 7, 0).unwrap();
        let at = t.encounter_after_ms.unwrap();
        assert_eq!(next(&t, 0), Next::Wait(at));
        assert_eq!(next(&t, at), Next::Encounter);
        let (id, _) = encounter_battle(&t);
        assert_eq!(encounter_battle(&t).0, id, "same trip, same battle");
        let p = pause(&t, at + 5, id);
        assert_eq!(next(&p, at + 1_000_000), Next::Paused);
        assert_eq!(elapsed(&p, at + 1_000_000), at + 5);
        assert_eq!(arrives_at(&p), None);
        let r = resume(&p, 500_000);
        assert_eq!(
            elapsed(&r, 500_000),
            at + 5,
            "time on the road still counts"
        );
        assert_eq!(next(&r, 500_000), Next::Wait(t.duration_ms - at - 5));
        assert_eq!(next(&r, r.departed_at_ms + t.duration_ms), Next::Arrive);
        assert_eq!(progress(&r, i64::MAX), 1.0);
    }

    proptest! {
        #[test]
        fn progress_is_monotonic_and_bounded(seed in any::<u64>(), scale in 0.0001f64..10.0, a in 0i64..1_000_000_000, b in 0i64..1_000_000_000) {
            let (catalog, c) = at_port();
            let t = plan(&c, &catalog, "kings_crossing", &forced(0.5, scale), seed, 0).unwrap();
            prop_assert!(t.duration_ms >= 1);
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(progress(&t, lo) <= progress(&t, hi));
            prop_assert!((0.0..=1.0).contains(&progress(&t, hi)));
            if let Some(at) = t.encounter_after_ms {
                prop_assert!(at >= 0 && at <= t.duration_ms);
            }
        }
    }
}
