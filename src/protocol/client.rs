//! Nakama's client-facing JSON shapes, for HTTP and the realtime socket.
//!
//! Conventions (Nakama 3.x, protobuf JSON): snake_case field names, zero values left out,
//! int64 values as strings, timestamps as RFC 3339 strings. Socket frames are decoded exactly
//! once, at the edge, by [`decode_envelope`] into a typed [`ClientEnvelope`]; anything that
//! does not fit (unknown keys, wrong types, no or several messages) becomes a [`DecodeError`]
//! carrying the realtime error code and, when it could be read, the request's `cid`.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

pub(super) fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// Serializes a timestamp the way protobuf JSON does: RFC 3339, UTC, `Z` suffix.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn ser_timestamp<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&timestamp(t))
}

pub(super) fn ser_opt_timestamp<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&timestamp(t)),
        None => s.serialize_none(),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP requests and answers
// ---------------------------------------------------------------------------------------------

/// Body of `POST /v2/account/authenticate/{device,custom}`: `{"id": "...", "vars": {...}}`.
/// Unknown fields are ignored (as grpc-gateway does).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthenticateBody {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub vars: Option<HashMap<String, String>>,
}

/// Body of `POST /v2/account/session/refresh`: `{"token": "<refresh token>", "vars": {...}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SessionRefreshBody {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub vars: Option<HashMap<String, String>>,
}

/// Answer of authenticate and refresh: `created` is left out when false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    #[serde(default, skip_serializing_if = "is_false")]
    pub created: bool,
    pub token: String,
    pub refresh_token: String,
}

pub use super::account::{Account, AccountDevice, User};

/// Answer of `POST /v2/rpc/{id}` (without `unwrap`).
#[derive(Debug, Clone, Serialize)]
pub struct RpcResponse<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub payload: &'a str,
}

// ---------------------------------------------------------------------------------------------
// Notifications (pushed on the socket)
// ---------------------------------------------------------------------------------------------

/// Nakama's `Notification`. `content` is a JSON document in a string; nakama-js parses it.
/// (Deserialize is for relaying a push between nodes.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Notification {
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub content: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub code: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sender_id: String,
    #[serde(serialize_with = "ser_timestamp")]
    pub create_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "is_false")]
    pub persistent: bool,
}

impl Notification {
    /// A system notification (no sender, not persistent) with a fresh id, stamped now.
    /// `content` is serialized to the JSON string Nakama carries.
    pub fn new(subject: impl Into<String>, code: i32, content: &impl Serialize) -> Notification {
        Notification {
            id: uuid::Uuid::new_v4().to_string(),
            subject: subject.into(),
            content: serde_json::to_string(content).unwrap_or_else(|_| "{}".to_string()),
            code,
            sender_id: String::new(),
            create_time: Utc::now(),
            persistent: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Realtime socket: client → server
// ---------------------------------------------------------------------------------------------

/// Nakama's realtime error codes (`rtapi.Error.Code`).
pub mod realtime_code {
    pub const RUNTIME_EXCEPTION: i32 = 0;
    pub const UNRECOGNIZED_PAYLOAD: i32 = 1;
    pub const MISSING_PAYLOAD: i32 = 2;
    pub const BAD_INPUT: i32 = 3;
    pub const MATCH_NOT_FOUND: i32 = 4;
    pub const MATCH_JOIN_REJECTED: i32 = 5;
    pub const RUNTIME_FUNCTION_NOT_FOUND: i32 = 6;
    pub const RUNTIME_FUNCTION_EXCEPTION: i32 = 7;
}

/// A decoded client frame: its `cid` (None when absent or empty) and its one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEnvelope {
    pub cid: Option<String>,
    pub message: ClientMessage,
}

/// The messages serai's socket understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Rpc(RpcRequest),
    Ping,
    Pong,
}

/// `{"rpc": {"id": "...", "payload": "...", "http_key": "..."}}`. nakama-js may send
/// `http_key`; on the socket the caller is the socket's user, so it is accepted and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcRequest {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default)]
    pub http_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// The typed form of an envelope: every known key, nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope {
    #[serde(default)]
    cid: Option<String>,
    #[serde(default)]
    rpc: Option<RpcRequest>,
    #[serde(default)]
    ping: Option<Empty>,
    #[serde(default)]
    pong: Option<Empty>,
}

/// Keys of Nakama's realtime envelope that serai does not serve (answered "not supported"
/// rather than "unrecognized", so a client developer knows what happened).
const NAKAMA_ONLY_MESSAGES: &[&str] = &[
    "channel_join",
    "channel_leave",
    "channel_message_send",
    "channel_message_update",
    "channel_message_remove",
    "match_create",
    "match_data_send",
    "match_join",
    "match_leave",
    "matchmaker_add",
    "matchmaker_remove",
    "party_create",
    "party_join",
    "party_leave",
    "party_promote",
    "party_accept",
    "party_remove",
    "party_close",
    "party_join_request_list",
    "party_matchmaker_add",
    "party_matchmaker_remove",
    "party_data_send",
    "status_follow",
    "status_unfollow",
    "status_update",
];

