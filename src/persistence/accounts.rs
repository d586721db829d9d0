//! Users and the device / custom ids that authenticate them.
//!
//! Signing up is one statement in its own implicit transaction, at the database's default
//! isolation (READ COMMITTED on PostgreSQL, SERIALIZABLE on CockroachDB) and no more: it looks
//! the id up, inserts the id's row only if it is absent (`ON CONFLICT (id) DO NOTHING`) and the
//! user row only if that insert happened, and answers either the new or the existing account.
//! Nothing is read that another sign-up writes, except the id itself, so sign-ups of different
//! ids never conflict (CockroachDB included: the keys they touch are disjoint). Two sign-ups
//! of the same id at once: one inserts, the other's insert waits for it and does nothing, and
//! a lookup then answers the winner's account — one account, no retry.
//!
//! A returning player is the same statement's indexed lookup (or [`find`] when creating is
//! not allowed): one round trip either way.

use std::time::Instant;

use rand::Rng;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::{Db, DbError};

/// The two kinds of id a client authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Device,
    Custom,
}

impl IdKind {
    /// The table that links ids of this kind to users.
    pub(crate) fn table(self) -> &'static str {
        match self {
            IdKind::Device => "user_device",
            IdKind::Custom => "user_custom",
        }
    }

    fn find_sql(self) -> &'static str {
        match self {
            IdKind::Device => "SELECT u.id, u.username FROM user_device d JOIN users u ON u.id = d.user_id WHERE d.id = $1",
            IdKind::Custom => "SELECT u.id, u.username FROM user_custom c JOIN users u ON u.id = c.user_id WHERE c.id = $1",
        }
    }

    /// $1 new user id, $2 username, $3 the id. Answers one row (id, username, created), or
    /// none when a concurrent sign-up of the same id committed after this statement began.
    /// The foreign key of the link row is checked at the end of the statement, when the
    /// user row is there.
    fn signup_sql(self) -> &'static str {
        match self {
            IdKind::Device => {
                "WITH existing AS (
                    SELECT u.id, u.username FROM user_device d JOIN users u ON u.id = d.user_id
                    WHERE d.id = $3
                 ), linked AS (
                    INSERT INTO user_device (id, user_id)
                    SELECT $3, $1 WHERE NOT EXISTS (SELECT 1 FROM existing)
                    ON CONFLICT (id) DO NOTHING
                    RETURNING user_id
                 ), created AS (
                    INSERT INTO users (id, username, create_time, update_time)
                    SELECT user_id, $2, now(), now() FROM linked
                    RETURNING id, username
                 )
                 SELECT id, username, true FROM created
                 UNION ALL
                 SELECT id, username, false FROM existing"
            }
            IdKind::Custom => {
                "WITH existing AS (
                    SELECT u.id, u.username FROM user_custom c JOIN users u ON u.id = c.user_id
                    WHERE c.id = $3
                 ), linked AS (
                    INSERT INTO user_custom (id, user_id)
                    SELECT $3, $1 WHERE NOT EXISTS (SELECT 1 FROM existing)
                    ON CONFLICT (id) DO NOTHING
                    RETURNING user_id
                 ), created AS (
                    INSERT INTO users (id, username, create_time, update_time)
                    SELECT user_id, $2, now(), now() FROM linked
                    RETURNING id, username
                 )
                 SELECT id, username, true FROM created
                 UNION ALL
                 SELECT id, username, false FROM existing"
            }
        }
    }
}

/// The account an id authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub user_id: Uuid,
    pub username: String,
    /// True when this call created the account.
    pub created: bool,
}

/// Why authentication found no account to answer.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The id is unknown and creating was not allowed.
    #[error("User account not found.")]
    NotFound,
    /// The requested username belongs to another account.
    #[error("Username is already in use.")]
    UsernameTaken,
    /// The password does not match the account's.
    #[error("Invalid credentials.")]
    InvalidCredentials,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A username for an account that did not ask for one: 10 random lowercase ASCII letters.
pub fn generate_username() -> String {
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
        .collect()
}

/// How many times one sign-up statement is run at most: again with a new generated username
/// when the drawn one is taken, or after a serialization failure (CockroachDB only, and only
/// when it could not retry the implicit transaction itself).
pub(crate) const SIGNUP_ATTEMPTS: usize = 8;

