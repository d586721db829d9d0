//! Travel payloads, and the time formats travel and battle views share.

use super::*;

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

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn rfc3339_ms(ms: i64) -> String {
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
