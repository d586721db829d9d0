//! The listening side of the peer link.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::frame::{read_frame, send_close, write_loop, ReadError};
use super::{handshake, LinkMetrics, PeerHandler, PeerSettings};
use crate::protocol::peer::{self, Frame, FrameBody, FrameError, PeerResponse, RemoteError};
use crate::shutdown::Shutdown;

/// Connections allowed in the handshake at once; more are dropped on accept.
const MAX_HANDSHAKES: usize = 256;

/// Frames queued for one link's writer.
const WRITE_QUEUE: usize = 256;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Link {
    peer: String,
    token: CancellationToken,
}

struct Shared {
    settings: PeerSettings,
    metrics: LinkMetrics,
    handler: PeerHandler,
    /// Fires when the server stops: ends the accept loop, every link and running handlers.
    stop: CancellationToken,
    links: Mutex<HashMap<u64, Link>>,
    next_link: AtomicU64,
    cut: Mutex<HashSet<String>>,
    isolated: AtomicBool,
    handshakes: Arc<Semaphore>,
}

impl Shared {
    fn refusal(&self, peer: &str) -> Option<String> {
        if self.stop.is_cancelled() {
            return Some("node stopping".into());
        }
        if self.isolated.load(Ordering::SeqCst) || lock(&self.cut).contains(peer) {
            return Some("link cut".into());
        }
        None
    }
}

