//! Every client HTTP request gets a request id and, unless switched off (`access_log`), one
//! access log line at info level with target `serai::access`.
//!
//! The id is the request's `X-Request-Id` header when it carries a usable one (visible ASCII,
//! at most 128 characters), otherwise a fresh UUID v4. It is sent back in the response's
//! `X-Request-Id` header, stored in the request's extensions as [`RequestId`], and the
//! handler runs as that request ([`crate::request::traced`]): every log line it causes on
//! this node carries the id, and so do the forwards it sends to other nodes.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being served (in its extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The caller's id if usable, else a fresh one.
pub fn request_id_from(header: Option<&HeaderValue>) -> String {
    header
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), String::from)
}

/// Middleware (outermost on the client listener): assigns the request id, runs the rest of
/// the chain as that request ([`crate::request::traced`]: its span, and the id on forwards),
/// and returns the id in the response.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id_from(req.headers().get(REQUEST_ID_HEADER));
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = crate::request::traced(id.as_str().into(), next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(res)
}

/// Middleware (inside [`request_id`]): one line per request with method, path, status,
/// duration and request id.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_string();
    let id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let answer = next.call(req).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = match &answer {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    tracing::info!(
        target: "serai::access",
        method = %method,
        path = %path,
        status,
        duration_ms = format!("{duration_ms:.1}"),
        request_id = %id,
        "{method} {path} {status}"
    );
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usable_header_is_kept_and_anything_else_replaced() {
        let keep = HeaderValue::from_static("abc-123");
        assert_eq!(request_id_from(Some(&keep)), "abc-123");
        let fresh = request_id_from(None);
        assert!(uuid::Uuid::parse_str(&fresh).is_ok(), "{fresh}");
        let spaced = HeaderValue::from_static("a b");
        assert_ne!(request_id_from(Some(&spaced)), "a b");
        let long = HeaderValue::from_str(&"x".repeat(129)).unwrap();
        assert_eq!(request_id_from(Some(&long)).len(), 36);
    }
}
