//! `serai-lb-load`: a closed-loop HTTP benchmark of the leaderboard API and of the HTTP edge
//! around it, every figure printed beside the baseline it is judged against.
//!
//! A node is started in this process on a fresh throwaway database (`serai::localdb`, the
//! same PostgreSQL the tests use), a board `bench` (descending, `best`) is seeded with
//! `--seed` records by SQL and warmed, `--users` players authenticate by device id, then
//! `--clients` concurrent HTTP/1.1 keep-alive connections, each with exactly one request
//! outstanding, run the `--modes` for `--seconds` each:
//!
//! - `echo`: `POST /v2/rpc/echo` with the player's session: the bare HTTP edge, the baseline
//!   of every HTTP figure (`/echo` in the table);
//! - `write`: `POST /v2/leaderboard/bench` a random score for a random player (acknowledged
//!   only after its batch is committed; with the default `--operator set` every write changes
//!   the record, so every write is a row in a committed batch);
//! - `ceiling`: not the node: the commit ceiling of the database at the batch size `write`
//!   reached, with as many batches in flight as a board keeps (`ceiling.rs`); `write` is
//!   reported as a fraction of it (`/ceiling`);
//! - `ceiling-records`: the same with the board's own write of its batches
//!   (`persistence::leaderboards::flush`; `write` against it: the node's share of the gap to
//!   the ceiling);
//! - `top`: `GET /v2/leaderboard/bench?limit=<--limit>`;
//! - `around`: `GET /v2/leaderboard/bench/owner/<owner>?limit=<--limit>`, the owner drawn
//!   from 1000 seeded records (and the players', once they wrote).
//!
//! Each mode prints requests/s, latency p50/p99 and its ratio to the baseline; `write` also
//! the average batch size. Each also prints the CPU an operation cost the whole machine and
//! this process (`cpu <machine> us/op (<here>)`, from `/proc`), and a last line turns the
//! write's into the most writes/s this machine's cores allow at that cost, as a fraction of
//! the ceiling: where the node, the clients and PostgreSQL share the cores, that fraction and
//! not the batching is what bounds `write/ceiling`. Sign-ups and logins are measured by
//! `serai-auth-load`.
//!
//! ```text
//! cargo run --release --bin serai-lb-load -- --clients 32 --seconds 10
//! ```

#[path = "lb-load/ceiling.rs"]
mod ceiling;
#[path = "common/conn.rs"]
mod conn;
#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/percentile.rs"]
mod percentile;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use conn::{request, Conn};
use percentile::percentile;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "serai-lb-load",
    about = "Closed-loop HTTP load on the leaderboard API: writes, top lists, around-owner"
)]
struct Args {
    /// Concurrent HTTP clients, each with one request outstanding.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Measured seconds per mode.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unmeasured seconds before each mode.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Players writing (each authenticates once).
    #[arg(long, default_value_t = 2000)]
    users: usize,
    /// Records seeded by SQL before the node starts (warmed at start).
    #[arg(long, default_value_t = 100_000)]
    seed: usize,
    /// Page size of top and around-owner lists.
    #[arg(long, default_value_t = 10)]
    limit: u32,
    /// `leaderboard_batch_window_ms` of the node (a batch goes once its oldest write waited
    /// this long, or a batch is full, and none is in flight).
    #[arg(long, default_value_t = 0)]
    window_ms: u64,
    /// `leaderboard_batch_size` of the node.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// `leaderboard_max_in_flight` of the node (batches of the board in the database at once);
    /// the ceiling keeps as many in flight.
    #[arg(long, default_value_t = serai::leaderboard::service::MAX_IN_FLIGHT)]
    in_flight: usize,
    /// The board's operator: `set` (every write changes the record, so every write is a
    /// database row), `best` (only improvements are written) or `incr`.
    #[arg(long, default_value = "set")]
    operator: String,
    /// Which PostgreSQL: `default` (what the tests use: `SERAI_DATABASE_URL`, else
    /// 127.0.0.1:5432, else the throwaway server) or `throwaway` (the throwaway server under
    /// `.serai/pg`, which runs with fsync off).
    #[arg(long, default_value = "default")]
    pg: String,
    /// Modes to run, in order (`echo` first: the others are reported as ratios of it).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "echo,write,ceiling,ceiling-records,top,around"
    )]
    modes: Vec<String>,
}

struct User {
    id: Uuid,
    auth: String,
}

fn basic_auth() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("defaultkey:")
    )
}

