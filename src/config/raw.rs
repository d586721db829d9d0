//! What a config file and the `SERAI_*` environment may say, before validation.

use std::path::Path;

use serde::Deserialize;

use super::rate_limits::RawRateLimits;
use super::ConfigError;

/// What a config file may contain; every field optional, unknown fields refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub node_id: Option<String>,
    pub client_addr: Option<String>,
    pub admin_addr: Option<String>,
    pub peer_addr: Option<String>,
    pub database_url: Option<String>,
    pub database_pool_size: Option<i64>,
    pub database_ca_file: Option<String>,
    pub dialect: Option<String>,
    pub server_key: Option<String>,
    pub http_key: Option<String>,
    pub session_encryption_key: Option<String>,
    pub session_token_expiry_secs: Option<i64>,
    pub refresh_encryption_key: Option<String>,
    pub refresh_token_expiry_secs: Option<i64>,
    pub admin_token: Option<String>,
    pub cluster_secret: Option<String>,
    pub allow_default_secrets: Option<bool>,
    pub flush_interval_ms: Option<i64>,
    pub flush_batch_size: Option<i64>,
    pub flush_backlog_high: Option<i64>,
    pub flush_backlog_low: Option<i64>,
    pub flush_backpressure_wait_ms: Option<i64>,
    pub idle_timeout_secs: Option<i64>,
    pub log_format: Option<String>,
    pub access_log: Option<bool>,
    pub max_message_size: Option<i64>,
    pub encounter_rate: Option<f64>,
    pub travel_time_scale: Option<f64>,
    pub battle_turn_timeout_ms: Option<i64>,
    pub rank_cache_blacklist: Option<Vec<String>>,
    pub leaderboard_batch_window_ms: Option<i64>,
    pub leaderboard_batch_size: Option<i64>,
    pub leaderboard_max_in_flight: Option<i64>,
    pub leaderboard_write_queue_limit: Option<i64>,
    pub leaderboard_sync_enabled: Option<bool>,
    pub leaderboard_sync_batch_size: Option<i64>,
    pub leaderboard_sync_batch_timeout_ms: Option<i64>,
    pub leaderboard_sync_compression: Option<bool>,
    pub leaderboard_sync_blacklist: Option<Vec<String>>,
    pub leaderboard_sync_buffer: Option<i64>,
    pub leaderboard_sync_ready_timeout_ms: Option<i64>,
    pub advertise_peer_addr: Option<String>,
    pub advertise_client_addr: Option<String>,
    pub heartbeat_interval_ms: Option<i64>,
    pub membership_timeout_ms: Option<i64>,
    pub ring_vnodes: Option<i64>,
    pub request_timeout_ms: Option<i64>,
    pub receipt_retention_hours: Option<i64>,
    pub db_connect_timeout_ms: Option<i64>,
    pub database_connect_timeout_secs: Option<i64>,
    pub db_pool_wait_ms: Option<i64>,
    pub db_statement_timeout_ms: Option<i64>,
    pub catalog_poll_interval_ms: Option<i64>,
    pub rate_limits: Option<RawRateLimits>,
}

