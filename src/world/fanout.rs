//! Pushes of world state to many sockets (owned by the fan-out work, which replaces this body
//! with per-topic coalescing; this stand-in pushes every update through the notifier).

use std::sync::Arc;

use uuid::Uuid;

use crate::gateway::Notifier;
use crate::protocol::client::Notification;
use crate::services::Services;

/// Cloneable; made once per node in world::register and given to the boss actors.
#[derive(Clone)]
pub struct WorldFanout {
    notifier: Notifier,
}

impl WorldFanout {
    pub fn new(services: &Services) -> WorldFanout {
        WorldFanout {
            notifier: services.notifier.clone(),
        }
    }

    /// Pushes `notification` (subject `world_event`) to every socket of `users`, wherever
    /// they are connected; coalesces per topic (latest wins) to at most 2 pushes per second.
    /// Never blocks.
    pub fn publish(&self, _topic: &str, notification: Notification, users: Arc<[Uuid]>) {
        for u in users.iter() {
            self.notifier.push(*u, notification.clone());
        }
    }
}
