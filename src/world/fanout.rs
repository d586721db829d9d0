//! World pushes: a world event's updates (a boss's HP) to every subscribed socket, wherever in
//! the cluster it is connected, coalesced to at most 2 per second per event (docs/world.md,
//! "Pushes").
//!
//! [`WorldFanout::publish`] is called on the event owner's node, possibly thousands of times a
//! second; it only records the latest (notification, users) of the topic in a [`Coalescer`]
//! and, on a leading edge, wakes the sender. The sender task takes what is due, encodes the
//! notification once, queues it on this node's sockets ([`Presence::notify_users`]) and sends
//! every other member ONE message per [`MAX_USERS_PER_MESSAGE`] users on the [`CHANNEL`]
//! (never one per user, as [`crate::gateway::Notifier::push`] does); each member queues it on
//! the sockets it holds. Everything is bounded: topics ([`MAX_TOPICS`]), users per message,
//! messages queued per member ([`MEMBER_QUEUE`], sent in order by one task per member) and the
//! time of each send ([`SEND_WITHIN`]). What is dropped is counted in
//! `serai_world_push_dropped_total{reason}`; pushes are live updates, not stored: a socket that
//! misses one gets the next, and `get_world_event` tells the current state.

pub mod coalesce;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use uuid::Uuid;

pub use coalesce::{Coalescer, Offer};

use crate::gateway::Presence;
use crate::metrics::Metrics;
use crate::protocol::client::Notification;
use crate::request::Failure;
use crate::routing::channel::{self, Channel};
use crate::routing::peer::Peers;
use crate::routing::placement::Member;
use crate::routing::Router;
use crate::services::Services;
use crate::shutdown::Shutdown;

/// The channel's name on the peer link (a wire name: never rename it).
pub const CHANNEL: &str = "world_push";
/// The subject of every world push.
pub const SUBJECT: &str = "world_event";
/// At most one push per topic per this: 2 per second per event on every socket.
pub const MIN_GAP: Duration = Duration::from_millis(500);
/// Topics held at once (waiting, or sent within the last gap); a new one beyond is dropped.
pub const MAX_TOPICS: usize = 4096;
/// Users named in one peer message; a longer list goes in several (about 16 bytes each, so a
/// message stays near 32 KiB, far below the peer link's frame limit).
pub const MAX_USERS_PER_MESSAGE: usize = 2048;
/// Messages waiting for one member's sender; a member that cannot keep up loses the excess.
pub const MEMBER_QUEUE: usize = 256;
/// How long one peer message may take, answer included.
pub const SEND_WITHIN: Duration = Duration::from_secs(1);
/// First byte of every body on the channel: its encoding's version.
const FORMAT: u8 = 1;
/// What a served message answers.
const DELIVERED: u8 = 1;

/// The body of one peer message: the notification's JSON and the users to push it to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pushed {
    notification: String,
    users: Vec<Uuid>,
}

/// A topic's latest update, waiting for its turn.
struct Update {
    notification: Notification,
    users: Arc<[Uuid]>,
}

/// One member's ordered queue of messages.
type MemberQueue = mpsc::Sender<(Member, Arc<Vec<u8>>)>;

struct Inner {
    presence: Presence,
    peers: Peers,
    router: Weak<Router>,
    metrics: Arc<Metrics>,
    coalescer: Mutex<Coalescer<Update>>,
    wake: Notify,
    members: Mutex<HashMap<String, MemberQueue>>,
    shutdown: Shutdown,
}

/// Pushes world events' updates to their subscribers. Cloneable: clones share one sender;
/// [`WorldFanout::new`] makes it once per node (a second call answers the same one).
#[derive(Clone)]
pub struct WorldFanout {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WorldFanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorldFanout").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WorldFanout {
    /// The node's fan-out: serves the [`CHANNEL`] and runs the sender until the node's
    /// shutdown. Must be called inside the node's runtime (it spawns the sender).
    pub fn new(services: &Services) -> WorldFanout {
        if let Some(inner) = services.router.channel::<Inner>(CHANNEL) {
            return WorldFanout { inner };
        }
        let inner = Arc::new(Inner {
            presence: services.presence.clone(),
            peers: services.peers.clone(),
            router: Arc::downgrade(&services.router),
            metrics: services.metrics.clone(),
            coalescer: Mutex::new(Coalescer::new(MIN_GAP, MAX_TOPICS)),
            wake: Notify::new(),
            members: Mutex::new(HashMap::new()),
            shutdown: services.shutdown.clone(),
        });
        services.router.register_channel(CHANNEL, inner.clone());
        tokio::spawn(inner.clone().run());
        WorldFanout { inner }
    }

