//! Wire formats.
//!
//! - [`client`]: Nakama's client JSON (HTTP bodies and realtime socket envelopes), decoded once
//!   at the gateway's edge into typed values.

pub mod client;
pub mod peer;

/// Game RPC payloads (requests and answers of `create_character`, `execute_trade` …).
pub mod rpc;
