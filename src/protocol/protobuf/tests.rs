use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use prost::Message as _;

use super::messages::{self, envelope, Envelope};
use super::*;
use crate::protocol::client::{EmptyObject, NotificationList, RealtimeError, RpcReply};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// The golden bytes below are worked out by hand from realtime.proto (key = number << 3 | wire
// type, as varints), not produced by the code under test.

#[test]
fn decodes_ping_pong_and_rpc_from_nakama_bytes() {
    // cid "1" (0a 01 31), ping = 32 (82 02) with an empty body (00).
    let env = decode_envelope(&unhex("0a0131 8202 00")).unwrap();
    assert_eq!(
        env,
        ClientEnvelope {
            cid: Some("1".into()),
            message: ClientMessage::Ping
        }
    );
    // pong = 33 (8a 02), no cid.
    let env = decode_envelope(&unhex("8a02 00")).unwrap();
    assert_eq!((env.cid, env.message), (None, ClientMessage::Pong));
    // cid "2", rpc = 24 (c2 01) { id "echo" (0a 04 ...), payload "{}" (12 02 7b 7d) }.
    let env = decode_envelope(&unhex("0a0132 c201 0a 0a04 6563686f 1202 7b7d")).unwrap();
    assert_eq!(env.cid.as_deref(), Some("2"));
    assert_eq!(
        env.message,
        ClientMessage::Rpc(RpcRequest {
            id: "echo".into(),
            payload: Some("{}".into()),
            http_key: None,
        })
    );
    // An empty payload and http_key read as absent, as in the JSON socket.
    let env = decode_envelope(&unhex("c201 06 0a04 6563686f")).unwrap();
    assert_eq!(
        env.message,
        ClientMessage::Rpc(RpcRequest {
            id: "echo".into(),
            payload: None,
            http_key: None,
        })
    );
}

#[test]
fn encodes_nakama_bytes() {
    let pong = encode_envelope(Some("7"), &ServerMessage::Pong(EmptyObject {}));
    assert_eq!(hex(&pong), "0a01378a0200");
    let error = encode_envelope(
        Some("4"),
        &ServerMessage::Error(RealtimeError {
            code: realtime_code::RUNTIME_FUNCTION_NOT_FOUND,
            message: "x".into(),
            context: HashMap::new(),
        }),
    );
    // error = 11 (5a), 5 bytes: code 6 (08 06), message "x" (12 01 78).
    assert_eq!(hex(&error), "0a01345a050806120178");
    let rpc = encode_envelope(
        None,
        &ServerMessage::Rpc(RpcReply {
            id: "echo",
            payload: "{}",
        }),
    );
    assert_eq!(hex(&rpc), "c2010a0a046563686f12027b7d");
}

