//! `serai-load`: a closed-loop load generator for the realtime socket.
//!
//! N clients each authenticate by device id over HTTP, open `/ws?token=…`, create a character
//! over the socket, then keep exactly one RPC outstanding for T seconds: a weighted mix of
//! `get_trade_quotes` and `execute_trade` (buy 1 / sell 1 of the cheapest good at the
//! character's node, alternating, so gold and quota never run out). The same clients first run
//! against the built-in `echo` RPC with the very same payloads: that is the ceiling of the
//! stack (socket, envelope decoding, registry, actor, outbox), and the game figure is reported
//! as a ratio of it.
//!
//! `--mode receipts` measures what an idempotency receipt costs (issue 9): trades only, each
//! client alternating between plain `execute_trade` and `execute_trade` with a fresh
//! `request_id` (a UUID, as docs/rpc.md recommends) in the order without, with, with, without,
//! so that a linear drift weighs the same on both; it prints both throughputs and their ratio.
//!
//! Without `--url` a node is started in this process on a fresh throwaway database
//! (`serai::localdb`), with default configuration but free ports, and stopped at the end.
//!
//! ```text
//! cargo run --release --bin serai-load -- --clients 32 --seconds 10 --mix quotes=80,trade=20
//! cargo run --release --bin serai-load -- --clients 16 --seconds 10 --mode receipts
//! ```

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "serai-load",
    about = "Closed-loop WebSocket load: game RPCs against the bare echo RPC of the same stack"
)]
struct Args {
    /// Client address of a running node (`http://127.0.0.1:7350` or `127.0.0.1:7350`).
    /// Without it, a node is started in this process on a fresh local database.
    #[arg(long)]
    url: Option<String>,
    /// Concurrent WebSocket clients, each with one request outstanding.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Measured seconds per mode.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unmeasured seconds before each mode (activations, caches, connection warm-up).
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Weights of the game RPCs, e.g. `quotes=80,trade=20` (`quotes=100`: in-memory only).
    #[arg(long, default_value = "quotes=80,trade=20")]
    mix: Mix,
    /// Nakama server key, sent as `Basic base64(key:)` to authenticate.
    #[arg(long, default_value = "defaultkey")]
    server_key: String,
    /// `echo`: bare echo RPC only; `game`: game RPCs only; `both`: echo (the baseline), then
    /// game, then the ratio; `receipts`: `execute_trade` only (`--mix` is ignored), without and
    /// with a fresh `request_id` per trade, twice each (without, with, with, without), then the
    /// ratio with/without: the cost of the receipt.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Characters per client (1–8, the per-account limit). Trades rotate to the next one when
    /// a character runs out of gold; when all have, one is deleted and made anew.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=8))]
    characters: u8,
    /// Threads of the clients' runtime (default: available cores).
    #[arg(long)]
    client_threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Game,
    Echo,
    Both,
    Receipts,
}

/// The two runs of `--mode receipts`: plain trades, and trades with a `request_id`.
const TRADE: &str = "trade";
const TRADE_ID: &str = "trade+id";

/// Relative weights of the two game RPCs.
#[derive(Debug, Clone, Copy)]
struct Mix {
    quotes: u32,
    trade: u32,
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Mix, String> {
        let mut mix = Mix {
            quotes: 0,
            trade: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected name=weight"))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: weight must be a non-negative integer"))?;
            match name.trim() {
                "quotes" | "get_trade_quotes" => mix.quotes = weight,
                "trade" | "execute_trade" => mix.trade = weight,
                other => return Err(format!("unknown RPC `{other}` (use quotes, trade)")),
            }
        }
        if mix.quotes == 0 && mix.trade == 0 {
            return Err("at least one weight must be positive".into());
        }
        Ok(mix)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "quotes={},trade={}", self.quotes, self.trade)
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the node listens.
#[derive(Debug, Clone)]
struct Target {
    /// `host:port`.
    authority: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let rest = url.trim();
        let rest = if let Some(r) = rest.strip_prefix("http://") {
            r
        } else if let Some(r) = rest.strip_prefix("ws://") {
            r
        } else if rest.starts_with("https://") || rest.starts_with("wss://") {
            return Err("TLS is not supported: give the plain http:// client address".into());
        } else {
            rest
        };
        let authority = rest.split('/').next().unwrap_or("").to_string();
        if authority.is_empty() {
            return Err(format!("`{url}`: no host"));
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority
        } else {
            format!("{authority}:80")
        };
        Ok(Target { authority })
    }
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client (one request per connection), enough for authentication.

