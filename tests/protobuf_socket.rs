//! The realtime socket in protobuf (`/ws?format=protobuf`) against a real node on a fresh
//! PostgreSQL database: driven by the official nakama-js client with its protobuf adapter
//! (clients/js/protobuf_socket.mjs), and by raw binary frames for what a client library never
//! sends (garbage, JSON on the protobuf socket, Nakama messages serai does not serve).
//!
//! The nakama-js test needs `node` 18+ and npm on PATH (see tests/common/nodejs.rs).

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use common::client::{request, GameClient, Ws};
use serai::gateway::{Notification, RpcContext};
use serai::protocol::protobuf::messages::{envelope, Envelope, Ping, Rpc};

/// Registers `pb_notify_me`: pushes a notification to its caller (through the node's real
/// notifier) with the call's payload as content, then answers `{}`.
fn register_notify_me(node: &serai::node::RunningNode) {
    let notifier = node.services.notifier.clone();
    node.services
        .rpc
        .register_fn("pb_notify_me", move |ctx: RpcContext, payload| {
            let notifier = notifier.clone();
            async move {
                let content: serde_json::Value =
                    serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null);
                notifier.notify(ctx.user_id, Notification::new("pb_check", 4242, &content));
                Ok("{}".to_string())
            }
        });
}

#[actix_rt::test]
async fn nakama_js_protobuf_adapter() {
    let tools = common::nodejs::require_node();
    common::nodejs::ensure_client_deps();
    let common::node::TestNode { node, config, db } = common::node::start_node().await;
    register_notify_me(&node);

    let run = common::nodejs::run_script(
        "protobuf_socket.mjs",
        &[
            ("SERAI_CLIENT_ADDR", node.client_addr.to_string()),
            ("SERAI_SERVER_KEY", config.server_key.clone()),
        ],
        Duration::from_secs(45),
    )
    .await;
    node.stop().await.expect("node stops");
    drop(db);

    let report = run.report();
    println!("{report}");
    let status = run.status.unwrap_or_else(|| panic!("{report}"));
    assert!(
        status.success(),
        "protobuf_socket.mjs failed ({status}) with {tools}\n{report}"
    );
    for expected in [
        "-- connect with the protobuf adapter",
        "-- rpc: echo and a game RPC",
        "-- a notification pushed by the server",
        "-- ping",
        "-- errors for bad RPCs",
        "-- the socket still answers after the errors",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == expected),
            "missing step {expected:?}\n{report}"
        );
    }
    common::nodejs::assert_checks(&run.stdout, "PROTOBUF_SOCKET", 25, &report);
}

async fn connect_protobuf(client: &GameClient) -> Ws {
    let url = format!(
        "ws://{}/ws?lang=en&status=true&format=protobuf&token={}",
        client.addr, client.token
    );
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the protobuf socket connects");
    ws
}

