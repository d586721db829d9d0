//! The harness's own minimal game client: device auth, RPCs over HTTP (`POST /v2/rpc/{id}`)
//! and over the realtime socket (`/ws` rpc envelopes), and admin calls. It never panics on a
//! dead or stalled node: every call ends in a [`Reply`] that tells "never sent" apart from
//! "sent, but no complete answer", because that is what decides whether a retry is safe.
//!
//! Its own code rather than `tests/common`: a binary cannot use the integration tests' helpers,
//! and this one must report transport failures that the test helpers turn into panics.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// What one attempt got back.
#[derive(Debug, Clone)]
pub enum Reply {
    /// HTTP 200 / a socket `rpc` answer: the payload, parsed.
    Ok(Value),
    /// An error answer: HTTP status (0 over the socket), gRPC code, message.
    Err {
        status: u16,
        grpc: i64,
        message: String,
    },
    /// The request never left (connect refused or failed): it cannot have run.
    NotSent(String),
    /// Sent, but no complete answer (timeout, reset, closed): it may have run.
    Lost(String),
}

/// One HTTP/1.1 exchange with `Connection: close`: `(status, body)`.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), Reply> {
    let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await;
    let mut stream = match connect {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Reply::NotSent(format!("connect {addr}: {e}"))),
        Err(_) => return Err(Reply::NotSent(format!("connect {addr}: timed out"))),
    };
    let _ = stream.set_nodelay(true);
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        stream.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => return Err(Reply::Lost(format!("{addr}: {e}"))),
        Err(_) => return Err(Reply::Lost(format!("{addr}: no answer in {timeout:?}"))),
    };
    parse(&raw).ok_or_else(|| {
        Reply::Lost(format!(
            "{addr}: incomplete answer ({} bytes: {:?})",
            raw.len(),
            String::from_utf8_lossy(&raw[..raw.len().min(80)])
        ))
    })
}

/// A complete HTTP response: status and body (Content-Length or chunked); `None` if cut short.
fn parse(raw: &[u8]) -> Option<(u16, String)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut rest = &raw[split + 4..];
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .map(|v| v.trim_start_matches(':').trim())
            })
            .map(str::to_string)
    };
    let body = if header("transfer-encoding").is_some_and(|v| v == "chunked") {
        let mut out = Vec::new();
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n")?;
            let size_text = String::from_utf8_lossy(&rest[..eol]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            rest = &rest[eol + 2..];
            if size == 0 {
                break out;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
    } else if let Some(len) = header("content-length") {
        rest.get(..len.parse::<usize>().ok()?)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some((status, String::from_utf8_lossy(&body).to_string()))
}

fn error_reply(status: u16, body: &str) -> Reply {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    Reply::Err {
        status,
        grpc: v["code"].as_i64().unwrap_or(-1),
        message: v["message"].as_str().unwrap_or(body).to_string(),
    }
}

/// Device authentication with the server key: the session token.
pub async fn authenticate(
    addr: SocketAddr,
    server_key: &str,
    device: &str,
) -> Result<String, String> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{server_key}:"));
    let body = json!({ "id": device }).to_string();
    let path = "/v2/account/authenticate/device?create=true";
    let timeout = Duration::from_secs(10);
    match http(
        addr,
        "POST",
        path,
        &format!("Basic {basic}"),
        &body,
        timeout,
    )
    .await
    {
        Ok((200, text)) => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["token"].as_str().map(str::to_string))
            .ok_or_else(|| format!("no token in {text}")),
        Ok((status, text)) => Err(format!("device auth: HTTP {status}: {text}")),
        Err(r) => Err(format!("device auth: {r:?}")),
    }
}

/// An RPC over HTTP, the payload sent as a JSON string literal (as nakama-js does).
pub async fn rpc_http(
    addr: SocketAddr,
    token: &str,
    id: &str,
    payload: &str,
    timeout: Duration,
) -> Reply {
    let body = serde_json::to_string(payload).expect("a string serialises");
    let auth = format!("Bearer {token}");
    match http(
        addr,
        "POST",
        &format!("/v2/rpc/{id}"),
        &auth,
        &body,
        timeout,
    )
    .await
    {
        Ok((200, text)) => {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match v["payload"].as_str().map(serde_json::from_str::<Value>) {
                Some(Ok(p)) => Reply::Ok(p),
                _ => Reply::Lost(format!("200 without a JSON payload: {text}")),
            }
        }
        Ok((status, text)) => error_reply(status, &text),
        Err(r) => r,
    }
}

/// A realtime socket; RPCs go one at a time and are matched by `cid`.
pub struct Socket {
    ws: Ws,
    cid: u64,
}

impl Socket {
    pub async fn connect(addr: SocketAddr, token: &str) -> Result<Socket, String> {
        let url = format!("ws://{addr}/ws?lang=en&status=true&token={token}");
        let connect = tokio_tungstenite::connect_async(url);
        match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok((ws, _))) => Ok(Socket { ws, cid: 0 }),
            Ok(Err(e)) => Err(format!("socket {addr}: {e}")),
            Err(_) => Err(format!("socket {addr}: no upgrade in 5 s")),
        }
    }

    /// One RPC. After a `Lost` reply the socket must be dropped: its state is unknown.
    pub async fn rpc(&mut self, id: &str, payload: &str, timeout: Duration) -> Reply {
        self.cid += 1;
        let cid = self.cid.to_string();
        let frame = json!({"cid": cid, "rpc": {"id": id, "payload": payload}});
        if let Err(e) = self.ws.send(Message::text(frame.to_string())).await {
            // Part of the frame may have left before the error: treat it as sent.
            return Reply::Lost(format!("socket send: {e}"));
        }
        let read = async {
            loop {
                let text = match self.ws.next().await {
                    None => return Reply::Lost("socket closed".into()),
                    Some(Err(e)) => return Reply::Lost(format!("socket: {e}")),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(f))) => {
                        return Reply::Lost(format!("socket closed by the server: {f:?}"))
                    }
                    Some(Ok(_)) => continue, // ping, pong, binary
                };
                let v: Value = match serde_json::from_str(text.as_str()) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                if v["cid"].as_str() != Some(cid.as_str()) {
                    continue; // a push (notification, status) or a stale answer
                }
                if let Some(error) = v.get("error") {
                    let grpc = error["context"]["grpc_code"]
                        .as_str()
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(-1);
                    let message = error["message"].as_str().unwrap_or_default().to_string();
                    return Reply::Err {
                        status: 0,
                        grpc,
                        message,
                    };
                }
                return match v["rpc"]["payload"].as_str().map(serde_json::from_str) {
                    Some(Ok(p)) => Reply::Ok(p),
                    _ => Reply::Lost(format!("rpc answer without a JSON payload: {v}")),
                };
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(r) => r,
            Err(_) => Reply::Lost(format!("socket: no answer in {timeout:?}")),
        }
    }
}

/// An admin call with the bearer token: `Some((status, JSON body))`, `None` without an answer.
pub async fn admin(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Option<(u16, Value)> {
    let auth = format!("Bearer {token}");
    let r = http(addr, method, path, &auth, "", timeout).await;
    let (status, text) = r.ok()?;
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}
