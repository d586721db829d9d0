//! What the sockets of a draining node hear: where to reconnect. The notice is persistent: it
//! is stored for each user told (one row each, written before the push, at most
//! [`STORE_WITHIN`]), so a client that missed the push finds it listed after reconnecting. A
//! database that does not answer in time costs only the stored copy: the push goes out anyway.

use std::time::Duration;

use uuid::Uuid;

use crate::gateway::notification_store::to_stored;
use crate::gateway::Notification;
use crate::persistence::notifications;
use crate::protocol::rpc::notify::SERVER_DRAINING;
use crate::services::Services;

/// How long the drain waits for the notices to be stored.
const STORE_WITHIN: Duration = Duration::from_secs(3);

/// The notice for this node: the other members' client addresses.
fn notice(s: &Services) -> Notification {
    let placement = s.router.placement();
    let others: Vec<String> = placement
        .members()
        .filter(|m| m.node_id != s.config.node_id)
        .map(|m| m.client_addr.clone())
        .collect();
    let (subject, code) = SERVER_DRAINING;
    let mut n = Notification::new(
        subject,
        code,
        &serde_json::json!({"node": s.config.node_id, "reconnect_to": others}),
    );
    n.persistent = true;
    n
}

/// Stores a notice for every user with a socket here, then pushes it; how many sockets heard.
pub(super) async fn tell_sockets(s: &Services) -> usize {
    let base = notice(s);
    let told: Vec<(Uuid, Notification)> = s
        .presence
        .users()
        .into_iter()
        .map(|user| {
            let mut n = base.clone();
            n.id = Uuid::new_v4().to_string();
            (user, n)
        })
        .collect();
    let rows: Vec<_> = told.iter().filter_map(|(u, n)| to_stored(*u, n)).collect();
    match tokio::time::timeout(STORE_WITHIN, notifications::insert(&s.db, &rows)).await {
        Ok(Ok(n)) => {
            s.metrics
                .counter("serai_notifications_stored_total", "path", "drain")
                .increment(n);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "reconnect notices not stored"),
        Err(_) => tracing::warn!("reconnect notices not stored within {STORE_WITHIN:?}"),
    }
    told.into_iter()
        .map(|(user, n)| s.presence.notify(user, n))
        .sum()
}
