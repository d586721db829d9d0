use super::*;
use crate::domain::character::rules::new_character;
use crate::persistence::default_catalog::default_catalog;
use proptest::prelude::*;

fn boss(hp: i64) -> Boss {
    Boss {
        max_hp: hp,
        hp,
        starts_at_ms: 1_000,
        ends_at_ms: 2_000,
        ended: None,
    }
}

#[test]
fn state_follows_the_window_and_a_stored_end_is_final() {
    let b = boss(10);
    assert_eq!(b.state_at(999), EventState::Scheduled);
    assert_eq!(b.state_at(1_000), EventState::Active);
    assert_eq!(b.state_at(1_999), EventState::Active);
    assert_eq!(b.state_at(2_000), EventState::Expired);
    let mut c = b.clone();
    c.ended = Some(EventState::Cancelled);
    assert_eq!(c.state_at(1_500), EventState::Cancelled);
    let mut d = b;
    d.hp = 0;
    assert_eq!(d.state_at(1_500), EventState::Defeated);
}

#[test]
fn the_attack_that_takes_the_last_hp_kills_and_later_ones_are_refused() {
    let mut b = boss(10);
    assert_eq!(
        b.attack(4, 1_500),
        Ok(Hit {
            damage: 4,
            hp: 6,
            killed: false
        })
    );
    assert_eq!(
        b.attack(100, 1_500),
        Ok(Hit {
            damage: 6,
            hp: 0,
            killed: true
        })
    );
    assert_eq!(
        b.attack(1, 1_500),
        Err(Refusal::NotActive(EventState::Defeated))
    );
    assert_eq!(
        boss(5).attack(1, 500),
        Err(Refusal::NotActive(EventState::Scheduled))
    );
    assert_eq!(
        boss(5).attack(1, 2_500),
        Err(Refusal::NotActive(EventState::Expired))
    );
    assert_eq!(boss(5).attack(0, 1_500), Err(Refusal::NoDamage));
}

#[test]
fn damage_grows_with_strength_crew_and_attack_skills() {
    let catalog = default_catalog();
    let f = catalog.factions()[0].code.clone();
    let base = new_character(
        &catalog,
        Uuid::new_v4(),
        Uuid::new_v4(),
        "Ada",
        &f,
        "sellsword",
    )
    .unwrap();
    let d0 = damage(&base, &catalog);
    assert!(d0 >= 1);
    let mut strong = base.clone();
    *strong.attributes.entry("strength".into()).or_insert(0) += 10;
    assert_eq!(damage(&strong, &catalog), d0 + 10);
    let mut skilled = base.clone();
    skilled.skills.insert("power_strike".into(), 1);
    assert!(damage(&skilled, &catalog) > d0);
    // Deterministic: the same character always hits as hard.
    assert_eq!(damage(&base, &catalog), d0);
}

#[test]
fn only_participants_without_a_reward_of_a_paying_event_are_owed() {
    let mut ps = BTreeMap::new();
    let (a, b, u) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(9));
    record(&mut ps, a, u, 5);
    record(&mut ps, b, u, 3);
    record(&mut ps, a, u, 2);
    assert_eq!(ps[&a].damage, 7);
    let done: BTreeSet<Uuid> = [a].into();
    let owed = unrewarded(EventState::Defeated, &ps, &done);
    assert_eq!(owed.iter().map(|(c, _)| *c).collect::<Vec<_>>(), vec![b]);
    assert!(unrewarded(EventState::Active, &ps, &done).is_empty());
    assert!(unrewarded(EventState::Cancelled, &ps, &done).is_empty());
    assert_eq!(
        unrewarded(EventState::Expired, &ps, &BTreeSet::new()).len(),
        2
    );
}

#[test]
fn definitions_are_validated_with_the_field_named() {
    assert!(validate(10, 0, 1, 0).is_ok());
    assert_eq!(validate(0, 0, 1, 0).unwrap_err().0, "max_hp");
    assert_eq!(validate(10, 5, 5, 0).unwrap_err().0, "ends_at");
    assert_eq!(validate(10, 0, 1, -1).unwrap_err().0, "reward_gold");
}

proptest! {
    /// Any sequence of attacks at any times: HP never below 0, the damage counted sums to
    /// max_hp − hp, at most one attack kills, and none is counted after the kill.
    #[test]
    fn any_attacks_keep_hp_and_count_one_kill(
        max_hp in 1i64..10_000,
        attacks in proptest::collection::vec((-5i64..500, 0i64..3_000), 0..200),
    ) {
        let mut b = boss(max_hp);
        let (mut counted, mut kills, mut killed) = (0i64, 0, false);
        for (damage, at) in attacks {
            if let Ok(hit) = b.attack(damage, at) {
                prop_assert!(!killed, "an attack counted after the kill");
                prop_assert!(hit.hp >= 0 && hit.damage > 0 && hit.damage <= damage);
                counted += hit.damage;
                if hit.killed {
                    kills += 1;
                    killed = true;
                }
            }
            prop_assert!(b.hp >= 0);
            prop_assert_eq!(counted, max_hp - b.hp);
        }
        prop_assert!(kills <= 1);
        prop_assert_eq!(kills == 1, b.hp == 0);
    }
}
