//! A battle as the actor shows it: the combat, its last turn and whether it has been settled.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rules::{Combat, TurnRecord};

/// A battle as seen at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BattleSnapshot {
    pub id: Uuid,
    pub combat: Combat,
    /// The last resolved turn.
    pub last: Option<TurnRecord>,
    /// Whether the end of the battle has been settled (committed) yet.
    pub settled: bool,
    /// The settlement summary (JSON text), once settled.
    pub result: Option<String>,
    /// When the current turn times out (active battles).
    pub turn_deadline: Option<DateTime<Utc>>,
}
