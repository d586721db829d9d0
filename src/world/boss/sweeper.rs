//! Wakes events nobody touches: every [`EVERY`] each node asks the database for events that
//! need an owner (open past `ends_at`, or ended with a participant not yet rewarded) and sends
//! [`Wake`] to those the ring places on itself, which activates them; the activation expires the
//! event at its first tick and pays what is owed. Every wait has a deadline; the task ends at
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use super::actor::WorldBoss;
use super::messages::Wake;
use crate::persistence::{world_events, Db};
use crate::routing::placement::Owner;
use crate::routing::Router;
use crate::shutdown::Shutdown;

/// How often each node looks.
pub const EVERY: Duration = Duration::from_secs(2);
/// Events woken per look, at most.
const BATCH: i64 = 100;
/// The deadline of the query and of each wake.
const WAIT: Duration = Duration::from_secs(2);

pub fn start(db: Db, router: Arc<Router>, shutdown: Shutdown) {
    actix_rt::spawn(async move {
        tokio::select! {
            _ = shutdown.wait() => {}
            _ = sweep_forever(db, router) => {}
        }
    });
}

async fn sweep_forever(db: Db, router: Arc<Router>) {
    loop {
        tokio::time::sleep(EVERY).await;
        if !router.is_serving() {
            continue;
        }
        let due = match tokio::time::timeout(WAIT, world_events::due(&db, BATCH)).await {
            Ok(Ok(ids)) => ids,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "world event sweep failed");
                continue;
            }
            Err(_) => continue,
        };
        for id in due {
            if matches!(router.owner::<WorldBoss>(&id), Owner::Local) {
                let _ = tokio::time::timeout(WAIT, router.send::<WorldBoss, Wake>(id, Wake)).await;
            }
        }
    }
}
