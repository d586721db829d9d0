//! What a [`Leaderboard`](super::Leaderboard) needs from its node: the database, its settings
//! (batching, queue bound, rank-cache blacklist), its counters and the node's replication.

use std::sync::Arc;
use std::time::Duration;

use metrics::Counter;

use crate::leaderboard::replication::LeaderboardSync;
use crate::persistence::Db;

/// What a Leaderboard actor needs from its node.
#[derive(Clone)]
pub struct LeaderboardDeps {
    pub db: Db,
    /// Written as the claim's `owner_node`.
    pub node_id: String,
    /// Board ids whose rank cache is off; `*` for all.
    pub blacklist: Arc<Vec<String>>,
    /// A batch is taken once its oldest write has waited this long …
    pub batch_window: Duration,
    /// … or once this many writes wait.
    pub batch_size: usize,
    /// Batches of one board in the database at once (they never touch the same record).
    pub max_in_flight: usize,
    /// Writes waiting beyond this are refused with "try again" instead of queued.
    pub write_queue_limit: usize,
    pub counters: Arc<Counters>,
    /// This node's replication (none when it is off).
    pub sync: Option<Arc<LeaderboardSync>>,
}

impl std::fmt::Debug for LeaderboardDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderboardDeps")
            .field("node_id", &self.node_id)
            .field("blacklist", &self.blacklist)
            .field("batch_window", &self.batch_window)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// The leaderboard figures of a node.
pub struct Counters {
    pub writes_committed: Counter,
    pub writes_refused: Counter,
    pub writes_failed: Counter,
    pub batches: Counter,
    pub reads_memory: Counter,
    pub reads_database: Counter,
}

impl Counters {
    pub fn new(db: &Db) -> Counters {
        let m = db.metrics();
        Counters {
            writes_committed: m.counter("serai_leaderboard_writes_total", "outcome", "committed"),
            writes_refused: m.counter("serai_leaderboard_writes_total", "outcome", "refused"),
            writes_failed: m.counter("serai_leaderboard_writes_total", "outcome", "failed"),
            batches: m.counter("serai_leaderboard_batches_total", "outcome", "committed"),
            reads_memory: m.counter("serai_leaderboard_owner_reads_total", "source", "memory"),
            reads_database: m.counter("serai_leaderboard_owner_reads_total", "source", "database"),
        }
    }
}
