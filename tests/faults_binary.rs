//! The fault campaign's CI profile (`serai-faults --short`, see `scripts/faults.sh`): the real
//! binary as three nodes on a fresh database, 30 clients trading with `request_id`s and
//! retrying every non-final answer, one SIGKILL, one SIGSTOP longer than the request deadline
//! and one drain; the checker must say PASS (every request answered, gold, cargo, goods and
//! skills exactly as acknowledged, live state equal to the database).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The short profile takes about a minute; past this something hangs.
const LIMIT: Duration = Duration::from_secs(170);

#[test]
fn short_fault_campaign_passes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_serai-faults"))
        .args(["--short", "--serai-bin", env!("CARGO_BIN_EXE_serai")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start serai-faults");
    // Read stdout on a thread so a full pipe never blocks the campaign.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for serai-faults") {
            break Some(status);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = reader.join().expect("stdout reader");
    println!("{out}");
    let status = status.unwrap_or_else(|| panic!("serai-faults still running after {LIMIT:?}"));
    assert!(
        status.success() && out.contains("RESULT: PASS"),
        "the fault campaign failed ({status}); its report is above"
    );
}
