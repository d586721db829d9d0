//! Nodes in this process, each in its own thread with its own actix System, and a way to run
//! a closure on a node's runtime with its `Services` (to make its `WorldFanout`, to push
//! through its `Notifier`): both spawn tasks that must live on that node's runtime.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serai::services::Services;
use tokio::sync::{mpsc, oneshot};

use crate::common::BoxError;

type Job = Box<dyn FnOnce(&Services) + Send>;

/// A node running in its own thread.
pub struct Node {
    pub node_id: String,
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub shutdown: serai::shutdown::Shutdown,
    pub thread: std::thread::JoinHandle<()>,
    jobs: mpsc::UnboundedSender<Job>,
    members: Box<dyn Fn() -> usize + Send + Sync>,
}

impl Node {
    /// Runs `f` on the node's runtime with its services; its answer.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Services) -> T + Send + 'static,
    ) -> Result<T, BoxError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |s: &Services| {
                let _ = tx.send(f(s));
            }))
            .map_err(|_| "the node's thread has ended")?;
        Ok(rx.await?)
    }

    /// Members in the node's view.
    pub fn members(&self) -> usize {
        (self.members)()
    }
}

/// Starts node `node_id` on the database at `url` (test configuration: free ports, fast
/// heartbeats; `tune` adjusts it).
pub fn start_node(
    url: &str,
    node_id: &str,
    tune: impl FnOnce(&mut serai::config::Config),
) -> Result<Node, BoxError> {
    let mut config = serai::config::Config::for_test(url);
    config.node_id = node_id.to_string();
    tune(&mut config);
    let shutdown = serai::shutdown::Shutdown::new();
    let stop = shutdown.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let (jobs, mut job_rx) = mpsc::unbounded_channel::<Job>();
    let thread = std::thread::Builder::new()
        .name(node_id.to_string())
        .spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                let node = match serai::node::start(config, stop).await {
                    Ok(node) => node,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let membership = node.membership.clone();
                let members = move || membership.lock().map_or(0, |m| m.members.len());
                let _ = tx.send(Ok((node.client_addr, node.admin_addr, members)));
                let services = node.services.clone();
                actix_rt::spawn(async move {
                    while let Some(job) = job_rx.recv().await {
                        job(&services);
                    }
                });
                if let Err(e) = node.wait().await {
                    eprintln!("warning: stopping the node: {e}");
                }
            });
        })?;
    let (client_addr, admin_addr, members) = rx.recv().map_err(|_| "node thread ended")??;
    Ok(Node {
        node_id: node_id.to_string(),
        client_addr,
        admin_addr,
        shutdown,
        thread,
        jobs,
        members: Box::new(members),
    })
}

/// Waits until every node sees all of them.
pub async fn wait_converged(nodes: &[Node]) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes.iter().any(|node| node.members() != nodes.len()) {
        if Instant::now() > deadline {
            return Err(format!(
                "the {} nodes did not see each other within 30 s",
                nodes.len()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Stops every node and waits for its thread.
pub fn stop_all(nodes: Vec<Node>) {
    for node in &nodes {
        node.shutdown.trigger();
    }
    for node in nodes {
        let _ = node.thread.join();
    }
}
