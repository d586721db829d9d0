//! A turn: checking the client's actions, resolving them deterministically, and rebuilding
//! a battle from its log.

use super::*;

/// Checks a client's actions against the battle: actors are living party fighters, each acts
/// once, targets are alive and on the right side, skills are learned and ready, only the
/// character may flee. Targets left out are filled in (the first enemy standing; a heal's own
/// fighter). Party fighters without an action will defend.
pub fn validate(c: &Combat, requests: &[ActionRequest]) -> Result<Vec<Action>, RuleError> {
    if c.state.outcome != Outcome::Active {
        return Err(not_allowed("the battle is over"));
    }
    let mut seen = vec![false; c.setup.fighters.len()];
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        let i = c
            .index_of(&r.actor)
            .ok_or_else(|| invalid(format!("no fighter `{}` in this battle", r.actor)))?;
        let fighter = &c.setup.fighters[i];
        if !fighter.is_party() {
            return Err(invalid(format!("`{}` is not in your party", r.actor)));
        }
        if !c.alive(i) {
            return Err(not_allowed(format!(
                "{} is down and cannot act",
                fighter.name
            )));
        }
        if std::mem::replace(&mut seen[i], true) {
            return Err(invalid(format!("{} has two actions", fighter.name)));
        }
        let target_on = |side: Side, default: Option<usize>| -> Result<Option<u8>, RuleError> {
            let t = match &r.target {
                Some(id) => {
                    let t = c
                        .index_of(id)
                        .ok_or_else(|| invalid(format!("no fighter `{id}` in this battle")))?;
                    if c.setup.fighters[t].side != side {
                        return Err(invalid(format!(
                            "`{id}` is not a valid target for {}",
                            r.action
                        )));
                    }
                    if !c.alive(t) {
                        return Err(not_allowed(format!(
                            "{} is already down",
                            c.setup.fighters[t].name
                        )));
                    }
                    t
                }
                None => match default {
                    Some(t) => t,
                    None => return Ok(None),
                },
            };
            Ok(Some(t as u8))
        };
        if r.skill.is_some() && r.action != "skill" {
            return Err(invalid("`skill` is only given with action \"skill\""));
        }
        let action = match r.action.as_str() {
            "attack" => Action {
                actor: i as u8,
                act: Act::Attack,
                target: target_on(Side::Enemy, c.first_alive(Side::Enemy))?,
            },
            "defend" => {
                if r.target.is_some() {
                    return Err(invalid("defend takes no target"));
                }
                Action {
                    actor: i as u8,
                    act: Act::Defend,
                    target: None,
                }
            }
            "flee" => {
                if fighter.kind != FighterKind::Character {
                    return Err(not_allowed("only the caravan master can call a retreat"));
                }
                if r.target.is_some() {
                    return Err(invalid("flee takes no target"));
                }
                Action {
                    actor: i as u8,
                    act: Act::Flee,
                    target: None,
                }
            }
            "skill" => {
                let code = r
                    .skill
                    .as_deref()
                    .ok_or_else(|| invalid("action \"skill\" needs `skill`"))?;
                let k = fighter
                    .skills
                    .iter()
                    .position(|s| s.code == code)
                    .ok_or_else(|| {
                        not_allowed(format!("{} has not learned `{code}`", fighter.name))
                    })?;
                let wait = c.ready_in(i, k);
                if wait > 0 {
                    return Err(not_allowed(format!(
                        "`{code}` is cooling down: ready in {wait} turn(s)"
                    )));
                }
                let target = match fighter.skills[k].kind {
                    SkillKind::Attack => target_on(Side::Enemy, c.first_alive(Side::Enemy))?,
                    SkillKind::Heal => target_on(Side::Party, Some(i))?,
                    SkillKind::Buff => {
                        if r.target.is_some() {
                            return Err(invalid(format!("`{code}` takes no target")));
                        }
                        None
                    }
                };
                Action {
                    actor: i as u8,
                    act: Act::Skill(k as u8),
                    target,
                }
            }
            other => {
                return Err(invalid(format!(
                    "unknown action `{other}` (attack, defend, skill or flee)"
                )))
            }
        };
        out.push(action);
    }
    Ok(out)
}

