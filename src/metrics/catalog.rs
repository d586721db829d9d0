//! Every metric a node exports: name, type, labels and help text. The recorder is told each
//! description at start, so every family on `/metrics` has its `# HELP` line; docs/monitoring.md
//! lists the same names, and tests/monitoring.rs checks that every metric name written in `src/`
//! is described here.

/// The type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: its name, type, label names and help text.
#[derive(Debug, Clone, Copy)]
pub struct Described {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Described {
    Described {
        name,
        kind: Kind::Counter,
        labels,
        help,
    }
}

const fn gauge(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Described {
    Described {
        name,
        kind: Kind::Gauge,
        labels,
        help,
    }
}

const fn histogram(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Described {
    Described {
        name,
        kind: Kind::Histogram,
        labels,
        help,
    }
}

/// Bucket bounds (seconds) of every latency histogram: from half a millisecond (a local RPC)
/// to ten seconds (past every deadline), so quantiles aggregate across nodes.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds (seconds) of the leaderboard replication lag, which may reach a minute while
/// a node catches up.
pub const LAG_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The histograms with their own buckets (all others use [`LATENCY_BUCKETS`]).
pub const BUCKETS_FOR: [(&str, &[f64]); 1] = [("serai_leaderboard_sync_lag_seconds", &LAG_BUCKETS)];

/// Every metric a node exports (the global label `node` is on all of them).
pub const CATALOG: &[Described] = &[
    // The node.
    gauge(
        "serai_build_info",
        &["version"],
        "Always 1; the version label is the serai release this node runs.",
    ),
    gauge(
        "serai_ready",
        &[],
        "1 when the node's last readiness check (/readyz) passed, else 0.",
    ),
    counter(
        "serai_readiness_changes_total",
        &[],
        "Times the readiness check's answer changed (ready to not ready or back).",
    ),
    // The process (figures from /proc, read at each scrape).
    counter(
        "process_cpu_seconds_total",
        &[],
        "User and system CPU time of the process, in whole seconds.",
    ),
    gauge(
        "process_resident_memory_bytes",
        &[],
        "Resident memory size of the process in bytes.",
    ),
    gauge(
        "process_virtual_memory_bytes",
        &[],
        "Virtual memory size of the process in bytes.",
    ),
    gauge(
        "process_virtual_memory_max_bytes",
        &[],
        "Limit of the process's virtual memory in bytes (0: no limit).",
    ),
    gauge(
        "process_open_fds",
        &[],
        "Open file descriptors of the process.",
    ),
    gauge(
        "process_max_fds",
        &[],
        "Limit of open file descriptors of the process (0: no limit).",
    ),
    gauge(
        "process_start_time_seconds",
        &[],
        "Start time of the process, seconds since the Unix epoch.",
    ),
    gauge("process_threads", &[], "OS threads of the process."),
    // Database writes.
    histogram(
        "serai_db_write_duration_seconds",
        &["op"],
        "Seconds one database write took, its retries included: a transaction by its name, \
         or op=\"flush\" (one flush transaction) or op=\"leaderboard_flush\" (one batch).",
    ),
    counter(
        "serai_db_write_failures_total",
        &["op", "class"],
        "Database writes that failed after their retries, by operation and class of failure \
         (serialization, deadlock, connection, timeout, commit_unknown, bad_row, other). \
         Answers such as fenced, rejected or not found are not failures.",
    ),
    counter(
        "serai_db_errors_total",
        &["op", "class"],
        "Failed attempts of database writes, retried or not, by class: class=\"serialization\" \
         is SQLSTATE 40001 (a conflict), class=\"connection\" a lost or unavailable connection.",
    ),
    counter(
        "serai_db_retries_total",
        &[],
        "Transactions and flushes run again after a retryable error (conflict, deadlock, lost \
         connection).",
    ),
    counter(
        "serai_fenced_writes_total",
        &[],
        "Writes refused because a newer claim owns the row (another node took the entity over).",
    ),
    counter(
        "serai_claims_total",
        &[],
        "Entity rows this node claimed (each claim bumps the row's owner epoch).",
    ),
    // The persistence actor.
    gauge(
        "serai_flush_backlog_rows",
        &[],
        "Dirty rows waiting to be written by the persistence actor, queued plus in flight.",
    ),
    gauge(
        "serai_persistence_oldest_unflushed_seconds",
        &[],
        "Age of the oldest dirty change not yet committed: what a crash would lose.",
    ),
    gauge(
        "serai_persistence_backpressure",
        &[],
        "1 while the flush backlog is over its high-water mark (writers wait, node not ready).",
    ),
    histogram(
        "serai_flush_latency_seconds",
        &[],
        "Seconds from the start of a flush to its end, for flushes that committed.",
    ),
    counter(
        "serai_rows_written_total",
        &[],
        "Dirty rows written by flushes.",
    ),
    counter(
        "serai_flush_failures_total",
        &[],
        "Flushes stopped by a failure of the database (not of a row); their rows are kept.",
    ),
    counter(
        "serai_compensation_rows_total",
        &[],
        "Rows this node set aside into the compensation table after their retries.",
    ),
    gauge(
        "serai_compensation_open",
        &[],
        "Open compensation records (the whole table, every node's), waiting for an operator.",
    ),
    // Stored notifications.
    counter(
        "serai_notifications_stored_total",
        &["path"],
        "Persistent notifications written outside the transaction of their cause: path=queue (the notifier's bounded queue) or drain (reconnect notices).",
    ),
    counter(
        "serai_notifications_unstored_total",
        &["reason"],
        "Persistent notifications delivered live but not stored: reason=queue_full or write_failed (dropped after their attempts).",
    ),
    // The catalog.
    gauge(
        "serai_catalog_version",
        &[],
        "The catalog version this node serves (catalog_meta.version).",
    ),
    histogram(
        "serai_catalog_sync_delay_seconds",
        &[],
        "Seconds from a catalog version's bump in the database to its install on this node (by broadcast or by polling).",
    ),
    // Client RPCs and sessions.
    histogram(
        "serai_rpc_duration_seconds",
        &["rpc", "transport", "outcome"],
        "Seconds a client RPC took, by RPC id, transport (http, socket) and outcome: ok, \
         refused (the request's own fault or a rule said no), not_run, may_have_run, error.",
    ),
    counter(
        "serai_rate_limit_refusals_total",
        &["group"],
        "Client RPCs refused by the cluster-wide rate limit (RESOURCE_EXHAUSTED), by group.",
    ),
    counter(
        "serai_rate_limit_owner_asks_total",
        &["group"],
        "Token leases this node asked of a user's owner node over the peer link, by group \
         (one per batch of requests, not per request).",
    ),
    counter(
        "serai_rate_limit_fallbacks_total",
        &["group"],
        "Rate-limited RPCs decided by this node's own bucket because the user's owner node \
         could not be reached (fail open, limited per node), by group.",
    ),
    counter(
        "serai_world_pushes_total",
        &["to"],
        "World event updates (subject world_event) queued on this node's sockets (to=socket).",
    ),
    counter(
        "serai_world_push_dropped_total",
        &["reason"],
        "World event updates dropped: reason=topics (a publish beyond the topic bound), \
         backlog (a member's queue of peer messages full), send (a peer message failed or \
         timed out), malformed (a received peer message refused).",
    ),
    gauge(
        "serai_sessions_online",
        &[],
        "Users with at least one realtime socket open on this node.",
    ),
    counter(
        "serai_client_disconnects_total",
        &["reason"],
        "Sockets closed by the node, by reason (slow_reader: the client did not read).",
    ),
    counter(
        "serai_client_auth_total",
        &["account"],
        "Successful authentications, by whether the account was created or existing.",
    ),
    counter(
        "serai_account_signup_retries_total",
        &["reason"],
        "Sign-up statements run again: reason=\"username\" (a generated username was taken, \
         one is drawn anew), reason=\"serialization\" (SQLSTATE 40001 the database did not \
         retry itself; expected 0: sign-ups of different ids touch disjoint keys).",
    ),
    // Routing and the cluster.
    gauge(
        "serai_active_actors",
        &["kind"],
        "Live actors on this node by kind (character, market, battle, leaderboard, socket …).",
    ),
    gauge(
        "serai_cluster_members",
        &[],
        "Members in this node's membership view, itself included (0 once it stepped down).",
    ),
    gauge(
        "serai_cluster_members_missing",
        &[],
        "Members whose heartbeat row says alive but that have been silent past the membership \
         timeout, so they are out of the view without having left (crashed or cut off).",
    ),
    counter(
        "serai_forwarded_total",
        &["kind"],
        "Entity messages forwarded to their owner node, by entity kind.",
    ),
    histogram(
        "serai_forward_latency_seconds",
        &[],
        "Seconds a forwarded entity message took, request to answer (the added hop).",
    ),
    counter(
        "serai_handoffs_total",
        &["reason"],
        "Entities handed off to another owner, by reason.",
    ),
    counter(
        "serai_peer_requests_total",
        &["outcome"],
        "Requests sent over the peer link, by outcome.",
    ),
    counter(
        "serai_peer_dials_total",
        &["outcome"],
        "Peer link connections this node opened, by outcome.",
    ),
    counter(
        "serai_peer_inbound_links_total",
        &["outcome"],
        "Peer link connections offered to this node, by outcome of their handshake.",
    ),
    counter(
        "serai_peer_links_dropped_total",
        &["reason"],
        "Peer links closed because of a bad frame, by reason.",
    ),
    // Game entities.
    counter(
        "serai_character_activations_total",
        &["from"],
        "Character sessions activated, by where their state came from (handover, database).",
    ),
    counter(
        "serai_travel_total",
        &["event"],
        "Caravan travel events: departed, encounter, arrived.",
    ),
    counter(
        "serai_battles_total",
        &["outcome"],
        "Battles started and ended, by outcome.",
    ),
    counter(
        "serai_battle_turns_total",
        &["resolution"],
        "Battle turns resolved, by how: submitted (every action in) or timeout.",
    ),
    counter(
        "serai_market_reservations_total",
        &["outcome"],
        "Market stock reservations, by outcome.",
    ),
    // Leaderboards: writes, the owner's rank cache, replicas.
    counter(
        "serai_leaderboard_writes_total",
        &["outcome"],
        "Leaderboard record writes, by outcome (committed, refused, failed).",
    ),
    counter(
        "serai_leaderboard_batches_total",
        &["outcome"],
        "Leaderboard write batches committed.",
    ),
    counter(
        "serai_snapshot_reads_total",
        &["rpc", "answered"],
        "Read-only RPCs by who answered: snapshot (what the owners published, on the caller's thread) or owner (the actors, when no usable snapshot was there).",
    ),
    counter(
        "serai_leaderboard_owner_reads_total",
        &["source"],
        "Reads answered by a board's owner, by source: memory (its rank cache) or database.",
    ),
    counter(
        "serai_leaderboard_reads_total",
        &["served"],
        "Leaderboard reads, by who answered: replica (this node's copy), owner, or forwarded \
         to the owner node.",
    ),
    counter(
        "serai_leaderboard_sync_entries_total",
        &["direction"],
        "Replication log entries sent and received.",
    ),
    counter(
        "serai_leaderboard_sync_batches_total",
        &["direction"],
        "Replication batches sent and received.",
    ),
    counter(
        "serai_leaderboard_sync_bytes_total",
        &["direction"],
        "Replication bytes sent and received.",
    ),
    counter(
        "serai_leaderboard_sync_gaps_total",
        &["kind"],
        "Gaps found in an origin's replication versions.",
    ),
    counter(
        "serai_leaderboard_sync_resyncs_total",
        &["kind"],
        "Replica catch-ups, incremental (from the origin's buffer) or full (a snapshot).",
    ),
    counter(
        "serai_leaderboard_sync_snapshots_total",
        &["outcome"],
        "Full replica snapshots taken.",
    ),
    counter(
        "serai_leaderboard_sync_dropped_total",
        &["reason"],
        "Replication batches dropped before sending, by reason.",
    ),
    counter(
        "serai_leaderboard_sync_failures_total",
        &["stage"],
        "Replication failures, by stage (send, catch_up, snapshot, decode).",
    ),
    histogram(
        "serai_leaderboard_sync_lag_seconds",
        &[],
        "Seconds from a leaderboard change on its owner to its application on this replica.",
    ),
];

/// The description of `name`, if the catalog has one.
pub fn described(name: &str) -> Option<&'static Described> {
    CATALOG.iter().find(|d| d.name == name)
}
