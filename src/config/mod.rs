//! Node configuration: a TOML file, then `SERAI_*` environment overrides, validated once.
//!
//! [`RawConfig`] is what a file may say (unknown keys are refused so a typo never silently
//! falls back to a default); [`Config`] is the validated form the node runs with. A bad value
//! becomes a [`ConfigError`] naming the field, which `main` prints on one line before exiting
//! with status 2.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod database_tls;
mod rate_limits;
mod raw;
mod secrets;
mod validate;

pub use database_tls::{database_tls, DatabaseTls, SslMode};
pub use rate_limits::{RateGroup, RateLimits, RawRateGroup, RawRateLimits, DEFAULT_GROUP};
pub use raw::RawConfig;
pub use secrets::{DefaultSecrets, Secret, SecretsCheck, SECRETS};

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

/// Leaderboard batches of one board in the database at once, by default: enough to overlap
/// commits (PostgreSQL flushes concurrent commits together) without many multixact fences.
pub const MAX_IN_FLIGHT_DEFAULT: usize = 4;

/// The validated configuration of one node.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_id: String,
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    /// May carry libpq's `sslmode` (disable, prefer, require, verify-ca, verify-full) and
    /// `sslrootcert` (see [`database_tls`]).
    pub database_url: String,
    /// The CA certificates (PEM) the database's certificate must chain to, when the URL's
    /// `sslrootcert` does not name them.
    pub database_ca_file: Option<PathBuf>,
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
    /// `serai node` starts even with secrets at their built-in defaults (tests, local
    /// clusters); without it, it refuses ([`Config::secrets_check`]).
    pub allow_default_secrets: bool,
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
    /// Batches of one board in the database at once (pipelined commits).
    pub leaderboard_max_in_flight: usize,
    /// A board refuses new writes ("try again") while this many wait for their batch.
    pub leaderboard_write_queue_limit: usize,
    /// Replicate every board's rank cache to every node (reads answered locally).
    pub leaderboard_sync_enabled: bool,
    /// One info line (target `serai::access`) per client HTTP request: method, path, status,
    /// duration, request id.
    pub access_log: bool,
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
    /// At start, a node retries reaching the database (each attempt bounded by
    /// `db_connect_timeout`) with backoff for this long before it exits.
    pub database_connect_timeout: Duration,
    /// Waiting for a free pooled connection gives up after this ("not run, try again").
    pub db_pool_wait: Duration,
    /// The database cancels a statement running longer (`statement_timeout`).
    pub db_statement_timeout: Duration,
    /// How often a node reads the catalog version, to catch up on a reload whose broadcast
    /// it missed.
    pub catalog_poll_interval: Duration,
    /// Cluster-wide limits per user and RPC group; `None` (the default): no limits.
    pub rate_limits: Option<RateLimits>,
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

impl Config {
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
        config.catalog_poll_interval = Duration::from_millis(500);
        config.database_connect_timeout = Duration::from_secs(5);
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
    fn database_tls_settings_from_file_and_env() {
        let raw: RawConfig = toml::from_str(
            "database_url = \"postgresql://root@db:26257/serai?sslmode=verify-full\"\n\
             database_ca_file = \"/certs/ca.crt\"",
        )
        .unwrap();
        let c = raw.validate().unwrap();
        assert_eq!(c.database_ca_file, Some(PathBuf::from("/certs/ca.crt")));
        let mut raw = RawConfig::default();
        raw.apply_env(env(&[
            ("SERAI_DATABASE_URL", "postgresql://db/x?sslmode=verify-ca"),
            ("SERAI_DATABASE_CA_FILE", "/run/ca.pem"),
        ]))
        .unwrap();
        let c = raw.validate().unwrap();
        assert_eq!(c.database_ca_file, Some(PathBuf::from("/run/ca.pem")));
        assert_eq!(
            RawConfig::default().validate().unwrap().database_ca_file,
            None
        );
        // A verify mode without any CA is refused before anything connects.
        let mut raw = RawConfig::default();
        raw.apply_env(env(&[(
            "SERAI_DATABASE_URL",
            "postgresql://db/x?sslmode=verify-full",
        )]))
        .unwrap();
        let err = raw.validate().unwrap_err();
        assert_eq!(err.field, "database_url");
        assert!(err.problem.contains("needs the CA certificate"), "{err}");
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
