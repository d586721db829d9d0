//! The realtime socket: `GET /ws?token=…&status=…&lang=…&format=…`, one actix actor per
//! connection. `format=protobuf` makes it speak Nakama's envelope in protobuf binary frames
//! instead of JSON text: the [`SocketCodec`] chosen at connect is the only difference.
//!
//! - The token (query `token` or `Authorization: Bearer`) is verified before the upgrade; a bad
//!   one is answered 401 and no socket is opened.
//! - Inbound: frames are capped at `max_message_size` (continuations included); a bigger one
//!   closes the socket with 1009. Every frame is decoded once, by the socket's codec, into a
//!   typed envelope (a frame that does not decode is answered with an error); `rpc` runs
//!   the registry's handler as a future of the actor (several may run at once, each answered
//!   when done, bounded per socket), `ping` answers `pong`, anything else an error with the
//!   request's `cid`.
//! - Liveness: a WebSocket ping frame every `ping_interval`; a socket silent for
//!   `read_deadline` is closed.
//! - Outbound: everything goes through the socket's bounded [`Outbox`]; a writer task hands
//!   frames to the connection. A client that lets the queue fill, or does not take a frame
//!   within `write_timeout`, is disconnected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, StreamHandler, WrapFuture,
};
use actix_web::http::header::HeaderMap;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError, Session};
use serde::Deserialize;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

use super::auth::{self, SessionUser, TokenKind};
use super::error::{ApiError, GrpcCode};
use super::presence::{Outbound, Outbox, OutboxReceiver};
use super::rpc::{RpcContext, RpcError};
use super::ws_io::{self, WsWriter};
use super::GatewayState;
use crate::protocol::client::{
    realtime_code, ClientEnvelope, ClientMessage, DecodeError, EmptyObject, RealtimeError,
    RpcReply, RpcRequest, ServerMessage,
};
use crate::protocol::socket_codec::{Frame, SocketCodec};

#[derive(Debug, Default, Deserialize)]
struct ConnectQuery {
    token: Option<String>,
    #[allow(dead_code)]
    status: Option<String>,
    #[allow(dead_code)]
    lang: Option<String>,
    format: Option<String>,
}

/// `GET /ws` as an HTTP route: authenticates, upgrades, and starts the connection's actor on
/// actix-web's connection. The node's client listener hands WebSocket upgrades to
/// [`super::upgrade`] instead (the socket owns its TCP stream); this route answers the
/// requests that are not upgrades, and serves apps built with [`super::configure`] alone.
pub(crate) async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let (user, codec) = authorize(&state, req.query_string(), req.headers())?;
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::invalid_argument(format!("Expected a WebSocket upgrade request: {e}."))
    })?;
    let settings = state.socket;
    let stream = stream
        .max_frame_size(settings.max_message_size)
        .aggregate_continuations()
        .max_continuation_size(settings.max_message_size);
    let state = state.get_ref().clone();
    SocketConn::create(move |ctx| {
        ctx.add_stream(stream);
        SocketConn::new(state, user, Writer::Session(session), codec)
    });
    Ok(response)
}

/// Starts the connection's actor on a TCP stream the socket owns after the upgrade
/// ([`super::upgrade`]); `leftover` holds bytes the client sent after its upgrade request.
pub(crate) fn start_owned(
    state: GatewayState,
    user: SessionUser,
    codec: SocketCodec,
    read: OwnedReadHalf,
    leftover: BytesMut,
    write: OwnedWriteHalf,
) {
    let max = state.socket.max_message_size;
    let stream = ws_io::messages(read, leftover, max, max);
    SocketConn::create(move |ctx| {
        ctx.add_stream(stream);
        SocketConn::new(state, user, Writer::Owned(WsWriter::new(write)), codec)
    });
}

/// Who may open a socket: the session token (query `token`, else `Authorization: Bearer`)
/// and the frame format (`format`).
pub(crate) fn authorize(
    state: &GatewayState,
    query: &str,
    headers: &HeaderMap,
) -> Result<(SessionUser, SocketCodec), ApiError> {
    let q = web::Query::<ConnectQuery>::from_query(query)
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid query string: {e}.")))?;
    let header_token = headers
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::parse_bearer);
    let token = q
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .or(header_token);
    let token = token.ok_or_else(|| ApiError::unauthenticated("Auth token required"))?;
    let user = state
        .tokens
        .verify(TokenKind::Session, token)
        .ok_or_else(|| ApiError::unauthenticated("Auth token invalid"))?;
    let codec =
        SocketCodec::from_format(q.format.as_deref()).map_err(ApiError::invalid_argument)?;
    Ok((user, codec))
}

