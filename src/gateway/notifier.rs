//! Pushes to a user wherever in the cluster their sockets are.

use std::sync::Weak;
use std::time::Duration;

use uuid::Uuid;

use super::Presence;
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
}

impl Notifier {
    pub fn new(presence: Presence, peers: Peers, router: Weak<Router>) -> Self {
        Notifier {
            presence,
            peers,
            router,
        }
    }

    /// Queues `notification` for `user_id` here and sends it to the other members; never
    /// blocks the caller.
    pub fn notify(&self, user_id: Uuid, notification: Notification) {
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
