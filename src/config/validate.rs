//! [`RawConfig::validate`]: every field checked, defaults filled in, one [`ConfigError`]
//! naming the first bad field.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::secrets::{
    DEFAULT_ADMIN_TOKEN, DEFAULT_CLUSTER_SECRET, DEFAULT_HTTP_KEY, DEFAULT_REFRESH_ENCRYPTION_KEY,
    DEFAULT_SERVER_KEY, DEFAULT_SESSION_ENCRYPTION_KEY,
};
use super::{Config, ConfigError, Dialect, LogFormat, RawConfig};

impl RawConfig {
    /// Checks every field and fills in defaults.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let secs = |field: &str, v: Option<i64>, default: u64, min: u64, max: u64| {
            bounded(field, v, default, min, max).map(Duration::from_secs)
        };
        let database_ca_file = self
            .database_ca_file
            .filter(|f| !f.trim().is_empty())
            .map(PathBuf::from);
        let config = Config {
            node_id: node_id(self.node_id)?,
            client_addr: addr("client_addr", self.client_addr, "127.0.0.1:7350")?,
            admin_addr: addr("admin_addr", self.admin_addr, "127.0.0.1:7351")?,
            peer_addr: addr("peer_addr", self.peer_addr, "127.0.0.1:7352")?,
            database_url: database_url(self.database_url, database_ca_file.as_deref())?,
            database_ca_file,
            database_pool_size: bounded("database_pool_size", self.database_pool_size, 16, 1, 1024)?
                as usize,
            dialect: parse_enum("dialect", self.dialect, Dialect::Postgres)?,
            server_key: secret("server_key", self.server_key, DEFAULT_SERVER_KEY, 1)?,
            http_key: secret("http_key", self.http_key, DEFAULT_HTTP_KEY, 1)?,
            session_encryption_key: secret(
                "session_encryption_key",
                self.session_encryption_key,
                DEFAULT_SESSION_ENCRYPTION_KEY,
                8,
            )?,
            session_token_expiry: secs(
                "session_token_expiry_secs",
                self.session_token_expiry_secs,
                7200,
                120,
                31_536_000,
            )?,
            refresh_encryption_key: secret(
                "refresh_encryption_key",
                self.refresh_encryption_key,
                DEFAULT_REFRESH_ENCRYPTION_KEY,
                8,
            )?,
            refresh_token_expiry: secs(
                "refresh_token_expiry_secs",
                self.refresh_token_expiry_secs,
                86_400,
                3_700,
                31_536_000,
            )?,
            admin_token: secret("admin_token", self.admin_token, DEFAULT_ADMIN_TOKEN, 8)?,
            cluster_secret: secret(
                "cluster_secret",
                self.cluster_secret,
                DEFAULT_CLUSTER_SECRET,
                8,
            )?,
            allow_default_secrets: self.allow_default_secrets.unwrap_or(false),
            flush_interval: Duration::from_millis(bounded(
                "flush_interval_ms",
                self.flush_interval_ms,
                200,
                1,
                60_000,
            )?),
            flush_batch_size: bounded("flush_batch_size", self.flush_batch_size, 1000, 1, 10_000)?
                as usize,
            flush_backlog_high: bounded(
                "flush_backlog_high",
                self.flush_backlog_high,
                50_000,
                1,
                10_000_000,
            )? as usize,
            // Checked against the high mark below (its default is half of it).
            flush_backlog_low: bounded(
                "flush_backlog_low",
                self.flush_backlog_low,
                0,
                0,
                10_000_000,
            )? as usize,
            flush_backpressure_wait: Duration::from_millis(bounded(
                "flush_backpressure_wait_ms",
                self.flush_backpressure_wait_ms,
                1_000,
                0,
                60_000,
            )?),
            idle_timeout: secs("idle_timeout_secs", self.idle_timeout_secs, 300, 1, 86_400)?,
            log_format: parse_enum("log_format", self.log_format, LogFormat::Text)?,
            max_message_size: bounded(
                "max_message_size",
                self.max_message_size,
                4096,
                256,
                1 << 20,
            )? as usize,
            encounter_rate: match self.encounter_rate {
                Some(r) if !(0.0..=1.0).contains(&r) => {
                    return Err(ConfigError::new(
                        "encounter_rate",
                        format!("{r} is outside 0.0..=1.0"),
                    ))
                }
                other => other,
            },
            travel_time_scale: match self.travel_time_scale {
                Some(f) if !(f > 0.0 && f <= 1000.0) => {
                    return Err(ConfigError::new(
                        "travel_time_scale",
                        format!("{f} is outside (0, 1000]"),
                    ))
                }
                other => other.unwrap_or(1.0),
            },
            battle_turn_timeout: Duration::from_millis(bounded(
                "battle_turn_timeout_ms",
                self.battle_turn_timeout_ms,
                30_000,
                10,
                3_600_000,
            )?),
            rank_cache_blacklist: self.rank_cache_blacklist.unwrap_or_default(),
            leaderboard_batch_window: Duration::from_millis(bounded(
                "leaderboard_batch_window_ms",
                self.leaderboard_batch_window_ms,
                5,
                0,
                1_000,
            )?),
            leaderboard_batch_size: bounded(
                "leaderboard_batch_size",
                self.leaderboard_batch_size,
                500,
                1,
                10_000,
            )? as usize,
            leaderboard_max_in_flight: bounded(
                "leaderboard_max_in_flight",
                self.leaderboard_max_in_flight,
                super::MAX_IN_FLIGHT_DEFAULT as u64,
                1,
                64,
            )? as usize,
            leaderboard_write_queue_limit: bounded(
                "leaderboard_write_queue_limit",
                self.leaderboard_write_queue_limit,
                10_000,
                1,
                1_000_000,
            )? as usize,
            leaderboard_sync_enabled: self.leaderboard_sync_enabled.unwrap_or(true),
            access_log: self.access_log.unwrap_or(true),
            leaderboard_sync_batch_size: bounded(
                "leaderboard_sync_batch_size",
                self.leaderboard_sync_batch_size,
                100,
                1,
                10_000,
            )? as usize,
            leaderboard_sync_batch_timeout: Duration::from_millis(bounded(
                "leaderboard_sync_batch_timeout_ms",
                self.leaderboard_sync_batch_timeout_ms,
                1_000,
                1,
                60_000,
            )?),
            leaderboard_sync_compression: self.leaderboard_sync_compression.unwrap_or(false),
            leaderboard_sync_blacklist: self.leaderboard_sync_blacklist.unwrap_or_default(),
            leaderboard_sync_buffer: bounded(
                "leaderboard_sync_buffer",
                self.leaderboard_sync_buffer,
                100_000,
                16,
                10_000_000,
            )? as usize,
            leaderboard_sync_ready_timeout: Duration::from_millis(bounded(
                "leaderboard_sync_ready_timeout_ms",
                self.leaderboard_sync_ready_timeout_ms,
                30_000,
                0,
                600_000,
            )?),
            advertise_peer_addr: String::new(),
            advertise_client_addr: String::new(),
            heartbeat_interval: Duration::from_millis(bounded(
                "heartbeat_interval_ms",
                self.heartbeat_interval_ms,
                500,
                10,
                60_000,
            )?),
            membership_timeout: Duration::from_millis(bounded(
                "membership_timeout_ms",
                self.membership_timeout_ms,
                3_000,
                50,
                600_000,
            )?),
            ring_vnodes: bounded("ring_vnodes", self.ring_vnodes, 128, 128, 4096)? as usize,
            request_timeout: Duration::from_millis(bounded(
                "request_timeout_ms",
                self.request_timeout_ms,
                5_000,
                100,
                120_000,
            )?),
            receipt_retention: Duration::from_secs(
                3600 * bounded(
                    "receipt_retention_hours",
                    self.receipt_retention_hours,
                    24,
                    24,
                    24 * 90,
                )?,
            ),
            db_connect_timeout: ms("db_connect_timeout_ms", self.db_connect_timeout_ms, 2_000)?,
            database_connect_timeout: Duration::from_secs(bounded(
                "database_connect_timeout_secs",
                self.database_connect_timeout_secs,
                60,
                0,
                3_600,
            )?),
            db_pool_wait: ms("db_pool_wait_ms", self.db_pool_wait_ms, 1_000)?,
            db_statement_timeout: ms(
                "db_statement_timeout_ms",
                self.db_statement_timeout_ms,
                5_000,
            )?,
            catalog_poll_interval: Duration::from_millis(bounded(
                "catalog_poll_interval_ms",
                self.catalog_poll_interval_ms,
                10_000,
                10,
                3_600_000,
            )?),
            rate_limits: self.rate_limits.map(|r| r.validate()).transpose()?,
        };
        let mut config = config;
        config.advertise_peer_addr = self
            .advertise_peer_addr
            .unwrap_or_else(|| config.peer_addr.to_string());
        config.advertise_client_addr = self
            .advertise_client_addr
            .unwrap_or_else(|| config.client_addr.to_string());
        match self.flush_backlog_low {
            None => config.flush_backlog_low = config.flush_backlog_high / 2,
            Some(_) if config.flush_backlog_low >= config.flush_backlog_high => {
                return Err(ConfigError::new(
                    "flush_backlog_low",
                    "must be below flush_backlog_high",
                ))
            }
            Some(_) => {}
        }
        if config.membership_timeout <= config.heartbeat_interval {
            return Err(ConfigError::new(
                "membership_timeout_ms",
                "must be longer than heartbeat_interval_ms",
            ));
        }
        if config.session_encryption_key == config.refresh_encryption_key {
            return Err(ConfigError::new(
                "refresh_encryption_key",
                "must differ from session_encryption_key",
            ));
        }
        Ok(config)
    }
}

