//! A game RPC's JSON payload, decoded once at the edge into the typed request and the call it
//! makes (who calls, until when, under which idempotency key), and its answer encoded back.
//! Every RPC that asks an entity starts here, so a payload is read one way everywhere.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::rpc::{RpcContext, RpcError};
use crate::request::{request_key, Call, Caller, Deadline};

/// A request's payload, decoded: the typed request and its call.
pub struct Decoded<T> {
    pub req: T,
    pub call: Call,
}

/// Decodes `payload` for the RPC `rpc`: its optional `request_id` becomes the call's
/// idempotency key (bound to the caller, the RPC and the rest of the payload); the rest must
/// be a `T`. Anything else is *invalid argument* and nothing has run.
pub fn decode<T: DeserializeOwned>(
    ctx: &RpcContext,
    rpc: &str,
    payload: &str,
    deadline: Deadline,
) -> Result<Decoded<T>, RpcError> {
    if payload.trim().is_empty() {
        return Err(RpcError::invalid_argument("a JSON payload is required"));
    }
    let mut value: serde_json::Value = serde_json::from_str(payload).map_err(invalid)?;
    let key = request_key(ctx.user_id, rpc, &value).map_err(RpcError::invalid_argument)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("request_id");
    }
    let req = serde_json::from_value(value).map_err(invalid)?;
    let call = Call {
        caller: caller(ctx),
        deadline,
        key,
        ticket: Default::default(),
    };
    Ok(Decoded { req, call })
}

/// Who the call is for: the player, or the server itself for an `http_key` call.
fn caller(ctx: &RpcContext) -> Caller {
    match ctx.http_key {
        true => Caller::Server,
        false => Caller::User(ctx.user_id),
    }
}

/// The answer as the RPC's JSON payload.
pub fn encode<T: Serialize>(value: &T) -> Result<String, RpcError> {
    serde_json::to_string(value)
        .map_err(|e| RpcError::internal(format!("encoding the answer failed: {e}")))
}

fn invalid(e: serde_json::Error) -> RpcError {
    RpcError::invalid_argument(format!("invalid payload: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(serde::Deserialize)]
    struct Req {
        n: u32,
    }

    fn user() -> RpcContext {
        RpcContext {
            http_key: false,
            ..RpcContext::server()
        }
    }

    #[test]
    fn request_id_becomes_the_key_and_leaves_the_request() {
        let d = Deadline::after(Duration::from_secs(1));
        let got: Decoded<Req> =
            decode(&user(), "x", r#"{"n":3,"request_id":"request-1"}"#, d).unwrap();
        assert_eq!(got.req.n, 3);
        assert_eq!(got.call.key.unwrap().request_id, "request-1");
    }

    #[test]
    fn bad_payloads_are_invalid_arguments() {
        let d = Deadline::after(Duration::from_secs(1));
        for bad in ["", "  ", "{", r#"{"n":"x"}"#, r#"{"n":1,"request_id":7}"#] {
            assert!(decode::<Req>(&user(), "x", bad, d).is_err(), "{bad}");
        }
    }
}
