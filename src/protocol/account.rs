//! Nakama's JSON of accounts: `GET/PUT /v2/account`, `GET /v2/user`, email authentication,
//! linking and unlinking, and `POST /v2/session/logout`. Requests ignore unknown fields (as
//! grpc-gateway does); answers leave zero values out.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::client::{is_false, ser_opt_timestamp};

/// `GET /v2/account`.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub user: User,
    /// Nakama always answers a wallet; serai keeps none, so it is the empty object.
    pub wallet: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<AccountDevice>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub custom_id: String,
}

/// Nakama's `User`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub avatar_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang_tag: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub location: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub timezone: String,
    pub metadata: String,
    #[serde(skip_serializing_if = "is_false")]
    pub online: bool,
    #[serde(
        serialize_with = "ser_opt_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub create_time: Option<DateTime<Utc>>,
    #[serde(
        serialize_with = "ser_opt_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub update_time: Option<DateTime<Utc>>,
}

/// A device id linked to an account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountDevice {
    pub id: String,
}

/// `GET /v2/user`: `{"users": [...]}` (`{}` when none).
#[derive(Debug, Clone, Serialize)]
pub struct Users {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
}

/// Body of `PUT /v2/account`: a field left out (or null) is left as it is, `""` clears it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpdateAccountBody {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub lang_tag: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
}

/// Body of `POST /v2/account/authenticate/email` and of linking / unlinking an email.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EmailBody {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub vars: Option<HashMap<String, String>>,
}

/// Body of `POST /v2/session/logout`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogoutBody {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}