/// The next binary frame, decoded (pings and pongs skipped; a text frame fails the test).
async fn next_envelope(ws: &mut Ws) -> Envelope {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("no socket error");
        match msg {
            Message::Binary(bytes) => {
                return Envelope::decode(bytes.as_ref()).expect("a protobuf Envelope")
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

async fn send_envelope(ws: &mut Ws, envelope: Envelope) {
    ws.send(Message::binary(envelope.encode_to_vec()))
        .await
        .expect("send a frame");
}

/// The error an envelope carries: (cid, code, message).
fn error_of(envelope: Envelope) -> (String, i32, String) {
    match envelope.message {
        Some(envelope::Message::Error(e)) => (envelope.cid, e.code, e.message),
        other => panic!("expected an error envelope, got {other:?}"),
    }
}

#[actix_rt::test]
async fn protobuf_socket_refuses_bad_frames_and_stays_healthy() {
    let common::node::TestNode { node, db, .. } = common::node::start_node().await;
    let client = GameClient::device(node.client_addr, "pb-raw-device").await;

    // An unknown format is refused before the upgrade.
    let auth = format!("Bearer {}", client.token);
    let r = request(
        node.client_addr,
        "GET",
        "/ws?format=xml",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("format=protobuf"), "{}", r.body);

    let mut ws = connect_protobuf(&client).await;

    // Garbage: an error envelope without a cid (the frame had none to read), not a close.
    ws.send(Message::binary(vec![0xff; 11])).await.unwrap();
    let (cid, code, message) = error_of(next_envelope(&mut ws).await);
    assert_eq!((cid.as_str(), code), ("", 1), "{message}");
    assert!(message.contains("protobuf"), "{message}");

    // JSON in a text frame is not a protobuf envelope either.
    ws.send(Message::text(json!({"cid": "1", "ping": {}}).to_string()))
        .await
        .unwrap();
    let (_, code, message) = error_of(next_envelope(&mut ws).await);
    assert_eq!(code, 1, "{message}");

    // A Nakama message serai does not serve (channel_join = 3) is named, with the cid.
    let mut channel_join = Envelope {
        cid: "c3".into(),
        message: None,
    }
    .encode_to_vec();
    channel_join.extend_from_slice(&[0x1a, 0x03, 0x0a, 0x01, b'x']);
    ws.send(Message::binary(channel_join)).await.unwrap();
    let (cid, code, message) = error_of(next_envelope(&mut ws).await);
    assert_eq!((cid.as_str(), code), ("c3", 1), "{message}");
    assert!(message.contains("channel_join"), "{message}");

    // The socket still works: ping, an RPC, an unknown RPC.
    send_envelope(
        &mut ws,
        Envelope {
            cid: "p".into(),
            message: Some(envelope::Message::Ping(Ping {})),
        },
    )
    .await;
    let pong = next_envelope(&mut ws).await;
    assert_eq!(pong.cid, "p");
    assert!(matches!(pong.message, Some(envelope::Message::Pong(_))));
    let rpc = |cid: &str, id: &str| Envelope {
        cid: cid.into(),
        message: Some(envelope::Message::Rpc(Rpc {
            id: id.into(),
            payload: r#"{"a":1}"#.into(),
            http_key: String::new(),
        })),
    };
    send_envelope(&mut ws, rpc("r1", "echo")).await;
    let reply = next_envelope(&mut ws).await;
    assert_eq!(reply.cid, "r1");
    match reply.message {
        Some(envelope::Message::Rpc(r)) => {
            assert_eq!((r.id.as_str(), r.payload.as_str()), ("echo", r#"{"a":1}"#))
        }
        other => panic!("{other:?}"),
    }
    send_envelope(&mut ws, rpc("r2", "no_such_rpc")).await;
    let (cid, code, _) = error_of(next_envelope(&mut ws).await);
    assert_eq!((cid.as_str(), code), ("r2", 6));

    // A push reaches the protobuf socket in protobuf and a JSON socket of the same user in JSON.
    let mut json_socket = client.socket().await;
    let presence = node.services.presence.clone();
    let user = client.user_id;
    common::wait_until(
        "both sockets registered",
        Duration::from_secs(10),
        async || presence.sockets_of(user) == 2,
    )
    .await;
    let n = Notification::new("pb_mixed", 7, &json!({"k": "v"}));
    node.services.notifier.notify(user, n.clone());
    match next_envelope(&mut ws).await.message {
        Some(envelope::Message::Notifications(list)) => {
            assert_eq!(list.notifications.len(), 1);
            let got = &list.notifications[0];
            assert_eq!((got.id.as_str(), got.code), (n.id.as_str(), 7));
            assert_eq!(got.content, r#"{"k":"v"}"#);
        }
        other => panic!("{other:?}"),
    }
    let v = json_socket.next_json().await;
    assert_eq!(v["notifications"]["notifications"][0]["id"], n.id.as_str());

    // The node is healthy: the JSON socket answers an RPC and its admin reports live.
    let echoed = json_socket
        .rpc("echo", &json!({"still": "here"}))
        .await
        .expect("echo on the JSON socket");
    assert_eq!(echoed, json!({"still": "here"}));
    let health = request(node.admin_addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(health.status, 200, "{}", health.body);

    json_socket.close().await;
    let _ = ws.close(None).await;
    node.stop().await.expect("node stops");
    drop(db);
}
