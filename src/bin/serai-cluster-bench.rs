//! `serai-cluster-bench`: what the cluster costs (issue 6, "Benchmark").
//!
//! 1. **Hop.** Two nodes in this process on one fresh database (`serai::localdb`). Characters
//!    are created over node A's client API and split by their owner under A's view: owned by A
//!    (local) or by B (remote). Closed-loop WebSocket clients on A's socket send the same
//!    in-memory RPC (`get_character`) for local and for remote characters, at concurrency 1
//!    (pure latency) and `--clients`; then the same message is sent straight to
//!    `Router::ask` (no HTTP, no JSON), which isolates the peer-link hop. The added hop is the
//!    difference of the remote and local percentiles (target: p50 ≤ 200 µs on loopback).
//! 2. **Failover.** The real binary (`serai`, next to this one) as three processes with the
//!    default membership timeouts; a client on node 0 calls `get_character` in a loop on a
//!    character owned by node 2; node 2 is SIGKILLed; the time from the kill to the first
//!    successful RPC sent after it is measured (target ≤ 5 s). Node 2 is restarted between runs.
//!
//! The small HTTP/WebSocket client is `serai-load`'s, shared in `src/bin/common/`.
//!
//! ```text
//! cargo build --release --bin serai --bin serai-cluster-bench
//! cargo run --release --bin serai-cluster-bench -- --clients 16 --seconds 5 --failovers 3
//! ```

#[path = "cluster-bench/args.rs"]
mod args;
#[path = "cluster-bench/client.rs"]
mod client;
#[path = "common/mod.rs"]
mod common;
#[path = "cluster-bench/failover.rs"]
mod failover;
#[path = "cluster-bench/hop.rs"]
mod hop;
#[path = "cluster-bench/in_process.rs"]
mod in_process;
#[path = "cluster-bench/processes.rs"]
mod processes;
#[path = "cluster-bench/report.rs"]
mod report;

use clap::Parser;

use args::{Args, Part};
use failover::failover;
use hop::hop;
use report::{print_failover, print_hop};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.seconds == 0 || args.clients == 0 {
        eprintln!("serai-cluster-bench: --seconds and --clients must be at least 1");
        return std::process::ExitCode::from(2);
    }
    let mut ok = true;
    if matches!(args.part, Part::Hop | Part::Both) {
        match hop(&args) {
            Ok(runs) => print_hop(&runs),
            Err(e) => {
                eprintln!("serai-cluster-bench: hop: {e}");
                ok = false;
            }
        }
    }
    if matches!(args.part, Part::Failover | Part::Both) && args.failovers > 0 {
        match failover(&args) {
            Ok(runs) => print_failover(&runs),
            Err(e) => {
                eprintln!("serai-cluster-bench: failover: {e}");
                ok = false;
            }
        }
    }
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
