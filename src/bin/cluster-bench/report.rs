//! The tables printed for each part.

use std::time::Duration;

use crate::failover::Failover;
use crate::hop::Run;

pub fn print_hop(runs: &[Run]) {
    println!();
    println!("== hop: get_character with a local vs a remote owner (two nodes, loopback)");
    println!(
        "{:<22} {:>4} {:<6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "path", "conc", "owner", "requests", "req/s", "p50 µs", "p99 µs", "max µs", "errors"
    );
    for r in runs {
        println!(
            "{:<22} {:>4} {:<6} {:>9} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>6}",
            r.path,
            r.conc,
            r.owner,
            r.lat.len(),
            r.rate(),
            r.pct_us(50.0),
            r.pct_us(99.0),
            r.pct_us(100.0),
            r.errors
        );
    }
    println!();
    println!(
        "{:<22} {:>4} {:>13} {:>13} {:>14} {:>14} {:>14}",
        "added hop", "conc", "Δp50 µs", "Δp99 µs", "p50 rem/loc", "p99 rem/loc", "req/s rem/loc"
    );
    for pair in runs.chunks(2) {
        let [l, r] = pair else { continue };
        let d50 = r.pct_us(50.0) - l.pct_us(50.0);
        println!(
            "{:<22} {:>4} {:>13.1} {:>13.1} {:>14.2} {:>14.2} {:>14.2}{}",
            l.path,
            l.conc,
            d50,
            r.pct_us(99.0) - l.pct_us(99.0),
            r.pct_us(50.0) / l.pct_us(50.0),
            r.pct_us(99.0) / l.pct_us(99.0),
            r.rate() / l.rate(),
            if l.conc == 1 {
                if d50 <= 200.0 {
                    "   (target p50 ≤ 200 µs: met)"
                } else {
                    "   (target p50 ≤ 200 µs: MISSED)"
                }
            } else {
                ""
            }
        );
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.3}", d.as_secs_f64()))
}

pub fn print_failover(runs: &[Failover]) {
    println!(
        "{:<4} {:<9} {:>16} {:>16} {:>15} {:>15} {:>7}  errors after the kill",
        "run",
        "moved to",
        "kill→view n0 s",
        "kill→view n1 s",
        "kill→first ok s",
        "view n0→ok s",
        "errors"
    );
    for (i, f) in runs.iter().enumerate() {
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for e in &f.errors {
            match kinds.iter_mut().find(|(k, _)| k == e) {
                Some((_, n)) => *n += 1,
                None => kinds.push((e.clone(), 1)),
            }
        }
        println!(
            "{:<4} {:<9} {:>16} {:>16} {:>15.3} {:>15} {:>7}  {}",
            i + 1,
            f.moved_to,
            secs(f.view[0]),
            secs(f.view[1]),
            f.first_ok.as_secs_f64(),
            f.view[0].map_or("-".into(), |v| format!(
                "{:.3}",
                f.first_ok.as_secs_f64() - v.as_secs_f64()
            )),
            f.errors.len(),
            kinds
                .iter()
                .map(|(k, n)| format!("{n}× {k}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let mut firsts: Vec<Duration> = runs.iter().map(|f| f.first_ok).collect();
    firsts.sort();
    if let Some(median) = firsts.get(firsts.len() / 2) {
        let view_median = {
            let mut v: Vec<Duration> = runs.iter().filter_map(|f| f.view[0]).collect();
            v.sort();
            v.get(v.len() / 2).copied()
        };
        println!(
            "median kill→first ok: {:.3} s (target ≤ 5 s: {}); median kill→view on node 0: {} s; \
             first ok / view: {}",
            median.as_secs_f64(),
            if median.as_secs_f64() <= 5.0 {
                "met"
            } else {
                "MISSED"
            },
            secs(view_median),
            view_median.map_or("-".into(), |v| format!(
                "{:.2}",
                median.as_secs_f64() / v.as_secs_f64()
            ))
        );
    }
}
