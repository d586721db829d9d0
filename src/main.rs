//! The `serai` command: run a node, apply migrations, or start a development node with a
//! local database.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serai::config::{Config, ConfigError, LogFormat};
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
    /// until SIGINT/SIGTERM, then flush, release claims and exit 0.
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
    /// Prints the client URL, server key and admin token it uses.
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
    init_tracing(config.log_format);
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
                println!("serai dev node");
                println!("  client URL:   http://{}", config.client_addr);
                println!("  server key:   {}", config.server_key);
                println!("  admin URL:    http://{}", config.admin_addr);
                println!("  admin token:  {}", config.admin_token);
                println!("  database:     {}", config.database_url);
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

async fn run_node(config: Config) -> Result<(), String> {
    let defaults = config.default_secrets();
    if !defaults.is_empty() {
        tracing::warn!(
            settings = ?defaults,
            "these secrets are still the public defaults: set them (SERAI_SERVER_KEY, SERAI_ADMIN_TOKEN, \
             SERAI_CLUSTER_SECRET, …) before exposing this node"
        );
    }
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
