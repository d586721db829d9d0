//! The market: one [`Market`] actor per trade node owns the prices, stock and quotas of the
//! goods traded there.
//!
//! - [`rules`]: pure pricing (supply and demand with a 5 % spread, averaged over the units of
//!   an order), quotas and recovery over time.
//! - [`ledger`]: pure bookkeeping of one good: the committed row (the one truth, versioned)
//!   and the open reservations.
//! - [`messages`]: what callers send: [`GetQuotes`], [`Reserve`] then [`Settle`].
//! - [`actor`]: the [`Market`] actor: claims its `trade_node` row, loads
//!   `market_price_snapshot`, holds reservations, writes recovery as quota deltas.
//!
//! A trade goes: `Reserve` (stock moves in memory at once, so concurrent trades never take a
//! quota below zero) → the caller's trade transaction (gold, cargo and
//! `market_price_snapshot.quota` by delta, bumping its version) → `Settle` with the row the
//! transaction left, which the market adopts. A reservation not settled within
//! [`RESERVATION_TTL`] is released and the row read again.

pub mod actor;
pub mod messages;

pub use actor::{Market, MarketDeps, RECOVERY_INTERVAL, RESERVATION_TTL};
pub use messages::{
    GetQuotes, GetStatus, MarketStatus, Reservation, Reserve, Settle, SettleOutcome,
};
