//! The `serai` command: run a node, apply migrations, or start a development node with a
//! local database.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serai::config::{Config, ConfigError, LogFormat, SecretsCheck, SECRETS};
use serai::shutdown::Shutdown;

#[derive(Parser)]
#[command(
    name = "serai",
    version,
    about = "A clustered game node that speaks the Nakama client protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: apply pending migrations, load the catalog, serve clients and admin HTTP
    /// until SIGINT/SIGTERM, then flush, release claims and exit 0. Refuses to start (exit 2)
    /// while a secret (server key, HTTP key, admin token, cluster secret, session or refresh
    /// encryption key) is at its built-in default, unless SERAI_ALLOW_DEFAULT_SECRETS=true.
    Node {
        /// TOML config file; SERAI_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Apply the schema migrations and the default catalog to the configured database, then exit.
    Migrate {
        /// TOML config file; SERAI_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// First run: find or start a local PostgreSQL, migrate it, and run one node on it.
    /// Prints the client URL and every key it uses (server key, HTTP key, admin token,
    /// cluster secret, token keys) with a nakama-js snippet that connects. Default keys are
    /// fine here.
    Dev {
        /// TOML config file; SERAI_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Only find or start the local database, print its URL and exit (cluster/up.sh).
        #[arg(long)]
        database_only: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = match &cli.command {
        Command::Node { config } | Command::Migrate { config } | Command::Dev { config, .. } => {
            config.clone()
        }
    };
    let mut config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    let allowed_defaults = match (&cli.command, config.secrets_check()) {
        (Command::Node { .. }, SecretsCheck::Refused(refusal)) => {
            eprintln!("serai node: {refusal}");
            return ExitCode::from(2);
        }
        (Command::Node { .. }, SecretsCheck::DefaultsAllowed(secrets)) => secrets,
        _ => Vec::new(),
    };
    init_tracing(config.log_format);
    if !allowed_defaults.is_empty() {
        let names: Vec<&str> = allowed_defaults.iter().map(|s| s.key).collect();
        tracing::warn!(
            settings = ?names,
            "allow_default_secrets: running with secrets at their public defaults; \
             never expose this node"
        );
    }
    let system = actix_rt::System::new();
    let result = system.block_on(async move {
        match cli.command {
            Command::Node { .. } => run_node(config).await,
            Command::Migrate { .. } => migrate(&config).await,
            Command::Dev { database_only, .. } => {
                if std::env::var_os("SERAI_DATABASE_URL").is_none() {
                    config.database_url = serai::localdb::dev_database()
                        .await
                        .map_err(|e| e.to_string())?;
                }
                if database_only {
                    println!("{}", config.database_url);
                    return Ok(());
                }
                print!("{}", dev_banner(&config));
                run_node(config).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serai: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(2)
}

/// What `serai dev` prints before it starts the node: where it listens, every key it uses,
/// a nakama-js snippet that connects with them, and how to stop.
fn dev_banner(config: &Config) -> String {
    let host_port = |addr: std::net::SocketAddr| {
        let ip = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
            ip if ip.is_unspecified() => "[::1]".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        (ip, addr.port())
    };
    let (host, port) = host_port(config.client_addr);
    let (admin_host, admin_port) = host_port(config.admin_addr);
    let js = |s: &str| serde_json::to_string(s).expect("a string");
    let program = format!(
        "\n      import {{ Client }} from \"@heroiclabs/nakama-js\";\n      \
         const client = new Client({key}, {host}, \"{port}\", false);\n      \
         const session = await client.authenticateDevice(\"dev-device-0001\", true);\n      \
         console.log(await client.getAccount(session));",
        key = js(&config.server_key),
        host = js(&host),
    );
    // Single-quoted for the shell: a `'` in a key closes, escapes and reopens the quote.
    let program = program.replace('\'', r"'\''");
    let mut out = String::from(
        "serai dev node: development only; the keys come from SERAI_* variables, the \
         --config file or the built-in defaults\n",
    );
    let mut line = |label: &str, value: &str, extra: &str| {
        out.push_str(&format!("  {label:<16}{value}{extra}\n"));
    };
    line("client URL:", &format!("http://{host}:{port}"), "");
    line(
        "admin URL:",
        &format!("http://{admin_host}:{admin_port}"),
        "",
    );
    for secret in SECRETS {
        let (label, use_) = match secret.key {
            "server_key" => ("server key:", "clients authenticate with it"),
            "http_key" => (
                "HTTP key:",
                "server-to-server RPCs: /v2/rpc/{id}?http_key=...",
            ),
            "admin_token" => ("admin token:", "admin API: Authorization: Bearer ..."),
            "cluster_secret" => ("cluster secret:", "peer links"),
            "session_encryption_key" => ("session key:", "signs session tokens"),
            _ => ("refresh key:", "signs refresh tokens"),
        };
        let value = secret.value(config);
        let default = if value == secret.default {
            ", built-in default"
        } else {
            ""
        };
        line(
            label,
            value,
            &format!("  ({use_}; {}{default})", secret.env),
        );
    }
    line("database:", &config.database_url, "");
    out.push_str(&format!(
        "  nakama-js (Node 18+; the packages once: cd clients/js && npm ci --ignore-scripts):\n    \
         cd clients/js && node --input-type=module -e '{program}'\n  \
         stop: Ctrl-C stops the node (it drains and exits); scripts/pg-stop.sh stops the \
         local database (--purge also deletes it)\n\n"
    ));
    out
}

async fn run_node(config: Config) -> Result<(), String> {
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let node = serai::node::start(config, shutdown)
        .await
        .map_err(|e| e.to_string())?;
    node.wait().await.map_err(|e| e.to_string())
}

async fn migrate(config: &Config) -> Result<(), String> {
    let metrics = serai::metrics::Metrics::new(&config.node_id);
    let settings = serai::persistence::DbSettings {
        pool_size: 2,
        ..serai::node::db_settings(config)
    };
    let db = serai::persistence::Db::connect_with(
        &config.database_url,
        &settings,
        config.dialect,
        metrics,
    )
    .map_err(|e| e.to_string())?;
    serai::persistence::wait_until_reachable(&db, config.database_connect_timeout)
        .await
        .map_err(|e| format!("database: {e}"))?;
    let report = serai::persistence::migrate::run(&db)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "migrations applied: {:?}; already applied: {:?}; catalog version {}{}",
        report.applied,
        report.already_applied,
        report.catalog_version,
        if report.catalog_seeded {
            " (default catalog seeded)"
        } else {
            ""
        }
    );
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SERAI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serai::config::RawConfig;

    fn config(pairs: &[(&str, &str)]) -> Config {
        RawConfig::from_env_pairs(pairs).unwrap()
    }

    #[test]
    fn dev_banner_prints_every_key_and_a_snippet_that_uses_them() {
        let banner = dev_banner(&config(&[]));
        for secret in SECRETS {
            assert!(
                banner.contains(&format!("{}  (", secret.default)),
                "{}: {banner}",
                secret.key
            );
            assert!(banner.contains(secret.env), "{banner}");
        }
        assert!(
            banner.contains("HTTP key:       defaulthttpkey"),
            "{banner}"
        );
        assert!(banner.contains("built-in default"), "{banner}");
        assert!(
            banner.contains(r#"new Client("defaultkey", "127.0.0.1", "7350", false)"#),
            "{banner}"
        );
        assert!(banner.contains("http://127.0.0.1:7351"), "{banner}");
    }

    #[test]
    fn dev_banner_follows_the_config_and_quotes_for_the_shell() {
        let banner = dev_banner(&config(&[
            ("SERAI_CLIENT_ADDR", "0.0.0.0:9350"),
            ("SERAI_SERVER_KEY", "it's"),
            ("SERAI_HTTP_KEY", "hk-1"),
        ]));
        assert!(banner.contains("HTTP key:       hk-1  ("), "{banner}");
        assert!(!banner.contains(
            "hk-1  (server-to-server RPCs: /v2/rpc/{id}?http_key=...; SERAI_HTTP_KEY, built-in"
        ));
        assert!(banner.contains("http://127.0.0.1:9350"), "{banner}");
        assert!(
            banner.contains(r#"new Client("it'\''s", "127.0.0.1", "9350", false)"#),
            "{banner}"
        );
    }
}
