//! Who is connected to this node: user id → live sockets, and the bounded outbound queue of
//! each socket.
//!
//! Everything a socket sends goes through its [`Outbox`]: a bounded queue (messages and bytes)
//! drained by the socket's writer task. A push that finds the queue full means the client does
//! not read its messages: the socket is disconnected, nothing is buffered without bound.
//! [`Presence::notify`] never blocks and never waits for a client.
//!
//! The queue is sized for an idle player: it holds no buffer while empty (a linked queue that
//! allocates per queued item), and its bounds are counted here (items and bytes), so an idle
//! socket costs a few hundred bytes for it instead of a preallocated block of slots.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use actix_web::web::Bytes;
use actix_ws::CloseReason;
use futures_channel::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::protocol::client::{Notification, NotificationList, ServerMessage};
use crate::protocol::socket_codec::{Frame, SocketCodec};

/// One item of a socket's outbound queue.
#[derive(Debug)]
pub(crate) enum Outbound {
    Text(String),
    /// A protobuf socket's message.
    Binary(Bytes),
    Ping,
    Pong(Bytes),
    Close(Option<CloseReason>),
}

/// The sending side of a socket's outbound queue.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::UnboundedSender<Outbound>,
    /// Items queued and not yet taken by the writer (bounded by `max_items`).
    queued_items: Arc<AtomicUsize>,
    max_items: usize,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    /// Cancelled when the client is too slow: the writer drops the connection at once.
    kill: CancellationToken,
    /// How this socket's messages are encoded (pushes are encoded once per codec).
    codec: SocketCodec,
}

/// Why a push was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue is full: the socket is being disconnected.
    Overflow,
    /// The socket is gone.
    Closed,
}

impl Outbox {
    /// A queue of at most `max_messages` items and `max_bytes` bytes of text.
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
        let (tx, rx) = mpsc::unbounded();
        let queued_items = Arc::new(AtomicUsize::new(0));
        let outbox = Outbox {
            tx,
            queued_items: queued_items.clone(),
            max_items: max_messages.max(1),
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            max_bytes,
            kill: CancellationToken::new(),
            codec: SocketCodec::Json,
        };
        (outbox, OutboxReceiver { rx, queued_items })
    }

    /// Queues `item` if fewer than `max_items` wait.
    fn try_send(&self, item: Outbound) -> Result<(), PushError> {
        let before = self.queued_items.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_items {
            self.queued_items.fetch_sub(1, Ordering::AcqRel);
            return Err(self.overflow());
        }
        self.tx.unbounded_send(item).map_err(|_| {
            self.queued_items.fetch_sub(1, Ordering::AcqRel);
            PushError::Closed
        })
    }

    /// The same queue for a socket that speaks `codec`.
    pub(crate) fn with_codec(mut self, codec: SocketCodec) -> Outbox {
        self.codec = codec;
        self
    }

    pub(crate) fn codec(&self) -> SocketCodec {
        self.codec
    }

    pub(crate) fn kill_token(&self) -> CancellationToken {
        self.kill.clone()
    }

    pub(crate) fn queued_bytes(&self) -> Arc<AtomicUsize> {
        self.queued_bytes.clone()
    }

    fn overflow(&self) -> PushError {
        if !self.kill.is_cancelled() {
            tracing::info!("disconnecting a socket whose client does not read its messages");
            self.kill.cancel();
        }
        PushError::Overflow
    }

    /// Queues an encoded message (text or binary), counted against the byte bound.
    pub(crate) fn push_frame(&self, frame: Frame) -> Result<(), PushError> {
        if self.kill.is_cancelled() {
            return Err(PushError::Closed);
        }
        let len = frame.len();
        let item = match frame {
            Frame::Text(text) => Outbound::Text(text),
            Frame::Binary(bytes) => Outbound::Binary(bytes),
        };
        let before = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len) > self.max_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            return Err(self.overflow());
        }
        self.try_send(item).inspect_err(|_| {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        })
    }

    /// Queues a control item (ping, pong, close).
    pub(crate) fn push_control(&self, item: Outbound) -> Result<(), PushError> {
        if self.kill.is_cancelled() {
            return Err(PushError::Closed);
        }
        self.try_send(item)
    }
}

/// The writer's side of a socket's outbound queue.
pub(crate) struct OutboxReceiver {
    rx: mpsc::UnboundedReceiver<Outbound>,
    queued_items: Arc<AtomicUsize>,
}

impl OutboxReceiver {
    /// The next item; `None` once every [`Outbox`] is gone and the queue is empty.
    pub(crate) async fn recv(&mut self) -> Option<Outbound> {
        let item = self.rx.recv().await.ok()?;
        self.queued_items.fetch_sub(1, Ordering::AcqRel);
        Some(item)
    }

    /// The next item if one is queued.
    #[cfg(test)]
    pub(crate) fn try_recv(&mut self) -> Option<Outbound> {
        let item = self.rx.try_recv().ok()?;
        self.queued_items.fetch_sub(1, Ordering::AcqRel);
        Some(item)
    }
}

