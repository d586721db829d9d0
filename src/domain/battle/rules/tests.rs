use super::*;
use crate::domain::character::rules::new_character;
use crate::domain::character::state::CrewMember;
use crate::persistence::default_catalog::default_catalog;
use proptest::prelude::*;

fn character(catalog: &Catalog, crew: usize) -> CharacterState {
    let f = catalog.factions()[0].code.clone();
    let mut c = new_character(
        catalog,
        Uuid::new_v4(),
        Uuid::new_v4(),
        "Ada",
        &f,
        "sellsword",
    )
    .unwrap();
    for (k, a) in catalog
        .crew_archetypes()
        .iter()
        .cycle()
        .take(crew)
        .enumerate()
    {
        c.crew.push(CrewMember {
            id: Uuid::from_u128(k as u128 + 1),
            archetype: a.code.clone(),
            name: a.name.clone(),
            hp: a.hp,
            max_hp: a.hp,
            alive: true,
            injured: false,
        });
    }
    for s in ["power_strike", "field_medicine", "battle_cry"] {
        c.skills.insert(s.into(), 1);
    }
    c
}

fn combat(seed: u64, danger: i32, crew: usize) -> Combat {
    let catalog = default_catalog();
    let c = character(&catalog, crew);
    Combat::new(seed, new_setup(&c, &catalog, "a", "b", danger, seed)).unwrap()
}

fn req(actor: &str, action: &str) -> ActionRequest {
    ActionRequest {
        actor: actor.into(),
        action: action.into(),
        ..Default::default()
    }
}

/// A strategy-free action plan for the tests: each party fighter standing picks one of
/// attack/defend/skill/flee by `choice`, then the plan goes through `validate` (dropping
/// what it refuses, as a client would retry without it).
fn plan(c: &Combat, choice: &[u8]) -> Vec<Action> {
    let mut out = Vec::new();
    for (i, f) in c.setup.fighters.iter().enumerate() {
        if !f.is_party() || !c.alive(i) {
            continue;
        }
        let pick = choice.get(i).copied().unwrap_or(0);
        let mut r = req(
            &f.id,
            ["attack", "defend", "skill", "flee", "attack"][pick as usize % 5],
        );
        if r.action == "skill" {
            r.skill = f
                .skills
                .get(pick as usize / 5 % f.skills.len().max(1))
                .map(|s| s.code.clone());
        }
        if let Ok(mut a) = validate(c, &[r]) {
            out.append(&mut a);
        }
    }
    out
}

#[test]
fn setup_builds_party_and_enemies() {
    let c = combat(1, 50, 2);
    assert_eq!(c.setup.fighters[0].kind, FighterKind::Character);
    assert_eq!(
        c.setup
            .fighters
            .iter()
            .filter(|f| f.kind == FighterKind::Crew)
            .count(),
        2
    );
    let enemies = c
        .setup
        .fighters
        .iter()
        .filter(|f| f.side == Side::Enemy)
        .count();
    assert!((1..=MAX_ENEMIES).contains(&enemies));
    assert!(c
        .setup
        .fighters
        .iter()
        .all(|f| f.hp > 0 && f.hp <= f.max_hp));
    assert_eq!(c.setup.fighters[0].skills.len(), 3);
    // The setup survives its JSON column.
    let json = serde_json::to_value(&c.setup).unwrap();
    assert_eq!(serde_json::from_value::<Setup>(json).unwrap(), c.setup);
}

