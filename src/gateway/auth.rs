//! Session tokens (HS256 JWTs with Nakama's claims), the `Authorization` header forms, and
//! Nakama's validation rules for ids, usernames and session variables.
//!
//! nakama-js 2.8 decodes a token's payload with a base64 routine that drops `-` and `_`, so a
//! payload whose base64url form contains either would be misread. For ASCII JSON that can only
//! happen through the characters `>`, `?`, `~` and DEL (their low six bits are 62 or 63);
//! [`encode_token`] writes those and every non-ASCII character as `\uXXXX` escapes, which keeps
//! the encoded payload free of both characters whatever the username or vars hold.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ApiError;
use super::revocation::RevokedSet;
use crate::config::Config;

/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Session variables: at most this many entries …
pub const MAX_VARS: usize = 32;
/// … and this many bytes of keys and values together.
pub const MAX_VARS_BYTES: usize = 2048;

/// The claims of a session or refresh token (Nakama's names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Token id.
    pub tid: String,
    /// User id.
    pub uid: String,
    /// Username.
    pub usn: String,
    /// Session variables.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub vrs: HashMap<String, String>,
    pub exp: i64,
    pub iat: i64,
}

/// A verified session: who the bearer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user_id: Uuid,
    pub username: String,
    pub vars: HashMap<String, String>,
    pub expires_at: i64,
    /// The token's id (`tid`): what a logout revokes.
    pub token_id: String,
}

/// Which of the two token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    Refresh,
}

struct KeyPair {
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifetime: Duration,
}

/// Issues and verifies tokens with the node's session and refresh keys; a token whose id is
/// in the revoked set is refused like a forged one.
pub struct TokenIssuer {
    session: KeyPair,
    refresh: KeyPair,
    validation: Validation,
    revoked: Arc<RevokedSet>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("session_lifetime", &self.session.lifetime)
            .field("refresh_lifetime", &self.refresh.lifetime)
            .finish_non_exhaustive()
    }
}

/// `{"alg":"HS256","typ":"JWT"}`, base64url.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl TokenIssuer {
    /// An issuer with a revoked set of its own (see [`TokenIssuer::with_revoked`]).
    pub fn new(config: &Config) -> TokenIssuer {
        TokenIssuer::with_revoked(config, Arc::default())
    }

    /// An issuer that refuses the tokens in `revoked` (the node's [`super::Revocations`]).
    pub fn with_revoked(config: &Config, revoked: Arc<RevokedSet>) -> TokenIssuer {
        let pair = |key: &str, lifetime| KeyPair {
            encoding: EncodingKey::from_secret(key.as_bytes()),
            decoding: DecodingKey::from_secret(key.as_bytes()),
            lifetime,
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        TokenIssuer {
            session: pair(&config.session_encryption_key, config.session_token_expiry),
            refresh: pair(&config.refresh_encryption_key, config.refresh_token_expiry),
            validation,
            revoked,
        }
    }

    fn keys(&self, kind: TokenKind) -> &KeyPair {
        match kind {
            TokenKind::Session => &self.session,
            TokenKind::Refresh => &self.refresh,
        }
    }

    /// A new token of `kind` for this user, valid from now for the configured lifetime.
    pub fn issue(
        &self,
        kind: TokenKind,
        user_id: Uuid,
        username: &str,
        vars: &HashMap<String, String>,
    ) -> Result<String, ApiError> {
        let keys = self.keys(kind);
        let iat = now_secs();
        let claims = Claims {
            tid: Uuid::new_v4().to_string(),
            uid: user_id.to_string(),
            usn: username.to_string(),
            vrs: vars.clone(),
            exp: iat.saturating_add(keys.lifetime.as_secs() as i64),
            iat,
        };
        encode_token(&claims, &keys.encoding)
    }

    /// Checks signature, algorithm, expiry and revocation; any failure is `None` (the caller
    /// answers 401).
    pub fn verify(&self, kind: TokenKind, token: &str) -> Option<SessionUser> {
        self.decode(kind, token)
            .filter(|user| !self.revoked.contains(&user.token_id))
    }

    /// Like [`TokenIssuer::verify`] but for revocation: a logout may name a token already
    /// revoked (a refresh token used up by a refresh).
    pub fn decode(&self, kind: TokenKind, token: &str) -> Option<SessionUser> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.keys(kind).decoding, &self.validation)
                .ok()?;
        let claims = data.claims;
        let user_id = Uuid::parse_str(&claims.uid).ok()?;
        if claims.exp <= now_secs() {
            return None;
        }
        Some(SessionUser {
            user_id,
            username: claims.usn,
            vars: claims.vrs,
            expires_at: claims.exp,
            token_id: claims.tid,
        })
    }
}

