//! `TestCluster`: several real nodes in one test process, on one fresh database, each with
//! its own listeners and peer link, joined through the heartbeat table.

use std::time::{Duration, Instant};

use serai::config::Config;
use serai::localdb::TestDatabase;
use serai::node::RunningNode;
use serai::shutdown::Shutdown;

pub struct TestCluster {
    pub db: TestDatabase,
    pub nodes: Vec<Option<RunningNode>>,
}

impl TestCluster {
    /// Starts `n` nodes named `node-0` … with fast heartbeats; `tune` adjusts each config.
    pub async fn start(n: usize, tune: impl Fn(usize, &mut Config)) -> TestCluster {
        let db = TestDatabase::create().await.expect("test database");
        TestCluster::start_on(db, n, tune).await
    }

    /// [`TestCluster::start`] on a database the caller prepared (setup SQL run before the
    /// nodes load the catalog, a proxy in front of it for some nodes, …).
    pub async fn start_on(
        db: TestDatabase,
        n: usize,
        tune: impl Fn(usize, &mut Config),
    ) -> TestCluster {
        let mut nodes = Vec::new();
        for i in 0..n {
            nodes.push(Some(start_node(&db.url, i, &tune).await));
        }
        let cluster = TestCluster { db, nodes };
        cluster.wait_converged(n, Duration::from_secs(10)).await;
        cluster
    }

    pub fn node(&self, i: usize) -> &RunningNode {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Members in node `i`'s current view.
    pub fn view_of(&self, i: usize) -> Vec<String> {
        let status = self.node(i).membership.lock().unwrap().clone();
        status
            .members
            .iter()
            .map(|(m, _)| m.node_id.clone())
            .collect()
    }

    /// Waits until every running node sees exactly the running nodes (`expected` of them).
    pub async fn wait_converged(&self, expected: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let running: Vec<usize> = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].is_some())
                .collect();
            let all = running.iter().all(|i| self.view_of(*i).len() == expected);
            if all {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "views did not converge: {:?}",
                running.iter().map(|i| self.view_of(*i)).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Drains node `i` (as SIGTERM would).
    pub async fn stop(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.stop().await.expect("stop");
        }
    }

    /// Restarts node `i` with the same id.
    pub async fn restart(&mut self, i: usize, tune: impl Fn(usize, &mut Config)) {
        self.stop(i).await;
        self.nodes[i] = Some(start_node(&self.db.url, i, &tune).await);
    }

    /// Starts one more node (`node-N`, N its index) and waits until every node sees it.
    pub async fn add(&mut self, tune: impl Fn(usize, &mut Config)) -> usize {
        let i = self.nodes.len();
        self.nodes
            .push(Some(start_node(&self.db.url, i, &tune).await));
        let running = self.nodes.iter().filter(|n| n.is_some()).count();
        self.wait_converged(running, Duration::from_secs(10)).await;
        i
    }

    pub async fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
    }
}

async fn start_node(url: &str, i: usize, tune: &impl Fn(usize, &mut Config)) -> RunningNode {
    let mut config = Config::for_test(url);
    config.node_id = format!("node-{i}");
    tune(i, &mut config);
    serai::node::start(config, Shutdown::new())
        .await
        .expect("node starts")
}
