//! The six secrets a node must not run with in the open: their names, their built-in defaults
//! (public, since they are in this repository), and the pure decision whether `serai node` may
//! start with them ([`Config::secrets_check`]).
//!
//! `serai node` refuses to start while any of them is at its default unless
//! `allow_default_secrets = true` (`SERAI_ALLOW_DEFAULT_SECRETS=true`), which tests, benches
//! and local clusters set. `serai dev` does not ask: it prints the keys it runs with.

use super::Config;

pub(super) const DEFAULT_SERVER_KEY: &str = "defaultkey";
pub(super) const DEFAULT_HTTP_KEY: &str = "defaulthttpkey";
pub(super) const DEFAULT_ADMIN_TOKEN: &str = "defaultadmintoken";
pub(super) const DEFAULT_CLUSTER_SECRET: &str = "defaultclustersecret";
pub(super) const DEFAULT_SESSION_ENCRYPTION_KEY: &str = "defaultencryptionkey";
pub(super) const DEFAULT_REFRESH_ENCRYPTION_KEY: &str = "defaultrefreshencryptionkey";

/// One secret setting: where it is set and what it is when nobody sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secret {
    /// Its key in the TOML file.
    pub key: &'static str,
    /// Its environment variable.
    pub env: &'static str,
    /// Its built-in default.
    pub default: &'static str,
    /// What someone who knows the default can do.
    pub guards: &'static str,
}

impl Secret {
    /// This secret's value in `config`.
    pub fn value<'a>(&self, config: &'a Config) -> &'a str {
        match self.key {
            "server_key" => &config.server_key,
            "http_key" => &config.http_key,
            "admin_token" => &config.admin_token,
            "cluster_secret" => &config.cluster_secret,
            "session_encryption_key" => &config.session_encryption_key,
            "refresh_encryption_key" => &config.refresh_encryption_key,
            other => unreachable!("no secret setting {other}"),
        }
    }
}

/// Every secret setting, in the order a refusal lists them.
pub const SECRETS: [Secret; 6] = [
    Secret {
        key: "server_key",
        env: "SERAI_SERVER_KEY",
        default: DEFAULT_SERVER_KEY,
        guards: "client authentication",
    },
    Secret {
        key: "http_key",
        env: "SERAI_HTTP_KEY",
        default: DEFAULT_HTTP_KEY,
        guards: "server-to-server RPCs, which act as any user",
    },
    Secret {
        key: "admin_token",
        env: "SERAI_ADMIN_TOKEN",
        default: DEFAULT_ADMIN_TOKEN,
        guards: "the admin API (drain, flush, compensation, leaderboards)",
    },
    Secret {
        key: "cluster_secret",
        env: "SERAI_CLUSTER_SECRET",
        default: DEFAULT_CLUSTER_SECRET,
        guards: "peer links: joining the cluster",
    },
    Secret {
        key: "session_encryption_key",
        env: "SERAI_SESSION_ENCRYPTION_KEY",
        default: DEFAULT_SESSION_ENCRYPTION_KEY,
        guards: "session tokens: forging any player's session",
    },
    Secret {
        key: "refresh_encryption_key",
        env: "SERAI_REFRESH_ENCRYPTION_KEY",
        default: DEFAULT_REFRESH_ENCRYPTION_KEY,
        guards: "refresh tokens: forging any player's refresh",
    },
];

/// What `serai node` does about its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsCheck {
    /// Every secret is set: start.
    Set,
    /// Some are at their defaults but `allow_default_secrets` is on: start, and warn.
    DefaultsAllowed(Vec<&'static Secret>),
    /// Some are at their defaults: refuse to start (the error says which and how to set them).
    Refused(DefaultSecrets),
}

