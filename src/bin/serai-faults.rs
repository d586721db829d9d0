//! `serai-faults`: a fault campaign against the real binary (issues 9 and 10).
//!
//! Three `serai node` processes on one fresh PostgreSQL database, 30 clients trading (half over
//! HTTP, half over the realtime socket, spread over the nodes, each with its own character at
//! its faction's market, an occasional `learn_skill`), and a schedule of faults: SIGKILL a
//! node, SIGSTOP one past the request deadline, a rolling drain, the database down for 30 s,
//! and one node's peer links cut while its database stays reachable. Every state-changing
//! request carries a `request_id` and is retried until it gets a final answer. At the end the
//! checker compares what the clients were told with the database and prints PASS or FAIL
//! (exit 1 on FAIL, 2 when the harness itself could not run).
//!
//! ```text
//! scripts/faults.sh                     # everything (release build)
//! scripts/faults.sh --short             # the CI profile: one SIGKILL, one SIGSTOP, one drain
//! cargo run --bin serai-faults -- --faults kill,partition --clients 10
//! ```
//!
//! Nodes reach the database through a TCP proxy in this process (so "database down" needs no
//! privileges and works on any server) and reach each other through per-node peer proxies
//! (so one node can be cut off). Market restock is switched off in the test database, so goods
//! are conserved exactly. Node logs go to the log directory printed at start.

#[path = "faults/check.rs"]
mod check;
#[path = "faults/client.rs"]
mod client;
#[path = "faults/cluster.rs"]
mod cluster;
#[path = "faults/load.rs"]
mod load;
#[path = "faults/proxy.rs"]
mod proxy;
#[path = "faults/schedule.rs"]
mod schedule;
#[path = "faults/setup.rs"]
mod setup;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use serde_json::json;

use check::{Quotas, RunResult};
use cluster::{free_port, Cluster, NodeSpec};
use load::{Caller, Final, Options, Player, Progress};
use schedule::{Fault, Profile, Schedule};

#[derive(Parser, Debug)]
#[command(
    name = "serai-faults",
    about = "Fault campaign against the real serai binary, with an exactly-once checker"
)]
struct Args {
    /// The CI profile: shorter faults, one drain instead of a rolling one; default faults
    /// kill,stop,drain.
    #[arg(long)]
    short: bool,
    /// Faults to inject, in the order given: kill, stop, drain, dbstop, partition (comma-separated).
    #[arg(long, value_delimiter = ',')]
    faults: Option<Vec<String>>,
    #[arg(long, default_value_t = 30)]
    clients: usize,
    /// A check (part of its name) that is a known open problem: reported as OPEN, not failed.
    #[arg(long)]
    known_open: Vec<String>,
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The `serai` binary (default: next to this executable).
    #[arg(long)]
    serai_bin: Option<PathBuf>,
    /// Pause between two requests of one client (± 50 %).
    #[arg(long, default_value_t = 100)]
    think_ms: u64,
    /// How long one attempt waits for its answer before the client tries another node.
    #[arg(long, default_value_t = 10_000)]
    attempt_timeout_ms: u64,
    /// How long a client keeps retrying one request before it counts as unanswered.
    #[arg(long, default_value_t = 60)]
    request_deadline_secs: u64,
    /// Send `request_id`: auto (if the server takes it), always, never.
    #[arg(long, default_value = "auto")]
    request_ids: String,
    /// Extra `KEY=VALUE` environment for every node (e.g. SERAI_DATABASE_POOL_SIZE=8).
    #[arg(long = "node-env")]
    node_env: Vec<String>,
    /// Where node logs go (default: a fresh directory under the system's temp dir).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Keep the test database afterwards (its URL is printed).
    #[arg(long)]
    keep_db: bool,
}

/// Gold every character starts with: enough that buying is never refused for lack of gold.
const START_GOLD: i64 = 1_000_000;

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("serai-faults: could not run: {e}");
            ExitCode::from(2)
        }
    }
}

