//! Nakama's rules for emails, passwords and profile fields, with its messages.

use super::error::ApiError;
use crate::persistence::profiles::{Field, ProfileUpdate};
use crate::protocol::account::UpdateAccountBody;

fn has_bad_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Nakama's `^.+@.+\..+$`: something, `@`, something, `.`, something (no line breaks, which
/// the character check refuses first).
fn email_shaped(email: &str) -> bool {
    email.char_indices().any(|(at, c)| {
        if c != '@' || at == 0 {
            return false;
        }
        let rest = &email[at + 1..];
        rest.char_indices()
            .any(|(dot, c)| c == '.' && dot > 0 && dot + 1 < rest.len())
    })
}

/// An email address as Nakama checks it on authentication; answers it lower-cased (how it
/// is stored and looked up).
pub fn validate_email(email: &str) -> Result<String, ApiError> {
    if has_bad_chars(email) {
        return Err(ApiError::invalid_argument(
            "Invalid email address, no spaces or control characters allowed.",
        ));
    }
    if !email_shaped(email) {
        return Err(ApiError::invalid_argument("Invalid email address format."));
    }
    if email.len() < 10 || email.len() > 255 {
        return Err(ApiError::invalid_argument(
            "Invalid email address, must be 10-255 bytes.",
        ));
    }
    Ok(email.to_lowercase())
}

/// At least 8 bytes (Nakama counts bytes).
pub fn validate_password(password: &str) -> Result<(), ApiError> {
    if password.len() < 8 {
        return Err(ApiError::invalid_argument(
            "Password must be at least 8 characters long.",
        ));
    }
    Ok(())
}

/// Linking an email: both required, then characters, password, format, length (Nakama's
/// order for links).
pub fn validate_link_email(
    email: Option<&str>,
    password: Option<&str>,
) -> Result<(String, String), ApiError> {
    let (email, password) = (email.unwrap_or(""), password.unwrap_or(""));
    if email.is_empty() || password.is_empty() {
        return Err(ApiError::invalid_argument(
            "Email address and password is required.",
        ));
    }
    if has_bad_chars(email) {
        return Err(ApiError::invalid_argument(
            "Invalid email address, no spaces or control characters allowed.",
        ));
    }
    validate_password(password)?;
    let email = validate_email(email)?;
    Ok((email, password.to_string()))
}

/// The longest value of each profile field, in characters: the sizes of Nakama's columns
/// (`VARCHAR(n)`). Nakama answers a longer value with an internal error from the database;
/// serai refuses it up front with code 3 and the limit, and changes nothing.
const LIMITS: [(&str, usize); 5] = [
    ("Display name", 255),
    ("Avatar URL", 512),
    ("Language tag", 18),
    ("Location", 255),
    ("Timezone", 255),
];

fn field(value: Option<String>, (name, max): (&str, usize)) -> Result<Field, ApiError> {
    match value {
        None => Ok(Field::Keep),
        Some(v) if v.is_empty() => Ok(Field::Clear),
        Some(v) if v.chars().count() > max => Err(ApiError::invalid_argument(format!(
            "{name} invalid, must be at most {max} characters."
        ))),
        Some(v) => Ok(Field::Set(v)),
    }
}

/// `PUT /v2/account`'s body as a change: Nakama's username rules (1–128 bytes, no spaces or
/// control characters), the column limits above, and at least one field.
pub fn profile_update(body: UpdateAccountBody) -> Result<ProfileUpdate, ApiError> {
    let username = match body.username {
        None => None,
        Some(u) if u.is_empty() || u.len() > 128 => {
            return Err(ApiError::invalid_argument(
                "Username invalid, must be 1-128 bytes.",
            ))
        }
        Some(u) if has_bad_chars(&u) => {
            return Err(ApiError::invalid_argument(
                "Username invalid, no spaces or control characters allowed.",
            ))
        }
        Some(u) => Some(u),
    };
    let update = ProfileUpdate {
        username,
        display_name: field(body.display_name, LIMITS[0])?,
        avatar_url: field(body.avatar_url, LIMITS[1])?,
        lang_tag: field(body.lang_tag, LIMITS[2])?,
        location: field(body.location, LIMITS[3])?,
        timezone: field(body.timezone, LIMITS[4])?,
    };
    if update.is_empty() {
        return Err(ApiError::invalid_argument("No fields to update."));
    }
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nakama_email_and_password_rules() {
        assert_eq!(
            validate_email("Player.One@Example.com").unwrap(),
            "player.one@example.com"
        );
        let msg = |r: Result<String, ApiError>| r.unwrap_err().message;
        assert_eq!(
            msg(validate_email("a b@example.com")),
            "Invalid email address, no spaces or control characters allowed."
        );
        assert_eq!(
            msg(validate_email("nobody.example.com")),
            "Invalid email address format."
        );
        assert_eq!(
            msg(validate_email("someone@example")),
            "Invalid email address format."
        );
        assert_eq!(
            msg(validate_email("a@b.c")),
            "Invalid email address, must be 10-255 bytes."
        );
        assert!(validate_email(&format!("{}@example.com", "a".repeat(250))).is_err());
        assert!(validate_password("1234567").is_err());
        assert!(validate_password("12345678").is_ok());
        assert_eq!(
            validate_link_email(Some("x@example.com"), None)
                .unwrap_err()
                .message,
            "Email address and password is required."
        );
    }

    #[test]
    fn profile_rules() {
        let body = |f: fn(&mut UpdateAccountBody)| {
            let mut b = UpdateAccountBody::default();
            f(&mut b);
            profile_update(b)
        };
        assert_eq!(body(|_| {}).unwrap_err().message, "No fields to update.");
        assert_eq!(
            body(|b| b.username = Some(String::new()))
                .unwrap_err()
                .message,
            "Username invalid, must be 1-128 bytes."
        );
        assert!(body(|b| b.username = Some("a b".into())).is_err());
        assert!(body(|b| b.lang_tag = Some("x".repeat(19))).is_err());
        assert!(body(|b| b.display_name = Some("é".repeat(255))).is_ok());
        let u = body(|b| {
            b.display_name = Some(String::new());
            b.location = Some("Oslo".into());
        })
        .unwrap();
        assert_eq!(
            (u.display_name, u.location, u.timezone),
            (Field::Clear, Field::Set("Oslo".into()), Field::Keep)
        );
    }
}
