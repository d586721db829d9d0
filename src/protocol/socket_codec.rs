//! The realtime socket's two wire formats behind one interface: Nakama's envelope as JSON in
//! text frames (`/ws`, `/ws?format=json`) or as protobuf in binary frames
//! (`/ws?format=protobuf`). Both decode into the same [`ClientEnvelope`] and encode the same
//! [`ServerMessage`], so the socket's logic never looks at the format.

use prost::bytes::Bytes;

use super::client::{self, ClientEnvelope, DecodeError, RealtimeError, ServerMessage};
use super::protobuf;

/// How one socket's frames are encoded; chosen by `format` when it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SocketCodec {
    #[default]
    Json,
    Protobuf,
}

/// One encoded server message, ready for the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Bytes),
}

impl Frame {
    /// Its size in bytes (what the outbound queue's byte bound counts).
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Binary(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SocketCodec {
    /// The codec a connect's `format` asks for: absent, empty or `json` (any case) is JSON,
    /// `protobuf` is protobuf, anything else is refused with the reason.
    pub fn from_format(format: Option<&str>) -> Result<SocketCodec, String> {
        match format.unwrap_or_default() {
            "" => Ok(SocketCodec::Json),
            f if f.eq_ignore_ascii_case("json") => Ok(SocketCodec::Json),
            f if f.eq_ignore_ascii_case("protobuf") => Ok(SocketCodec::Protobuf),
            f => {
                let shown: String = f.chars().take(32).collect();
                Err(format!(
                    "Invalid format parameter `{shown}`: use format=json or format=protobuf."
                ))
            }
        }
    }

    /// Decodes a text frame. On the protobuf socket its bytes are read as protobuf, as Nakama
    /// does (a JSON text there is not an envelope and is refused).
    pub fn decode_text(self, text: &str) -> Result<ClientEnvelope, DecodeError> {
        match self {
            SocketCodec::Json => client::decode_envelope(text),
            SocketCodec::Protobuf => protobuf::decode_envelope(text.as_bytes()),
        }
    }

    /// Decodes a binary frame. The JSON socket accepts UTF-8 JSON in one.
    pub fn decode_binary(self, bytes: &[u8]) -> Result<ClientEnvelope, DecodeError> {
        match self {
            SocketCodec::Json => match std::str::from_utf8(bytes) {
                Ok(text) => client::decode_envelope(text),
                Err(_) => Err(DecodeError {
                    cid: None,
                    code: client::realtime_code::UNRECOGNIZED_PAYLOAD,
                    message: "Unrecognized message: frames must hold UTF-8 JSON.".into(),
                }),
            },
            SocketCodec::Protobuf => protobuf::decode_envelope(bytes),
        }
    }

    /// Encodes a server message; `cid` is left out when None or empty (pushes have none).
    pub fn encode(self, cid: Option<&str>, message: &ServerMessage<'_>) -> Frame {
        let cid = cid.filter(|c| !c.is_empty());
        match self {
            SocketCodec::Json => Frame::Text(client::encode_envelope(cid, message)),
            SocketCodec::Protobuf => {
                Frame::Binary(Bytes::from(protobuf::encode_envelope(cid, message)))
            }
        }
    }

    /// Shorthand for an error envelope.
    pub fn encode_error(self, cid: Option<&str>, code: i32, message: impl Into<String>) -> Frame {
        self.encode(
            cid,
            &ServerMessage::Error(RealtimeError {
                code,
                message: message.into(),
                context: Default::default(),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::client::{realtime_code, ClientMessage, EmptyObject};

    #[test]
    fn formats() {
        assert_eq!(SocketCodec::from_format(None), Ok(SocketCodec::Json));
        assert_eq!(SocketCodec::from_format(Some("")), Ok(SocketCodec::Json));
        assert_eq!(
            SocketCodec::from_format(Some("JSON")),
            Ok(SocketCodec::Json)
        );
        assert_eq!(
            SocketCodec::from_format(Some("protobuf")),
            Ok(SocketCodec::Protobuf)
        );
        let e = SocketCodec::from_format(Some("xml")).unwrap_err();
        assert!(e.contains("`xml`") && e.contains("format=protobuf"), "{e}");
    }

    #[test]
    fn both_codecs_decode_to_the_same_envelope() {
        let json = SocketCodec::Json
            .decode_text(r#"{"cid":"1","ping":{}}"#)
            .unwrap();
        let pb = SocketCodec::Protobuf
            .decode_binary(&[0x0a, 0x01, b'1', 0x82, 0x02, 0x00])
            .unwrap();
        assert_eq!(json, pb);
        assert_eq!(pb.message, ClientMessage::Ping);
        let binary_json = SocketCodec::Json
            .decode_binary(br#"{"cid":"1","ping":{}}"#)
            .unwrap();
        assert_eq!(binary_json, json);
        let e = SocketCodec::Json.decode_binary(&[0xff, 0xfe]).unwrap_err();
        assert_eq!(e.code, realtime_code::UNRECOGNIZED_PAYLOAD);
    }

    #[test]
    fn frames_follow_the_codec() {
        let pong = ServerMessage::Pong(EmptyObject {});
        assert_eq!(
            SocketCodec::Json.encode(Some(""), &pong),
            Frame::Text(r#"{"pong":{}}"#.into())
        );
        let frame = SocketCodec::Protobuf.encode(Some("7"), &pong);
        assert_eq!(
            frame,
            Frame::Binary(Bytes::from_static(&[0x0a, 0x01, b'7', 0x8a, 0x02, 0x00]))
        );
        assert_eq!(frame.len(), 6);
        let e = SocketCodec::Protobuf.encode_error(None, 3, "bad");
        assert!(matches!(e, Frame::Binary(_)));
    }
}
