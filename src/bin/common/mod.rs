//! What `serai-load` and `serai-cluster-bench` both need to talk to a node as a game client: a
//! one-shot HTTP/1.1 client, the realtime socket (device session, RPC frames, replies) and the
//! percentiles of their latencies. Each binary includes it with `#[path = "common/mod.rs"]`.

pub mod http;
pub mod percentile;
pub mod socket;

/// Any error, sendable across tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
