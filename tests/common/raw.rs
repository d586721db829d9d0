//! Raw client calls that never panic on a dead node: tests that kill or restart nodes need
//! to tell "not sent", "answered" and "no answer" apart.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 exchange; `None` when the answer is cut or missing, `Some((0, Null))` when the
/// node could not even be connected to (the request was never sent).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    body: &str,
) -> Option<(u16, Value)> {
    http_with(addr, method, path, auth, &[], body).await
}

/// [`http`] with extra request headers (`name`, `value`).
pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, Value)> {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let exchange = async {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            return Some((0, Value::Null));
        };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: {auth}\r\n{extra}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        let body = if text
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body.lines().nth(1).unwrap_or("").to_string()
        } else {
            body.to_string()
        };
        Some((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}

pub async fn auth(addr: SocketAddr, device: &str) -> String {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("defaultkey:")
    );
    let (status, v) = http(
        addr,
        "POST",
        "/v2/account/authenticate/device",
        &basic,
        &json!({"id": device}).to_string(),
    )
    .await
    .expect("auth answered");
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// An RPC over HTTP: Ok(payload), Err(Some(code)) for an error answer, Err(None) when the
/// outcome is unknown (no answer).
pub async fn rpc(
    addr: SocketAddr,
    token: &str,
    id: &str,
    payload: &Value,
) -> Result<Value, Option<i64>> {
    let body = serde_json::to_string(&payload.to_string()).unwrap();
    match http(
        addr,
        "POST",
        &format!("/v2/rpc/{id}"),
        &format!("Bearer {token}"),
        &body,
    )
    .await
    {
        Some((200, v)) => {
            Ok(serde_json::from_str(v["payload"].as_str().unwrap_or("null")).unwrap())
        }
        Some((0, _)) => Err(Some(-1)), // not sent: nothing happened
        Some((_, v)) => Err(Some(v["code"].as_i64().unwrap_or(-1))),
        None => Err(None),
    }
}
