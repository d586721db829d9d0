//! Wire types of the world's RPCs, admin endpoints and notifications (docs/world.md).

pub mod boss;
pub mod sale;