/// The URL of the same database through a proxy on `port`, if the server is reached over TCP.
fn db_target(url: &str) -> Result<Option<SocketAddr>, String> {
    let cfg: tokio_postgres::Config = url.parse().map_err(|e| format!("database URL: {e}"))?;
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => return Ok(None),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    use std::net::ToSocketAddrs as _;
    Ok((host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {host}: {e}"))?
        .next())
}

fn proxied_url(url: &str, proxy: SocketAddr) -> Result<String, String> {
    let cfg: tokio_postgres::Config = url.parse().map_err(|e| format!("database URL: {e}"))?;
    let password = cfg
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    Ok(format!(
        "postgresql://{}{password}@{proxy}/{}",
        cfg.get_user().unwrap_or("postgres"),
        cfg.get_dbname()
            .ok_or("the database URL names no database")?
    ))
}

fn parse_faults(args: &Args) -> Result<Vec<Fault>, String> {
    match &args.faults {
        Some(list) => list.iter().map(|s| Fault::parse(s)).collect(),
        None if args.short => Ok(vec![Fault::Kill, Fault::Stop, Fault::Drain]),
        None => Ok(Fault::ALL.to_vec()),
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let faults = parse_faults(&args)?;
    if args.nodes < 2 || args.clients == 0 {
        return Err("need at least 2 nodes and 1 client".into());
    }
    let profile = if args.short {
        Profile::short()
    } else {
        Profile::full()
    };
    let bin = match &args.serai_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("serai"),
    };
    if !bin.exists() {
        return Err(format!(
            "{} not found: build it (cargo build --bin serai) or pass --serai-bin",
            bin.display()
        ));
    }
    let mut extra_env = Vec::new();
    for kv in &args.node_env {
        let (k, v) = kv
            .split_once('=')
            .ok_or(format!("--node-env {kv}: not KEY=VALUE"))?;
        extra_env.push((k.to_string(), v.to_string()));
    }
    let run_tag = format!("f{:08x}", rand::random::<u32>());
    let log_dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("serai-faults-{run_tag}")));
    std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;

    let db = serai::localdb::TestDatabase::create()
        .await
        .map_err(|e| e.to_string())?;
    let pg = setup::connect(&db.url).await?;
    setup::prepare_database(&bin, &db.url, &pg).await?;
    let db_proxy = match db_target(&db.url)? {
        Some(target) => Some(
            proxy::DbProxy::start(target)
                .await
                .map_err(|e| format!("database proxy: {e}"))?,
        ),
        None => None,
    };
    let node_url = match &db_proxy {
        Some(p) => proxied_url(&db.url, p.addr)?,
        None => db.url.clone(),
    };
    let ids: Vec<String> = (0..args.nodes).map(|i| format!("node-{i}")).collect();
    let peer_listeners: Vec<SocketAddr> = ids.iter().map(|_| free_port()).collect();
    let peers = proxy::PeerProxies::start(&ids, &peer_listeners)
        .await
        .map_err(|e| format!("peer proxies: {e}"))?;
    let specs: Vec<NodeSpec> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| NodeSpec {
            id: id.clone(),
            client: free_port(),
            admin: free_port(),
            peer: peer_listeners[i],
            advertise_peer: peers.addrs[i],
        })
        .collect();
    let mut cluster = Cluster::new(bin.clone(), node_url, specs, log_dir.clone(), extra_env);
    println!(
        "serai-faults {run_tag}: {} nodes ({}), {} clients, faults {faults:?}, {} profile",
        args.nodes,
        bin.display(),
        args.clients,
        if args.short { "short" } else { "full" }
    );
    println!("database {} ; node logs in {}", db.name, log_dir.display());
    for i in 0..args.nodes {
        cluster.spawn(i)?;
    }
    let all: Vec<usize> = (0..args.nodes).collect();
    cluster
        .wait_converged(&all, Duration::from_secs(90))
        .await?;
    let nodes: Vec<SocketAddr> = cluster.specs.iter().map(|s| s.client).collect();

    let world = setup::world(&pg).await?;
    let mut opts = Options {
        request_ids: true,
        attempt_timeout: Duration::from_millis(args.attempt_timeout_ms),
        request_deadline: Duration::from_secs(args.request_deadline_secs),
        think: Duration::from_millis(args.think_ms.max(2)),
        skills: world.skills.clone(),
        run_tag: run_tag.clone(),
    };
    let probe_token =
        client::authenticate(nodes[0], &cluster.server_key, &format!("{run_tag}-probe")).await?;
    let mut probe = Caller::new(nodes.clone(), 0, probe_token, false, 99, opts.clone());
    let (accepted, answer) = setup::probe_request_id(&mut probe, &world).await?;
    opts.request_ids = match args.request_ids.as_str() {
        "always" => true,
        "never" => false,
        _ => accepted,
    };
    println!(
        "request_id: {} by the server ({answer:?}); sending it: {}",
        if accepted { "accepted" } else { "REFUSED" },
        opts.request_ids
    );
    let players = setup::players(
        &nodes,
        &cluster.server_key,
        args.clients,
        &world,
        &opts,
        &pg,
        START_GOLD,
    )
    .await?;
    let markets: Vec<String> = world.goods.keys().cloned().collect();
    let quotas_start = setup::read_quotas(&pg, &markets).await?;
    // The actors load what the database holds; if not, the harness's starting state is wrong.
    let (live, _) = live_snapshot(&players, &nodes, &opts).await?;
    for (p, l) in players.iter().zip(&live) {
        if *l != p.start {
            return Err(format!(
                "client {}: the live character {l:?} differs from the database {:?} before \
                 any fault",
                p.index, p.start
            ));
        }
    }

    let progress = Progress::new(players.len());
    let tasks: Vec<_> = players
        .iter()
        .map(|p| {
            let caller = Caller::new(
                nodes.clone(),
                p.home,
                p.token.clone(),
                p.over_socket,
                p.index,
                opts.clone(),
            );
            tokio::spawn(load::run_client(p.clone(), caller, progress.clone()))
        })
        .collect();
    let mut schedule = Schedule {
        cluster: &mut cluster,
        db_proxy: db_proxy.as_ref(),
        peers: &peers,
        progress: progress.clone(),
        profile,
        timeline: Vec::new(),
        failures: Vec::new(),
    };
    println!("timeline:");
    schedule.run(&faults).await;
    progress.stop.store(true, Ordering::Release);
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.map_err(|e| format!("a client task failed: {e}"))?);
    }
    schedule.note("every client stopped");
    schedule.revive().await;
    let mut node_failures = std::mem::take(&mut schedule.failures);
    drop(schedule);
    let all_up = cluster.wait_converged(&all, Duration::from_secs(60)).await;
    if let Err(e) = &all_up {
        node_failures.push(format!("after the load: {e}"));
    }
    for f in cluster.flush_all().await {
        node_failures.push(format!("POST /admin/flush failed: {f}"));
    }
    let live = settled_snapshot(&players, &nodes, &opts, &pg, &markets).await;
    let probes = if opts.request_ids {
        Some(replay_probes(&players, &logs, &nodes, &opts).await)
    } else {
        None
    };
    for (i, r) in cluster.terminate_all(Duration::from_secs(60)).await {
        match r {
            Ok(s) if s.success() => {}
            Ok(s) => node_failures.push(format!("{} exited with {s} on SIGTERM", ids[i])),
            Err(e) => node_failures.push(format!("{} on SIGTERM: {e}", ids[i])),
        }
    }
    let mut db_end = Vec::new();
    for p in &players {
        db_end.push(setup::read_state(&pg, &p.character).await?);
    }
    let result = RunResult {
        players,
        logs,
        request_ids: (accepted, answer),
        quotas_end: setup::read_quotas(&pg, &markets).await?,
        quotas_start,
        db_end,
        live,
        probes,
        node_failures,
    };
    let mut checks = check::run_checks(&result);
    check::mark_known_open(&mut checks, &args.known_open);
    let pass = check::report(&result, &checks);
    println!("node logs: {}", log_dir.display());
    if args.keep_db {
        println!("database kept: {}", db.url);
        std::mem::forget(db);
    }
    Ok(pass)
}

