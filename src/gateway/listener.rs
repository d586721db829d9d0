//! The client listener (the node's, and the tests' gateway servers): the client app served by actix-http's `HttpService`, as actix-web's
//! `HttpServer` serves it (same keep-alive, request and disconnect timeouts, backlog, graceful
//! stop), plus the one thing `HttpServer` cannot be given: an upgrade service. WebSocket upgrades
//! leave the HTTP connection for [`upgrade`], so an idle socket does not keep the
//! HTTP dispatcher (and its two 8 KiB buffers) alive for its whole life.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::{HttpService, KeepAlive, Request, Response};
use actix_server::ServerBuilder;
use actix_service::{map_config, IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt};
use actix_web::dev::AppConfig;
use actix_web::Error;

use super::{upgrade, GatewayState};

/// How long an open connection may still deliver a request once a graceful stop began, before
/// it is closed as idle. actix signals every connection in the instant it stops accepting; a
/// request already on its way then (a keep-alive client's next one, or a new connection's
/// first) would be read by no one and its connection closed without an answer. With the
/// grace it is read and answered (a drained node answers what it no longer serves as not
/// run), and the stop takes this much longer only while idle connections are open.
const REQUEST_GRACE: Duration = Duration::from_millis(500);

/// Binds `addr` (address reuse on, backlog 1024, as `HttpServer` binds) and prepares the
/// server of `app` without starting it (`run` starts it); returns it with the address bound
/// (the port, when `addr` asked for any).
pub fn bind<F, I, S, B>(
    addr: SocketAddr,
    app: F,
    gateway: GatewayState,
) -> std::io::Result<(ServerBuilder, SocketAddr)>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(1024)?.into_std()?;
    let bound = listener.local_addr()?;
    let builder = actix_server::Server::build();
    let graceful = builder.graceful_shutdown_signal();
    let server = builder
        .disable_signals()
        .shutdown_timeout(10)
        .backlog(1024)
        .listen("serai-client", listener, move || {
            let signal = graceful.clone();
            let fac = app()
                .into_factory()
                .map_err(|err| err.into().error_response());
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let signal = signal.clone();
                    async move {
                        signal.notified().await;
                        tokio::time::sleep(REQUEST_GRACE).await;
                    }
                })
                .keep_alive(KeepAlive::default())
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(bound)
                .upgrade(upgrade::service(gateway.clone()))
                .finish(map_config(fac, |_| AppConfig::default()))
                .tcp()
        })?;
    Ok((server, bound))
}
