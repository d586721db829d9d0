//! The peer link over real TCP on 127.0.0.1: handshake, refusals, bounded decoding,
//! multiplexing, timeouts, reconnects and forwarding of opaque bodies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serai::metrics::Metrics;
use serai::protocol::peer::{
    self, Forward, Frame, FrameBody, MIN_PROTOCOL_VERSION, NONCE_LEN, PROTOCOL_VERSION,
};
use serai::request::Failure;
use serai::routing::peer::{
    client_handshake, handler, PeerError, PeerHandler, PeerRequest, PeerResponse, PeerServer,
    PeerSettings, Peers, RemoteError,
};
use serai::shutdown::Shutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn settings(node: &str) -> PeerSettings {
    PeerSettings::for_test().with_node_id(node)
}

fn ping(from: &str) -> PeerRequest {
    PeerRequest::Ping {
        from: from.to_string(),
        incarnation: 7,
        view_version: 3,
    }
}

fn forward(message: &str, body: Vec<u8>) -> PeerRequest {
    PeerRequest::Forward(Forward {
        kind: "character".into(),
        message: message.into(),
        key: b"key".to_vec(),
        hop: 1,
        deadline_ms: u64::MAX,
        body,
    })
}

/// Answers pings with its node id; echoes forwards (after `delay` ms given in a "sleep:N"
/// message); counts requests.
fn test_handler(node: &'static str, seen: Arc<AtomicUsize>) -> PeerHandler {
    handler(move |peer, req| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            match req {
                PeerRequest::Ping {
                    incarnation,
                    view_version,
                    from,
                } => {
                    assert_eq!(from, peer, "the handshake's id is the caller's id");
                    PeerResponse::Pong {
                        node_id: node.to_string(),
                        incarnation,
                        view_version,
                    }
                }
                // Traced forwards answer with their request id.
                PeerRequest::Traced { request_id, .. } => {
                    PeerResponse::Forwarded(Ok(request_id.into_bytes()))
                }
                PeerRequest::Forward(Forward { message, body, .. }) => {
                    if let Some(ms) = message.strip_prefix("sleep:") {
                        let ms: u64 = ms.parse().unwrap();
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    match message.as_str() {
                        "not-owner" => {
                            PeerResponse::Forwarded(Err(RemoteError::NotOwner { view_version: 9 }))
                        }
                        "error" => PeerResponse::Error(RemoteError::not_run(message)),
                        "big" => PeerResponse::Forwarded(Ok(vec![7; 5000])),
                        "panic" => panic!("a bug in a handler"),
                        _ => PeerResponse::Forwarded(Ok(body)),
                    }
                }
                PeerRequest::Push { .. } => PeerResponse::Pushed { delivered: 1 },
                PeerRequest::Channel { body, .. } => PeerResponse::Channel(Ok(body)),
            }
        }
    })
}

async fn start(node: &'static str, settings: PeerSettings) -> (PeerServer, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let server = PeerServer::bind(
        "127.0.0.1:0",
        settings.with_node_id(node),
        test_handler(node, seen.clone()),
        Shutdown::new(),
    )
    .await
    .unwrap();
    (server, seen)
}

/// Reads frames until the server closes: the Close reason it gave, if any.
async fn close_reason(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server did not close the link");
    // A reset (unread bytes at close) loses what the server wrote; that still is a closed link.
    let mut reason = None;
    let mut at = 0;
    while buf.len() >= at + 4 {
        let len = u32::from_be_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        if buf.len() < at + 4 + len {
            break;
        }
        if let Ok(Frame {
            body: FrameBody::Close { reason: r },
            ..
        }) = peer::decode(&buf[at + 4..at + 4 + len])
        {
            reason = Some(r);
        }
        at += 4 + len;
    }
    reason
}

async fn assert_serves(server: &PeerServer, node: &str) {
    let client = Peers::new(settings("checker"));
    let addr = server.local_addr().to_string();
    let answer = client.request(node, &addr, ping("checker")).await;
    assert!(
        matches!(answer, Ok(PeerResponse::Pong { ref node_id, .. }) if node_id == node),
        "{answer:?}"
    );
}

