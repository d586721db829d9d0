//! Wire formats.
//!
//! - [`client`]: Nakama's client JSON (HTTP bodies and realtime socket envelopes), decoded once
//!   at the gateway's edge into typed values.
//! - [`account`]: accounts, users, email and linking, logout (Nakama's JSON).
//! - [`leaderboard`]: Nakama's JSON of the leaderboard and tournament API (records, lists,
//!   tournaments, the write body).

pub mod account;
pub mod client;
pub mod leaderboard;
pub mod peer;

/// Game RPC payloads (requests and answers of `create_character`, `execute_trade` …).
pub mod rpc;
