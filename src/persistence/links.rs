//! The ways into an account besides the one it was created with: email and password, and
//! linking / unlinking device, custom and email ids (Nakama's rules: an id belongs to one
//! account, and an account keeps at least one way in).

use uuid::Uuid;

use super::accounts::{self, count_retry, username_conflict, AccountError, IdKind};
use super::{Db, DbError};

/// An account found by email or username, with its password hash (None: no email way in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user_id: Uuid,
    pub username: String,
    pub password: Option<String>,
}

async fn credentials_by(db: &Db, sql: &str, key: &str) -> Result<Option<Credentials>, DbError> {
    let client = db.client().await?;
    let stmt = client.prepare_cached(sql).await?;
    let Some(row) = client.query_opt(&stmt, &[&key]).await? else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        user_id: row.try_get(0)?,
        username: row.try_get(1)?,
        password: row.try_get(2)?,
    }))
}

/// The account whose (lower-cased) email is `email`.
pub async fn by_email(db: &Db, email: &str) -> Result<Option<Credentials>, DbError> {
    credentials_by(
        db,
        "SELECT id, username, password FROM users WHERE email = $1",
        email,
    )
    .await
}

/// The account named `username`.
pub async fn by_username(db: &Db, username: &str) -> Result<Option<Credentials>, DbError> {
    credentials_by(
        db,
        "SELECT id, username, password FROM users WHERE username = $1",
        username,
    )
    .await
}

/// Creates an account with `email` and the password hash, unless the email is taken: one
/// statement, like device sign-ups. `Ok(None)`: an account with this email exists (created
/// concurrently, or before).
pub async fn create_with_email(
    db: &Db,
    email: &str,
    password_hash: &str,
    username: Option<&str>,
) -> Result<Option<accounts::Authenticated>, AccountError> {
    let client = db.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO users (id, username, email, password, create_time, update_time)
             VALUES ($1, $2, $3, $4, now(), now())
             ON CONFLICT (email) DO NOTHING
             RETURNING id, username",
        )
        .await
        .map_err(DbError::from)?;
    for _ in 0..accounts::SIGNUP_ATTEMPTS {
        let name = username
            .map(str::to_string)
            .unwrap_or_else(accounts::generate_username);
        match client
            .query_opt(&stmt, &[&Uuid::new_v4(), &name, &email, &password_hash])
            .await
        {
            Ok(Some(row)) => {
                return Ok(Some(accounts::Authenticated {
                    user_id: row.try_get(0).map_err(DbError::from)?,
                    username: row.try_get(1).map_err(DbError::from)?,
                    created: true,
                }))
            }
            Ok(None) => return Ok(None),
            Err(e) => {
                let e = DbError::from(e);
                if !username_conflict(&e) {
                    return Err(e.into());
                }
                if username.is_some() {
                    return Err(AccountError::UsernameTaken);
                }
                count_retry(db, "username");
            }
        }
    }
    Err(AccountError::Db(DbError::Rejected(
        "could not draw a free username".into(),
    )))
}

/// Why a link changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The id belongs to another account.
    #[error("already linked to another account")]
    InUse,
    /// Unlinking would leave the account without a way in (or the id is not linked to it).
    #[error("Cannot unlink last account identifier. Check profile exists and is not last link.")]
    LastLink,
    #[error("User account not found.")]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbError),
}

fn missing_user(e: DbError) -> LinkError {
    if e.sqlstate() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
        LinkError::NotFound
    } else {
        LinkError::Db(e)
    }
}

/// Links a device or custom id to `user_id`. Linking an id the account already has is a
/// success; one of another account is [`LinkError::InUse`]. An account has one custom id, as
/// in Nakama: linking another replaces it.
pub async fn link(db: &Db, user_id: Uuid, kind: IdKind, id: &str) -> Result<(), LinkError> {
    let table = kind.table();
    let insert =
        format!("INSERT INTO {table} (id, user_id) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING");
    let owner = format!("SELECT user_id FROM {table} WHERE id = $1");
    let replace_custom = kind == IdKind::Custom;
    let linked = db
        .transact("link", |tx| {
            let (insert, owner, id) = (insert.clone(), owner.clone(), id.to_string());
            Box::pin(async move {
                if tx.execute(&insert, &[&id, &user_id]).await? == 0 {
                    let row = tx.query_opt(&owner, &[&id]).await?;
                    let theirs: Option<Uuid> = row.map(|r| r.try_get(0)).transpose()?;
                    if theirs != Some(user_id) {
                        return Ok(false);
                    }
                }
                if replace_custom {
                    tx.execute(
                        "DELETE FROM user_custom WHERE user_id = $1 AND id <> $2",
                        &[&user_id, &id],
                    )
                    .await?;
                }
                tx.execute(
                    "UPDATE users SET update_time = now() WHERE id = $1",
                    &[&user_id],
                )
                .await?;
                Ok(true)
            })
        })
        .await
        .map_err(missing_user)?;
    if linked {
        Ok(())
    } else {
        Err(LinkError::InUse)
    }
}

