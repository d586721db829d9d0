//! The account routes of the client API: `GET/PUT /v2/account`, `GET /v2/user`,
//! `POST /v2/account/authenticate/email`, `POST /v2/account/{link,unlink}/{device,custom,email}`
//! and `POST /v2/session/logout`, with Nakama's shapes, rules, codes and messages.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use uuid::Uuid;

use super::account_rules::{self, validate_email, validate_link_email, validate_password};
use super::auth::{self, IdKind, TokenKind};
use super::error::{ApiError, GrpcCode};
use super::http::{
    bearer_user, check_server_key, db_error, empty_object, issue_session, json, method_not_allowed,
    parse_json, query, read_body, AuthQuery,
};
use super::passwords::PasswordError;
use super::GatewayState;
use crate::persistence::accounts::{AccountError, Authenticated};
use crate::persistence::links::{self, Credentials, LinkError, Unlink};
use crate::persistence::profiles::{self, UpdateError, UserRow};
use crate::protocol::account::{
    Account, AccountDevice, EmailBody, LogoutBody, UpdateAccountBody, User, Users,
};
use crate::protocol::client::AuthenticateBody;

/// Ids and usernames one `GET /v2/user` may ask for together.
pub const MAX_USERS_PER_REQUEST: usize = 1000;

pub(crate) fn mount(cfg: &mut web::ServiceConfig) {
    let post = |path: &str, handler| {
        web::resource(path.to_string())
            .route(handler)
            .default_service(web::to(method_not_allowed))
    };
    cfg.service(
        web::resource("/v2/account")
            .route(web::get().to(get_account))
            .route(web::put().to(update_account))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v2/user")
            .route(web::get().to(get_users))
            .default_service(web::to(method_not_allowed)),
    )
    .service(post(
        "/v2/account/authenticate/email",
        web::post().to(authenticate_email),
    ))
    .service(post("/v2/session/logout", web::post().to(logout)))
    .service(post("/v2/account/link/device", web::post().to(link_device)))
    .service(post("/v2/account/link/custom", web::post().to(link_custom)))
    .service(post("/v2/account/link/email", web::post().to(link_email)))
    .service(post(
        "/v2/account/unlink/device",
        web::post().to(unlink_device),
    ))
    .service(post(
        "/v2/account/unlink/custom",
        web::post().to(unlink_custom),
    ))
    .service(post(
        "/v2/account/unlink/email",
        web::post().to(unlink_email),
    ));
}

fn user_view(row: UserRow, state: &GatewayState) -> User {
    User {
        id: row.user_id.to_string(),
        online: state.presence.is_online(row.user_id),
        username: row.username,
        display_name: row.display_name.unwrap_or_default(),
        avatar_url: row.avatar_url.unwrap_or_default(),
        lang_tag: row.lang_tag,
        location: row.location.unwrap_or_default(),
        timezone: row.timezone.unwrap_or_default(),
        metadata: "{}".to_string(),
        create_time: Some(row.create_time),
        update_time: Some(row.update_time),
    }
}

async fn get_account(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let session = bearer_user(&req, &state)?;
    let row = profiles::account(&state.db, session.user_id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found("Account not found."))?;
    json(&Account {
        user: user_view(row.user, &state),
        wallet: "{}".to_string(),
        email: row.email.unwrap_or_default(),
        devices: row
            .devices
            .into_iter()
            .map(|id| AccountDevice { id })
            .collect(),
        custom_id: row.custom_id.unwrap_or_default(),
    })
}

async fn update_account(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let session = bearer_user(&req, &state)?;
    let body: UpdateAccountBody =
        parse_json(&read_body(&req, payload, state.http.max_auth_body).await?)?;
    let update = account_rules::profile_update(body)?;
    profiles::update(&state.db, session.user_id, &update)
        .await
        .map_err(|e| match e {
            UpdateError::UsernameTaken => ApiError::already_exists("Username is already in use."),
            UpdateError::NotFound => ApiError::not_found("Account not found."),
            UpdateError::Db(e) => db_error(e),
        })?;
    Ok(empty_object())
}

