//! Notifications: subjects and codes ([`notify`]) and their JSON contents.

use super::*;

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
