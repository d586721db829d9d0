//! What an ended battle is worth: loot, gold and cargo lost, crew outcomes.

use super::*;

/// A dropped item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LootItem {
    pub id: Uuid,
    pub template: String,
}

/// A crew member after the battle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrewOutcome {
    pub id: Uuid,
    pub hp: i32,
    pub alive: bool,
    pub injured: bool,
}

/// What an ended battle means for the character. Deterministic from the combat (loot ids
/// included), so settling twice names the same rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewards {
    pub outcome: Outcome,
    pub turns: u32,
    pub xp: i64,
    /// Gold found on the enemies (won).
    pub gold_found: i64,
    /// Percent of the purse taken (lost).
    pub gold_loss_percent: u32,
    /// Percent of every good carried that is lost (lost: robbed; fled: dropped to get away).
    pub cargo_loss_percent: u32,
    pub items: Vec<LootItem>,
    /// The character's hit points afterwards (at least 1: a caravan master is beaten, not
    /// killed).
    pub character_hp: i32,
    /// Crew that fought: hp afterwards, killed (hp 0) or injured (a third of max hp or less).
    pub crew: Vec<CrewOutcome>,
}

/// The settlement of an ended battle; `None` while it is active.
pub fn rewards(c: &Combat) -> Option<Rewards> {
    if c.state.outcome == Outcome::Active {
        return None;
    }
    let mut rng = Rng::derive(c.seed, LOOT_STREAM);
    let enemies: Vec<&Fighter> = c
        .setup
        .fighters
        .iter()
        .filter(|f| f.side == Side::Enemy)
        .collect();
    let enemy_xp: i64 = enemies
        .iter()
        .map(|f| i64::from(f.max_hp) / 2 + 3 * i64::from(f.attack))
        .sum();
    let danger = i64::from(c.setup.danger.clamp(0, 100));
    let (xp, gold_found, gold_loss, cargo_loss) = match c.state.outcome {
        Outcome::Won => {
            let gold = enemies
                .iter()
                .map(|_| 5 + danger / 2 + rng.below(10 + danger as u64) as i64)
                .sum();
            (enemy_xp, gold, 0, 0)
        }
        Outcome::Lost => (enemy_xp / 5, 0, 20, 50),
        Outcome::Fled => (0, 0, 0, 15),
        Outcome::Active => unreachable!("checked above"),
    };
    let mut items = Vec::new();
    if c.state.outcome == Outcome::Won {
        let total: u64 = c.setup.loot.iter().map(|l| u64::from(l.weight)).sum();
        for _ in &enemies {
            if !rng.percent(35) || total == 0 {
                continue;
            }
            let mut pick = rng.below(total);
            for l in &c.setup.loot {
                if pick < u64::from(l.weight) {
                    items.push(LootItem {
                        id: rng.uuid(),
                        template: l.template.clone(),
                    });
                    break;
                }
                pick -= u64::from(l.weight);
            }
        }
    }
    let crew = c
        .setup
        .fighters
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == FighterKind::Crew)
        .filter_map(|(i, f)| {
            let id = f.id.parse().ok()?;
            let hp = c.state.hp[i];
            Some(CrewOutcome {
                id,
                hp,
                alive: hp > 0,
                injured: hp > 0 && i64::from(hp) * 3 <= i64::from(f.max_hp),
            })
        })
        .collect();
    Some(Rewards {
        outcome: c.state.outcome,
        turns: c.state.turn,
        xp,
        gold_found,
        gold_loss_percent: gold_loss,
        cargo_loss_percent: cargo_loss,
        items,
        character_hp: c.state.hp[0].max(1),
        crew,
    })
}
