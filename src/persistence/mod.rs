//! Everything that speaks SQL lives here; no other module imports tokio-postgres.
//!
//! - `connect`: where the database is and how the way there is secured (`sslmode`, the CA):
//!   every connection starts there; `tls`: rustls for each `sslmode`, certificate errors in
//!   plain words; `io_thread`: the one thread every connection reads and writes its socket
//!   on, so a reply is read when it arrives, whatever the actor threads are doing.
//! - [`Db`]: the pool, the dialect, and [`Db::transact`], the critical path (one transaction,
//!   retried whole on SQLSTATE 40001, answered only after commit).
//! - `batch`: pure coalescing of dirty rows (latest wins per row key, indexed by entity).
//! - `backlog`: pure decisions of the flush: batch and per-entity selection, rows in flight,
//!   isolating bad rows, when a row is poison, high/low water marks.
//! - `actor`: the per-node persistence actor that flushes batches and entities, fenced by
//!   owner epoch; `flight`: one flush carried out (bad rows isolated, retried, set aside).
//! - `pg`: the multi-row flush statements (`unnest` arrays).
//! - `compensation`: rows set aside after failing on their own, for an operator.
//! - `claims`: ownership claims (owner node + epoch) on entity rows.
//! - `reach`: reaching the database at start, retried with backoff for a bounded time.
//! - `migrate`: numbered migrations from `schema/`, safe to run from several nodes at once.
//! - `catalog`: reading the static catalog tables.
//! - `accounts`: users, device ids and custom ids, sign-up in one statement; `profiles`: what
//!   players see and set of accounts; `links`: email and password, link and unlink;
//!   `revocations`: revoked token ids, kept until the tokens expire.
//! - `world_events`, `world_sales`: world bosses (progress, participants, rewards) and
//!   limited-time sales (stock, purchases per character).
//! - `receipts`: idempotency receipts, written in the transaction of their change.

mod connect;
mod db;
mod db_figures;
mod io_thread;
mod reach;
pub mod retry;
mod tls;

pub use connect::connect;
pub use db::{Db, DbError, DbSettings};
pub use reach::wait_until_reachable;
pub mod accounts;
pub mod actor;
pub mod backlog;
pub mod batch;
pub mod battles;
pub mod catalog;
pub mod characters;
pub mod claims;
pub mod compensation;
pub mod default_catalog;
pub mod flight;
pub mod heartbeat;
pub mod leaderboards;
pub mod links;
pub mod markets;
pub mod messages;
pub mod migrate;
pub mod notifications;
pub mod pg;
pub mod profiles;
pub mod receipts;
pub mod revocations;
pub mod world_events;
pub mod world_sales;

pub use actor::{BacklogLimits, FlushPolicy, PersistenceActor};
pub use messages::{flush_entity, flush_now};
