//! Push fan-out: `--sockets` authenticated sockets spread over the nodes, all subscribed to one
//! event; per round one update is published on node 0 and the time from `publish` to the last
//! socket's receipt is measured. Rounds are spaced by more than the coalescing gap, so each is
//! a leading edge (sent at once): what is measured is the fan-out, not the 500 ms coalescing
//! that a continuous fight adds by design.
//!
//! Baseline in the same run, on the same sockets: the same notification sent to every user
//! through the existing per-user `Notifier::push` (one peer message per user per member), and
//! a bare `echo` round trip on one socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serai::gateway::Notification;
use serai::world::fanout::{WorldFanout, MIN_GAP, SUBJECT};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::client::{Client, SERVER_KEY};
use crate::common::percentile::percentile;
use crate::common::socket::{self, Ws};
use crate::common::BoxError;
use crate::nodes::Node;

/// How long one round waits for every socket.
const ROUND_WITHIN: Duration = Duration::from_secs(10);
/// Codes of the baseline's notifications start here (the world pushes' are the round + 1).
const BASELINE_CODE: i32 = 1_000_000;

/// The figures of one way of pushing: latency to the last socket, per round (µs).
pub struct Rounds {
    pub name: &'static str,
    pub last_us: Vec<u64>,
    /// Receipts that did not arrive within [`ROUND_WITHIN`].
    pub missing: usize,
}

impl Rounds {
    pub fn p(&self, q: f64) -> f64 {
        let mut v = self.last_us.clone();
        v.sort_unstable();
        percentile(&v, q)
    }
}

/// The `"code":N` of a pushed notification frame, if it is one (no full parse: thousands of
/// receipts per round are read by this process alongside the nodes).
fn pushed_code(text: &str) -> Option<i32> {
    if !text.starts_with("{\"notifications\"") {
        return None;
    }
    let at = text.find("\"code\":")? + "\"code\":".len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Reads one socket until it closes, reporting each push's code and arrival time.
async fn read(mut ws: Ws, out: mpsc::UnboundedSender<(i32, Instant)>) {
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(t) = msg {
            if let Some(code) = pushed_code(t.as_str()) {
                if out.send((code, Instant::now())).is_err() {
                    return;
                }
            }
        }
    }
}

/// Authenticates `sockets` devices spread over `nodes` (round robin), 32 at a time; their user
/// ids and sockets.
async fn connect_all(
    nodes: &[Node],
    sockets: usize,
    run: &str,
) -> Result<Vec<(Uuid, Ws)>, BoxError> {
    let began = Instant::now();
    let mut out = Vec::with_capacity(sockets);
    let indexes: Vec<usize> = (0..sockets).collect();
    for chunk in indexes.chunks(32) {
        let batch = futures_util::future::join_all(chunk.iter().map(|&i| {
            let authority = nodes[i % nodes.len()].client_addr.to_string();
            let device = format!("world-load-{run}-{i}");
            async move { socket::connect_user(&authority, SERVER_KEY, &device).await }
        }))
        .await;
        for s in batch {
            out.push(s?);
        }
    }
    eprintln!(
        "fanout: {} sockets on {} nodes in {:.1} s",
        out.len(),
        nodes.len(),
        began.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// Waits for `n` receipts of `code`; the time of the last, and how many are missing.
async fn last_receipt(
    rx: &mut mpsc::UnboundedReceiver<(i32, Instant)>,
    code: i32,
    n: usize,
) -> (Option<Instant>, usize) {
    let deadline = tokio::time::Instant::now() + ROUND_WITHIN;
    let (mut got, mut last) = (0, None);
    while got < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((c, at))) if c == code => {
                got += 1;
                last = Some(at);
            }
            Ok(Some(_)) => {} // a late receipt of an earlier round
            Ok(None) | Err(_) => break,
        }
    }
    (last, n - got)
}

fn notification(code: i32) -> Notification {
    Notification::new(
        SUBJECT,
        code,
        &serde_json::json!({"event_id": "bench", "hp": 1_000_000 - code}),
    )
}

/// Runs the fan-out benchmark: `rounds` world pushes, then a fifth of them (at least 5)
/// through the per-user notifier, and 200 echo round trips.
pub async fn run(nodes: &[Node], sockets: usize, rounds: usize) -> Result<Vec<Rounds>, BoxError> {
    let run = Uuid::new_v4().simple().to_string()[..8].to_string();
    let connected = connect_all(nodes, sockets, &run).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut users = Vec::with_capacity(sockets);
    for (user, ws) in connected {
        users.push(user);
        tokio::spawn(read(ws, tx.clone()));
    }
    drop(tx);
    let users: Arc<[Uuid]> = users.into();
    let fanout = nodes[0].run(WorldFanout::new).await?;

    let mut world = Rounds {
        name: "world push (WorldFanout)",
        last_us: Vec::new(),
        missing: 0,
    };
    for r in 0..rounds {
        let code = r as i32 + 1;
        let n = notification(code);
        let t0 = Instant::now();
        fanout.publish("bench", n, users.clone());
        let (last, missing) = last_receipt(&mut rx, code, users.len()).await;
        world.missing += missing;
        if let Some(last) = last {
            world
                .last_us
                .push(last.duration_since(t0).as_micros() as u64);
        }
        // The next round is a leading edge again.
        tokio::time::sleep_until((t0 + MIN_GAP + Duration::from_millis(50)).into()).await;
    }

    let mut baseline = Rounds {
        name: "baseline: Notifier::push per user",
        last_us: Vec::new(),
        missing: 0,
    };
    for r in 0..(rounds / 5).max(5) {
        let code = BASELINE_CODE + r as i32;
        let n = notification(code);
        let list = users.clone();
        let t0 = Instant::now();
        nodes[0]
            .run(move |s| {
                for u in list.iter() {
                    s.notifier.push(*u, n.clone());
                }
            })
            .await?;
        let (last, missing) = last_receipt(&mut rx, code, users.len()).await;
        baseline.missing += missing;
        if let Some(last) = last {
            baseline
                .last_us
                .push(last.duration_since(t0).as_micros() as u64);
        }
    }
    let echo = echo_rounds(nodes).await?;
    Ok(vec![world, baseline, echo])
}

/// 200 bare `echo` round trips on one more socket of node 0.
async fn echo_rounds(nodes: &[Node]) -> Result<Rounds, BoxError> {
    let mut c = Client::connect(nodes[0].client_addr, "world-load-echo").await?;
    let mut echo = Rounds {
        name: "baseline: echo round trip (1 socket)",
        last_us: Vec::new(),
        missing: 0,
    };
    for _ in 0..200 {
        let t0 = Instant::now();
        c.must("echo", "{\"x\":1}").await?;
        echo.last_us.push(t0.elapsed().as_micros() as u64);
    }
    Ok(echo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_push_frames_only() {
        let frame = r#"{"notifications":{"notifications":[{"id":"x","subject":"world_event","content":"{\"code\":9}","code":42,"create_time":"2026-01-01T00:00:00Z"}]}}"#;
        assert_eq!(pushed_code(frame), Some(42));
        assert_eq!(pushed_code(r#"{"cid":"1","rpc":{"code":3}}"#), None);
    }
}
