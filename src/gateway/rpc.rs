//! The RPC registry shared by `POST /v2/rpc/{id}` and the socket's `rpc` message.
//!
//! A handler takes the caller ([`RpcContext`]) and the payload string and answers a JSON string
//! or an [`RpcError`] carrying a gRPC code. Ids are case-insensitive (lower-cased at
//! registration and lookup, as Nakama does). A panicking handler is answered as an internal
//! error; it never takes the connection or the worker down.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use uuid::Uuid;

use super::error::GrpcCode;
use super::rate_limit::RateLimiter;
use crate::persistence::DbError;
use crate::request::{self, Failure};

/// Who is calling an RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcContext {
    /// The caller's user id; the nil UUID for a server-to-server (`http_key`) call.
    pub user_id: Uuid,
    /// The caller's username; empty for a server-to-server call.
    pub username: String,
    /// The session variables from the caller's token.
    pub vars: HashMap<String, String>,
    /// True when the call was made with the HTTP key (no user).
    pub http_key: bool,
}

impl RpcContext {
    /// The calling player, for an RPC that acts for one: a server-to-server call has none.
    pub fn session_user(&self) -> Result<Uuid, RpcError> {
        if self.http_key {
            return Err(RpcError::invalid_argument(
                "this RPC needs a user session, not the http key",
            ));
        }
        Ok(self.user_id)
    }

    /// The context of a server-to-server call.
    pub fn server() -> RpcContext {
        RpcContext {
            user_id: Uuid::nil(),
            username: String::new(),
            vars: HashMap::new(),
            http_key: true,
        }
    }
}

/// An RPC failure: a gRPC status code and a message shown to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
}