async fn get_users(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    bearer_user(&req, &state)?;
    let params: Vec<(String, String)> = query(&req)?;
    let (mut ids, mut usernames) = (Vec::new(), Vec::new());
    for (key, value) in params {
        match key.as_str() {
            "ids" => ids.push(Uuid::parse_str(&value).map_err(|_| {
                ApiError::invalid_argument(format!("ID '{value}' is not a valid system ID."))
            })?),
            "usernames" => usernames.push(value),
            // Nakama also looks users up by Facebook id; serai links none, so none match.
            _ => {}
        }
    }
    if ids.len() + usernames.len() > MAX_USERS_PER_REQUEST {
        return Err(ApiError::invalid_argument(format!(
            "Too many users requested: at most {MAX_USERS_PER_REQUEST} ids and usernames together."
        )));
    }
    let rows = profiles::users(&state.db, &ids, &usernames)
        .await
        .map_err(db_error)?;
    json(&Users {
        users: rows.into_iter().map(|r| user_view(r, &state)).collect(),
    })
}

fn password_error(e: PasswordError) -> ApiError {
    match e {
        PasswordError::Busy => ApiError::new(
            GrpcCode::Unavailable,
            "Service temporarily unavailable, try again.",
        ),
        PasswordError::Failed(detail) => ApiError::internal(detail),
    }
}

fn account_error(e: AccountError) -> ApiError {
    match e {
        AccountError::NotFound => ApiError::not_found("User account not found."),
        AccountError::UsernameTaken => ApiError::already_exists("Username is already in use."),
        AccountError::InvalidCredentials => ApiError::unauthenticated("Invalid credentials."),
        AccountError::Db(e) => db_error(e),
    }
}

/// The account of `found` if `password` is its password.
async fn check_password(
    state: &GatewayState,
    found: Option<Credentials>,
    password: &str,
) -> Result<Authenticated, AccountError> {
    let Some(Credentials {
        user_id,
        username,
        password: Some(phc),
    }) = found
    else {
        return Err(AccountError::NotFound);
    };
    match state.passwords.verify(password, &phc).await {
        Ok(true) => Ok(Authenticated {
            user_id,
            username,
            created: false,
        }),
        Ok(false) => Err(AccountError::InvalidCredentials),
        Err(e) => Err(AccountError::Db(crate::persistence::DbError::Unavailable(
            e.to_string(),
        ))),
    }
}

async fn authenticate_email(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    check_server_key(&req, &state)?;
    let q: AuthQuery = query(&req)?;
    let create = q.create()?;
    let body: EmailBody = parse_json(&read_body(&req, payload, state.http.max_auth_body).await?)?;
    let email = body.email.unwrap_or_default();
    let password = body.password.unwrap_or_default();
    // Nakama: no email means a login by username and password (never a creation).
    let by_username = email.is_empty();
    let email = if by_username {
        String::new()
    } else {
        validate_email(&email)?
    };
    validate_password(&password)?;
    let username = auth::validate_username(q.username.as_deref())?;
    if by_username && username.is_none() {
        return Err(ApiError::invalid_argument(
            "Username is required when email address is not supplied.",
        ));
    }
    let vars = auth::validate_vars(body.vars)?;
    let user = if by_username {
        let found = links::by_username(&state.db, username.as_deref().unwrap_or_default())
            .await
            .map_err(db_error)?;
        check_password(&state, found, &password).await
    } else {
        email_account(&state, &email, &password, username.as_deref(), create).await
    }
    .map_err(account_error)?;
    state.metrics.auth_done(user.created);
    json(&issue_session(&state, &user, &vars)?)
}

async fn email_account(
    state: &GatewayState,
    email: &str,
    password: &str,
    username: Option<&str>,
    create: bool,
) -> Result<Authenticated, AccountError> {
    if let Some(found) = links::by_email(&state.db, email).await? {
        return check_password(state, Some(found), password).await;
    }
    if !create {
        return Err(AccountError::NotFound);
    }
    let phc =
        state.passwords.hash(password).await.map_err(|e| {
            AccountError::Db(crate::persistence::DbError::Unavailable(e.to_string()))
        })?;
    match links::create_with_email(&state.db, email, &phc, username).await? {
        Some(created) => Ok(created),
        // Created concurrently by another request: its password decides.
        None => {
            let found = links::by_email(&state.db, email).await?;
            check_password(state, found, password).await
        }
    }
}

