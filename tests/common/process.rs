//! The real `serai` binary as a child process of a test: `serai node` on spare loopback ports
//! with fast heartbeats, its log in the temp directory, SIGKILLed when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::node::free_port;

pub struct NodeProcess {
    pub child: Child,
    pub client: SocketAddr,
    pub admin: SocketAddr,
    /// Its standard error (the node's log).
    pub log: PathBuf,
}

impl NodeProcess {
    /// Starts `node-{i}` on `url` with `admin_token`; `env` adds or overrides `SERAI_*`
    /// settings; `tag` names the log file.
    pub fn spawn(
        url: &str,
        i: usize,
        admin_token: &str,
        tag: &str,
        env: &[(&str, &str)],
    ) -> NodeProcess {
        let (client, admin, peer) = (free_port(), free_port(), free_port());
        let log = std::env::temp_dir().join(format!("serai-{tag}-node-{i}-{client}.log"));
        let err = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_serai"));
        command
            .arg("node")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SERAI_NODE_ID", format!("node-{i}"))
            .env("SERAI_DATABASE_URL", url)
            .env("SERAI_CLIENT_ADDR", format!("127.0.0.1:{client}"))
            .env("SERAI_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
            .env("SERAI_PEER_ADDR", format!("127.0.0.1:{peer}"))
            .env("SERAI_ADMIN_TOKEN", admin_token)
            // The clients of the tests use the built-in server and HTTP keys.
            .env("SERAI_ALLOW_DEFAULT_SECRETS", "true")
            .env("SERAI_HEARTBEAT_INTERVAL_MS", "200")
            .env("SERAI_MEMBERSHIP_TIMEOUT_MS", "1500")
            .env("SERAI_FLUSH_INTERVAL_MS", "50");
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn serai node");
        NodeProcess {
            child,
            client: format!("127.0.0.1:{client}").parse().unwrap(),
            admin: format!("127.0.0.1:{admin}").parse().unwrap(),
            log,
        }
    }
}

impl NodeProcess {
    /// How many members this node's view holds (0 while its admin port does not answer).
    pub async fn members(&self, admin_token: &str) -> usize {
        let auth = format!("Bearer {admin_token}");
        match super::raw::http(self.admin, "GET", "/admin/cluster", &auth, "").await {
            Some((200, v)) => v["members"].as_array().map_or(0, Vec::len),
            _ => 0,
        }
    }

    /// Waits until every node of `procs` sees `n` members.
    pub async fn wait_members(
        procs: &[&NodeProcess],
        admin_token: &str,
        n: usize,
        within: Duration,
    ) {
        let what = format!("views to converge to {n} members");
        super::wait_until(&what, within, async || {
            for p in procs {
                if p.members(admin_token).await != n {
                    return false;
                }
            }
            true
        })
        .await;
    }

    /// Starts `n` nodes on `url` (as [`NodeProcess::spawn`] without extra settings) and waits
    /// until each sees all `n`. Each is an `Option` so a test can kill one and keep the rest.
    pub async fn start_cluster(
        url: &str,
        n: usize,
        admin_token: &str,
        tag: &str,
    ) -> Vec<Option<NodeProcess>> {
        let procs: Vec<Option<NodeProcess>> = (0..n)
            .map(|i| Some(NodeProcess::spawn(url, i, admin_token, tag, &[])))
            .collect();
        let live: Vec<&NodeProcess> = procs.iter().flatten().collect();
        NodeProcess::wait_members(&live, admin_token, n, Duration::from_secs(30)).await;
        procs
    }

    /// Everything the node has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
