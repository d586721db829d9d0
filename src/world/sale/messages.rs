//! The messages a [`super::Sale`] answers.

use actix::Message;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::world::sale::{Outcome, SaleError};
use crate::routing::Remote;

/// Holds `quantity` units for `character_id`: the window must be open, the units left (counting
/// open reservations) and the buyer's limit (counting bought and reserved units) enough.
/// Follow it with [`Settle`] within the reservation's lifetime, else it is released.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<SaleGrant, SaleError>")]
pub struct Reserve {
    pub character_id: Uuid,
    pub quantity: i64,
}

/// A granted reservation with the sale's terms, which the buyer's session writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleGrant {
    /// Unique across activations of the sale (the claim epoch is in the high bits).
    pub id: u64,
    pub node: String,
    pub good: String,
    pub quantity: i64,
    pub price: i64,
    /// `price × quantity`.
    pub total: i64,
    pub stock: i64,
    pub limit: i64,
}

/// Ends a reservation with what became of its purchase.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct Settle {
    pub reservation_id: u64,
    pub character_id: Uuid,
    pub outcome: Outcome,
}

/// The sale's state for diagnostics and tests; `None` until loaded or after a failure.
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "Option<SaleStatus>")]
pub struct GetStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleStatus {
    pub epoch: i64,
    pub sold: i64,
    pub reserved: i64,
    pub open_reservations: usize,
}

// Messages other nodes send to the sale's owner (wire names: never rename).
impl Remote for Reserve {
    const NAME: &'static str = "world_sale.reserve";
}

impl Remote for Settle {
    const NAME: &'static str = "world_sale.settle";
}
