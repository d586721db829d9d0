//! The real `serai node` binary as N processes on one database: start, SIGKILL, SIGSTOP/SIGCONT,
//! drain, restart on the same ports, and waiting on health endpoints instead of sleeping.
//!
//! Every node reaches the database through the harness's [`super::proxy::DbProxy`] and
//! advertises its peer proxy (see [`super::proxy::PeerProxies`]) as its peer address, so the
//! harness can take either away without touching the process.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::client::admin;

/// A port nobody listens on right now (bound on 127.0.0.1:0, read, released).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("a local address")
}

/// Where one node listens; kept across restarts so clients can come back to it.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub id: String,
    pub client: SocketAddr,
    pub admin: SocketAddr,
    pub peer: SocketAddr,
    /// What the node tells its peers to dial: its peer proxy.
    pub advertise_peer: SocketAddr,
}

pub struct Cluster {
    pub bin: PathBuf,
    pub db_url: String,
    pub specs: Vec<NodeSpec>,
    pub admin_token: String,
    pub server_key: String,
    pub log_dir: PathBuf,
    /// `KEY=VALUE` settings passed to every node after the harness's own.
    pub extra_env: Vec<(String, String)>,
    children: Vec<Option<Child>>,
    /// Exits the harness did not cause (a crash, a refusal to start): each is a failure.
    pub unexpected_exits: Vec<String>,
}

