//! The command line: modes, the RPC mix and the node's address.

use std::fmt;
use std::str::FromStr;

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "serai-load",
    about = "Closed-loop WebSocket load: game RPCs against the bare echo RPC of the same stack"
)]
pub struct Args {
    /// Client address of a running node (`http://127.0.0.1:7350` or `127.0.0.1:7350`).
    /// Without it, a node is started in this process on a fresh local database.
    #[arg(long)]
    pub url: Option<String>,
    /// Concurrent WebSocket clients, each with one request outstanding.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Measured seconds per mode.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Unmeasured seconds before each mode (activations, caches, connection warm-up).
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Weights of the game RPCs, e.g. `quotes=80,trade=20` (`quotes=100`: in-memory only).
    #[arg(long, default_value = "quotes=80,trade=20")]
    pub mix: Mix,
    /// Nakama server key, sent as `Basic base64(key:)` to authenticate.
    #[arg(long, default_value = "defaultkey")]
    pub server_key: String,
    /// `echo`: bare echo RPC only; `game`: game RPCs only; `both`: echo (the baseline), then
    /// game, then the ratio; `receipts`: `execute_trade` only (`--mix` is ignored), without and
    /// with a fresh `request_id` per trade, twice each (without, with, with, without), then the
    /// ratio with/without: the cost of the receipt.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,
    /// Characters per client (1–8, the per-account limit). Trades rotate to the next one when
    /// a character runs out of gold; when all have, one is deleted and made anew.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub characters: u8,
    /// Threads of the clients' runtime (default: available cores).
    #[arg(long)]
    pub client_threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Game,
    Echo,
    Both,
    Receipts,
}

/// The two runs of `--mode receipts`: plain trades, and trades with a `request_id`.
pub const TRADE: &str = "trade";
pub const TRADE_ID: &str = "trade+id";

/// Relative weights of the two game RPCs.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub quotes: u32,
    pub trade: u32,
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

/// Where the node listens.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`.
    pub authority: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
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
}
