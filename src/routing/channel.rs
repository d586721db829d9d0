//! Channels: node-to-node requests that are not addressed to an entity (a replication stream,
//! its catch-up and snapshot requests). A module registers a named [`Channel`] with the router;
//! the peer link delivers `PeerRequest::Channel { channel, body }` to it. Unlike forwards they
//! have no owner check and are not counted as forwarded requests. The body is opaque here:
//! each channel versions its own encoding.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::peer::{PeerError, PeerRequest, PeerResponse, Peers, RemoteError};
use super::placement::Member;
use crate::request::Failure;

/// A channel message: one byte naming the encoding's `format`, then `value` in postcard.
/// Each channel bumps its format when its messages change, so a node can tell a message it
/// cannot read from a broken one.
pub fn encode<T: serde::Serialize>(format: u8, value: &T) -> Vec<u8> {
    let mut out = vec![format];
    // The channels' messages are plain data (integers, strings, UUIDs): they always encode.
    out.extend(postcard::to_stdvec(value).unwrap_or_default());
    out
}

/// Reads a message [`encode`]d in `format`; `channel` names it in the error.
pub fn decode<T: serde::de::DeserializeOwned>(
    format: u8,
    channel: &str,
    body: &[u8],
) -> Result<T, String> {
    match body.split_first() {
        Some((&f, rest)) if f == format => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((other, _)) => Err(format!("unknown {channel} message format {other}")),
        None => Err(format!("empty {channel} message")),
    }
}

/// The serving side of a channel.
pub trait Channel: Send + Sync + 'static {
    /// Answers one request from node `from`.
    fn serve(&self, from: String, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, Failure>>;
}

type Entry = (Arc<dyn Channel>, Arc<dyn Any + Send + Sync>);

/// The channels of one node by name.
#[derive(Default)]
pub(crate) struct Channels {
    map: RwLock<HashMap<&'static str, Entry>>,
}

impl Channels {
    pub(crate) fn register<C: Channel>(&self, name: &'static str, channel: Arc<C>) {
        let any: Arc<dyn Any + Send + Sync> = channel.clone();
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, (channel, any));
    }

    pub(crate) fn get<C: Channel>(&self, name: &str) -> Option<Arc<C>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(name)?.1.clone().downcast::<C>().ok()
    }

    pub(crate) fn serve(
        &self,
        from: String,
        name: &str,
        body: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, Failure>> {
        let channel = {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            map.get(name).map(|e| e.0.clone())
        };
        match channel {
            Some(c) => c.serve(from, body),
            None => {
                let why = format!("unknown channel {name}");
                Box::pin(async move { Err(Failure::not_run(why)) })
            }
        }
    }
}

/// Why a channel request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("{0}")]
    Link(PeerError),
    #[error("{0}")]
    Remote(Failure),
    #[error("unexpected answer")]
    Unexpected,
}

/// Sends one request on `channel` to `member` and waits for its answer until `deadline`.
pub async fn call(
    peers: &Peers,
    member: &Member,
    channel: &str,
    body: Vec<u8>,
    deadline: Instant,
) -> Result<Vec<u8>, ChannelError> {
    let req = PeerRequest::Channel {
        channel: channel.to_string(),
        body,
    };
    match peers
        .request_until(&member.node_id, &member.peer_addr, req, deadline)
        .await
    {
        Ok(PeerResponse::Channel(Ok(bytes))) => Ok(bytes),
        Ok(PeerResponse::Channel(Err(e)) | PeerResponse::Error(e)) | Err(PeerError::Remote(e)) => {
            Err(ChannelError::Remote(match e {
                RemoteError::Failed(f) => f,
                RemoteError::NotOwner { .. } => Failure::not_run("not the owner"),
            }))
        }
        Ok(_) => Err(ChannelError::Unexpected),
        Err(e) => Err(ChannelError::Link(e)),
    }
}
