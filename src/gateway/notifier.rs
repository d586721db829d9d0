//! Pushes to a user wherever in the cluster their sockets are, and has the persistent ones
//! stored (see [`super::notification_store`] for when and what is guaranteed).

use std::sync::Weak;
use std::time::Duration;

use uuid::Uuid;

use super::{NotificationStore, Presence};
use crate::protocol::client::Notification;
use crate::routing::peer::{PeerError, PeerRequest, Peers};
use crate::routing::placement::Member;
use crate::routing::Router;

/// Pushes notifications to a user wherever their sockets are: this node's, and every other
/// member's (each delivers to the sockets it holds).
#[derive(Clone)]
pub struct Notifier {
    presence: Presence,
    peers: Peers,
    router: Weak<Router>,
    store: NotificationStore,
}

impl Notifier {
    pub fn new(
        presence: Presence,
        peers: Peers,
        router: Weak<Router>,
        store: NotificationStore,
    ) -> Self {
        Notifier {
            presence,
            peers,
            router,
            store,
        }
    }

    /// The queue that stores persistent notifications.
    pub fn store(&self) -> &NotificationStore {
        &self.store
    }

    /// Pushes `notification` to `user_id`'s sockets and, when it is `persistent`, queues it
    /// for storage; never blocks the caller (a full queue: delivered live, not stored).
    pub fn notify(&self, user_id: Uuid, notification: Notification) {
        if notification.persistent {
            self.store.enqueue(user_id, &notification);
        }
        self.push(user_id, notification);
    }

    /// Pushes a notification that needs no storing here: not persistent, or already written
    /// with the change that caused it. Queues it on this node's sockets and sends it to the
    /// other members; never blocks the caller.
    pub fn push(&self, user_id: Uuid, notification: Notification) {
        self.presence.notify(user_id, notification.clone());
        let Some(router) = self.router.upgrade() else {
            return;
        };
        let placement = router.placement();
        let others: Vec<Member> = placement
            .members()
            .filter(|m| m.node_id != placement.node_id())
            .cloned()
            .collect();
        if others.is_empty() {
            return;
        }
        let Ok(payload) = serde_json::to_string(&notification) else {
            return;
        };
        let peers = self.peers.clone();
        tokio::spawn(async move {
            for m in others {
                let push = PeerRequest::Push {
                    user_id,
                    payload: payload.clone(),
                };
                let result = tokio::time::timeout(
                    Duration::from_secs(2),
                    peers.request(&m.node_id, &m.peer_addr, push),
                )
                .await;
                if let Ok(Err(e)) = result {
                    if !matches!(e, PeerError::Backoff { .. }) {
                        tracing::debug!(node = %m.node_id, error = %e, "push to peer failed");
                    }
                }
            }
        });
    }
}
