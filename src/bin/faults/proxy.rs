//! TCP proxies the harness controls, so faults can be injected without touching the server:
//!
//! - [`DbProxy`] sits between every node and PostgreSQL. "Database down" closes its listener and
//!   every open connection, so nodes see exactly what a stopped server gives them (sessions
//!   terminated, new connections refused); the harness and the checker talk to the database
//!   directly and are not affected.
//! - [`PeerProxies`]: one listener per node, advertised to the others as that node's peer
//!   address (`SERAI_ADVERTISE_PEER_ADDR`). The dialer's node id is read from its handshake
//!   `Hello` (the first frame the dialer sends, before the server says anything), so the proxy
//!   knows both ends of every link and can cut exactly one node's links, in both directions,
//!   while that node's database stays reachable. A cut link is blackholed (bytes stop flowing,
//!   sockets stay open, as in a real partition) and reset when the partition heals.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Binds `addr` with SO_REUSEADDR so a listener closed for an outage can be reopened on the same
/// port at once.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A forwarder in front of the database that can be taken down and brought back.
pub struct DbProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    state: Arc<Mutex<DbProxyState>>,
}

#[derive(Default)]
struct DbProxyState {
    accept: Option<JoinHandle<()>>,
    conns: Vec<JoinHandle<()>>,
}

impl DbProxy {
    pub async fn start(target: SocketAddr) -> std::io::Result<DbProxy> {
        let listener = listen("127.0.0.1:0".parse().expect("an address"))?;
        let proxy = DbProxy {
            addr: listener.local_addr()?,
            target,
            state: Arc::default(),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    fn serve(&self, listener: TcpListener) {
        let (target, state) = (self.target, self.state.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let _ = inbound.set_nodelay(true);
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = outbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut s = state.lock().unwrap();
                s.conns.retain(|t| !t.is_finished());
                s.conns.push(task);
            }
        });
        self.state.lock().unwrap().accept = Some(accept);
    }

    /// The database "stops": open sessions are dropped and new connections refused.
    pub fn down(&self) {
        let mut s = self.state.lock().unwrap();
        if let Some(accept) = s.accept.take() {
            accept.abort(); // drops the listener: connections are refused
        }
        for task in s.conns.drain(..) {
            task.abort();
        }
    }

    /// The database is back on the same address.
    pub async fn up(&self) -> std::io::Result<()> {
        // The aborted accept task may need a moment to release the port.
        let mut tries = 0;
        let listener = loop {
            match listen(self.addr) {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.serve(listener);
        Ok(())
    }
}

/// Peer-link proxies for every node, and which node (if any) is cut off.
pub struct PeerProxies {
    /// Listening address of node `i`'s proxy: what node `i` advertises.
    pub addrs: Vec<SocketAddr>,
    cut: watch::Sender<Option<usize>>,
    tasks: Vec<JoinHandle<()>>,
}

impl PeerProxies {
    /// `ids[i]` is node `i`'s id, `targets[i]` its real peer listener.
    pub async fn start(ids: &[String], targets: &[SocketAddr]) -> std::io::Result<PeerProxies> {
        let (cut, _) = watch::channel(None);
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for (i, target) in targets.iter().copied().enumerate() {
            let listener = listen("127.0.0.1:0".parse().expect("an address"))?;
            addrs.push(listener.local_addr()?);
            let (ids, cut) = (ids.to_vec(), cut.clone());
            tasks.push(tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let (ids, rx) = (ids.clone(), cut.subscribe());
                    tokio::spawn(link(inbound, target, i, ids, rx));
                }
            }));
        }
        Ok(PeerProxies { addrs, cut, tasks })
    }

    /// Cuts every link to and from node `victim` (`None`: heal; cut links are reset then).
    pub fn partition(&self, victim: Option<usize>) {
        self.cut.send_replace(victim);
    }
}

impl Drop for PeerProxies {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One proxied peer connection to node `to`. The dialer is identified from its `Hello`.
async fn link(
    mut inbound: TcpStream,
    target: SocketAddr,
    to: usize,
    ids: Vec<String>,
    mut cut: watch::Receiver<Option<usize>>,
) {
    let _ = inbound.set_nodelay(true);
    // Read until a known node id shows up in the first bytes (the Hello frame is tiny).
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let from = loop {
        let read = tokio::time::timeout(Duration::from_secs(2), inbound.read(&mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
        if let Some(i) = ids.iter().position(|id| contains(&head, id.as_bytes())) {
            break Some(i);
        }
        if head.len() > 4096 {
            break None; // not a handshake we understand: pass it through unaffected
        }
    };
    let involved = |victim: Option<usize>| victim.is_some_and(|v| v == to || Some(v) == from);
    if !involved(*cut.borrow_and_update()) {
        let Ok(mut outbound) = TcpStream::connect(target).await else {
            return;
        };
        let _ = outbound.set_nodelay(true);
        if outbound.write_all(&head).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
            _ = cut.wait_for(|v| involved(*v)) => {}
        }
        // Blackholed from here on: `outbound` and `inbound` stay open but nothing is copied.
        let _ = cut.wait_for(|v| !involved(*v)).await;
        return; // healed: both sockets are dropped (reset), the nodes reconnect
    }
    // A new link during the partition: hold it silently until the partition heals.
    let _ = cut.wait_for(|v| !involved(*v)).await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
