//! The challenge–response handshake: both sides prove they know the cluster secret without
//! sending it, and agree on the protocol version.
//!
//! Each MAC covers a role label, both nonces (its own side's last, so a MAC can never be
//! replayed as the other role's), the protocol version and both node ids (length-prefixed), so
//! a recorded handshake is useless against fresh nonces and an id cannot be swapped in transit.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};

use super::frame::{read_frame, send_close, write_frame, ReadError};
use super::{PeerError, PeerSettings};
use crate::protocol::peer::{Frame, FrameBody, NONCE_LEN};

type HmacSha256 = Hmac<Sha256>;

/// Cap on a handshake frame: they are small, and the peer is not authenticated yet.
pub(crate) const HANDSHAKE_MAX_FRAME: usize = 16 * 1024;

/// Longest node id accepted in a handshake.
const MAX_NODE_ID: usize = 256;

const SERVER_LABEL: &[u8] = b"serai-server";
const CLIENT_LABEL: &[u8] = b"serai-client";

struct Transcript<'a> {
    version: u16,
    client_id: &'a str,
    server_id: &'a str,
    client_nonce: &'a [u8; NONCE_LEN],
    server_nonce: &'a [u8; NONCE_LEN],
}

impl Transcript<'_> {
    fn keyed(&self, secret: &str, label: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this never fails.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(label);
        let (first, second) = if label == SERVER_LABEL {
            (self.client_nonce, self.server_nonce)
        } else {
            (self.server_nonce, self.client_nonce)
        };
        mac.update(first);
        mac.update(second);
        mac.update(&self.version.to_be_bytes());
        for id in [self.client_id, self.server_id] {
            mac.update(&(id.len() as u32).to_be_bytes());
            mac.update(id.as_bytes());
        }
        mac
    }

    fn mac(&self, secret: &str, label: &[u8]) -> Vec<u8> {
        self.keyed(secret, label).finalize().into_bytes().to_vec()
    }

    /// Constant-time comparison of `tag` with the expected MAC.
    fn verify(&self, secret: &str, label: &[u8], tag: &[u8]) -> bool {
        self.keyed(secret, label).verify_slice(tag).is_ok()
    }
}

fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

fn frame(settings: &PeerSettings, body: FrameBody) -> Frame {
    Frame {
        version: settings.protocol_version,
        body,
    }
}

fn read_error(e: ReadError) -> String {
    match e {
        ReadError::Eof => "connection closed during handshake".to_string(),
        e => e.to_string(),
    }
}

fn version_mismatch(peer: u16, ours: u16) -> String {
    format!("protocol version mismatch: peer speaks {peer}, this node speaks {ours}")
}

/// Runs the client side on a fresh connection to the node expected to be `expected_node`.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    settings: &PeerSettings,
    expected_node: &str,
) -> Result<(), PeerError> {
    let version = settings.protocol_version;
    let client_nonce = nonce();
    let hello = frame(
        settings,
        FrameBody::Hello {
            version,
            node_id: settings.node_id.clone(),
            client_nonce,
        },
    );
    write_frame(stream, &hello, HANDSHAKE_MAX_FRAME)
        .await
        .map_err(|e| PeerError::Handshake(format!("sending hello: {e}")))?;

    let challenge = read_frame(stream, HANDSHAKE_MAX_FRAME)
        .await
        .map_err(|e| PeerError::Handshake(read_error(e)))?;
    let (server_version, server_id, server_nonce, server_mac) = match challenge.body {
        FrameBody::Challenge {
            version,
            node_id,
            server_nonce,
            server_mac,
        } => (version, node_id, server_nonce, server_mac),
        FrameBody::Close { reason } => {
            return Err(PeerError::Handshake(format!("refused by peer: {reason}")))
        }
        _ => {
            let reason = "expected a challenge";
            send_close(stream, version, reason).await;
            return Err(PeerError::Handshake(reason.into()));
        }
    };
    if server_version != version || challenge.version != version {
        let reason = version_mismatch(server_version, version);
        send_close(stream, version, &reason).await;
        return Err(PeerError::Handshake(reason));
    }
    let transcript = Transcript {
        version,
        client_id: &settings.node_id,
        server_id: &server_id,
        client_nonce: &client_nonce,
        server_nonce: &server_nonce,
    };
    if !transcript.verify(&settings.secret, SERVER_LABEL, &server_mac) {
        let reason = "authentication failed: the peer does not know the cluster secret";
        send_close(stream, version, reason).await;
        return Err(PeerError::Handshake(reason.into()));
    }
    if server_id != expected_node {
        let reason =
            format!("expected node {expected_node:?} at this address, found {server_id:?}");
        send_close(stream, version, &reason).await;
        return Err(PeerError::Handshake(reason));
    }
    let proof = frame(
        settings,
        FrameBody::Proof {
            client_mac: transcript.mac(&settings.secret, CLIENT_LABEL),
        },
    );
    write_frame(stream, &proof, HANDSHAKE_MAX_FRAME)
        .await
        .map_err(|e| PeerError::Handshake(format!("sending proof: {e}")))?;

    match read_frame(stream, HANDSHAKE_MAX_FRAME).await {
        Ok(Frame {
            body: FrameBody::Ready,
            ..
        }) => Ok(()),
        Ok(Frame {
            body: FrameBody::Close { reason },
            ..
        }) => Err(PeerError::Handshake(format!("refused by peer: {reason}"))),
        Ok(_) => {
            let reason = "expected ready";
            send_close(stream, version, reason).await;
            Err(PeerError::Handshake(reason.into()))
        }
        Err(e) => Err(PeerError::Handshake(read_error(e))),
    }
}