/// Where a socket's frames go: actix-web's connection ([`connect`]) or the TCP stream the
/// socket owns ([`start_owned`]).
enum Writer {
    Session(Session),
    Owned(WsWriter),
}

/// The connection is gone.
struct Gone;

impl Writer {
    async fn text(&mut self, text: String) -> Result<(), Gone> {
        match self {
            Writer::Session(s) => s.text(text).await.map_err(|_| Gone),
            Writer::Owned(w) => w.text(text).await.map_err(|_| Gone),
        }
    }

    async fn binary(&mut self, bytes: Bytes) -> Result<(), Gone> {
        match self {
            Writer::Session(s) => s.binary(bytes).await.map_err(|_| Gone),
            Writer::Owned(w) => w.binary(bytes).await.map_err(|_| Gone),
        }
    }

    async fn ping(&mut self) -> Result<(), Gone> {
        match self {
            Writer::Session(s) => s.ping(b"").await.map_err(|_| Gone),
            Writer::Owned(w) => w.ping(b"").await.map_err(|_| Gone),
        }
    }

    async fn pong(&mut self, bytes: &[u8]) -> Result<(), Gone> {
        match self {
            Writer::Session(s) => s.pong(bytes).await.map_err(|_| Gone),
            Writer::Owned(w) => w.pong(bytes).await.map_err(|_| Gone),
        }
    }

    async fn close(self, reason: Option<CloseReason>) -> Result<(), Gone> {
        match self {
            Writer::Session(s) => s.close(reason).await.map_err(|_| Gone),
            Writer::Owned(w) => w.close(reason).await.map_err(|_| Gone),
        }
    }
}

/// One client connection.
struct SocketConn {
    state: GatewayState,
    user: SessionUser,
    outbox: Outbox,
    /// Taken by `started` to run the writer.
    writer: Option<(Writer, OutboxReceiver)>,
    socket_id: Option<u64>,
    last_seen: Instant,
    inflight: usize,
}

impl SocketConn {
    fn new(
        state: GatewayState,
        user: SessionUser,
        session: Writer,
        codec: SocketCodec,
    ) -> SocketConn {
        let (outbox, rx) = Outbox::new(
            state.socket.max_queued_messages,
            state.socket.max_queued_bytes,
        );
        let outbox = outbox.with_codec(codec);
        SocketConn {
            state,
            user,
            outbox,
            writer: Some((session, rx)),
            socket_id: None,
            last_seen: Instant::now(),
            inflight: 0,
        }
    }

    fn send(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        if self.outbox.push_frame(frame).is_err() {
            ctx.stop();
        }
    }

    fn send_error(
        &mut self,
        cid: Option<&str>,
        code: i32,
        message: impl Into<String>,
        ctx: &mut Context<Self>,
    ) {
        let frame = self.outbox.codec().encode_error(cid, code, message);
        self.send(frame, ctx);
    }

    /// Sends a close frame (after everything queued before it) and stops reading.
    fn close(&mut self, code: CloseCode, description: &str, ctx: &mut Context<Self>) {
        let reason = CloseReason {
            code,
            description: Some(description.to_string()),
        };
        let _ = self.outbox.push_control(Outbound::Close(Some(reason)));
        ctx.stop();
    }

    fn on_envelope(
        &mut self,
        decoded: Result<ClientEnvelope, DecodeError>,
        ctx: &mut Context<Self>,
    ) {
        match decoded {
            Ok(envelope) => match envelope.message {
                ClientMessage::Rpc(rpc) => self.on_rpc(envelope.cid, rpc, ctx),
                ClientMessage::Ping => {
                    let pong = self.outbox.codec().encode(
                        envelope.cid.as_deref(),
                        &ServerMessage::Pong(EmptyObject {}),
                    );
                    self.send(pong, ctx);
                }
                ClientMessage::Pong => {}
            },
            Err(e) => self.send_error(e.cid.as_deref(), e.code, e.message, ctx),
        }
    }