/// Accepts peer connections and serves their requests with a [`PeerHandler`].
///
/// Stops when the [`Shutdown`] given to [`PeerServer::bind`] fires, on [`PeerServer::stop`],
/// or when dropped; stopping closes every link (each told with a Close frame).
pub struct PeerServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl PeerServer {
    /// Listens on `addr` and serves every authenticated peer's requests with `handler`.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        settings: PeerSettings,
        handler: PeerHandler,
        shutdown: Shutdown,
    ) -> io::Result<PeerServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            metrics: LinkMetrics::new(settings.metrics.as_ref()),
            settings,
            handler,
            stop: stop.clone(),
            links: Mutex::new(HashMap::new()),
            next_link: AtomicU64::new(0),
            cut: Mutex::new(HashSet::new()),
            isolated: AtomicBool::new(false),
            handshakes: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
        });
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.wait() => stop.cancel(),
                    _ = stop.cancelled() => {}
                }
            });
        }
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        tracing::info!(addr = %local_addr, node = %shared.settings.node_id, "peer link listening");
        Ok(PeerServer {
            local_addr,
            shared,
            accept: Mutex::new(Some(accept)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and closes every link; running handlers are cancelled.
    pub fn stop(&self) {
        self.shared.stop.cancel();
    }

    /// Completes once the listener is closed (after [`PeerServer::stop`] or shutdown).
    pub async fn stopped(&self) {
        let handle = lock(&self.accept).take();
        match handle {
            Some(h) => {
                let _ = h.await;
            }
            None => self.shared.stop.cancelled().await,
        }
    }

    /// Node ids of the peers with an authenticated link to this server right now.
    pub fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = lock(&self.shared.links)
            .values()
            .map(|l| l.peer.clone())
            .collect();
        peers.sort();
        peers.dedup();
        peers
    }

    /// Authenticated links open right now (a peer normally holds one).
    pub fn link_count(&self) -> usize {
        lock(&self.shared.links).len()
    }

    /// Test hook / partition: drops every link from `peer` and refuses it until [`Self::heal`].
    pub fn cut(&self, peer: &str) {
        lock(&self.shared.cut).insert(peer.to_string());
        for link in lock(&self.shared.links).values() {
            if link.peer == peer {
                link.token.cancel();
            }
        }
    }

    pub fn heal(&self, peer: &str) {
        lock(&self.shared.cut).remove(peer);
    }

    /// Test hook / partition: with `true`, drops every link and refuses all peers.
    pub fn isolate(&self, isolated: bool) {
        self.shared.isolated.store(isolated, Ordering::SeqCst);
        if isolated {
            for link in lock(&self.shared.links).values() {
                link.token.cancel();
            }
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, remote)) => {
                let Ok(permit) = shared.handshakes.clone().try_acquire_owned() else {
                    if let Some(suppressed) = crate::quiet::allow("handshakes-full") {
                        tracing::warn!(
                            %remote,
                            "too many peer handshakes in progress, dropping{suppressed}"
                        );
                    }
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Some((stream, peer, version)) =
                        authenticate(&shared, stream, remote).await
                    {
                        drop(permit);
                        serve(shared, stream, peer, version).await;
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %e, "peer accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    tracing::info!(node = %shared.settings.node_id, "peer link stopped listening");
}

async fn authenticate(
    shared: &Shared,
    mut stream: TcpStream,
    remote: SocketAddr,
) -> Option<(TcpStream, String, u16)> {
    let _ = stream.set_nodelay(true);
    let settings = &shared.settings;
    let outcome = tokio::select! {
        _ = shared.stop.cancelled() => return None,
        r = tokio::time::timeout(
            settings.handshake_timeout,
            handshake::server(&mut stream, settings, |peer| shared.refusal(peer)),
        ) => r,
    };
    match outcome {
        Ok(Ok((peer, version))) => {
            shared.metrics.inbound_accepted.increment(1);
            tracing::debug!(%remote, %peer, version, "peer link up");
            Some((stream, peer, version))
        }
        Ok(Err(reason)) => {
            shared.metrics.inbound_refused.increment(1);
            if let Some(suppressed) = crate::quiet::allow(&format!("refused:{}", remote.ip())) {
                tracing::warn!(%remote, %reason, "peer refused{suppressed}");
            }
            None
        }
        Err(_) => {
            shared.metrics.inbound_timeout.increment(1);
            send_close(
                &mut stream,
                settings.protocol_version,
                "handshake timed out",
            )
            .await;
            if let Some(suppressed) = crate::quiet::allow(&format!("handshake:{}", remote.ip())) {
                tracing::warn!(%remote, "peer handshake timed out{suppressed}");
            }
            None
        }
    }
}

/// Why the server side ends a link, and whether to tell the peer.
fn reason_for(error: ReadError, metrics: &LinkMetrics) -> Option<String> {
    match error {
        ReadError::Eof => None,
        ReadError::Io(e) => {
            tracing::debug!(error = %e, "peer link read failed");
            None
        }
        ReadError::Frame(FrameError::TooLarge { size, max }) => {
            metrics.dropped_too_large.increment(1);
            Some(format!("frame of {size} bytes exceeds the {max} byte cap"))
        }
        ReadError::Frame(FrameError::Malformed(e)) => {
            metrics.dropped_malformed.increment(1);
            Some(format!("malformed frame: {e}"))
        }
    }
}

/// Serves an authenticated link in the protocol `version` agreed for it.
async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: String, version: u16) {
    let settings = &shared.settings;
    let token = shared.stop.child_token();
    let id = shared.next_link.fetch_add(1, Ordering::Relaxed);
    lock(&shared.links).insert(
        id,
        Link {
            peer: peer.clone(),
            token: token.clone(),
        },
    );
    // A cut or stop that raced the handshake.
    if shared.refusal(&peer).is_some() {
        token.cancel();
    }

    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let writer = tokio::spawn(write_loop(write, rx, token.clone()));
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let in_flight = Arc::new(Semaphore::new(settings.max_in_flight.max(1)));

    let close_reason: Option<String> = loop {
        let permit = tokio::select! {
            _ = token.cancelled() => break stop_reason(&shared, &peer),
            p = in_flight.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break None,
            },
        };
        let frame = tokio::select! {
            _ = token.cancelled() => break stop_reason(&shared, &peer),
            f = read_frame(&mut reader, settings.max_frame) => f,
        };
        match frame {
            Ok(Frame {
                version: v,
                body: FrameBody::Request { id, body },
            }) if v == version => {
                let handler = shared.handler.clone();
                let peer = peer.clone();
                let tx = tx.clone();
                let max = settings.max_frame;
                // A request taken is answered, also when the node stops (a drain waits for
                // its answer below): dropping it would leave its caller unsure.
                tokio::spawn(async move {
                    let _permit = permit;
                    let response = AssertUnwindSafe(async move { handler(peer, body).await })
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            tracing::error!("peer request handler panicked");
                            PeerResponse::Error(RemoteError::may_have_run("request handler failed"))
                        });
                    let bytes = encode_response(id, response, version, max);
                    let _ = tx.send(bytes).await;
                });
            }
            Ok(Frame {
                body: FrameBody::Close { reason },
                ..
            }) => {
                tracing::debug!(%peer, %reason, "peer closed its link");
                break None;
            }
            Ok(Frame { version: v, .. }) if v != version => {
                shared.metrics.dropped_protocol.increment(1);
                break Some(format!("unexpected protocol version {v}"));
            }
            Ok(_) => {
                shared.metrics.dropped_protocol.increment(1);
                break Some("unexpected frame after handshake".into());
            }
            Err(e) => break reason_for(e, &shared.metrics),
        }
    };

    if let Some(reason) = &close_reason {
        if let Some(suppressed) = crate::quiet::allow(&format!("server-close:{peer}")) {
            tracing::warn!(%peer, %reason, "closing peer link{suppressed}");
        }
        let close = Frame {
            version,
            body: FrameBody::Close {
                reason: reason.clone(),
            },
        };
        if let Ok(bytes) = peer::encode(&close, peer::MAX_FRAME) {
            let _ = tx.try_send(bytes);
        }
    }
    lock(&shared.links).remove(&id);
    drop(tx);
    // Requests in flight answer before the writer goes (bounded: a handler has its own
    // deadline; this is for a node that stops, not one whose link broke).
    let all = settings.max_in_flight.max(1) as u32;
    let _ = tokio::time::timeout(IN_FLIGHT_GRACE, in_flight.acquire_many(all)).await;
    token.cancel();
    let _ = writer.await;
    tracing::debug!(%peer, "peer link down");
}

/// How long a closing link waits for the answers of the requests it took.
const IN_FLIGHT_GRACE: std::time::Duration = std::time::Duration::from_secs(6);

fn stop_reason(shared: &Shared, peer: &str) -> Option<String> {
    Some(
        shared
            .refusal(peer)
            .unwrap_or_else(|| "link closed".to_string()),
    )
}

/// The encoded answer to request `id`; an answer over the frame cap becomes an error answer.
fn encode_response(id: u64, response: PeerResponse, version: u16, max: usize) -> Vec<u8> {
    let frame = Frame {
        version,
        body: FrameBody::Response { id, body: response },
    };
    match peer::encode(&frame, max) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "peer response does not fit in a frame");
            let frame = Frame {
                version,
                body: FrameBody::Response {
                    id,
                    // The request ran: its caller must not assume it did not.
                    body: PeerResponse::Error(RemoteError::may_have_run(format!(
                        "response not sent: {e}"
                    ))),
                },
            };
            peer::encode(&frame, usize::MAX).unwrap_or_default()
        }
    }
}
