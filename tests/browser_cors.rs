//! CORS, as a browser sees it: headless Chromium opens a page served by a small static server
//! in this test (another origin than the node's: another port) that loads the browser build
//! of nakama-js, authenticates, calls an RPC, writes and lists leaderboard records, and lists
//! and deletes notifications (DELETE: a preflight that names its method) against a real
//! node. The page posts what it got back to the static server, where the test checks it.
//! Plus the preflight answers themselves, byte for byte, over plain HTTP.
//!
//! Needs `chromium` on PATH (Debian: `apt-get install chromium`; scripts/lib/deps.sh installs
//! it) and clients/js's npm packages (installed by the test when missing).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use common::client::{request, start_game_node};
use common::nodejs::{client_dir, ensure_client_deps};

const BOARD: &str = "browser_board";

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                return PathBuf::from(path);
            }
        }
    }
    panic!(
        "this test opens a page in headless Chromium and needs `chromium` on PATH \
         (Debian/Ubuntu as root: `apt-get install chromium`, or run scripts/test.sh)"
    );
}

/// The page: nakama-js from this origin, the node on another.
fn page(node: SocketAddr, server_key: &str) -> String {
    format!(
        r#"<!doctype html>
<html><body><pre id="out">running</pre>
<script type="module">
import {{ Client }} from "/nakama-js.esm.mjs";
const report = (r) => fetch("/result", {{ method: "POST", body: JSON.stringify(r) }});
async function described(e) {{
  if (e && typeof e.json === "function") {{
    try {{ return {{ status: e.status, body: await e.json() }}; }} catch (_) {{ return {{ status: e.status }}; }}
  }}
  return String(e && e.stack ? e.stack : e);
}}
try {{
  const client = new Client("{server_key}", "{host}", "{port}", false, 7000, false);
  const device = "browser-" + Math.random().toString(16).slice(2) + Date.now();
  const session = await client.authenticateDevice(device, true);
  const rpc = await client.rpc(session, "echo", {{ from: "the browser" }});
  const written = await client.writeLeaderboardRecord(session, "{BOARD}", {{ score: "42" }});
  const list = await client.listLeaderboardRecords(session, "{BOARD}", undefined, 10);
  const notes = await client.listNotifications(session, 10);
  const deleted = await client.deleteNotifications(session, ["00000000-0000-0000-0000-000000000001"]);
  await report({{ ok: true, origin: location.origin, user_id: session.user_id, rpc: rpc.payload,
    written, records: list.records, notes, deleted }});
}} catch (e) {{
  await report({{ ok: false, error: await described(e) }});
}}
</script></body></html>"#,
        host = node.ip(),
        port = node.port(),
    )
}

/// One request read off `stream`: (method, path, body).
async fn read_request(stream: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if raw.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut words = head.split_whitespace();
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while raw.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    Some((method, path, raw[head_end..head_end + length].to_vec()))
}

async fn answer(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
}

/// The static server: the page, nakama-js's browser build, and `/result` (forwarded to
/// `results`). Its address.
async fn static_server(html: String, results: mpsc::Sender<Value>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let dist = client_dir().join("node_modules/@heroiclabs/nakama-js/dist/nakama-js.esm.mjs");
    let js = std::fs::read(&dist).unwrap_or_else(|e| panic!("{}: {e}", dist.display()));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (html, js, results) = (html.clone(), js.clone(), results.clone());
            tokio::spawn(async move {
                let Some((method, path, body)) = read_request(&mut stream).await else {
                    return;
                };
                match (method.as_str(), path.as_str()) {
                    ("GET", "/") => {
                        answer(&mut stream, "200 OK", "text/html", html.as_bytes()).await
                    }
                    ("GET", "/nakama-js.esm.mjs") => {
                        answer(&mut stream, "200 OK", "text/javascript", &js).await
                    }
                    ("POST", "/result") => {
                        let v = serde_json::from_slice(&body).unwrap_or_else(
                            |_| json!({"unparsable": String::from_utf8_lossy(&body)}),
                        );
                        let _ = results.send(v).await;
                        answer(&mut stream, "200 OK", "text/plain", b"thanks").await
                    }
                    _ => answer(&mut stream, "404 Not Found", "text/plain", b"").await,
                }
            });
        }
    });
    addr
}

