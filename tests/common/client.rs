//! A small game client for integration tests: device authentication, game RPCs over HTTP
//! (`POST /v2/rpc/{id}` with the payload as a JSON string literal, as nakama-js sends it) and
//! over the realtime socket (`{"cid", "rpc"}` envelopes), plus a raw HTTP request with any
//! headers. It talks to a node only through its client listener, like a real game client.
//! `start_game_node` starts a node with a tuned [`Config`] after optional setup SQL.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use serai::config::Config;
use serai::localdb::TestDatabase;
use serai::shutdown::Shutdown;

use super::node::{parse_response, Response, TestNode};

/// The server key of [`Config::for_test`] (Nakama's default).
pub const SERVER_KEY: &str = "defaultkey";

/// `Authorization: Basic base64(<key>:)`.
pub fn basic(key: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{key}:")))
}

/// Starts a node on a fresh database. `setup_sql` (if not empty) runs after the migrations
/// and before the node starts, so it can change catalog rows the node then loads; `tune`
/// adjusts the test config (idle timeout, frame size, …).
pub async fn start_game_node(setup_sql: &str, tune: impl FnOnce(&mut Config)) -> TestNode {
    let db = TestDatabase::create().await.expect("a test database");
    start_game_node_on(db, setup_sql, tune).await
}

/// [`start_game_node`] on a database created by the caller (e.g. to put a proxy in front).
pub async fn start_game_node_on(
    db: TestDatabase,
    setup_sql: &str,
    tune: impl FnOnce(&mut Config),
) -> TestNode {
    if !setup_sql.is_empty() {
        let pool = serai::persistence::Db::connect(
            &db.url,
            2,
            serai::config::Dialect::Postgres,
            serai::metrics::Metrics::new("setup"),
        )
        .expect("pool");
        serai::persistence::migrate::run(&pool)
            .await
            .expect("migrations");
        super::raw_client(&db.url)
            .await
            .batch_execute(setup_sql)
            .await
            .expect("setup SQL");
    }
    let mut config = Config::for_test(&db.url);
    tune(&mut config);
    let node = serai::node::start(config.clone(), Shutdown::new())
        .await
        .expect("node starts");
    TestNode { node, config, db }
}

/// A [`super::proxy::Proxy`] in front of the test database and the URL that goes through it.
pub async fn proxied(db: &TestDatabase) -> (super::proxy::Proxy, String) {
    let cfg: tokio_postgres::Config = db.url.parse().expect("a database URL");
    let target = match &cfg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => format!("{h}:{}", cfg.get_ports()[0]),
        #[allow(unreachable_patterns)]
        _ => panic!("the test needs a TCP database"),
    };
    let target = tokio::net::lookup_host(target)
        .await
        .expect("resolve the database host")
        .next()
        .expect("an address");
    let proxy = super::proxy::Proxy::start(target).await;
    let password = cfg
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let url = format!(
        "postgresql://{}{password}@127.0.0.1:{}/{}",
        cfg.get_user().unwrap_or("postgres"),
        proxy.addr.port(),
        cfg.get_dbname().expect("a database name")
    );
    (proxy, url)
}

/// One HTTP/1.1 request with `Connection: close` and any headers; the answer in full.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let exchange = async {
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
        // The server may answer before reading a body it refuses; ignore write errors.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        parse_response(&raw).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer in 20 s"))
}

/// A failed RPC as the client sees it. Over HTTP: the HTTP status and the gRPC `code`. Over the
/// socket: `status` 0, the realtime `code`, and the gRPC code from `context.grpc_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcFailure {
    pub status: u16,
    pub code: i64,
    pub grpc_code: Option<i64>,
    pub message: String,
}

impl RpcFailure {
    fn from_http(r: &Response) -> RpcFailure {
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        RpcFailure {
            status: r.status,
            code: v["code"].as_i64().unwrap_or(-1),
            grpc_code: v["code"].as_i64(),
            message: v["message"].as_str().unwrap_or(&r.body).to_string(),
        }
    }

    fn from_socket(error: &Value) -> RpcFailure {
        RpcFailure {
            status: 0,
            code: error["code"].as_i64().unwrap_or(0),
            grpc_code: error["context"]["grpc_code"]
                .as_str()
                .and_then(|c| c.parse().ok()),
            message: error["message"].as_str().unwrap_or_default().to_string(),
        }
    }
}

/// The JSON claims of a JWT.
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// An authenticated player.
#[derive(Debug, Clone)]
pub struct GameClient {
    pub addr: SocketAddr,
    pub token: String,
    pub refresh_token: String,
    pub user_id: Uuid,
}

impl GameClient {
    /// `POST /v2/account/authenticate/device` with the server key; panics unless it succeeds.
    pub async fn device(addr: SocketAddr, device_id: &str) -> GameClient {
        let body = json!({ "id": device_id }).to_string();
        let auth = basic(SERVER_KEY);
        let r = request(
            addr,
            "POST",
            "/v2/account/authenticate/device",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "device auth {device_id}: {}", r.body);
        let v = r.json();
        let token = v["token"].as_str().expect("token").to_string();
        let user_id = jwt_claims(&token)["uid"]
            .as_str()
            .expect("uid")
            .parse()
            .expect("uid is a UUID");
        GameClient {
            addr,
            token,
            refresh_token: v["refresh_token"].as_str().unwrap_or_default().to_string(),
            user_id,
        }
    }