#[derive(Default)]
struct Inner {
    sockets: RwLock<HashMap<Uuid, Vec<(u64, Outbox)>>>,
    next_id: AtomicU64,
}

/// The sockets connected to this node, by user. Cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub struct Presence {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("online_users", &self.online_users())
            .finish()
    }
}

impl Presence {
    pub fn new() -> Presence {
        Presence::default()
    }

    /// Registers a socket of `user_id`; the returned id removes it again.
    pub(crate) fn join(&self, user_id: Uuid, outbox: Outbox) -> u64 {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut map = self
            .inner
            .sockets
            .write()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(user_id).or_default().push((id, outbox));
        id
    }

    pub(crate) fn leave(&self, user_id: Uuid, socket_id: u64) {
        let mut map = self
            .inner
            .sockets
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(list) = map.get_mut(&user_id) {
            list.retain(|(id, _)| *id != socket_id);
            if list.is_empty() {
                map.remove(&user_id);
            }
        }
    }

    /// Pushes one notification to every socket of `user_id` on this node:
    /// `{"notifications":{"notifications":[...]}}` without a `cid` (in protobuf on a protobuf
    /// socket). Returns how many sockets it
    /// was queued on (0 when the user is not connected here). Never blocks.
    pub fn notify(&self, user_id: Uuid, notification: Notification) -> usize {
        self.notify_many(user_id, std::slice::from_ref(&notification))
    }

    /// Pushes several notifications in one message.
    pub fn notify_many(&self, user_id: Uuid, notifications: &[Notification]) -> usize {
        if notifications.is_empty() {
            return 0;
        }
        let map = self.inner.sockets.read().unwrap_or_else(|e| e.into_inner());
        let Some(list) = map.get(&user_id) else {
            return 0;
        };
        let message = ServerMessage::Notifications(NotificationList { notifications });
        // Encoded at most once per codec, however many sockets the user has.
        let (mut json, mut protobuf) = (None, None);
        list.iter()
            .filter(|(_, outbox)| {
                let codec = outbox.codec();
                let slot = match codec {
                    SocketCodec::Json => &mut json,
                    SocketCodec::Protobuf => &mut protobuf,
                };
                let frame = slot.get_or_insert_with(|| codec.encode(None, &message));
                outbox.push_frame(frame.clone()).is_ok()
            })
            .count()
    }

    /// Pushes one notification to every socket on this node of each of `users` (a world
    /// event's subscribers), encoded at most once per codec for all of them, under one read
    /// lock. Returns how many sockets it was queued on. Never blocks.
    pub fn notify_users(&self, users: &[Uuid], notification: &Notification) -> usize {
        let map = self.inner.sockets.read().unwrap_or_else(|e| e.into_inner());
        let message = ServerMessage::Notifications(NotificationList {
            notifications: std::slice::from_ref(notification),
        });
        let (mut json, mut protobuf) = (None, None);
        users
            .iter()
            .filter_map(|u| map.get(u))
            .flatten()
            .filter(|(_, outbox)| {
                let codec = outbox.codec();
                let slot = match codec {
                    SocketCodec::Json => &mut json,
                    SocketCodec::Protobuf => &mut protobuf,
                };
                let frame = slot.get_or_insert_with(|| codec.encode(None, &message));
                outbox.push_frame(frame.clone()).is_ok()
            })
            .count()
    }

    /// The users with a socket on this node.
    pub fn users(&self) -> Vec<Uuid> {
        let map = self.inner.sockets.read().unwrap_or_else(|e| e.into_inner());
        map.keys().copied().collect()
    }

    /// Pushes one notification to every socket on this node.
    pub fn notify_all(&self, notification: Notification) -> usize {
        self.users()
            .into_iter()
            .map(|u| self.notify(u, notification.clone()))
            .sum()
    }

    /// Closes every socket on this node with `code` (1001 "going away" at drain); clients
    /// reconnect to another node. Returns how many sockets were asked to close.
    pub fn close_all(&self, code: actix_ws::CloseCode, description: &str) -> usize {
        let map = self.inner.sockets.read().unwrap_or_else(|e| e.into_inner());
        let reason = CloseReason {
            code,
            description: Some(description.to_string()),
        };
        map.values()
            .flatten()
            .filter(|(_, outbox)| {
                outbox
                    .push_control(Outbound::Close(Some(reason.clone())))
                    .is_ok()
            })
            .count()
    }

    /// Whether `user_id` has a socket on this node.
    pub fn is_online(&self, user_id: Uuid) -> bool {
        self.sockets_of(user_id) > 0
    }

    /// How many sockets `user_id` has on this node.
    pub fn sockets_of(&self, user_id: Uuid) -> usize {
        let map = self.inner.sockets.read().unwrap_or_else(|e| e.into_inner());
        map.get(&user_id).map_or(0, Vec::len)
    }

