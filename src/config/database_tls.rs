//! The database URL's TLS settings, libpq's `sslmode` and `sslrootcert`, split from what
//! tokio-postgres parses itself.
//!
//! tokio-postgres knows `sslmode` only up to `disable`/`prefer`/`require` and no `sslrootcert`
//! at all (it refuses both as unknown): [`database_tls`] takes them out of the URL, tells
//! tokio-postgres `disable`, `prefer` or `require`, and returns the mode and the CA file for
//! `persistence` to check the server's certificate with.

use std::path::{Path, PathBuf};

/// How the connection to the database is secured, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP: no TLS.
    Disable,
    /// TLS if the server offers it, else plain (libpq's default).
    Prefer,
    /// TLS or nothing; the certificate is not checked (unless a CA is given: then as `VerifyCa`).
    Require,
    /// TLS, and the server's certificate must chain to the CA; its name is not checked.
    VerifyCa,
    /// TLS, the certificate must chain to the CA and name the host connected to.
    VerifyFull,
}

impl SslMode {
    const ALL: [SslMode; 5] = [
        SslMode::Disable,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(text: &str) -> Result<SslMode, String> {
        SslMode::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| {
                format!("sslmode `{text}` is not one of disable, prefer, require, verify-ca, verify-full")
            })
    }

    /// What tokio-postgres is told: it negotiates TLS; the checks of the verify modes are ours.
    fn negotiated(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }

    /// Whether the server's certificate must chain to a CA: the verify modes.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// A database URL with its TLS settings taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseTls {
    /// The URL as tokio-postgres accepts it: `sslmode` is `disable`, `prefer` or `require`,
    /// and there is no `sslrootcert`.
    pub url: String,
    /// `prefer` when the URL names none (libpq's default).
    pub mode: SslMode,
    /// The CA certificates (PEM) the server's certificate must chain to: the URL's
    /// `sslrootcert` or the `database_ca_file` setting.
    pub ca_file: Option<PathBuf>,
}

/// Reads `sslmode` and `sslrootcert` from `url`, in either form (`postgresql://…?sslmode=…`
/// or `key=value …`); `ca_file` (the `database_ca_file` setting) names the CA when the URL
/// does not. The verify modes need a CA; two different CA files are refused.
pub fn database_tls(url: &str, ca_file: Option<&Path>) -> Result<DatabaseTls, String> {
    let (rest, mode, root) = match url_query(url) {
        Some((base, query)) => split_query(base, query)?,
        None => split_key_values(url)?,
    };
    let mode = mode.map(|m| SslMode::parse(&m)).transpose()?;
    let ca_file = match (root.map(PathBuf::from), ca_file) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "sslrootcert {} and database_ca_file {} name different CA files: set one",
                a.display(),
                b.display()
            ))
        }
        (Some(path), _) => Some(path),
        (None, other) => other.map(Path::to_path_buf),
    };
    if ca_file.as_deref() == Some(Path::new("system")) {
        return Err(
            "sslrootcert=system (the system's trust store) is not supported: name the CA file"
                .to_string(),
        );
    }
    if let Some(mode) = mode.filter(|m| m.verifies() && ca_file.is_none()) {
        return Err(format!(
            "sslmode={} needs the CA certificate: set sslrootcert in the URL or database_ca_file",
            mode.as_str()
        ));
    }
    let url = match rest {
        Some(rest) => rest.with_sslmode(mode.map(SslMode::negotiated)),
        None => url.to_string(),
    };
    Ok(DatabaseTls {
        url,
        mode: mode.unwrap_or(SslMode::Prefer),
        ca_file,
    })
}

/// The URL without its TLS settings, waiting for the `sslmode` tokio-postgres is told.
enum Rest {
    /// `postgresql://…` and the query parameters kept.
    Url(String, Vec<String>),
    /// The `key=value` pairs kept, as written.
    KeyValues(Vec<String>),
}

impl Rest {
    fn with_sslmode(self, mode: Option<&str>) -> String {
        match self {
            Rest::Url(base, mut params) => {
                params.extend(mode.map(|m| format!("sslmode={m}")));
                if params.is_empty() {
                    base
                } else {
                    format!("{base}?{}", params.join("&"))
                }
            }
            Rest::KeyValues(mut pairs) => {
                pairs.extend(mode.map(|m| format!("sslmode={m}")));
                pairs.join(" ")
            }
        }
    }
}

/// `(before '?', query)` of a `postgres://` or `postgresql://` URL.
fn url_query(url: &str) -> Option<(&str, &str)> {
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return None;
    }
    Some(url.split_once('?').unwrap_or((url, "")))
}

type Split = (Option<Rest>, Option<String>, Option<String>);

/// A URL's query without `sslmode` and `sslrootcert` (`None` if it had neither), and their
/// values.
fn split_query(base: &str, query: &str) -> Result<Split, String> {
    let (mut mode, mut root, mut kept, mut changed) = (None, None, Vec::new(), false);
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key {
            "sslmode" => mode = Some(percent_decode(value)?),
            "sslrootcert" => root = Some(percent_decode(value)?),
            _ => {
                kept.push(param.to_string());
                continue;
            }
        }
        changed = true;
    }
    Ok((
        changed.then(|| Rest::Url(base.to_string(), kept)),
        mode,
        root,
    ))
}