async fn http_post(
    target: &Target,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Result<(u16, String), BoxError> {
    let mut stream = TcpStream::connect(&target.authority).await?;
    stream.set_nodelay(true)?;
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        target.authority,
        body.len()
    );
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed HTTP status line")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> Result<String, BoxError> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").ok_or("malformed chunk")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).ok_or("short chunk")?);
        s = rest.get(size + 2..).ok_or("short chunk")?;
    }
}

// ---------------------------------------------------------------------------------------------
// Socket envelopes.

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    rpc: Option<RpcBody>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct RpcBody {
    #[serde(default)]
    payload: String,
}

/// The load loop only needs to know which kind of answer came back.
#[derive(Deserialize)]
struct LightEnvelope<'a> {
    #[serde(borrow, default)]
    cid: Option<Cow<'a, str>>,
    #[serde(default)]
    rpc: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize, Debug, Clone)]
struct ErrorBody {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    message: String,
    #[serde(default)]
    context: std::collections::HashMap<String, String>,
}

impl ErrorBody {
    /// A trade the game refused (gold, cargo, quota, price): gRPC FailedPrecondition.
    fn is_refusal(&self) -> bool {
        self.context.get("grpc_code").map(String::as_str) == Some("9")
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code {}: {}", self.code, self.message)?;
        if let Some(g) = self.context.get("grpc_code") {
            write!(f, " (grpc {g})")?;
        }
        Ok(())
    }
}

/// One RPC frame; `payload` is the payload text (JSON), sent as a JSON string.
fn rpc_frame(cid: u64, id: &str, payload_json_string: &str) -> String {
    format!("{{\"cid\":\"{cid}\",\"rpc\":{{\"id\":\"{id}\",\"payload\":{payload_json_string}}}}}")
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always encodes")
}

/// `payload`, a JSON string literal holding an object (as the frames carry it), with a
/// `request_id` field added; `request_id` is `[A-Za-z0-9_-]`, so it needs no escaping.
fn with_request_id(payload: &str, request_id: &str) -> String {
    let object = payload
        .strip_suffix("}\"")
        .expect("a payload literal holds a JSON object");
    let comma = if object.ends_with('{') { "" } else { "," };
    format!("{object}{comma}\\\"request_id\\\":\\\"{request_id}\\\"}}\"")
}

/// What came back for a request: an `rpc` answer, or an `error`.
type Answer = Result<(), ErrorBody>;

/// Reads frames until the reply with `cid` arrives; returns its text and what it is (each
/// frame is decoded once).
async fn read_reply(ws: &mut Ws, cid: u64) -> Result<(String, Answer), BoxError> {
    let want = cid.to_string();
    loop {
        let msg = ws.next().await.ok_or("socket closed by the server")??;
        let text = match msg {
            Message::Text(t) => t.as_str().to_string(),
            Message::Binary(b) => String::from_utf8(b.to_vec())?,
            Message::Close(c) => return Err(format!("socket closed by the server: {c:?}").into()),
            _ => continue, // pings are answered by tungstenite on the next write
        };
        let env: LightEnvelope = serde_json::from_str(&text)?;
        if env.cid.as_deref() == Some(want.as_str()) {
            let answer = match (env.rpc, env.error) {
                (Some(_), _) => Ok(()),
                (None, Some(e)) => Err(e),
                (None, None) => Err(ErrorBody {
                    code: -1,
                    message: format!("neither rpc nor error in {text}"),
                    context: Default::default(),
                }),
            };
            return Ok((text, answer));
        }
        // A push (no cid) or a stale answer: not ours.
    }
}

