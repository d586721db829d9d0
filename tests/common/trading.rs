//! A trading workload for cluster tests: players spread over nodes buy and sell one good in a
//! closed loop, switching node when theirs is gone; the ledger of acknowledged trades is then
//! checked against the database.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::raw::{auth, rpc};

/// A player: its token, character, and the node it talks to first.
pub struct Player {
    pub token: String,
    pub character: String,
    pub node: usize,
}

/// Players, the good they trade and the market's quota before.
pub struct Market {
    pub players: Vec<Player>,
    pub good: String,
    pub node: String,
    pub quota_before: i64,
    pub start_gold: i64,
}

/// What the clients were told.
#[derive(Default, Debug)]
pub struct Ledger {
    /// Per character: acknowledged gold change, acknowledged cargo change.
    pub acked: HashMap<String, (i64, i64)>,
    /// Trades whose outcome the client cannot know (no answer, or code 4/13): per character.
    pub unknown: HashMap<String, usize>,
    /// Trades asked again with their request_id after "may have run" or no answer.
    pub retried: usize,
    /// After the event (kill, restart): how long each client took to succeed again.
    pub failovers: Vec<Duration>,
}

impl Ledger {
    pub fn shared() -> Arc<Mutex<Ledger>> {
        Arc::default()
    }

    fn unknown(&mut self, character: &str) {
        *self.unknown.entry(character.to_string()).or_default() += 1;
    }
}

impl Market {
    /// `n` players spread over `addrs`, each with a rich character at one faction's home, and
    /// the cheapest good there.
    pub async fn prepare(addrs: &[SocketAddr], n: usize, pg: &tokio_postgres::Client) -> Market {
        let reader = auth(addrs[0], "trading-catalog-reader").await;
        let catalog = rpc(addrs[0], &reader, "get_catalog", &json!({}))
            .await
            .unwrap();
        let faction = catalog["factions"][0]["code"].as_str().unwrap().to_string();
        let background = catalog["backgrounds"][0]["code"]
            .as_str()
            .unwrap()
            .to_string();
        let mut players = Vec::new();
        for i in 0..n {
            let node = i % addrs.len();
            let token = auth(addrs[node], &format!("trading-player-{i:04}")).await;
            let req = json!({"name": format!("Trader {i}"), "faction": faction, "background": background});
            let c = rpc(addrs[node], &token, "create_character", &req)
                .await
                .expect("create");
            players.push(Player {
                token,
                character: c["id"].as_str().unwrap().to_string(),
                node,
            });
        }
        let start_gold = 1_000_000i64;
        pg.execute("UPDATE player_character SET gold = $1", &[&start_gold])
            .await
            .unwrap();
        let first = &players[0];
        let quotes = rpc(
            addrs[0],
            &first.token,
            "get_trade_quotes",
            &json!({"character_id": first.character}),
        )
        .await
        .expect("quotes");
        let cheapest = quotes["quotes"]
            .as_array()
            .unwrap()
            .iter()
            .min_by_key(|q| q["buy_price"].as_i64())
            .unwrap();
        let good = cheapest["good"].as_str().unwrap().to_string();
        let node = quotes["node"].as_str().unwrap().to_string();
        let quota_before = quota(pg, &node, &good).await;
        Market {
            players,
            good,
            node,
            quota_before,
            start_gold,
        }
    }

