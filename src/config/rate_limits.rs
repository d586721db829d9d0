//! The `[rate_limits]` section: cluster-wide limits per user and RPC group (docs/world.md
//! "Rate limits"). Off unless configured: with no section (and no `SERAI_RATE_LIMITS_*`
//! variable) every RPC is unlimited, as before.
//!
//! ```toml
//! [rate_limits]
//! lease_ms = 1000                      # how long a node may serve a granted batch
//! [rate_limits.default]                # every RPC no group names (optional)
//! rate_per_sec = 20
//! burst = 40
//! [rate_limits.groups.trade]
//! rate_per_sec = 5
//! burst = 10
//! rpcs = ["execute_trade"]
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::validate::bounded;
use super::ConfigError;

/// The name of the group every RPC not named by another group falls in.
pub const DEFAULT_GROUP: &str = "default";

/// What the file may say about one group.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateGroup {
    pub rate_per_sec: Option<f64>,
    pub burst: Option<i64>,
    pub rpcs: Option<Vec<String>>,
}

/// What the file may say in `[rate_limits]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimits {
    pub lease_ms: Option<i64>,
    pub default: Option<RawRateGroup>,
    pub groups: Option<BTreeMap<String, RawRateGroup>>,
}

/// One validated group: its name, rate, burst and (lower-cased) RPC ids.
#[derive(Debug, Clone, PartialEq)]
pub struct RateGroup {
    pub name: String,
    pub rate_per_sec: f64,
    pub burst: u32,
    pub rpcs: Vec<String>,
}

/// The validated limits; `None` in [`super::Config`] when none is configured.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    pub lease: Duration,
    pub default: Option<RateGroup>,
    pub groups: Vec<RateGroup>,
}

impl RateLimits {
    /// The group limiting RPC `id` (lower-cased), if any.
    pub fn group_of(&self, id: &str) -> Option<&RateGroup> {
        self.groups
            .iter()
            .find(|g| g.rpcs.iter().any(|r| r == id))
            .or(self.default.as_ref())
    }
}

impl RawRateLimits {
    /// Sets one `SERAI_RATE_LIMITS_*` override (`default_rate_per_sec`, `default_burst`,
    /// `lease_ms`) from its text.
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), ConfigError> {
        let v = value.trim();
        let full = format!("rate_limits.{field}");
        let number = || {
            v.parse::<f64>()
                .map_err(|_| ConfigError::new(&full, format!("`{v}` is not a number")))
        };
        let int = || {
            v.parse::<i64>()
                .map_err(|_| ConfigError::new(&full, format!("`{v}` is not an integer")))
        };
        match field {
            "lease_ms" => self.lease_ms = Some(int()?),
            "default.rate_per_sec" => {
                self.default
                    .get_or_insert_with(Default::default)
                    .rate_per_sec = Some(number()?)
            }
            "default.burst" => {
                self.default.get_or_insert_with(Default::default).burst = Some(int()?)
            }
            other => return Err(ConfigError::new(other, "not a known field")),
        }
        Ok(())
    }

    pub fn validate(self) -> Result<RateLimits, ConfigError> {
        let lease = Duration::from_millis(bounded(
            "rate_limits.lease_ms",
            self.lease_ms,
            1_000,
            10,
            60_000,
        )?);
        let default = self
            .default
            .map(|g| {
                if g.rpcs.as_ref().is_some_and(|r| !r.is_empty()) {
                    return Err(ConfigError::new(
                        "rate_limits.default.rpcs",
                        "the default group takes every RPC no other group names; list none",
                    ));
                }
                group(DEFAULT_GROUP, g)
            })
            .transpose()?;
        let mut groups = Vec::new();
        for (name, g) in self.groups.unwrap_or_default() {
            if name == DEFAULT_GROUP {
                return Err(ConfigError::new(
                    "rate_limits.groups.default",
                    "write the default group as [rate_limits.default]",
                ));
            }
            let g = group(&name, g)?;
            if g.rpcs.is_empty() {
                return Err(ConfigError::new(
                    &format!("rate_limits.groups.{name}.rpcs"),
                    "name at least one RPC",
                ));
            }
            for rpc in &g.rpcs {
                if let Some(other) = groups.iter().find(|o: &&RateGroup| o.rpcs.contains(rpc)) {
                    return Err(ConfigError::new(
                        &format!("rate_limits.groups.{name}.rpcs"),
                        format!("`{rpc}` is already in group `{}`", other.name),
                    ));
                }
            }
            groups.push(g);
        }
        Ok(RateLimits {
            lease,
            default,
            groups,
        })
    }
}

