//! The command line: which parts, how long, how many clients.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "serai-cluster-bench",
    about = "Cluster costs: the forwarding hop (local vs remote owner) and SIGKILL failover time"
)]
pub struct Args {
    /// Concurrent clients of the loaded hop runs (the latency runs use 1).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Measured seconds per hop run.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Unmeasured seconds before each hop run.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// SIGKILL failovers to time.
    #[arg(long, default_value_t = 3)]
    pub failovers: usize,
    #[arg(long, value_enum, default_value_t = Part::Both)]
    pub part: Part,
    /// The `serai` binary for the failover part (default: next to this executable).
    #[arg(long)]
    pub serai_bin: Option<PathBuf>,
    /// Threads of the WebSocket clients' runtime.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    Hop,
    Failover,
    Both,
}