#[test]
fn validation() {
    let c = combat(3, 30, 1);
    let me = c.setup.fighters[0].id.clone();
    let crew = c.setup.fighters[1].id.clone();
    let enemy = c
        .setup
        .fighters
        .iter()
        .find(|f| f.side == Side::Enemy)
        .unwrap()
        .id
        .clone();
    assert!(
        validate(&c, &[req(&enemy, "attack")]).is_err(),
        "enemies are not yours"
    );
    assert!(validate(&c, &[req("nobody", "attack")]).is_err());
    assert!(validate(&c, &[req(&me, "dance")]).is_err());
    assert!(
        validate(&c, &[req(&me, "attack"), req(&me, "defend")]).is_err(),
        "two actions"
    );
    assert!(
        validate(&c, &[req(&crew, "flee")]).is_err(),
        "only the master flees"
    );
    let mut r = req(&me, "attack");
    r.target = Some(crew.clone());
    assert!(validate(&c, &[r]).is_err(), "no attacking your crew");
    let mut r = req(&me, "skill");
    r.skill = Some("last_stand".into());
    assert!(validate(&c, &[r]).is_err(), "not learned");
    let mut r = req(&me, "skill");
    r.skill = Some("power_strike".into());
    let a = validate(&c, &[r.clone()]).unwrap();
    assert_eq!(a[0].target.map(usize::from), c.first_alive(Side::Enemy));
    let mut c2 = c.clone();
    resolve_turn(&mut c2, &a, false);
    if c2.state.outcome == Outcome::Active {
        let err = validate(&c2, &[r]).unwrap_err();
        assert!(err.to_string().contains("cooling down"), "{err}");
    }
    let mut heal = req(&me, "skill");
    heal.skill = Some("field_medicine".into());
    assert_eq!(
        validate(&c, &[heal]).unwrap()[0].target,
        Some(0),
        "heals self by default"
    );
    let mut dead = c.clone();
    let e = dead.first_alive(Side::Enemy).unwrap();
    dead.state.hp[e] = 0;
    let mut r = req(&me, "attack");
    r.target = Some(dead.setup.fighters[e].id.clone());
    assert!(validate(&dead, &[r]).is_err(), "target already down");
    dead.state.hp[1] = 0;
    assert!(
        validate(&dead, &[req(&crew, "attack")]).is_err(),
        "actor down"
    );
}

#[test]
fn a_turn_with_no_actions_is_all_defend() {
    let mut c = combat(11, 40, 2);
    let r = resolve_turn(&mut c, &[], true);
    assert!(r.timed_out);
    let defended: Vec<u8> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Defend { actor, auto: true } => Some(*actor),
            _ => None,
        })
        .collect();
    assert_eq!(defended, vec![0, 1, 2]);
    assert!(r
        .events
        .iter()
        .all(|e| !matches!(e, Event::Hit { actor, .. } if *actor < 3)));
}

#[test]
fn flee_cooldowns_and_the_turn_cap() {
    let mut c = combat(5, 0, 0);
    c.setup.flee_chance = 100;
    let me = c.setup.fighters[0].id.clone();
    let a = validate(&c, &[req(&me, "flee")]).unwrap();
    let r = resolve_turn(&mut c, &a, false);
    assert_eq!(r.outcome, Outcome::Fled);
    assert!(validate(&c, &[req(&me, "attack")]).is_err(), "over");
    // Only defending: enemies too weak to win, so the cap ends it.
    let mut c = combat(5, 0, 0);
    c.setup
        .fighters
        .iter_mut()
        .filter(|f| f.side == Side::Enemy)
        .for_each(|f| f.attack = 0);
    c.setup.fighters[0].max_hp = 1000;
    c.state.hp[0] = 1000;
    let mut last = None;
    while c.state.outcome == Outcome::Active {
        last = Some(resolve_turn(&mut c, &[], true));
    }
    assert_eq!(c.state.turn, MAX_TURNS);
    assert_eq!(last.unwrap().outcome, Outcome::Fled);
}

#[test]
fn log_round_trip_is_compact() {
    let mut c = combat(9, 60, 3);
    let a = plan(&c, &[0, 0, 0, 0]);
    let r = resolve_turn(&mut c, &a, false);
    let bytes = r.log().encode();
    assert!(bytes.len() < 64, "{} bytes", bytes.len());
    assert_eq!(TurnLog::decode(&bytes).unwrap(), r.log());
    assert!(TurnLog::decode(&[9, 9, 9]).is_err());
}

#[test]
fn rewards_by_outcome() {
    let mut c = combat(21, 50, 2);
    assert!(rewards(&c).is_none());
    c.state.outcome = Outcome::Won;
    c.state.hp[1] = 0;
    let r = rewards(&c).unwrap();
    assert!(r.xp > 0 && r.gold_found > 0);
    assert_eq!(r.cargo_loss_percent, 0);
    assert!(!r.crew[0].alive, "a crew member at 0 hp died");
    assert_eq!(rewards(&c), Some(r), "deterministic, loot ids included");
    c.state.outcome = Outcome::Lost;
    c.state.hp[0] = 0;
    let r = rewards(&c).unwrap();
    assert_eq!(r.character_hp, 1);
    assert!(r.cargo_loss_percent > 0 && r.items.is_empty() && r.gold_found == 0);
}

