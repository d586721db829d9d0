//! Users and the device / custom ids that authenticate them.
//!
//! Creating an account is one statement (the user row and its id link together), run through
//! [`Db::transact`] so a serialization failure is retried whole. Two clients creating the same
//! id at once end with one user: the loser's insert conflicts on the id's primary key and it
//! answers the winner's account. A generated username that collides is simply drawn again.

use chrono::{DateTime, Utc};
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
    fn find_sql(self) -> &'static str {
        match self {
            IdKind::Device => "SELECT u.id, u.username FROM user_device d JOIN users u ON u.id = d.user_id WHERE d.id = $1",
            IdKind::Custom => "SELECT u.id, u.username FROM user_custom c JOIN users u ON u.id = c.user_id WHERE c.id = $1",
        }
    }

    fn create_sql(self) -> &'static str {
        match self {
            IdKind::Device => {
                "WITH new_user AS (
                    INSERT INTO users (id, username, create_time, update_time)
                    VALUES ($1, $2, now(), now()) RETURNING id
                 )
                 INSERT INTO user_device (id, user_id) SELECT $3, id FROM new_user"
            }
            IdKind::Custom => {
                "WITH new_user AS (
                    INSERT INTO users (id, username, create_time, update_time)
                    VALUES ($1, $2, now(), now()) RETURNING id
                 )
                 INSERT INTO user_custom (id, user_id) SELECT $3, id FROM new_user"
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

enum Attempt {
    Found(Uuid, String),
    Missing,
    Created(Uuid, String),
}

/// How many generated usernames are tried before giving up (a collision is already rare).
const USERNAME_ATTEMPTS: usize = 8;

/// Finds the account of `id`, creating it (with `username`, or a generated one) when it does not
/// exist and `create` is set.
pub async fn authenticate(
    db: &Db,
    kind: IdKind,
    id: &str,
    username: Option<&str>,
    create: bool,
) -> Result<Authenticated, AccountError> {
    // The common case (a returning player) is one query outside any transaction.
    if let Some(found) = find(db, kind, id).await? {
        return Ok(found);
    }
    if !create {
        return Err(AccountError::NotFound);
    }
    for _ in 0..USERNAME_ATTEMPTS {
        let name = username
            .map(str::to_string)
            .unwrap_or_else(generate_username);
        let new_id = Uuid::new_v4();
        let attempt = db
            .transact("authenticate", |tx| {
                let (id, name) = (id.to_string(), name.clone());
                Box::pin(async move {
                    if let Some(row) = tx.query_opt(kind.find_sql(), &[&id]).await? {
                        return Ok(Attempt::Found(row.try_get(0)?, row.try_get(1)?));
                    }
                    if !create {
                        return Ok(Attempt::Missing);
                    }
                    tx.execute(kind.create_sql(), &[&new_id, &name, &id])
                        .await?;
                    Ok(Attempt::Created(new_id, name))
                })
            })
            .await;
        match attempt {
            Ok(Attempt::Found(user_id, username)) => {
                return Ok(Authenticated {
                    user_id,
                    username,
                    created: false,
                })
            }
            Ok(Attempt::Created(user_id, username)) => {
                return Ok(Authenticated {
                    user_id,
                    username,
                    created: true,
                })
            }
            Ok(Attempt::Missing) => return Err(AccountError::NotFound),
            Err(e) if e.sqlstate() == Some(&SqlState::UNIQUE_VIOLATION) => {
                // Either the id was created concurrently (answer that account) or the username
                // is taken (refuse a requested one, draw a generated one again).
                if let Some(found) = find(db, kind, id).await? {
                    return Ok(found);
                }
                if username.is_some() {
                    return Err(AccountError::UsernameTaken);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(AccountError::Db(DbError::Rejected(
        "could not draw a free username".into(),
    )))
}

/// The account linked to `id`, if any.
pub async fn find(db: &Db, kind: IdKind, id: &str) -> Result<Option<Authenticated>, DbError> {
    let client = db.client().await?;
    let row = client.query_opt(kind.find_sql(), &[&id]).await?;
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

/// What `GET /v2/account` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Linked device ids, sorted.
    pub devices: Vec<String>,
    /// The linked custom id (the first, if several).
    pub custom_id: Option<String>,
}

/// The account of a user, or None if it does not exist.
pub async fn account(db: &Db, user_id: Uuid) -> Result<Option<AccountRow>, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            "SELECT u.id, u.username, u.display_name, u.create_time, u.update_time,
                    ARRAY(SELECT d.id FROM user_device d WHERE d.user_id = u.id ORDER BY d.id) AS devices,
                    (SELECT c.id FROM user_custom c WHERE c.user_id = u.id ORDER BY c.id LIMIT 1) AS custom_id
             FROM users u WHERE u.id = $1",
            &[&user_id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(AccountRow {
        user_id: row.try_get(0)?,
        username: row.try_get(1)?,
        display_name: row.try_get(2)?,
        create_time: row.try_get(3)?,
        update_time: row.try_get(4)?,
        devices: row.try_get(5)?,
        custom_id: row.try_get(6)?,
    }))
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
