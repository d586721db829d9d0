//! CORS on the client listener, as Nakama does it: its HTTP gateway is wrapped in gorilla's
//! `handlers.CORS` with origins `*`, methods GET, HEAD, POST, PUT, DELETE and the headers
//! Authorization, Content-Type, User-Agent (server/api.go). So a browser build of a game on
//! any origin can call the API:
//!
//! - A preflight (`OPTIONS` with an `Origin`) is answered here and never reaches a route: 400
//!   without `Access-Control-Request-Method`, 405 for a method not allowed, 403 when it asks
//!   for a header not allowed; else 200 with `Access-Control-Allow-Headers` naming the
//!   requested headers that are not CORS-safelisted and `Access-Control-Allow-Methods`
//!   naming the method when it is not GET, HEAD or POST (gorilla's answers).
//! - Every answer carries `Access-Control-Allow-Origin: *`. Gorilla adds it only when the
//!   request has an `Origin`; a browser always sends one cross-origin, and the header on
//!   every answer is harmless (no credentials are ever allowed).
//!
//! One addition to Nakama's headers: `X-Request-Id`, which this node honours (see
//! [`super::access`]), so a browser client may send its own.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::HttpResponse;

/// Methods a preflight may ask for (Nakama's list).
pub const ALLOWED_METHODS: [&str; 5] = ["GET", "HEAD", "POST", "PUT", "DELETE"];
/// Request headers a preflight may ask for, besides the safelisted ones (canonical form).
pub const ALLOWED_HEADERS: [&str; 4] = [
    "Authorization",
    "Content-Type",
    "User-Agent",
    "X-Request-Id",
];
/// Headers gorilla always accepts without naming them back.
const SIMPLE_HEADERS: [&str; 4] = ["Accept", "Accept-Language", "Content-Language", "Origin"];
/// Methods a browser sends without a preflight: gorilla names only the others back.
const SIMPLE_METHODS: [&str; 3] = ["GET", "HEAD", "POST"];

/// Go's `http.CanonicalHeaderKey`: each dash-separated word capitalised.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The answer to a preflight: its status and, when allowed, the headers to set.
#[derive(Debug, PartialEq, Eq)]
pub struct Preflight {
    pub status: StatusCode,
    pub allow_methods: Option<String>,
    pub allow_headers: Option<String>,
}

impl Preflight {
    fn refused(status: StatusCode) -> Preflight {
        Preflight {
            status,
            allow_methods: None,
            allow_headers: None,
        }
    }
}

/// Decides a preflight from its `Access-Control-Request-Method` and
/// `Access-Control-Request-Headers` values (gorilla's rules).
pub fn preflight(request_method: Option<&str>, request_headers: Option<&str>) -> Preflight {
    let Some(method) = request_method else {
        return Preflight::refused(StatusCode::BAD_REQUEST);
    };
    if !ALLOWED_METHODS.contains(&method) {
        return Preflight::refused(StatusCode::METHOD_NOT_ALLOWED);
    }
    let mut named = Vec::new();
    for requested in request_headers.unwrap_or("").split(',') {
        let h = canonical(requested.trim());
        if h.is_empty() || SIMPLE_HEADERS.contains(&h.as_str()) {
            continue;
        }
        if !ALLOWED_HEADERS.contains(&h.as_str()) {
            return Preflight::refused(StatusCode::FORBIDDEN);
        }
        named.push(h);
    }
    Preflight {
        status: StatusCode::OK,
        allow_methods: (!SIMPLE_METHODS.contains(&method)).then(|| method.to_string()),
        allow_headers: (!named.is_empty()).then(|| named.join(",")),
    }
}

fn text<'a>(req: &'a ServiceRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Middleware on the client listener: answers preflights, marks every answer.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let any = HeaderValue::from_static("*");
    if req.method() == Method::OPTIONS && req.headers().contains_key(header::ORIGIN) {
        let p = preflight(
            text(&req, "access-control-request-method"),
            text(&req, "access-control-request-headers"),
        );
        let mut answer = HttpResponse::build(p.status);
        if p.status == StatusCode::OK {
            answer.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, any));
            if let Some(m) = p.allow_methods {
                answer.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, m));
            }
            if let Some(h) = p.allow_headers {
                answer.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, h));
            }
        }
        return Ok(req.into_response(answer.finish()).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    res.headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, any);
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_like_go() {
        assert_eq!(canonical("content-type"), "Content-Type");
        assert_eq!(canonical("AUTHORIZATION"), "Authorization");
        assert_eq!(canonical("x-request-id"), "X-Request-Id");
    }

    #[test]
    fn preflights_as_gorilla_answers_them() {
        let ok = preflight(Some("POST"), Some("authorization, content-type"));
        assert_eq!(
            ok,
            Preflight {
                status: StatusCode::OK,
                allow_methods: None,
                allow_headers: Some("Authorization,Content-Type".into()),
            }
        );
        let delete = preflight(Some("DELETE"), Some("accept,authorization"));
        assert_eq!(delete.allow_methods.as_deref(), Some("DELETE"));
        assert_eq!(delete.allow_headers.as_deref(), Some("Authorization"));
        assert_eq!(preflight(Some("GET"), None).allow_headers, None);
        assert_eq!(preflight(None, None).status, StatusCode::BAD_REQUEST);
        assert_eq!(
            preflight(Some("PATCH"), None).status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            preflight(Some("GET"), Some("x-secret")).status,
            StatusCode::FORBIDDEN
        );
    }
}