/// Fraction of battles won attacking the first enemy standing every turn.
fn win_rate(background: &str, danger: i32, crew: usize) -> f64 {
    let catalog = default_catalog();
    let mut c = character(&catalog, crew);
    c.background = background.into();
    let fresh = crate::domain::character::rules::new_character(
        &catalog,
        c.id,
        c.user_id,
        "Ada",
        "merchant_league",
        background,
    )
    .unwrap();
    c.attributes = fresh.attributes;
    c.hp = fresh.hp;
    c.max_hp = fresh.max_hp;
    c.skills.clear();
    let mut won = 0;
    for seed in 0..400u64 {
        let mut b = Combat::new(seed, new_setup(&c, &catalog, "a", "b", danger, seed)).unwrap();
        while b.state.outcome == Outcome::Active {
            let acts = plan(&b, &[0; 8]);
            resolve_turn(&mut b, &acts, false);
        }
        won += usize::from(b.state.outcome == Outcome::Won);
    }
    won as f64 / 400.0
}

#[test]
fn balance() {
    let safe_fighter = win_rate("sellsword", 10, 0);
    let safe_merchant = win_rate("merchant_heir", 10, 0);
    let wild_alone = win_rate("sellsword", 60, 0);
    let wild_escorted = win_rate("sellsword", 60, 2);
    eprintln!("win rates: sellsword@10 {safe_fighter}, merchant@10 {safe_merchant}, sellsword@60 {wild_alone}, +2 crew {wild_escorted}");
    assert!(
        safe_fighter >= 0.8,
        "a fighter clears the safest road: {safe_fighter}"
    );
    assert!(
        safe_merchant >= 0.4,
        "a merchant mostly does: {safe_merchant}"
    );
    assert!(wild_alone < safe_fighter, "danger matters");
    assert!(wild_escorted > wild_alone, "crew matters");
}

proptest! {
    /// Whatever the seed, danger, crew and actions: hp stays within 0..=max, the battle
    /// ends within MAX_TURNS, and the same seed and actions give byte-identical logs that
    /// replay to the same state.
    #[test]
    fn battles_are_bounded_and_deterministic(seed in any::<u64>(), danger in 0i32..=100, crew in 0usize..=4,
                                             choices in proptest::collection::vec(proptest::collection::vec(0u8..20, 6), 0..60)) {
        let fresh = combat(seed, danger, crew);
        let mut a = fresh.clone();
        let mut b = fresh.clone();
        let mut logs_a = Vec::new();
        let mut logs_b = Vec::new();
        let mut t = 0;
        while a.state.outcome == Outcome::Active {
            prop_assert!(a.state.turn < MAX_TURNS);
            let choice = choices.get(t).cloned().unwrap_or_default();
            let timed_out = choices.get(t).is_none();
            let acts = if timed_out { Vec::new() } else { plan(&a, &choice) };
            let ra = resolve_turn(&mut a, &acts, timed_out);
            let rb = resolve_turn(&mut b, &acts, timed_out);
            prop_assert_eq!(&ra, &rb);
            for (i, hp) in a.state.hp.iter().enumerate() {
                prop_assert!(*hp >= 0 && *hp <= a.setup.fighters[i].max_hp, "hp {} of {:?}", hp, a.setup.fighters[i]);
            }
            logs_a.push((ra.turn, ra.log().encode()));
            logs_b.push((rb.turn, rb.log().encode()));
            t += 1;
        }
        prop_assert!(a.state.turn <= MAX_TURNS);
        prop_assert_eq!(&logs_a, &logs_b);
        let mut replayed = fresh.clone();
        let (records, diverged) = replay(&mut replayed, &logs_a);
        prop_assert_eq!(diverged, 0);
        prop_assert_eq!(records.len(), logs_a.len());
        prop_assert_eq!(&replayed, &a);
        let r = rewards(&a).unwrap();
        prop_assert!(r.character_hp >= 1 && r.xp >= 0 && r.gold_found >= 0);
        // A replay of a prefix stops where the log stops; a gap stops it too.
        let mut partial = fresh.clone();
        let cut = logs_a.len() / 2;
        let mut gappy: Vec<_> = logs_a[..cut].to_vec();
        gappy.extend(logs_a.iter().skip(cut + 1).cloned());
        replay(&mut partial, &gappy);
        prop_assert_eq!(partial.state.turn as usize, cut);
    }
}
