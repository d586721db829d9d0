//! Characters: the CharacterSession actor (one per character), its messages, its plain state
//! and the pure rules that decide every change (`rules`; travel in `travel`).

pub mod actor;
pub mod messages;
mod replay;
mod requests;
pub mod sale_purchase;
mod settler;

pub use actor::{CharacterDeps, CharacterSession};
pub use settler::BattleSettler;
pub mod world_attack;
pub mod world_reward;