fn damage(
    rng: &mut Rng,
    attack: i32,
    power: i32,
    attack_bonus: i32,
    defense: i32,
    defense_bonus: i32,
    defending: bool,
) -> (i32, bool) {
    let atk = i64::from(attack.max(0)) * i64::from(100 + attack_bonus) / 100 + i64::from(power);
    let spread = rng.below((atk / 4 + 1) as u64) as i64;
    let mut def = i64::from(defense.max(0)) * i64::from(100 + defense_bonus) / 100;
    if defending {
        def = def * 2 + 2;
    }
    let mut dmg = (atk + spread - def).max(1);
    let critical = rng.percent(8);
    if critical {
        dmg = dmg * 3 / 2;
    }
    (clamp_i32(dmg).max(1), critical)
}

/// Resolves the next turn with `actions` (from [`validate`]; an actor given twice keeps its
/// last action). Does nothing but return the record when the battle is already over.
pub fn resolve_turn(c: &mut Combat, actions: &[Action], timed_out: bool) -> TurnRecord {
    let n = c.setup.fighters.len();
    let turn = c.state.turn + 1;
    let mut events = Vec::new();
    if c.state.outcome != Outcome::Active {
        return TurnRecord {
            turn: c.state.turn,
            timed_out,
            actions: Vec::new(),
            events,
            hp_after: c.state.hp.clone(),
            outcome: c.state.outcome,
        };
    }
    let mut rng = Rng::derive(c.seed, u64::from(turn));
    let mut plan: Vec<Option<Action>> = vec![None; n];
    for a in actions {
        let i = a.actor as usize;
        if i < n && c.setup.fighters[i].is_party() && c.alive(i) {
            plan[i] = Some(*a);
        }
    }
    let logged: Vec<Action> = plan.iter().flatten().copied().collect();
    let finish = |c: &mut Combat, events: Vec<Event>, outcome: Outcome| {
        c.state.turn = turn;
        c.state.outcome = outcome;
        TurnRecord {
            turn,
            timed_out,
            actions: logged.clone(),
            events,
            hp_after: c.state.hp.clone(),
            outcome,
        }
    };

    // 1. Flee.
    if let Some(a @ Action { act: Act::Flee, .. }) = plan[0] {
        let success = rng.percent(c.setup.flee_chance);
        events.push(Event::Flee {
            actor: a.actor,
            success,
        });
        if success {
            return finish(c, events, Outcome::Fled);
        }
    }

    // 2. Defence.
    let mut defending = vec![false; n];
    for i in 0..n {
        if !c.setup.fighters[i].is_party() || !c.alive(i) {
            continue;
        }
        match plan[i] {
            Some(Action {
                act: Act::Defend, ..
            }) => {
                defending[i] = true;
                events.push(Event::Defend {
                    actor: i as u8,
                    auto: false,
                });
            }
            None => {
                defending[i] = true;
                events.push(Event::Defend {
                    actor: i as u8,
                    auto: true,
                });
            }
            _ => {}
        }
    }

    // 3. Party actions.
    let buff_now = |c: &Combat| match c.state.buff {
        Some((p, until)) if until >= turn => p,
        _ => 0,
    };
    for (i, a) in plan.iter().enumerate() {
        let Some(a) = *a else { continue };
        if !c.alive(i) {
            continue;
        }
        let retarget = |c: &Combat, t: Option<u8>, side: Side| -> Option<usize> {
            match t.map(usize::from) {
                Some(t) if t < n && c.alive(t) && c.setup.fighters[t].side == side => Some(t),
                _ => c.first_alive(side),
            }
        };
        match a.act {
            Act::Attack | Act::Skill(_) => {
                let skill = match a.act {
                    Act::Skill(k) => c.setup.fighters[i].skills.get(k as usize).cloned(),
                    _ => None,
                };
                if let (Act::Skill(k), Some(s)) = (a.act, &skill) {
                    if let Some(r) = c.state.ready_at[i].get_mut(k as usize) {
                        *r = turn + 1 + s.cooldown;
                    }
                }
                let k = match a.act {
                    Act::Skill(k) => Some(k),
                    _ => None,
                };
                match skill.as_ref().map(|s| s.kind) {
                    Some(SkillKind::Heal) => {
                        let s = skill.as_ref().expect("heal skill");
                        let Some(t) = retarget(c, a.target, Side::Party) else {
                            continue;
                        };
                        let max = c.setup.fighters[t].max_hp;
                        let amount = s.power.saturating_add(c.setup.fighters[i].max_hp / 10);
                        let before = c.state.hp[t];
                        c.state.hp[t] = before.saturating_add(amount).min(max).max(0);
                        events.push(Event::Heal {
                            actor: i as u8,
                            target: t as u8,
                            skill: k.unwrap_or(0),
                            amount: c.state.hp[t] - before,
                        });
                    }
                    Some(SkillKind::Buff) => {
                        let s = skill.as_ref().expect("buff skill");
                        let percent = s.power.clamp(0, 200);
                        let until = turn + BUFF_TURNS - 1;
                        c.state.buff = Some((percent, until));
                        events.push(Event::Buff {
                            actor: i as u8,
                            skill: k.unwrap_or(0),
                            percent,
                            until_turn: until,
                        });
                    }
                    Some(SkillKind::Attack) | None => {
                        let power = skill.as_ref().map_or(0, |s| s.power);
                        let Some(t) = retarget(c, a.target, Side::Enemy) else {
                            continue;
                        };
                        let bonus = buff_now(c);
                        let (dmg, critical) = damage(
                            &mut rng,
                            c.setup.fighters[i].attack,
                            power,
                            bonus,
                            c.setup.fighters[t].defense,
                            0,
                            false,
                        );
                        c.state.hp[t] = c.state.hp[t].saturating_sub(dmg).max(0);
                        events.push(Event::Hit {
                            actor: i as u8,
                            target: t as u8,
                            skill: k,
                            damage: dmg,
                            critical,
                            killed: c.state.hp[t] == 0,
                        });
                    }
                }
            }
            Act::Defend | Act::Flee => {}
        }
    }
    if c.first_alive(Side::Enemy).is_none() {
        return finish(c, events, Outcome::Won);
    }

    // 4. Enemies.
    let bonus = buff_now(c);
    for e in 0..n {
        if c.setup.fighters[e].side != Side::Enemy || !c.alive(e) {
            continue;
        }
        let standing: Vec<usize> = (0..n)
            .filter(|i| c.setup.fighters[*i].is_party() && c.alive(*i))
            .collect();
        if standing.is_empty() {
            break;
        }
        let t = standing[rng.below(standing.len() as u64) as usize];
        let (dmg, critical) = damage(
            &mut rng,
            c.setup.fighters[e].attack,
            0,
            0,
            c.setup.fighters[t].defense,
            bonus,
            defending[t],
        );
        c.state.hp[t] = c.state.hp[t].saturating_sub(dmg).max(0);
        events.push(Event::Hit {
            actor: e as u8,
            target: t as u8,
            skill: None,
            damage: dmg,
            critical,
            killed: c.state.hp[t] == 0,
        });
        if !c.alive(0) {
            break;
        }
    }

    // 5. The end?
    let outcome = if !c.alive(0) {
        Outcome::Lost
    } else if turn >= MAX_TURNS {
        Outcome::Fled
    } else {
        Outcome::Active
    };
    finish(c, events, outcome)
}