async fn authenticate(addr: SocketAddr, n: usize, parallel: usize) -> Vec<User> {
    let basic = basic_auth();
    let per = n.div_ceil(parallel.max(1));
    let tasks = (0..parallel).map(|t| {
        let basic = basic.clone();
        tokio::task::spawn_local(async move {
            let mut conn = Conn::open(addr).await.expect("connect");
            let mut users = Vec::new();
            for i in (t * per)..((t + 1) * per).min(n) {
                let device_suffix = Uuid::new_v4();
                let body = format!("{{\"id\":\"bench-device-{i:08}-{device_suffix}\"}}");
                let req = request(
                    "POST",
                    &format!("/v2/account/authenticate/device?create=true&username=bench{i}"),
                    &basic,
                    &body,
                );
                // A sign-up the server could not take (a conflict, a busy database) is asked
                // again a few times.
                let mut tries = 0;
                let answer = loop {
                    let (status, answer) = conn.exchange(&req).await.expect("authenticate");
                    tries += 1;
                    if status == 200 || tries >= 10 {
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
                        break answer;
                    }
                };
                let v: serde_json::Value = serde_json::from_slice(&answer).expect("json");
                let token = v["token"].as_str().expect("token").to_string();
                let payload = token.split('.').nth(1).expect("jwt");
                let claims: serde_json::Value = serde_json::from_slice(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(payload)
                        .expect("base64"),
                )
                .expect("claims");
                users.push(User {
                    id: claims["uid"].as_str().expect("uid").parse().expect("uuid"),
                    auth: format!("Bearer {token}"),
                });
            }
            users
        })
    });
    let mut all = Vec::with_capacity(n);
    for t in futures_util::future::join_all(tasks).await {
        all.extend(t.expect("auth task"));
    }
    all
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

/// Runs `mode` on every client for `warmup + seconds`; returns the measured tally.
async fn run_mode(
    addr: SocketAddr,
    mode: &str,
    args: &Args,
    users: Arc<Vec<User>>,
    owners: Arc<Vec<Uuid>>,
) -> (Tally, Duration) {
    let warm_until = Instant::now() + Duration::from_secs(args.warmup);
    let end = warm_until + Duration::from_secs(args.seconds);
    let tasks = (0..args.clients).map(|c| {
        let users = users.clone();
        let owners = owners.clone();
        let mode = mode.to_string();
        let limit = args.limit;
        tokio::task::spawn_local(async move {
            let mut rng = StdRng::seed_from_u64(c as u64 * 7919 + 1);
            let mut conn = Conn::open(addr).await.expect("connect");
            let mut tally = Tally::default();
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let user = &users[rng.gen_range(0..users.len())];
                let req = match mode.as_str() {
                    "echo" => request("POST", "/v2/rpc/echo", &user.auth, "\"{\\\"n\\\":1}\""),
                    "write" => {
                        let body = format!(
                            "{{\"score\":\"{}\",\"subscore\":\"{}\"}}",
                            rng.gen_range(0..1_000_000_000u64),
                            rng.gen_range(0..1000u32)
                        );
                        request("POST", "/v2/leaderboard/bench", &user.auth, &body)
                    }
                    "top" => request(
                        "GET",
                        &format!("/v2/leaderboard/bench?limit={limit}"),
                        &user.auth,
                        "",
                    ),
                    _ => {
                        let owner = owners[rng.gen_range(0..owners.len())];
                        request(
                            "GET",
                            &format!("/v2/leaderboard/bench/owner/{owner}?limit={limit}"),
                            &user.auth,
                            "",
                        )
                    }
                };
                let started = Instant::now();
                let ok = match conn.exchange(&req).await {
                    Ok((200, _)) => true,
                    Ok(_) => false,
                    Err(_) => {
                        conn = Conn::open(addr).await.expect("reconnect");
                        false
                    }
                };
                if started >= warm_until {
                    if ok {
                        let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                        tally.latencies_us.push(us);
                    } else {
                        tally.errors += 1;
                    }
                }
            }
            tally
        })
    });
    let mut total = Tally::default();
    for t in futures_util::future::join_all(tasks).await {
        let t = t.expect("client task");
        total.latencies_us.extend(t.latencies_us);
        total.errors += t.errors;
    }
    (total, Duration::from_secs(args.seconds))
}