fn node_id(v: Option<String>) -> Result<String, ConfigError> {
    let id = v.unwrap_or_else(|| "serai-0".to_string());
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(id)
    } else {
        Err(ConfigError::new(
            "node_id",
            "must be 1-63 characters of letters, digits, '-', '_' or '.'",
        ))
    }
}

fn addr(field: &str, v: Option<String>, default: &str) -> Result<SocketAddr, ConfigError> {
    let text = v.unwrap_or_else(|| default.to_string());
    text.parse().map_err(|_| {
        ConfigError::new(
            field,
            format!("`{text}` is not an address like 127.0.0.1:7350"),
        )
    })
}

/// The URL, checked: its TLS settings (with the CA file setting) and the rest as
/// tokio-postgres reads it.
fn database_url(
    v: Option<String>,
    ca_file: Option<&std::path::Path>,
) -> Result<String, ConfigError> {
    let url = v.unwrap_or_else(|| "postgresql://postgres@127.0.0.1:5432/serai".to_string());
    let tls =
        super::database_tls(&url, ca_file).map_err(|e| ConfigError::new("database_url", e))?;
    tls.url.parse::<tokio_postgres::Config>().map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        ConfigError::new("database_url", format!("not a PostgreSQL URL: {e}{cause}"))
    })?;
    Ok(url)
}

fn secret(
    field: &str,
    v: Option<String>,
    default: &str,
    min_len: usize,
) -> Result<String, ConfigError> {
    let s = v.unwrap_or_else(|| default.to_string());
    if s.len() < min_len {
        return Err(ConfigError::new(
            field,
            format!("must be at least {min_len} characters"),
        ));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            field,
            "must not contain whitespace or control characters",
        ));
    }
    Ok(s)
}

/// A duration in milliseconds between 10 ms and 10 minutes.
fn ms(field: &str, v: Option<i64>, default: u64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(bounded(
        field, v, default, 10, 600_000,
    )?))
}

pub(super) fn bounded(
    field: &str,
    v: Option<i64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    if v < min as i64 || v > max as i64 {
        return Err(ConfigError::new(
            field,
            format!("{v} is outside {min}..={max}"),
        ));
    }
    Ok(v as u64)
}

fn parse_enum<T: for<'de> Deserialize<'de>>(
    field: &str,
    v: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    let Some(text) = v else { return Ok(default) };
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(&text))
        .map_err(|_| ConfigError::new(field, format!("`{text}` is not one of the allowed values")))
}