/// Why a frame was refused: the realtime code, a message, and the cid when it was readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub cid: Option<String>,
    pub code: i32,
    pub message: String,
}

fn non_empty(cid: Option<String>) -> Option<String> {
    cid.filter(|c| !c.is_empty())
}

/// Decodes one text frame. The typed parse is the only work on the normal path; the slower
/// diagnosis (to recover the cid and name the problem) runs only when it fails.
pub fn decode_envelope(text: &str) -> Result<ClientEnvelope, DecodeError> {
    match serde_json::from_str::<WireEnvelope>(text) {
        Ok(wire) => {
            let cid = non_empty(wire.cid);
            let mut messages = Vec::with_capacity(1);
            if let Some(rpc) = wire.rpc {
                messages.push(ClientMessage::Rpc(rpc));
            }
            if wire.ping.is_some() {
                messages.push(ClientMessage::Ping);
            }
            if wire.pong.is_some() {
                messages.push(ClientMessage::Pong);
            }
            match messages.len() {
                1 => Ok(ClientEnvelope {
                    cid,
                    message: messages.pop().expect("one message"),
                }),
                0 => Err(DecodeError {
                    cid,
                    code: realtime_code::MISSING_PAYLOAD,
                    message: "Missing message: the envelope carries no message besides `cid`."
                        .into(),
                }),
                _ => Err(DecodeError {
                    cid,
                    code: realtime_code::UNRECOGNIZED_PAYLOAD,
                    message: "An envelope must carry exactly one message.".into(),
                }),
            }
        }
        Err(err) => Err(diagnose(text, err)),
    }
}

fn diagnose(text: &str, err: serde_json::Error) -> DecodeError {
    let object = match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
        Ok(object) => object,
        Err(_) => {
            return DecodeError {
                cid: None,
                code: realtime_code::UNRECOGNIZED_PAYLOAD,
                message: format!("Unrecognized message: not a JSON object ({err})."),
            }
        }
    };
    let cid = non_empty(
        object
            .get("cid")
            .and_then(|c| c.as_str())
            .map(str::to_string),
    );
    if let Some(key) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "cid" | "rpc" | "ping" | "pong"))
    {
        let message = if NAKAMA_ONLY_MESSAGES.contains(&key.as_str()) {
            format!("Unrecognized message: `{key}` is not supported by this server.")
        } else {
            let shown: String = key.chars().take(64).collect();
            format!("Unrecognized message: unknown key `{shown}`.")
        };
        return DecodeError {
            cid,
            code: realtime_code::UNRECOGNIZED_PAYLOAD,
            message,
        };
    }
    DecodeError {
        cid,
        code: realtime_code::BAD_INPUT,
        message: format!("Bad input: {err}."),
    }
}

// ---------------------------------------------------------------------------------------------
// Realtime socket: server → client
// ---------------------------------------------------------------------------------------------

/// Nakama's realtime `Error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RealtimeError {
    #[serde(skip_serializing_if = "is_zero")]
    pub code: i32,
    pub message: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub context: HashMap<String, String>,
}

/// The RPC answer on the socket: `{"id": "...", "payload": "..."}`.
#[derive(Debug, Clone, Serialize)]
pub struct RpcReply<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub payload: &'a str,
}

/// `{"notifications": [...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationList<'a> {
    pub notifications: &'a [Notification],
}

#[derive(Debug, Clone, Serialize)]
pub struct EmptyObject {}

/// One message the server sends; serialized as the envelope's single key.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Rpc(RpcReply<'a>),
    Pong(EmptyObject),
    Error(RealtimeError),
    Notifications(NotificationList<'a>),
}

#[derive(Serialize)]
struct ServerEnvelope<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cid: Option<&'a str>,
    #[serde(flatten)]
    message: &'a ServerMessage<'a>,
}