/// Sum of a counter's samples whose line contains `label` (e.g. `outcome="committed"`).
fn counter(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

/// `   cpu <machine> us/op (<this process> here)`, or nothing where it was not measured.
fn cpu_text(used: Option<cpu::PerOp>) -> String {
    used.map_or_else(String::new, |u| {
        format!(
            "   cpu {:.0} us/op ({:.0} here)",
            u.machine_us, u.process_us
        )
    })
}

fn main() {
    let args = Args::parse();
    // Node logs on stderr with `SERAI_LOG=<filter>` (off by default: they cost time).
    if let Ok(filter) = std::env::var("SERAI_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let system = actix_rt::System::new();
    system.block_on(async move {
        let local = tokio::task::LocalSet::new();
        local.run_until(bench(args)).await;
    });
}

/// A database for the run, dropped at the end.
enum BenchDb {
    Test(serai::localdb::TestDatabase),
    Throwaway(serai::localdb::LocalServer, String, String),
}

impl BenchDb {
    async fn create(kind: &str) -> BenchDb {
        if kind == "throwaway" {
            let dir = serai::localdb::LocalServer::default_throwaway_dir();
            let t = serai::localdb::LocalServer::start_throwaway(&dir)
                .await
                .expect("the throwaway PostgreSQL");
            let name = format!("serai_lb_bench_{}", Uuid::new_v4().simple());
            let url = t.server.ensure_database(&name).await.expect("database");
            BenchDb::Throwaway(t.server, name, url)
        } else {
            BenchDb::Test(
                serai::localdb::TestDatabase::create()
                    .await
                    .expect("a local PostgreSQL (see serai::localdb)"),
            )
        }
    }

    fn url(&self) -> &str {
        match self {
            BenchDb::Test(t) => &t.url,
            BenchDb::Throwaway(_, _, url) => url,
        }
    }

    async fn drop_now(self) {
        if let BenchDb::Throwaway(server, name, _) = self {
            let _ = server.drop_database(&name).await;
        }
    }
}

async fn bench(args: Args) {
    let db = BenchDb::create(&args.pg).await;
    let mut owners = {
        let pool = serai::persistence::Db::connect(
            db.url(),
            2,
            serai::config::Dialect::Postgres,
            serai::metrics::Metrics::new("seed"),
        )
        .expect("pool");
        serai::persistence::migrate::run(&pool)
            .await
            .expect("migrations");
        let client = serai::persistence::connect(db.url(), None)
            .await
            .expect("connect");
        let setting = |row: Vec<tokio_postgres::SimpleQueryMessage>| {
            row.into_iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let fsync = setting(client.simple_query("SHOW fsync").await.expect("fsync"));
        let sync = setting(
            client
                .simple_query("SHOW synchronous_commit")
                .await
                .expect("synchronous_commit"),
        );
        let host = db
            .url()
            .split('@')
            .nth(1)
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("");
        println!("PostgreSQL at {host}: fsync {fsync}, synchronous_commit {sync}");
        let started = Instant::now();
        client
            .batch_execute(&format!(
                "INSERT INTO leaderboard (id, sort_order, operator) VALUES ('bench', 1, {});
                 INSERT INTO leaderboard_record (leaderboard_id, expiry_time, owner_id, username, score, subscore, num_score, metadata)
                 SELECT 'bench', 0, md5('bench' || i)::uuid, 'seed' || i, (i::INT8 * 7919) % 1000000000, i % 1000, 1, '{{}}'
                 FROM generate_series(1, {}) AS i;",
                match args.operator.as_str() {
                    "best" => 0,
                    "incr" => 2,
                    _ => 1,
                },
                args.seed
            ))
            .await
            .expect("seed");
        println!(
            "seeded {} records in {:.1} s",
            args.seed,
            started.elapsed().as_secs_f64()
        );
        client
            .query(
                "SELECT owner_id FROM leaderboard_record WHERE leaderboard_id = 'bench' LIMIT 1000",
                &[],
            )
            .await
            .expect("seeded owners")
            .iter()
            .map(|r| r.get::<_, Uuid>(0))
            .collect::<Vec<Uuid>>()
    };
    let mut config = serai::config::Config::for_test(db.url());
    config.leaderboard_batch_window = Duration::from_millis(args.window_ms);
    config.leaderboard_batch_size = args.batch_size;
    config.leaderboard_max_in_flight = args.in_flight;
    config.database_pool_size = 16;
    let started = Instant::now();
    let node = serai::node::start(config, serai::shutdown::Shutdown::new())
        .await
        .expect("node starts");
    let addr = node.client_addr;
    let metrics = node.services.metrics.clone();
    // Wait for the warm-up of the seeded board.
    loop {
        let info = serai::leaderboard::service::send(
            &node.services.router,
            "bench".into(),
            serai::leaderboard::messages::GetInfo,
            true,
        )
        .await;
        if let Ok(info) = info {
            println!(
                "node up, board warm with {} records after {:.2} s",
                info.size,
                started.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let users = Arc::new(authenticate(addr, args.users, 16).await);
    println!(
        "{} players authenticated in {:.1} s",
        users.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "{} clients, {} s per mode, limit {}, operator {}, batch window {} ms, batch size {}, {} batches in flight",
        args.clients, args.seconds, args.limit, args.operator, args.window_ms, args.batch_size, args.in_flight
    );
    println!(
        "{:<14} {:>10} {:>9} {:>9} {:>7}  {:>8}",
        "mode", "req/s", "p50 ms", "p99 ms", "errors", "ratio"
    );
    let mut echo_rate: Option<f64> = None;
    // The write mode's average batch (rows per committed batch), for the ceiling.
    let mut write_batch: Option<(f64, f64)> = None;
    // CPU per write and the trivial ceiling's rows/s: what this machine's cores allow.
    let mut write_cpu: Option<cpu::PerOp> = None;
    let mut ceiling_rate: Option<f64> = None;
    for mode in &args.modes {
        if mode == "ceiling" || mode == "ceiling-records" {
            let (rate, batch) = write_batch.unwrap_or((f64::NAN, args.clients as f64 / 4.0));
            let batch_rows = batch.round().max(1.0) as usize;
            let in_flight = args.in_flight;
            let statement = if mode == "ceiling" {
                ceiling::Statement::Trivial
            } else {
                ceiling::Statement::Records
            };
            let meter = cpu::Meter::after(Duration::from_secs(args.warmup));
            let measured = ceiling::measure(
                statement,
                db.url(),
                batch_rows,
                in_flight,
                args.warmup,
                args.seconds,
            )
            .await;
            match measured {
                Ok(c) => {
                    let used = meter.per_op(c.rows_per_s * args.seconds as f64);
                    println!(
                        "{:<14} {:>10.0} {:>9.2} {:>9.2} {:>7}  write/{mode} {:.2}   ({:.0} commits/s of {batch_rows} rows, {in_flight} in flight){}",
                        mode, c.rows_per_s, c.p50_ms, c.p99_ms, 0, rate / c.rows_per_s, c.commits_per_s, cpu_text(used)
                    );
                    if mode == "ceiling" {
                        ceiling_rate = Some(c.rows_per_s);
                    }
                }
                Err(e) => println!("ceiling: failed: {e}"),
            }
            continue;
        }
        if mode == "around" && args.modes.iter().any(|m| m == "write") {
            owners.extend(users.iter().map(|u| u.id));
        }
        let sample = Arc::new(owners.clone());
        let before = metrics.render();
        let meter = cpu::Meter::after(Duration::from_secs(args.warmup));
        let (mut tally, took) = run_mode(addr, mode, &args, users.clone(), sample).await;
        let after = metrics.render();
        let used = meter.per_op(tally.latencies_us.len() as f64);
        if mode == "write" {
            write_cpu = used;
        }
        tally.latencies_us.sort_unstable();
        let rate = tally.latencies_us.len() as f64 / took.as_secs_f64();
        let ratio = match (mode.as_str(), echo_rate) {
            ("echo", _) => {
                echo_rate = Some(rate);
                "1.00 (baseline)".to_string()
            }
            (_, Some(echo)) => format!("/echo {:.2}", rate / echo),
            _ => "-".to_string(),
        };
        let mut line = format!(
            "{:<14} {:>10.0} {:>9.2} {:>9.2} {:>7}  {ratio}",
            mode,
            rate,
            percentile(&tally.latencies_us, 50.0),
            percentile(&tally.latencies_us, 99.0),
            tally.errors
        );
        if mode == "write" {
            let (b, w, ok) = (
                "serai_leaderboard_batches_total",
                "serai_leaderboard_writes_total",
                "outcome=\"committed\"",
            );
            let batches = counter(&after, b, ok) - counter(&before, b, ok);
            let writes = counter(&after, w, ok) - counter(&before, w, ok);
            if batches > 0.0 {
                write_batch = Some((rate, writes / batches));
                line.push_str(&format!(
                    "   ({batches:.0} batches, {:.1} writes/batch)",
                    writes / batches
                ));
            }
        }
        line.push_str(&cpu_text(used));
        println!("{line}");
    }
    if let (Some(used), Some(ceiling)) = (write_cpu, ceiling_rate) {
        let bound = used.cpu_bound_rate();
        println!(
            "CPU: a write costs {:.0} us of the machine's CPU ({:.0} us in this process: node and \
             clients), so its cores bound writes at {bound:.0}/s, {:.2} of the ceiling",
            used.machine_us,
            used.process_us,
            bound / ceiling
        );
    }
    node.stop().await.expect("node stops");
    db.drop_now().await;
}
