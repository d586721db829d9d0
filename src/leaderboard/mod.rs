//! Leaderboards and tournaments with Nakama's semantics.
//!
//! Pure parts (no actors, no SQL):
//! - [`rank_cache`]: the per (board, expiry) order-statistic rank cache ([`RankCache`]) and all
//!   buckets of a node ([`RankCaches`]).
//! - [`rules`]: Nakama's write semantics (operators best/set/incr/decr, `num_score`,
//!   `max_num_score`, tournament joins) as a pure function over a [`rules::Record`].
//! - [`schedule`]: 5-field cron `reset_schedule`s, expiry buckets and tournament windows.

pub mod rank_cache;
pub mod rules;
pub mod schedule;

// The actor and everything around it (see each module's docs).
pub mod actor;
pub mod board;
pub mod cursor;
pub mod game_boards;
pub mod http;
pub mod messages;
pub mod paging;
pub mod parts;
pub mod reads;
pub mod replication;
pub mod service;

pub use rank_cache::{RankCache, RankCaches, RankEntry, SortOrder};
pub use rules::{apply, Operator, Outcome, Record, WriteError};
pub use schedule::{active_window, expiry_for, tournament_deadlines, CronSchedule, Deadlines};

/// Seconds since the Unix epoch: the clock the actor and the reads give the pure parts
/// (buckets, expiries, record times).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