/// Why a sign-up statement ran again: counted in `serai_account_signup_retries_total`.
pub(crate) fn count_retry(db: &Db, reason: &'static str) {
    db.metrics()
        .counter("serai_account_signup_retries_total", "reason", reason)
        .increment(1);
}

/// Whether `e` is a unique violation of the users' username.
pub(crate) fn username_conflict(e: &DbError) -> bool {
    match e {
        DbError::Sql(e) => {
            // The constraint's name where the server reports it, else its message (the name
            // is `users_username_key` on PostgreSQL and CockroachDB alike).
            e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                && e.as_db_error().is_some_and(|d| {
                    d.constraint().map_or_else(
                        || d.message().contains("username"),
                        |c| c.contains("username"),
                    )
                })
        }
        _ => false,
    }
}

/// Finds the account of `id`, creating it (with `username`, or a generated one) when it does not
/// exist and `create` is set.
pub async fn authenticate(
    db: &Db,
    kind: IdKind,
    id: &str,
    username: Option<&str>,
    create: bool,
) -> Result<Authenticated, AccountError> {
    if !create {
        return find(db, kind, id).await?.ok_or(AccountError::NotFound);
    }
    let started = Instant::now();
    let result = signup(db, kind, id, username).await;
    let failure = match &result {
        Err(AccountError::Db(e)) => Some(if e.is_retryable() {
            "connection"
        } else {
            "other"
        }),
        _ => None,
    };
    db.metrics()
        .db_write("signup", started.elapsed().as_secs_f64(), failure);
    result
}

async fn signup(
    db: &Db,
    kind: IdKind,
    id: &str,
    username: Option<&str>,
) -> Result<Authenticated, AccountError> {
    let client = db.client().await?;
    let stmt = client
        .prepare_cached(kind.signup_sql())
        .await
        .map_err(DbError::from)?;
    for _ in 0..SIGNUP_ATTEMPTS {
        let name = username
            .map(str::to_string)
            .unwrap_or_else(generate_username);
        match client
            .query_opt(&stmt, &[&Uuid::new_v4(), &name, &id])
            .await
        {
            Ok(Some(row)) => {
                return Ok(Authenticated {
                    user_id: row.try_get(0).map_err(DbError::from)?,
                    username: row.try_get(1).map_err(DbError::from)?,
                    created: row.try_get(2).map_err(DbError::from)?,
                })
            }
            // A concurrent sign-up of the same id committed first: answer its account.
            Ok(None) => {
                drop(client);
                return find(db, kind, id).await?.ok_or_else(|| {
                    AccountError::Db(DbError::Unavailable(
                        "the account of this id was created and removed at once".into(),
                    ))
                });
            }
            Err(e) => {
                let e = DbError::from(e);
                if username_conflict(&e) {
                    if username.is_some() {
                        return Err(AccountError::UsernameTaken);
                    }
                    count_retry(db, "username");
                } else if e.sqlstate() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) {
                    count_retry(db, "serialization");
                } else {
                    return Err(e.into());
                }
            }
        }
    }
    Err(AccountError::Db(DbError::Rejected(
        "could not create the account: no free username drawn, or too many conflicts".into(),
    )))
}

/// The account linked to `id`, if any.
pub async fn find(db: &Db, kind: IdKind, id: &str) -> Result<Option<Authenticated>, DbError> {
    let client = db.client().await?;
    let stmt = client.prepare_cached(kind.find_sql()).await?;
    let row = client.query_opt(&stmt, &[&id]).await?;
    match row {
        Some(row) => Ok(Some(Authenticated {
            user_id: row.try_get(0)?,
            username: row.try_get(1)?,
            created: false,
        })),
        None => Ok(None),
    }
}

/// The current username of a user, or None if the user no longer exists.
pub async fn username(db: &Db, user_id: Uuid) -> Result<Option<String>, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt("SELECT username FROM users WHERE id = $1", &[&user_id])
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_usernames_are_ten_lowercase_letters() {
        for _ in 0..100 {
            let u = generate_username();
            assert_eq!(u.len(), 10);
            assert!(u.bytes().all(|b| b.is_ascii_lowercase()));
        }
    }
}