    /// Checks every acknowledged trade against the database: exactly for characters whose
    /// every trade was answered, within the unknown ones otherwise; and goods conserved between
    /// the market and the caravans. Returns (characters checked exactly, unknown trades).
    pub async fn verify(&self, pg: &tokio_postgres::Client, ledger: &Ledger) -> (usize, usize) {
        let mut cargo_change = 0i64;
        let mut exact = 0;
        for p in &self.players {
            let id: uuid::Uuid = p.character.parse().unwrap();
            let gold: i64 = pg
                .query_one("SELECT gold FROM player_character WHERE id = $1", &[&id])
                .await
                .unwrap()
                .get(0);
            let held: i64 = pg
                .query_opt(
                    "SELECT quantity FROM caravan_cargo WHERE character_id = $1 AND good = $2",
                    &[&id, &self.good],
                )
                .await
                .unwrap()
                .map_or(0, |r| r.get(0));
            cargo_change += held;
            let (gold_change, cargo) = ledger.acked.get(&p.character).copied().unwrap_or_default();
            match ledger.unknown.get(&p.character).copied().unwrap_or(0) {
                0 => {
                    assert_eq!(
                        gold - self.start_gold,
                        gold_change,
                        "gold of {}",
                        p.character
                    );
                    assert_eq!(held, cargo, "cargo of {}", p.character);
                    exact += 1;
                }
                n => assert!(
                    (held - cargo).abs() <= n as i64,
                    "cargo of {} beyond its {n} unknown trades",
                    p.character
                ),
            }
        }
        let quota_after = quota(pg, &self.node, &self.good).await;
        assert_eq!(
            self.quota_before - quota_after,
            cargo_change,
            "goods conserved between market and caravans"
        );
        assert!(quota_after >= 0);
        (exact, ledger.unknown.values().sum())
    }
}

async fn quota(pg: &tokio_postgres::Client, node: &str, good: &str) -> i64 {
    pg.query_one(
        "SELECT quota FROM market_price_snapshot WHERE node = $1 AND good = $2",
        &[&node, &good],
    )
    .await
    .unwrap()
    .get(0)
}

/// One closed-loop trader per player until `stop_at`.
pub fn spawn_traders(
    market: &Market,
    addrs: &[SocketAddr],
    stop_at: Instant,
    ledger: &Arc<Mutex<Ledger>>,
    event_at: &Arc<Mutex<Option<Instant>>>,
) -> Vec<JoinHandle<()>> {
    market
        .players
        .iter()
        .map(|p| {
            let (ledger, event_at, addrs, good) = (
                ledger.clone(),
                event_at.clone(),
                addrs.to_vec(),
                market.good.clone(),
            );
            let (token, character, mut node) = (p.token.clone(), p.character.clone(), p.node);
            tokio::spawn(async move {
                let mut buy = true;
                let mut failed_since: Option<Instant> = None;
                let mut seq = 0u32;
                // One request_id a trade: every answer that is not final (not run, may have
                // run, no answer) is retried with it, so every trade ends answered, once.
                let mut pending: Option<(bool, Value)> = None;
                while Instant::now() < stop_at || pending.is_some() {
                    let (side_buy, req) = pending.take().unwrap_or_else(|| {
                        seq += 1;
                        let side = if buy { "buy" } else { "sell" };
                        let id = format!("t{}-{seq:06}", &character[..8]);
                        (
                            buy,
                            json!({"character_id": character, "good": good, "side": side,
                                     "quantity": 1, "request_id": id}),
                        )
                    });
                    match rpc(addrs[node], &token, "execute_trade", &req).await {
                        Ok(v) => {
                            let total = v["total"].as_i64().unwrap();
                            let mut l = ledger.lock().unwrap();
                            let e = l.acked.entry(character.clone()).or_default();
                            *e = if side_buy {
                                (e.0 - total, e.1 + 1)
                            } else {
                                (e.0 + total, e.1 - 1)
                            };
                            if let (Some(since), Some(_)) =
                                (failed_since.take(), *event_at.lock().unwrap())
                            {
                                l.failovers.push(since.elapsed());
                            }
                            buy = !buy;
                            continue;
                        }
                        // A refusal of the game (3, 5, 7, 9): an answer, nothing changed.
                        Err(Some(3 | 5 | 7 | 9)) => {}
                        // Not sent (the node is gone): the same request, on another node.
                        Err(Some(-1)) => {
                            node = (node + 1) % addrs.len();
                            pending = Some((side_buy, req));
                        }
                        // Not run (14), may have run (4), anything else, or no answer: the same
                        // request_id again, on another node after no answer.
                        Err(code) => {
                            if code.is_none() {
                                node = (node + 1) % addrs.len();
                            }
                            if code == Some(4) || code.is_none() {
                                ledger.lock().unwrap().retried += 1;
                            }
                            assert!(
                                Instant::now() < stop_at + Duration::from_secs(30),
                                "a trade of {character} got no final answer: {code:?}"
                            );
                            pending = Some((side_buy, req));
                        }
                    }
                    failed_since.get_or_insert_with(Instant::now);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect()
}
