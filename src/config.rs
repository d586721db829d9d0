//! Node configuration: a TOML file, then `SERAI_*` environment overrides, validated once.
//!
//! [`RawConfig`] is what a file may say (unknown keys are refused so a typo never silently
//! falls back to a default); [`Config`] is the validated form the node runs with. A bad value
//! becomes a [`ConfigError`] naming the field, which `main` prints on one line before exiting
//! with status 2.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Which SQL dialect the database speaks. CockroachDB-only features hide behind this switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Postgres,
    Cockroach,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration of one node.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_id: String,
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub database_url: String,
    pub database_pool_size: usize,
    pub dialect: Dialect,
    /// Nakama's server key: clients send it as `Basic base64(key:)` to authenticate.
    pub server_key: String,
    /// Key for server-to-server RPC calls (`?http_key=`).
    pub http_key: String,
    pub session_encryption_key: String,
    pub session_token_expiry: Duration,
    pub refresh_encryption_key: String,
    pub refresh_token_expiry: Duration,
    pub admin_token: String,
    pub cluster_secret: String,
    pub flush_interval: Duration,
    pub flush_batch_size: usize,
    /// At this many unwritten dirty rows writers wait and the node reports not ready …
    pub flush_backlog_high: usize,
    /// … until the backlog is down to this many.
    pub flush_backlog_low: usize,
    /// The longest a writer waits for room in the backlog (its rows are queued regardless).
    pub flush_backpressure_wait: Duration,
    pub idle_timeout: Duration,
    pub log_format: LogFormat,
    /// Largest inbound WebSocket frame from a client, in bytes.
    pub max_message_size: usize,
    /// Overrides every route's encounter chance (0.0–1.0): tests and live events force one or none.
    pub encounter_rate: Option<f64>,
    /// Factor on travel durations (0.5 halves them); tests use tiny values.
    pub travel_time_scale: f64,
    /// A battle turn not submitted within this is resolved as "defend".
    pub battle_turn_timeout: Duration,
    /// Leaderboard ids whose rank cache is off (`*` for all).
    pub rank_cache_blacklist: Vec<String>,
    /// Leaderboard writes arriving within this window are committed together.
    pub leaderboard_batch_window: Duration,
    pub leaderboard_batch_size: usize,
    /// A board refuses new writes ("try again") while this many wait for their batch.
    pub leaderboard_write_queue_limit: usize,
    /// Replicate every board's rank cache to every node (reads answered locally).
    pub leaderboard_sync_enabled: bool,
    /// A replication batch goes once this many entries wait …
    pub leaderboard_sync_batch_size: usize,
    /// … or once the oldest waited this long (also the idle stream's heartbeat).
    pub leaderboard_sync_batch_timeout: Duration,
    /// LZ4-compress replication batches and snapshots.
    pub leaderboard_sync_compression: bool,
    /// Board ids or globs (`tournament_*`, `*`) that are not replicated.
    pub leaderboard_sync_blacklist: Vec<String>,
    /// Recent replication entries kept for replicas that missed some.
    pub leaderboard_sync_buffer: usize,
    /// A starting node turns ready once it holds every replicated board, or after this.
    pub leaderboard_sync_ready_timeout: Duration,
    /// Address other nodes reach this node's peer listener at (defaults to `peer_addr`).
    pub advertise_peer_addr: String,
    /// Address clients reach this node at (defaults to `client_addr`).
    pub advertise_client_addr: String,
    /// How often this node writes its heartbeat and probes its peers.
    pub heartbeat_interval: Duration,
    /// A member silent for longer leaves the view.
    pub membership_timeout: Duration,
    /// Virtual nodes per member on the placement ring.
    pub ring_vnodes: usize,
    /// The deadline of a client request, across every hop: past it the request is not
    /// started anywhere, and its caller is told it may have run if it had been.
    pub request_timeout: Duration,
    /// Idempotency receipts (answers stored under a `request_id`) are kept this long.
    pub receipt_retention: Duration,
    /// Connecting to the database gives up after this.
    pub db_connect_timeout: Duration,
    /// Waiting for a free pooled connection gives up after this ("not run, try again").
    pub db_pool_wait: Duration,
    /// The database cancels a statement running longer (`statement_timeout`).
    pub db_statement_timeout: Duration,
}