/// Sets the account's email and password hash, unless another account has that email.
pub async fn link_email(
    db: &Db,
    user_id: Uuid,
    email: &str,
    password_hash: &str,
) -> Result<(), LinkError> {
    let client = db.client().await?;
    let updated = client
        .execute(
            "UPDATE users SET email = $2, password = $3, update_time = now()
             WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM users WHERE email = $2 AND id <> $1)",
            &[&user_id, &email, &password_hash],
        )
        .await;
    match updated.map_err(DbError::from) {
        Ok(0) => {
            // Either the email is another account's, or this account is gone.
            if accounts::username(db, user_id).await?.is_none() {
                Err(LinkError::NotFound)
            } else {
                Err(LinkError::InUse)
            }
        }
        Ok(_) => Ok(()),
        Err(e) if e.sqlstate() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            Err(LinkError::InUse)
        }
        Err(e) => Err(e.into()),
    }
}

/// What to unlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlink<'a> {
    Device(&'a str),
    Custom(&'a str),
    Email(&'a str),
}

/// Removes one way into the account, only if another remains. SERIALIZABLE: two unlinks of
/// an account's last two ways in at once would each see the other's still there (write
/// skew); one of them is retried and then refused.
pub async fn unlink(db: &Db, user_id: Uuid, what: Unlink<'_>) -> Result<(), LinkError> {
    // The other ways in, each as a condition; $1 user id, $2 the id being removed.
    const EMAIL: &str = "EXISTS (SELECT 1 FROM users WHERE id = $1 AND email IS NOT NULL)";
    const DEVICE_OTHER: &str = "EXISTS (SELECT 1 FROM user_device WHERE user_id = $1 AND id <> $2)";
    const DEVICE_ANY: &str = "EXISTS (SELECT 1 FROM user_device WHERE user_id = $1)";
    const CUSTOM_OTHER: &str = "EXISTS (SELECT 1 FROM user_custom WHERE user_id = $1 AND id <> $2)";
    const CUSTOM_ANY: &str = "EXISTS (SELECT 1 FROM user_custom WHERE user_id = $1)";
    let (sql, id) = match what {
        Unlink::Device(id) => (
            format!(
                "DELETE FROM user_device WHERE id = $2 AND user_id = $1 \
                 AND ({EMAIL} OR {CUSTOM_ANY} OR {DEVICE_OTHER})"
            ),
            id,
        ),
        Unlink::Custom(id) => (
            format!(
                "DELETE FROM user_custom WHERE id = $2 AND user_id = $1 \
                 AND ({EMAIL} OR {DEVICE_ANY} OR {CUSTOM_OTHER})"
            ),
            id,
        ),
        Unlink::Email(email) => (
            format!(
                "UPDATE users SET email = NULL, password = NULL, update_time = now() \
                 WHERE id = $1 AND email = $2 AND ({DEVICE_ANY} OR {CUSTOM_ANY})"
            ),
            email,
        ),
    };
    let bump = !matches!(what, Unlink::Email(_));
    let removed = db
        .transact("unlink", |tx| {
            let (sql, id) = (sql.clone(), id.to_string());
            Box::pin(async move {
                let n = tx.execute(&sql, &[&user_id, &id]).await?;
                if n > 0 && bump {
                    tx.execute(
                        "UPDATE users SET update_time = now() WHERE id = $1",
                        &[&user_id],
                    )
                    .await?;
                }
                Ok(n)
            })
        })
        .await?;
    if removed == 0 {
        Err(LinkError::LastLink)
    } else {
        Ok(())
    }
}