/// Writes `claims` as a signed HS256 JWT whose payload is pure ASCII with none of `>?~` DEL
/// (see the module docs), so its base64url form never holds `-` or `_`.
pub fn encode_token(claims: &Claims, key: &EncodingKey) -> Result<String, ApiError> {
    let json = serde_json::to_string(claims).map_err(ApiError::internal)?;
    let safe = escape_for_nakama_js(&json);
    let mut token = String::with_capacity(HEADER_B64.len() + safe.len() * 4 / 3 + 48);
    token.push_str(HEADER_B64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(safe.as_bytes(), &mut token);
    let signature = jsonwebtoken::crypto::sign(token.as_bytes(), key, Algorithm::HS256)
        .map_err(ApiError::internal)?;
    token.push('.');
    token.push_str(&signature);
    Ok(token)
}

/// Rewrites characters that may only occur inside JSON strings as `\uXXXX` escapes: every
/// non-ASCII character and `>`, `?`, `~`, DEL. The result parses to the same JSON value.
pub fn escape_for_nakama_js(json: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '>' | '?' | '~' | '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Authorization headers
// ---------------------------------------------------------------------------------------------

/// The user part of `Authorization: Basic base64(user:password)`, or None if the header is not
/// a well-formed Basic header.
pub fn parse_basic(header: &str) -> Option<String> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let rest = rest.trim();
    if rest.len() > 1024 {
        return None;
    }
    let decoded = STANDARD.decode(rest).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = match text.split_once(':') {
        Some((user, _password)) => user,
        None => text.as_str(),
    };
    Some(user.to_string())
}

/// The token of `Authorization: Bearer <token>`.
pub fn parse_bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

/// Compares secrets in time independent of where they differ (the gateway's keys, the admin
/// token).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

// ---------------------------------------------------------------------------------------------
// Validation (Nakama's rules and messages)
// ---------------------------------------------------------------------------------------------

pub use crate::persistence::accounts::IdKind;

fn has_bad_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Device ids are 10–128 bytes, custom ids 6–128, neither with whitespace or control characters.
pub fn validate_id(kind: IdKind, id: Option<&str>) -> Result<String, ApiError> {
    let (name, min) = match kind {
        IdKind::Device => ("Device", 10),
        IdKind::Custom => ("Custom", 6),
    };
    let id = id.unwrap_or("");
    if id.is_empty() {
        return Err(ApiError::invalid_argument(format!(
            "{name} ID is required."
        )));
    }
    if has_bad_chars(id) {
        return Err(ApiError::invalid_argument(format!(
            "{name} ID invalid, no spaces or control characters allowed."
        )));
    }
    if id.len() < min || id.len() > 128 {
        return Err(ApiError::invalid_argument(format!(
            "{name} ID invalid, must be {min}-128 bytes."
        )));
    }
    Ok(id.to_string())
}

/// A requested username: None when not given (one is generated), else 1–128 bytes without
/// whitespace or control characters.
pub fn validate_username(username: Option<&str>) -> Result<Option<String>, ApiError> {
    match username {
        None | Some("") => Ok(None),
        Some(u) if has_bad_chars(u) => Err(ApiError::invalid_argument(
            "Username invalid, no spaces or control characters allowed.",
        )),
        Some(u) if u.len() > 128 => Err(ApiError::invalid_argument(
            "Username invalid, must be 1-128 bytes.",
        )),
        Some(u) => Ok(Some(u.to_string())),
    }
}

/// Session variables travel in every token: bounded in count and size.
pub fn validate_vars(
    vars: Option<HashMap<String, String>>,
) -> Result<HashMap<String, String>, ApiError> {
    let vars = vars.unwrap_or_default();
    let bytes: usize = vars.iter().map(|(k, v)| k.len() + v.len()).sum();
    if vars.len() > MAX_VARS || bytes > MAX_VARS_BYTES {
        return Err(ApiError::invalid_argument(format!(
            "Session vars too large: at most {MAX_VARS} entries and {MAX_VARS_BYTES} bytes."
        )));
    }
    if vars.keys().any(|k| k.is_empty()) {
        return Err(ApiError::invalid_argument(
            "Session vars keys must not be empty.",
        ));
    }
    Ok(vars)
}

/// Go's `strconv.ParseBool`, which grpc-gateway uses for boolean query parameters.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(&Config::for_test("postgresql://postgres@127.0.0.1/x"))
    }

    fn payload(token: &str) -> &str {
        token.split('.').nth(1).unwrap()
    }

    #[test]
    fn round_trip_and_key_separation() {
        let t = issuer();
        let uid = Uuid::new_v4();
        let vars: HashMap<String, String> = [("k".to_string(), "v".to_string())].into();
        let token = t.issue(TokenKind::Session, uid, "alice", &vars).unwrap();
        let user = t.verify(TokenKind::Session, &token).unwrap();
        assert_eq!(
            (user.user_id, user.username.as_str(), user.vars.clone()),
            (uid, "alice", vars.clone())
        );
        assert!(
            t.verify(TokenKind::Refresh, &token).is_none(),
            "session token is not a refresh token"
        );
        let refresh = t.issue(TokenKind::Refresh, uid, "alice", &vars).unwrap();
        assert!(t.verify(TokenKind::Refresh, &refresh).is_some());
        assert!(t.verify(TokenKind::Session, &refresh).is_none());
    }

    #[test]
    fn tampering_and_expiry_are_refused() {
        let t = issuer();
        let token = t
            .issue(TokenKind::Session, Uuid::new_v4(), "bob", &HashMap::new())
            .unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims.usn = "mallory".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        assert!(t.verify(TokenKind::Session, &parts.join(".")).is_none());

        let other = EncodingKey::from_secret(b"not-the-key");
        let forged = encode_token(&claims, &other).unwrap();
        assert!(t.verify(TokenKind::Session, &forged).is_none());

        let mut expired = claims.clone();
        expired.exp = now_secs() - 1;
        let key = EncodingKey::from_secret(b"defaultencryptionkey");
        assert!(t
            .verify(TokenKind::Session, &encode_token(&expired, &key).unwrap())
            .is_none());
        let mut fine = claims;
        fine.exp = now_secs() + 100;
        assert!(t
            .verify(TokenKind::Session, &encode_token(&fine, &key).unwrap())
            .is_some());

        // alg "none" and garbage.
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
        assert!(t.verify(TokenKind::Session, &none).is_none());
        for junk in ["", "a.b.c", "....", &"x".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(t.verify(TokenKind::Session, junk).is_none());
        }
    }

    #[test]
    fn payload_never_holds_dash_or_underscore() {
        let t = issuer();
        let tricky = ["a>b?c~d\u{7f}", "ünïcødé", "emoji😀", "??>>~~", "plain"];
        for name in tricky {
            for pad in 0..3 {
                let username = format!("{}{name}", "x".repeat(pad));
                let vars: HashMap<String, String> =
                    [("q?".to_string(), format!("{username}~"))].into();
                let token = t
                    .issue(TokenKind::Session, Uuid::new_v4(), &username, &vars)
                    .unwrap();
                let p = payload(&token);
                assert!(!p.contains('-') && !p.contains('_'), "{username:?} → {p}");
                let user = t.verify(TokenKind::Session, &token).unwrap();
                assert_eq!(user.username, username);
                assert_eq!(user.vars, vars);
                let raw = URL_SAFE_NO_PAD.decode(p).unwrap();
                assert!(raw.is_ascii());
            }
        }
    }

    #[test]
    fn revoked_tokens_are_refused_but_still_decode() {
        let set = Arc::new(RevokedSet::default());
        let t = TokenIssuer::with_revoked(
            &Config::for_test("postgresql://postgres@127.0.0.1/x"),
            set.clone(),
        );
        let token = t
            .issue(TokenKind::Session, Uuid::new_v4(), "carol", &HashMap::new())
            .unwrap();
        let user = t.verify(TokenKind::Session, &token).unwrap();
        set.insert([(user.token_id.clone(), user.expires_at)]);
        assert!(t.verify(TokenKind::Session, &token).is_none());
        assert_eq!(t.decode(TokenKind::Session, &token), Some(user));
        let other = t
            .issue(TokenKind::Session, Uuid::new_v4(), "carol", &HashMap::new())
            .unwrap();
        assert!(
            t.verify(TokenKind::Session, &other).is_some(),
            "each token its own id"
        );
    }

    #[test]
    fn header_forms() {
        let basic = format!("Basic {}", STANDARD.encode("defaultkey:"));
        assert_eq!(parse_basic(&basic).as_deref(), Some("defaultkey"));
        assert_eq!(
            parse_basic(&format!("basic {}", STANDARD.encode("k:pw"))).as_deref(),
            Some("k")
        );
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_bearer("Bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("Bearer "), None);
        assert_eq!(parse_bearer("Basic abc"), None);
        assert!(
            constant_time_eq(b"abc", b"abc")
                && !constant_time_eq(b"abc", b"abd")
                && !constant_time_eq(b"a", b"ab")
        );
    }

    #[test]
    fn nakama_id_rules() {
        assert!(validate_id(IdKind::Device, Some("0123456789")).is_ok());
        assert!(validate_id(IdKind::Device, Some("012345678")).is_err());
        assert!(validate_id(IdKind::Device, Some(&"d".repeat(128))).is_ok());
        assert!(validate_id(IdKind::Device, Some(&"d".repeat(129))).is_err());
        assert!(validate_id(IdKind::Custom, Some("abcdef")).is_ok());
        assert!(validate_id(IdKind::Custom, Some("abcde")).is_err());
        assert!(validate_id(IdKind::Custom, Some("abc def")).is_err());
        assert!(validate_id(IdKind::Custom, Some("abc\u{1}def")).is_err());
        assert_eq!(
            validate_id(IdKind::Device, None).unwrap_err().message,
            "Device ID is required."
        );
        assert_eq!(validate_username(Some("")).unwrap(), None);
        assert!(validate_username(Some("a b")).is_err());
        assert!(validate_username(Some(&"u".repeat(129))).is_err());
        let many: HashMap<String, String> =
            (0..40).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(validate_vars(Some(many)).is_err());
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