impl Cluster {
    pub fn new(
        bin: PathBuf,
        db_url: String,
        specs: Vec<NodeSpec>,
        log_dir: PathBuf,
        extra_env: Vec<(String, String)>,
    ) -> Cluster {
        let n = specs.len();
        Cluster {
            bin,
            db_url,
            specs,
            admin_token: "faults-admin-token".into(),
            server_key: "defaultkey".into(),
            log_dir,
            extra_env,
            children: (0..n).map(|_| None).collect(),
            unexpected_exits: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.specs[i].id))
    }

    /// Starts node `i` (its log is appended to, one header line per start).
    pub fn spawn(&mut self, i: usize) -> Result<(), String> {
        let s = self.specs[i].clone();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .map_err(|e| format!("log file: {e}"))?;
        let _ = writeln!(log, "==== serai-faults: starting {} ====", s.id);
        let mut cmd = Command::new(&self.bin);
        cmd.arg("node")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SERAI_NODE_ID", &s.id)
            .env("SERAI_DATABASE_URL", &self.db_url)
            .env("SERAI_CLIENT_ADDR", s.client.to_string())
            .env("SERAI_ADMIN_ADDR", s.admin.to_string())
            .env("SERAI_PEER_ADDR", s.peer.to_string())
            .env("SERAI_ADVERTISE_PEER_ADDR", s.advertise_peer.to_string())
            .env("SERAI_ADVERTISE_CLIENT_ADDR", s.client.to_string())
            .env("SERAI_ADMIN_TOKEN", &self.admin_token)
            .env("SERAI_SERVER_KEY", &self.server_key)
            // A loopback harness: the other secrets may stay at their built-in defaults.
            .env("SERAI_ALLOW_DEFAULT_SECRETS", "true")
            // Short timeouts so a fault is noticed (and healed) within seconds.
            .env("SERAI_HEARTBEAT_INTERVAL_MS", "200")
            .env("SERAI_MEMBERSHIP_TIMEOUT_MS", "1500")
            .env("SERAI_FLUSH_INTERVAL_MS", "50");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        self.children[i] = Some(child);
        Ok(())
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().and_then(Child::id)
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|i| self.children[*i].is_some())
            .collect()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`) with `kill(1)`.
    pub fn signal(&self, i: usize, sig: &str) -> Result<(), String> {
        let pid = self.pid(i).ok_or(format!("node {i} is not running"))?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .map_err(|e| format!("kill -{sig}: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or(format!("kill -{sig} {pid} failed"))
    }

    /// SIGKILL and reap.
    pub async fn kill(&mut self, i: usize) -> Result<(), String> {
        let mut child = self.children[i].take().ok_or("not running")?;
        child.kill().await.map_err(|e| format!("SIGKILL: {e}"))
    }

    /// Waits for node `i` to exit by itself (after a drain or SIGTERM).
    pub async fn wait_exit(&mut self, i: usize, within: Duration) -> Result<ExitStatus, String> {
        let child = self.children[i].as_mut().ok_or("not running")?;
        match tokio::time::timeout(within, child.wait()).await {
            Ok(Ok(status)) => {
                self.children[i] = None;
                Ok(status)
            }
            Ok(Err(e)) => Err(format!("wait: {e}")),
            Err(_) => Err(format!("still running {within:?} after the drain began")),
        }
    }

    /// `POST /admin/drain` (falls back to SIGTERM if the admin API does not answer).
    pub async fn drain(&mut self, i: usize) -> Result<(), String> {
        let (addr, token) = (self.specs[i].admin, self.admin_token.clone());
        match admin(addr, &token, "POST", "/admin/drain", Duration::from_secs(5)).await {
            Some((202, _)) | Some((200, _)) => Ok(()),
            other => {
                eprintln!("drain of node {i} answered {other:?}; sending SIGTERM instead");
                self.signal(i, "TERM")
            }
        }
    }

    /// Nodes that exited without the harness asking; recorded as failures.
    pub fn reap_unexpected(&mut self) {
        for i in 0..self.len() {
            if let Some(child) = self.children[i].as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.unexpected_exits
                        .push(format!("{} exited by itself: {status}", self.specs[i].id));
                    self.children[i] = None;
                }
            }
        }
    }

    /// The node ids in node `i`'s view (`None`: no answer).
    pub async fn view(&self, i: usize) -> Option<Vec<String>> {
        let addr = self.specs[i].admin;
        let timeout = Duration::from_secs(3);
        match admin(addr, &self.admin_token, "GET", "/admin/cluster", timeout).await {
            Some((200, v)) => Some(
                v["members"]
                    .as_array()?
                    .iter()
                    .filter_map(|m| m["node_id"].as_str().map(str::to_string))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Waits until every node in `live` is ready and sees exactly the nodes in `live`.
    pub async fn wait_converged(
        &self,
        live: &[usize],
        within: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        let mut want: Vec<String> = live.iter().map(|i| self.specs[*i].id.clone()).collect();
        want.sort();
        loop {
            let mut last = String::new();
            let mut ok = true;
            for &i in live {
                let ready = matches!(
                    admin(
                        self.specs[i].admin,
                        "",
                        "GET",
                        "/readyz",
                        Duration::from_secs(3)
                    )
                    .await,
                    Some((200, _))
                );
                let mut view = self.view(i).await.unwrap_or_default();
                view.sort();
                if !ready || view != want {
                    ok = false;
                    last = format!("{}: ready {ready}, view {view:?}", self.specs[i].id);
                    break;
                }
            }
            if ok {
                return Ok(start.elapsed());
            }
            if start.elapsed() > within {
                return Err(format!(
                    "the cluster did not converge on {want:?} within {within:?}; {last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `POST /admin/flush` on every running node; the nodes that refused or did not answer.
    pub async fn flush_all(&self) -> Vec<String> {
        let mut failed = Vec::new();
        for i in self.running() {
            let addr = self.specs[i].admin;
            let timeout = Duration::from_secs(35);
            match admin(addr, &self.admin_token, "POST", "/admin/flush", timeout).await {
                Some((200, _)) => {}
                other => failed.push(format!("{}: {other:?}", self.specs[i].id)),
            }
        }
        failed
    }

    /// SIGTERM to every running node (SIGCONT first, in case one is stopped); the exit statuses.
    pub async fn terminate_all(
        &mut self,
        within: Duration,
    ) -> Vec<(usize, Result<ExitStatus, String>)> {
        let running = self.running();
        for &i in &running {
            let _ = self.signal(i, "CONT");
            let _ = self.signal(i, "TERM");
        }
        let mut out = Vec::new();
        for i in running {
            let r = self.wait_exit(i, within).await;
            if r.is_err() {
                let _ = self.kill(i).await;
            }
            out.push((i, r));
        }
        out
    }
}
