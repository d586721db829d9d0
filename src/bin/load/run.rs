//! A measured run: every client closed-loop (one request outstanding) through the warm-up and
//! the measured seconds, their tallies merged into the mode's report.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::args::{Args, Mix, Mode, Target, TRADE, TRADE_ID};
use crate::client::{Choices, Client};
use crate::common::socket::{exchange, rpc_frame, ErrorBody};
use crate::common::BoxError;
use crate::report::Report;
use crate::setup::setup_clients;

/// `payload`, a JSON string literal holding an object (as the frames carry it), with a
/// `request_id` field added; `request_id` is `[A-Za-z0-9_-]`, so it needs no escaping.
fn with_request_id(payload: &str, request_id: &str) -> String {
    let object = payload
        .strip_suffix("}\"")
        .expect("a payload literal holds a JSON object");
    let comma = if object.ends_with('{') { "" } else { "," };
    format!("{object}{comma}\\\"request_id\\\":\\\"{request_id}\\\"}}\"")
}

/// A trade the game refused (gold, cargo, quota, price): gRPC FailedPrecondition.
fn is_refusal(e: &ErrorBody) -> bool {
    e.context.get("grpc_code").map(String::as_str) == Some("9")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Quotes,
    Trade,
}

/// What one client measured in one mode.
#[derive(Default)]
struct Tally {
    /// Latencies in µs of the requests started inside the measured window, by kind.
    quotes_us: Vec<u32>,
    trade_us: Vec<u32>,
    errors: u64,
    refusals: u64,
    /// Characters deleted and made anew after all of a client's ran out of gold.
    replaced: u64,
    /// The first few distinct error messages.
    samples: Vec<String>,
    /// Set when the client's socket failed: it took no further part.
    dead: Option<String>,
}

impl Tally {
    fn note(&mut self, what: String) {
        if self.samples.len() < 5 && !self.samples.contains(&what) {
            self.samples.push(what);
        }
    }
}

/// Runs `client` closed-loop until `end`; records what starts at or after `measure_from`.
async fn drive(
    mut client: Client,
    choices: Choices,
    echo: bool,
    with_id: bool,
    mix: Mix,
    measure_from: Instant,
    end: Instant,
) -> (Client, Tally) {
    let mut tally = Tally::default();
    let total = mix.quotes + mix.trade;
    while Instant::now() < end {
        let kind = if client.rng.gen_range(0..total) < mix.quotes {
            Kind::Quotes
        } else {
            Kind::Trade
        };
        let ch = &client.characters[client.current];
        let buying = ch.next_side_buy;
        let (id, payload) = match kind {
            Kind::Quotes => ("get_trade_quotes", &ch.quotes_payload),
            Kind::Trade if buying => ("execute_trade", &ch.buy_payload),
            Kind::Trade => ("execute_trade", &ch.sell_payload),
        };
        let id = if echo { "echo" } else { id };
        client.next_cid += 1;
        let cid = client.next_cid;
        let frame = if with_id && kind == Kind::Trade {
            let request_id = uuid::Uuid::new_v4().simple().to_string();
            rpc_frame(cid, id, &with_request_id(payload, &request_id))
        } else {
            rpc_frame(cid, id, payload)
        };
        let started = Instant::now();
        let outcome = exchange(&mut client.ws, cid, frame)
            .await
            .map(|(_, answer)| answer);
        let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let measured = started >= measure_from && started < end;
        match outcome {
            Err(e) => {
                let e = format!("client {}: {e}", client.index);
                tally.note(e.clone());
                tally.errors += 1;
                tally.dead = Some(e);
                break;
            }
            Ok(answer) => {
                let mut broke = false;
                if kind == Kind::Trade && !echo {
                    // Alternate after a settled trade, and after a refusal too (a refused
                    // sell, for want of cargo, is followed by a buy).
                    let ch = &mut client.characters[client.current];
                    if answer.is_ok() || answer.as_ref().is_err_and(is_refusal) {
                        ch.next_side_buy = !ch.next_side_buy;
                    }
                    if let Err(e) = &answer {
                        broke = buying && is_refusal(e) && e.message.contains("gold");
                        ch.broke |= broke;
                    }
                }
                if broke {
                    match client.next_character(&choices).await {
                        Ok(replaced) => tally.replaced += replaced as u64,
                        Err(e) => {
                            let e = format!("client {}: replacing a character: {e}", client.index);
                            tally.note(e.clone());
                            tally.errors += 1;
                            tally.dead = Some(e);
                            break;
                        }
                    }
                }
                if !measured {
                    continue;
                }
                match answer {
                    Ok(()) => {}
                    Err(e) if kind == Kind::Trade && !echo && is_refusal(&e) => {
                        tally.refusals += 1;
                        tally.note(format!("refused trade: {e}"));
                    }
                    Err(e) => {
                        tally.errors += 1;
                        tally.note(format!("{id}: {e}"));
                    }
                }
                match kind {
                    Kind::Quotes => tally.quotes_us.push(micros),
                    Kind::Trade => tally.trade_us.push(micros),
                }
            }
        }
    }
    (client, tally)
}