    /// Pushes `notification` (subject `world_event`) to every socket of `users`, wherever
    /// they are connected; coalesces per topic (latest wins) to at most 2 pushes per second.
    /// Never blocks.
    pub fn publish(&self, topic: &str, notification: Notification, users: Arc<[Uuid]>) {
        let update = Update {
            notification,
            users,
        };
        let offer = lock(&self.inner.coalescer).offer(topic, update, std::time::Instant::now());
        match offer {
            // The sender sleeps until the earliest due topic: tell it of a new one.
            Offer::Now | Offer::Later => self.inner.wake.notify_one(),
            Offer::Replaced => {}
            Offer::Refused => self.inner.dropped("topics"),
        }
    }
}

impl Inner {
    fn dropped(&self, reason: &'static str) {
        self.metrics
            .counter("serai_world_push_dropped_total", "reason", reason)
            .increment(1);
    }

    /// The sender: waits for a leading edge or the next due topic, then sends what is due.
    async fn run(self: Arc<Self>) {
        loop {
            let next = lock(&self.coalescer).next_due();
            let sleep = match next {
                Some(at) => tokio::time::sleep_until(Instant::from_std(at)),
                None => tokio::time::sleep(Duration::from_secs(3600)),
            };
            tokio::select! {
                _ = self.shutdown.wait() => return,
                _ = self.wake.notified() => {}
                _ = sleep => {}
            }
            let due = lock(&self.coalescer).take_due(std::time::Instant::now());
            // The members' messages go first and their senders get to run before this node
            // queues its own sockets: the members deliver to theirs meanwhile.
            for (_, update) in &due {
                self.send_to_members(update);
            }
            tokio::task::yield_now().await;
            for (_, update) in &due {
                self.deliver_local(update);
            }
        }
    }

    /// Queues `update` on this node's sockets.
    fn deliver_local(&self, update: &Update) {
        let local = self
            .presence
            .notify_users(&update.users, &update.notification);
        self.delivered(local);
    }

    /// Queues one message per [`MAX_USERS_PER_MESSAGE`] users on each other member's queue.
    fn send_to_members(&self, update: &Update) {
        let Some(router) = self.router.upgrade() else {
            return;
        };
        let placement = router.placement();
        let others: Vec<Member> = placement
            .members()
            .filter(|m| m.node_id != placement.node_id())
            .cloned()
            .collect();
        self.forget_gone(&others);
        if others.is_empty() {
            return;
        }
        let Ok(json) = serde_json::to_string(&update.notification) else {
            return;
        };
        let bodies: Vec<Arc<Vec<u8>>> = update
            .users
            .chunks(MAX_USERS_PER_MESSAGE)
            .map(|users| {
                let pushed = Pushed {
                    notification: json.clone(),
                    users: users.to_vec(),
                };
                Arc::new(channel::encode(FORMAT, &pushed))
            })
            .collect();
        for m in others {
            let queue = self.queue_of(&m);
            for body in &bodies {
                if queue.try_send((m.clone(), body.clone())).is_err() {
                    self.dropped("backlog");
                }
            }
        }
    }

    fn delivered(&self, sockets: usize) {
        self.metrics
            .counter("serai_world_pushes_total", "to", "socket")
            .increment(sockets as u64);
    }

    /// Drops the queues of members no longer in the view (their senders end).
    fn forget_gone(&self, others: &[Member]) {
        lock(&self.members).retain(|id, _| others.iter().any(|m| &m.node_id == id));
    }