async fn logout(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let session = bearer_user(&req, &state)?;
    let body: LogoutBody = parse_json(&read_body(&req, payload, state.http.max_auth_body).await?)?;
    let mut revoke = Vec::with_capacity(2);
    for (kind, token, invalid) in [
        (TokenKind::Session, body.token, "Session token invalid."),
        (
            TokenKind::Refresh,
            body.refresh_token,
            "Refresh token invalid.",
        ),
    ] {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            continue;
        };
        // A token revoked already (a used refresh token) is still the caller's to log out.
        match state.tokens.decode(kind, &token) {
            Some(t) if t.user_id == session.user_id => revoke.push((t.token_id, t.expires_at)),
            _ => return Err(ApiError::invalid_argument(invalid)),
        }
    }
    if revoke.is_empty() {
        // Nakama logs every session of the user out here; serai keeps no list of a user's
        // tokens, so it refuses rather than answer a logout it did not do.
        return Err(ApiError::invalid_argument(
            "A session token or refresh token to log out is required.",
        ));
    }
    state.revocations.revoke(&revoke).await.map_err(db_error)?;
    Ok(empty_object())
}

fn link_error(e: LinkError, in_use: &'static str) -> ApiError {
    match e {
        LinkError::InUse => ApiError::already_exists(in_use),
        LinkError::LastLink => ApiError::new(GrpcCode::PermissionDenied, e.to_string()),
        LinkError::NotFound => ApiError::not_found("User account not found."),
        LinkError::Db(e) => db_error(e),
    }
}

/// Nakama words the custom id's rules differently when linking than when authenticating.
fn validate_link_custom(id: Option<&str>) -> Result<String, ApiError> {
    auth::validate_id(IdKind::Custom, id).map_err(|e| {
        ApiError::invalid_argument(match e.message.as_ref() {
            "Custom ID is required." => "Custom ID is required.",
            m if m.contains("no spaces") => {
                "Invalid custom ID, no spaces or control characters allowed."
            }
            _ => "Invalid custom ID, must be 6-128 bytes.",
        })
    })
}

async fn link_id(
    kind: IdKind,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let session = bearer_user(&req, &state)?;
    let body: AuthenticateBody =
        parse_json(&read_body(&req, payload, state.http.max_auth_body).await?)?;
    let (id, in_use) = match kind {
        IdKind::Device => (
            auth::validate_id(kind, body.id.as_deref())?,
            "Device ID already in use.",
        ),
        IdKind::Custom => (
            validate_link_custom(body.id.as_deref())?,
            "Custom ID is already in use.",
        ),
    };
    links::link(&state.db, session.user_id, kind, &id)
        .await
        .map_err(|e| link_error(e, in_use))?;
    Ok(empty_object())
}

async fn link_device(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    link_id(IdKind::Device, req, payload, state).await
}

async fn link_custom(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    link_id(IdKind::Custom, req, payload, state).await
}

async fn link_email(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let session = bearer_user(&req, &state)?;
    let body: EmailBody = parse_json(&read_body(&req, payload, state.http.max_auth_body).await?)?;
    let (email, password) = validate_link_email(body.email.as_deref(), body.password.as_deref())?;
    let phc = state
        .passwords
        .hash(&password)
        .await
        .map_err(password_error)?;
    links::link_email(&state.db, session.user_id, &email, &phc)
        .await
        .map_err(|e| link_error(e, "Email is already in use."))?;
    Ok(empty_object())
}

/// Which way in an unlink removes.
#[derive(Clone, Copy)]
enum WayIn {
    Device,
    Custom,
    Email,
}

fn required(value: Option<String>, message: &'static str) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid_argument(message))
}

async fn unlink(
    way: WayIn,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let session = bearer_user(&req, &state)?;
    let raw = read_body(&req, payload, state.http.max_auth_body).await?;
    let value = match way {
        WayIn::Device => required(
            parse_json::<AuthenticateBody>(&raw)?.id,
            "A device ID must be supplied.",
        )?,
        WayIn::Custom => required(
            parse_json::<AuthenticateBody>(&raw)?.id,
            "An ID must be supplied.",
        )?,
        WayIn::Email => {
            let body: EmailBody = parse_json(&raw)?;
            let message = "Both email and password must be supplied.";
            required(body.password, message)?;
            required(body.email, message)?.to_lowercase()
        }
    };
    let target = match way {
        WayIn::Device => Unlink::Device(&value),
        WayIn::Custom => Unlink::Custom(&value),
        WayIn::Email => Unlink::Email(&value),
    };
    links::unlink(&state.db, session.user_id, target)
        .await
        .map_err(|e| link_error(e, ""))?;
    Ok(empty_object())
}

async fn unlink_device(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    unlink(WayIn::Device, req, payload, state).await
}

async fn unlink_custom(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    unlink(WayIn::Custom, req, payload, state).await
}

async fn unlink_email(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    unlink(WayIn::Email, req, payload, state).await
}
