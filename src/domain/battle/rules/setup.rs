//! Building a battle: the party and the enemies as fighters, the loot table, the flee
//! chance, and the [`Setup`] and [`Combat`] they make.

use super::*;

pub(super) fn clamp_i32(v: i64) -> i32 {
    v.clamp(0, i64::from(i32::MAX)) as i32
}

/// The character and its living crew as fighters.
pub fn party(state: &CharacterState, catalog: &Catalog) -> Vec<Fighter> {
    let attr = |k: &str| state.attributes.get(k).copied().unwrap_or(0).clamp(0, 1000);
    let best = |kind: &str, f: fn(&crate::domain::catalog::ItemTemplate) -> i32| {
        state
            .items
            .iter()
            .filter_map(|i| catalog.item(&i.template))
            .filter(|t| t.kind == kind)
            .map(f)
            .max()
            .unwrap_or(0)
            .max(0)
    };
    let weapon = best("weapon", |t| t.attack);
    let armor = best("armor", |t| t.defense);
    let shield = best("shield", |t| t.defense);
    let trinket = best("trinket", |t| t.attack.max(t.defense));
    let skills = state
        .skills
        .keys()
        .filter_map(|code| catalog.skill(code))
        .filter_map(|s| {
            let kind = match s.kind.as_str() {
                skill_kind::ATTACK => SkillKind::Attack,
                skill_kind::HEAL => SkillKind::Heal,
                skill_kind::BUFF => SkillKind::Buff,
                _ => return None,
            };
            Some(SkillSpec {
                code: s.code.clone(),
                kind,
                power: s.power.max(0),
                cooldown: s.cooldown.max(0) as u32,
            })
        })
        .take(u8::MAX as usize)
        .collect();
    let max_hp = state.max_hp.max(1);
    let mut fighters = vec![Fighter {
        id: state.id.to_string(),
        name: state.name.clone(),
        kind: FighterKind::Character,
        side: Side::Party,
        max_hp,
        hp: state.hp.clamp(1, max_hp),
        attack: clamp_i32(4 + attr("strength") + i64::from(weapon) + i64::from(trinket)),
        defense: clamp_i32(attr("endurance") / 2 + i64::from(armor) + i64::from(shield)),
        skills,
    }];
    for c in state.crew.iter().filter(|c| c.alive && c.hp > 0) {
        let Some(a) = catalog.crew(&c.archetype) else {
            continue;
        };
        let attack = if c.injured { a.attack / 2 } else { a.attack };
        let max_hp = c.max_hp.max(1);
        fighters.push(Fighter {
            id: c.id.to_string(),
            name: c.name.clone(),
            kind: FighterKind::Crew,
            side: Side::Party,
            max_hp,
            hp: c.hp.clamp(1, max_hp),
            attack: attack.max(0),
            defense: a.defense.max(0),
            skills: Vec::new(),
        });
    }
    fighters
}

/// The enemy group of an encounter on a road of `danger` (0..=100): one to four bandits built
/// from the catalog's fighting crew archetypes (attack 3 or more), scaled by the danger.
pub fn enemies(catalog: &Catalog, danger: i32, seed: u64) -> Vec<Fighter> {
    let danger = danger.clamp(0, 100);
    let mut rng = Rng::derive(seed, ENEMY_STREAM);
    // Danger 10: mostly one bandit; 60: two or three; 100: three or four.
    let count = (1 + (i64::from(danger) + rng.below(30) as i64) / 35) as usize;
    let count = count.clamp(1, MAX_ENEMIES);
    let mut pool: Vec<&crate::domain::catalog::CrewArchetype> = catalog
        .crew_archetypes()
        .iter()
        .filter(|a| a.attack >= 3 && a.hp > 0)
        .collect();
    if pool.is_empty() {
        pool = catalog
            .crew_archetypes()
            .iter()
            .filter(|a| a.hp > 0)
            .collect();
    }
    // A bandit is 50 % of its archetype on the safest road, 150 % on the worst.
    let scale = i64::from(50 + danger);
    (0..count)
        .map(|i| {
            let (name, hp, attack, defense) = match pool.get(rng.below(pool.len() as u64) as usize)
            {
                Some(a) => (
                    format!("Bandit {}", a.name.to_lowercase()),
                    i64::from(a.hp),
                    i64::from(a.attack),
                    i64::from(a.defense),
                ),
                None => ("Bandit".to_string(), 30, 5, 2),
            };
            let hp = clamp_i32(hp * scale / 100).max(1);
            Fighter {
                id: format!("enemy-{}", i + 1),
                name,
                kind: FighterKind::Enemy,
                side: Side::Enemy,
                max_hp: hp,
                hp,
                attack: clamp_i32(attack * scale / 100 + 1),
                defense: clamp_i32(defense * scale / 100),
                skills: Vec::new(),
            }
        })
        .collect()
}