/// Rebuilds a battle from its logged turns, in order from turn 1; stops at the first gap or
/// undecodable entry. Returns the records replayed and how many logged hp values differed from
/// the replay (the logged values are kept then: they are what the player saw).
pub fn replay(c: &mut Combat, logs: &[(u32, Vec<u8>)]) -> (Vec<TurnRecord>, usize) {
    let mut records = Vec::new();
    let mut diverged = 0;
    for (turn, bytes) in logs {
        if *turn != c.state.turn + 1 || c.state.outcome != Outcome::Active {
            break;
        }
        let Ok(log) = TurnLog::decode(bytes) else {
            break;
        };
        if log.turn != *turn {
            break;
        }
        let mut record = resolve_turn(c, &log.actions, log.timed_out);
        if record.hp_after != log.hp && log.hp.len() == c.state.hp.len() {
            diverged += 1;
            c.state.hp = log
                .hp
                .iter()
                .zip(&c.setup.fighters)
                .map(|(hp, f)| (*hp).clamp(0, f.max_hp))
                .collect();
            record.hp_after = c.state.hp.clone();
            if let Some(o) = [Outcome::Active, Outcome::Won, Outcome::Lost, Outcome::Fled]
                .into_iter()
                .find(|o| o.code() == log.outcome)
            {
                c.state.outcome = o;
                record.outcome = o;
            }
        }
        records.push(record);
    }
    (records, diverged)
}
