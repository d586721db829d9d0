//! The figures of a mode, its runs merged, and the tables and verdicts printed at the end.

use crate::args::{Args, Mode, TRADE, TRADE_ID};
use crate::common::percentile::percentile;

/// The merged figures of one mode.
pub struct Report {
    pub mode: &'static str,
    pub clients: usize,
    pub seconds: f64,
    pub all: Vec<u32>,
    pub quotes: Vec<u32>,
    pub trade: Vec<u32>,
    pub errors: u64,
    pub refusals: u64,
    pub replaced: u64,
    pub samples: Vec<String>,
    pub dead: usize,
}

impl Report {
    pub fn new(mode: &'static str, clients: usize, seconds: f64) -> Report {
        Report {
            mode,
            clients,
            seconds,
            all: Vec::new(),
            quotes: Vec::new(),
            trade: Vec::new(),
            errors: 0,
            refusals: 0,
            replaced: 0,
            samples: Vec::new(),
            dead: 0,
        }
    }

    pub fn rate(&self) -> f64 {
        self.all.len() as f64 / self.seconds
    }

    /// Adds another run of the same mode: its requests, seconds and counts.
    pub fn absorb(&mut self, other: Report) {
        for (mine, theirs) in [
            (&mut self.all, other.all),
            (&mut self.quotes, other.quotes),
            (&mut self.trade, other.trade),
        ] {
            mine.extend_from_slice(&theirs);
            mine.sort_unstable();
        }
        self.seconds += other.seconds;
        self.errors += other.errors;
        self.refusals += other.refusals;
        self.replaced += other.replaced;
        self.dead += other.dead;
        self.add_samples(other.samples);
    }

    /// Keeps the first 8 distinct error samples.
    pub fn add_samples(&mut self, samples: Vec<String>) {
        for s in samples {
            if self.samples.len() < 8 && !self.samples.contains(&s) {
                self.samples.push(s);
            }
        }
    }
}

/// One report per mode, in the order of their first run: the runs of a mode absorbed.
pub fn merge_runs(runs: Vec<Report>) -> Vec<Report> {
    let mut merged: Vec<Report> = Vec::new();
    for r in runs {
        match merged.iter_mut().find(|m| m.mode == r.mode) {
            Some(m) => m.absorb(r),
            None => merged.push(r),
        }
    }
    merged
}

/// The verdict of `--mode receipts`: throughput with `request_id` as a share of without it.
pub fn receipts_summary(without: &Report, with: &Report) -> String {
    let ratio = with.rate() / without.rate();
    format!(
        "receipts: {TRADE_ID}/{TRADE} ratio {:.1} %, cost {:.1} % (target < 10 %): {:.0} vs {:.0} req/s, \
         p50 {:.3} vs {:.3} ms, p99 {:.3} vs {:.3} ms (with vs without request_id)",
        100.0 * ratio,
        100.0 * (1.0 - ratio),
        with.rate(),
        without.rate(),
        percentile(&with.trade, 50.0),
        percentile(&without.trade, 50.0),
        percentile(&with.trade, 99.0),
        percentile(&without.trade, 99.0),
    )
}

pub fn print_table(reports: &[Report]) {
    println!();
    println!(
        "{:<8} {:>7} {:>7} {:>9} {:>10} {:>9} {:>9} {:>9} {:>7} {:>8}",
        "mode",
        "clients",
        "seconds",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "refusals"
    );
    for r in reports {
        println!(
            "{:<8} {:>7} {:>7} {:>9} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>8}",
            r.mode,
            r.clients,
            r.seconds,
            r.all.len(),
            r.rate(),
            percentile(&r.all, 50.0),
            percentile(&r.all, 99.0),
            percentile(&r.all, 100.0),
            r.errors,
            r.refusals
        );
    }
    // Per RPC (the echo run sends the same payloads, so its split is the same mix).
    println!();
    println!(
        "{:<8} {:<17} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "mode", "payload", "requests", "req/s", "p50 ms", "p99 ms", "max ms"
    );
    for r in reports {
        for (name, v) in [("get_trade_quotes", &r.quotes), ("execute_trade", &r.trade)] {
            if v.is_empty() {
                continue;
            }
            println!(
                "{:<8} {:<17} {:>9} {:>10.0} {:>9.3} {:>9.3} {:>9.3}",
                r.mode,
                name,
                v.len(),
                v.len() as f64 / r.seconds,
                percentile(v, 50.0),
                percentile(v, 99.0),
                percentile(v, 100.0)
            );
        }
    }
    for r in reports {
        if r.replaced > 0 {
            println!(
                "{}: {} character(s) replaced (deleted and made anew, unmeasured) after running out of gold",
                r.mode, r.replaced
            );
        }
        if r.dead > 0 {
            println!("{}: {} client(s) lost their socket", r.mode, r.dead);
        }
        for s in &r.samples {
            println!("{}: {s}", r.mode);
        }
    }
}

/// Everything printed at the end: the runs in order (`--mode receipts`), the table of each
/// mode, the game/echo ratio and the receipts' verdict.
pub fn print_results(args: &Args, reports: Vec<Report>) {
    if args.mode == Mode::Receipts {
        println!();
        println!(
            "runs (req/s, in order): {}",
            reports
                .iter()
                .map(|r| format!("{} {:.0}", r.mode, r.rate()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let reports = merge_runs(reports);
    print_table(&reports);
    let rate = |m: &str| reports.iter().find(|r| r.mode == m).map(Report::rate);
    if let (Some(echo), Some(game)) = (rate("echo"), rate("game")) {
        println!();
        println!(
            "game/echo ratio: {:.1} % (mix {}, {} clients)",
            100.0 * game / echo,
            args.mix,
            args.clients
        );
    }
    let find = |m: &str| reports.iter().find(|r| r.mode == m);
    if let (Some(without), Some(with)) = (find(TRADE), find(TRADE_ID)) {
        println!();
        println!("{}", receipts_summary(without, with));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_a_mode_merge() {
        let run = |mode, micros: &[u32], errors| {
            let mut r = Report::new(mode, 4, 10.0);
            r.trade = micros.to_vec();
            r.all = micros.to_vec();
            r.errors = errors;
            r.samples.push(format!("{mode} sample"));
            r
        };
        let merged = merge_runs(vec![
            run(TRADE, &[3000, 1000], 1),
            run(TRADE_ID, &[2000; 3], 0),
            run(TRADE_ID, &[4000], 2),
            run(TRADE, &[2000, 5000], 0),
        ]);
        assert_eq!(merged.len(), 2);
        let (without, with) = (&merged[0], &merged[1]);
        assert_eq!((without.mode, with.mode), (TRADE, TRADE_ID));
        assert_eq!(without.all, [1000, 2000, 3000, 5000]);
        assert_eq!(without.trade, [1000, 2000, 3000, 5000]);
        assert_eq!((without.seconds, without.errors), (20.0, 1));
        assert_eq!((with.seconds, with.errors, with.rate()), (20.0, 2, 0.2));
        assert_eq!(without.samples, ["trade sample"]);
        let line = receipts_summary(without, with);
        assert!(line.contains("ratio 100.0 %, cost 0.0 %"), "{line}");
        assert!(
            line.contains("p50 2.000 vs 2.000 ms, p99 4.000 vs 5.000 ms"),
            "{line}"
        );
    }
}