/// The refusal: the secrets still at their built-in defaults.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", refusal(.0))]
pub struct DefaultSecrets(pub Vec<&'static Secret>);

fn refusal(secrets: &[&'static Secret]) -> String {
    let names: Vec<&str> = secrets.iter().map(|s| s.key).collect();
    let mut text = format!(
        "refusing to start: {} still at the built-in default, which is public: {}\n\
         Set each to a value of its own (e.g. `openssl rand -hex 32`), as an environment \
         variable or as a key in the --config file:\n",
        if secrets.len() == 1 {
            "this secret is"
        } else {
            "these secrets are"
        },
        names.join(", "),
    );
    let row = |env: &str, key: &str, guards: &str| format!("  {env:<30}{key:<32}{guards}\n");
    text.push_str(&row("environment variable", "TOML key", "guards"));
    for s in secrets {
        text.push_str(&row(s.env, &format!("{} = \"...\"", s.key), s.guards));
    }
    if secrets.iter().any(|s| s.key.ends_with("_encryption_key")) {
        text.push_str("(session_encryption_key and refresh_encryption_key must differ.)\n");
    }
    text.push_str(
        "For development and tests only, SERAI_ALLOW_DEFAULT_SECRETS=true (or \
         allow_default_secrets = true in the file) starts anyway; `serai dev` needs neither.",
    );
    text
}

impl Config {
    /// The secrets still at their built-in defaults, in [`SECRETS`] order.
    pub fn default_secrets(&self) -> Vec<&'static Secret> {
        SECRETS
            .iter()
            .filter(|s| s.value(self) == s.default)
            .collect()
    }

    /// Whether `serai node` may start with these secrets: not while one is at its default,
    /// unless `allow_default_secrets` says so.
    pub fn secrets_check(&self) -> SecretsCheck {
        let defaults = self.default_secrets();
        if defaults.is_empty() {
            SecretsCheck::Set
        } else if self.allow_default_secrets {
            SecretsCheck::DefaultsAllowed(defaults)
        } else {
            SecretsCheck::Refused(DefaultSecrets(defaults))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn config(pairs: &[(&str, &str)]) -> Config {
        RawConfig::from_env_pairs(pairs).unwrap()
    }

    fn keys(secrets: &[&Secret]) -> Vec<&'static str> {
        secrets.iter().map(|s| s.key).collect()
    }

    const ALL_SET: [(&str, &str); 6] = [
        ("SERAI_SERVER_KEY", "k1"),
        ("SERAI_HTTP_KEY", "k2"),
        ("SERAI_ADMIN_TOKEN", "admin-123"),
        ("SERAI_CLUSTER_SECRET", "cluster-123"),
        ("SERAI_SESSION_ENCRYPTION_KEY", "session-123"),
        ("SERAI_REFRESH_ENCRYPTION_KEY", "refresh-123"),
    ];

    #[test]
    fn defaults_are_every_secret_and_are_refused() {
        let c = config(&[]);
        assert!(!c.allow_default_secrets);
        let all = keys(&SECRETS.iter().collect::<Vec<_>>());
        assert_eq!(keys(&c.default_secrets()), all);
        let SecretsCheck::Refused(refusal) = c.secrets_check() else {
            panic!("defaults are refused: {:?}", c.secrets_check());
        };
        let text = refusal.to_string();
        for s in SECRETS {
            assert!(text.contains(s.key), "names {}: {text}", s.key);
            assert!(text.contains(s.env), "{}: {text}", s.env);
            assert!(text.contains(&format!("{} = ", s.key)), "{}: {text}", s.key);
        }
        assert!(text.contains("SERAI_ALLOW_DEFAULT_SECRETS=true"), "{text}");
        assert!(text.contains("allow_default_secrets = true"), "{text}");
        assert!(
            !text.contains("defaulthttpkey"),
            "never prints values: {text}"
        );
    }

    #[test]
    fn each_secret_left_alone_is_named_alone() {
        for (i, secret) in SECRETS.iter().enumerate() {
            let mut pairs = ALL_SET.to_vec();
            pairs.remove(i);
            let c = config(&pairs);
            assert_eq!(keys(&c.default_secrets()), [secret.key]);
            let SecretsCheck::Refused(refusal) = c.secrets_check() else {
                panic!("{} at its default is refused", secret.key);
            };
            let text = refusal.to_string();
            assert!(text.contains("this secret is"), "{text}");
            for other in SECRETS.iter().filter(|s| s.key != secret.key) {
                assert!(!text.contains(other.env), "only {}: {text}", secret.key);
            }
            // Setting it to its default by hand is still the default.
            pairs.push((secret.env, secret.default));
            assert_eq!(keys(&config(&pairs).default_secrets()), [secret.key]);
        }
    }

    #[test]
    fn all_set_starts() {
        assert_eq!(config(&ALL_SET).secrets_check(), SecretsCheck::Set);
        let mut pairs = ALL_SET.to_vec();
        pairs.push(("SERAI_ALLOW_DEFAULT_SECRETS", "true"));
        assert_eq!(config(&pairs).secrets_check(), SecretsCheck::Set);
    }

    #[test]
    fn allow_default_secrets_starts_and_still_names_them() {
        let c = config(&[
            ("SERAI_ALLOW_DEFAULT_SECRETS", "true"),
            ("SERAI_ADMIN_TOKEN", "admin-123"),
        ]);
        let SecretsCheck::DefaultsAllowed(defaults) = c.secrets_check() else {
            panic!("allowed: {:?}", c.secrets_check());
        };
        assert_eq!(
            keys(&defaults),
            [
                "server_key",
                "http_key",
                "cluster_secret",
                "session_encryption_key",
                "refresh_encryption_key"
            ]
        );
        let from_file: RawConfig = toml::from_str("allow_default_secrets = true").unwrap();
        assert!(from_file.validate().unwrap().allow_default_secrets);
        let off = config(&[("SERAI_ALLOW_DEFAULT_SECRETS", "false")]);
        assert!(matches!(off.secrets_check(), SecretsCheck::Refused(_)));
    }

    #[test]
    fn a_bad_allow_value_names_its_field() {
        let mut raw = RawConfig::default();
        let err = raw
            .apply_env(|k| (k == "SERAI_ALLOW_DEFAULT_SECRETS").then(|| "maybe".to_string()))
            .unwrap_err();
        assert_eq!(err.field, "allow_default_secrets");
    }
}
