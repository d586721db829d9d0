//! The messages a [`super::Market`] answers.

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::routing::Remote;

pub use crate::domain::market::ledger::{Committed, Ledger};
pub use crate::domain::market::rules::{MarketError, Quote, Side};

/// The quotes of every good traded at the node, ordered by good code. Empty when the node has
/// no market (unknown code) or the market could not load.
#[derive(Debug, Clone, Copy, Default, Message, Serialize, Deserialize)]
#[rtype(result = "Vec<Quote>")]
pub struct GetQuotes;

/// Reserves an order: prices it, checks the quota and the player's `price_limit` (a buy is
/// refused above it, a sell below it), and moves the market's stock at once. Follow it with
/// [`Settle`] within [`super::RESERVATION_TTL`], else the reservation is released.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Reservation, MarketError>")]
pub struct Reserve {
    pub good: String,
    pub side: Side,
    pub quantity: i64,
    pub price_limit: Option<i64>,
}

/// A granted order, held until settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Unique across activations of the market (the claim epoch is in the high bits).
    pub id: u64,
    pub node: String,
    pub good: String,
    pub side: Side,
    pub quantity: i64,
    /// The average price per unit over the order, rounded against the player.
    pub unit_price: i64,
    /// `unit_price × quantity`: what the player pays (buy) or receives (sell).
    pub total: i64,
    /// The market's stock of the good once this order is done.
    pub stock_after: i64,
}

/// Ends a reservation with what happened to its trade. Unknown ids (a reservation that expired,
/// or one granted by an earlier activation of the market) still teach the market the row.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct Settle {
    pub reservation_id: u64,
    /// The reservation's good (a settle of an unknown reservation still names its row).
    pub good: String,
    pub outcome: SettleOutcome,
}

/// What became of a reserved trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettleOutcome {
    /// The trade transaction committed; with the market row it left, when known (a commit
    /// resolved from its receipt does not know it: the market reads the row again).
    Committed(Option<Committed>),
    /// The database refused the trade: the market's view of the row was stale, it reads it
    /// again. The reservation's units are free.
    Refused,
    /// The trade never reached the database: the reservation's units are free.
    NotRun,
}

/// The market's state for diagnostics and tests; `None` until loaded or after a failure.
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "Option<MarketStatus>")]
pub struct GetStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketStatus {
    pub node: String,
    /// The claim epoch of this activation.
    pub epoch: i64,
    pub open_reservations: usize,
    /// Every good with its ledger, ordered by good code.
    pub goods: Vec<(String, Ledger)>,
}

// Messages other nodes may send to a market they do not own (wire names: never rename).
impl Remote for GetQuotes {
    const NAME: &'static str = "market.get_quotes";
}

impl Remote for Reserve {
    const NAME: &'static str = "market.reserve";
}

// `market.settle` carried only a committed flag; the outcome with the row is a new format.
impl Remote for Settle {
    const NAME: &'static str = "market.settle.v2";
}

/// A market's quotes as it last published them (see [`crate::routing::published`]): what
/// [`GetQuotes`] would answer, without a trip through the market's mailbox. Quotes are advisory
/// (a trade is priced again by [`Reserve`] at the owner), so a snapshot a change old is as
/// good an answer as the actor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedQuotes {
    /// The catalog version the market's goods follow: a reader that sees a newer one installed
    /// asks the market instead (its next request makes it follow the catalog).
    pub catalog_version: i64,
    pub quotes: Vec<Quote>,
}

/// Every market's published quotes on this node, by trade node code.
pub type MarketQuotes = crate::routing::published::Published<String, PublishedQuotes>;