// ---------------------------------------------------------------------------------------------
// One client.

struct Client {
    index: usize,
    ws: Ws,
    next_cid: u64,
    /// The account's characters; requests go to `characters[current]`.
    characters: Vec<Character>,
    current: usize,
    /// How many characters were made so far (for their names).
    made: usize,
    rng: StdRng,
}

/// One character of a client and the payloads that name it.
struct Character {
    id: String,
    good: String,
    /// The payloads, as JSON string literals ready for the frame.
    quotes_payload: String,
    buy_payload: String,
    sell_payload: String,
    next_side_buy: bool,
    /// A buy was refused for want of gold: buying and selling back always loses the spread
    /// (1–2 gold a round trip), so a character lasts a few hundred trades.
    broke: bool,
}

/// What the catalog offers a new character.
#[derive(Debug, Clone)]
struct Choices {
    factions: Vec<String>,
    background: String,
}

impl Client {
    async fn connect(
        target: &Target,
        server_key: &str,
        index: usize,
        run_id: &str,
    ) -> Result<Client, BoxError> {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{server_key}:"));
        let device = format!("serai-load-{run_id}-{index:05}");
        let body = serde_json::json!({ "id": device }).to_string();
        let (status, text) = http_post(
            target,
            "/v2/account/authenticate/device?create=true",
            &[("Authorization", format!("Basic {basic}"))],
            &body,
        )
        .await?;
        if status != 200 {
            return Err(format!("device auth: HTTP {status}: {text}").into());
        }
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let token = v["token"]
            .as_str()
            .ok_or("device auth: no token in the answer")?;
        let url = format!(
            "ws://{}/ws?lang=en&status=true&token={token}",
            target.authority
        );
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
        Ok(Client {
            index,
            ws,
            next_cid: 0,
            characters: Vec::new(),
            current: 0,
            made: 0,
            rng: StdRng::seed_from_u64(0x5e7a1 ^ index as u64),
        })
    }

    /// One RPC during setup: the payload of the answer, or the error.
    async fn call(&mut self, id: &str, payload: &str) -> Result<String, BoxError> {
        self.next_cid += 1;
        let cid = self.next_cid;
        let frame = rpc_frame(cid, id, &json_string(payload));
        self.ws.send(Message::text(frame)).await?;
        let (text, _) =
            tokio::time::timeout(Duration::from_secs(30), read_reply(&mut self.ws, cid))
                .await
                .map_err(|_| format!("{id}: no answer within 30 s"))??;
        let env: Envelope = serde_json::from_str(&text)?;
        if let Some(e) = env.error {
            return Err(format!("{id}: {e}").into());
        }
        Ok(env.rpc.map(|r| r.payload).unwrap_or_default())
    }

