//! The figures of database writes: each write (a transaction with its retries, one flush
//! transaction, one leaderboard batch) by operation, with its duration and whether it failed,
//! and each failed attempt by class, so that serialization conflicts (SQLSTATE 40001) are
//! counted apart from lost connections.

use std::time::Instant;

use tokio_postgres::error::SqlState;

use super::{Db, DbError};

impl DbError {
    /// The class of a failure of the database, for the figures: `serialization` (40001),
    /// `deadlock`, `connection` (lost, refused or no connection in time), `timeout` (a
    /// statement cancelled by `statement_timeout`), `commit_unknown`, `bad_row` (the server
    /// refused the data: class 22 or 23), `other`. `None` for the answers that are no failure
    /// of the database: fenced, claimed, not found, rejected, a duplicate request.
    pub fn failure_class(&self) -> Option<&'static str> {
        match self {
            DbError::Unavailable(_) | DbError::Connect { .. } => Some("connection"),
            DbError::CommitUnknown(_) => Some("commit_unknown"),
            DbError::Migration(_) => Some("other"),
            DbError::Sql(e) => Some(match e.code() {
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => "serialization",
                Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => "deadlock",
                Some(c) if *c == SqlState::QUERY_CANCELED => "timeout",
                Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW => {
                    "connection"
                }
                Some(c) if c.code().starts_with("08") => "connection",
                Some(_) if self.is_bad_row() => "bad_row",
                Some(_) => "other",
                None if e.is_closed() || e.to_string().contains("connection") => "connection",
                None => "other",
            }),
            DbError::Fenced(_)
            | DbError::NotFound(_)
            | DbError::Rejected(_)
            | DbError::Claimed(_)
            | DbError::DuplicateRequest => None,
        }
    }
}

impl Db {
    /// Counts one failed attempt of a write of `op` by the class of its error (retried or not).
    pub(crate) fn count_attempt<T>(&self, op: &'static str, attempt: &Result<T, DbError>) {
        if let Some(class) = attempt.as_ref().err().and_then(DbError::failure_class) {
            self.metrics().db_error(op, class);
        }
    }

    /// Records one write of `op` begun at `started` and ended with `result`.
    pub(crate) fn record_write<T>(
        &self,
        op: &'static str,
        started: Instant,
        result: &Result<T, DbError>,
    ) {
        let failure = result.as_ref().err().and_then(DbError::failure_class);
        self.metrics()
            .db_write(op, started.elapsed().as_secs_f64(), failure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_not_failures_and_outages_are() {
        for answer in [
            DbError::Fenced("x".into()),
            DbError::NotFound("x".into()),
            DbError::Rejected("x".into()),
            DbError::Claimed("x".into()),
            DbError::DuplicateRequest,
        ] {
            assert_eq!(answer.failure_class(), None, "{answer}");
        }
        assert_eq!(
            DbError::Unavailable("pool".into()).failure_class(),
            Some("connection")
        );
        assert_eq!(
            DbError::CommitUnknown("reset".into()).failure_class(),
            Some("commit_unknown")
        );
    }
}
