//! The fault schedule: which faults, in which order, for how long, and how the harness knows
//! each one is over (views converged, every client answered again) before the next begins.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::load::Progress;
use super::proxy::{DbProxy, PeerProxies};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Kill,
    Stop,
    Drain,
    DbStop,
    Partition,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Kill,
        Fault::Stop,
        Fault::Drain,
        Fault::DbStop,
        Fault::Partition,
    ];

    pub fn parse(s: &str) -> Result<Fault, String> {
        Ok(match s.trim() {
            "kill" => Fault::Kill,
            "stop" => Fault::Stop,
            "drain" => Fault::Drain,
            "dbstop" => Fault::DbStop,
            "partition" => Fault::Partition,
            other => {
                return Err(format!(
                    "unknown fault {other:?} (kill, stop, drain, dbstop, partition)"
                ))
            }
        })
    }
}

/// How long things last. The full profile follows the issues (10 s SIGSTOP, 30 s database
/// stop, a rolling drain of every node); the short one fits a CI job.
#[derive(Debug, Clone)]
pub struct Profile {
    pub warmup: Duration,
    /// Load between faults, once the previous fault has healed.
    pub settle: Duration,
    /// How long a SIGSTOPped node stays stopped: past the server's request deadline (5 s).
    pub stop_for: Duration,
    pub dbstop_for: Duration,
    pub partition_for: Duration,
    /// Drain every node in turn (else only the first).
    pub rolling_drain: bool,
    /// Bound on "the cluster converged" and "every client answered again" after a fault.
    pub recover_within: Duration,
}

impl Profile {
    pub fn full() -> Profile {
        Profile {
            warmup: Duration::from_secs(5),
            settle: Duration::from_secs(5),
            stop_for: Duration::from_secs(10),
            dbstop_for: Duration::from_secs(30),
            partition_for: Duration::from_secs(10),
            rolling_drain: true,
            recover_within: Duration::from_secs(60),
        }
    }

    pub fn short() -> Profile {
        Profile {
            warmup: Duration::from_secs(3),
            settle: Duration::from_secs(3),
            stop_for: Duration::from_secs(7),
            dbstop_for: Duration::from_secs(10),
            partition_for: Duration::from_secs(5),
            rolling_drain: false,
            recover_within: Duration::from_secs(45),
        }
    }
}

/// What the schedule touches, and what it notes down.
pub struct Schedule<'a> {
    pub cluster: &'a mut Cluster,
    pub db_proxy: Option<&'a DbProxy>,
    pub peers: &'a PeerProxies,
    pub progress: Arc<Progress>,
    pub profile: Profile,
    /// (offset from the start of the load, what happened)
    pub timeline: Vec<(Duration, String)>,
    /// Things that must not happen: a drain not exiting 0, a node dying, no convergence.
    pub failures: Vec<String>,
}

