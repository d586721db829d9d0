//! The peer wire: what nodes say to each other over the peer link (`routing::peer`).
//!
//! Every frame on the socket is a 4-byte big-endian length followed by that many bytes of
//! postcard: a [`Frame`] envelope carrying the protocol version and a [`FrameBody`]. This module
//! holds the wire types and the bounded codec only; sockets, the handshake and request
//! multiplexing live in `routing::peer`.
//!
//! Compatibility rule: the handshake variants ([`FrameBody::Hello`] … [`FrameBody::Ready`]) and
//! [`FrameBody::Close`] keep their position and shape in every protocol version, so two nodes of
//! different versions can always tell each other why they refuse to talk. Everything else may
//! change with [`PROTOCOL_VERSION`].

use serde::{Deserialize, Serialize};

use crate::request::Failure;

/// The version this build speaks; both sides of a link must speak the same one.
/// 2: forwards carry the caller's deadline; remote errors carry a `request::Failure`.
/// 3: channel requests ([`PeerRequest::Channel`]: leaderboard replication).
/// 4: forwards may carry the request id of the client request they serve
///    ([`PeerRequest::Traced`]), so the owner's log lines name it too.
pub const PROTOCOL_VERSION: u16 = 4;

/// The oldest version this build still speaks. Two nodes agree on the highest version both
/// speak (`routing::peer::handshake`), so a rolling update across one version bump keeps every
/// link up; what a newer version adds is left out on an older link
/// ([`PeerRequest::for_version`]).
pub const MIN_PROTOCOL_VERSION: u16 = 3;

/// Default cap on one frame's body (the bytes after the length prefix).
pub const MAX_FRAME: usize = 1024 * 1024;

/// Bytes of a handshake nonce.
pub const NONCE_LEN: usize = 32;

/// Bytes of the length prefix in front of every frame.
pub const LEN_PREFIX: usize = 4;

/// One message on a peer link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// The sender's protocol version.
    pub version: u16,
    pub body: FrameBody,
}

impl Frame {
    /// A frame of the current protocol version.
    pub fn new(body: FrameBody) -> Frame {
        Frame {
            version: PROTOCOL_VERSION,
            body,
        }
    }
}

/// What a frame carries. The first five variants are the handshake and never change shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FrameBody {
    /// Client → server, first frame: who is calling, with a fresh random nonce.
    Hello {
        version: u16,
        node_id: String,
        client_nonce: [u8; NONCE_LEN],
    },
    /// Server → client: the server's nonce and its proof that it knows the cluster secret.
    Challenge {
        version: u16,
        node_id: String,
        server_nonce: [u8; NONCE_LEN],
        server_mac: Vec<u8>,
    },
    /// Client → server: the client's proof that it knows the cluster secret.
    Proof { client_mac: Vec<u8> },
    /// Server → client: the link is authenticated; requests may flow.
    Ready,
    /// Either side: the link is being closed, and why.
    Close { reason: String },
    /// Client → server: a request, answered by a [`FrameBody::Response`] with the same id.
    Request { id: u64, body: PeerRequest },
    /// Server → client: the answer to request `id`.
    Response { id: u64, body: PeerResponse },
}

/// What one node asks another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// A direct membership probe.
    Ping {
        from: String,
        incarnation: u64,
        view_version: u64,
    },
    /// A message for an entity the receiver owns.
    Forward(Forward),
    /// A push (notification, battle event) for a user whose socket is on the receiver.
    Push {
        user_id: uuid::Uuid,
        payload: String,
    },
    /// A request on a named channel (not addressed to an entity: replication streams and
    /// their catch-up). `body` is opaque to the link; each channel versions its own encoding.
    Channel { channel: String, body: Vec<u8> },
    /// (Version 4.) A [`PeerRequest::Forward`] with the id of the client request it serves.
    Traced {
        request_id: String,
        forward: Forward,
    },
}

/// A message for an entity the receiver owns. `body` is a postcard-encoded actor message,
/// opaque to the link; `hop` counts forwards so a loop ends. (Inside
/// [`PeerRequest::Forward`] its bytes are those of version 3's struct variant.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forward {
    pub kind: String,
    pub message: String,
    pub key: Vec<u8>,
    pub hop: u8,
    /// The caller's absolute deadline (Unix milliseconds): the owner does not start the
    /// message after it.
    pub deadline_ms: u64,
    pub body: Vec<u8>,
}

impl PeerRequest {
    /// The request as a link of protocol `version` can carry it: a traced forward loses its
    /// request id on a version 3 link (the owner's log lines then lack it; nothing else
    /// changes).
    pub fn for_version(self, version: u16) -> PeerRequest {
        match self {
            PeerRequest::Traced { forward, .. } if version < 4 => PeerRequest::Forward(forward),
            other => other,
        }
    }
}

/// The answer to a [`PeerRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PeerResponse {
    Pong {
        node_id: String,
        incarnation: u64,
        view_version: u64,
    },
    /// The postcard-encoded reply of the actor, or why there is none.
    Forwarded(Result<Vec<u8>, RemoteError>),
    Pushed {
        delivered: u32,
    },
    Error(RemoteError),
    /// The answer to a [`PeerRequest::Channel`].
    Channel(Result<Vec<u8>, RemoteError>),
}