#[test]
fn notifications_round_trip_with_timestamps() {
    let mut n = Notification::new("arrived", 101, &serde_json::json!({"node": "port"}));
    n.create_time = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.25Z")
        .unwrap()
        .with_timezone(&Utc);
    n.persistent = true;
    let bytes = encode_envelope(
        None,
        &ServerMessage::Notifications(NotificationList {
            notifications: std::slice::from_ref(&n),
        }),
    );
    // notifications = 23 (ba 01) first, with no cid field at all.
    assert_eq!(&bytes[..2], &[0xba, 0x01]);
    let wire = Envelope::decode(bytes.as_slice()).unwrap();
    assert_eq!(wire.cid, "");
    let Some(envelope::Message::Notifications(list)) = wire.message else {
        panic!("{wire:?}");
    };
    let got = &list.notifications[0];
    assert_eq!(
        (
            got.id.as_str(),
            got.subject.as_str(),
            got.code,
            got.persistent
        ),
        (n.id.as_str(), "arrived", 101, true)
    );
    assert_eq!(got.content, r#"{"node":"port"}"#);
    let ts = got.create_time.as_ref().unwrap();
    assert_eq!((ts.seconds, ts.nanos), (1_767_323_045, 250_000_000));
}

#[test]
fn refuses_what_it_does_not_serve_with_the_cid() {
    // cid "5", channel_join = 3 (1a) { target "x" }: named, with Nakama's "unrecognized" code.
    let e = decode_envelope(&unhex("0a0135 1a03 0a0178")).unwrap_err();
    assert_eq!(
        (e.cid.as_deref(), e.code),
        (Some("5"), realtime_code::UNRECOGNIZED_PAYLOAD)
    );
    assert!(e.message.contains("`channel_join`"), "{}", e.message);
    // party_update = 51 (9a 03), the last of Nakama's.
    let e = decode_envelope(&unhex("9a03 00")).unwrap_err();
    assert!(e.message.contains("`party_update`"), "{}", e.message);
    // A field Nakama does not have: 99 as a varint (98 06 01).
    let e = decode_envelope(&unhex("0a0136 9806 01")).unwrap_err();
    assert_eq!(
        (e.cid.as_deref(), e.code),
        (Some("6"), realtime_code::UNRECOGNIZED_PAYLOAD)
    );
    assert!(e.message.contains("field 99"), "{}", e.message);
    // Messages only the server sends.
    for (frame, name) in [
        ("0a0137 5a00", "`error`"),
        ("0a0137 ba0100", "`notifications`"),
    ] {
        let e = decode_envelope(&unhex(frame)).unwrap_err();
        assert_eq!(e.cid.as_deref(), Some("7"));
        assert!(e.message.contains(name), "{}", e.message);
    }
    // Nothing but a cid, or nothing at all.
    for frame in ["0a0138", ""] {
        let e = decode_envelope(&unhex(frame)).unwrap_err();
        assert_eq!(e.code, realtime_code::MISSING_PAYLOAD, "{frame}");
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for junk in [
        "ffffffffffffffffffffff", // a varint that never ends
        "0a05 31",                // cid longer than the frame
        "0a01 ff",                // cid not UTF-8
        "c201 05 0a",             // rpc body cut short
        "c001 01",                // rpc (24) as a varint: wrong wire type
        "0f",                     // wire type 7 does not exist
        "7b22636964223a2231227d", // {"cid":"1"}: JSON on the protobuf socket
    ] {
        let e = decode_envelope(&unhex(junk)).unwrap_err();
        assert_eq!(
            (e.cid, e.code),
            (None, realtime_code::UNRECOGNIZED_PAYLOAD),
            "{junk}: {}",
            e.message
        );
        assert!(
            e.message.starts_with("Unrecognized message"),
            "{}",
            e.message
        );
    }
}

proptest! {
    #[test]
    fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        match decode_envelope(&bytes) {
            Ok(env) => prop_assert!(env.cid.as_deref() != Some("")),
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The hand-written prost types against the .proto files beside them
// ---------------------------------------------------------------------------------------------

/// Field numbers by message name, read from a .proto file's `type name = N;` lines.
fn proto_fields(proto: &str) -> HashMap<String, BTreeSet<u32>> {
    let mut out: HashMap<String, BTreeSet<u32>> = HashMap::new();
    let mut current = None;
    for line in proto.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("message ") {
            let name = rest.trim_end_matches(['{', '}', ' ']).to_string();
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(message), Some((_, number))) = (&current, line.split_once(" = ")) {
            if line.starts_with("//") {
                continue;
            }
            let number = number.trim_end_matches(';').trim().parse().unwrap();
            out.get_mut(message).unwrap().insert(number);
        }
    }
    out
}

/// The top-level field numbers of an encoded message.
fn encoded_fields(message: &impl prost::Message) -> BTreeSet<u32> {
    use prost::encoding::{decode_key, skip_field, DecodeContext};
    let bytes = message.encode_to_vec();
    let mut buf = bytes.as_slice();
    let mut out = BTreeSet::new();
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).unwrap();
        skip_field(wire_type, tag, &mut buf, DecodeContext::default()).unwrap();
        out.insert(tag);
    }
    out
}

#[test]
fn the_prost_types_match_the_proto_files() {
    let mut proto = proto_fields(include_str!("realtime.proto"));
    proto.extend(proto_fields(include_str!("api.proto")));
    let timestamp = prost_types::Timestamp {
        seconds: 1,
        nanos: 1,
    };
    let mut envelope_fields = BTreeSet::new();
    for message in [
        envelope::Message::Error(messages::Error::default()),
        envelope::Message::Notifications(messages::Notifications::default()),
        envelope::Message::Rpc(messages::Rpc::default()),
        envelope::Message::Ping(messages::Ping {}),
        envelope::Message::Pong(messages::Pong {}),
    ] {
        envelope_fields.extend(encoded_fields(&Envelope {
            cid: "c".into(),
            message: Some(message),
        }));
    }
    let full: Vec<(&str, BTreeSet<u32>)> = vec![
        ("Envelope", envelope_fields),
        (
            "Error",
            encoded_fields(&messages::Error {
                code: 1,
                message: "m".into(),
                context: HashMap::from([("k".into(), "v".into())]),
            }),
        ),
        (
            "Notifications",
            encoded_fields(&messages::Notifications {
                notifications: vec![messages::Notification::default()],
            }),
        ),
        (
            "Notification",
            encoded_fields(&messages::Notification {
                id: "i".into(),
                subject: "s".into(),
                content: "c".into(),
                code: 1,
                sender_id: "u".into(),
                create_time: Some(timestamp),
                persistent: true,
            }),
        ),
        (
            "Rpc",
            encoded_fields(&messages::Rpc {
                id: "i".into(),
                payload: "p".into(),
                http_key: "k".into(),
            }),
        ),
        ("Ping", encoded_fields(&messages::Ping {})),
        ("Pong", encoded_fields(&messages::Pong {})),
    ];
    assert_eq!(
        full.iter()
            .map(|(n, _)| n.to_string())
            .collect::<BTreeSet<_>>(),
        proto.keys().cloned().collect::<BTreeSet<_>>(),
        "every message of the .proto files has a prost type"
    );
    for (name, fields) in full {
        assert_eq!(fields, proto[name], "field numbers of {name}");
    }
    // The names in the diagnosis table are Nakama's for the fields serai serves.
    for (number, name) in [
        (11, "error"),
        (23, "notifications"),
        (24, "rpc"),
        (32, "ping"),
    ] {
        assert_eq!(NAKAMA_ENVELOPE_FIELDS[number], name);
    }
}
