//! Battle payloads: combatants, actions, turns and the battle view (docs/battle.md).

use super::*;

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
