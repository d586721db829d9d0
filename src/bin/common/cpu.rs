//! CPU time per operation over a measured period, from Linux's `/proc`: the whole machine's
//! (every process: the node, the load generator, PostgreSQL) and this process's alone.
//!
//! On a machine where the node, the load generator and the database share the cores, the
//! machine's CPU time per operation bounds the rate: `cores × 1 s / (CPU per operation)` is
//! the most any run can reach there, whatever the batching. The benchmarks print it beside
//! the rates so that a ratio short of its target says whether it is short of CPU or of
//! something else. Elsewhere than Linux nothing is measured.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// `/proc/stat` and `/proc/self/stat` count in clock ticks of 1/100 s (Linux's USER_HZ).
const TICK_US: f64 = 10_000.0;

#[derive(Clone, Copy)]
struct Sample {
    /// Ticks every core spent busy (user, nice, system, irq, softirq, steal).
    machine: u64,
    /// Ticks this process spent (user and system).
    process: u64,
}

fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let machine = f
        .get(..8)?
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4);
    let machine = machine.map(|(_, v)| v).sum();
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may hold spaces: state is field 3, utime 14.
    let rest: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
    let process = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some(Sample { machine, process })
}

/// CPU time per operation over a measured period.
#[derive(Clone, Copy)]
pub struct PerOp {
    /// Microseconds of CPU, all processes, per operation.
    pub machine_us: f64,
    /// Microseconds of CPU of this process per operation.
    pub process_us: f64,
}

impl PerOp {
    /// The most operations per second this machine's cores could do at this cost.
    pub fn cpu_bound_rate(&self) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores as f64 * 1e6 / self.machine_us
    }
}

/// Measures from `warmup` from now (the start of a benchmark's measured period) until
/// [`Meter::per_op`]. Needs a `LocalSet`.
pub struct Meter {
    start: Rc<Cell<Option<Sample>>>,
}

impl Meter {
    pub fn after(warmup: Duration) -> Meter {
        let start = Rc::new(Cell::new(None));
        let set = start.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(warmup).await;
            set.set(sample());
        });
        Meter { start }
    }

    /// CPU per operation for `ops` operations done since the measured period began.
    pub fn per_op(&self, ops: f64) -> Option<PerOp> {
        let (start, end) = (self.start.get()?, sample()?);
        if ops <= 0.0 {
            return None;
        }
        Some(PerOp {
            machine_us: end.machine.saturating_sub(start.machine) as f64 * TICK_US / ops,
            process_us: end.process.saturating_sub(start.process) as f64 * TICK_US / ops,
        })
    }
}