#[tokio::test]
async fn handshake_and_ping_pong() {
    let (server, seen) = start("b", settings("b")).await;
    let peers = Peers::new(settings("a"));
    let addr = server.local_addr().to_string();
    let answer = peers.request("b", &addr, ping("a")).await.unwrap();
    assert_eq!(
        answer,
        PeerResponse::Pong {
            node_id: "b".into(),
            incarnation: 7,
            view_version: 3
        }
    );
    let pushed = peers
        .request(
            "b",
            &addr,
            PeerRequest::Push {
                user_id: uuid::Uuid::new_v4(),
                payload: "{}".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(pushed, PeerResponse::Pushed { delivered: 1 });
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    assert_eq!(peers.connected(), vec!["b".to_string()]);
    assert_eq!(server.peers(), vec!["a".to_string()]);
    assert_eq!(server.link_count(), 1, "both requests used one connection");
}

#[tokio::test]
async fn wrong_secret_is_refused_both_ways() {
    let (server, seen) = start("b", settings("b")).await;
    let addr = server.local_addr().to_string();

    // A client with another secret: it finds the server's MAC wrong and refuses it.
    let mut bad = settings("intruder");
    bad.secret = "not-the-cluster-secret".into();
    let bad = Peers::new(bad);
    let err = bad.request("b", &addr, ping("intruder")).await.unwrap_err();
    assert!(
        matches!(&err, PeerError::Handshake(r) if r.contains("authentication failed")),
        "{err:?}"
    );
    // It backs off rather than hammering the server.
    let again = bad.request("b", &addr, ping("intruder")).await.unwrap_err();
    assert!(matches!(again, PeerError::Backoff { .. }), "{again:?}");

    // A forged proof (the client skips checking the server and guesses a MAC): the server
    // verifies it, says why it refuses, and drops the connection.
    let mut raw = TcpStream::connect(&addr).await.unwrap();
    let hello = Frame::new(FrameBody::Hello {
        version: PROTOCOL_VERSION,
        node_id: "forger".into(),
        client_nonce: [1; NONCE_LEN],
    });
    raw.write_all(&peer::encode(&hello, peer::MAX_FRAME).unwrap())
        .await
        .unwrap();
    let mut prefix = [0u8; 4];
    raw.read_exact(&mut prefix).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    raw.read_exact(&mut body).await.unwrap();
    assert!(matches!(
        peer::decode(&body).unwrap().body,
        FrameBody::Challenge { ref node_id, .. } if node_id == "b"
    ));
    let proof = Frame::new(FrameBody::Proof {
        client_mac: vec![0; 32],
    });
    raw.write_all(&peer::encode(&proof, peer::MAX_FRAME).unwrap())
        .await
        .unwrap();
    let reason = close_reason(&mut raw).await;
    assert_eq!(reason.as_deref(), Some("authentication failed"));

    // Neither reached the handler, and the server goes on serving good peers.
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    assert_serves(&server, "b").await;
}

#[tokio::test]
async fn client_refuses_server_with_wrong_secret() {
    let mut other = settings("b");
    other.secret = "another-clusters-secret".into();
    let (server, seen) = start("b", other).await;
    let peers = Peers::new(settings("a"));
    let err = peers
        .request("b", &server.local_addr().to_string(), ping("a"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PeerError::Handshake(r) if r.contains("authentication failed")),
        "{err:?}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn nodes_of_neighbouring_versions_agree_and_others_are_refused_with_reason() {
    let (server, _) = start("b", settings("b")).await;
    let addr = server.local_addr().to_string();
    // A node one version newer (still speaking this one) talks to this one in this one.
    let mut newer = settings("a");
    newer.protocol_version = PROTOCOL_VERSION + 1;
    let answer = Peers::new(newer).request("b", &addr, ping("a")).await;
    assert!(
        matches!(answer, Ok(PeerResponse::Pong { .. })),
        "{answer:?}"
    );

    // A node that no longer speaks this version refuses it, and says why.
    let mut future = settings("c");
    future.protocol_version = PROTOCOL_VERSION + 1;
    future.min_protocol_version = PROTOCOL_VERSION + 1;
    let (future_server, _) = start("c", future).await;
    let err = Peers::new(settings("a"))
        .request("c", &future_server.local_addr().to_string(), ping("a"))
        .await
        .unwrap_err();
    let PeerError::Handshake(reason) = err else {
        panic!("{err:?}")
    };
    assert!(reason.contains("refused by peer"), "{reason}");
    assert!(
        reason.contains(&format!(
            "protocol version mismatch: peer speaks {}, this node speaks {}",
            PROTOCOL_VERSION,
            PROTOCOL_VERSION + 1
        )),
        "{reason}"
    );
    assert_serves(&server, "b").await;
}

#[tokio::test]
async fn a_traced_forward_keeps_its_id_and_loses_it_on_an_older_link() {
    let traced = PeerRequest::Traced {
        request_id: "req-42".into(),
        forward: Forward {
            kind: "character".into(),
            message: "echo".into(),
            key: b"key".to_vec(),
            hop: 1,
            deadline_ms: u64::MAX,
            body: b"body".to_vec(),
        },
    };
    let (current, _) = start("b", settings("b")).await;
    let answer = Peers::new(settings("a"))
        .request("b", &current.local_addr().to_string(), traced.clone())
        .await;
    assert_eq!(answer, Ok(PeerResponse::Forwarded(Ok(b"req-42".to_vec()))));

    // A node of the oldest version still spoken gets the plain forward.
    let mut oldest = settings("c");
    oldest.protocol_version = MIN_PROTOCOL_VERSION;
    let (old, _) = start("c", oldest).await;
    let answer = Peers::new(settings("a"))
        .request("c", &old.local_addr().to_string(), traced)
        .await;
    assert_eq!(answer, Ok(PeerResponse::Forwarded(Ok(b"body".to_vec()))));
}

/// An authenticated raw connection to `server`, for speaking frames by hand.
async fn raw_link(server: &PeerServer, node: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    client_handshake(&mut stream, &settings(node), "b", PROTOCOL_VERSION)
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn oversized_frame_closes_only_that_link() {
    let mut small = settings("b");
    small.max_frame = 4096;
    let (server, seen) = start("b", small).await;
    let addr = server.local_addr().to_string();
    let good = Peers::new(settings("good"));
    good.request("b", &addr, ping("good")).await.unwrap();

    let mut raw = raw_link(&server, "bad").await;
    raw.write_all(&(4097u32).to_be_bytes()).await.unwrap();
    raw.write_all(&[0u8; 64]).await.unwrap();
    let reason = close_reason(&mut raw).await;
    if let Some(reason) = reason {
        assert!(reason.contains("exceeds the 4096 byte cap"), "{reason}");
    }
    // A huge length prefix is refused before anything is allocated.
    let mut raw = raw_link(&server, "bad").await;
    raw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    close_reason(&mut raw).await;

    // The good peer's link was not touched; the server still accepts new ones.
    good.request("b", &addr, ping("good")).await.unwrap();
    assert_eq!(server.peers(), vec!["good".to_string()]);
    assert_serves(&server, "b").await;
    assert_eq!(seen.load(Ordering::SeqCst), 3);

    // A request over the client's own cap is refused before it is sent; the link stays.
    let (wide, _) = start("b", settings("b")).await;
    let wide_addr = wide.local_addr().to_string();
    let mut small_client = settings("small");
    small_client.max_frame = 1000;
    let small_client = Peers::new(small_client);
    let err = small_client
        .request("b", &wide_addr, forward("echo", vec![1; 2000]))
        .await
        .unwrap_err();
    assert_eq!(err, PeerError::FrameTooLarge);
    // An answer over the client's cap closes that link only; the next request redials.
    small_client
        .request("b", &wide_addr, ping("small"))
        .await
        .unwrap();
    let err = small_client
        .request("b", &wide_addr, forward("big", vec![]))
        .await
        .unwrap_err();
    assert_eq!(err, PeerError::Closed);
    small_client
        .request("b", &wide_addr, ping("small"))
        .await
        .unwrap();
    good.request("b", &addr, ping("good")).await.unwrap();

    // An answer over the server's cap becomes an error answer instead of a broken link.
    let err = good
        .request("b", &addr, forward("big", vec![]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PeerError::Remote(RemoteError::Failed(Failure::MayHaveRun(ref r))) if r.contains("cap")),
        "{err:?}"
    );
    good.request("b", &addr, ping("good")).await.unwrap();
}

/// The value of counter `name` with `label` in a Prometheus rendering (0 when absent).
fn counter(metrics: &Metrics, name: &str, label: &str) -> u64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn garbage_closes_only_that_link() {
    let server_metrics = Metrics::new("b");
    let client_metrics = Metrics::new("good");
    let (server, _) = start("b", settings("b").with_metrics(server_metrics.clone())).await;
    let addr = server.local_addr().to_string();
    let good = Peers::new(settings("good").with_metrics(client_metrics.clone()));
    good.request("b", &addr, ping("good")).await.unwrap();

    // Garbage after the handshake: a well-sized frame that is not postcard.
    let mut raw = raw_link(&server, "bad").await;
    let junk: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8 | 0x80).collect();
    raw.write_all(&(junk.len() as u32).to_be_bytes())
        .await
        .unwrap();
    raw.write_all(&junk).await.unwrap();
    let reason = close_reason(&mut raw).await;
    if let Some(reason) = reason {
        assert!(reason.starts_with("malformed frame"), "{reason}");
    }

    // Garbage instead of a handshake, and an unexpected frame after it.
    let mut raw = TcpStream::connect(&addr).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    close_reason(&mut raw).await;
    let mut raw = raw_link(&server, "bad").await;
    let ready = peer::encode(&Frame::new(FrameBody::Ready), peer::MAX_FRAME).unwrap();
    raw.write_all(&ready).await.unwrap();
    assert_eq!(
        close_reason(&mut raw).await.as_deref(),
        Some("unexpected frame after handshake")
    );

    // A peer that connects and says nothing is dropped after the handshake timeout.
    let mut quiet = settings("b");
    quiet.handshake_timeout = Duration::from_millis(200);
    let (quiet_server, _) = start("b", quiet).await;
    let mut raw = TcpStream::connect(quiet_server.local_addr()).await.unwrap();
    let started = Instant::now();
    assert_eq!(
        close_reason(&mut raw).await.as_deref(),
        Some("handshake timed out")
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    good.request("b", &addr, ping("good")).await.unwrap();
    assert_eq!(server.link_count(), 1);
    assert_serves(&server, "b").await;

    // What happened is counted.
    const DROPPED: &str = "serai_peer_links_dropped_total";
    const INBOUND: &str = "serai_peer_inbound_links_total";
    assert_eq!(counter(&server_metrics, DROPPED, "reason=\"malformed\""), 1);
    assert_eq!(counter(&server_metrics, DROPPED, "reason=\"protocol\""), 1);
    assert_eq!(counter(&server_metrics, INBOUND, "outcome=\"accepted\""), 4);
    assert_eq!(counter(&server_metrics, INBOUND, "outcome=\"refused\""), 1);
    let requests = "serai_peer_requests_total";
    assert_eq!(counter(&client_metrics, requests, "outcome=\"ok\""), 2);
    assert_eq!(
        counter(&client_metrics, "serai_peer_dials_total", "outcome=\"ok\""),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_requests_on_one_link() {
    let (server, seen) = start("b", settings("b")).await;
    let addr = server.local_addr().to_string();
    let peers = Peers::new(settings("a"));
    let started = Instant::now();
    let calls = (0..1000u32).map(|i| {
        let peers = peers.clone();
        let addr = addr.clone();
        async move {
            // Answers come back out of order: later requests sleep less.
            let message = format!("sleep:{}", 50 - (i % 50));
            let body = i.to_be_bytes().to_vec();
            let answer = peers.request("b", &addr, forward(&message, body)).await;
            (i, answer)
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    for (i, answer) in answers {
        assert_eq!(
            answer,
            Ok(PeerResponse::Forwarded(Ok(i.to_be_bytes().to_vec()))),
            "request {i}"
        );
    }
    // Handlers ran concurrently (one after another they would take 25 s), on one connection.
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(seen.load(Ordering::SeqCst), 1000);
    assert_eq!(server.link_count(), 1);
    assert_eq!(peers.pending("b"), 0);
}

#[tokio::test]
async fn request_timeout_removes_pending_entry() {
    let (server, _) = start("b", settings("b")).await;
    let addr = server.local_addr().to_string();
    let mut quick = settings("a");
    quick.request_timeout = Duration::from_millis(200);
    let peers = Peers::new(quick);
    peers.request("b", &addr, ping("a")).await.unwrap();

    let started = Instant::now();
    let err = peers
        .request("b", &addr, forward("sleep:2000", vec![]))
        .await
        .unwrap_err();
    assert_eq!(err, PeerError::Timeout);
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(peers.pending("b"), 0);
    // The link is still good, and the late answer does not confuse the next request.
    let answer = peers
        .request("b", &addr, forward("echo", vec![1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(answer, PeerResponse::Forwarded(Ok(vec![1, 2, 3])));

    // A caller that gives up (its future dropped) leaves nothing behind either.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(50),
        peers.request("b", &addr, forward("sleep:1000", vec![])),
    )
    .await;
    assert!(abandoned.is_err());
    assert_eq!(peers.pending("b"), 0);
    assert_eq!(server.link_count(), 1);
}

#[tokio::test]
async fn handler_panic_answers_an_error() {
    let (server, _) = start("b", settings("b")).await;
    let addr = server.local_addr().to_string();
    // Printing the panic (with a backtrace) can take seconds on a loaded machine.
    let mut patient = settings("a");
    patient.request_timeout = Duration::from_secs(60);
    let peers = Peers::new(patient);
    // The link and the node carry on.
    let err = peers
        .request("b", &addr, forward("panic", vec![]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PeerError::Remote(RemoteError::may_have_run("request handler failed"))
    );
    peers.request("b", &addr, ping("a")).await.unwrap();
    assert_eq!(server.link_count(), 1);
}

#[tokio::test]
async fn server_restart_reconnects_after_backoff() {
    let (first, _) = start("b", settings("b")).await;
    let addr = first.local_addr();
    let mut s = settings("a");
    s.reconnect_min = Duration::from_millis(300);
    s.reconnect_max = Duration::from_millis(300);
    let peers = Peers::new(s);
    peers
        .request("b", &addr.to_string(), ping("a"))
        .await
        .unwrap();

    first.stop();
    first.stopped().await;
    drop(first);
    // The old link is gone (the server said so or the socket closed): this request redials,
    // finds nobody listening, and starts the backoff.
    let err = loop {
        match peers.request("b", &addr.to_string(), ping("a")).await {
            Err(PeerError::Closed) => continue,
            Err(e) => break e,
            Ok(answer) => panic!("answered after stop: {answer:?}"),
        }
    };
    assert!(matches!(err, PeerError::Connect(_)), "{err:?}");
    // While backing off it fails at once, without touching the network.
    let started = Instant::now();
    let err = peers
        .request("b", &addr.to_string(), ping("a"))
        .await
        .unwrap_err();
    let PeerError::Backoff { retry_in } = err else {
        panic!("{err:?}")
    };
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(retry_in <= Duration::from_millis(300));

    // The node comes back on the same address; after the backoff the client reconnects.
    let (second, _) = {
        let seen = Arc::new(AtomicUsize::new(0));
        let server = PeerServer::bind(
            addr,
            settings("b"),
            test_handler("b", seen.clone()),
            Shutdown::new(),
        )
        .await
        .unwrap();
        (server, seen)
    };
    tokio::time::sleep(retry_in + Duration::from_millis(20)).await;
    let answer = peers.request("b", &addr.to_string(), ping("a")).await;
    assert!(
        matches!(answer, Ok(PeerResponse::Pong { .. })),
        "{answer:?}"
    );
    assert_eq!(second.peers(), vec!["a".to_string()]);

    // Once more, but membership sees the node back and resets the backoff: no wait at all.
    second.stop();
    second.stopped().await;
    drop(second);
    let err = loop {
        match peers.request("b", &addr.to_string(), ping("a")).await {
            Err(PeerError::Closed) => continue,
            Err(e) => break e,
            Ok(answer) => panic!("answered after stop: {answer:?}"),
        }
    };
    assert!(matches!(err, PeerError::Connect(_)), "{err:?}");
    let third = PeerServer::bind(
        addr,
        settings("b"),
        test_handler("b", Arc::new(AtomicUsize::new(0))),
        Shutdown::new(),
    )
    .await
    .unwrap();
    assert!(matches!(
        peers.request("b", &addr.to_string(), ping("a")).await,
        Err(PeerError::Backoff { .. })
    ));
    peers.reset_backoff("b");
    let answer = peers.request("b", &addr.to_string(), ping("a")).await;
    assert!(
        matches!(answer, Ok(PeerResponse::Pong { .. })),
        "{answer:?}"
    );
    assert_eq!(third.link_count(), 1);
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Trade {
    character: uuid::Uuid,
    good: String,
    quantity: i64,
}

#[tokio::test]
async fn forward_round_trip_with_opaque_body() {
    // The handler decodes the body as the actor message, answers with another message.
    let server = PeerServer::bind(
        "127.0.0.1:0",
        settings("owner"),
        handler(|_peer, req| async move {
            match req {
                PeerRequest::Forward(Forward {
                    kind,
                    message,
                    key,
                    hop,
                    body,
                    ..
                }) => {
                    if hop > 3 {
                        return PeerResponse::Forwarded(Err(RemoteError::not_run("hop limit")));
                    }
                    if message != "Trade" {
                        return PeerResponse::Forwarded(Err(RemoteError::not_run(message)));
                    }
                    let trade: Trade = match postcard::from_bytes(&body) {
                        Ok(t) => t,
                        Err(e) => {
                            return PeerResponse::Forwarded(Err(RemoteError::not_run(
                                e.to_string(),
                            )))
                        }
                    };
                    assert_eq!(kind, "character");
                    assert_eq!(key, trade.character.as_bytes().to_vec());
                    let reply: Result<i64, String> = Ok(trade.quantity * 10);
                    PeerResponse::Forwarded(Ok(postcard::to_allocvec(&reply).unwrap()))
                }
                _ => PeerResponse::Error(RemoteError::not_run("not a forward")),
            }
        }),
        Shutdown::new(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().to_string();
    let peers = Peers::new(settings("gateway"));
    let trade = Trade {
        character: uuid::Uuid::new_v4(),
        good: "salt".into(),
        quantity: 4,
    };
    let request = |message: &str, hop: u8, body: Vec<u8>| {
        PeerRequest::Forward(Forward {
            kind: "character".into(),
            message: message.into(),
            key: trade.character.as_bytes().to_vec(),
            hop,
            deadline_ms: u64::MAX,
            body,
        })
    };
    let answer = peers
        .request(
            "owner",
            &addr,
            request("Trade", 1, postcard::to_allocvec(&trade).unwrap()),
        )
        .await
        .unwrap();
    let PeerResponse::Forwarded(Ok(bytes)) = answer else {
        panic!("{answer:?}")
    };
    let reply: Result<i64, String> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(reply, Ok(40));

    let answer = peers
        .request("owner", &addr, request("Trade", 4, vec![]))
        .await;
    assert_eq!(
        answer,
        Ok(PeerResponse::Forwarded(Err(RemoteError::not_run(
            "hop limit"
        ))))
    );
    let answer = peers
        .request("owner", &addr, request("Trade", 1, vec![0xff]))
        .await;
    assert!(matches!(
        answer,
        Ok(PeerResponse::Forwarded(Err(RemoteError::Failed(
            Failure::NotRun(_)
        ))))
    ));
    let answer = peers.request("owner", &addr, ping("gateway")).await;
    assert_eq!(
        answer,
        Err(PeerError::Remote(RemoteError::not_run("not a forward")))
    );
}

#[tokio::test]
async fn remote_errors_and_wrong_node_at_address() {
    let (server, _) = start("b", settings("b")).await;
    let addr = server.local_addr().to_string();
    let peers = Peers::new(settings("a"));
    assert_eq!(
        peers
            .request("b", &addr, forward("not-owner", vec![]))
            .await,
        Ok(PeerResponse::Forwarded(Err(RemoteError::NotOwner {
            view_version: 9
        })))
    );
    assert_eq!(
        peers.request("b", &addr, forward("error", vec![])).await,
        Err(PeerError::Remote(RemoteError::not_run("error")))
    );
    // The address now belongs to another node: refused, not silently served by the wrong one.
    let err = peers.request("c", &addr, ping("a")).await.unwrap_err();
    assert!(
        matches!(&err, PeerError::Handshake(r) if r.contains("expected node \"c\"")),
        "{err:?}"
    );
    // Nothing listening at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let err = peers.request("d", &dead, ping("a")).await.unwrap_err();
    assert!(matches!(err, PeerError::Connect(_)), "{err:?}");
    assert!(err.not_delivered());
}

#[tokio::test]
async fn shutdown_stops_server_and_closes_links() {
    let seen = Arc::new(AtomicUsize::new(0));
    let shutdown = Shutdown::new();
    let server = PeerServer::bind(
        "127.0.0.1:0",
        settings("b"),
        test_handler("b", seen),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().to_string();
    let peers = Peers::new(settings("a"));
    peers.request("b", &addr, ping("a")).await.unwrap();

    let slow = {
        let peers = peers.clone();
        let addr = addr.clone();
        tokio::spawn(async move {
            peers
                .request("b", &addr, forward("sleep:3000", vec![]))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(2), server.stopped())
        .await
        .expect("server stops on shutdown");
    let started = Instant::now();
    assert_eq!(slow.await.unwrap(), Err(PeerError::Closed));
    assert!(started.elapsed() < Duration::from_secs(1));
    let err = peers.request("b", &addr, ping("a")).await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
}

#[tokio::test]
async fn cut_and_heal() {
    let (server, _) = start("b", settings("b")).await;
    let addr = server.local_addr().to_string();
    let peers = Peers::new(settings("a"));
    peers.request("b", &addr, ping("a")).await.unwrap();

    peers.cut("b");
    assert!(matches!(
        peers.request("b", &addr, ping("a")).await,
        Err(PeerError::Connect(_))
    ));
    peers.heal("b");
    peers.request("b", &addr, ping("a")).await.unwrap();

    // The server side cuts the peer: its link drops and new handshakes are refused.
    server.cut("a");
    let err = loop {
        match peers.request("b", &addr, ping("a")).await {
            Err(PeerError::Closed) => continue,
            other => break other.unwrap_err(),
        }
    };
    assert!(
        matches!(&err, PeerError::Handshake(r) if r.contains("link cut")),
        "{err:?}"
    );
    server.heal("a");
    peers.disconnect("b"); // forget the backoff
    peers.request("b", &addr, ping("a")).await.unwrap();

    server.isolate(true);
    peers.disconnect("b");
    assert!(peers.request("b", &addr, ping("a")).await.is_err());
    server.isolate(false);
    peers.disconnect("b");
    peers.request("b", &addr, ping("a")).await.unwrap();
}

#[actix_rt::test]
async fn works_inside_actix_system() {
    let (server, _) = start("b", settings("b")).await;
    let addr = server.local_addr().to_string();
    let peers = Peers::new(settings("a"));
    let calls = (0..50u8).map(|i| {
        let peers = peers.clone();
        let addr = addr.clone();
        async move { peers.request("b", &addr, forward("echo", vec![i])).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer, Ok(PeerResponse::Forwarded(Ok(vec![i as u8]))));
    }
    server.stop();
    server.stopped().await;
}
