//! `get_world_event`, `attack_world_boss`, the `world_event` notification, `/admin/world/events`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The live HP update pushed to subscribers (subject [`WORLD_EVENT`], not persistent).
pub const WORLD_EVENT: (&str, i32) = ("world_event", 110);
/// The stored notification telling a participant its reward was paid.
pub const WORLD_EVENT_REWARD: (&str, i32) = ("world_event_reward", 111);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetWorldEventRequest {
    pub event_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackRequest {
    pub event_id: String,
    pub character_id: Uuid,
}

/// The answer to `attack_world_boss`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackReply {
    /// The damage counted (at most the HP that was left).
    pub damage: i64,
    pub hp: i64,
    pub state: String,
    pub killed: bool,
}

/// The answer to `get_world_event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub id: String,
    pub title: String,
    pub hp: i64,
    pub max_hp: i64,
    pub state: String,
    pub starts_at: String,
    pub ends_at: String,
    /// How many characters have dealt damage.
    pub participants: u64,
    /// The damage dealt by the caller's characters together.
    pub your_damage: i64,
}

/// The content of a [`WORLD_EVENT`] push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventUpdate {
    pub event_id: String,
    pub hp: i64,
    pub max_hp: i64,
    pub state: String,
}

/// The content of a [`WORLD_EVENT_REWARD`] notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardNotice {
    pub event_id: String,
    pub character_id: Uuid,
    pub gold: i64,
    pub item: Option<String>,
    /// The character's gold afterwards.
    pub character_gold: i64,
}

/// `POST /admin/world/events`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub max_hp: i64,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(default)]
    pub reward_gold: i64,
    #[serde(default)]
    pub reward_item: Option<String>,
}

/// One line of `GET /admin/world/events` (and the answer to a POST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminEventView {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub max_hp: i64,
    pub hp: i64,
    pub state: String,
    pub starts_at: String,
    pub ends_at: String,
    pub reward_gold: i64,
    pub reward_item: Option<String>,
}