    fn on_rpc(&mut self, cid: Option<String>, rpc: RpcRequest, ctx: &mut Context<Self>) {
        if rpc.id.is_empty() {
            return self.send_error(
                cid.as_deref(),
                realtime_code::BAD_INPUT,
                "RPC ID must be set",
                ctx,
            );
        }
        if self.inflight >= self.state.socket.max_inflight_rpcs {
            let message = format!(
                "Too many RPCs in flight on this socket (limit {}): wait for answers before sending more.",
                self.state.socket.max_inflight_rpcs
            );
            return self.send_error(
                cid.as_deref(),
                realtime_code::RUNTIME_EXCEPTION,
                message,
                ctx,
            );
        }
        let caller = RpcContext {
            user_id: self.user.user_id,
            username: self.user.username.clone(),
            vars: self.user.vars.clone(),
            http_key: false,
        };
        let Some(call) = self
            .state
            .rpc
            .call(&rpc.id, caller, rpc.payload.unwrap_or_default())
        else {
            return self.send_error(
                cid.as_deref(),
                realtime_code::RUNTIME_FUNCTION_NOT_FOUND,
                "RPC function not found",
                ctx,
            );
        };
        self.inflight += 1;
        let id = rpc.id;
        let started = Instant::now();
        ctx.spawn(call.into_actor(self).map(move |result, act, ctx| {
            act.inflight -= 1;
            act.state.metrics.rpc_done(&id, "socket", started, &result);
            let frame = match result {
                Ok(payload) => act.outbox.codec().encode(
                    cid.as_deref(),
                    &ServerMessage::Rpc(RpcReply {
                        id: &id,
                        payload: &payload,
                    }),
                ),
                Err(e) => act
                    .outbox
                    .codec()
                    .encode(cid.as_deref(), &ServerMessage::Error(realtime_error(e))),
            };
            act.send(frame, ctx);
        }));
    }
}

/// An RPC failure on the socket: caller mistakes (bad input, not found, not allowed, wrong
/// state) → 3 bad input, failures of the server → 7 function exception. The gRPC code travels
/// in `context.grpc_code` for clients that want the finer distinction, and a request that got
/// no answer says in `context.outcome` whether it ran: `not_run` (14: send it again) or
/// `may_have_run` (4: send it again only with the same `request_id`).
pub fn realtime_error(e: RpcError) -> RealtimeError {
    use GrpcCode::*;
    let grpc = GrpcCode::from_i32(e.code);
    let code = match grpc {
        InvalidArgument | NotFound | AlreadyExists | PermissionDenied | FailedPrecondition
        | OutOfRange | Unauthenticated | ResourceExhausted => realtime_code::BAD_INPUT,
        _ => realtime_code::RUNTIME_FUNCTION_EXCEPTION,
    };
    let mut context = HashMap::from([("grpc_code".to_string(), e.code.to_string())]);
    match grpc {
        Unavailable => context.insert("outcome".into(), "not_run".into()),
        DeadlineExceeded => context.insert("outcome".into(), "may_have_run".into()),
        _ => None,
    };
    RealtimeError {
        code,
        message: e.message,
        context,
    }
}

impl Actor for SocketConn {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.state.metrics.sockets.increment(1.0);
        self.socket_id = Some(
            self.state
                .presence
                .join(self.user.user_id, self.outbox.clone()),
        );
        let kill = self.outbox.kill_token();
        if let Some((session, rx)) = self.writer.take() {
            let queued = self.outbox.queued_bytes();
            let write_timeout = self.state.socket.write_timeout;
            let slow = self.state.metrics.slow_disconnects.clone();
            actix_rt::spawn(run_writer(
                session,
                rx,
                kill.clone(),
                queued,
                write_timeout,
                slow,
            ));
        }
        // The writer (or a full queue) cancels `kill` when the client is gone or too slow.
        ctx.spawn(
            kill.cancelled_owned()
                .into_actor(self)
                .map(|_, _act, ctx| ctx.stop()),
        );

