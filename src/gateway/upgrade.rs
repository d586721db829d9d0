//! WebSocket upgrades on the client listener: the HTTP server hands every upgrade request here
//! together with its connection ([`service`]); `/ws` is authenticated exactly as the route in
//! [`super::socket::connect`] does, answered `101 Switching Protocols`, and the socket then owns
//! the TCP stream ([`super::ws_io`]). The HTTP connection (its dispatcher and buffers) ends
//! there: an idle socket keeps only what the socket itself needs.
//!
//! Anything refused (another path, a bad token, a malformed handshake) gets the same JSON error
//! the HTTP route gives, and the connection is closed.

use actix_codec::Framed;
use actix_http::body::BodySize;
use actix_http::{h1, ws, ConnectionType, HttpMessage, Request, Response};
use actix_service::{fn_service, ServiceFactory};
use actix_web::{HttpResponse, ResponseError};
use futures_util::SinkExt;
use tokio::net::TcpStream;

use super::error::ApiError;
use super::socket;
use super::GatewayState;

/// An upgrade request's connection, with the bytes read past its head.
pub type Upgraded = Framed<TcpStream, h1::Codec>;

/// The upgrade service of the client listener's HTTP service.
pub fn service(
    state: GatewayState,
) -> impl ServiceFactory<
    (Request, Upgraded),
    Config = (),
    Response = (),
    Error = actix_web::Error,
    InitError = (),
> + Clone {
    fn_service(move |(req, framed): (Request, Upgraded)| serve(state.clone(), req, framed))
}

async fn serve(
    state: GatewayState,
    req: Request,
    mut framed: Upgraded,
) -> Result<(), actix_web::Error> {
    if req.path() != "/ws" {
        let refused = ApiError::not_found("Not Found: no such API endpoint.");
        return refuse(&mut framed, refused.error_response()).await;
    }
    let accepted = socket::authorize(&state, req.uri().query().unwrap_or(""), req.headers());
    let (user, codec) = match accepted {
        Ok(ok) => ok,
        Err(e) => return refuse(&mut framed, e.error_response()).await,
    };
    let response = match ws::handshake(req.head()) {
        Ok(mut builder) => builder.finish(),
        Err(e) => {
            let refused =
                ApiError::invalid_argument(format!("Expected a WebSocket upgrade request: {e}."));
            return refuse(&mut framed, refused.error_response()).await;
        }
    };
    framed
        .send(h1::Message::Item((response.drop_body(), BodySize::None)))
        .await?;
    let parts = framed.into_parts();
    // Each frame is written as it is sent (no dispatcher gathers them): no Nagle delay for a
    // frame that follows an unacknowledged one.
    parts.io.set_nodelay(true)?;
    let (read, write) = parts.io.into_split();
    socket::start_owned(state, user, codec, read, parts.read_buf, write);
    Ok(())
}

/// Answers `res` (head and whole body) and lets the connection close.
async fn refuse(framed: &mut Upgraded, res: HttpResponse) -> Result<(), actix_web::Error> {
    let (res, body) = res.into_parts();
    let body = actix_web::body::to_bytes(body).await.unwrap_or_default();
    let mut head: Response<()> = res.into();
    head.head_mut().set_connection_type(ConnectionType::Close);
    // Head and body in one write: a client may read only what came with the head.
    framed
        .feed(h1::Message::Item((
            head,
            BodySize::Sized(body.len() as u64),
        )))
        .await?;
    framed.feed(h1::Message::Chunk(Some(body))).await?;
    framed.send(h1::Message::Chunk(None)).await?;
    Ok(())
}