    /// `member`'s queue, its sender task started on first use.
    fn queue_of(&self, member: &Member) -> MemberQueue {
        let mut members = lock(&self.members);
        if let Some(q) = members.get(&member.node_id).filter(|q| !q.is_closed()) {
            return q.clone();
        }
        let (tx, rx) = mpsc::channel(MEMBER_QUEUE);
        let sender = MemberSender {
            peers: self.peers.clone(),
            metrics: self.metrics.clone(),
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(sender.run(rx));
        members.insert(member.node_id.clone(), tx.clone());
        tx
    }
}

/// Sends one member's messages in order, each within [`SEND_WITHIN`].
struct MemberSender {
    peers: Peers,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
}

impl MemberSender {
    async fn run(self, mut rx: mpsc::Receiver<(Member, Arc<Vec<u8>>)>) {
        loop {
            let next = tokio::select! {
                _ = self.shutdown.wait() => return,
                next = rx.recv() => next,
            };
            let Some((member, body)) = next else { return };
            let deadline = Instant::now() + SEND_WITHIN;
            let sent = channel::call(&self.peers, &member, CHANNEL, body.to_vec(), deadline).await;
            if let Err(e) = sent {
                tracing::debug!(node = %member.node_id, error = %e, "world push not delivered");
                self.metrics
                    .counter("serai_world_push_dropped_total", "reason", "send")
                    .increment(1);
            }
        }
    }
}

/// Reads a peer message; a bad one is refused whole (it names its fault).
fn read_pushed(body: &[u8]) -> Result<(Notification, Vec<Uuid>), String> {
    let pushed = channel::decode::<Pushed>(FORMAT, "world push", body)?;
    if pushed.users.len() > MAX_USERS_PER_MESSAGE {
        return Err(format!(
            "{} users in one world push (at most {MAX_USERS_PER_MESSAGE})",
            pushed.users.len()
        ));
    }
    let notification = serde_json::from_str(&pushed.notification)
        .map_err(|e| format!("world push notification: {e}"))?;
    Ok((notification, pushed.users))
}

impl Channel for Inner {
    fn serve(&self, from: String, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, Failure>> {
        let answer = match read_pushed(&body) {
            Ok((notification, users)) => {
                self.delivered(self.presence.notify_users(&users, &notification));
                Ok(vec![DELIVERED])
            }
            Err(e) => {
                self.dropped("malformed");
                Err(Failure::not_run(format!("world push from {from}: {e}")))
            }
        };
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_bad_ones_are_refused() {
        let n = Notification::new(SUBJECT, 0, &serde_json::json!({"hp": 5}));
        let users = vec![Uuid::new_v4(), Uuid::new_v4()];
        let body = channel::encode(
            FORMAT,
            &Pushed {
                notification: serde_json::to_string(&n).unwrap(),
                users: users.clone(),
            },
        );
        let (read, read_users) = read_pushed(&body).unwrap();
        // The wire's timestamp has whole seconds (Nakama's format).
        assert_eq!(
            (read.id, read.content, read_users),
            (n.id, n.content, users)
        );
        assert!(read_pushed(&[]).is_err());
        assert!(read_pushed(&[9, 0]).is_err());
        let too_many = channel::encode(
            FORMAT,
            &Pushed {
                notification: "{}".into(),
                users: vec![Uuid::nil(); MAX_USERS_PER_MESSAGE + 1],
            },
        );
        assert!(read_pushed(&too_many).unwrap_err().contains("users"));
        let not_json = channel::encode(
            FORMAT,
            &Pushed {
                notification: "{".into(),
                users: vec![],
            },
        );
        assert!(read_pushed(&not_json).is_err());
    }

    #[test]
    fn a_long_user_list_fits_the_peer_frame() {
        let n = Notification::new(SUBJECT, 0, &serde_json::json!({"hp": u64::MAX}));
        let body = channel::encode(
            FORMAT,
            &Pushed {
                notification: serde_json::to_string(&n).unwrap(),
                users: vec![Uuid::new_v4(); MAX_USERS_PER_MESSAGE],
            },
        );
        assert!(
            body.len() < crate::protocol::peer::MAX_FRAME / 8,
            "{}",
            body.len()
        );
    }
}