fn group(name: &str, g: RawRateGroup) -> Result<RateGroup, ConfigError> {
    let field = |f: &str| match name {
        DEFAULT_GROUP => format!("rate_limits.default.{f}"),
        _ => format!("rate_limits.groups.{name}.{f}"),
    };
    let rate_per_sec = match g.rate_per_sec {
        Some(r) if r.is_finite() && r > 0.0 && r <= 1_000_000.0 => r,
        Some(r) => {
            return Err(ConfigError::new(
                &field("rate_per_sec"),
                format!("{r} is outside (0, 1000000]"),
            ))
        }
        None => return Err(ConfigError::new(&field("rate_per_sec"), "is required")),
    };
    // By default a user may spend one second's worth at once.
    let default_burst = rate_per_sec.ceil().max(1.0) as u64;
    let burst = bounded(&field("burst"), g.burst, default_burst, 1, 1_000_000)? as u32;
    let rpcs = g
        .rpcs
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.trim().to_lowercase())
        .filter(|r| !r.is_empty())
        .collect();
    Ok(RateGroup {
        name: name.to_string(),
        rate_per_sec,
        burst,
        rpcs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RateLimits, ConfigError> {
        #[derive(Deserialize)]
        struct File {
            rate_limits: RawRateLimits,
        }
        let file: File = toml::from_str(text).expect("toml");
        file.rate_limits.validate()
    }

    #[test]
    fn groups_and_the_default_resolve_rpcs() {
        let limits = parse(
            "[rate_limits]\nlease_ms = 500\n[rate_limits.default]\nrate_per_sec = 20\n\
             [rate_limits.groups.trade]\nrate_per_sec = 2.5\nburst = 4\nrpcs = [\"Execute_Trade\"]\n",
        )
        .unwrap();
        assert_eq!(limits.lease, Duration::from_millis(500));
        let trade = limits.group_of("execute_trade").unwrap();
        assert_eq!((trade.name.as_str(), trade.burst), ("trade", 4));
        let other = limits.group_of("get_character").unwrap();
        assert_eq!((other.name.as_str(), other.burst), ("default", 20));
        let no_default =
            parse("[rate_limits.groups.t]\nrate_per_sec = 1\nrpcs = [\"a\"]\n").unwrap();
        assert!(no_default.group_of("b").is_none());
    }

    #[test]
    fn bad_groups_name_their_field() {
        let field = |t: &str| parse(t).unwrap_err().field;
        assert_eq!(
            field("[rate_limits.default]\nrate_per_sec = 0\n"),
            "rate_limits.default.rate_per_sec"
        );
        assert_eq!(
            field("[rate_limits.groups.t]\nrate_per_sec = 1\nburst = 0\nrpcs = [\"a\"]\n"),
            "rate_limits.groups.t.burst"
        );
        assert_eq!(
            field("[rate_limits.groups.t]\nrate_per_sec = 1\n"),
            "rate_limits.groups.t.rpcs"
        );
        assert_eq!(
            field(
                "[rate_limits.groups.a]\nrate_per_sec = 1\nrpcs = [\"x\"]\n\
                 [rate_limits.groups.b]\nrate_per_sec = 1\nrpcs = [\"X\"]\n"
            ),
            "rate_limits.groups.b.rpcs"
        );
    }

    #[test]
    fn off_by_default_and_read_from_the_file_and_the_environment() {
        use crate::config::RawConfig;
        assert!(RawConfig::default()
            .validate()
            .unwrap()
            .rate_limits
            .is_none());
        let raw: RawConfig = toml::from_str(
            "[rate_limits.groups.trade]\nrate_per_sec = 5\nrpcs = [\"execute_trade\"]\n",
        )
        .unwrap();
        let limits = raw.validate().unwrap().rate_limits.unwrap();
        assert_eq!(limits.group_of("execute_trade").unwrap().burst, 5);
        let mut raw = RawConfig::default();
        raw.apply_env(|k| (k == "SERAI_RATE_LIMITS_DEFAULT_RATE_PER_SEC").then(|| "7".into()))
            .unwrap();
        let limits = raw.validate().unwrap().rate_limits.unwrap();
        assert_eq!(limits.group_of("anything").unwrap().burst, 7);
    }

    #[test]
    fn env_overrides_fill_the_default_group() {
        let mut raw = RawRateLimits::default();
        raw.set("default.rate_per_sec", "3").unwrap();
        raw.set("default.burst", "6").unwrap();
        let limits = raw.validate().unwrap();
        let d = limits.default.unwrap();
        assert_eq!((d.rate_per_sec, d.burst), (3.0, 6));
        assert!(RawRateLimits::default().set("default.burst", "x").is_err());
    }
}
