//! `serai-world-load`: the world benchmarks (issue 13, "Benchmark"), on `--nodes` nodes (3)
//! started in this process on one fresh database (`serai::localdb`).
//!
//! 1. **Push fan-out** (`--part fanout`): `--sockets` (5 000) authenticated sockets spread over
//!    the nodes, all subscribed; per round one update is published on node 0 through
//!    `WorldFanout` and the time from `publish` to the last socket's receipt is measured
//!    (`--rounds`, p50/p99/max). Baselines in the same run on the same sockets: the per-user
//!    `Notifier::push` and a bare `echo` round trip; the ratios are printed.
//! 2. **Attacks per second** (`--part attacks`): closed-loop sockets on every node against a
//!    pluggable target RPC (see `world-load/attacks.rs`), after an `echo` baseline.
//!
//! ```text
//! cargo run --release --bin serai-world-load -- --sockets 5000 --rounds 50
//! cargo run --release --bin serai-world-load -- --part attacks --clients 48 --seconds 10 \
//!     --attack-rpc attack_world_boss --attack-payload '…'
//! ```

#[path = "world-load/attacks.rs"]
mod attacks;
#[allow(dead_code)] // shared with serai-cluster-bench, which uses all of it
#[path = "cluster-bench/client.rs"]
mod client;
#[path = "common/mod.rs"]
mod common;
#[path = "world-load/fanout.rs"]
mod fanout;
#[path = "world-load/nodes.rs"]
mod nodes;

use clap::{Parser, ValueEnum};

use common::BoxError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Fanout,
    Attacks,
    Both,
}

#[derive(Parser, Debug)]
#[command(about = "World benchmarks: push fan-out and attacks per second on one boss")]
struct Args {
    #[arg(long, value_enum, default_value = "both")]
    part: Part,
    /// Nodes started in this process.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Subscribed sockets of the fan-out part.
    #[arg(long, default_value_t = 5000)]
    sockets: usize,
    /// Published updates of the fan-out part.
    #[arg(long, default_value_t = 50)]
    rounds: usize,
    /// Closed-loop sockets of the attack part.
    #[arg(long, default_value_t = 48)]
    clients: usize,
    /// Seconds per attack run (the echo baseline, then the target).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The attack part's RPC (`echo` until the boss is wired: then `attack_world_boss`).
    #[arg(long, default_value = "echo")]
    attack_rpc: String,
    /// Its payload: `{character_id}`, `{request_id}`, `{event_id}` are filled in.
    #[arg(long, default_value = r#"{"event_id":"{event_id}"}"#)]
    attack_payload: String,
    #[arg(long, default_value = "world-load-boss")]
    event_id: String,
    /// A body POSTed to node 0's `/admin/world/events` before the attack part.
    #[arg(long)]
    event_create: Option<String>,
    /// Worker threads of this process's client runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
}

const ADMIN_TOKEN: &str = "world-load-admin-token-0123456789";

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.nodes == 0 || args.sockets == 0 || args.rounds == 0 || args.clients == 0 {
        eprintln!(
            "serai-world-load: --nodes, --sockets, --rounds and --clients must be at least 1"
        );
        return std::process::ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serai-world-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    let db = rt.block_on(serai::localdb::TestDatabase::create())?;
    eprintln!(
        "{} nodes in this process on database {}",
        args.nodes, db.name
    );
    let nodes = (0..args.nodes)
        .map(|i| {
            nodes::start_node(&db.url, &format!("world-{i}"), |c| {
                c.admin_token = ADMIN_TOKEN.to_string();
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let result = rt.block_on(async {
        nodes::wait_converged(&nodes).await?;
        if matches!(args.part, Part::Fanout | Part::Both) {
            let rounds = fanout::run(&nodes, args.sockets, args.rounds).await?;
            print_fanout(args, &nodes, &rounds);
        }
        if matches!(args.part, Part::Attacks | Part::Both) {
            let target = attacks::Target {
                rpc: args.attack_rpc.clone(),
                payload: args.attack_payload.clone(),
                event_id: args.event_id.clone(),
                event_create: args.event_create.clone(),
                admin_token: ADMIN_TOKEN.to_string(),
            };
            let runs = attacks::run(&nodes, args.clients, args.seconds, &target).await?;
            print_attacks(args, &nodes, &runs);
        }
        Ok::<_, BoxError>(())
    });
    // Sockets are closed with the client runtime before the nodes stop.
    drop(rt);
    nodes::stop_all(nodes);
    drop(db);
    result
}

fn print_fanout(args: &Args, nodes: &[nodes::Node], rounds: &[fanout::Rounds]) {
    println!();
    println!(
        "== push fan-out: {} subscribed sockets on {} nodes, published on {} (time from publish \
         to the last socket's receipt)",
        args.sockets,
        nodes.len(),
        nodes[0].node_id
    );
    println!(
        "{:<40} {:>6} {:>9} {:>9} {:>9} {:>8}",
        "way", "rounds", "p50 ms", "p99 ms", "max ms", "missing"
    );
    for r in rounds {
        println!(
            "{:<40} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>8}",
            r.name,
            r.last_us.len(),
            r.p(50.0),
            r.p(99.0),
            r.p(100.0),
            r.missing
        );
    }
    if let [world, notifier, echo] = rounds {
        println!(
            "ratios: world p99 / Notifier::push p99 = {:.2}; world p50 / echo p50 = {:.1}",
            world.p(99.0) / notifier.p(99.0),
            world.p(50.0) / echo.p(50.0)
        );
    }
}

fn print_attacks(args: &Args, nodes: &[nodes::Node], runs: &[attacks::Run]) {
    println!();
    println!(
        "== attacks: {} closed-loop sockets on {} nodes, {} s each (target >= 20000/s)",
        args.clients,
        nodes.len(),
        args.seconds
    );
    println!(
        "{:<24} {:>10} {:>9} {:>9} {:>8}  first error",
        "rpc", "ok/s", "p50 ms", "p99 ms", "errors"
    );
    for r in runs {
        println!(
            "{:<24} {:>10.0} {:>9.2} {:>9.2} {:>8}  {}",
            r.name,
            r.rate(),
            r.p(50.0),
            r.p(99.0),
            r.errors,
            r.first_error.as_deref().unwrap_or("-")
        );
    }
    if let [echo, attack] = runs {
        println!(
            "ratio: {} / echo = {:.2}",
            attack.name,
            attack.rate() / echo.rate()
        );
    }
}
