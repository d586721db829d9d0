//! Errors of the client API, in Nakama's gateway shape.
//!
//! Every HTTP error the gateway answers is `{"error": msg, "message": msg, "code": n}` where `n`
//! is a gRPC status code and the HTTP status follows grpc-gateway's table (3 → 400, 5 → 404,
//! 6 → 409, 7 → 403, 9 → 400, 13 → 500, 16 → 401, …), which is what nakama-js and the other
//! Nakama SDKs expect.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The gRPC status codes the gateway answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum GrpcCode {
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl GrpcCode {
    /// The code for a raw number; anything outside 1..=16 is `Unknown`.
    pub fn from_i32(code: i32) -> GrpcCode {
        use GrpcCode::*;
        match code {
            1 => Cancelled,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            _ => Unknown,
        }
    }

    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The HTTP status grpc-gateway (and so Nakama) answers for this code.
    pub fn http_status(self) -> StatusCode {
        use GrpcCode::*;
        match self {
            InvalidArgument | FailedPrecondition | OutOfRange => StatusCode::BAD_REQUEST,
            Unauthenticated => StatusCode::UNAUTHORIZED,
            PermissionDenied => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            AlreadyExists | Aborted => StatusCode::CONFLICT,
            ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Unknown | Internal | DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to an HTTP client: a gRPC code and a message for the client developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: GrpcCode,
    pub message: Cow<'static, str>,
}

impl ApiError {
    pub fn new(code: GrpcCode, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_argument(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(GrpcCode::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(GrpcCode::NotFound, message)
    }

    pub fn already_exists(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(GrpcCode::AlreadyExists, message)
    }

    pub fn unauthenticated(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(GrpcCode::Unauthenticated, message)
    }

    /// An internal failure: the detail goes to the log, the client sees a generic message.
    pub fn internal(detail: impl fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error answering a client request");
        ApiError::new(GrpcCode::Internal, "Internal server error.")
    }

    /// The JSON body, as Nakama writes it.
    pub fn body(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            message: &'a str,
            code: i32,
        }
        serde_json::to_string(&Body {
            error: &self.message,
            message: &self.message,
            code: self.code.as_i32(),
        })
        .unwrap_or_else(|_| {
            r#"{"error":"Internal server error.","message":"Internal server error.","code":13}"#
                .into()
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code.as_i32())
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.http_status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("application/json")
            .body(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nakama_status_table() {
        let table = [
            (3, 400),
            (5, 404),
            (6, 409),
            (7, 403),
            (9, 400),
            (13, 500),
            (16, 401),
        ];
        for (code, status) in table {
            assert_eq!(
                GrpcCode::from_i32(code).http_status().as_u16(),
                status,
                "code {code}"
            );
            assert_eq!(GrpcCode::from_i32(code).as_i32(), code);
        }
        assert_eq!(GrpcCode::from_i32(99), GrpcCode::Unknown);
        assert_eq!(GrpcCode::from_i32(0), GrpcCode::Unknown);
    }

    #[test]
    fn body_has_error_message_and_code() {
        let e = ApiError::not_found("User account not found.");
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["code"], 5);
        assert_eq!(v["message"], "User account not found.");
        assert_eq!(v["error"], "User account not found.");
        assert_eq!(e.error_response().status(), StatusCode::NOT_FOUND);
    }
}