/// Runs the server side on an accepted connection; the authenticated peer's node id, or why
/// it was refused (the peer has been told with a Close frame where possible).
/// `refuse` may veto a peer by id before any secret-derived value is sent.
pub(crate) async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    settings: &PeerSettings,
    refuse: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let version = settings.protocol_version;
    let hello = read_frame(stream, HANDSHAKE_MAX_FRAME)
        .await
        .map_err(read_error)?;
    let (peer_version, peer_id, client_nonce) = match hello.body {
        FrameBody::Hello {
            version,
            node_id,
            client_nonce,
        } => (version, node_id, client_nonce),
        _ => {
            let reason = "expected hello".to_string();
            send_close(stream, version, &reason).await;
            return Err(reason);
        }
    };
    if peer_version != version || hello.version != version {
        let reason = version_mismatch(peer_version, version);
        send_close(stream, version, &reason).await;
        return Err(reason);
    }
    if peer_id.is_empty() || peer_id.len() > MAX_NODE_ID {
        let reason = format!("node id must be 1 to {MAX_NODE_ID} bytes");
        send_close(stream, version, &reason).await;
        return Err(reason);
    }
    if let Some(reason) = refuse(&peer_id) {
        send_close(stream, version, &reason).await;
        return Err(reason);
    }
    let server_nonce = nonce();
    let transcript = Transcript {
        version,
        client_id: &peer_id,
        server_id: &settings.node_id,
        client_nonce: &client_nonce,
        server_nonce: &server_nonce,
    };
    let challenge = frame(
        settings,
        FrameBody::Challenge {
            version,
            node_id: settings.node_id.clone(),
            server_nonce,
            server_mac: transcript.mac(&settings.secret, SERVER_LABEL),
        },
    );
    write_frame(stream, &challenge, HANDSHAKE_MAX_FRAME)
        .await
        .map_err(|e| format!("sending challenge: {e}"))?;

    let proof = read_frame(stream, HANDSHAKE_MAX_FRAME)
        .await
        .map_err(read_error)?;
    match proof.body {
        FrameBody::Proof { client_mac } => {
            if !transcript.verify(&settings.secret, CLIENT_LABEL, &client_mac) {
                let reason = "authentication failed".to_string();
                send_close(stream, version, &reason).await;
                return Err(format!(
                    "{reason}: peer {peer_id:?} does not know the cluster secret"
                ));
            }
        }
        FrameBody::Close { reason } => return Err(format!("peer gave up: {reason}")),
        _ => {
            let reason = "expected proof".to_string();
            send_close(stream, version, &reason).await;
            return Err(reason);
        }
    }
    write_frame(
        stream,
        &frame(settings, FrameBody::Ready),
        HANDSHAKE_MAX_FRAME,
    )
    .await
    .map_err(|e| format!("sending ready: {e}"))?;
    Ok(peer_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::peer::PROTOCOL_VERSION;

    fn pair(a: &str, b: &str) -> (PeerSettings, PeerSettings) {
        (
            PeerSettings::new("client", a),
            PeerSettings::new("server", b),
        )
    }

    async fn run(
        client_settings: PeerSettings,
        server_settings: PeerSettings,
    ) -> (Result<(), PeerError>, Result<String, String>) {
        let (mut c, mut s) = tokio::io::duplex(64 * 1024);
        let client = async move { client(&mut c, &client_settings, "server").await };
        let server = async move { server(&mut s, &server_settings, |_| None).await };
        tokio::join!(client, server)
    }

    #[tokio::test]
    async fn peer_handshake_same_secret() {
        let (c, s) = pair("secret-one", "secret-one");
        let (c, s) = run(c, s).await;
        assert_eq!(c, Ok(()));
        assert_eq!(s, Ok("client".to_string()));
    }

    #[tokio::test]
    async fn peer_handshake_wrong_secret() {
        let (c, s) = pair("secret-one", "secret-two");
        let (c, s) = run(c, s).await;
        assert!(matches!(c, Err(PeerError::Handshake(r)) if r.contains("authentication")));
        assert!(s.is_err());
    }

    #[tokio::test]
    async fn peer_handshake_version_mismatch() {
        let (mut c, s) = pair("secret-one", "secret-one");
        c.protocol_version = PROTOCOL_VERSION + 1;
        let (c, s) = run(c, s).await;
        assert!(
            matches!(&c, Err(PeerError::Handshake(r)) if r.contains("version mismatch")),
            "{c:?}"
        );
        assert!(s.unwrap_err().contains("version mismatch"));
    }

    #[test]
    fn peer_macs_differ_by_role() {
        let t = Transcript {
            version: 1,
            client_id: "a",
            server_id: "b",
            client_nonce: &[1; NONCE_LEN],
            server_nonce: &[1; NONCE_LEN],
        };
        let server = t.mac("s", SERVER_LABEL);
        let client = t.mac("s", CLIENT_LABEL);
        assert_ne!(server, client);
        assert!(t.verify("s", SERVER_LABEL, &server));
        assert!(!t.verify("s", CLIENT_LABEL, &server));
        assert!(!t.verify("t", SERVER_LABEL, &server));
        assert!(!t.verify("s", SERVER_LABEL, &server[..16]));
        // Ids are length-prefixed: ("ab", "c") and ("a", "bc") do not collide.
        let t2 = Transcript {
            client_id: "ab",
            server_id: "",
            ..t
        };
        let t3 = Transcript {
            client_id: "a",
            server_id: "b",
            ..t2
        };
        assert_ne!(t2.mac("s", SERVER_LABEL), t3.mac("s", SERVER_LABEL));
    }
}
