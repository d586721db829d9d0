//! `serai-load`: a closed-loop load generator for the realtime socket.
//!
//! N clients each authenticate by device id over HTTP, open `/ws?token=…`, create a character
//! over the socket, then keep exactly one RPC outstanding for T seconds: a weighted mix of
//! `get_trade_quotes` and `execute_trade` (buy 1 / sell 1 of the cheapest good at the
//! character's node, alternating, so gold and quota never run out). The same clients first run
//! against the built-in `echo` RPC with the very same payloads: that is the ceiling of the
//! stack (socket, envelope decoding, registry, actor, outbox), and the game figure is reported
//! as a ratio of it.
//!
//! `--mode receipts` measures what an idempotency receipt costs (issue 9): trades only, each
//! client alternating between plain `execute_trade` and `execute_trade` with a fresh
//! `request_id` (a UUID, as docs/rpc.md recommends) in the order without, with, with, without,
//! so that a linear drift weighs the same on both; it prints both throughputs and their ratio.
//!
//! Without `--url` a node is started in this process on a fresh throwaway database
//! (`serai::localdb`), with default configuration but free ports, and stopped at the end.
//!
//! ```text
//! cargo run --release --bin serai-load -- --clients 32 --seconds 10 --mix quotes=80,trade=20
//! cargo run --release --bin serai-load -- --clients 16 --seconds 10 --mode receipts
//! ```

#[path = "load/args.rs"]
mod args;
#[path = "load/client.rs"]
mod client;
#[path = "common/mod.rs"]
mod common;
#[path = "load/local_node.rs"]
mod local_node;
#[path = "load/report.rs"]
mod report;
#[path = "load/run.rs"]
mod run;
#[path = "load/setup.rs"]
mod setup;

use clap::Parser;

use args::{Args, Target};
use common::BoxError;
use local_node::start_local_node;
use report::{print_results, Report};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.clients == 0 || args.seconds == 0 {
        eprintln!("serai-load: --clients and --seconds must be at least 1");
        return std::process::ExitCode::from(2);
    }

    let (target, local) = match &args.url {
        Some(url) => match Target::parse(url) {
            Ok(t) => (t, None),
            Err(e) => {
                eprintln!("serai-load: --url: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        None => {
            eprintln!("starting a node in this process on a fresh local database");
            match start_local_node(&args.server_key) {
                Ok(node) => (
                    Target {
                        authority: node.addr.to_string(),
                    },
                    Some(node),
                ),
                Err(e) => {
                    eprintln!("serai-load: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
    };

    let threads = args
        .client_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("serai-load")
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result: Result<Vec<Report>, BoxError> = runtime.block_on(run::run_all(&target, &args));
    drop(runtime);

    let code = match result {
        Ok(reports) => {
            print_results(&args, reports);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("serai-load: {e}");
            std::process::ExitCode::FAILURE
        }
    };
    if let Some(node) = local {
        eprintln!("stopping the in-process node");
        node.shutdown.trigger();
        let _ = node.thread.join();
    }
    code
}