#[actix_rt::test]
async fn a_browser_page_on_another_origin_uses_the_api() {
    let browser = chromium();
    ensure_client_deps();
    let t = start_game_node("", |_| {}).await;
    let auth = format!("Bearer {}", t.config.admin_token);
    let body = json!({"id": BOARD, "operator": "best"}).to_string();
    let r = request(
        t.node.admin_addr,
        "POST",
        "/admin/leaderboards",
        &[("Authorization", &auth)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let (tx, mut results) = mpsc::channel(4);
    let site = static_server(page(t.node.client_addr, &t.config.server_key), tx).await;
    let profile = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chromium-profile-{}", std::process::id()));
    let mut chrome = tokio::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://{site}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", browser.display()));
    let got = tokio::time::timeout(Duration::from_secs(60), results.recv()).await;
    let _ = chrome.kill().await;
    let mut stderr = String::new();
    if let Some(mut e) = chrome.stderr.take() {
        let _ = tokio::time::timeout(Duration::from_secs(5), e.read_to_string(&mut stderr)).await;
    }
    let _ = std::fs::remove_dir_all(&profile);
    t.node.stop().await.expect("node stops");
    let v = got
        .unwrap_or_else(|_| panic!("the page reported nothing within 60 s\n{stderr}"))
        .expect("a result");

    assert_eq!(v["ok"], true, "the page failed: {v}\n{stderr}");
    assert_eq!(v["origin"], format!("http://{site}"));
    assert_eq!(v["rpc"], json!({"from": "the browser"}));
    assert_eq!(v["written"]["score"], 42, "{v}");
    let mine: Vec<&Value> = v["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["owner_id"] == v["user_id"])
        .collect();
    assert_eq!(mine.len(), 1, "{v}");
    assert_eq!(mine[0]["score"], 42);
    assert_eq!(v["notes"]["notifications"], json!([]));
    assert_eq!(v["deleted"], true);
}

#[actix_rt::test]
async fn preflights_are_answered_as_nakama_does() {
    let t = start_game_node("", |_| {}).await;
    let addr = t.node.client_addr;
    let origin = ("Origin", "http://game.example");
    let preflight = |method: &'static str, headers: &'static str| {
        let mut h = vec![origin, ("Access-Control-Request-Method", method)];
        if !headers.is_empty() {
            h.push(("Access-Control-Request-Headers", headers));
        }
        h
    };

    let r = request(
        addr,
        "OPTIONS",
        "/v2/notification",
        &preflight("DELETE", "authorization"),
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("DELETE"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Authorization")
    );

    let r = request(
        addr,
        "OPTIONS",
        "/v2/account/authenticate/device",
        &preflight("POST", "content-type,authorization,accept"),
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-methods"),
        None,
        "POST is simple"
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Content-Type,Authorization")
    );

    let r = request(
        addr,
        "OPTIONS",
        "/v2/rpc/echo",
        &preflight("PATCH", ""),
        b"",
    )
    .await;
    assert_eq!(r.status, 405);
    let r = request(
        addr,
        "OPTIONS",
        "/v2/rpc/echo",
        &preflight("GET", "x-secret"),
        b"",
    )
    .await;
    assert_eq!(r.status, 403);
    let r = request(addr, "OPTIONS", "/v2/rpc/echo", &[origin], b"").await;
    assert_eq!(r.status, 400, "a preflight without a method");

    // Every answer carries the origin header, errors and unknown paths included.
    for (method, path) in [
        ("GET", "/v2/account"),
        ("GET", "/nowhere"),
        ("GET", "/healthcheck"),
    ] {
        let r = request(addr, method, path, &[origin], b"").await;
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "{method} {path}: {}",
            r.status
        );
    }
    t.node.stop().await.expect("node stops");
}
