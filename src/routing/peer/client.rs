//! The calling side of the peer link: one multiplexed connection per peer.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::frame::{read_frame, write_loop, ReadError};
use super::{handshake, LinkMetrics, PeerError, PeerSettings};
use crate::persistence::retry::Backoff;
use crate::protocol::peer::{self, Frame, FrameBody, PeerRequest, PeerResponse};

/// Frames queued for one link's writer; a full queue makes callers wait (within their timeout).
const WRITE_QUEUE: usize = 1024;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Pending = HashMap<u64, oneshot::Sender<PeerResponse>>;

/// One authenticated connection to a peer, shared by every request to it.
struct Link {
    addr: String,
    /// The protocol version agreed in the handshake: every frame carries it.
    version: u16,
    tx: mpsc::Sender<Vec<u8>>,
    /// Requests waiting for their answer; `None` once the link is down.
    pending: Mutex<Option<Pending>>,
    next_id: AtomicU64,
    /// Cancelled when the link is down (either task ended, or closed by hand).
    down: CancellationToken,
}

impl Link {
    fn is_up(&self) -> bool {
        !self.down.is_cancelled()
    }

    /// Closes the link, telling the peer why.
    fn close(&self, reason: &str) {
        let frame = Frame {
            version: self.version,
            body: FrameBody::Close {
                reason: reason.to_string(),
            },
        };
        if let Ok(bytes) = peer::encode(&frame, peer::MAX_FRAME) {
            let _ = self.tx.try_send(bytes);
        }
        self.down.cancel();
    }

    fn fail_pending(&self) {
        // Dropping the senders wakes every waiter with `Closed`.
        lock(&self.pending).take();
    }

    /// Sends `req` and waits for its answer. [`CallError::NotSent`] hands the request back when
    /// the link turned out to be down before the request was queued on it.
    async fn call(
        self: &Arc<Self>,
        req: PeerRequest,
        settings: &PeerSettings,
        deadline: Instant,
    ) -> Result<PeerResponse, CallError> {
        if !self.is_up() {
            return Err(CallError::NotSent(req));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer_tx, answer_rx) = oneshot::channel();
        match lock(&self.pending).as_mut() {
            Some(pending) => pending.insert(id, answer_tx),
            None => return Err(CallError::NotSent(req)),
        };
        // Removes the pending entry however this call ends (answer, timeout, cancellation).
        let _entry = PendingEntry { link: self, id };
        let frame = Frame {
            version: self.version,
            body: FrameBody::Request {
                id,
                body: req.for_version(self.version),
            },
        };
        let bytes = peer::encode(&frame, settings.max_frame).map_err(|e| match e {
            peer::FrameError::TooLarge { .. } => PeerError::FrameTooLarge,
            peer::FrameError::Malformed(_) => PeerError::FrameTooLarge,
        })?;
        match tokio::time::timeout_at(deadline, self.tx.send(bytes)).await {
            Ok(Ok(())) => {}
            // The writer is gone and hands the bytes back: none of them reached the socket.
            Ok(Err(mpsc::error::SendError(bytes))) => {
                return match peer::decode(&bytes[peer::LEN_PREFIX..]) {
                    Ok(Frame {
                        body: FrameBody::Request { body, .. },
                        ..
                    }) => Err(CallError::NotSent(body)),
                    _ => Err(PeerError::Closed.into()),
                };
            }
            Err(_) => return Err(PeerError::Timeout.into()),
        }
        match tokio::time::timeout_at(deadline, answer_rx).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(PeerError::Closed.into()),
            Err(_) => Err(PeerError::Timeout.into()),
        }
    }
}

enum CallError {
    /// The link was found down before the request was queued: safe to send again.
    NotSent(PeerRequest),
    Failed(PeerError),
}

impl From<PeerError> for CallError {
    fn from(e: PeerError) -> Self {
        CallError::Failed(e)
    }
}

struct PendingEntry<'a> {
    link: &'a Link,
    id: u64,
}

impl Drop for PendingEntry<'_> {
    fn drop(&mut self) {
        if let Some(pending) = lock(&self.link.pending).as_mut() {
            pending.remove(&self.id);
        }
    }
}

