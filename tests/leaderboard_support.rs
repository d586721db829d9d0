//! Helpers shared by the leaderboard tests (included with `#[path]`; as a test target of its
//! own it holds no tests): a node on a fresh database with a tuned config and setup SQL, the
//! admin API, device-authenticated players, and Nakama-shaped requests over real sockets.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use serai::config::Config;
use serai::localdb::TestDatabase;
use serai::node::RunningNode;
use serai::shutdown::Shutdown;

/// A node started in this process on a fresh database.
pub struct Lb {
    pub node: RunningNode,
    pub config: Config,
    pub db: TestDatabase,
}

/// Migrates a fresh database, runs `setup_sql` (if any), then starts a node with
/// `Config::for_test` adjusted by `tune`.
pub async fn start(setup_sql: &str, tune: impl FnOnce(&mut Config)) -> Lb {
    let db = TestDatabase::create().await.expect("a test database");
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
        raw(&db.url)
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
    Lb { node, config, db }
}

/// Stops the node and starts another one on the same database and config.
pub async fn restart(lb: Lb) -> Lb {
    let Lb { node, config, db } = lb;
    node.stop().await.expect("node stops");
    let node = serai::node::start(config.clone(), Shutdown::new())
        .await
        .expect("node restarts");
    Lb { node, config, db }
}

pub async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// One HTTP/1.1 exchange with `Connection: close`: (status, body as JSON or a string).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ));
        stream.write_all(head.as_bytes()).await.expect("write");
        stream.write_all(body.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer in 20 s"));
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").expect("headers");
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, rest)) = s.split_once("\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

impl Lb {
    pub fn client(&self) -> SocketAddr {
        self.node.client_addr
    }

    /// An admin request with the admin token.
    pub async fn admin(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let auth = format!("Bearer {}", self.config.admin_token);
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        request(
            self.node.admin_addr,
            method,
            path,
            &[("Authorization", &auth)],
            &body,
        )
        .await
    }

    /// Creates a leaderboard; panics unless created.
    pub async fn create_board(&self, body: Value) {
        let (status, v) = self.admin("POST", "/admin/leaderboards", body).await;
        assert_eq!(status, 201, "create board: {v}");
    }

    pub async fn create_tournament(&self, body: Value) {
        let (status, v) = self.admin("POST", "/admin/tournaments", body).await;
        assert_eq!(status, 201, "create tournament: {v}");
    }

    /// A new device-authenticated player.
    pub async fn player(&self, name: &str) -> Player {
        player_at(self.client(), name).await
    }

    /// Waits until board `id` holds `n` records in its current bucket (warm-up done).
    pub async fn wait_size(&self, id: &str, n: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (_, v) = self.admin("GET", "/admin/leaderboards", Value::Null).await;
            let size = v["leaderboards"]
                .as_array()
                .and_then(|a| a.iter().find(|b| b["id"] == id))
                .and_then(|b| b["size"].as_u64());
            if size == Some(n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "board {id} did not reach {n} records within {within:?} (size {size:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A new player authenticated by a fresh device id on the node at `addr`.
pub async fn player_at(addr: SocketAddr, name: &str) -> Player {
    let auth = format!("Basic {}", STANDARD.encode("defaultkey:"));
    let device = format!("device-{name}-{}", Uuid::new_v4().simple());
    let (status, v) = request(
        addr,
        "POST",
        &format!("/v2/account/authenticate/device?create=true&username={name}"),
        &[("Authorization", &auth)],
        &json!({ "id": device }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "device auth: {v}");
    let token = v["token"].as_str().expect("token").to_string();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("payload"))
            .expect("base64"),
    )
    .expect("claims");
    Player {
        addr,
        token,
        id: claims["uid"].as_str().expect("uid").parse().expect("uuid"),
        name: name.to_string(),
    }
}

/// A device-authenticated player.
#[derive(Debug, Clone)]
pub struct Player {
    pub addr: SocketAddr,
    pub token: String,
    pub id: Uuid,
    pub name: String,
}

impl Player {
    pub async fn call(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let auth = format!("Bearer {}", self.token);
        request(self.addr, method, path, &[("Authorization", &auth)], body).await
    }

    /// `POST /v2/leaderboard/{id}` with score and subscore as Nakama's int64 strings.
    pub async fn write(&self, board: &str, score: i64, subscore: i64) -> (u16, Value) {
        let body = json!({"score": score.to_string(), "subscore": subscore.to_string()});
        self.call(
            "POST",
            &format!("/v2/leaderboard/{board}"),
            &body.to_string(),
        )
        .await
    }

    /// Like [`Player::write`], panicking unless it succeeds; the record.
    pub async fn write_ok(&self, board: &str, score: i64, subscore: i64) -> Value {
        let (status, v) = self.write(board, score, subscore).await;
        assert_eq!(status, 200, "write {board} {score}/{subscore}: {v}");
        v
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call("GET", path, "").await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }
}

/// An int64 field as Nakama sends it (a string, absent when zero).
pub fn int64(v: &Value) -> i64 {
    match v {
        Value::Null => 0,
        Value::String(s) => s.parse().expect("int64 string"),
        other => panic!("int64 fields are strings, got {other}"),
    }
}

/// The records of a list answer (absent = none).
pub fn records(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}
