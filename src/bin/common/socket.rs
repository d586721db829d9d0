//! The realtime socket: a device's session (authenticated over HTTP, then `/ws`), RPC frames
//! and their replies.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{http, BoxError};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a request waits for its answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Authenticates device `device` at `authority` (`host:port`) with the server key, creating
/// its account if needed, and opens the socket with the session token.
pub async fn connect(authority: &str, server_key: &str, device: &str) -> Result<Ws, BoxError> {
    Ok(connect_user(authority, server_key, device).await?.1)
}

/// [`connect`], also answering the user's id (the session token's `uid` claim).
pub async fn connect_user(
    authority: &str,
    server_key: &str,
    device: &str,
) -> Result<(uuid::Uuid, Ws), BoxError> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{server_key}:"));
    let body = serde_json::json!({ "id": device }).to_string();
    let (status, text) = http::request(
        authority,
        "POST",
        "/v2/account/authenticate/device?create=true",
        &[("Authorization", format!("Basic {basic}"))],
        &body,
        TIMEOUT,
    )
    .await?;
    if status != 200 {
        return Err(format!("device auth: HTTP {status}: {text}").into());
    }
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let token = v["token"]
        .as_str()
        .ok_or("device auth: no token in the answer")?;
    let claims = token.split('.').nth(1).ok_or("device auth: not a JWT")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims)?)?;
    let user = claims["uid"]
        .as_str()
        .ok_or("device auth: no uid claim")?
        .parse()?;
    let url = format!("ws://{authority}/ws?lang=en&status=true&token={token}");
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before every read:
    // with thousands of small frames a second that was a fifth of the load generator's CPU,
    // taken from the node on a small machine. A game client's frames fit in 4 KiB.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    Ok((user, ws))
}

/// An `rpc` answer, for its payload.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    rpc: Option<RpcBody>,
}

#[derive(Deserialize)]
struct RpcBody {
    #[serde(default)]
    payload: String,
}

/// Enough of a frame to know whose answer it is and which kind.
#[derive(Deserialize)]
struct LightEnvelope<'a> {
    #[serde(borrow, default)]
    cid: Option<Cow<'a, str>>,
    #[serde(default)]
    rpc: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

/// An `error` answer.
#[derive(Deserialize, Debug, Clone)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: i32,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub context: HashMap<String, String>,
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code {}: {}", self.code, self.message)?;
        if let Some(g) = self.context.get("grpc_code") {
            write!(f, " (grpc {g})")?;
        }
        Ok(())
    }
}

/// One RPC frame; `payload_json_string` is the payload text (JSON), as a JSON string literal.
pub fn rpc_frame(cid: u64, id: &str, payload_json_string: &str) -> String {
    format!("{{\"cid\":\"{cid}\",\"rpc\":{{\"id\":\"{id}\",\"payload\":{payload_json_string}}}}}")
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always encodes")
}

/// What came back for a request: an `rpc` answer, or an `error`.
pub type Answer = Result<(), ErrorBody>;

/// Sends `frame` (whose cid is `cid`) and waits up to 30 s for its answer: the answer's text
/// and what it is.
pub async fn exchange(ws: &mut Ws, cid: u64, frame: String) -> Result<(String, Answer), BoxError> {
    ws.send(Message::text(frame)).await?;
    tokio::time::timeout(TIMEOUT, read_reply(ws, cid))
        .await
        .map_err(|_| "no answer within 30 s")?
}

/// Reads frames until the reply with `cid` arrives; returns its text and what it is (each
/// frame is decoded once).
async fn read_reply(ws: &mut Ws, cid: u64) -> Result<(String, Answer), BoxError> {
    let want = cid.to_string();
    loop {
        let msg = ws.next().await.ok_or("socket closed by the server")??;
        let text = match msg {
            Message::Text(t) => t.as_str().to_string(),
            Message::Binary(b) => String::from_utf8(b.to_vec())?,
            Message::Close(c) => return Err(format!("socket closed by the server: {c:?}").into()),
            _ => continue, // pings are answered by tungstenite on the next write
        };
        let env: LightEnvelope = serde_json::from_str(&text)?;
        if env.cid.as_deref() == Some(want.as_str()) {
            let answer = match (env.rpc, env.error) {
                (Some(_), _) => Ok(()),
                (None, Some(e)) => Err(e),
                (None, None) => Err(ErrorBody {
                    code: -1,
                    message: format!("neither rpc nor error in {text}"),
                    context: Default::default(),
                }),
            };
            return Ok((text, answer));
        }
        // A push (no cid) or a stale answer: not ours.
    }
}

/// The payload text of an `rpc` answer's `text` (empty when it carries none).
pub fn payload(text: &str) -> Result<String, BoxError> {
    let env: Envelope = serde_json::from_str(text)?;
    Ok(env.rpc.map(|r| r.payload).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let payload = json_string("{\"character_id\":\"x\"}");
        let frame = rpc_frame(7, "echo", &payload);
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["cid"], "7");
        assert_eq!(v["rpc"]["id"], "echo");
        assert_eq!(v["rpc"]["payload"], "{\"character_id\":\"x\"}");
    }
}
