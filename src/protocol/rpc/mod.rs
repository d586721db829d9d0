//! Game RPC payloads: what clients send to and get back from `create_character`,
//! `execute_trade` and the rest (documented with examples in docs/rpc.md; travel, battles and
//! their notifications in docs/battle.md).
//!
//! Requests refuse unknown fields, so a misspelt field is an error rather than a silent
//! default. Numbers are plain JSON numbers (these are game payloads, not protobuf fields).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

use crate::domain::battle::rules::{
    self as battle, Act, Event, FighterKind, SkillKind, TurnRecord,
};
use crate::domain::battle::snapshot::BattleSnapshot;
use crate::domain::catalog::Catalog;
use crate::domain::character::state::CharacterState;
use crate::domain::character::state::CharacterSummary;
use crate::domain::character::travel::{self, Trip};
use crate::domain::market::rules::{Quote, Side};

mod battles;
mod catalog;
mod characters;
mod notices;
mod trades;
mod trips;

pub use battles::*;
pub use catalog::*;
pub use characters::*;
pub use notices::*;
pub use trades::*;
pub use trips::*;