/// Reconnect state of one peer, held while connecting so concurrent callers share one attempt.
struct Dialer {
    addr: String,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

struct Slot {
    link: Mutex<Option<Arc<Link>>>,
    dialer: tokio::sync::Mutex<Dialer>,
}

impl Slot {
    fn live(&self, addr: &str) -> Option<Arc<Link>> {
        lock(&self.link)
            .as_ref()
            .filter(|l| l.is_up() && l.addr == addr)
            .cloned()
    }
}

struct Shared {
    settings: PeerSettings,
    metrics: LinkMetrics,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    cut: Mutex<HashSet<String>>,
    isolated: AtomicBool,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last `Peers` is gone: nobody can use these links any more.
        let slots = self.slots.get_mut().unwrap_or_else(|e| e.into_inner());
        for slot in slots.values() {
            if let Some(link) = lock(&slot.link).take() {
                link.close("node stopping");
            }
        }
    }
}

/// The client side of the peer link, one per node; cheap to clone.
///
/// [`Peers::request`] connects to a peer on first use, keeps that connection for every later
/// request (many in flight at once, matched by correlation id), and after a failed connect or
/// handshake waits a capped exponential backoff before trying again — requests in the meantime
/// fail at once with [`PeerError::Backoff`]. A link that drops is redialled on the next request.
#[derive(Clone)]
pub struct Peers {
    shared: Arc<Shared>,
}

impl Peers {
    pub fn new(settings: PeerSettings) -> Peers {
        Peers {
            shared: Arc::new(Shared {
                metrics: LinkMetrics::new(settings.metrics.as_ref()),
                settings,
                slots: Mutex::new(HashMap::new()),
                cut: Mutex::new(HashSet::new()),
                isolated: AtomicBool::new(false),
            }),
        }
    }

    pub fn settings(&self) -> &PeerSettings {
        &self.shared.settings
    }

    /// Sends `req` to node `node_id` at `addr` and waits for its answer.
    ///
    /// Connecting (when needed) is bounded by the handshake timeout, the answer by the request
    /// timeout. The server must present `node_id` in the handshake, else the request fails with
    /// [`PeerError::Handshake`]. A [`PeerResponse::Error`] comes back as [`PeerError::Remote`].
    pub async fn request(
        &self,
        node_id: &str,
        addr: &str,
        req: PeerRequest,
    ) -> Result<PeerResponse, PeerError> {
        let deadline = Instant::now() + self.shared.settings.request_timeout;
        self.request_until(node_id, addr, req, deadline).await
    }

    /// Like [`Peers::request`], waiting for the answer until `deadline` (a forwarded
    /// request's own deadline) instead of the request timeout.
    pub async fn request_until(
        &self,
        node_id: &str,
        addr: &str,
        req: PeerRequest,
        deadline: Instant,
    ) -> Result<PeerResponse, PeerError> {
        let result = self.send(node_id, addr, req, deadline).await;
        self.shared.metrics.request(&result);
        result
    }

    async fn send(
        &self,
        node_id: &str,
        addr: &str,
        req: PeerRequest,
        deadline: Instant,
    ) -> Result<PeerResponse, PeerError> {
        // A link that dropped before the request was queued on it is redialled once.
        let mut req = req;
        for _ in 0..2 {
            let link = self.link(node_id, addr).await?;
            match link.call(req, &self.shared.settings, deadline).await {
                Ok(PeerResponse::Error(e)) => return Err(PeerError::Remote(e)),
                Ok(response) => return Ok(response),
                Err(CallError::Failed(e)) => return Err(e),
                Err(CallError::NotSent(back)) => req = back,
            }
        }
        Err(PeerError::Connect(format!(
            "link to {node_id} closed before the request could be sent"
        )))
    }

    /// Forgets the reconnect backoff of `node_id`, so the next request dials at once (e.g. when
    /// membership sees the peer come back with a new incarnation).
    pub fn reset_backoff(&self, node_id: &str) {
        let slot = lock(&self.shared.slots).get(node_id).cloned();
        if let Some(slot) = slot {
            if let Ok(mut dialer) = slot.dialer.try_lock() {
                dialer.backoff.reset();
                dialer.retry_at = None;
            }
        }
    }

    fn is_cut(&self, node_id: &str) -> bool {
        self.shared.isolated.load(Ordering::SeqCst) || lock(&self.shared.cut).contains(node_id)
    }