/// Environment variables that override file values: (variable, field).
const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("SERAI_NODE_ID", "node_id"),
    ("SERAI_CLIENT_ADDR", "client_addr"),
    ("SERAI_ADMIN_ADDR", "admin_addr"),
    ("SERAI_PEER_ADDR", "peer_addr"),
    ("SERAI_DATABASE_URL", "database_url"),
    ("SERAI_DATABASE_POOL_SIZE", "database_pool_size"),
    ("SERAI_DATABASE_CA_FILE", "database_ca_file"),
    ("SERAI_DIALECT", "dialect"),
    ("SERAI_SERVER_KEY", "server_key"),
    ("SERAI_HTTP_KEY", "http_key"),
    ("SERAI_SESSION_ENCRYPTION_KEY", "session_encryption_key"),
    ("SERAI_REFRESH_ENCRYPTION_KEY", "refresh_encryption_key"),
    ("SERAI_ADMIN_TOKEN", "admin_token"),
    ("SERAI_CLUSTER_SECRET", "cluster_secret"),
    ("SERAI_ALLOW_DEFAULT_SECRETS", "allow_default_secrets"),
    ("SERAI_FLUSH_INTERVAL_MS", "flush_interval_ms"),
    ("SERAI_FLUSH_BATCH_SIZE", "flush_batch_size"),
    ("SERAI_FLUSH_BACKLOG_HIGH", "flush_backlog_high"),
    ("SERAI_FLUSH_BACKLOG_LOW", "flush_backlog_low"),
    (
        "SERAI_FLUSH_BACKPRESSURE_WAIT_MS",
        "flush_backpressure_wait_ms",
    ),
    ("SERAI_IDLE_TIMEOUT_SECS", "idle_timeout_secs"),
    ("SERAI_LOG_FORMAT", "log_format"),
    ("SERAI_ACCESS_LOG", "access_log"),
    ("SERAI_MAX_MESSAGE_SIZE", "max_message_size"),
    ("SERAI_ENCOUNTER_RATE", "encounter_rate"),
    ("SERAI_TRAVEL_TIME_SCALE", "travel_time_scale"),
    ("SERAI_BATTLE_TURN_TIMEOUT_MS", "battle_turn_timeout_ms"),
    ("SERAI_RANK_CACHE_BLACKLIST", "rank_cache_blacklist"),
    ("SERAI_ADVERTISE_PEER_ADDR", "advertise_peer_addr"),
    ("SERAI_ADVERTISE_CLIENT_ADDR", "advertise_client_addr"),
    ("SERAI_HEARTBEAT_INTERVAL_MS", "heartbeat_interval_ms"),
    ("SERAI_MEMBERSHIP_TIMEOUT_MS", "membership_timeout_ms"),
    ("SERAI_REQUEST_TIMEOUT_MS", "request_timeout_ms"),
    ("SERAI_RECEIPT_RETENTION_HOURS", "receipt_retention_hours"),
    ("SERAI_DB_CONNECT_TIMEOUT_MS", "db_connect_timeout_ms"),
    (
        "SERAI_DATABASE_CONNECT_TIMEOUT_SECS",
        "database_connect_timeout_secs",
    ),
    ("SERAI_DB_POOL_WAIT_MS", "db_pool_wait_ms"),
    ("SERAI_DB_STATEMENT_TIMEOUT_MS", "db_statement_timeout_ms"),
    ("SERAI_CATALOG_POLL_INTERVAL_MS", "catalog_poll_interval_ms"),
    (
        "SERAI_LEADERBOARD_BATCH_WINDOW_MS",
        "leaderboard_batch_window_ms",
    ),
    ("SERAI_LEADERBOARD_BATCH_SIZE", "leaderboard_batch_size"),
    (
        "SERAI_LEADERBOARD_MAX_IN_FLIGHT",
        "leaderboard_max_in_flight",
    ),
    (
        "SERAI_LEADERBOARD_WRITE_QUEUE_LIMIT",
        "leaderboard_write_queue_limit",
    ),
    ("SERAI_LEADERBOARD_SYNC_ENABLED", "leaderboard_sync_enabled"),
    (
        "SERAI_LEADERBOARD_SYNC_BATCH_SIZE",
        "leaderboard_sync_batch_size",
    ),
    (
        "SERAI_LEADERBOARD_SYNC_BATCH_TIMEOUT_MS",
        "leaderboard_sync_batch_timeout_ms",
    ),
    (
        "SERAI_LEADERBOARD_SYNC_COMPRESSION",
        "leaderboard_sync_compression",
    ),
    (
        "SERAI_LEADERBOARD_SYNC_BLACKLIST",
        "leaderboard_sync_blacklist",
    ),
    ("SERAI_LEADERBOARD_SYNC_BUFFER", "leaderboard_sync_buffer"),
    (
        "SERAI_LEADERBOARD_SYNC_READY_TIMEOUT_MS",
        "leaderboard_sync_ready_timeout_ms",
    ),
    ("SERAI_RING_VNODES", "ring_vnodes"),
    ("SERAI_RATE_LIMITS_LEASE_MS", "rate_limits.lease_ms"),
    (
        "SERAI_RATE_LIMITS_DEFAULT_RATE_PER_SEC",
        "rate_limits.default.rate_per_sec",
    ),
    (
        "SERAI_RATE_LIMITS_DEFAULT_BURST",
        "rate_limits.default.burst",
    ),
    (
        "SERAI_SESSION_TOKEN_EXPIRY_SECS",
        "session_token_expiry_secs",
    ),
    (
        "SERAI_REFRESH_TOKEN_EXPIRY_SECS",
        "refresh_token_expiry_secs",
    ),
];

