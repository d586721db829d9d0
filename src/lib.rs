//! serai: a clustered game node that speaks the Nakama client protocol.
//!
//! Map of the crate:
//! - [`request`]: what every request carries and every failure says: [`request::Failure`]
//!   (*not run* / *may have run*; *done* is the answer), [`request::Deadline`] (absolute, across
//!   hops) and [`request::RequestKey`] (the client's idempotency key). A leaf every layer uses.
//! - [`config`]: TOML + `SERAI_*` environment, validated into [`config::Config`].
//! - [`shutdown`]: the stop signal every long-running task holds.
//! - [`localdb`]: finding or starting a PostgreSQL for `serai dev` and the tests.
//! - [`persistence`]: the only SQL: pool, critical transactions, the batching persistence
//!   actor with epoch fencing, ownership claims, migrations, catalog and account queries.
//! - [`catalog`]: the static world (factions, goods, nodes, routes, skills …) loaded into
//!   read-only maps stamped with a catalog version.
//! - [`routing`]: the [`routing::Router`] every entity message goes through (key → owner →
//!   local registry that activates actors on demand).
//! - [`admin`]: the admin HTTP listener and the node's metrics.
//! - [`node`]: assembles one node from a config and runs it until shutdown.

pub mod admin;
pub mod battle;
pub mod character;
pub mod config;
pub mod domain;
pub mod game;
pub mod gateway;
pub mod leaderboard;
pub mod localdb;
pub mod market;
pub mod metrics;
pub mod node;
pub mod persistence;
pub mod protocol;
pub mod request;
pub mod routing;
pub mod services;
pub mod shutdown;
