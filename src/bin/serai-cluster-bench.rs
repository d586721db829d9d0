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
//! The small HTTP/WebSocket client is a trimmed copy of the one in `serai-load.rs`.
//!
//! ```text
//! cargo build --release --bin serai --bin serai-cluster-bench
//! cargo run --release --bin serai-cluster-bench -- --clients 16 --seconds 5 --failovers 3
//! ```

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use serai::character::messages::GetCharacter;
use serai::character::CharacterSession;
use serai::request::Call;
use serai::routing::placement::Owner;
use serai::routing::ring::Ring;
use serai::routing::Router;
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "serai-cluster-bench",
    about = "Cluster costs: the forwarding hop (local vs remote owner) and SIGKILL failover time"
)]
struct Args {
    /// Concurrent clients of the loaded hop runs (the latency runs use 1).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Measured seconds per hop run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Unmeasured seconds before each hop run.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// SIGKILL failovers to time.
    #[arg(long, default_value_t = 3)]
    failovers: usize,
    #[arg(long, value_enum, default_value_t = Part::Both)]
    part: Part,
    /// The `serai` binary for the failover part (default: next to this executable).
    #[arg(long)]
    serai_bin: Option<PathBuf>,
    /// Threads of the WebSocket clients' runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Hop,
    Failover,
    Both,
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SERVER_KEY: &str = "defaultkey";
const ADMIN_TOKEN: &str = "cluster-bench-admin-token";

// ---------------------------------------------------------------------------------------------
// Client bits (trimmed from serai-load.rs): one HTTP/1.1 request per connection, RPCs over /ws.

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    body: &str,
) -> Result<(u16, String), BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed HTTP answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed status line")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body)? } else { body.into() }))
}

fn dechunk(mut s: &str) -> Result<String, BoxError> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").ok_or("malformed chunk")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).ok_or("short chunk")?);
        s = rest.get(size + 2..).ok_or("short chunk")?;
    }
}

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow, default)]
    cid: Option<Cow<'a, str>>,
    #[serde(default)]
    rpc: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct PayloadReply {
    rpc: RpcPayload,
}

#[derive(Deserialize)]
struct RpcPayload {
    #[serde(default)]
    payload: String,
}

struct Client {
    ws: Ws,
    cid: u64,
}