impl RawConfig {
    /// Reads a TOML file; a missing path means "all defaults".
    pub fn from_file(path: Option<&Path>) -> Result<RawConfig, ConfigError> {
        let Some(path) = path else {
            return Ok(RawConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("config", format!("cannot read {}: {e}", path.display()))
        })?;
        toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_string();
            // An unknown key is named in the message; for a bad value, the key is the text
            // before `=` on the line where the error starts.
            let unknown = msg
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next());
            let at_span = e
                .span()
                .and_then(|span| text.get(..span.start))
                .and_then(|before| before.rsplit('\n').next())
                .and_then(|line| line.split('=').next())
                .map(str::trim)
                .filter(|key| !key.is_empty());
            let field = unknown.or(at_span).unwrap_or("config");
            ConfigError::new(field, msg.replace('\n', " "))
        })
    }

    /// The defaults with `pairs` as `SERAI_*` overrides, validated: a configuration as the
    /// environment would give it, for tests and tools.
    pub fn from_env_pairs(pairs: &[(&str, &str)]) -> Result<super::Config, ConfigError> {
        let mut raw = RawConfig::default();
        raw.apply_env(|var| {
            pairs
                .iter()
                .find(|(name, _)| *name == var)
                .map(|(_, value)| value.to_string())
        })?;
        raw.validate()
    }

    /// Applies `SERAI_*` overrides from `lookup` (the process environment in production).
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        for (var, field) in ENV_OVERRIDES {
            if let Some(value) = lookup(var) {
                self.set(field, value)?;
            }
        }
        Ok(())
    }

    fn set(&mut self, field: &str, value: String) -> Result<(), ConfigError> {
        if let Some(rest) = field.strip_prefix("rate_limits.") {
            return self
                .rate_limits
                .get_or_insert_with(Default::default)
                .set(rest, &value);
        }
        let float = |v: &str| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| ConfigError::new(field, format!("`{v}` is not a number")))
        };
        let boolean = |v: &str| match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new(
                field,
                format!("`{v}` is not true or false"),
            )),
        };
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let int = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ConfigError::new(field, format!("`{v}` is not an integer")))
        };
        match field {
            "node_id" => self.node_id = Some(value),
            "client_addr" => self.client_addr = Some(value),
            "admin_addr" => self.admin_addr = Some(value),
            "peer_addr" => self.peer_addr = Some(value),
            "database_url" => self.database_url = Some(value),
            "database_pool_size" => self.database_pool_size = Some(int(&value)?),
            "database_ca_file" => self.database_ca_file = Some(value),
            "dialect" => self.dialect = Some(value),
            "server_key" => self.server_key = Some(value),
            "http_key" => self.http_key = Some(value),
            "session_encryption_key" => self.session_encryption_key = Some(value),
            "refresh_encryption_key" => self.refresh_encryption_key = Some(value),
            "admin_token" => self.admin_token = Some(value),
            "cluster_secret" => self.cluster_secret = Some(value),
            "allow_default_secrets" => self.allow_default_secrets = Some(boolean(&value)?),
            "flush_interval_ms" => self.flush_interval_ms = Some(int(&value)?),
            "flush_batch_size" => self.flush_batch_size = Some(int(&value)?),
            "flush_backlog_high" => self.flush_backlog_high = Some(int(&value)?),
            "flush_backlog_low" => self.flush_backlog_low = Some(int(&value)?),
            "flush_backpressure_wait_ms" => self.flush_backpressure_wait_ms = Some(int(&value)?),
            "idle_timeout_secs" => self.idle_timeout_secs = Some(int(&value)?),
            "log_format" => self.log_format = Some(value),
            "access_log" => self.access_log = Some(boolean(&value)?),
            "max_message_size" => self.max_message_size = Some(int(&value)?),
            "encounter_rate" => self.encounter_rate = Some(float(&value)?),
            "travel_time_scale" => self.travel_time_scale = Some(float(&value)?),
            "battle_turn_timeout_ms" => self.battle_turn_timeout_ms = Some(int(&value)?),
            "rank_cache_blacklist" => {
                self.rank_cache_blacklist = Some(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                )
            }
            "advertise_peer_addr" => self.advertise_peer_addr = Some(value),
            "advertise_client_addr" => self.advertise_client_addr = Some(value),
            "heartbeat_interval_ms" => self.heartbeat_interval_ms = Some(int(&value)?),
            "membership_timeout_ms" => self.membership_timeout_ms = Some(int(&value)?),
            "leaderboard_batch_window_ms" => self.leaderboard_batch_window_ms = Some(int(&value)?),
            "leaderboard_batch_size" => self.leaderboard_batch_size = Some(int(&value)?),
            "leaderboard_max_in_flight" => self.leaderboard_max_in_flight = Some(int(&value)?),
            "leaderboard_write_queue_limit" => {
                self.leaderboard_write_queue_limit = Some(int(&value)?)
            }
            "leaderboard_sync_enabled" => self.leaderboard_sync_enabled = Some(boolean(&value)?),
            "leaderboard_sync_batch_size" => self.leaderboard_sync_batch_size = Some(int(&value)?),
            "leaderboard_sync_batch_timeout_ms" => {
                self.leaderboard_sync_batch_timeout_ms = Some(int(&value)?)
            }
            "leaderboard_sync_compression" => {
                self.leaderboard_sync_compression = Some(boolean(&value)?)
            }
            "leaderboard_sync_blacklist" => self.leaderboard_sync_blacklist = Some(list(&value)),
            "leaderboard_sync_buffer" => self.leaderboard_sync_buffer = Some(int(&value)?),
            "leaderboard_sync_ready_timeout_ms" => {
                self.leaderboard_sync_ready_timeout_ms = Some(int(&value)?)
            }
            "ring_vnodes" => self.ring_vnodes = Some(int(&value)?),
            "request_timeout_ms" => self.request_timeout_ms = Some(int(&value)?),
            "receipt_retention_hours" => self.receipt_retention_hours = Some(int(&value)?),
            "db_connect_timeout_ms" => self.db_connect_timeout_ms = Some(int(&value)?),
            "database_connect_timeout_secs" => {
                self.database_connect_timeout_secs = Some(int(&value)?)
            }
            "db_pool_wait_ms" => self.db_pool_wait_ms = Some(int(&value)?),
            "db_statement_timeout_ms" => self.db_statement_timeout_ms = Some(int(&value)?),
            "catalog_poll_interval_ms" => self.catalog_poll_interval_ms = Some(int(&value)?),
            "session_token_expiry_secs" => self.session_token_expiry_secs = Some(int(&value)?),
            "refresh_token_expiry_secs" => self.refresh_token_expiry_secs = Some(int(&value)?),
            other => return Err(ConfigError::new(other, "not a known field")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod max_in_flight_tests {
    use super::RawConfig;

    #[test]
    fn leaderboard_max_in_flight_defaults_to_4_and_is_bounded() {
        let default = RawConfig::from_env_pairs(&[]).unwrap();
        assert_eq!(default.leaderboard_max_in_flight, 4);
        let set = RawConfig::from_env_pairs(&[("SERAI_LEADERBOARD_MAX_IN_FLIGHT", "8")]).unwrap();
        assert_eq!(set.leaderboard_max_in_flight, 8);
        for bad in ["0", "65", "many"] {
            let e = RawConfig::from_env_pairs(&[("SERAI_LEADERBOARD_MAX_IN_FLIGHT", bad)]);
            assert!(e.is_err(), "{bad} accepted");
        }
    }
}