pub async fn run_mode(
    clients: Vec<Client>,
    choices: &Choices,
    mode: &'static str,
    args: &Args,
) -> (Vec<Client>, Report) {
    let echo = mode == "echo";
    let with_id = mode == TRADE_ID;
    let n = clients.len();
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.seconds);
    eprintln!(
        "running {mode}: {n} clients, {} s warm-up + {} s measured{}",
        args.warmup,
        args.seconds,
        if echo {
            String::new()
        } else {
            format!(", mix {}", args.mix)
        }
    );
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            let (mix, choices) = (args.mix, choices.clone());
            tokio::spawn(async move {
                tokio::time::sleep_until(start.into()).await;
                drive(c, choices, echo, with_id, mix, measure_from, end).await
            })
        })
        .collect();
    let mut alive = Vec::with_capacity(n);
    let mut report = Report::new(mode, n, args.seconds as f64);
    for t in tasks {
        let (client, tally) = t.await.expect("a client task panicked");
        report.quotes.extend_from_slice(&tally.quotes_us);
        report.trade.extend_from_slice(&tally.trade_us);
        report.errors += tally.errors;
        report.refusals += tally.refusals;
        report.replaced += tally.replaced;
        report.add_samples(tally.samples);
        if tally.dead.is_some() {
            report.dead += 1;
        } else {
            alive.push(client);
        }
    }
    report.all.extend_from_slice(&report.quotes);
    report.all.extend_from_slice(&report.trade);
    report.all.sort_unstable();
    report.quotes.sort_unstable();
    report.trade.sort_unstable();
    (alive, report)
}

/// Sets the clients up and runs the modes `--mode` asks for, in order: one report per run.
pub async fn run_all(target: &Target, args: &Args) -> Result<Vec<Report>, BoxError> {
    let (mut clients, choices) = setup_clients(target, args).await?;
    let mut reports = Vec::new();
    if matches!(args.mode, Mode::Echo | Mode::Both) {
        let (alive, report) = run_mode(clients, &choices, "echo", args).await;
        clients = alive;
        reports.push(report);
    }
    if matches!(args.mode, Mode::Game | Mode::Both) {
        if clients.is_empty() {
            return Err("every client lost its socket during the echo run".into());
        }
        let (alive, report) = run_mode(clients, &choices, "game", args).await;
        clients = alive;
        reports.push(report);
    }
    if args.mode == Mode::Receipts {
        let trades = Args {
            mix: Mix {
                quotes: 0,
                trade: 1,
            },
            ..args.clone()
        };
        // Without, with, with, without: a linear drift weighs the same on both.
        for mode in [TRADE, TRADE_ID, TRADE_ID, TRADE] {
            if clients.is_empty() {
                return Err("every client lost its socket".into());
            }
            let (alive, report) = run_mode(clients, &choices, mode, &trades).await;
            clients = alive;
            reports.push(report);
        }
    }
    for mut c in clients {
        let _ = c.ws.close(None).await;
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::socket::json_string;

    #[test]
    fn request_id_joins_the_payload() {
        let payload = json_string("{\"character_id\":\"x\",\"side\":\"buy\"}");
        let frame = rpc_frame(3, "execute_trade", &with_request_id(&payload, "abc-DEF_12"));
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        let inner: serde_json::Value =
            serde_json::from_str(v["rpc"]["payload"].as_str().unwrap()).unwrap();
        assert_eq!(
            inner,
            serde_json::json!({"character_id": "x", "side": "buy", "request_id": "abc-DEF_12"})
        );
        let empty = with_request_id(&json_string("{}"), "abcdefgh");
        let inner: serde_json::Value =
            serde_json::from_str(&serde_json::from_str::<String>(&empty).unwrap()).unwrap();
        assert_eq!(inner, serde_json::json!({"request_id": "abcdefgh"}));
    }
}