impl Client {
    async fn connect(addr: SocketAddr, device: &str) -> Result<Client, BoxError> {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SERVER_KEY}:"));
        let body = serde_json::json!({ "id": device }).to_string();
        let (status, text) = http(
            addr,
            "POST",
            "/v2/account/authenticate/device?create=true",
            &format!("Basic {basic}"),
            &body,
        )
        .await?;
        if status != 200 {
            return Err(format!("device auth: HTTP {status}: {text}").into());
        }
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let token = v["token"].as_str().ok_or("no token")?;
        let url = format!("ws://{addr}/ws?lang=en&status=true&token={token}");
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
        Ok(Client { ws, cid: 0 })
    }

    /// One RPC: `Ok(text of the reply frame)` or `Err("code N: message")`. Transport failures
    /// are errors of the outer result.
    async fn call(&mut self, id: &str, payload: &str) -> Result<Result<String, String>, BoxError> {
        self.cid += 1;
        let want = self.cid.to_string();
        let frame = format!(
            "{{\"cid\":\"{want}\",\"rpc\":{{\"id\":\"{id}\",\"payload\":{}}}}}",
            serde_json::to_string(payload)?
        );
        self.ws.send(Message::text(frame)).await?;
        let read = async {
            loop {
                let text = match self.ws.next().await.ok_or("socket closed")?? {
                    Message::Text(t) => t.as_str().to_string(),
                    Message::Close(c) => return Err(format!("socket closed: {c:?}").into()),
                    _ => continue,
                };
                let r: Reply = serde_json::from_str(&text)?;
                if r.cid.as_deref() != Some(want.as_str()) {
                    continue; // a push or a stale answer
                }
                return Ok::<_, BoxError>(match (r.rpc, r.error) {
                    (Some(_), _) => Ok(text),
                    (None, Some(e)) => Err(format!("code {}: {}", e.code, e.message)),
                    (None, None) => Err("neither rpc nor error".to_string()),
                });
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .map_err(|_| format!("{id}: no answer in 30 s"))?
    }

    /// An RPC that must succeed; its payload, decoded.
    async fn must(&mut self, id: &str, payload: &str) -> Result<serde_json::Value, BoxError> {
        let text = self
            .call(id, payload)
            .await?
            .map_err(|e| format!("{id}: {e}"))?;
        let r: PayloadReply = serde_json::from_str(&text)?;
        Ok(serde_json::from_str(&r.rpc.payload)?)
    }

    async fn create_character(&mut self, name: &str) -> Result<Uuid, BoxError> {
        let catalog = self.must("get_catalog", "{}").await?;
        let faction = catalog["factions"][0]["code"]
            .as_str()
            .ok_or("no faction")?;
        let background = catalog["backgrounds"][0]["code"]
            .as_str()
            .ok_or("no background")?;
        let made = self
            .must(
                "create_character",
                &serde_json::json!({"name": name, "faction": faction, "background": background})
                    .to_string(),
            )
            .await?;
        Ok(made["id"].as_str().ok_or("no id")?.parse()?)
    }

    async fn delete_character(&mut self, id: Uuid) -> Result<(), BoxError> {
        self.must("delete_character", &character_ref(id)).await?;
        Ok(())
    }
}

fn character_ref(id: Uuid) -> String {
    serde_json::json!({ "character_id": id }).to_string()
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// Latencies of one run, in nanoseconds, sorted.
struct Run {
    path: &'static str,
    owner: &'static str,
    conc: usize,
    seconds: f64,
    lat: Vec<u64>,
    errors: usize,
}

impl Run {
    fn pct_us(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.lat.len() as f64).ceil() as usize;
        self.lat[rank.clamp(1, self.lat.len()) - 1] as f64 / 1000.0
    }
    fn rate(&self) -> f64 {
        self.lat.len() as f64 / self.seconds
    }
}

fn print_hop(runs: &[Run]) {
    println!();
    println!("== hop: get_character with a local vs a remote owner (two nodes, loopback)");
    println!(
        "{:<22} {:>4} {:<6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "path", "conc", "owner", "requests", "req/s", "p50 µs", "p99 µs", "max µs", "errors"
    );
    for r in runs {
        println!(
            "{:<22} {:>4} {:<6} {:>9} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>6}",
            r.path,
            r.conc,
            r.owner,
            r.lat.len(),
            r.rate(),
            r.pct_us(50.0),
            r.pct_us(99.0),
            r.pct_us(100.0),
            r.errors
        );
    }
    println!();
    println!(
        "{:<22} {:>4} {:>13} {:>13} {:>14} {:>14} {:>14}",
        "added hop", "conc", "Δp50 µs", "Δp99 µs", "p50 rem/loc", "p99 rem/loc", "req/s rem/loc"
    );
    for pair in runs.chunks(2) {
        let [l, r] = pair else { continue };
        let d50 = r.pct_us(50.0) - l.pct_us(50.0);
        println!(
            "{:<22} {:>4} {:>13.1} {:>13.1} {:>14.2} {:>14.2} {:>14.2}{}",
            l.path,
            l.conc,
            d50,
            r.pct_us(99.0) - l.pct_us(99.0),
            r.pct_us(50.0) / l.pct_us(50.0),
            r.pct_us(99.0) / l.pct_us(99.0),
            r.rate() / l.rate(),
            if l.conc == 1 {
                if d50 <= 200.0 {
                    "   (target p50 ≤ 200 µs: met)"
                } else {
                    "   (target p50 ≤ 200 µs: MISSED)"
                }
            } else {
                ""
            }
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Part 1: the hop.

/// A node running in its own thread with its own actix System.
struct InProcessNode {
    client_addr: SocketAddr,
    router: Arc<Router>,
    membership: Arc<Mutex<serai::routing::membership::MembershipStatus>>,
    shutdown: serai::shutdown::Shutdown,
    thread: std::thread::JoinHandle<()>,
}

fn start_node(url: &str, node_id: &str) -> Result<InProcessNode, BoxError> {
    let mut config = serai::config::Config::for_test(url);
    config.node_id = node_id.to_string();
    let shutdown = serai::shutdown::Shutdown::new();
    let stop = shutdown.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(node_id.to_string())
        .spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                match serai::node::start(config, stop).await {
                    Ok(node) => {
                        let _ = tx.send(Ok((
                            node.client_addr,
                            node.services.router.clone(),
                            node.membership.clone(),
                        )));
                        if let Err(e) = node.wait().await {
                            eprintln!("warning: stopping the node: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        })?;
    let (client_addr, router, membership) = rx.recv().map_err(|_| "node thread ended")??;
    Ok(InProcessNode {
        client_addr,
        router,
        membership,
        shutdown,
        thread,
    })
}

/// One WebSocket client with a character owned by A and one owned by B.
struct HopClient {
    client: Client,
    local: Uuid,
    remote: Uuid,
}

/// Creates characters on A until this client has one of each side (a character of a side
/// already covered is deleted again: 8 per account at most).
async fn hop_client(a: &InProcessNode, run: &str, i: usize) -> Result<HopClient, BoxError> {
    let mut client = Client::connect(a.client_addr, &format!("cluster-bench-{run}-{i}")).await?;
    let (mut local, mut remote) = (None, None);
    let mut n = 0;
    while local.is_none() || remote.is_none() {
        n += 1;
        let id = client.create_character(&format!("Bench {i} {n}")).await?;
        match a.router.placement().owner("character", id.as_bytes()) {
            Owner::Local if local.is_none() => local = Some(id),
            Owner::Remote(_) if remote.is_none() => remote = Some(id),
            _ => client.delete_character(id).await?,
        }
    }
    Ok(HopClient {
        client,
        local: local.unwrap(),
        remote: remote.unwrap(),
    })
}

/// Closed loop on the first `conc` clients: `get_character` on their local or remote character.
async fn ws_run(
    clients: Vec<HopClient>,
    conc: usize,
    remote: bool,
    args: &Args,
) -> (Vec<HopClient>, Run) {
    let warm_end = Instant::now() + Duration::from_secs(args.warmup);
    let end = warm_end + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    let mut idle = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        if i >= conc {
            idle.push(c);
            continue;
        }
        tasks.push(tokio::spawn(async move {
            let payload = character_ref(if remote { c.remote } else { c.local });
            let (mut lat, mut errors) = (Vec::new(), 0);
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let ok = matches!(c.client.call("get_character", &payload).await, Ok(Ok(_)));
                if t >= warm_end {
                    if ok {
                        lat.push(t.elapsed().as_nanos() as u64);
                    } else {
                        errors += 1;
                    }
                }
            }
            (c, lat, errors)
        }));
    }
    let mut run = Run {
        path: "ws get_character",
        owner: if remote { "remote" } else { "local" },
        conc,
        seconds: args.seconds as f64,
        lat: Vec::new(),
        errors: 0,
    };
    let mut back = Vec::new();
    for t in tasks {
        let (c, lat, errors) = t.await.expect("client task");
        back.push(c);
        run.lat.extend(lat);
        run.errors += errors;
    }
    back.extend(idle);
    run.lat.sort_unstable();
    (back, run)
}

/// Closed loop straight on `Router::ask` of node A, on a thread of its own (as an actix-web
/// worker would call it).
fn ask_run(router: Arc<Router>, ids: Vec<Uuid>, conc: usize, remote: bool, args: &Args) -> Run {
    let (warmup, seconds) = (args.warmup, args.seconds);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (lat, errors) = rt.block_on(async move {
        let warm_end = Instant::now() + Duration::from_secs(warmup);
        let end = warm_end + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..conc)
            .map(|i| {
                let (router, id) = (router.clone(), ids[i % ids.len()]);
                tokio::spawn(async move {
                    let (mut lat, mut errors) = (Vec::new(), 0usize);
                    loop {
                        let t = Instant::now();
                        if t >= end {
                            break;
                        }
                        let msg = GetCharacter {
                            call: Call::server(serai::request::Deadline::after(
                                Duration::from_secs(5),
                            )),
                        };
                        let ok = matches!(
                            router.ask::<CharacterSession, GetCharacter>(id, msg).await,
                            Ok(Ok(_))
                        );
                        if t >= warm_end {
                            if ok {
                                lat.push(t.elapsed().as_nanos() as u64);
                            } else {
                                errors += 1;
                            }
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        let (mut all, mut errs) = (Vec::new(), 0);
        for t in tasks {
            let (l, e) = t.await.expect("ask task");
            all.extend(l);
            errs += e;
        }
        (all, errs)
    });
    let mut lat = lat;
    lat.sort_unstable();
    Run {
        path: "Router::ask (no HTTP)",
        owner: if remote { "remote" } else { "local" },
        conc,
        seconds: seconds as f64,
        lat,
        errors,
    }
}

fn hop(args: &Args) -> Result<Vec<Run>, BoxError> {
    let setup_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    let db = setup_rt.block_on(serai::localdb::TestDatabase::create())?;
    eprintln!("hop: two nodes in this process on database {}", db.name);
    let a = start_node(&db.url, "bench-a")?;
    let b = start_node(&db.url, "bench-b")?;
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while [&a, &b].iter().any(|n| {
            n.membership.lock().unwrap().members.len() != 2
                || n.router.placement().members().count() != 2
        }) {
            if Instant::now() > deadline {
                return Err::<_, BoxError>("the two nodes did not see each other in 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let run_id = Uuid::new_v4().simple().to_string()[..8].to_string();
        let conc_max = args.clients.max(1);
        let (mut clients, ids) = setup_rt.block_on(async {
            let mut clients = Vec::new();
            let (mut local, mut remote) = (Vec::new(), Vec::new());
            for i in 0..conc_max {
                let c = hop_client(&a, &run_id, i).await?;
                local.push(c.local);
                remote.push(c.remote);
                clients.push(c);
            }
            Ok::<_, BoxError>((clients, (local, remote)))
        })?;
        eprintln!(
            "hop: {} clients on node A, each with a character owned by A and one by B",
            clients.len()
        );
        let mut runs = Vec::new();
        for conc in [1, conc_max] {
            for remote in [false, true] {
                let (back, run) = setup_rt.block_on(ws_run(clients, conc, remote, args));
                clients = back;
                runs.push(run);
            }
        }
        for conc in [1, conc_max] {
            for remote in [false, true] {
                let list = if remote { &ids.1 } else { &ids.0 };
                runs.push(ask_run(a.router.clone(), list.clone(), conc, remote, args));
            }
        }
        setup_rt.block_on(async {
            for mut c in clients {
                let _ = c.client.ws.close(None).await;
            }
        });
        Ok(runs)
    })();
    for n in [a, b] {
        n.shutdown.trigger();
        let _ = n.thread.join();
    }
    drop(setup_rt);
    drop(db);
    result
}

// ---------------------------------------------------------------------------------------------
// Part 2: SIGKILL failover with the real binary.

struct Proc {
    child: Child,
    client: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

fn spawn_node(bin: &PathBuf, url: &str, i: usize) -> Result<Proc, BoxError> {
    let (client, admin, peer) = (free_port(), free_port(), free_port());
    let log_path = std::env::temp_dir().join(format!("serai-cluster-bench-node-{i}-{client}.log"));
    let log = std::fs::File::create(&log_path)?;
    // A clean environment: no SERAI_MEMBERSHIP_TIMEOUT_MS / SERAI_HEARTBEAT_INTERVAL_MS, so
    // the membership timeouts are the defaults.
    let child = Command::new(bin)
        .arg("node")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SERAI_NODE_ID", format!("node-{i}"))
        .env("SERAI_DATABASE_URL", url)
        .env("SERAI_CLIENT_ADDR", format!("127.0.0.1:{client}"))
        .env("SERAI_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .env("SERAI_PEER_ADDR", format!("127.0.0.1:{peer}"))
        .env("SERAI_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SERAI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    Ok(Proc {
        child,
        client: format!("127.0.0.1:{client}").parse()?,
        admin: format!("127.0.0.1:{admin}").parse()?,
    })
}

/// The member ids in a node's admin view (empty when it does not answer).
async fn members(admin: SocketAddr) -> Vec<String> {
    match http(
        admin,
        "GET",
        "/admin/cluster",
        &format!("Bearer {ADMIN_TOKEN}"),
        "",
    )
    .await
    {
        Ok((200, body)) => serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v["members"].as_array().map(|m| {
                    m.iter()
                        .filter_map(|m| m["node_id"].as_str().map(str::to_string))
                        .collect()
                })
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

async fn wait_members(procs: &[&Proc], n: usize, within: Duration) -> Result<(), BoxError> {
    let deadline = Instant::now() + within;
    loop {
        let mut ok = true;
        for p in procs {
            ok &= members(p.admin).await.len() == n;
        }
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("views did not converge to {n} members in {within:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One timed failover.
struct Failover {
    moved_to: String,
    /// Kill → node 0's and node 1's views without node 2.
    view: [Option<Duration>; 2],
    /// Kill → answer of the first successful RPC sent after the kill.
    first_ok: Duration,
    errors: Vec<String>,
}

/// Calls `get_character` in a loop; records (sent, answered, outcome).
type Events = Arc<Mutex<Vec<(Instant, Instant, Result<(), String>)>>>;

async fn failover_once(
    procs: &mut [Option<Proc>],
    mut client: Client,
    vnodes: usize,
    bin: &PathBuf,
    url: &str,
) -> Result<(Client, Failover), BoxError> {
    let ids: Vec<String> = members(procs[0].as_ref().unwrap().admin).await;
    if ids.len() != 3 {
        return Err(format!("node 0 sees {ids:?}, not three members").into());
    }
    let ring = Ring::new(&ids, vnodes);
    // The previous runs' characters go first (8 per account at most).
    let listed = client.must("list_characters", "{}").await?;
    for c in listed["characters"].as_array().into_iter().flatten() {
        if let Some(id) = c["id"].as_str().and_then(|i| i.parse().ok()) {
            client.delete_character(id).await?;
        }
    }
    // A character owned by node-2 (made over node 0's client API; 8 per account at most).
    let mut made = Vec::new();
    let target = loop {
        let id = client.create_character("Failover").await?;
        if ring.owner("character", id.as_bytes()) == Some("node-2") {
            break id;
        }
        made.push(id);
        if made.len() >= 6 {
            for id in made.drain(..) {
                client.delete_character(id).await?;
            }
        }
    };
    for id in made {
        client.delete_character(id).await?;
    }
    let payload = character_ref(target);
    // Activate it on node 2 (its claim now names node-2).
    client.must("get_character", &payload).await?;
    let survivors: Vec<String> = ids.iter().filter(|i| *i != "node-2").cloned().collect();
    let moved_to = Ring::new(&survivors, vnodes)
        .owner("character", target.as_bytes())
        .unwrap_or("?")
        .to_string();

    // The client calls in a loop on a task of its own and is handed back when it stops.
    let events: Events = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (ev, st) = (events.clone(), stop.clone());
    let looper = tokio::spawn(async move {
        while !st.load(Ordering::Relaxed) {
            let sent = Instant::now();
            let outcome = match client.call("get_character", &payload).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(format!("transport: {e}")),
            };
            let failed = outcome.is_err();
            ev.lock().unwrap().push((sent, Instant::now(), outcome));
            if failed {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        client
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut victim = procs[2].take().unwrap();
    victim.child.kill()?; // SIGKILL
    let killed = Instant::now();
    victim.child.wait()?;
    drop(victim);

    let mut view = [None, None];
    let deadline = killed + Duration::from_secs(30);
    let first_ok = loop {
        for (k, v) in view.iter_mut().enumerate() {
            if v.is_none() {
                let m = members(procs[k].as_ref().unwrap().admin).await;
                if m.len() == 2 && !m.iter().any(|i| i == "node-2") {
                    *v = Some(killed.elapsed());
                }
            }
        }
        let found = events
            .lock()
            .unwrap()
            .iter()
            .find(|(sent, _, r)| *sent >= killed && r.is_ok())
            .map(|(_, done, _)| *done - killed);
        if let Some(d) = found {
            // Keep watching the views a little longer so both are timed.
            if view.iter().all(Option::is_some) || killed.elapsed() > Duration::from_secs(10) {
                break d;
            }
        }
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            return Err("no successful RPC within 30 s of the kill".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    stop.store(true, Ordering::Relaxed);
    let client = looper.await?;
    let errors = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, done, r)| match r {
            Err(e) if *done >= killed => Some(e.clone()),
            _ => None,
        })
        .collect();

    // Bring node 2 back for the next run.
    procs[2] = Some(spawn_node(bin, url, 2)?);
    let live: Vec<&Proc> = procs.iter().flatten().collect();
    wait_members(&live, 3, Duration::from_secs(30)).await?;
    Ok((
        client,
        Failover {
            moved_to,
            view,
            first_ok,
            errors,
        },
    ))
}

fn failover(args: &Args) -> Result<Vec<Failover>, BoxError> {
    let bin = match &args.serai_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("serai"),
    };
    if !bin.exists() {
        return Err(format!(
            "{} not found: cargo build --release --bin serai (or --serai-bin)",
            bin.display()
        )
        .into());
    }
    if let (Ok(me), Ok(it)) = (
        std::env::current_exe().and_then(|p| p.metadata()?.modified()),
        bin.metadata().and_then(|m| m.modified()),
    ) {
        if it + Duration::from_secs(600) < me {
            eprintln!(
                "warning: {} is older than this benchmark; rebuild it (cargo build --release --bin serai)",
                bin.display()
            );
        }
    }
    let defaults = serai::config::RawConfig::default().validate()?;
    println!();
    println!(
        "== failover: {} as 3 processes, default heartbeat {} ms, membership timeout {} ms",
        bin.display(),
        defaults.heartbeat_interval.as_millis(),
        defaults.membership_timeout.as_millis()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let db = serai::localdb::TestDatabase::create().await?;
        let mut procs: Vec<Option<Proc>> = Vec::new();
        for i in 0..3 {
            procs.push(Some(spawn_node(&bin, &db.url, i)?));
        }
        let live: Vec<&Proc> = procs.iter().flatten().collect();
        wait_members(&live, 3, Duration::from_secs(60)).await?;
        let node0 = procs[0].as_ref().unwrap().client;
        let mut client =
            Client::connect(node0, &format!("cluster-bench-{}", Uuid::new_v4())).await?;
        let mut out = Vec::new();
        for run in 1..=args.failovers {
            let (c, f) =
                failover_once(&mut procs, client, defaults.ring_vnodes, &bin, &db.url).await?;
            client = c;
            eprintln!(
                "failover {run}: first successful RPC {:.3} s after the kill",
                f.first_ok.as_secs_f64()
            );
            out.push(f);
        }
        let _ = client.ws.close(None).await;
        // Drain the survivors (SIGTERM), then drop the database.
        for p in procs.iter().flatten() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(p.child.id().to_string())
                .status();
        }
        for p in procs.iter_mut().flatten() {
            let _ = p.child.wait();
        }
        drop(procs);
        drop(db);
        Ok(out)
    })
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.3}", d.as_secs_f64()))
}

fn print_failover(runs: &[Failover]) {
    println!(
        "{:<4} {:<9} {:>16} {:>16} {:>15} {:>15} {:>7}  errors after the kill",
        "run",
        "moved to",
        "kill→view n0 s",
        "kill→view n1 s",
        "kill→first ok s",
        "view n0→ok s",
        "errors"
    );
    for (i, f) in runs.iter().enumerate() {
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for e in &f.errors {
            match kinds.iter_mut().find(|(k, _)| k == e) {
                Some((_, n)) => *n += 1,
                None => kinds.push((e.clone(), 1)),
            }
        }
        println!(
            "{:<4} {:<9} {:>16} {:>16} {:>15.3} {:>15} {:>7}  {}",
            i + 1,
            f.moved_to,
            secs(f.view[0]),
            secs(f.view[1]),
            f.first_ok.as_secs_f64(),
            f.view[0].map_or("-".into(), |v| format!(
                "{:.3}",
                f.first_ok.as_secs_f64() - v.as_secs_f64()
            )),
            f.errors.len(),
            kinds
                .iter()
                .map(|(k, n)| format!("{n}× {k}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let mut firsts: Vec<Duration> = runs.iter().map(|f| f.first_ok).collect();
    firsts.sort();
    if let Some(median) = firsts.get(firsts.len() / 2) {
        let view_median = {
            let mut v: Vec<Duration> = runs.iter().filter_map(|f| f.view[0]).collect();
            v.sort();
            v.get(v.len() / 2).copied()
        };
        println!(
            "median kill→first ok: {:.3} s (target ≤ 5 s: {}); median kill→view on node 0: {} s; \
             first ok / view: {}",
            median.as_secs_f64(),
            if median.as_secs_f64() <= 5.0 {
                "met"
            } else {
                "MISSED"
            },
            secs(view_median),
            view_median.map_or("-".into(), |v| format!(
                "{:.2}",
                median.as_secs_f64() / v.as_secs_f64()
            ))
        );
    }
}

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
