//! Wire formats.
//!
//! - [`client`]: Nakama's client JSON (HTTP bodies and realtime socket envelopes), decoded once
//!   at the gateway's edge into typed values.
//! - [`account`]: accounts, users, email and linking, logout (Nakama's JSON).
//! - [`leaderboard`]: Nakama's JSON of the leaderboard and tournament API (records, lists,
//!   tournaments, the write body).
//! - [`world`]: world events and sales (RPCs, admin bodies, notifications).
//! - [`protobuf`]: Nakama's realtime envelope in protobuf (`/ws?format=protobuf`), and
//!   [`socket_codec`], which puts it and the JSON envelope behind one interface.

pub mod account;
pub mod client;
pub mod leaderboard;
pub mod peer;
pub mod protobuf;
pub mod socket_codec;
pub mod world;

/// Game RPC payloads (requests and answers of `create_character`, `execute_trade` …).
pub mod rpc;