/// The loot table: every item template, common ones more likely.
pub fn loot_table(catalog: &Catalog) -> Vec<LootEntry> {
    catalog
        .items()
        .iter()
        .map(|t| LootEntry {
            template: t.code.clone(),
            weight: match t.rarity.as_str() {
                "common" => 6,
                "uncommon" => 3,
                "rare" => 1,
                _ => 2,
            },
        })
        .collect()
}

/// Percent chance a `flee` succeeds: cunning and scouts help, danger hurts; 10 to 90.
pub fn flee_chance(state: &CharacterState, danger: i32) -> u32 {
    let cunning = state
        .attributes
        .get("cunning")
        .copied()
        .unwrap_or(0)
        .clamp(0, 100);
    let scouts = state
        .crew
        .iter()
        .filter(|c| c.alive && c.archetype == "scout")
        .count() as i64;
    (35 + 3 * cunning + 5 * scouts - i64::from(danger.clamp(0, 100)) / 4).clamp(10, 90) as u32
}

/// Everything a new battle needs, from the character as it is now.
pub fn new_setup(
    state: &CharacterState,
    catalog: &Catalog,
    from: &str,
    to: &str,
    danger: i32,
    seed: u64,
) -> Setup {
    let mut fighters = party(state, catalog);
    fighters.extend(enemies(catalog, danger, seed));
    Setup {
        version: SETUP_VERSION,
        character_id: state.id,
        user_id: state.user_id,
        from: from.to_string(),
        to: to.to_string(),
        danger: danger.clamp(0, 100),
        flee_chance: flee_chance(state, danger),
        fighters,
        loot: loot_table(catalog),
    }
}

impl Combat {
    /// A battle about to play its first turn.
    pub fn new(seed: u64, setup: Setup) -> Result<Combat, RuleError> {
        let n = setup.fighters.len();
        if n > u8::MAX as usize {
            return Err(invalid("too many fighters"));
        }
        match setup.fighters.first() {
            Some(f) if f.kind == FighterKind::Character => {}
            _ => return Err(invalid("the first fighter must be the character")),
        }
        if !setup.fighters.iter().any(|f| f.side == Side::Enemy) {
            return Err(invalid("a battle needs an enemy"));
        }
        let hp = setup
            .fighters
            .iter()
            .map(|f| f.hp.clamp(0, f.max_hp.max(0)))
            .collect();
        let ready_at = setup
            .fighters
            .iter()
            .map(|f| vec![0; f.skills.len()])
            .collect();
        Ok(Combat {
            seed,
            setup,
            state: BattleState {
                turn: 0,
                hp,
                ready_at,
                buff: None,
                outcome: Outcome::Active,
            },
        })
    }

    pub fn alive(&self, i: usize) -> bool {
        self.state.hp.get(i).is_some_and(|hp| *hp > 0)
    }

    pub(super) fn index_of(&self, id: &str) -> Option<usize> {
        self.setup.fighters.iter().position(|f| f.id == id)
    }

    pub(super) fn first_alive(&self, side: Side) -> Option<usize> {
        (0..self.setup.fighters.len())
            .find(|i| self.setup.fighters[*i].side == side && self.alive(*i))
    }

    /// Turns until skill `k` of fighter `i` may be used (0: now).
    pub fn ready_in(&self, i: usize, k: usize) -> u32 {
        let next = self.state.turn + 1;
        self.state
            .ready_at
            .get(i)
            .and_then(|v| v.get(k))
            .map_or(0, |r| r.saturating_sub(next))
    }
}