    fn slot(&self, node_id: &str) -> Arc<Slot> {
        lock(&self.shared.slots)
            .entry(node_id.to_string())
            .or_insert_with(|| {
                let s = &self.shared.settings;
                Arc::new(Slot {
                    link: Mutex::new(None),
                    dialer: tokio::sync::Mutex::new(Dialer {
                        addr: String::new(),
                        backoff: Backoff::new(s.reconnect_min, s.reconnect_max),
                        retry_at: None,
                    }),
                })
            })
            .clone()
    }

    async fn link(&self, node_id: &str, addr: &str) -> Result<Arc<Link>, PeerError> {
        if self.is_cut(node_id) {
            return Err(PeerError::Connect(format!("link to {node_id} is cut")));
        }
        let slot = self.slot(node_id);
        if let Some(link) = slot.live(addr) {
            return Ok(link);
        }
        let mut dialer = slot.dialer.lock().await;
        // Someone else may have connected while this caller waited.
        if let Some(link) = slot.live(addr) {
            return Ok(link);
        }
        if dialer.addr != addr {
            // A new address (the peer moved or restarted elsewhere): no reason to wait.
            dialer.addr = addr.to_string();
            dialer.backoff.reset();
            dialer.retry_at = None;
        }
        let now = Instant::now();
        if let Some(at) = dialer.retry_at {
            if now < at {
                return Err(PeerError::Backoff { retry_in: at - now });
            }
        }
        let settings = &self.shared.settings;
        let attempt = tokio::time::timeout(settings.handshake_timeout, async {
            let mut stream = TcpStream::connect(addr)
                .await
                .map_err(|e| PeerError::Connect(format!("{addr}: {e}")))?;
            let _ = stream.set_nodelay(true);
            let offer = settings.protocol_version;
            match handshake::client(&mut stream, settings, node_id, offer).await {
                Ok(version) => Ok((stream, version)),
                // A node of an older version refused ours and named its own: ask again in it.
                Err(PeerError::Handshake(why)) => {
                    let older = handshake::older_version_in(&why, settings, offer)
                        .ok_or(PeerError::Handshake(why))?;
                    let mut stream = TcpStream::connect(addr)
                        .await
                        .map_err(|e| PeerError::Connect(format!("{addr}: {e}")))?;
                    let _ = stream.set_nodelay(true);
                    let version = handshake::client(&mut stream, settings, node_id, older).await?;
                    Ok((stream, version))
                }
                Err(e) => Err(e),
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(PeerError::Connect(format!(
                "{addr}: no handshake within {:?}",
                settings.handshake_timeout
            )))
        });
        match attempt {
            Ok((stream, version)) => {
                self.shared.metrics.dials_ok.increment(1);
                dialer.backoff.reset();
                dialer.retry_at = None;
                let link = start_link(
                    stream,
                    addr,
                    node_id,
                    version,
                    settings,
                    &self.shared.metrics,
                );
                if let Some(old) = lock(&slot.link).replace(link.clone()) {
                    old.close("replaced");
                }
                // A cut that raced this connect.
                if self.is_cut(node_id) {
                    link.close("link cut");
                    return Err(PeerError::Connect(format!("link to {node_id} is cut")));
                }
                tracing::debug!(peer = %node_id, %addr, "peer link connected");
                Ok(link)
            }
            Err(e) => {
                self.shared.metrics.dials_failed.increment(1);
                let delay = dialer.backoff.next_delay();
                dialer.retry_at = Some(Instant::now() + delay);
                if let Some(suppressed) = crate::quiet::allow(&format!("dial:{node_id}")) {
                    tracing::warn!(
                        peer = %node_id, %addr, error = %e, retry_in = ?delay,
                        "peer link connect failed{suppressed}"
                    );
                }
                Err(e)
            }
        }
    }

    /// Closes the link to `node_id` (telling the peer) and forgets its backoff; the next request
    /// dials again. Requests in flight on it fail with [`PeerError::Closed`].
    pub fn disconnect(&self, node_id: &str) {
        let slot = lock(&self.shared.slots).remove(node_id);
        if let Some(slot) = slot {
            if let Some(link) = lock(&slot.link).take() {
                link.close("disconnect");
            }
        }
    }

    /// Closes every link.
    pub fn disconnect_all(&self) {
        let slots: Vec<String> = lock(&self.shared.slots).keys().cloned().collect();
        for node in slots {
            self.disconnect(&node);
        }
    }

    /// Test hook / partition: drops the link to `node_id` and refuses requests to it (as
    /// [`PeerError::Connect`]) until [`Self::heal`].
    pub fn cut(&self, node_id: &str) {
        lock(&self.shared.cut).insert(node_id.to_string());
        self.disconnect(node_id);
    }

    pub fn heal(&self, node_id: &str) {
        lock(&self.shared.cut).remove(node_id);
    }

    /// Test hook / partition: with `true`, drops every link and refuses every request.
    pub fn isolate(&self, isolated: bool) {
        self.shared.isolated.store(isolated, Ordering::SeqCst);
        if isolated {
            self.disconnect_all();
        }
    }

    /// Node ids with a live link right now.
    pub fn connected(&self) -> Vec<String> {
        let slots = lock(&self.shared.slots);
        let mut up: Vec<String> = slots
            .iter()
            .filter(|(_, s)| lock(&s.link).as_ref().is_some_and(|l| l.is_up()))
            .map(|(id, _)| id.clone())
            .collect();
        up.sort();
        up
    }

    /// Requests to `node_id` waiting for an answer (test hook: timeouts leave none behind).
    pub fn pending(&self, node_id: &str) -> usize {
        let slot = lock(&self.shared.slots).get(node_id).cloned();
        slot.and_then(|s| {
            lock(&s.link)
                .as_ref()
                .map(|l| lock(&l.pending).as_ref().map_or(0, |p| p.len()))
        })
        .unwrap_or(0)
    }
}

/// Starts the reader and writer of a freshly authenticated connection.
fn start_link(
    stream: TcpStream,
    addr: &str,
    node_id: &str,
    version: u16,
    settings: &PeerSettings,
    metrics: &LinkMetrics,
) -> Arc<Link> {
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let down = CancellationToken::new();
    let link = Arc::new(Link {
        addr: addr.to_string(),
        version,
        tx,
        pending: Mutex::new(Some(HashMap::new())),
        next_id: AtomicU64::new(1),
        down: down.clone(),
    });
    tokio::spawn(write_loop(write, rx, down.clone()));
    let reader_link = link.clone();
    let max = settings.max_frame;
    let peer = node_id.to_string();
    let metrics = metrics.clone();
    tokio::spawn(async move {
        let link = reader_link;
        let mut reader = BufReader::with_capacity(64 * 1024, read);
        let reason = loop {
            let frame = tokio::select! {
                _ = link.down.cancelled() => break None,
                f = read_frame(&mut reader, max) => f,
            };
            match frame {
                Ok(Frame {
                    version: v,
                    body: FrameBody::Response { id, body },
                }) if v == version => {
                    let waiter = lock(&link.pending).as_mut().and_then(|p| p.remove(&id));
                    // No waiter: the request timed out; its late answer is dropped.
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(body);
                    }
                }
                Ok(Frame {
                    body: FrameBody::Close { reason },
                    ..
                }) => {
                    tracing::info!(%peer, %reason, "peer closed the link");
                    break None;
                }
                Ok(_) => {
                    metrics.dropped_protocol.increment(1);
                    break Some("unexpected frame".to_string());
                }
                Err(ReadError::Eof) => break None,
                Err(ReadError::Io(e)) => {
                    tracing::debug!(%peer, error = %e, "peer link read failed");
                    break None;
                }
                Err(ReadError::Frame(e)) => {
                    match e {
                        peer::FrameError::TooLarge { .. } => &metrics.dropped_too_large,
                        peer::FrameError::Malformed(_) => &metrics.dropped_malformed,
                    }
                    .increment(1);
                    break Some(e.to_string());
                }
            }
        };
        if let Some(reason) = reason {
            if let Some(suppressed) = crate::quiet::allow(&format!("client-close:{peer}")) {
                tracing::warn!(%peer, %reason, "closing peer link{suppressed}");
            }
            link.close(&reason);
        }
        link.down.cancel();
        link.fail_pending();
    });
    link
}

const _: () = {
    const fn is_shareable<T: Send + Sync + Clone + 'static>() {}
    is_shareable::<Peers>();
};