/// Why the remote node could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteError {
    /// The receiver does not own the key under its view `view_version`: not run, and the
    /// sender may ask the owner of a newer view.
    #[error("not the owner under view {view_version}")]
    NotOwner { view_version: u64 },
    /// Refused before running, or failed after it may have run, as the failure says.
    #[error("{0}")]
    Failed(Failure),
}

impl RemoteError {
    pub fn not_run(why: impl Into<String>) -> RemoteError {
        RemoteError::Failed(Failure::not_run(why))
    }

    pub fn may_have_run(why: impl Into<String>) -> RemoteError {
        RemoteError::Failed(Failure::may_have_run(why))
    }
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame is larger than the link's cap.
    #[error("frame of {size} bytes exceeds the {max} byte cap")]
    TooLarge { size: usize, max: usize },
    /// The bytes are not a postcard [`Frame`] (truncated, garbage, trailing bytes).
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Encodes `frame` as its length prefix followed by its postcard body, refusing a body larger
/// than `max`.
pub fn encode(frame: &Frame, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = postcard::to_extend(frame, vec![0u8; LEN_PREFIX])
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    let size = out.len() - LEN_PREFIX;
    if size > max || size > u32::MAX as usize {
        return Err(FrameError::TooLarge { size, max });
    }
    out[..LEN_PREFIX].copy_from_slice(&(size as u32).to_be_bytes());
    Ok(out)
}

/// Reads a length prefix and checks it against `max`: the number of body bytes to read next.
pub fn body_len(prefix: [u8; LEN_PREFIX], max: usize) -> Result<usize, FrameError> {
    let size = u32::from_be_bytes(prefix) as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    if size == 0 {
        return Err(FrameError::Malformed("empty frame".into()));
    }
    Ok(size)
}

/// Decodes one frame body (the bytes after the length prefix). Every byte must belong to the
/// frame; never panics, whatever the input.
pub fn decode(body: &[u8]) -> Result<Frame, FrameError> {
    let (frame, rest) = postcard::take_from_bytes::<Frame>(body)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes after the frame",
            rest.len()
        )));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a whole frame from a buffer holding its length prefix and body.
    fn decode_prefixed(buf: &[u8], max: usize) -> Result<Frame, FrameError> {
        if buf.len() < LEN_PREFIX {
            return Err(FrameError::Malformed("truncated length prefix".into()));
        }
        let mut prefix = [0u8; LEN_PREFIX];
        prefix.copy_from_slice(&buf[..LEN_PREFIX]);
        let size = body_len(prefix, max)?;
        let body = &buf[LEN_PREFIX..];
        if body.len() != size {
            return Err(FrameError::Malformed(format!(
                "length prefix says {size} bytes, buffer holds {}",
                body.len()
            )));
        }
        decode(body)
    }
    use proptest::prelude::*;

    fn sample_forward() -> Forward {
        Forward {
            kind: "character".into(),
            message: "Trade".into(),
            key: vec![0, 1, 2, 255],
            hop: 1,
            deadline_ms: 1_700_000_000_000,
            body: vec![42; 1000],
        }
    }

    fn samples() -> Vec<Frame> {
        vec![
            Frame::new(FrameBody::Hello {
                version: PROTOCOL_VERSION,
                node_id: "node-a".into(),
                client_nonce: [7; NONCE_LEN],
            }),
            Frame::new(FrameBody::Challenge {
                version: PROTOCOL_VERSION,
                node_id: "node-b".into(),
                server_nonce: [9; NONCE_LEN],
                server_mac: vec![1; 32],
            }),
            Frame::new(FrameBody::Proof {
                client_mac: vec![2; 32],
            }),
            Frame::new(FrameBody::Ready),
            Frame::new(FrameBody::Close {
                reason: "bye".into(),
            }),
            Frame::new(FrameBody::Request {
                id: u64::MAX,
                body: PeerRequest::Ping {
                    from: "a".into(),
                    incarnation: 3,
                    view_version: 17,
                },
            }),
            Frame::new(FrameBody::Request {
                id: 1,
                body: PeerRequest::Forward(sample_forward()),
            }),
            Frame::new(FrameBody::Request {
                id: 5,
                body: PeerRequest::Traced {
                    request_id: "req-1".into(),
                    forward: sample_forward(),
                },
            }),
            Frame::new(FrameBody::Request {
                id: 2,
                body: PeerRequest::Push {
                    user_id: uuid::Uuid::from_u128(0x1234_5678),
                    payload: "{\"x\":1}".into(),
                },
            }),
            Frame::new(FrameBody::Response {
                id: 1,
                body: PeerResponse::Forwarded(Err(RemoteError::NotOwner { view_version: 4 })),
            }),
            Frame::new(FrameBody::Response {
                id: 2,
                body: PeerResponse::Forwarded(Ok(vec![5, 6])),
            }),
            Frame::new(FrameBody::Response {
                id: 3,
                body: PeerResponse::Error(RemoteError::may_have_run("bad")),
            }),
            Frame::new(FrameBody::Response {
                id: 4,
                body: PeerResponse::Pushed { delivered: 2 },
            }),
        ]
    }

    #[test]
    fn peer_frames_round_trip() {
        for frame in samples() {
            let bytes = encode(&frame, MAX_FRAME).unwrap();
            assert_eq!(decode_prefixed(&bytes, MAX_FRAME).unwrap(), frame);
            // The body alone decodes too, and the prefix is its big-endian length.
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            assert_eq!(len, bytes.len() - 4);
            assert_eq!(decode(&bytes[4..]).unwrap(), frame);
        }
    }

    #[test]
    fn peer_truncated_frames_error() {
        for frame in samples() {
            let bytes = encode(&frame, MAX_FRAME).unwrap();
            let body = &bytes[4..];
            for cut in 0..body.len() {
                assert!(
                    decode(&body[..cut]).is_err(),
                    "prefix of {cut} bytes of {frame:?} decoded"
                );
            }
            assert!(decode_prefixed(&bytes[..bytes.len() - 1], MAX_FRAME).is_err());
            assert!(decode_prefixed(&bytes[..2], MAX_FRAME).is_err());
        }
    }

    #[test]
    fn peer_trailing_bytes_error() {
        let mut body = encode(&Frame::new(FrameBody::Ready), MAX_FRAME).unwrap()[4..].to_vec();
        body.push(0);
        assert!(matches!(decode(&body), Err(FrameError::Malformed(_))));
    }

    #[test]
    fn peer_size_cap() {
        let big = Frame::new(FrameBody::Request {
            id: 1,
            body: PeerRequest::Forward(Forward {
                kind: "k".into(),
                message: "m".into(),
                key: vec![],
                hop: 0,
                deadline_ms: 0,
                body: vec![0; 2000],
            }),
        });
        assert!(matches!(
            encode(&big, 1000),
            Err(FrameError::TooLarge { max: 1000, .. })
        ));
        assert!(matches!(
            body_len(1001u32.to_be_bytes(), 1000),
            Err(FrameError::TooLarge {
                size: 1001,
                max: 1000
            })
        ));
        assert_eq!(body_len(1000u32.to_be_bytes(), 1000), Ok(1000));
        assert!(body_len([0; 4], 1000).is_err());
        assert!(body_len([0xff; 4], MAX_FRAME).is_err());
    }

    #[test]
    fn peer_wire_is_pinned() {
        // The handshake must stay readable across versions: pin its bytes.
        // The version byte follows the length prefix.
        let bytes = encode(&Frame::new(FrameBody::Ready), MAX_FRAME).unwrap();
        assert_eq!(bytes, vec![0, 0, 0, 2, PROTOCOL_VERSION as u8, 3]);
        let bytes = encode(
            &Frame::new(FrameBody::Close { reason: "x".into() }),
            MAX_FRAME,
        )
        .unwrap();
        assert_eq!(bytes, vec![0, 0, 0, 4, PROTOCOL_VERSION as u8, 4, 1, b'x']);
    }

    #[test]
    fn peer_forward_keeps_version_3_bytes() {
        // Version 3 wrote `Forward` as a struct variant, index 1 of `PeerRequest`, fields in
        // this order. A version 3 node must still read what this build sends it.
        let bytes = postcard::to_allocvec(&PeerRequest::Forward(Forward {
            kind: "k".into(),
            message: "m".into(),
            key: vec![7],
            hop: 2,
            deadline_ms: 300,
            body: vec![9],
        }))
        .unwrap();
        assert_eq!(bytes, vec![1, 1, b'k', 1, b'm', 1, 7, 2, 0xac, 0x02, 1, 9]);
    }

    #[test]
    fn traced_forwards_lose_their_id_on_a_version_3_link() {
        let traced = PeerRequest::Traced {
            request_id: "r".into(),
            forward: sample_forward(),
        };
        assert_eq!(traced.clone().for_version(4), traced);
        assert_eq!(
            traced.for_version(3),
            PeerRequest::Forward(sample_forward())
        );
    }

    proptest! {
        #[test]
        fn peer_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let _ = decode_prefixed(&bytes, 256);
        }

        #[test]
        fn peer_mutated_frames_never_panic(
            index in 0usize..13,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let frame = samples().swap_remove(index);
            let mut bytes = encode(&frame, MAX_FRAME).unwrap();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let _ = decode_prefixed(&bytes, MAX_FRAME);
            let _ = decode(&bytes[4..]);
        }

        #[test]
        fn peer_requests_round_trip(
            id in any::<u64>(),
            kind in ".{0,16}",
            key in proptest::collection::vec(any::<u8>(), 0..64),
            hop in any::<u8>(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let frame = Frame::new(FrameBody::Request {
                id,
                body: PeerRequest::Forward(Forward { kind, message: "m".into(), key, hop, deadline_ms: 0, body }),
            });
            let bytes = encode(&frame, MAX_FRAME).unwrap();
            prop_assert_eq!(decode_prefixed(&bytes, MAX_FRAME).unwrap(), frame);
        }
    }
}