impl RpcError {
    pub fn new(code: GrpcCode, message: impl Into<String>) -> RpcError {
        RpcError {
            code: code.as_i32(),
            message: message.into(),
        }
    }
    pub fn invalid_argument(message: impl Into<String>) -> RpcError {
        RpcError::new(GrpcCode::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> RpcError {
        RpcError::new(GrpcCode::NotFound, message)
    }
    pub fn already_exists(message: impl Into<String>) -> RpcError {
        RpcError::new(GrpcCode::AlreadyExists, message)
    }
    /// A `request_id` used before for a different request: nothing was changed.
    pub fn request_id_reused() -> RpcError {
        RpcError::already_exists("this request_id was already used for a different request")
    }
    pub fn permission_denied(message: impl Into<String>) -> RpcError {
        RpcError::new(GrpcCode::PermissionDenied, message)
    }
    pub fn failed_precondition(message: impl Into<String>) -> RpcError {
        RpcError::new(GrpcCode::FailedPrecondition, message)
    }
    pub fn internal(message: impl Into<String>) -> RpcError {
        RpcError::new(GrpcCode::Internal, message)
    }
    pub fn unavailable(message: impl Into<String>) -> RpcError {
        RpcError::new(GrpcCode::Unavailable, message)
    }

    pub fn grpc_code(&self) -> GrpcCode {
        GrpcCode::from_i32(self.code)
    }

    /// How the call ended, for the metrics: `not_run` (14), `may_have_run` (4), `refused`
    /// (the request's own fault or a game rule said no: bad input, not found, not allowed,
    /// wrong state, over a limit), or `error` (a failure of the server).
    pub fn outcome(&self) -> &'static str {
        use GrpcCode::*;
        match self.grpc_code() {
            Unavailable => "not_run",
            DeadlineExceeded => "may_have_run",
            InvalidArgument | NotFound | AlreadyExists | PermissionDenied | FailedPrecondition
            | OutOfRange | Unauthenticated | ResourceExhausted | Aborted => "refused",
            Cancelled | Unknown | Unimplemented | Internal | DataLoss => "error",
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

/// Database failures as clients see them: what they can act on is named; the rest says only
/// whether the request ran (SQL details go to the log, never to a client).
impl From<DbError> for RpcError {
    fn from(e: DbError) -> RpcError {
        match e {
            DbError::NotFound(what) => RpcError::not_found(what),
            DbError::Rejected(why) => RpcError::failed_precondition(why),
            // An outage, a lost commit, a conflict: say whether it ran.
            other if other.is_retryable() || other.is_outcome_unknown() => {
                if let Some(suppressed) = crate::quiet::allow("rpc-db-error") {
                    tracing::warn!(error = %other, "database error during an RPC{suppressed}");
                }
                other.failure().into()
            }
            // A bug (a constraint, a failed migration): rolled back, and retrying won't help.
            other => {
                tracing::error!(error = %other, "database error during an RPC");
                RpcError::internal("Internal server error.")
            }
        }
    }
}

/// The two ways a request can have no answer, as every client sees them (docs/rpc.md):
/// *not run* is 14 UNAVAILABLE (HTTP 503), safe to send again; *may have run* is
/// 4 DEADLINE_EXCEEDED (HTTP 504): send it again only with the same `request_id`.
impl From<Failure> for RpcError {
    fn from(f: Failure) -> RpcError {
        match f {
            Failure::NotRun(why) => {
                tracing::debug!(%why, "request not run");
                RpcError::unavailable(NOT_RUN_MESSAGE)
            }
            Failure::MayHaveRun(why) => {
                // An HTTP request that ends so is in the access log (504, with its id), every
                // one in `serai_rpc_duration_seconds` (outcome `may_have_run`); an outage makes many at once, so the
                // warning is per interval.
                if let Some(suppressed) = crate::quiet::allow("rpc-may-have-run") {
                    tracing::warn!(%why, "request outcome unknown{suppressed}");
                }
                RpcError::new(GrpcCode::DeadlineExceeded, MAY_HAVE_RUN_MESSAGE)
            }
        }
    }
}

/// What a client reads when its request was not run.
pub const NOT_RUN_MESSAGE: &str =
    "Service temporarily unavailable: the request was not run, try again.";
/// What a client reads when its request may have run.
pub const MAY_HAVE_RUN_MESSAGE: &str = "The outcome is unknown: the request may have been \
     applied. Retry with the same request_id to get its answer without applying it twice.";

/// What an RPC handler is.
pub type RpcHandler =
    Arc<dyn Fn(RpcContext, String) -> BoxFuture<'static, Result<String, RpcError>> + Send + Sync>;

/// Registered RPCs by lower-cased id. Registration may happen at any time (also after the
/// registry is shared); lookups take a short read lock.
#[derive(Default)]
pub struct RpcRegistry {
    handlers: RwLock<HashMap<String, RpcHandler>>,
    /// Checked before every handler runs (none: no limits configured).
    limiter: RwLock<Option<RateLimiter>>,
}

impl fmt::Debug for RpcRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcRegistry")
            .field("ids", &self.ids())
            .finish()
    }
}

impl RpcRegistry {
    /// A registry holding the built-in `echo` RPC (answers its payload unchanged).
    pub fn new() -> RpcRegistry {
        let registry = RpcRegistry::default();
        registry.register_fn("echo", |_ctx, payload| async move { Ok(payload) });
        registry
    }

    /// Registers (or replaces) the handler of `id`.
    pub fn register(&self, id: &str, handler: RpcHandler) {
        let mut map = self.handlers.write().unwrap_or_else(|e| e.into_inner());
        map.insert(id.to_lowercase(), handler);
    }

    /// Registers an async function without boxing by hand.
    pub fn register_fn<F, Fut>(&self, id: &str, f: F)
    where
        F: Fn(RpcContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, RpcError>> + Send + 'static,
    {
        self.register(id, Arc::new(move |ctx, payload| f(ctx, payload).boxed()));
    }

    /// Limits every later call with `limiter` (a refusal runs nothing).
    pub fn set_rate_limiter(&self, limiter: RateLimiter) {
        *self.limiter.write().unwrap_or_else(|e| e.into_inner()) = Some(limiter);
    }

    /// The handler of `id` (any case).
    pub fn get(&self, id: &str) -> Option<RpcHandler> {
        let map = self.handlers.read().unwrap_or_else(|e| e.into_inner());
        if id.bytes().any(|b| b.is_ascii_uppercase()) || !id.is_ascii() {
            map.get(&id.to_lowercase()).cloned()
        } else {
            map.get(id).cloned()
        }
    }

    /// Registered ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        let map = self.handlers.read().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<String> = map.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Starts the call of `id`, or None when no such RPC exists. The returned future never
    /// panics: a panicking handler becomes an internal error.
    pub fn call(
        &self,
        id: &str,
        ctx: RpcContext,
        payload: String,
    ) -> Option<BoxFuture<'static, Result<String, RpcError>>> {
        let handler = self.get(id)?;
        let id = id.to_lowercase();
        let limiter = self
            .limiter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(limiter) = limiter {
            // The handler is started only once admitted; a panic starting it is caught below
            // like one while it runs.
            let (rpc, handler) = (id.clone(), handler);
            let limited = async move {
                limiter.admit(&ctx, &rpc).await?;
                handler(ctx, payload).await
            };
            return Some(Self::guarded(id, limited.boxed()));
        }
        let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx, payload))) {
            Ok(fut) => fut,
            Err(_) => {
                tracing::error!(rpc = %id, "RPC handler panicked");
                return Some(
                    futures_util::future::ready(Err(RpcError::internal("Internal server error.")))
                        .boxed(),
                );
            }
        };
        Some(Self::guarded(id, fut))
    }

    /// `fut` with a panic answered as an internal error, traced under a request id.
    fn guarded(
        id: String,
        fut: BoxFuture<'static, Result<String, RpcError>>,
    ) -> BoxFuture<'static, Result<String, RpcError>> {
        let fut = AssertUnwindSafe(fut).catch_unwind().map(move |r| match r {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(rpc = %id, "RPC handler panicked");
                Err(RpcError::internal("Internal server error."))
            }
        });
        // An HTTP call already runs as its request; a socket message gets an id of its own.
        match request::trace_id() {
            Some(_) => fut.boxed(),
            None => request::traced(request::new_trace_id(), fut).boxed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn ctx() -> RpcContext {
        RpcContext {
            user_id: Uuid::new_v4(),
            username: "u".into(),
            vars: HashMap::new(),
            http_key: false,
        }
    }

    #[test]
    fn echo_and_case_insensitive_ids() {
        let r = RpcRegistry::new();
        r.register_fn("Get_Thing", |c, p| async move {
            Ok(format!("{}:{p}", c.username))
        });
        let out = block_on(r.call("ECHO", ctx(), "{\"a\":1}".into()).unwrap());
        assert_eq!(out.unwrap(), "{\"a\":1}");
        let out = block_on(r.call("get_thing", ctx(), "x".into()).unwrap());
        assert_eq!(out.unwrap(), "u:x");
        assert!(r.call("missing", ctx(), String::new()).is_none());
        assert_eq!(r.ids(), vec!["echo".to_string(), "get_thing".to_string()]);
    }

    #[test]
    fn panics_become_internal_errors() {
        let r = RpcRegistry::new();
        r.register_fn("boom", |_c, p| async move {
            if p.is_empty() {
                panic!("handler bug");
            }
            Ok(p)
        });
        r.register("sync_boom", Arc::new(|_c, _p| panic!("sync bug")));
        let out = block_on(r.call("boom", ctx(), String::new()).unwrap());
        assert_eq!(out.unwrap_err().code, 13);
        let out = block_on(r.call("sync_boom", ctx(), String::new()).unwrap());
        assert_eq!(out.unwrap_err().code, 13);
    }

    #[test]
    fn db_errors_map_without_leaking() {
        assert_eq!(
            RpcError::from(DbError::NotFound("character".into())).code,
            5
        );
        assert_eq!(
            RpcError::from(DbError::Rejected("not enough gold".into())).code,
            9
        );
        let e = RpcError::from(DbError::Migration("secret detail".into()));
        assert_eq!(e.code, 13);
        assert!(!e.message.contains("secret"));
        // An outage is not run (14), a lost commit may have run (4); no detail leaks.
        let e = RpcError::from(DbError::Unavailable("pool timed out at 10.0.0.7".into()));
        assert_eq!((e.code, e.message.contains("10.0.0.7")), (14, false));
        let e = RpcError::from(DbError::CommitUnknown("connection reset".into()));
        assert_eq!((e.code, e.message.contains("request_id")), (4, true));
    }

    #[test]
    fn outcomes_for_the_metrics() {
        let outcome = |e: DbError| RpcError::from(e).outcome();
        assert_eq!(outcome(DbError::Unavailable("x".into())), "not_run");
        assert_eq!(outcome(DbError::CommitUnknown("x".into())), "may_have_run");
        assert_eq!(outcome(DbError::Rejected("no gold".into())), "refused");
        assert_eq!(outcome(DbError::Migration("bug".into())), "error");
        assert_eq!(RpcError::invalid_argument("bad").outcome(), "refused");
    }
}
