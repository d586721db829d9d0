//! A [`LeaderboardError`] as Nakama answers it: the same condition is worded per call.

use crate::gateway::{ApiError, GrpcCode};
use crate::leaderboard::messages::{Api, LeaderboardError};

/// Where an error is answered: Nakama words the same condition differently per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Write,
    Read,
    Delete,
}

pub(super) fn api_error(e: LeaderboardError, call: Call) -> ApiError {
    match e {
        LeaderboardError::NotFound(Api::Leaderboard) => {
            ApiError::not_found("Leaderboard not found.")
        }
        LeaderboardError::NotFound(Api::Tournament) => ApiError::not_found("Tournament not found."),
        LeaderboardError::Ended => match call {
            Call::Write => ApiError::not_found("Tournament not found or has ended."),
            _ => ApiError::not_found("Tournament has ended."),
        },
        LeaderboardError::Write(e, api, join) => {
            let s = e.status(LeaderboardError::site(api, join));
            ApiError::new(GrpcCode::from_i32(s.grpc_code), s.message)
        }
        LeaderboardError::InvalidCursor => {
            ApiError::invalid_argument("Cursor is invalid or expired.")
        }
        LeaderboardError::InvalidArgument(m) => ApiError::invalid_argument(m),
        LeaderboardError::Unavailable => ApiError::new(
            GrpcCode::Unavailable,
            "Service temporarily unavailable, try again.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaderboard::rules::WriteError;

    #[test]
    fn errors_have_nakamas_codes() {
        let e = api_error(LeaderboardError::NotFound(Api::Leaderboard), Call::Read);
        assert_eq!(
            (e.code, e.message.as_ref()),
            (GrpcCode::NotFound, "Leaderboard not found.")
        );
        let e = api_error(
            LeaderboardError::write(WriteError::Authoritative, Api::Leaderboard),
            Call::Write,
        );
        assert_eq!(e.code, GrpcCode::PermissionDenied);
        let e = api_error(LeaderboardError::Ended, Call::Write);
        assert_eq!(e.message, "Tournament not found or has ended.");
    }
}
