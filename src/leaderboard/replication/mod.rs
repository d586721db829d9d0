//! Leaderboard replication: every node keeps a replica of every board's rank cache and
//! answers reads from it; writes still go to the board's owner.
//!
//! - [`wire`]: the channel's messages (postcard, optionally LZ4) — changes, entries, batches,
//!   catch-up and snapshot requests.
//! - [`log`] (pure): the origin's log — a version per entry, a bounded buffer of recent
//!   entries for catch-up, batches cut by count and bytes and deduplicated per record.
//! - [`replica`] (pure): one board's replica; rank changes apply by generation.
//! - [`state`] (pure): all replicas of a node and the stream's decisions — duplicates, gaps,
//!   new incarnations, snapshots with replay.
//! - [`sync`]: the node's runtime — the sender (batch size/timeout, per-peer bounded queues),
//!   the channel's serving side, catch-up and snapshot tasks, read-your-writes pulls, metrics.
//!
//! Flow: the owner's actor commits a batch → [`sync::LeaderboardSync::committed`] applies it
//! to the node's own replica and appends it to the log (before the writers are answered) →
//! the sender pushes batches to every member → each member applies what continues its
//! cursor, asks the origin for what it missed, and rebuilds a board from snapshot pages when
//! the board gets a new owner instance or the buffer no longer has the missed entries.

pub mod log;
pub mod net;
mod origin;
pub mod pages;
pub mod replica;
pub mod state;
pub mod sync;
pub mod wire;

pub use sync::{LeaderboardSync, SyncSettings};

/// Which boards are replicated: all but those matching `leaderboard_sync_blacklist` (exact
/// ids, or globs with `*`) and those whose rank cache is off (their reads go to the database
/// on the owner, which a replica cannot do).
#[derive(Debug, Clone, Default)]
pub struct Blacklist {
    patterns: Vec<String>,
}

impl Blacklist {
    pub fn new(patterns: impl IntoIterator<Item = String>) -> Blacklist {
        Blacklist {
            patterns: patterns.into_iter().filter(|p| !p.is_empty()).collect(),
        }
    }

    pub fn replicated(&self, board: &str) -> bool {
        !self.patterns.iter().any(|p| glob(p, board))
    }
}

/// `*` matches any run of characters (also none); everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    if !text.ends_with(last) {
        return false;
    }
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod glob_tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("*", "anything"));
        assert!(glob("tournament_*", "tournament_weekly"));
        assert!(glob("tournament_*", "tournament_"));
        assert!(!glob("tournament_*", "weekly_tournament"));
        assert!(glob("*_cup", "world_cup"));
        assert!(glob("a*b*c", "a-b-c"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        let b = Blacklist::new(vec!["tournament_*".to_string(), "secret".to_string()]);
        assert!(!b.replicated("tournament_1"));
        assert!(!b.replicated("secret"));
        assert!(b.replicated("weekly"));
        assert!(!Blacklist::new(vec!["*".to_string()]).replicated("x"));
    }
}

#[cfg(test)]
mod tests;
