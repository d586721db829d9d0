//! What players see of accounts: `GET /v2/account`, `PUT /v2/account`, `GET /v2/user`.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::accounts::username_conflict;
use super::{Db, DbError};

/// The public part of a user (Nakama's `User`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub lang_tag: String,
    pub location: Option<String>,
    pub timezone: Option<String>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

const USER_COLUMNS: &str = "u.id, u.username, u.display_name, u.avatar_url, u.lang_tag, \
                            u.location, u.timezone, u.create_time, u.update_time";

fn user_row(row: &Row) -> Result<UserRow, DbError> {
    Ok(UserRow {
        user_id: row.try_get(0)?,
        username: row.try_get(1)?,
        display_name: row.try_get(2)?,
        avatar_url: row.try_get(3)?,
        lang_tag: row.try_get(4)?,
        location: row.try_get(5)?,
        timezone: row.try_get(6)?,
        create_time: row.try_get(7)?,
        update_time: row.try_get(8)?,
    })
}

/// What `GET /v2/account` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub user: UserRow,
    /// Linked device ids, sorted.
    pub devices: Vec<String>,
    /// The linked custom id (the first, if several).
    pub custom_id: Option<String>,
    pub email: Option<String>,
}

/// The account of a user, or None if it does not exist.
pub async fn account(db: &Db, user_id: Uuid) -> Result<Option<AccountRow>, DbError> {
    let client = db.client().await?;
    let sql = format!(
        "SELECT {USER_COLUMNS},
                ARRAY(SELECT d.id FROM user_device d WHERE d.user_id = u.id ORDER BY d.id),
                (SELECT c.id FROM user_custom c WHERE c.user_id = u.id ORDER BY c.id LIMIT 1),
                u.email
         FROM users u WHERE u.id = $1"
    );
    let Some(row) = client.query_opt(&sql, &[&user_id]).await? else {
        return Ok(None);
    };
    Ok(Some(AccountRow {
        user: user_row(&row)?,
        devices: row.try_get(9)?,
        custom_id: row.try_get(10)?,
        email: row.try_get(11)?,
    }))
}

/// Users by id and by username together (each found once), at most `ids.len() +
/// usernames.len()` rows.
pub async fn users(db: &Db, ids: &[Uuid], usernames: &[String]) -> Result<Vec<UserRow>, DbError> {
    if ids.is_empty() && usernames.is_empty() {
        return Ok(Vec::new());
    }
    let client = db.client().await?;
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u
         WHERE u.id = ANY($1) OR u.username = ANY($2) ORDER BY u.username"
    );
    let rows = client.query(&sql, &[&ids, &usernames]).await?;
    rows.iter().map(user_row).collect()
}

/// A change to one profile field: left as it is, cleared, or set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Field {
    #[default]
    Keep,
    Clear,
    Set(String),
}

/// `PUT /v2/account`: the fields to change; `username` is never cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub username: Option<String>,
    pub display_name: Field,
    pub avatar_url: Field,
    pub lang_tag: Field,
    pub location: Field,
    pub timezone: Field,
}

impl ProfileUpdate {
    pub fn is_empty(&self) -> bool {
        self.username.is_none()
            && [
                &self.display_name,
                &self.avatar_url,
                &self.lang_tag,
                &self.location,
                &self.timezone,
            ]
            .iter()
            .all(|f| **f == Field::Keep)
    }
}

/// Why an update changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("Username is already in use.")]
    UsernameTaken,
    #[error("Account not found.")]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Applies `update` to the user's row in one statement (a changed username is unique by the
/// table's constraint, so two players asking for the same name at once get one each way).
pub async fn update(db: &Db, user_id: Uuid, update: &ProfileUpdate) -> Result<(), UpdateError> {
    // Every field is a pair of parameters: whether it changes, and its new value (NULL clears).
    // One fixed statement, so it is prepared once.
    fn pair(f: &Field) -> (bool, Option<&str>) {
        match f {
            Field::Keep => (false, None),
            Field::Clear => (true, None),
            Field::Set(v) => (true, Some(v.as_str())),
        }
    }
    let (dn_set, dn) = pair(&update.display_name);
    let (av_set, av) = pair(&update.avatar_url);
    let (lt_set, lt) = pair(&update.lang_tag);
    let (lo_set, lo) = pair(&update.location);
    let (tz_set, tz) = pair(&update.timezone);
    let lt = lt.unwrap_or("en");
    let client = db.client().await?;
    let stmt = client
        .prepare_cached(
            "UPDATE users SET
                username     = COALESCE($2, username),
                display_name = CASE WHEN $3 THEN $4 ELSE display_name END,
                avatar_url   = CASE WHEN $5 THEN $6 ELSE avatar_url END,
                lang_tag     = CASE WHEN $7 THEN $8 ELSE lang_tag END,
                location     = CASE WHEN $9 THEN $10 ELSE location END,
                timezone     = CASE WHEN $11 THEN $12 ELSE timezone END,
                update_time  = now()
             WHERE id = $1",
        )
        .await
        .map_err(DbError::from)?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 12] = [
        &user_id,
        &update.username,
        &dn_set,
        &dn,
        &av_set,
        &av,
        &lt_set,
        &lt,
        &lo_set,
        &lo,
        &tz_set,
        &tz,
    ];
    match client.execute(&stmt, &params).await {
        Ok(0) => Err(UpdateError::NotFound),
        Ok(_) => Ok(()),
        Err(e) => {
            let e = DbError::from(e);
            if username_conflict(&e) {
                Err(UpdateError::UsernameTaken)
            } else {
                Err(e.into())
            }
        }
    }
}
