//! Idempotent requests for a session: a repeat of a request the session (or any earlier owner
//! of the character, on any node) already applied returns the stored answer and changes
//! nothing; a reuse of the `request_id` for another request is refused.
//!
//! Where a repeat is recognised: in the session's memory ([`Answers`]) when it applied the
//! request itself; in the database when the change's transaction fails on the receipt's key
//! (the change rolls back with it); and when a rule refuses the repeat (the state it left, e.g.
//! spent gold, would refuse it again) the refusal stands only if no receipt exists.

use serde::de::DeserializeOwned;

use super::messages::{SessionError, SessionResult};
use crate::persistence::receipts::{self, Receipt};
use crate::persistence::{Db, DbError};
use crate::request::{Answers, Call, Failure, Replay, RequestKey};

/// The answer stored in memory for a repeat of `call`, if any.
pub fn from_memory<T: DeserializeOwned>(
    answers: &Answers,
    call: &Call,
) -> Option<SessionResult<T>> {
    match answers.replay(call.key.as_ref()?)? {
        Replay::Same(json) => Some(decode(&json)),
        Replay::Conflict => Some(Err(SessionError::Conflict)),
    }
}

fn decode<T: DeserializeOwned>(json: &str) -> SessionResult<T> {
    serde_json::from_str(json).map_err(|e| {
        SessionError::Failed(Failure::may_have_run(format!(
            "the stored answer is unreadable: {e}"
        )))
    })
}

/// The answer stored in the database under `key`, if the request was applied before.
pub async fn stored<T: DeserializeOwned>(db: &Db, key: &RequestKey) -> SessionResult<Option<T>> {
    let found = receipts::find(db, key.user_id, &key.request_id)
        .await
        .map_err(|e| SessionError::Failed(e.failure()))?;
    match found {
        None => Ok(None),
        Some(s) if s.fingerprint != key.fingerprint => Err(SessionError::Conflict),
        Some(s) => decode(&s.answer).map(Some),
    }
}

/// A refusal of a keyed request stands only if the request was not applied before.
pub async fn refusal_or_stored<T: DeserializeOwned>(
    db: &Db,
    key: Option<&RequestKey>,
    refusal: SessionError,
) -> SessionResult<T> {
    match (key, &refusal) {
        // A deleted character is not found by its repeat; a spent purse refuses it.
        (
            Some(key),
            SessionError::Refused(_) | SessionError::Invalid(_) | SessionError::NotFound,
        ) => stored(db, key).await?.ok_or(refusal),
        _ => Err(refusal),
    }
}

/// What a critical write of a keyed request came to.
pub enum Written<T, W> {
    /// Applied before: the stored answer; memory already holds (or reloaded) the change.
    Replayed(T),
    /// Committed now: what the session applies to its memory.
    Committed(W),
}

/// Sorts the result of a critical write: a duplicate key, or a refusal of a request applied
/// before, becomes the stored answer (or `Conflict`: the outer error); any other write error
/// is handed back (inner) for the session to handle.
pub async fn settle<T: DeserializeOwned, W>(
    db: &Db,
    key: Option<&RequestKey>,
    result: Result<W, DbError>,
) -> SessionResult<Result<Written<T, W>, DbError>> {
    let (key, e) = match (key, result) {
        (_, Ok(w)) => return Ok(Ok(Written::Committed(w))),
        (Some(key), Err(e @ (DbError::DuplicateRequest | DbError::Rejected(_)))) => (key, e),
        (_, Err(e)) => return Ok(Err(e)),
    };
    match (stored(db, key).await?, e) {
        (Some(answer), _) => Ok(Ok(Written::Replayed(answer))),
        (None, DbError::DuplicateRequest) => Err(SessionError::Failed(Failure::not_run(
            "the request's stored answer expired meanwhile",
        ))),
        (None, e) => Ok(Err(e)),
    }
}

/// The receipt of `answer` for `call`, to store with its change.
pub fn receipt<T: serde::Serialize>(call: &Call, answer: &T) -> Option<Receipt> {
    Receipt::of(call.key.as_ref(), answer)
}