    /// A device's client with one new character named `name` (created with a `request_id`,
    /// asked again while it answers *not run*, as under load): the client, the character's id
    /// and its gold.
    pub async fn with_character(
        addr: SocketAddr,
        device_id: &str,
        name: &str,
    ) -> (GameClient, Uuid, i64) {
        let client = GameClient::device(addr, device_id).await;
        let payload = json!({
            "name": name, "faction": "merchant_league", "background": "caravan_hand",
            "request_id": format!("create-{device_id}"),
        });
        let v = super::wait_for(
            "create_character",
            Duration::from_secs(30),
            async || match client.rpc("create_character", &payload).await {
                Ok(v) => Ok(v),
                Err(e) if e.grpc_code == Some(14) => Err(format!("{e:?}")),
                Err(e) => panic!("create_character: {e:?}"),
            },
        )
        .await;
        let id = v["id"].as_str().unwrap().parse().unwrap();
        (client, id, v["gold"].as_i64().unwrap())
    }

    /// The same client with another bearer token (expired, forged, …).
    pub fn with_token(&self, token: &str) -> GameClient {
        GameClient {
            token: token.to_string(),
            ..self.clone()
        }
    }

    /// `POST /v2/rpc/{id}` with `body` sent as is (for malformed bodies).
    pub async fn rpc_raw(&self, id: &str, body: &[u8]) -> Response {
        let auth = format!("Bearer {}", self.token);
        request(
            self.addr,
            "POST",
            &format!("/v2/rpc/{id}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body,
        )
        .await
    }

    /// An RPC over HTTP with `payload` as the payload string: the answer's payload parsed as
    /// JSON, or the error.
    pub async fn rpc_str(&self, id: &str, payload: &str) -> Result<Value, RpcFailure> {
        let body = serde_json::to_string(payload).expect("a JSON string");
        let r = self.rpc_raw(id, body.as_bytes()).await;
        if r.status != 200 {
            return Err(RpcFailure::from_http(&r));
        }
        let v = r.json();
        let payload = v["payload"]
            .as_str()
            .unwrap_or_else(|| panic!("rpc {id}: no payload string in {}", r.body));
        Ok(serde_json::from_str(payload)
            .unwrap_or_else(|e| panic!("rpc {id}: payload is not JSON ({e}): {payload}")))
    }

    /// An RPC over HTTP with a JSON payload.
    pub async fn rpc(&self, id: &str, payload: &Value) -> Result<Value, RpcFailure> {
        self.rpc_str(id, &payload.to_string()).await
    }

    /// Opens the realtime socket with this client's token.
    pub async fn socket(&self) -> GameSocket {
        GameSocket::connect(self.addr, &self.token)
            .await
            .expect("socket connects")
    }
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// The realtime socket of one client. RPCs are sent one at a time and matched by `cid`.
pub struct GameSocket {
    pub ws: Ws,
    next_cid: u64,
}

impl GameSocket {
    /// `GET /ws?lang=en&status=true&token=…`, upgraded.
    pub async fn connect(
        addr: SocketAddr,
        token: &str,
    ) -> Result<GameSocket, tokio_tungstenite::tungstenite::Error> {
        let url = format!("ws://{addr}/ws?lang=en&status=true&token={token}");
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(GameSocket { ws, next_cid: 0 })
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_string()))
            .await
            .expect("send a frame");
    }

    /// The next JSON text frame (pings and pongs skipped); panics after 15 s or on close.
    pub async fn next_json(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(15), self.ws.next())
                .await
                .expect("a socket message within 15 s")
                .expect("the socket is open")
                .expect("no socket error");
            match msg {
                Message::Text(t) => {
                    return serde_json::from_str(t.as_str()).expect("a JSON text frame")
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected socket frame {other:?}"),
            }
        }
    }

    /// An RPC with `payload` as the payload string; waits for the answer with its `cid`
    /// (frames without a `cid`, i.e. pushes, are skipped).
    pub async fn rpc_str(&mut self, id: &str, payload: &str) -> Result<Value, RpcFailure> {
        self.next_cid += 1;
        let cid = self.next_cid.to_string();
        let frame = json!({"cid": cid, "rpc": {"id": id, "payload": payload}});
        self.send_text(&frame.to_string()).await;
        loop {
            let v = self.next_json().await;
            if v.get("cid").and_then(Value::as_str) != Some(cid.as_str()) {
                continue;
            }
            if let Some(error) = v.get("error") {
                return Err(RpcFailure::from_socket(error));
            }
            let payload = v["rpc"]["payload"]
                .as_str()
                .unwrap_or_else(|| panic!("rpc {id}: no payload in {v}"));
            return Ok(serde_json::from_str(payload)
                .unwrap_or_else(|e| panic!("rpc {id}: payload is not JSON ({e}): {payload}")));
        }
    }

    /// An RPC with a JSON payload over the socket.
    pub async fn rpc(&mut self, id: &str, payload: &Value) -> Result<Value, RpcFailure> {
        self.rpc_str(id, &payload.to_string()).await
    }

    /// Waits for the socket to end; the close code if a close frame came.
    pub async fn closed(&mut self, within: Duration) -> Option<CloseCode> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => panic!("socket still open after {within:?}"),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Closes the socket politely (errors ignored: the server may have closed it already).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