    /// Creates a character, asks its quotes (which activates its session and its market),
    /// finds the cheapest good at its node and prepares the payloads.
    async fn new_character(&mut self, choices: &Choices) -> Result<Character, BoxError> {
        let faction = &choices.factions[self.index % choices.factions.len()];
        self.made += 1;
        let create = serde_json::json!({
            "name": format!("Load {} {}", self.index, self.made),
            "faction": faction,
            "background": choices.background,
        });
        let made: serde_json::Value =
            serde_json::from_str(&self.call("create_character", &create.to_string()).await?)?;
        let id = made["id"]
            .as_str()
            .ok_or("create_character: no id in the answer")?
            .to_string();
        let gold = made["gold"].as_i64().unwrap_or(0);
        let quotes_payload = serde_json::json!({ "character_id": id }).to_string();
        let quotes: serde_json::Value =
            serde_json::from_str(&self.call("get_trade_quotes", &quotes_payload).await?)?;
        let cheapest = quotes["quotes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|q| q["quota"].as_i64().unwrap_or(0) > 0)
            .filter(|q| q["sell_quota"].as_i64().unwrap_or(1) > 0)
            .filter_map(|q| Some((q["buy_price"].as_i64()?, q["good"].as_str()?.to_string())))
            .min();
        let (price, good) = cheapest.ok_or_else(|| {
            format!(
                "no good to trade at {}: {}",
                quotes["node"].as_str().unwrap_or("?"),
                quotes
            )
        })?;
        if price > gold {
            return Err(format!("the cheapest good ({good} at {price}) costs more than the {gold} gold of a new character").into());
        }
        let trade = |side: &str| {
            serde_json::json!({
                "character_id": id,
                "good": good,
                "side": side,
                "quantity": 1,
            })
            .to_string()
        };
        Ok(Character {
            buy_payload: json_string(&trade("buy")),
            sell_payload: json_string(&trade("sell")),
            quotes_payload: json_string(&quotes_payload),
            good,
            id,
            next_side_buy: true,
            broke: false,
        })
    }

    /// Makes `count` characters.
    async fn prepare(&mut self, choices: &Choices, count: usize) -> Result<(), BoxError> {
        for _ in 0..count {
            let c = self.new_character(choices).await?;
            self.characters.push(c);
        }
        Ok(())
    }

    /// Moves on from a broke character: to the next one with gold, else replaces it (delete,
    /// create). Not measured; the time it takes is lost to the client's throughput.
    async fn next_character(&mut self, choices: &Choices) -> Result<bool, BoxError> {
        let n = self.characters.len();
        if let Some(i) = (1..n)
            .map(|k| (self.current + k) % n)
            .find(|&i| !self.characters[i].broke)
        {
            self.current = i;
            return Ok(false);
        }
        let old = &self.characters[self.current];
        let payload = serde_json::json!({ "character_id": old.id }).to_string();
        self.call("delete_character", &payload).await?;
        let fresh = self.new_character(choices).await?;
        self.characters[self.current] = fresh;
        Ok(true)
    }
}

// ---------------------------------------------------------------------------------------------
// A run.

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
        let outcome = async {
            client.ws.send(Message::text(frame)).await?;
            let (_, answer) =
                tokio::time::timeout(Duration::from_secs(30), read_reply(&mut client.ws, cid))
                    .await
                    .map_err(|_| "no answer within 30 s")??;
            Ok::<_, BoxError>(answer)
        }
        .await;
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
                    if answer.is_ok() || answer.as_ref().is_err_and(ErrorBody::is_refusal) {
                        ch.next_side_buy = !ch.next_side_buy;
                    }
                    if let Err(e) = &answer {
                        broke = buying && e.is_refusal() && e.message.contains("gold");
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
                    Err(e) if kind == Kind::Trade && !echo && e.is_refusal() => {
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

/// The merged figures of one mode.
struct Report {
    mode: &'static str,
    clients: usize,
    seconds: f64,
    all: Vec<u32>,
    quotes: Vec<u32>,
    trade: Vec<u32>,
    errors: u64,
    refusals: u64,
    replaced: u64,
    samples: Vec<String>,
    dead: usize,
}

impl Report {
    fn new(mode: &'static str, clients: usize, seconds: f64) -> Report {
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

    fn rate(&self) -> f64 {
        self.all.len() as f64 / self.seconds
    }

    /// Adds another run of the same mode: its requests, seconds and counts.
    fn absorb(&mut self, other: Report) {
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
        for s in other.samples {
            if self.samples.len() < 8 && !self.samples.contains(&s) {
                self.samples.push(s);
            }
        }
    }
}

/// One report per mode, in the order of their first run: the runs of a mode absorbed.
fn merge_runs(runs: Vec<Report>) -> Vec<Report> {
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
fn receipts_summary(without: &Report, with: &Report) -> String {
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

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

async fn run_mode(
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
        for s in tally.samples {
            if report.samples.len() < 8 && !report.samples.contains(&s) {
                report.samples.push(s);
            }
        }
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

fn print_table(reports: &[Report]) {
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

// ---------------------------------------------------------------------------------------------
// Setup.

async fn setup_clients(target: &Target, args: &Args) -> Result<(Vec<Client>, Choices), BoxError> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    eprintln!(
        "connecting {} clients to {}",
        args.clients, target.authority
    );
    let began = Instant::now();
    let mut clients = Vec::with_capacity(args.clients);
    // Connect in small batches: a burst of hundreds of device auths is not what is measured.
    for chunk in (0..args.clients).collect::<Vec<_>>().chunks(16) {
        let batch = futures_util::future::join_all(
            chunk
                .iter()
                .map(|&i| Client::connect(target, &args.server_key, i, &run_id)),
        )
        .await;
        for c in batch {
            clients.push(c?);
        }
    }
    if clients.is_empty() {
        return Err("--clients must be at least 1".into());
    }
    let catalog: serde_json::Value =
        serde_json::from_str(&clients[0].call("get_catalog", "{}").await?)?;
    let factions: Vec<String> = catalog["factions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect();
    // The richest background: the most buy/sell round trips before any refusal.
    let background = catalog["backgrounds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            Some((
                b["starting_gold"].as_i64()?,
                b["code"].as_str()?.to_string(),
            ))
        })
        .max()
        .map(|(_, code)| code)
        .ok_or("the catalog has no backgrounds")?;
    if factions.is_empty() {
        return Err("the catalog has no factions".into());
    }
    let choices = Choices {
        factions,
        background,
    };
    let mut ready = Vec::with_capacity(clients.len());
    let mut pending = clients.into_iter();
    loop {
        let chunk: Vec<Client> = pending.by_ref().take(16).collect();
        if chunk.is_empty() {
            break;
        }
        let done = futures_util::future::join_all(chunk.into_iter().map(|mut c| {
            let choices = choices.clone();
            let count = args.characters as usize;
            async move { c.prepare(&choices, count).await.map(|_| c) }
        }))
        .await;
        for c in done {
            ready.push(c?);
        }
    }
    let mut goods: Vec<(String, usize)> = Vec::new();
    for ch in ready.iter().flat_map(|c| &c.characters) {
        match goods.iter_mut().find(|(g, _)| *g == ch.good) {
            Some((_, n)) => *n += 1,
            None => goods.push((ch.good.clone(), 1)),
        }
    }
    eprintln!(
        "{} clients with {} character(s) each ready in {:.1} s ({} factions; goods traded: {})",
        ready.len(),
        args.characters,
        began.elapsed().as_secs_f64(),
        choices.factions.len(),
        goods
            .iter()
            .map(|(g, n)| format!("{g}×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((ready, choices))
}

/// A node in this process on a fresh database: defaults, but free ports and our server key.
struct LocalNode {
    addr: SocketAddr,
    shutdown: serai::shutdown::Shutdown,
    thread: std::thread::JoinHandle<()>,
}

fn start_local_node(server_key: &str) -> Result<LocalNode, BoxError> {
    let shutdown = serai::shutdown::Shutdown::new();
    let (tx, rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
    let key = server_key.to_string();
    let stop = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("serai-node".into())
        .spawn(move || {
            let system = actix_rt::System::new();
            let db = system.block_on(async move {
                let db = match serai::localdb::TestDatabase::create().await {
                    Ok(db) => db,
                    Err(e) => {
                        let _ = tx.send(Err(format!("local database: {e}")));
                        return None;
                    }
                };
                let mut config = match serai::config::RawConfig::default().validate() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return Some(db);
                    }
                };
                let any: SocketAddr = "127.0.0.1:0".parse().expect("loopback");
                config.client_addr = any;
                config.admin_addr = any;
                config.peer_addr = any;
                config.database_url = db.url.clone();
                config.server_key = key;
                let node = match serai::node::start(config, stop.clone()).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(format!("node: {e}")));
                        return Some(db);
                    }
                };
                let _ = tx.send(Ok(node.client_addr));
                if let Err(e) = node.wait().await {
                    eprintln!("warning: stopping the node: {e}");
                }
                Some(db)
            });
            // The node's pool goes with its runtime; only then is the database dropped, so no
            // pooled connection is cut under a task that still holds it.
            drop(system);
            drop(db);
        })?;
    let addr = rx
        .recv()
        .map_err(|_| "the node thread ended before starting")??;
    Ok(LocalNode {
        addr,
        shutdown,
        thread,
    })
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.clients == 0 || args.seconds == 0 {
        eprintln!("serai-load: --clients and --seconds must be at least 1");
        return std::process::ExitCode::from(2);
    }

    let (target, local) = match &args.url {
        Some(url) => match Target::parse(url) {
            Ok(t) => (t, None),
            Err(e) => {
                eprintln!("serai-load: --url: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        None => {
            eprintln!("starting a node in this process on a fresh local database");
            match start_local_node(&args.server_key) {
                Ok(node) => (
                    Target {
                        authority: node.addr.to_string(),
                    },
                    Some(node),
                ),
                Err(e) => {
                    eprintln!("serai-load: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
    };

    let threads = args
        .client_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("serai-load")
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result: Result<Vec<Report>, BoxError> = runtime.block_on(async {
        let (mut clients, choices) = setup_clients(&target, &args).await?;
        let mut reports = Vec::new();
        if matches!(args.mode, Mode::Echo | Mode::Both) {
            let (alive, report) = run_mode(clients, &choices, "echo", &args).await;
            clients = alive;
            reports.push(report);
        }
        if matches!(args.mode, Mode::Game | Mode::Both) {
            if clients.is_empty() {
                return Err("every client lost its socket during the echo run".into());
            }
            let (alive, report) = run_mode(clients, &choices, "game", &args).await;
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
    });
    drop(runtime);

    let code = match result {
        Ok(reports) => {
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
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("serai-load: {e}");
            std::process::ExitCode::FAILURE
        }
    };
    if let Some(node) = local {
        eprintln!("stopping the in-process node");
        node.shutdown.trigger();
        let _ = node.thread.join();
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_weights() {
        let m: Mix = "quotes=80,trade=20".parse().unwrap();
        assert_eq!((m.quotes, m.trade), (80, 20));
        let m: Mix = "trade=1".parse().unwrap();
        assert_eq!((m.quotes, m.trade), (0, 1));
        assert!("quotes=0,trade=0".parse::<Mix>().is_err());
        assert!("hire=5".parse::<Mix>().is_err());
        assert!("quotes".parse::<Mix>().is_err());
        assert!("quotes=-1".parse::<Mix>().is_err());
    }

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("http://127.0.0.1:7350/").unwrap().authority,
            "127.0.0.1:7350"
        );
        assert_eq!(
            Target::parse("127.0.0.1:7350").unwrap().authority,
            "127.0.0.1:7350"
        );
        assert_eq!(Target::parse("ws://h").unwrap().authority, "h:80");
        assert!(Target::parse("https://h:7350").is_err());
        assert!(Target::parse("http://").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7000], 50.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

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

    #[test]
    fn frames_and_chunks() {
        let payload = json_string("{\"character_id\":\"x\"}");
        let frame = rpc_frame(7, "echo", &payload);
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["cid"], "7");
        assert_eq!(v["rpc"]["id"], "echo");
        assert_eq!(v["rpc"]["payload"], "{\"character_id\":\"x\"}");
        assert_eq!(
            dechunk("4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n").unwrap(),
            "abcdef"
        );
    }
}