/// How long the markets may hold reservations of requests that were cut (a killed node's
/// characters): the node's reservation lifetime with the default request timeout, plus margin.
const RESERVATIONS_DRAIN: Duration = Duration::from_secs(15);

/// The live snapshot once the markets agree with the database, or the last one taken after
/// [`RESERVATIONS_DRAIN`]: a market's memory may differ from its row only by reservations
/// still open, and those expire.
async fn settled_snapshot(
    players: &[Player],
    nodes: &[SocketAddr],
    opts: &Options,
    pg: &tokio_postgres::Client,
    markets: &[String],
) -> Result<(Vec<load::CharState>, Quotas), String> {
    let until = std::time::Instant::now() + RESERVATIONS_DRAIN;
    loop {
        let live = live_snapshot(players, nodes, opts).await;
        let stored = setup::read_quotas(pg, markets).await?;
        let agree = matches!(&live, Ok((_, q)) if q.iter().all(|(k, v)| stored.get(k) == Some(v)));
        if agree || std::time::Instant::now() >= until {
            return live;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the live owners answer for every character and every market (`get_character`,
/// `get_trade_quotes`), over HTTP with the usual retries.
async fn live_snapshot(
    players: &[Player],
    nodes: &[SocketAddr],
    opts: &Options,
) -> Result<(Vec<load::CharState>, Quotas), String> {
    let mut chars = Vec::new();
    let mut quotes: Quotas = BTreeMap::new();
    let mut seen_markets = Vec::new();
    for p in players {
        let mut c = Caller::new(
            nodes.to_vec(),
            p.home,
            p.token.clone(),
            false,
            p.index,
            opts.clone(),
        );
        let payload = json!({"character_id": p.character});
        match c.call("get_character", &payload).await.0 {
            Final::Done(v) => chars.push(setup::live_state(&v)),
            other => return Err(format!("get_character of client {}: {other:?}", p.index)),
        }
        if seen_markets.contains(&p.market) {
            continue;
        }
        seen_markets.push(p.market.clone());
        match c.call("get_trade_quotes", &payload).await.0 {
            Final::Done(v) => {
                for q in v["quotes"].as_array().into_iter().flatten() {
                    let good = q["good"].as_str().unwrap_or_default().to_string();
                    let quota = q["quota"].as_i64().unwrap_or(-1);
                    quotes.insert((p.market.clone(), good), quota);
                }
            }
            other => return Err(format!("get_trade_quotes at {}: {other:?}", p.market)),
        }
    }
    Ok((chars, quotes))
}

/// Replays each client's last answered request with its `request_id` (on another node): the
/// answer must be the first one, and nothing may change (the database checks run after). One
/// replay with a changed payload must be refused with 409/6.
async fn replay_probes(
    players: &[Player],
    logs: &[load::ClientLog],
    nodes: &[SocketAddr],
    opts: &Options,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut conflict_probed = false;
    for (p, log) in players.iter().zip(logs) {
        let Some((rpc, payload, first)) =
            log.requests.iter().rev().find_map(|q| match &q.outcome {
                Final::Done(v) => Some((q.rpc, q.payload.clone(), v.clone())),
                _ => None,
            })
        else {
            continue;
        };
        let other = (p.home + 1) % nodes.len();
        let mut c = Caller::new(
            nodes.to_vec(),
            other,
            p.token.clone(),
            p.over_socket,
            p.index,
            opts.clone(),
        );
        let rid = payload["request_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match c.call(rpc, &payload).await.0 {
            Final::Done(v) if v == first => {}
            got => failures.push(format!(
                "client {} {rpc} {rid} replayed: {got:?}, first answer {first}",
                p.index
            )),
        }
        if !conflict_probed && rpc == "execute_trade" {
            conflict_probed = true;
            let mut changed = payload.clone();
            changed["quantity"] = json!(payload["quantity"].as_i64().unwrap_or(1) + 1);
            match c.call(rpc, &changed).await.0 {
                Final::Conflict(_) => {}
                got => failures.push(format!(
                    "client {} {rid} replayed with another quantity: {got:?}, expected 409/6",
                    p.index
                )),
            }
        }
    }
    failures
}
