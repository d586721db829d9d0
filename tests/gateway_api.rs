//! The Nakama-compatible client API over real sockets against a real PostgreSQL: the node's
//! client listener (`gateway::listener`) on 127.0.0.1:0 with `gateway::configure`, a raw
//! HTTP/1.1 client, and tokio-tungstenite for the realtime socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::App;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use serai::config::{Config, Dialect};
use serai::gateway::auth::{encode_token, Claims};
use serai::gateway::{
    configure, GatewayState, Notification, Presence, RpcContext, RpcError, RpcRegistry,
};
use serai::localdb::TestDatabase;
use serai::metrics::Metrics;
use serai::persistence::{migrate, Db};

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

struct Server {
    addr: SocketAddr,
    state: GatewayState,
    handle: actix_web::dev::ServerHandle,
    _db: TestDatabase,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    async fn start_with(tune: impl FnOnce(&mut GatewayState)) -> Server {
        let tdb = TestDatabase::create().await.expect("test database");
        let config = Arc::new(Config::for_test(&tdb.url));
        let db = Db::connect(&tdb.url, 8, Dialect::Postgres, Metrics::new("t")).expect("pool");
        migrate::run(&db).await.expect("migrations");
        let rpc = Arc::new(RpcRegistry::new());
        rpc.register_fn("whoami", |ctx: RpcContext, payload| async move {
            Ok(json!({
                "user_id": ctx.user_id.to_string(),
                "username": ctx.username,
                "vars": ctx.vars,
                "http_key": ctx.http_key,
                "payload": payload,
            })
            .to_string())
        });
        rpc.register_fn("missing_thing", |_ctx, _p| async move {
            Err(RpcError::not_found("No such thing."))
        });
        rpc.register_fn("broken", |_ctx, _p| async move {
            Err(RpcError::internal("It broke."))
        });
        rpc.register_fn("slow", |_ctx, payload| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(payload)
        });
        let mut state = GatewayState::new(config, db, rpc, Presence::new());
        tune(&mut state);
        let app_state = state.clone();
        // The node's client listener: WebSocket upgrades leave the HTTP connection.
        let (server, addr) = serai::gateway::listener::bind(
            "127.0.0.1:0".parse().unwrap(),
            move || App::new().configure(configure(app_state.clone())),
            state.clone(),
        )
        .expect("bind");
        let server = server.workers(2).run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Server {
            addr,
            state,
            handle,
            _db: tdb,
        }
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        http(self.addr, method, path, headers, body).await
    }

    /// POST with the server key.
    async fn post_key(&self, path: &str, body: &Value) -> Resp {
        let auth = basic("defaultkey");
        self.request(
            "POST",
            path,
            &[("Authorization", &auth)],
            body.to_string().as_bytes(),
        )
        .await
    }

    async fn device(&self, id: &str) -> Session {
        let r = self
            .post_key("/v2/account/authenticate/device", &json!({ "id": id }))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        Session::from(&r.json())
    }

    async fn ws(&self, token: &str) -> Ws {
        let url = format!("ws://{}/ws?lang=en&status=true&token={token}", self.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("socket connects");
        ws
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a Nakama error: status, gRPC code, and a message containing `text`.
    fn assert_error(&self, status: u16, code: i64, text: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let v = self.json();
        assert_eq!(v["code"], code, "{}", self.body);
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.contains(text), "message {message:?} lacks {text:?}");
        assert_eq!(v["error"], v["message"]);
        assert!(self
            .header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"));
    }
}

#[derive(Debug, Clone)]
struct Session {
    created: bool,
    token: String,
    refresh: String,
}

impl From<&Value> for Session {
    fn from(v: &Value) -> Session {
        Session {
            created: v.get("created").and_then(Value::as_bool).unwrap_or(false),
            token: v["token"].as_str().expect("token").to_string(),
            refresh: v["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_string(),
        }
    }
}

fn basic(key: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{key}:")))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The JSON payload of a JWT, decoded the strict way.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// A minimal HTTP/1.1 client: one request per connection, sized or chunked answers.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    // The server may answer (e.g. 400 too large) before reading the body; ignore write errors.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("answer in time");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

async fn next_text(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("no socket error");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

/// Waits until the socket reaches its end; returns the close code if a close frame came.
async fn closed(ws: &mut Ws, within: Duration) -> Option<CloseCode> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("socket still open after {within:?}"),
            Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication and sessions
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn device_and_custom_authentication() {
    let s = Server::start().await;

    // Create, with vars: HS256 JWTs carrying Nakama's claims.
    let r = s
        .post_key(
            "/v2/account/authenticate/device",
            &json!({"id": "device-0001", "vars": {"platform": "web"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["created"], true);
    let first = Session::from(&v);
    let c = claims(&first.token);
    for key in ["tid", "uid", "usn", "exp", "iat"] {
        assert!(c.get(key).is_some(), "claim {key} missing: {c}");
    }
    assert_eq!(c["vrs"], json!({"platform": "web"}));
    let lifetime = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
    assert!(lifetime >= 70, "nakama-js warns below 70 s");
    let username = c["usn"].as_str().unwrap();
    assert_eq!(username.len(), 10);
    assert!(username.bytes().all(|b| b.is_ascii_lowercase()));
    let rc = claims(&first.refresh);
    assert_eq!(rc["uid"], c["uid"]);
    assert!(
        rc["exp"].as_i64().unwrap() - rc["iat"].as_i64().unwrap() >= 3700,
        "nakama-js warns below 3700 s"
    );
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(first.token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");

    // The same device again: the same user, `created` left out.
    let r = s
        .post_key(
            "/v2/account/authenticate/device",
            &json!({"id": "device-0001"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json().get("created").is_none(), "{}", r.body);
    assert_eq!(claims(&Session::from(&r.json()).token)["uid"], c["uid"]);

    // create=false for an unknown id → 404; for a known one → fine.
    let r = s
        .post_key(
            "/v2/account/authenticate/device?create=false",
            &json!({"id": "device-unknown"}),
        )
        .await;
    r.assert_error(404, 5, "User account not found.");
    let r = s
        .post_key(
            "/v2/account/authenticate/device?create=false",
            &json!({"id": "device-0001"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .post_key(
            "/v2/account/authenticate/device?create=maybe",
            &json!({"id": "device-0002"}),
        )
        .await;
    r.assert_error(400, 3, "create");

    // Id rules.
    for (id, text) in [
        (json!("short"), "10-128"),
        (json!("x".repeat(129)), "10-128"),
        (json!("has space 123"), "no spaces"),
        (json!("tab\there-123"), "no spaces"),
        (json!(""), "required"),
    ] {
        let r = s
            .post_key("/v2/account/authenticate/device", &json!({ "id": id }))
            .await;
        r.assert_error(400, 3, text);
    }
    let r = s
        .post_key("/v2/account/authenticate/device", &json!({}))
        .await;
    r.assert_error(400, 3, "Device ID is required.");
    let r = s
        .post_key("/v2/account/authenticate/custom", &json!({"id": "abcde"}))
        .await;
    r.assert_error(400, 3, "6-128");

    // Custom ids: 6 bytes is enough; a chosen username is used.
    let r = s
        .post_key(
            "/v2/account/authenticate/custom?username=Hero-of-Sands",
            &json!({"id": "cust01"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["created"], true);
    assert_eq!(
        claims(&Session::from(&r.json()).token)["usn"],
        "Hero-of-Sands"
    );

    // A taken username → 409 AlreadyExists, and nothing is created.
    let r = s
        .post_key(
            "/v2/account/authenticate/device?username=Hero-of-Sands",
            &json!({"id": "device-0003"}),
        )
        .await;
    r.assert_error(409, 6, "Username is already in use.");
    let r = s
        .post_key(
            "/v2/account/authenticate/device?create=false",
            &json!({"id": "device-0003"}),
        )
        .await;
    r.assert_error(404, 5, "not found");
    let r = s
        .post_key(
            "/v2/account/authenticate/device?username=has%20space",
            &json!({"id": "device-0004"}),
        )
        .await;
    r.assert_error(400, 3, "Username invalid");

    // Server key.
    let body = json!({"id": "device-0001"}).to_string();
    let r = s
        .request(
            "POST",
            "/v2/account/authenticate/device",
            &[],
            body.as_bytes(),
        )
        .await;
    r.assert_error(401, 16, "Server key required");
    let wrong = basic("wrongkey");
    let r = s
        .request(
            "POST",
            "/v2/account/authenticate/device",
            &[("Authorization", &wrong)],
            body.as_bytes(),
        )
        .await;
    r.assert_error(401, 16, "Server key invalid");
    let r = s
        .request(
            "POST",
            "/v2/account/authenticate/device",
            &[("Authorization", "Basic %%%")],
            body.as_bytes(),
        )
        .await;
    r.assert_error(401, 16, "Server key invalid");
    let with_password = format!("Basic {}", STANDARD.encode("defaultkey:ignored"));
    let r = s
        .request(
            "POST",
            "/v2/account/authenticate/device",
            &[("Authorization", &with_password)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "only the user part is checked");

    // Malformed bodies: clear 400s.
    let key = basic("defaultkey");
    let h = [
        ("Authorization", key.as_str()),
        ("Content-Type", "application/json"),
    ];
    let r = s
        .request("POST", "/v2/account/authenticate/device", &h, b"{\"id\": ")
        .await;
    r.assert_error(400, 3, "Invalid JSON request body");
    let r = s
        .request(
            "POST",
            "/v2/account/authenticate/device",
            &h,
            b"{\"id\": 12345678901}",
        )
        .await;
    r.assert_error(400, 3, "invalid type");
    let r = s
        .request(
            "POST",
            "/v2/account/authenticate/device",
            &h,
            b"{\"id\":\"device-0009\",\"vars\":[1]}",
        )
        .await;
    r.assert_error(400, 3, "Invalid JSON request body");
    let big = format!(
        "{{\"id\":\"device-0009\",\"pad\":\"{}\"}}",
        "x".repeat(20_000)
    );
    let r = s
        .request(
            "POST",
            "/v2/account/authenticate/device",
            &h,
            big.as_bytes(),
        )
        .await;
    r.assert_error(400, 3, "too large");
    // Unknown fields are ignored, as grpc-gateway does.
    let r = s
        .request(
            "POST",
            "/v2/account/authenticate/device",
            &h,
            b"{\"id\":\"device-0009\",\"extra\":1}",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Routing errors are JSON too.
    s.request("GET", "/v2/nothing", &[], b"")
        .await
        .assert_error(404, 5, "Not Found");
    let r = s
        .request("GET", "/v2/account/authenticate/device", &[], b"")
        .await;
    assert_eq!(r.status, 405);
    s.stop().await;
}

#[actix_web::test]
async fn tokens_are_safe_for_nakama_js_base64() {
    let s = Server::start().await;
    // Usernames and vars whose JSON would otherwise produce '-' or '_' in base64url.
    for (i, name) in ["a?b>c~d", "??>>~~", "Zürich", "x~", "xx~", "xxx?"]
        .iter()
        .enumerate()
    {
        let path = format!(
            "/v2/account/authenticate/custom?username={}",
            urlencode(name)
        );
        let r = s
            .post_key(
                &path,
                &json!({"id": format!("custom-{i:03}"), "vars": {"q?": "~>"}}),
            )
            .await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let session = Session::from(&r.json());
        for token in [&session.token, &session.refresh] {
            let payload = token.split('.').nth(1).unwrap();
            assert!(
                !payload.contains('-') && !payload.contains('_'),
                "{name}: {payload}"
            );
            // What nakama-js 2.8 does: standard base64 with '-' and '_' dropped.
            let c: Value = serde_json::from_slice(&STANDARD.decode(pad(payload)).unwrap()).unwrap();
            assert_eq!(c["usn"], *name);
            assert_eq!(c["vrs"]["q?"], "~>");
        }
    }
    s.stop().await;
}

fn pad(s: &str) -> String {
    format!("{s}{}", "=".repeat((4 - s.len() % 4) % 4))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[actix_web::test]
async fn concurrent_creates_of_one_device_make_one_user() {
    let s = Server::start().await;
    let addr = s.addr;
    let auth = basic("defaultkey");
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"id": "same-device-xyz"}).to_string();
            http(
                addr,
                "POST",
                "/v2/account/authenticate/device",
                &[("Authorization", &auth)],
                body.as_bytes(),
            )
            .await
        }));
    }
    let mut uids = std::collections::HashSet::new();
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        if v.get("created") == Some(&json!(true)) {
            created += 1;
        }
        uids.insert(
            claims(v["token"].as_str().unwrap())["uid"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(uids.len(), 1, "one user for one device id");
    assert_eq!(created, 1, "exactly one answer says created");
    s.stop().await;
}

#[actix_web::test]
async fn refresh_and_account() {
    let s = Server::start().await;
    let r = s
        .post_key(
            "/v2/account/authenticate/device?username=trader1",
            &json!({"id": "device-acct-01", "vars": {"a": "1"}}),
        )
        .await;
    let session = Session::from(&r.json());
    let uid = claims(&session.token)["uid"].as_str().unwrap().to_string();

    // Refresh: new tokens for the same user; vars kept unless replaced.
    let r = s
        .post_key(
            "/v2/account/session/refresh",
            &json!({"token": session.refresh}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let refreshed = Session::from(&r.json());
    assert!(!refreshed.created);
    assert_eq!(claims(&refreshed.token)["uid"], uid.as_str());
    assert_eq!(claims(&refreshed.token)["usn"], "trader1");
    assert_eq!(claims(&refreshed.token)["vrs"], json!({"a": "1"}));
    // The refresh token rotates (as in Nakama): the used one is refused, the new one works.
    let r = s
        .post_key(
            "/v2/account/session/refresh",
            &json!({"token": session.refresh, "vars": {"b": "2"}}),
        )
        .await;
    r.assert_error(401, 16, "Refresh token invalid or expired.");
    let r = s
        .post_key(
            "/v2/account/session/refresh",
            &json!({"token": refreshed.refresh, "vars": {"b": "2"}}),
        )
        .await;
    assert_eq!(
        claims(&Session::from(&r.json()).token)["vrs"],
        json!({"b": "2"})
    );
    // A session token is not a refresh token; garbage and missing tokens are refused.
    let r = s
        .post_key(
            "/v2/account/session/refresh",
            &json!({"token": session.token}),
        )
        .await;
    r.assert_error(401, 16, "Refresh token invalid");
    let r = s
        .post_key("/v2/account/session/refresh", &json!({"token": "a.b.c"}))
        .await;
    r.assert_error(401, 16, "Refresh token invalid");
    let r = s.post_key("/v2/account/session/refresh", &json!({})).await;
    r.assert_error(400, 3, "Refresh token is required.");
    let body = json!({"token": session.refresh}).to_string();
    let r = s
        .request("POST", "/v2/account/session/refresh", &[], body.as_bytes())
        .await;
    r.assert_error(401, 16, "Server key");

    // GET /v2/account in Nakama's shape.
    let auth = bearer(&refreshed.token);
    let r = s
        .request("GET", "/v2/account", &[("Authorization", &auth)], b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["user"]["id"], uid.as_str());
    assert_eq!(v["user"]["username"], "trader1");
    assert!(v["user"]["create_time"].as_str().unwrap().ends_with('Z'));
    assert!(v["user"]["update_time"].as_str().is_some());
    assert!(v["user"].get("online").is_none(), "false is left out");
    assert_eq!(v["devices"], json!([{"id": "device-acct-01"}]));
    assert!(v.get("custom_id").is_none());

    let r = s
        .post_key(
            "/v2/account/authenticate/custom",
            &json!({"id": "custom-acct"}),
        )
        .await;
    let custom = Session::from(&r.json());
    let auth = bearer(&custom.token);
    let v = s
        .request("GET", "/v2/account", &[("Authorization", &auth)], b"")
        .await
        .json();
    assert_eq!(v["custom_id"], "custom-acct");
    assert!(v.get("devices").is_none());

    s.request("GET", "/v2/account", &[], b"")
        .await
        .assert_error(401, 16, "Auth token required");
    let auth = bearer(&session.refresh);
    s.request("GET", "/v2/account", &[("Authorization", &auth)], b"")
        .await
        .assert_error(401, 16, "Auth token invalid");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// RPC over HTTP
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn rpc_over_http() {
    let s = Server::start().await;
    let session = s.device("device-rpc-001").await;
    let auth = bearer(&session.token);
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];

    // nakama-js: the body is JSON.stringify(JSON.stringify(input)).
    let input = json!({"good": "silk", "n": 3}).to_string();
    let body = serde_json::to_string(&input).unwrap();
    let r = s.request("POST", "/v2/rpc/echo", &h, body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["payload"], input.as_str());
    assert_eq!(v["id"], "echo");
    assert_eq!(
        serde_json::from_str::<Value>(v["payload"].as_str().unwrap()).unwrap()["good"],
        "silk"
    );

    // Ids are case-insensitive; ?unwrap takes and answers the raw body.
    let r = s
        .request("POST", "/v2/rpc/EcHo?unwrap", &h, input.as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, input);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));

    // The caller is the token's user.
    let r = s.request("POST", "/v2/rpc/whoami", &h, b"\"{}\"").await;
    let who: Value = serde_json::from_str(r.json()["payload"].as_str().unwrap()).unwrap();
    assert_eq!(who["user_id"], claims(&session.token)["uid"]);
    assert_eq!(who["http_key"], false);

    // GET with ?payload=.
    let r = s
        .request("GET", "/v2/rpc/echo?payload=%7B%22a%22%3A1%7D", &h, b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["payload"], "{\"a\":1}");

    // Server to server: ?http_key= or Basic with the HTTP key.
    let r = s
        .request(
            "POST",
            "/v2/rpc/whoami?http_key=defaulthttpkey",
            &[],
            b"\"{}\"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let who: Value = serde_json::from_str(r.json()["payload"].as_str().unwrap()).unwrap();
    assert_eq!(who["http_key"], true);
    assert_eq!(who["user_id"], Uuid::nil().to_string());
    let hk = basic("defaulthttpkey");
    let r = s
        .request("POST", "/v2/rpc/echo", &[("Authorization", &hk)], b"\"{}\"")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.request("POST", "/v2/rpc/echo?http_key=nope", &[], b"\"{}\"")
        .await
        .assert_error(401, 16, "HTTP key invalid");
    let wrong = basic("defaultkey");
    s.request(
        "POST",
        "/v2/rpc/echo",
        &[("Authorization", &wrong)],
        b"\"{}\"",
    )
    .await
    .assert_error(401, 16, "HTTP key invalid");

    // Unknown RPC, missing/bad/expired/forged tokens.
    s.request("POST", "/v2/rpc/no_such_rpc", &h, b"\"{}\"")
        .await
        .assert_error(404, 5, "RPC function not found");
    s.request("POST", "/v2/rpc/echo", &[], b"\"{}\"")
        .await
        .assert_error(401, 16, "Auth token or HTTP key required");
    let junk = bearer("not-a-token");
    s.request(
        "POST",
        "/v2/rpc/echo",
        &[("Authorization", &junk)],
        b"\"{}\"",
    )
    .await
    .assert_error(401, 16, "Auth token invalid");

    let c = claims(&session.token);
    let mut expired: Claims = serde_json::from_value(c.clone()).unwrap();
    expired.iat -= 10_000;
    expired.exp = expired.iat + 60;
    let key =
        jsonwebtoken::EncodingKey::from_secret(s.state.config.session_encryption_key.as_bytes());
    let expired = bearer(&encode_token(&expired, &key).unwrap());
    s.request(
        "POST",
        "/v2/rpc/echo",
        &[("Authorization", &expired)],
        b"\"{}\"",
    )
    .await
    .assert_error(401, 16, "Auth token invalid");

    let mut forged_claims: Claims = serde_json::from_value(c).unwrap();
    forged_claims.uid = Uuid::new_v4().to_string();
    let forged = encode_token(
        &forged_claims,
        &jsonwebtoken::EncodingKey::from_secret(b"guessed-key"),
    )
    .unwrap();
    let forged = bearer(&forged);
    s.request(
        "POST",
        "/v2/rpc/echo",
        &[("Authorization", &forged)],
        b"\"{}\"",
    )
    .await
    .assert_error(401, 16, "Auth token invalid");
    // A valid token with its signature altered.
    let mut tampered = session.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let tampered = bearer(&tampered);
    s.request(
        "POST",
        "/v2/rpc/echo",
        &[("Authorization", &tampered)],
        b"\"{}\"",
    )
    .await
    .assert_error(401, 16, "Auth token invalid");
    // The refresh token is not a session token.
    let refresh = bearer(&session.refresh);
    s.request(
        "POST",
        "/v2/rpc/echo",
        &[("Authorization", &refresh)],
        b"\"{}\"",
    )
    .await
    .assert_error(401, 16, "Auth token invalid");

    // Bodies: not a JSON string, malformed, too large.
    s.request("POST", "/v2/rpc/echo", &h, b"{\"a\":1}")
        .await
        .assert_error(400, 3, "JSON string");
    s.request("POST", "/v2/rpc/echo", &h, b"\"unterminated")
        .await
        .assert_error(400, 3, "JSON string");
    let big = serde_json::to_string(&"x".repeat(300 * 1024)).unwrap();
    s.request("POST", "/v2/rpc/echo", &h, big.as_bytes())
        .await
        .assert_error(400, 3, "too large");
    // An empty body is an empty payload.
    let r = s.request("POST", "/v2/rpc/echo", &h, b"").await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Handler errors keep their gRPC code.
    s.request("POST", "/v2/rpc/missing_thing", &h, b"\"{}\"")
        .await
        .assert_error(404, 5, "No such thing.");
    s.request("POST", "/v2/rpc/broken", &h, b"\"{}\"")
        .await
        .assert_error(500, 13, "It broke.");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Realtime socket
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn socket_rejects_bad_tokens_before_the_upgrade() {
    let s = Server::start().await;
    let session = s.device("device-ws-0001").await;
    for url in [
        format!("ws://{}/ws?lang=en&status=true", s.addr),
        format!("ws://{}/ws?token=garbage", s.addr),
        format!("ws://{}/ws?token={}", s.addr, session.refresh),
    ] {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 401, "{url}");
                let body: Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap_or(b"{}")).unwrap();
                assert_eq!(body["code"], 16);
            }
            other => panic!("{url}: expected 401, got {:?}", other.map(|_| ())),
        }
    }
    // Authorization: Bearer works as well as ?token=.
    let mut req = format!("ws://{}/ws", s.addr).into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", bearer(&session.token).parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("bearer header accepted");
    send(&mut ws, json!({"cid": "1", "ping": {}})).await;
    assert_eq!(next_text(&mut ws).await, json!({"cid": "1", "pong": {}}));
    s.stop().await;
}

#[actix_web::test]
async fn socket_rpc_ping_errors_and_pushes() {
    let s = Server::start().await;
    let session = s.device("device-ws-0002").await;
    let uid: Uuid = claims(&session.token)["uid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut ws = s.ws(&session.token).await;

    send(&mut ws, json!({"cid": "1", "ping": {}})).await;
    assert_eq!(next_text(&mut ws).await, json!({"cid": "1", "pong": {}}));

    let payload = json!({"hello": "world"}).to_string();
    send(
        &mut ws,
        json!({"cid": "2", "rpc": {"id": "Echo", "payload": payload}}),
    )
    .await;
    assert_eq!(
        next_text(&mut ws).await,
        json!({"cid": "2", "rpc": {"id": "Echo", "payload": payload}})
    );

    // What nakama-js sends when given an http_key: accepted, the caller stays the socket's user.
    send(
        &mut ws,
        json!({"cid": "3", "rpc": {"id": "whoami", "payload": "{}", "http_key": "x"}}),
    )
    .await;
    let v = next_text(&mut ws).await;
    let who: Value = serde_json::from_str(v["rpc"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(who["user_id"], uid.to_string());
    assert_eq!(who["http_key"], false);

    // Errors carry the cid and Nakama's realtime codes.
    send(&mut ws, json!({"cid": "4", "rpc": {"id": "no_such_rpc"}})).await;
    let v = next_text(&mut ws).await;
    assert_eq!(
        (&v["cid"], &v["error"]["code"]),
        (&json!("4"), &json!(6)),
        "{v}"
    );
    send(
        &mut ws,
        json!({"cid": "5", "channel_join": {"target": "x", "type": 1}}),
    )
    .await;
    let v = next_text(&mut ws).await;
    assert_eq!(
        (&v["cid"], &v["error"]["code"]),
        (&json!("5"), &json!(1)),
        "{v}"
    );
    send(&mut ws, json!({"cid": "6", "bogus": {}})).await;
    let v = next_text(&mut ws).await;
    assert_eq!(
        (&v["cid"], &v["error"]["code"]),
        (&json!("6"), &json!(1)),
        "{v}"
    );
    send(&mut ws, json!({"cid": "7"})).await;
    assert_eq!(next_text(&mut ws).await["error"]["code"], 2);
    send(&mut ws, json!({"cid": "8", "rpc": {"id": 42}})).await;
    let v = next_text(&mut ws).await;
    assert_eq!(
        (&v["cid"], &v["error"]["code"]),
        (&json!("8"), &json!(3)),
        "{v}"
    );
    send(&mut ws, json!({"cid": "9", "rpc": {"id": "missing_thing"}})).await;
    let v = next_text(&mut ws).await;
    assert_eq!(
        (&v["cid"], &v["error"]["code"]),
        (&json!("9"), &json!(3)),
        "{v}"
    );
    assert_eq!(v["error"]["message"], "No such thing.");
    assert_eq!(v["error"]["context"]["grpc_code"], "5");
    send(&mut ws, json!({"cid": "10", "rpc": {"id": "broken"}})).await;
    let v = next_text(&mut ws).await;
    assert_eq!(
        (&v["cid"], &v["error"]["code"]),
        (&json!("10"), &json!(7)),
        "{v}"
    );
    ws.send(Message::text("not json at all")).await.unwrap();
    let v = next_text(&mut ws).await;
    assert!(v.get("cid").is_none());
    assert_eq!(v["error"]["code"], 1);
    // Binary frames holding JSON are understood too.
    ws.send(Message::binary(
        json!({"cid": "11", "ping": {}}).to_string().into_bytes(),
    ))
    .await
    .unwrap();
    assert_eq!(next_text(&mut ws).await, json!({"cid": "11", "pong": {}}));

    // RPCs run concurrently: a slow one does not hold back a fast one sent after it.
    send(
        &mut ws,
        json!({"cid": "20", "rpc": {"id": "slow", "payload": "s"}}),
    )
    .await;
    send(
        &mut ws,
        json!({"cid": "21", "rpc": {"id": "echo", "payload": "f"}}),
    )
    .await;
    assert_eq!(next_text(&mut ws).await["cid"], "21");
    assert_eq!(next_text(&mut ws).await["cid"], "20");

    // A push through Presence arrives without a cid.
    wait_for("presence", || s.state.presence.is_online(uid)).await;
    let n = Notification::new("caravan_arrived", 101, &json!({"node": "port_azure"}));
    assert_eq!(s.state.presence.notify(uid, n.clone()), 1);
    let v = next_text(&mut ws).await;
    assert!(v.get("cid").is_none(), "{v}");
    let got = &v["notifications"]["notifications"][0];
    assert_eq!(got["id"], n.id.as_str());
    assert_eq!(got["subject"], "caravan_arrived");
    assert_eq!(got["code"], 101);
    assert_eq!(
        serde_json::from_str::<Value>(got["content"].as_str().unwrap()).unwrap(),
        json!({"node": "port_azure"})
    );
    assert!(got["create_time"].as_str().unwrap().ends_with('Z'));

    // The account shows the user online while the socket is open.
    let auth = bearer(&session.token);
    let v = s
        .request("GET", "/v2/account", &[("Authorization", &auth)], b"")
        .await
        .json();
    assert_eq!(v["user"]["online"], true);

    // Closing removes the socket from presence.
    ws.close(None).await.unwrap();
    wait_for("presence cleared", || !s.state.presence.is_online(uid)).await;
    assert_eq!(s.state.presence.notify(uid, n), 0);
    s.stop().await;
}

#[actix_web::test]
async fn socket_frame_limit_closes_with_1009() {
    let s = Server::start().await;
    let session = s.device("device-ws-0003").await;
    let mut ws = s.ws(&session.token).await;
    // Just under the limit is fine.
    let payload = "p".repeat(4096 - 64);
    send(
        &mut ws,
        json!({"cid": "1", "rpc": {"id": "echo", "payload": payload}}),
    )
    .await;
    assert_eq!(next_text(&mut ws).await["rpc"]["payload"], payload.as_str());
    // Over it: closed with "message too big".
    let payload = "p".repeat(5000);
    send(
        &mut ws,
        json!({"cid": "2", "rpc": {"id": "echo", "payload": payload}}),
    )
    .await;
    assert_eq!(
        closed(&mut ws, Duration::from_secs(5)).await,
        Some(CloseCode::Size)
    );
    s.stop().await;
}

#[actix_web::test]
async fn socket_liveness_pings_and_read_deadline() {
    let s = Server::start_with(|st| {
        st.socket.ping_interval = Duration::from_millis(100);
        st.socket.read_deadline = Duration::from_millis(600);
    })
    .await;
    let session = s.device("device-ws-0004").await;

    // A client that reads (tungstenite answers pings itself) stays connected past the deadline.
    let mut ws = s.ws(&session.token).await;
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        if let Ok(Some(Ok(Message::Ping(_)))) =
            tokio::time::timeout(Duration::from_millis(200), ws.next()).await
        {
            pings += 1;
        }
    }
    assert!(pings >= 3, "server pings every 100 ms, saw {pings}");
    send(&mut ws, json!({"cid": "1", "ping": {}})).await;
    assert_eq!(next_text(&mut ws).await, json!({"cid": "1", "pong": {}}));

    // A silent client (never reads, so never answers pings) is closed after the deadline.
    let mut silent = s.ws(&session.token).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    closed(&mut silent, Duration::from_secs(5)).await;
    s.stop().await;
}

#[actix_web::test]
async fn socket_client_that_does_not_read_is_disconnected() {
    let s = Server::start_with(|st| {
        st.socket.max_queued_messages = 32;
        st.socket.max_queued_bytes = 64 * 1024;
        st.socket.write_timeout = Duration::from_secs(1);
    })
    .await;
    let session = s.device("device-ws-0005").await;
    let uid: Uuid = claims(&session.token)["uid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let _ws = s.ws(&session.token).await; // never read
    wait_for("presence", || s.state.presence.is_online(uid)).await;
    let content = json!({"blob": "z".repeat(4000)});
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pushed = 0usize;
    while s.state.presence.is_online(uid) {
        assert!(
            Instant::now() < deadline,
            "still connected after {pushed} pushes"
        );
        for _ in 0..50 {
            pushed += s
                .state
                .presence
                .notify(uid, Notification::new("flood", 1, &content));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(pushed > 0);
    // Other users are unaffected.
    let other = s.device("device-ws-0006").await;
    let mut ws = s.ws(&other.token).await;
    send(&mut ws, json!({"cid": "1", "ping": {}})).await;
    assert_eq!(next_text(&mut ws).await, json!({"cid": "1", "pong": {}}));
    s.stop().await;
}