/// A configuration value that cannot be used: the field's name and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {field}: {problem}")]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl ConfigError {
    fn new(field: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}

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
    pub dialect: Option<String>,
    pub server_key: Option<String>,
    pub http_key: Option<String>,
    pub session_encryption_key: Option<String>,
    pub session_token_expiry_secs: Option<i64>,
    pub refresh_encryption_key: Option<String>,
    pub refresh_token_expiry_secs: Option<i64>,
    pub admin_token: Option<String>,
    pub cluster_secret: Option<String>,
    pub flush_interval_ms: Option<i64>,
    pub flush_batch_size: Option<i64>,
    pub flush_backlog_high: Option<i64>,
    pub flush_backlog_low: Option<i64>,
    pub flush_backpressure_wait_ms: Option<i64>,
    pub idle_timeout_secs: Option<i64>,
    pub log_format: Option<String>,
    pub max_message_size: Option<i64>,
    pub encounter_rate: Option<f64>,
    pub travel_time_scale: Option<f64>,
    pub battle_turn_timeout_ms: Option<i64>,
    pub rank_cache_blacklist: Option<Vec<String>>,
    pub leaderboard_batch_window_ms: Option<i64>,
    pub leaderboard_batch_size: Option<i64>,
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
    pub db_pool_wait_ms: Option<i64>,
    pub db_statement_timeout_ms: Option<i64>,
}