impl Schedule<'_> {
    pub fn note(&mut self, what: impl Into<String>) {
        let at = self.progress.started.elapsed();
        let what = what.into();
        println!("  +{:6.1} s  {what}", at.as_secs_f64());
        self.timeline.push((at, what));
    }

    fn all(&self) -> Vec<usize> {
        (0..self.cluster.len()).collect()
    }

    /// Restarts any node that died without being asked to (recorded as a failure).
    pub async fn revive(&mut self) {
        self.cluster.reap_unexpected();
        let exits: Vec<String> = self.cluster.unexpected_exits.drain(..).collect();
        for e in exits {
            self.note(format!("UNEXPECTED: {e}"));
            self.failures.push(e);
        }
        for i in self.all() {
            if !self.cluster.running().contains(&i) {
                if let Err(e) = self.cluster.spawn(i) {
                    self.failures.push(e);
                }
            }
        }
    }

    async fn converge(&mut self, live: &[usize], what: &str) {
        match self
            .cluster
            .wait_converged(live, self.profile.recover_within)
            .await
        {
            Ok(took) => self.note(format!("{what} ({:.1} s)", took.as_secs_f64())),
            Err(e) => {
                self.note(format!("FAILED: {e}"));
                self.failures.push(format!("{what}: {e}"));
            }
        }
    }

    /// After a fault healed at `since`: every client must get a final answer again.
    async fn clients_answer(&mut self, since: Instant) {
        let within = self.profile.recover_within;
        let behind = self.progress.wait_all_answered_since(since, within).await;
        let took = since.elapsed().as_secs_f64();
        if behind.is_empty() {
            self.note(format!(
                "every client answered again ({took:.1} s after healing)"
            ));
        } else {
            self.note(format!(
                "clients {behind:?} still without an answer {} s after healing",
                within.as_secs()
            ));
        }
    }

    /// A learning wave right before a fault (see [`Progress::learning_wave`]).
    async fn learning_wave(&mut self) {
        let n = self.progress.last_final.lock().unwrap().len();
        let answered = self.progress.learning_wave(Duration::from_secs(10)).await;
        self.note(format!(
            "learning wave: {answered}/{n} clients got their learn_skill answered"
        ));
    }

    pub async fn run(&mut self, faults: &[Fault]) {
        self.note(format!("load running; warm-up {:?}", self.profile.warmup));
        tokio::time::sleep(self.profile.warmup).await;
        for fault in faults {
            self.revive().await;
            match fault {
                Fault::Kill => self.kill().await,
                Fault::Stop => self.stop().await,
                Fault::Drain => self.drain().await,
                Fault::DbStop => self.dbstop().await,
                Fault::Partition => self.partition().await,
            }
            tokio::time::sleep(self.profile.settle).await;
        }
        self.revive().await;
        self.note("schedule done; stopping the load");
    }

    async fn kill(&mut self) {
        let victim = self.cluster.len() - 1;
        let id = self.cluster.specs[victim].id.clone();
        self.learning_wave().await;
        self.note(format!("SIGKILL {id}"));
        if let Err(e) = self.cluster.kill(victim).await {
            self.failures.push(format!("SIGKILL {id}: {e}"));
        }
        let others: Vec<usize> = self.all().into_iter().filter(|i| *i != victim).collect();
        self.converge(&others, &format!("the others dropped {id} from their view"))
            .await;
        if let Err(e) = self.cluster.spawn(victim) {
            self.failures.push(e);
        }
        self.note(format!("restarted {id}"));
        let healed = Instant::now();
        self.converge(&self.all(), "all nodes ready, views agree")
            .await;
        self.clients_answer(healed).await;
    }

    async fn stop(&mut self) {
        let victim = 1 % self.cluster.len();
        let id = self.cluster.specs[victim].id.clone();
        self.learning_wave().await;
        self.note(format!("SIGSTOP {id} for {:?}", self.profile.stop_for));
        if let Err(e) = self.cluster.signal(victim, "STOP") {
            self.failures.push(e);
        }
        tokio::time::sleep(self.profile.stop_for).await;
        if let Err(e) = self.cluster.signal(victim, "CONT") {
            self.failures.push(e);
        }
        self.note(format!("SIGCONT {id}"));
        let healed = Instant::now();
        self.converge(&self.all(), "all nodes ready, views agree")
            .await;
        self.clients_answer(healed).await;
    }

    async fn drain(&mut self) {
        let victims: Vec<usize> = if self.profile.rolling_drain {
            self.all()
        } else {
            vec![0]
        };
        for victim in victims {
            let id = self.cluster.specs[victim].id.clone();
            self.learning_wave().await;
            self.note(format!("drain {id} (POST /admin/drain)"));
            let began = Instant::now();
            if let Err(e) = self.cluster.drain(victim).await {
                self.failures.push(format!("drain {id}: {e}"));
            }
            match self
                .cluster
                .wait_exit(victim, Duration::from_secs(60))
                .await
            {
                Ok(status) if status.success() => self.note(format!(
                    "{id} exited 0, {:.1} s after the drain began",
                    began.elapsed().as_secs_f64()
                )),
                Ok(status) => {
                    self.note(format!("{id} exited with {status}"));
                    self.failures
                        .push(format!("drained {id} exited with {status}"));
                }
                Err(e) => {
                    self.note(format!("{id}: {e}; SIGKILL"));
                    self.failures.push(format!("drain {id}: {e}"));
                    let _ = self.cluster.kill(victim).await;
                }
            }
            if let Err(e) = self.cluster.spawn(victim) {
                self.failures.push(e);
            }
            self.note(format!("restarted {id}"));
            let healed = Instant::now();
            self.converge(&self.all(), "all nodes ready, views agree")
                .await;
            self.clients_answer(healed).await;
        }
    }

    async fn dbstop(&mut self) {
        let Some(proxy) = self.db_proxy else {
            self.note("dbstop SKIPPED: the database is not reached over TCP, so no proxy");
            return;
        };
        self.learning_wave().await;
        self.note(format!(
            "database down for {:?} (proxy closed: sessions cut, connections refused)",
            self.profile.dbstop_for
        ));
        proxy.down();
        tokio::time::sleep(self.profile.dbstop_for).await;
        if let Err(e) = proxy.up().await {
            self.failures
                .push(format!("reopening the database proxy: {e}"));
        }
        self.note("database back");
        let healed = Instant::now();
        self.revive().await; // a node may have given up on its database and exited
        self.converge(&self.all(), "all nodes ready, views agree")
            .await;
        self.clients_answer(healed).await;
    }

    async fn partition(&mut self) {
        let victim = 0;
        let id = self.cluster.specs[victim].id.clone();
        self.learning_wave().await;
        self.note(format!(
            "peer links of {id} blackholed for {:?} (its database stays reachable)",
            self.profile.partition_for
        ));
        self.peers.partition(Some(victim));
        tokio::time::sleep(self.profile.partition_for).await;
        self.peers.partition(None);
        self.note(format!("peer links of {id} restored"));
        let healed = Instant::now();
        self.converge(&self.all(), "all nodes ready, views agree")
            .await;
        self.clients_answer(healed).await;
    }
}