/// The same for a `key=value` connection string (values quoted with `'…'`, `\` escapes).
fn split_key_values(text: &str) -> Result<Split, String> {
    let (mut mode, mut root, mut kept, mut changed) = (None, None, Vec::new(), false);
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = rest[key_end..]
            .trim_start()
            .strip_prefix('=')
            .ok_or_else(|| format!("`{key}` in the connection string has no `=`"))?
            .trim_start();
        let (value, after) = match rest.strip_prefix('\'') {
            Some(quoted) => take_value(quoted, |c| c == '\'', true)?,
            None => take_value(rest, char::is_whitespace, false)?,
        };
        match key {
            "sslmode" => (mode, changed) = (Some(value), true),
            "sslrootcert" => (root, changed) = (Some(value), true),
            _ => kept.push(start[..start.len() - after.len()].to_string()),
        }
        rest = after.trim_start();
    }
    Ok((changed.then_some(Rest::KeyValues(kept)), mode, root))
}

/// A value up to its end (unescaped), and what follows the end (past a closing quote).
fn take_value(
    text: &str,
    end: impl Fn(char) -> bool,
    quoted: bool,
) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            value.extend(chars.next().map(|(_, c)| c));
        } else if end(c) {
            let skip = if quoted { c.len_utf8() } else { 0 };
            return Ok((value, &text[i + skip..]));
        } else {
            value.push(c);
        }
    }
    if quoted {
        return Err("unterminated quoted value in the connection string".to_string());
    }
    Ok((value, ""))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'%', None) => return Err(format!("bad percent-encoding in `{text}`")),
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{text}` is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> DatabaseTls {
        database_tls(url, None).unwrap()
    }

    #[test]
    fn a_url_without_tls_settings_is_kept_as_is() {
        let url = "postgresql://u:p@db:26257/serai?application_name=x";
        assert_eq!(
            split(url),
            DatabaseTls {
                url: url.to_string(),
                mode: SslMode::Prefer,
                ca_file: None
            }
        );
        assert_eq!(split("host=/tmp dbname=a").url, "host=/tmp dbname=a");
    }

    #[test]
    fn verify_modes_are_negotiated_as_require_and_the_ca_is_taken_out() {
        let t = split("postgres://root@db:26257/serai?sslmode=verify-full&sslrootcert=%2Fcerts%2Fca.crt&connect_timeout=5");
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.ca_file.as_deref(), Some(Path::new("/certs/ca.crt")));
        assert_eq!(
            t.url,
            "postgres://root@db:26257/serai?connect_timeout=5&sslmode=require"
        );
        let t = split("postgresql://db/x?sslrootcert=/ca.pem&sslmode=verify-ca");
        assert_eq!(t.mode, SslMode::VerifyCa);
        assert_eq!(t.url, "postgresql://db/x?sslmode=require");
        for (mode, told) in [
            ("disable", "disable"),
            ("prefer", "prefer"),
            ("require", "require"),
        ] {
            let t = split(&format!("postgresql://db/x?sslmode={mode}"));
            assert_eq!(t.mode.as_str(), mode);
            assert_eq!(t.url, format!("postgresql://db/x?sslmode={told}"));
            t.url.parse::<tokio_postgres::Config>().unwrap();
        }
    }

    #[test]
    fn key_value_strings_with_quotes() {
        let t = split(
            r"host=db  port = 26257 sslmode = verify-full sslrootcert='/my certs/ca\'s.crt' user=root",
        );
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.ca_file.as_deref(), Some(Path::new("/my certs/ca's.crt")));
        assert_eq!(t.url, "host=db port = 26257 user=root sslmode=require");
        let cfg: tokio_postgres::Config = t.url.parse().unwrap();
        assert_eq!(cfg.get_ports(), [26257]);
        assert!(database_tls("host=db sslrootcert='/x", None).is_err());
        assert!(database_tls("host=db sslmode", None).is_err());
    }

    #[test]
    fn the_setting_names_the_ca_when_the_url_does_not() {
        let ca = Path::new("/etc/serai/ca.crt");
        let t = database_tls("postgresql://db/x?sslmode=verify-full", Some(ca)).unwrap();
        assert_eq!(t.ca_file.as_deref(), Some(ca));
        let same = database_tls("postgresql://db/x?sslrootcert=/etc/serai/ca.crt", Some(ca));
        assert_eq!(same.unwrap().ca_file.as_deref(), Some(ca));
        let other = database_tls("postgresql://db/x?sslrootcert=/other.crt", Some(ca));
        assert!(other.unwrap_err().contains("different CA files"));
    }

    #[test]
    fn refusals_name_the_problem() {
        let no_ca = database_tls("postgresql://db/x?sslmode=verify-full", None).unwrap_err();
        assert!(
            no_ca.contains("sslmode=verify-full needs the CA certificate"),
            "{no_ca}"
        );
        let bad = database_tls("postgresql://db/x?sslmode=verify", None).unwrap_err();
        assert!(bad.contains("`verify` is not one of"), "{bad}");
        let system = database_tls(
            "postgresql://db/x?sslmode=verify-full&sslrootcert=system",
            None,
        );
        assert!(system.unwrap_err().contains("not supported"));
        assert!(database_tls("postgresql://db/x?sslrootcert=%zz", None).is_err());
    }
}
