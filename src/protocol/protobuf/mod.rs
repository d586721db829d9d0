//! Nakama's realtime envelope in protobuf: what `/ws?format=protobuf` reads and writes.
//!
//! The messages are those of `realtime.proto` and `api.proto` beside this file (Nakama's names
//! and field numbers, only what serai serves), as prost types in [`messages`]. A frame is
//! decoded once, by [`decode_envelope`], into the same [`ClientEnvelope`] the JSON socket
//! produces, and answers are encoded from the same [`ServerMessage`]: the socket's logic is
//! shared, only the bytes differ. A frame that is not an envelope, or carries a message serai
//! does not serve, becomes a [`DecodeError`] with Nakama's realtime code, never a panic.

pub mod messages;

use prost::Message as _;

use self::messages::{envelope, Envelope};
use super::client::{
    realtime_code, ClientEnvelope, ClientMessage, DecodeError, Notification, RpcRequest,
    ServerMessage,
};

/// The names of Nakama's envelope fields by field number (`rtapi.Envelope`, 1 to 51), to name
/// a message serai does not serve in the error that refuses it.
const NAKAMA_ENVELOPE_FIELDS: [&str; 52] = [
    "",
    "cid",
    "channel",
    "channel_join",
    "channel_leave",
    "channel_message",
    "channel_message_ack",
    "channel_message_send",
    "channel_message_update",
    "channel_message_remove",
    "channel_presence_event",
    "error",
    "match",
    "match_create",
    "match_data",
    "match_data_send",
    "match_join",
    "match_leave",
    "match_presence_event",
    "matchmaker_add",
    "matchmaker_matched",
    "matchmaker_remove",
    "matchmaker_ticket",
    "notifications",
    "rpc",
    "status",
    "status_follow",
    "status_presence_event",
    "status_unfollow",
    "status_update",
    "stream_data",
    "stream_presence_event",
    "ping",
    "pong",
    "party",
    "party_create",
    "party_join",
    "party_leave",
    "party_promote",
    "party_leader",
    "party_accept",
    "party_remove",
    "party_close",
    "party_join_request_list",
    "party_join_request",
    "party_matchmaker_add",
    "party_matchmaker_remove",
    "party_matchmaker_ticket",
    "party_data",
    "party_data_send",
    "party_presence_event",
    "party_update",
];

/// Decodes one binary frame into the typed envelope the socket serves.
pub fn decode_envelope(bytes: &[u8]) -> Result<ClientEnvelope, DecodeError> {
    let wire = Envelope::decode(bytes).map_err(|e| DecodeError {
        cid: None,
        code: realtime_code::UNRECOGNIZED_PAYLOAD,
        message: format!("Unrecognized message: not a protobuf realtime Envelope ({e})."),
    })?;
    let cid = Some(wire.cid).filter(|c| !c.is_empty());
    let refuse =
        |cid: Option<String>, code: i32, message: String| DecodeError { cid, code, message };
    let message = match wire.message {
        Some(envelope::Message::Rpc(rpc)) => ClientMessage::Rpc(RpcRequest {
            id: rpc.id,
            payload: Some(rpc.payload).filter(|p| !p.is_empty()),
            http_key: Some(rpc.http_key).filter(|k| !k.is_empty()),
        }),
        Some(envelope::Message::Ping(_)) => ClientMessage::Ping,
        Some(envelope::Message::Pong(_)) => ClientMessage::Pong,
        Some(envelope::Message::Error(_)) => {
            return Err(refuse(
                cid,
                realtime_code::UNRECOGNIZED_PAYLOAD,
                "Unrecognized message: `error` is sent by the server, not by clients.".into(),
            ))
        }
        Some(envelope::Message::Notifications(_)) => {
            return Err(refuse(
                cid,
                realtime_code::UNRECOGNIZED_PAYLOAD,
                "Unrecognized message: `notifications` is sent by the server, not by clients."
                    .into(),
            ))
        }
        None => {
            return Err(match first_unknown_field(bytes) {
                Some(field) => refuse(cid, realtime_code::UNRECOGNIZED_PAYLOAD, unknown(field)),
                None => refuse(
                    cid,
                    realtime_code::MISSING_PAYLOAD,
                    "Missing message: the envelope carries no message besides `cid`.".into(),
                ),
            })
        }
    };
    Ok(ClientEnvelope { cid, message })
}

fn unknown(field: u32) -> String {
    match NAKAMA_ENVELOPE_FIELDS.get(field as usize) {
        Some(name) => format!("Unrecognized message: `{name}` is not supported by this server."),
        None => format!("Unrecognized message: unknown envelope field {field}."),
    }
}

/// The number of the first top-level field other than `cid` (only called on a frame that
/// decoded, so the walk cannot fail; if it did, the frame just counts as carrying nothing).
/// prost's own field walker is used so the rules are exactly those of the decode above.
fn first_unknown_field(mut buf: &[u8]) -> Option<u32> {
    use prost::encoding::{decode_key, skip_field, DecodeContext};
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).ok()?;
        if tag != 1 {
            return Some(tag);
        }
        skip_field(wire_type, tag, &mut buf, DecodeContext::default()).ok()?;
    }
    None
}

/// Encodes a server envelope; `cid` is left empty when None (pushes have none).
pub fn encode_envelope(cid: Option<&str>, message: &ServerMessage<'_>) -> Vec<u8> {
    let message = match message {
        ServerMessage::Rpc(reply) => envelope::Message::Rpc(messages::Rpc {
            id: reply.id.to_string(),
            payload: reply.payload.to_string(),
            http_key: String::new(),
        }),
        ServerMessage::Pong(_) => envelope::Message::Pong(messages::Pong {}),
        ServerMessage::Error(e) => envelope::Message::Error(messages::Error {
            code: e.code,
            message: e.message.clone(),
            context: e.context.clone(),
        }),
        ServerMessage::Notifications(list) => {
            envelope::Message::Notifications(messages::Notifications {
                notifications: list.notifications.iter().map(notification).collect(),
            })
        }
    };
    Envelope {
        cid: cid.unwrap_or_default().to_string(),
        message: Some(message),
    }
    .encode_to_vec()
}

fn notification(n: &Notification) -> messages::Notification {
    messages::Notification {
        id: n.id.clone(),
        subject: n.subject.clone(),
        content: n.content.clone(),
        code: n.code,
        sender_id: n.sender_id.clone(),
        create_time: Some(prost_types::Timestamp {
            seconds: n.create_time.timestamp(),
            // Below 10^9 by chrono's contract (a leap second's 1_000_000_000+ is folded in).
            nanos: i32::try_from(n.create_time.timestamp_subsec_nanos() % 1_000_000_000)
                .unwrap_or(0),
        }),
        persistent: n.persistent,
    }
}

#[cfg(test)]
mod tests;