/// Encodes a server envelope; `cid` is left out when None or empty (pushes have none).
pub fn encode_envelope(cid: Option<&str>, message: &ServerMessage<'_>) -> String {
    let cid = cid.filter(|c| !c.is_empty());
    serde_json::to_string(&ServerEnvelope { cid, message }).unwrap_or_else(|e| {
        // Only a non-string map key could fail here, and none of these types has one.
        tracing::error!(error = %e, "encoding a server envelope failed");
        String::from(r#"{"error":{"message":"Internal server error."}}"#)
    })
}

impl Default for Notification {
    fn default() -> Self {
        Notification {
            id: String::new(),
            subject: String::new(),
            content: String::new(),
            code: 0,
            sender_id: String::new(),
            create_time: Utc::now(),
            persistent: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    fn encode_error(cid: Option<&str>, code: i32, message: &str) -> String {
        let error = RealtimeError {
            code,
            message: message.into(),
            context: HashMap::new(),
        };
        encode_envelope(cid, &ServerMessage::Error(error))
    }

    #[test]
    fn decodes_rpc_ping_pong() {
        let env =
            decode_envelope(r#"{"cid":"5","rpc":{"id":"Echo","payload":"{\"a\":1}"}}"#).unwrap();
        assert_eq!(env.cid.as_deref(), Some("5"));
        match env.message {
            ClientMessage::Rpc(r) => {
                assert_eq!(r.id, "Echo");
                assert_eq!(r.payload.as_deref(), Some(r#"{"a":1}"#));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            decode_envelope(r#"{"cid":"7","ping":{}}"#).unwrap().message,
            ClientMessage::Ping
        );
        assert_eq!(
            decode_envelope(r#"{"pong":{}}"#).unwrap(),
            ClientEnvelope {
                cid: None,
                message: ClientMessage::Pong
            }
        );
        // nakama-js sends http_key inside rpc when given; an empty cid counts as none.
        let env = decode_envelope(r#"{"cid":"","rpc":{"id":"x","http_key":"k"}}"#).unwrap();
        assert_eq!(env.cid, None);
    }

    #[test]
    fn refuses_leftovers_with_the_right_code() {
        let e = decode_envelope(r#"{"cid":"3","channel_join":{"target":"x"}}"#).unwrap_err();
        assert_eq!(
            (e.cid.as_deref(), e.code),
            (Some("3"), realtime_code::UNRECOGNIZED_PAYLOAD)
        );
        assert!(e.message.contains("channel_join"), "{}", e.message);

        let e = decode_envelope(r#"{"cid":"4","bogus":1}"#).unwrap_err();
        assert_eq!(
            (e.cid.as_deref(), e.code),
            (Some("4"), realtime_code::UNRECOGNIZED_PAYLOAD)
        );

        let e = decode_envelope(r#"{"cid":"8"}"#).unwrap_err();
        assert_eq!(
            (e.cid.as_deref(), e.code),
            (Some("8"), realtime_code::MISSING_PAYLOAD)
        );

        let e = decode_envelope(r#"{"cid":"9","ping":{},"pong":{}}"#).unwrap_err();
        assert_eq!(e.code, realtime_code::UNRECOGNIZED_PAYLOAD);

        let e = decode_envelope(r#"{"cid":"10","rpc":{"id":5}}"#).unwrap_err();
        assert_eq!(
            (e.cid.as_deref(), e.code),
            (Some("10"), realtime_code::BAD_INPUT)
        );

        let e = decode_envelope(r#"{"cid":"11","rpc":{"id":"x","extra":true}}"#).unwrap_err();
        assert_eq!(
            (e.cid.as_deref(), e.code),
            (Some("11"), realtime_code::BAD_INPUT)
        );

        for junk in ["", "nope", "[1,2]", "\"str\"", "{\"cid\":"] {
            let e = decode_envelope(junk).unwrap_err();
            assert_eq!(
                (e.cid, e.code),
                (None, realtime_code::UNRECOGNIZED_PAYLOAD),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn encodes_nakama_shapes() {
        let rpc = encode_envelope(
            Some("5"),
            &ServerMessage::Rpc(RpcReply {
                id: "echo",
                payload: "{}",
            }),
        );
        assert_eq!(
            parse(&rpc),
            json!({"cid":"5","rpc":{"id":"echo","payload":"{}"}})
        );
        let pong = encode_envelope(Some("7"), &ServerMessage::Pong(EmptyObject {}));
        assert_eq!(parse(&pong), json!({"cid":"7","pong":{}}));
        let err = encode_error(
            Some("2"),
            realtime_code::RUNTIME_FUNCTION_NOT_FOUND,
            "RPC function not found",
        );
        assert_eq!(
            parse(&err),
            json!({"cid":"2","error":{"code":6,"message":"RPC function not found"}})
        );
        let err0 = encode_error(None, realtime_code::RUNTIME_EXCEPTION, "boom");
        assert_eq!(parse(&err0), json!({"error":{"message":"boom"}}));

        let mut n = Notification::new("arrived", 101, &json!({"node":"port"}));
        n.create_time = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let push = encode_envelope(
            None,
            &ServerMessage::Notifications(NotificationList {
                notifications: &[n.clone()],
            }),
        );
        let v = parse(&push);
        assert!(v.get("cid").is_none());
        let first = &v["notifications"]["notifications"][0];
        assert_eq!(first["subject"], "arrived");
        assert_eq!(first["code"], 101);
        assert_eq!(first["create_time"], "2026-01-02T03:04:05Z");
        assert_eq!(
            parse(first["content"].as_str().unwrap()),
            json!({"node":"port"})
        );
        assert!(first.get("persistent").is_none() && first.get("sender_id").is_none());
        assert_eq!(first["id"], n.id.as_str());
    }

    #[test]
    fn session_omits_false_created() {
        let s = SessionResponse {
            created: false,
            token: "a".into(),
            refresh_token: "b".into(),
        };
        assert_eq!(
            parse(&serde_json::to_string(&s).unwrap()),
            json!({"token":"a","refresh_token":"b"})
        );
    }
}