        // One timer per socket (an idle socket holds little else): it checks the read
        // deadline and sends the ping when one is due.
        let deadline = self.state.socket.read_deadline;
        let ping_every = self.state.socket.ping_interval;
        let tick = (deadline / 5)
            .min(ping_every)
            .max(Duration::from_millis(50));
        let mut last_ping = Instant::now();
        ctx.run_interval(tick, move |act, ctx| {
            if act.last_seen.elapsed() > deadline {
                tracing::debug!(user = %act.user.user_id, "socket read deadline passed");
                act.close(CloseCode::Away, "read deadline exceeded", ctx);
                return;
            }
            if last_ping.elapsed() + tick / 2 >= ping_every {
                last_ping = Instant::now();
                if act.outbox.push_control(Outbound::Ping).is_err() {
                    ctx.stop();
                }
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(id) = self.socket_id.take() {
            self.state.presence.leave(self.user.user_id, id);
        }
        self.state.metrics.sockets.decrement(1.0);
        // Dropping the actor drops its outbox: once the presence registry's copy is gone too,
        // the writer drains what is queued (the close frame included) and ends.
    }
}

fn is_too_big(e: &ProtocolError) -> bool {
    match e {
        ProtocolError::Overflow => true,
        ProtocolError::Io(io) => io.to_string().contains("maximum continuation size"),
        _ => false,
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for SocketConn {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_seen = Instant::now();
        match item {
            Ok(AggregatedMessage::Text(text)) => {
                let decoded = self.outbox.codec().decode_text(&text);
                self.on_envelope(decoded, ctx);
            }
            Ok(AggregatedMessage::Binary(bytes)) => {
                let decoded = self.outbox.codec().decode_binary(&bytes);
                self.on_envelope(decoded, ctx);
            }
            Ok(AggregatedMessage::Ping(bytes)) => {
                if self.outbox.push_control(Outbound::Pong(bytes)).is_err() {
                    ctx.stop();
                }
            }
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(reason)) => {
                let _ = self.outbox.push_control(Outbound::Close(reason));
                ctx.stop();
            }
            Err(e) if is_too_big(&e) => {
                let limit = self.state.socket.max_message_size;
                self.close(
                    CloseCode::Size,
                    &format!("message too big (limit {limit} bytes)"),
                    ctx,
                );
            }
            Err(ProtocolError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                self.close(CloseCode::Invalid, "text frames must be UTF-8", ctx);
            }
            Err(e) => {
                tracing::debug!(error = %e, "socket protocol error");
                self.close(CloseCode::Protocol, "protocol error", ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Hands queued frames to the connection, in order. Ends when every sender is gone (after a
/// close frame), after sending a queued close, or at once when `kill` is cancelled.
async fn run_writer(
    mut session: Writer,
    mut rx: OutboxReceiver,
    kill: CancellationToken,
    queued: Arc<AtomicUsize>,
    write_timeout: Duration,
    slow: metrics::Counter,
) {
    let too_slow = || CloseReason {
        code: CloseCode::Policy,
        description: Some("client is not reading".into()),
    };
    loop {
        let item = tokio::select! {
            biased;
            _ = kill.cancelled() => {
                slow.increment(1);
                let _ = tokio::time::timeout(Duration::from_millis(100), session.close(Some(too_slow()))).await;
                return;
            }
            item = rx.recv() => item,
        };
        let item = match item {
            None => {
                let _ = tokio::time::timeout(write_timeout, session.close(None)).await;
                return;
            }
            Some(Outbound::Close(reason)) => {
                let _ = tokio::time::timeout(write_timeout, session.close(reason)).await;
                kill.cancel();
                return;
            }
            Some(item) => item,
        };
        let sent = tokio::select! {
            biased;
            _ = kill.cancelled() => continue,
            sent = tokio::time::timeout(write_timeout, async {
                match item {
                    Outbound::Text(text) => {
                        queued.fetch_sub(text.len(), Ordering::AcqRel);
                        session.text(text).await
                    }
                    Outbound::Binary(bytes) => {
                        queued.fetch_sub(bytes.len(), Ordering::AcqRel);
                        session.binary(bytes).await
                    }
                    Outbound::Ping => session.ping().await,
                    Outbound::Pong(bytes) => session.pong(&bytes).await,
                    Outbound::Close(_) => Ok(()),
                }
            }) => sent,
        };
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(_closed)) => {
                // The connection is gone: stop the actor, end the writer.
                kill.cancel();
                return;
            }
            Err(_elapsed) => {
                tracing::info!("disconnecting a socket whose client does not take its messages");
                slow.increment(1);
                kill.cancel();
                return;
            }
        }
    }
}
