//! The challenge–response handshake: both sides prove they know the cluster secret without
//! sending it, and agree on the protocol version.
//!
//! Versions: the client offers the highest it speaks; the server answers with the highest both
//! speak (the lower of the two), or refuses when that is older than the oldest it speaks; the
//! client accepts any version it speaks. Every later frame on the link carries the agreed
//! version. Version 3 nodes predate the agreement and refuse any other version, naming theirs
//! in the refusal: [`older_version_in`] reads it, so a newer client dials them again offering
//! it (a rolling update across a version bump keeps every link up).
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

fn frame(version: u16, body: FrameBody) -> Frame {
    Frame { version, body }
}

fn read_error(e: ReadError) -> String {
    match e {
        ReadError::Eof => "connection closed during handshake".to_string(),
        e => e.to_string(),
    }
}

/// The refusal's wording, which version 3 nodes use too (see [`older_version_in`]).
fn version_mismatch(peer: u16, ours: u16) -> String {
    format!("protocol version mismatch: peer speaks {peer}, this node speaks {ours}")
}

/// The version a refusing peer named ("… this node speaks N") when this side speaks it too
/// and it is older than `offered`: the version to offer on a second try.
pub(crate) fn older_version_in(reason: &str, settings: &PeerSettings, offered: u16) -> Option<u16> {
    let spoken: u16 = reason
        .rsplit_once("this node speaks ")?
        .1
        .trim()
        .parse()
        .ok()?;
    (settings.speaks(spoken) && spoken < offered).then_some(spoken)
}

/// Runs the client side on a fresh connection to the node expected to be `expected_node`,
/// offering protocol version `offer` (normally `settings.protocol_version`); the version
/// agreed, which every later frame on the link carries.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    settings: &PeerSettings,
    expected_node: &str,
    offer: u16,
) -> Result<u16, PeerError> {
    let client_nonce = nonce();
    let hello = frame(
        offer,
        FrameBody::Hello {
            version: offer,
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
            send_close(stream, offer, reason).await;
            return Err(PeerError::Handshake(reason.into()));
        }
    };
    let version = server_version;
    if challenge.version != version || version > offer || !settings.speaks(version) {
        let reason = version_mismatch(version, settings.protocol_version);
        send_close(stream, offer, &reason).await;
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
        version,
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
        }) => Ok(version),
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

/// Runs the server side on an accepted connection; the authenticated peer's node id and the
/// version agreed, or why it was refused (the peer has been told with a Close frame where
/// possible). `refuse` may veto a peer by id before any secret-derived value is sent.
pub(crate) async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    settings: &PeerSettings,
    refuse: impl Fn(&str) -> Option<String>,
) -> Result<(String, u16), String> {
    let ours = settings.protocol_version;
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
            send_close(stream, ours, &reason).await;
            return Err(reason);
        }
    };
    let version = peer_version.min(ours);
    if hello.version != peer_version || !settings.speaks(version) {
        let reason = version_mismatch(peer_version, ours);
        send_close(stream, ours, &reason).await;
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
        version,
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
        &frame(version, FrameBody::Ready),
        HANDSHAKE_MAX_FRAME,
    )
    .await
    .map_err(|e| format!("sending ready: {e}"))?;
    Ok((peer_id, version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::peer::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

    fn pair(a: &str, b: &str) -> (PeerSettings, PeerSettings) {
        (
            PeerSettings::new("client", a),
            PeerSettings::new("server", b),
        )
    }

    async fn run(
        client_settings: PeerSettings,
        server_settings: PeerSettings,
    ) -> (Result<u16, PeerError>, Result<(String, u16), String>) {
        let (mut c, mut s) = tokio::io::duplex(64 * 1024);
        let offer = client_settings.protocol_version;
        let client = async move { client(&mut c, &client_settings, "server", offer).await };
        let server = async move { server(&mut s, &server_settings, |_| None).await };
        tokio::join!(client, server)
    }

    #[tokio::test]
    async fn peer_handshake_same_secret() {
        let (c, s) = pair("secret-one", "secret-one");
        let (c, s) = run(c, s).await;
        assert_eq!(c, Ok(PROTOCOL_VERSION));
        assert_eq!(s, Ok(("client".to_string(), PROTOCOL_VERSION)));
    }

    #[tokio::test]
    async fn peer_handshake_wrong_secret() {
        let (c, s) = pair("secret-one", "secret-two");
        let (c, s) = run(c, s).await;
        assert!(matches!(c, Err(PeerError::Handshake(r)) if r.contains("authentication")));
        assert!(s.is_err());
    }

    #[tokio::test]
    async fn peer_handshake_agrees_on_the_newest_version_both_speak() {
        // A newer client and an older server, then the other way round.
        for newer_client in [true, false] {
            let (mut c, mut s) = pair("secret-one", "secret-one");
            let newer = if newer_client { &mut c } else { &mut s };
            newer.protocol_version = PROTOCOL_VERSION + 1;
            let (c, s) = run(c, s).await;
            assert_eq!(c, Ok(PROTOCOL_VERSION), "newer client: {newer_client}");
            assert_eq!(s, Ok(("client".to_string(), PROTOCOL_VERSION)));
        }
    }

    #[tokio::test]
    async fn peer_handshake_refuses_a_version_it_no_longer_speaks() {
        let (mut c, mut s) = pair("secret-one", "secret-one");
        c.protocol_version = MIN_PROTOCOL_VERSION - 1;
        c.min_protocol_version = MIN_PROTOCOL_VERSION - 1;
        let (c_result, s_result) = run(c.clone(), s.clone()).await;
        assert!(
            matches!(&c_result, Err(PeerError::Handshake(r)) if r.contains("version mismatch")),
            "{c_result:?}"
        );
        assert!(s_result.unwrap_err().contains("version mismatch"));
        // The same from the other side: a server newer than anything the client speaks.
        s.min_protocol_version = PROTOCOL_VERSION + 1;
        s.protocol_version = PROTOCOL_VERSION + 1;
        let (c, _) = pair("secret-one", "secret-one");
        let (c_result, s_result) = run(c, s).await;
        assert!(c_result.is_err() && s_result.is_err());
    }

    /// A version 3 server as it was built: it refuses any other version, naming its own.
    async fn version_3_server(stream: &mut tokio::io::DuplexStream) -> Option<u16> {
        let hello = read_frame(stream, HANDSHAKE_MAX_FRAME).await.ok()?;
        let FrameBody::Hello { version, .. } = hello.body else {
            return None;
        };
        if version != 3 {
            send_close(stream, 3, &version_mismatch(version, 3)).await;
        }
        Some(version)
    }

    #[tokio::test]
    async fn a_refusal_by_a_version_3_node_names_the_version_to_offer_next() {
        let (settings, _) = pair("secret-one", "secret-one");
        let (mut c, mut s) = tokio::io::duplex(64 * 1024);
        let (refused, offered) = tokio::join!(
            client(&mut c, &settings, "server", PROTOCOL_VERSION),
            version_3_server(&mut s)
        );
        assert_eq!(offered, Some(PROTOCOL_VERSION));
        let Err(PeerError::Handshake(why)) = refused else {
            panic!("{refused:?}");
        };
        assert_eq!(older_version_in(&why, &settings, PROTOCOL_VERSION), Some(3));
        // Nothing to fall back to: the same version, one it does not speak, or no number.
        assert_eq!(older_version_in(&why, &settings, 3), None);
        assert_eq!(
            older_version_in("… this node speaks 2", &settings, PROTOCOL_VERSION),
            None
        );
        assert_eq!(
            older_version_in("authentication failed", &settings, 4),
            None
        );
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
