//! The real `serai` binary as child processes (the failover part), and their admin view of
//! the cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{http, BoxError};

pub const ADMIN_TOKEN: &str = "cluster-bench-admin-token";

pub struct Proc {
    pub child: Child,
    pub client: SocketAddr,
    pub admin: SocketAddr,
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

pub fn spawn_node(bin: &PathBuf, url: &str, i: usize) -> Result<Proc, BoxError> {
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
        // A loopback bench whose clients use the built-in server key.
        .env("SERAI_ALLOW_DEFAULT_SECRETS", "true")
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
pub async fn members(admin: SocketAddr) -> Vec<String> {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    match http::request(
        &admin.to_string(),
        "GET",
        "/admin/cluster",
        &[("Authorization", auth)],
        "",
        Duration::from_secs(10),
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

pub async fn wait_members(procs: &[&Proc], n: usize, within: Duration) -> Result<(), BoxError> {
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