/// Environment variables that override file values: (variable, field).
const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("SERAI_NODE_ID", "node_id"),
    ("SERAI_CLIENT_ADDR", "client_addr"),
    ("SERAI_ADMIN_ADDR", "admin_addr"),
    ("SERAI_PEER_ADDR", "peer_addr"),
    ("SERAI_DATABASE_URL", "database_url"),
    ("SERAI_DATABASE_POOL_SIZE", "database_pool_size"),
    ("SERAI_DIALECT", "dialect"),
    ("SERAI_SERVER_KEY", "server_key"),
    ("SERAI_HTTP_KEY", "http_key"),
    ("SERAI_SESSION_ENCRYPTION_KEY", "session_encryption_key"),
    ("SERAI_REFRESH_ENCRYPTION_KEY", "refresh_encryption_key"),
    ("SERAI_ADMIN_TOKEN", "admin_token"),
    ("SERAI_CLUSTER_SECRET", "cluster_secret"),
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
    ("SERAI_DB_POOL_WAIT_MS", "db_pool_wait_ms"),
    ("SERAI_DB_STATEMENT_TIMEOUT_MS", "db_statement_timeout_ms"),
    (
        "SERAI_LEADERBOARD_BATCH_WINDOW_MS",
        "leaderboard_batch_window_ms",
    ),
    ("SERAI_LEADERBOARD_BATCH_SIZE", "leaderboard_batch_size"),
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
            "dialect" => self.dialect = Some(value),
            "server_key" => self.server_key = Some(value),
            "http_key" => self.http_key = Some(value),
            "session_encryption_key" => self.session_encryption_key = Some(value),
            "refresh_encryption_key" => self.refresh_encryption_key = Some(value),
            "admin_token" => self.admin_token = Some(value),
            "cluster_secret" => self.cluster_secret = Some(value),
            "flush_interval_ms" => self.flush_interval_ms = Some(int(&value)?),
            "flush_batch_size" => self.flush_batch_size = Some(int(&value)?),
            "flush_backlog_high" => self.flush_backlog_high = Some(int(&value)?),
            "flush_backlog_low" => self.flush_backlog_low = Some(int(&value)?),
            "flush_backpressure_wait_ms" => self.flush_backpressure_wait_ms = Some(int(&value)?),
            "idle_timeout_secs" => self.idle_timeout_secs = Some(int(&value)?),
            "log_format" => self.log_format = Some(value),
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
            "db_pool_wait_ms" => self.db_pool_wait_ms = Some(int(&value)?),
            "db_statement_timeout_ms" => self.db_statement_timeout_ms = Some(int(&value)?),
            "session_token_expiry_secs" => self.session_token_expiry_secs = Some(int(&value)?),
            "refresh_token_expiry_secs" => self.refresh_token_expiry_secs = Some(int(&value)?),
            other => return Err(ConfigError::new(other, "not a known field")),
        }
        Ok(())
    }

    /// Checks every field and fills in defaults.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let secs = |field: &str, v: Option<i64>, default: u64, min: u64, max: u64| {
            bounded(field, v, default, min, max).map(Duration::from_secs)
        };
        let config = Config {
            node_id: node_id(self.node_id)?,
            client_addr: addr("client_addr", self.client_addr, "127.0.0.1:7350")?,
            admin_addr: addr("admin_addr", self.admin_addr, "127.0.0.1:7351")?,
            peer_addr: addr("peer_addr", self.peer_addr, "127.0.0.1:7352")?,
            database_url: database_url(self.database_url)?,
            database_pool_size: bounded("database_pool_size", self.database_pool_size, 16, 1, 1024)?
                as usize,
            dialect: parse_enum("dialect", self.dialect, Dialect::Postgres)?,
            server_key: secret("server_key", self.server_key, "defaultkey", 1)?,
            http_key: secret("http_key", self.http_key, "defaulthttpkey", 1)?,
            session_encryption_key: secret(
                "session_encryption_key",
                self.session_encryption_key,
                "defaultencryptionkey",
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
                "defaultrefreshencryptionkey",
                8,
            )?,
            refresh_token_expiry: secs(
                "refresh_token_expiry_secs",
                self.refresh_token_expiry_secs,
                86_400,
                3_700,
                31_536_000,
            )?,
            admin_token: secret("admin_token", self.admin_token, "defaultadmintoken", 8)?,
            cluster_secret: secret(
                "cluster_secret",
                self.cluster_secret,
                "defaultclustersecret",
                8,
            )?,
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
            leaderboard_write_queue_limit: bounded(
                "leaderboard_write_queue_limit",
                self.leaderboard_write_queue_limit,
                10_000,
                1,
                1_000_000,
            )? as usize,
            leaderboard_sync_enabled: self.leaderboard_sync_enabled.unwrap_or(true),
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
            db_pool_wait: ms("db_pool_wait_ms", self.db_pool_wait_ms, 1_000)?,
            db_statement_timeout: ms(
                "db_statement_timeout_ms",
                self.db_statement_timeout_ms,
                5_000,
            )?,
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

fn database_url(v: Option<String>) -> Result<String, ConfigError> {
    let url = v.unwrap_or_else(|| "postgresql://postgres@127.0.0.1:5432/serai".to_string());
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| ConfigError::new("database_url", format!("not a PostgreSQL URL: {e}")))?;
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

fn bounded(
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

impl Config {
    /// The secrets still at their public defaults: fine for `serai dev` and tests, a hole in
    /// production (anyone could authenticate, join the cluster or drive the admin API).
    pub fn default_secrets(&self) -> Vec<&'static str> {
        let defaults = RawConfig::default().validate().expect("defaults are valid");
        let mut found = Vec::new();
        let pairs: [(&'static str, &str, &str); 6] = [
            ("server_key", &self.server_key, &defaults.server_key),
            ("http_key", &self.http_key, &defaults.http_key),
            ("admin_token", &self.admin_token, &defaults.admin_token),
            (
                "cluster_secret",
                &self.cluster_secret,
                &defaults.cluster_secret,
            ),
            (
                "session_encryption_key",
                &self.session_encryption_key,
                &defaults.session_encryption_key,
            ),
            (
                "refresh_encryption_key",
                &self.refresh_encryption_key,
                &defaults.refresh_encryption_key,
            ),
        ];
        for (name, value, default) in pairs {
            if value == default {
                found.push(name);
            }
        }
        found
    }

    /// Loads a file (if any), applies the process environment and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut raw = RawConfig::from_file(path)?;
        raw.apply_env(|k| std::env::var(k).ok())?;
        raw.validate()
    }

    /// A config for tests: ephemeral ports on loopback, fast flushes, the given database.
    pub fn for_test(database_url: &str) -> Config {
        let mut config = RawConfig::default().validate().expect("defaults are valid");
        let any = "127.0.0.1:0".parse().expect("loopback");
        config.node_id = "test-0".to_string();
        config.client_addr = any;
        config.admin_addr = any;
        config.peer_addr = any;
        // Port 0: the node advertises the addresses it actually bound.
        config.advertise_peer_addr = any.to_string();
        config.advertise_client_addr = any.to_string();
        config.heartbeat_interval = Duration::from_millis(100);
        // Generous for loaded CI machines: a late heartbeat must not flap the views.
        config.membership_timeout = Duration::from_millis(3000);
        config.database_url = database_url.to_string();
        config.database_pool_size = 8;
        config.flush_interval = Duration::from_millis(20);
        config.flush_batch_size = 200;
        config.idle_timeout = Duration::from_secs(60);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_are_valid() {
        let c = RawConfig::default().validate().unwrap();
        assert_eq!(c.client_addr.port(), 7350);
        assert_eq!(c.admin_addr.port(), 7351);
        assert_eq!(c.peer_addr.port(), 7352);
        assert_eq!(c.server_key, "defaultkey");
        assert_eq!(
            (c.flush_backlog_high, c.flush_backlog_low),
            (50_000, 25_000)
        );
    }

    #[test]
    fn env_overrides_file() {
        let mut raw: RawConfig = toml::from_str("node_id = \"a\"\nflush_batch_size = 10").unwrap();
        raw.apply_env(env(&[
            ("SERAI_NODE_ID", "b"),
            ("SERAI_CLIENT_ADDR", "0.0.0.0:9000"),
        ]))
        .unwrap();
        let c = raw.validate().unwrap();
        assert_eq!(c.node_id, "b");
        assert_eq!(c.client_addr.port(), 9000);
        assert_eq!(c.flush_batch_size, 10);
    }

    #[test]
    fn leaderboard_sync_settings_from_file_and_env() {
        let raw: RawConfig = toml::from_str(
            "leaderboard_sync_enabled = false\nleaderboard_sync_blacklist = [\"tournament_*\"]\n\
             leaderboard_sync_batch_timeout_ms = 50",
        )
        .unwrap();
        let c = raw.validate().unwrap();
        assert!(!c.leaderboard_sync_enabled);
        assert_eq!(c.leaderboard_sync_blacklist, vec!["tournament_*"]);
        assert_eq!(c.leaderboard_sync_batch_timeout, Duration::from_millis(50));
        let d = RawConfig::default().validate().unwrap();
        assert!(d.leaderboard_sync_enabled && !d.leaderboard_sync_compression);
        assert_eq!(d.leaderboard_sync_batch_size, 100);
        assert_eq!(d.leaderboard_sync_batch_timeout, Duration::from_secs(1));
        let mut raw = RawConfig::default();
        raw.apply_env(env(&[
            ("SERAI_LEADERBOARD_SYNC_COMPRESSION", "true"),
            ("SERAI_LEADERBOARD_SYNC_BLACKLIST", "a, tournament_*"),
            ("SERAI_LEADERBOARD_SYNC_BATCH_SIZE", "7"),
            ("SERAI_LEADERBOARD_SYNC_BUFFER", "1000"),
        ]))
        .unwrap();
        let c = raw.validate().unwrap();
        assert!(c.leaderboard_sync_compression);
        assert_eq!(c.leaderboard_sync_blacklist, vec!["a", "tournament_*"]);
        assert_eq!(
            (c.leaderboard_sync_batch_size, c.leaderboard_sync_buffer),
            (7, 1000)
        );
        let mut raw = RawConfig::default();
        let err = raw
            .apply_env(env(&[("SERAI_LEADERBOARD_SYNC_ENABLED", "maybe")]))
            .unwrap_err();
        assert_eq!(err.field, "leaderboard_sync_enabled");
    }

    #[test]
    fn unknown_field_is_named() {
        let dir = std::env::temp_dir().join(format!("serai-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, "flush_intervall_ms = 5\n").unwrap();
        let err = RawConfig::from_file(Some(&dir)).unwrap_err();
        std::fs::remove_file(&dir).ok();
        assert_eq!(err.field, "flush_intervall_ms");
    }

    #[test]
    fn wrong_type_in_file_is_named() {
        let path = std::env::temp_dir().join(format!("serai-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "node_id = \"a\"\nflush_batch_size = \"many\"\n").unwrap();
        let err = RawConfig::from_file(Some(&path)).unwrap_err();
        std::fs::remove_file(&path).ok();
        assert_eq!(err.field, "flush_batch_size");
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("SERAI_CLIENT_ADDR", "nowhere", "client_addr"),
            ("SERAI_NODE_ID", "has space", "node_id"),
            (
                "SERAI_DATABASE_URL",
                "postgresql://host:notaport/db",
                "database_url",
            ),
            ("SERAI_FLUSH_BATCH_SIZE", "0", "flush_batch_size"),
            ("SERAI_FLUSH_INTERVAL_MS", "soon", "flush_interval_ms"),
            ("SERAI_FLUSH_BACKLOG_HIGH", "0", "flush_backlog_high"),
            ("SERAI_FLUSH_BACKLOG_LOW", "60000", "flush_backlog_low"),
            ("SERAI_LOG_FORMAT", "xml", "log_format"),
            ("SERAI_ADMIN_TOKEN", "short", "admin_token"),
        ];
        for (var, value, field) in cases {
            let mut raw = RawConfig::default();
            let err = raw
                .apply_env(env(&[(var, value)]))
                .and_then(|_| raw.validate().map(|_| ()))
                .unwrap_err();
            assert_eq!(&err.field, field, "{var}={value}");
            assert!(err
                .to_string()
                .starts_with(&format!("invalid config: {field}: ")));
        }
    }
}
