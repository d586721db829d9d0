//! serai: a clustered game node that speaks the Nakama client protocol.
//!
//! The crate reads bottom-up: each layer uses only the layers above it in this list
//! (ARCHITECTURE.md says why; `tests/layering.rs` keeps it so).
//!
//! - Leaves, used by every layer: [`request`] (what a request carries and every failure says:
//!   [`request::Failure`] *not run* / *may have run*, [`request::Deadline`],
//!   [`request::RequestKey`], [`request::Call`]), [`config`] (TOML + `SERAI_*`, validated),
//!   [`shutdown`] (the stop signal as a value), [`metrics`] (the node's Prometheus registry),
//!   [`quiet`] (rate-limited warnings), [`localdb`] (a PostgreSQL for `serai dev` and the
//!   tests).
//! - [`domain`]: the pure game: rules and plain state of characters, markets and battles, and
//!   the catalog's model. No actix, tokio or SQL.
//! - [`protocol`]: wire types only: game RPC payloads, Nakama's envelope, peer-link frames.
//! - [`persistence`]: the only SQL: pool, critical transactions, the batching persistence
//!   actor with epoch fencing, claims, migrations, receipts, the catalog's loading.
//! - [`routing`]: generic placement and delivery: the [`routing::Router`], the
//!   [`routing::Entity`] trait, the peer link, membership, handover.
//! - [`gateway`]: the Nakama client edge: HTTP API, socket, sessions, presence, the notifier,
//!   the RPC registry.
//! - [`services`]: the handles a running node shares with what it starts, and the catalog's
//!   hot reload (load, install, broadcast, poll) in [`services::catalog_sync`].
//! - Entity actors: [`market`], [`leaderboard`], [`battle`], [`character`] (in that order: a
//!   character's session uses the others).
//! - [`world`]: server-wide state without Redis: world bosses and limited-time sales.
//! - [`game`]: the game's client RPCs and the registration of every entity kind.
//! - [`admin`]: the operator's HTTP edge (health, readiness, metrics, drain, cluster).
//! - [`node`]: assembles one node from a config and runs it until shutdown.

// Leaves.
pub mod config;
pub mod localdb;
pub mod metrics;
pub mod quiet;
pub mod request;
pub mod shutdown;

// The pure game.
pub mod domain;

// Wire types.
pub mod protocol;

// SQL.
pub mod persistence;

// Placement and delivery.
pub mod routing;

// The client edge.
pub mod gateway;

// What a running node shares.
pub mod services;

// Entity actors (their order is in the map above).
pub mod battle;
pub mod character;
pub mod leaderboard;
pub mod market;

// Server-wide state: world bosses and limited-time sales.
pub mod world;

// The game's RPCs.
pub mod game;

// The operator's edge.
pub mod admin;

// Assembly.
pub mod node;
