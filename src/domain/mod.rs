//! The pure domain: the game's rules and plain state, and the catalog's model. No actix, no
//! tokio, no SQL (tests/layering.rs checks): every function here can be called from a plain
//! test with plain values, and the actors above only carry out what these functions decide.
//!
//! - [`catalog`]: the static world (factions, goods, nodes, routes, skills …) as read-only,
//!   indexed records stamped with a catalog version, and its validation.
//! - [`character`]: a character's state, the rules of every change to it, and travel.
//! - [`market`]: pricing, quotas and recovery, and the ledger of one good's reservations.
//! - [`battle`]: deterministic turn resolution over a seeded PRNG, and what a battle is worth.
//! - [`world`]: world bosses and limited-time sales.
//! - [`rate_limit`]: token buckets and leases of the cluster-wide rate limits.

pub mod battle;
pub mod catalog;
pub mod character;
pub mod market;
pub mod rate_limit;
pub mod world;
