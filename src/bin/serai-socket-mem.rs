//! `serai-socket-mem`: what an idle authenticated socket costs the node in memory (RSS), next
//! to what a bare socket costs a minimal server, both measured in this run.
//!
//! 1. **Bare socket**: this binary runs itself as a child (`--bare`), a tokio server that
//!    accepts connections and holds each in a task waiting for it to be readable (no buffer, no
//!    protocol): the least a server holding a socket can spend. `--sockets` connections are
//!    opened to it; its RSS growth per connection is the baseline.
//! 2. **Idle authenticated socket**: the real `serai` binary (next to this one) runs as a child
//!    on a fresh database (`serai::localdb`), `--sockets` players authenticate by device id, and
//!    each opens `/ws?token=…` and stays silent (the client answers the server's pings). The
//!    node's RSS growth per socket, in KiB, is the figure (target ≤ 12 KiB at 5 000 sockets).
//!
//! RSS is read from `/proc/<pid>/status` once it stops moving. `SERAI_NODE_WRAPPER` runs the
//! node under a profiler (e.g. `valgrind --tool=massif`) to see what a socket allocates. Needs a file descriptor limit
//! above twice `--sockets` (`scripts/bench.sh` raises it).
//!
//! ```text
//! cargo build --release --bin serai --bin serai-socket-mem
//! target/release/serai-socket-mem --sockets 5000
//! ```

// Only the device session and socket are used here.
#[allow(dead_code)]
#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use tokio::net::{TcpListener, TcpStream};

use common::BoxError;

#[derive(Parser, Debug)]
#[command(
    name = "serai-socket-mem",
    about = "RSS per idle authenticated socket vs a bare socket"
)]
struct Args {
    /// Sockets held at once.
    #[arg(long, default_value_t = 5000)]
    sockets: usize,
    /// Internal: run as the bare server on this address.
    #[arg(long, hide = true)]
    bare: Option<SocketAddr>,
}

/// Kills the child when dropped.
struct Proc(Child);

impl Drop for Proc {
    /// SIGTERM first (a node stops cleanly, a profiler writes its output), SIGKILL after 30 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// RSS once two readings 300 ms apart agree within 1 % (at most 10 s).
async fn settled_rss(pid: u32) -> u64 {
    let until = Instant::now() + Duration::from_secs(10);
    let mut last = rss_kib(pid);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = rss_kib(pid);
        if now.abs_diff(last) * 100 <= last || Instant::now() > until {
            return now;
        }
        last = now;
    }
}

async fn wait_listening(addr: SocketAddr) -> Result<(), BoxError> {
    let until = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > until {
            return Err(format!("nothing listens on {addr}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn serve_bare(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            // Held until the peer closes: readable and then EOF.
            let mut byte = [0u8; 1];
            while stream.readable().await.is_ok() {
                match stream.try_read(&mut byte) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        });
    }
}

/// KiB per bare socket.
async fn bare(n: usize) -> Result<f64, BoxError> {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
    let me = std::env::current_exe()?;
    let child = Proc(
        Command::new(me)
            .arg("--bare")
            .arg(addr.to_string())
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_listening(addr).await?;
    let pid = child.0.id();
    let before = settled_rss(pid).await;
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(TcpStream::connect(addr).await?);
    }
    let after = settled_rss(pid).await;
    drop(held);
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

/// A device's session and socket; a sign-up the server could not take (busy database, a
/// conflict) is asked again a few times.
async fn connect(authority: &str, device: &str) -> Result<common::socket::Ws, BoxError> {
    let mut tries = 0;
    loop {
        match common::socket::connect(authority, "defaultkey", device).await {
            Ok(ws) => return Ok(ws),
            Err(e) if tries < 10 => {
                tries += 1;
                tracing::debug!(error = %e, "retrying a sign-up");
                tokio::time::sleep(Duration::from_millis(20 * tries)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// KiB per idle authenticated socket of the node, and the RSS before and after.
async fn node(n: usize) -> Result<(f64, u64, u64), BoxError> {
    let db = serai::localdb::TestDatabase::create().await?;
    let bin = std::env::current_exe()?.with_file_name("serai");
    let (client, admin, peer) = (free_port(), free_port(), free_port());
    let addr: SocketAddr = format!("127.0.0.1:{client}").parse()?;
    // SERAI_NODE_WRAPPER runs the node under a profiler, e.g.
    // `valgrind --tool=massif --massif-out-file=/tmp/massif.out` (what did a socket allocate).
    let wrapper: Vec<String> = std::env::var("SERAI_NODE_WRAPPER")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    let child = Proc(
        command
            .arg("node")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SERAI_NODE_ID", "socket-mem")
            .env("SERAI_DATABASE_URL", &db.url)
            .env("SERAI_CLIENT_ADDR", addr.to_string())
            .env("SERAI_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
            .env("SERAI_PEER_ADDR", format!("127.0.0.1:{peer}"))
            .env("SERAI_ALLOW_DEFAULT_SECRETS", "true")
            .env("SERAI_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_listening(addr).await?;
    let pid = child.0.id();
    let authority = addr.to_string();
    // Warm the allocator and the gateway with a few sockets first, so that the growth is per
    // socket rather than first-use costs.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut warm = Vec::new();
    for i in 0..20 {
        warm.push(connect(&authority, &format!("mem-warm-{run}-{i}")).await?);
    }
    let before = settled_rss(pid).await;
    let per = n.div_ceil(8);
    let tasks = (0..8).map(|t| {
        let (authority, run) = (authority.clone(), run.clone());
        tokio::spawn(async move {
            let mut socks = Vec::new();
            for i in (t * per)..((t + 1) * per).min(n) {
                let device = format!("mem-{run}-{i}");
                socks.push(connect(&authority, &device).await?);
            }
            Ok::<_, BoxError>(socks)
        })
    });
    let mut sockets = Vec::with_capacity(n);
    for t in futures_util::future::join_all(tasks).await {
        sockets.extend(t??);
    }
    // Keep every socket read (the server's pings are answered by tungstenite on read).
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} }))
        .collect();
    let after = settled_rss(pid).await;
    for r in &readers {
        r.abort();
    }
    drop(warm);
    drop(child);
    drop(db);
    Ok((
        after.saturating_sub(before) as f64 / n as f64,
        before,
        after,
    ))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Some(addr) = args.bare {
        runtime.block_on(serve_bare(addr));
        return std::process::ExitCode::SUCCESS;
    }
    let n = args.sockets.max(1);
    let result = runtime.block_on(async {
        let bare = bare(n).await?;
        let (ws, before, after) = node(n).await?;
        Ok::<_, BoxError>((bare, ws, before, after))
    });
    match result {
        Ok((bare, ws, before, after)) => {
            println!(
                "bare socket          {bare:>8.2} KiB/socket  (tokio task per accepted connection, {n} sockets)"
            );
            println!(
                "idle authenticated   {ws:>8.2} KiB/socket  ratio/bare {:.1}  (node RSS {before} -> {after} KiB, {n} sockets; target <= 12 KiB)",
                ws / bare.max(0.01)
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("serai-socket-mem: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
