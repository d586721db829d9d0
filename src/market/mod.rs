//! The market: one [`Market`] actor per trade node owns the prices, stock and quotas of the
//! goods traded there.
//!
//! - [`rules`]: pure pricing (supply and demand with a 5 % spread, averaged over the units of
//!   an order), quotas, reservations ([`rules::Ledger`]) and recovery over time.
//! - [`messages`]: what callers send: [`GetQuotes`], [`Reserve`] then [`Settle`].
//! - [`actor`]: the [`Market`] actor: claims its `trade_node` row, loads
//!   `market_price_snapshot`, holds reservations, writes recovery as quota deltas.
//!
//! A trade goes: `Reserve` (stock moves in memory at once, so concurrent trades never take a
//! quota below zero) → the caller's trade transaction (gold, cargo and
//! `market_price_snapshot.quota` by delta, see [`crate::persistence::markets::apply_trade`]) →
//! `Settle { committed }`. A reservation not settled within [`RESERVATION_TTL`] is released.

pub mod actor;
pub mod messages;
pub mod rules;

pub use actor::{Market, MarketDeps, RECOVERY_INTERVAL, RESERVATION_TTL};
pub use messages::{GetQuotes, GetStatus, MarketStatus, Passivate, Reservation, Reserve, Settle};
pub use rules::{quote_for, quotes_for, GoodState, MarketError, Quote, Side, MAX_ORDER};