    /// How many users have at least one socket on this node.
    pub fn online_users(&self) -> usize {
        self.inner
            .sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_every_socket_of_the_user() {
        let p = Presence::new();
        let u = Uuid::new_v4();
        let (a, mut ra) = Outbox::new(8, 1 << 20);
        let (b, mut rb) = Outbox::new(8, 1 << 20);
        let ia = p.join(u, a);
        let _ib = p.join(u, b);
        assert_eq!(p.sockets_of(u), 2);
        let n = Notification::new("hello", 1, &serde_json::json!({"x": 1}));
        assert_eq!(p.notify(u, n.clone()), 2);
        assert_eq!(p.notify(Uuid::new_v4(), n), 0);
        for rx in [&mut ra, &mut rb] {
            match rx.try_recv().unwrap() {
                Outbound::Text(t) => assert!(
                    t.starts_with(r#"{"notifications":{"notifications":[{"#),
                    "{t}"
                ),
                other => panic!("{other:?}"),
            }
        }
        p.leave(u, ia);
        assert_eq!(p.sockets_of(u), 1);
        assert!(p.is_online(u));
    }

    #[test]
    fn a_push_reaches_each_socket_in_its_own_codec() {
        let p = Presence::new();
        let u = Uuid::new_v4();
        let (json, mut rj) = Outbox::new(8, 1 << 20);
        let (pb, mut rp) = Outbox::new(8, 1 << 20);
        let (pb2, mut rp2) = Outbox::new(8, 1 << 20);
        p.join(u, json);
        p.join(u, pb.with_codec(SocketCodec::Protobuf));
        p.join(u, pb2.with_codec(SocketCodec::Protobuf));
        let n = Notification::new("hello", 1, &serde_json::json!({"x": 1}));
        assert_eq!(p.notify(u, n.clone()), 3);
        assert!(matches!(rj.try_recv().unwrap(), Outbound::Text(t) if t.contains(&n.id)));
        let expected = SocketCodec::Protobuf.encode(
            None,
            &ServerMessage::Notifications(NotificationList {
                notifications: std::slice::from_ref(&n),
            }),
        );
        for rx in [&mut rp, &mut rp2] {
            match rx.try_recv().unwrap() {
                Outbound::Binary(b) => assert_eq!(Frame::Binary(b), expected),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn notify_users_reaches_each_listed_users_sockets_once() {
        let p = Presence::new();
        let (a, b, absent) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (oa, mut ra) = Outbox::new(8, 1 << 20);
        let (ob, mut rb) = Outbox::new(8, 1 << 20);
        let (ob2, mut rb2) = Outbox::new(8, 1 << 20);
        let (other, mut ro) = Outbox::new(8, 1 << 20);
        p.join(a, oa);
        p.join(b, ob);
        p.join(b, ob2.with_codec(SocketCodec::Protobuf));
        p.join(Uuid::new_v4(), other);
        let n = Notification::new("world_event", 0, &serde_json::json!({"hp": 3}));
        assert_eq!(p.notify_users(&[a, b, absent], &n), 3);
        assert!(matches!(ra.try_recv(), Some(Outbound::Text(t)) if t.contains(&n.id)));
        assert!(matches!(rb.try_recv(), Some(Outbound::Text(t)) if t.contains(&n.id)));
        assert!(matches!(rb2.try_recv(), Some(Outbound::Binary(_))));
        assert!(ro.try_recv().is_none(), "a user not listed gets nothing");
    }

    #[test]
    fn a_full_queue_kills_the_socket() {
        let (o, _rx) = Outbox::new(2, 1 << 20);
        assert!(o.push_frame(Frame::Text("a".into())).is_ok());
        assert!(o.push_frame(Frame::Text("b".into())).is_ok());
        assert_eq!(
            o.push_frame(Frame::Text("c".into())),
            Err(PushError::Overflow)
        );
        assert!(o.kill_token().is_cancelled());
        assert_eq!(
            o.push_frame(Frame::Text("d".into())),
            Err(PushError::Closed)
        );

        let (o, _rx) = Outbox::new(100, 10);
        assert!(o.push_frame(Frame::Text("12345".into())).is_ok());
        assert_eq!(
            o.push_frame(Frame::Text("123456".into())),
            Err(PushError::Overflow)
        );

        // Binary frames count against the same byte bound.
        let (o, _rx) = Outbox::new(100, 10);
        assert!(o
            .push_frame(Frame::Binary(Bytes::from_static(b"12345")))
            .is_ok());
        let six = Frame::Binary(Bytes::from_static(b"123456"));
        assert_eq!(o.push_frame(six), Err(PushError::Overflow));

        // Taking an item makes room for one more.
        let (o, mut rx) = Outbox::new(1, 1 << 20);
        assert!(o.push_control(Outbound::Ping).is_ok());
        assert!(matches!(rx.try_recv(), Some(Outbound::Ping)));
        assert!(o.push_control(Outbound::Ping).is_ok());
        drop(o);
        assert!(matches!(rx.try_recv(), Some(Outbound::Ping)));
        assert!(rx.try_recv().is_none());
    }
}
