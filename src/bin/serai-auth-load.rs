//! `serai-auth-load`: a closed-loop HTTP benchmark of device authentication (issue 14.1).
//!
//! A node is started in this process on a fresh database (`serai::localdb`, the PostgreSQL
//! the tests use), then `--clients` keep-alive HTTP/1.1 connections, each with one request
//! outstanding, run for `--seconds` each mode:
//!
//! - `new`: `POST /v2/account/authenticate/device` with a fresh device id every time, ids
//!   consecutive across all clients (`load-device-0000000001`, …: neighbours in the id index,
//!   the worst case for a SERIALIZABLE sign-up);
//! - `existing`: the same call with the ids `new` created (a returning player's login);
//! - `echo`: `POST /v2/rpc/echo` with a player's session: the bare HTTP edge, the baseline the
//!   other modes are reported against (`/echo`, as issue 14's table compares them).
//!
//! Each mode prints requests/s, latency p50/p99, errors, the sign-up retries the node
//! counted meanwhile (`serai_db_retries_total` plus `serai_account_signup_retries_total`) and
//! its ratio to `echo`. (`serai-lb-load` measures the leaderboard; sign-ups and logins are
//! measured here only.)
//!
//! ```text
//! cargo run --release --bin serai-auth-load -- --clients 32 --seconds 10
//! ```

#[path = "common/conn.rs"]
mod conn;
#[path = "common/percentile.rs"]
mod percentile;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;

use conn::{request, Conn};
use percentile::percentile;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "serai-auth-load",
    about = "Closed-loop HTTP load on device authentication: sign-ups, then logins"
)]
struct Args {
    /// Concurrent HTTP clients, each with one request outstanding.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Measured seconds per mode.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Modes to run, in order (`existing` logs in with the ids `new` created; `echo` first:
    /// the others are reported as ratios of it).
    #[arg(long, value_delimiter = ',', default_value = "echo,new,existing")]
    modes: Vec<String>,
    /// Connections of the node's database pool.
    #[arg(long, default_value_t = 16)]
    pool: usize,
}

fn main() {
    let args = Args::parse();
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

/// Sum of a metric's samples (every label set).
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

async fn bench(args: Args) {
    let db = serai::localdb::TestDatabase::create()
        .await
        .expect("a test database");
    let mut config = serai::config::Config::for_test(&db.url);
    config.database_pool_size = args.pool;
    let node = serai::node::start(config, serai::shutdown::Shutdown::new())
        .await
        .expect("node starts");
    let (addr, metrics) = (node.client_addr, node.services.metrics.clone());
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("defaultkey:")
    );
    let next = Arc::new(AtomicU64::new(1));
    let session = Arc::new(session_token(addr, &basic).await);
    println!(
        "{} clients, {} s per mode, pool {}",
        args.clients, args.seconds, args.pool
    );
    println!(
        "{:<9} {:>9} {:>8} {:>8} {:>7} {:>8}  {:>8}",
        "mode", "req/s", "p50 ms", "p99 ms", "errors", "retries", "ratio"
    );
    let mut echo_rate: Option<f64> = None;
    for mode in &args.modes {
        let created = next.load(Ordering::Relaxed);
        let before = metrics.render();
        let end = Instant::now() + Duration::from_secs(args.seconds);
        let tasks = (0..args.clients).map(|c| {
            let (basic, next, mode) = (basic.clone(), next.clone(), mode.clone());
            let session = session.clone();
            tokio::task::spawn_local(async move {
                let mut conn = Conn::open(addr).await.expect("connect");
                let (mut lat, mut errors, mut k) = (Vec::<u32>::new(), 0u64, c as u64);
                while Instant::now() < end {
                    let req = if mode == "echo" {
                        request("POST", "/v2/rpc/echo", &session, "\"{\\\"n\\\":1}\"")
                    } else {
                        let n = if mode == "new" {
                            next.fetch_add(1, Ordering::Relaxed)
                        } else {
                            k = (k + args_clients_step(c)) % created.max(2);
                            k.max(1)
                        };
                        let body = format!("{{\"id\":\"load-device-{n:010}\"}}");
                        request("POST", "/v2/account/authenticate/device", &basic, &body)
                    };
                    let started = Instant::now();
                    match conn.exchange(&req).await {
                        Ok((200, _)) => lat.push(started.elapsed().as_micros() as u32),
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            conn = Conn::open(addr).await.expect("reconnect");
                        }
                    }
                }
                (lat, errors)
            })
        });
        let (mut lat, mut errors) = (Vec::new(), 0);
        for t in futures_util::future::join_all(tasks).await {
            let (l, e) = t.expect("client task");
            lat.extend(l);
            errors += e;
        }
        let after = metrics.render();
        let retries = [
            "serai_db_retries_total",
            "serai_account_signup_retries_total",
        ]
        .iter()
        .map(|m| total(&after, m) - total(&before, m))
        .sum::<f64>();
        lat.sort_unstable();
        let rate = lat.len() as f64 / args.seconds as f64;
        let ratio = match (mode.as_str(), echo_rate) {
            ("echo", _) => {
                echo_rate = Some(rate);
                "1.00 (baseline)".to_string()
            }
            (_, Some(echo)) => format!("/echo {:.2}", rate / echo),
            _ => "-".to_string(),
        };
        println!(
            "{:<9} {:>9.0} {:>8.2} {:>8.2} {:>7} {:>8}  {ratio}",
            mode,
            rate,
            percentile(&lat, 50.0),
            percentile(&lat, 99.0),
            errors,
            retries
        );
    }
    node.stop().await.expect("node stops");
    drop(db);
}

/// A session token (`Bearer …`) of a player made for the `echo` mode (its device id is outside
/// the `load-device-` range the other modes use).
async fn session_token(addr: std::net::SocketAddr, basic: &str) -> String {
    let mut conn = Conn::open(addr).await.expect("connect");
    let req = request(
        "POST",
        "/v2/account/authenticate/device?create=true",
        basic,
        "{\"id\":\"echo-device-0001\"}",
    );
    let (status, body) = conn.exchange(&req).await.expect("authenticate");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    format!("Bearer {}", v["token"].as_str().expect("token"))
}

/// Clients walk the existing ids with different strides so they log in to different accounts.
fn args_clients_step(c: usize) -> u64 {
    97 + 2 * c as u64
}
