//! The handles one running node shares with everything it starts: entity actors' deps, the
//! game's RPCs and the leaderboard's routes are built from a [`Services`]. Assembled by
//! [`crate::node`].
//!
//! - [`catalog_sync`]: hot catalog reload — the admin's reload, the invalidation broadcast to
//!   every member, and the poll that catches up on a missed one.

pub mod catalog_sync;

use std::sync::Arc;

use actix::Addr;

use crate::config::Config;
use crate::domain::catalog::CurrentCatalog;
use crate::gateway::{Notifier, Presence, Revocations, RpcRegistry};
use crate::metrics::Metrics;
use crate::persistence::{Db, PersistenceActor};
use crate::routing::peer::Peers;
use crate::routing::Router;
use crate::shutdown::Shutdown;

/// What entity actors and handlers of this node share.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    /// The catalog this node serves now; take it with `get()` once per request.
    pub catalog: CurrentCatalog,
    pub persistence: Addr<PersistenceActor>,
    pub router: Arc<Router>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    /// The RPCs the gateway serves; game modules register theirs at start.
    pub rpc: Arc<RpcRegistry>,
    /// Sockets connected to this node.
    pub presence: Presence,
    /// Pushes to a user wherever in the cluster their sockets are.
    pub notifier: Notifier,
    pub peers: Peers,
    /// Revoked session and refresh tokens, kept in step with every member.
    pub revocations: Revocations,
}
