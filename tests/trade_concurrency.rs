//! 50 concurrent clients trading the same good at one node, over real sockets against a real
//! node and PostgreSQL. Afterwards the database must show gold and goods conserved exactly,
//! every acknowledged trade present, and no quota below zero.
//!
//! Recovery of the traded good is frozen (`restock_per_min = 0`, set before the node loads its
//! catalog) so the market's quota moves only with trades and can be checked exactly.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use common::client::{start_game_node, GameClient, RpcFailure};
use common::raw_client;

const CLIENTS: usize = 50;
const ROUNDS: usize = 8;
const NODE: &str = "port_azul";
const GOOD: &str = "grain";
const START_GOLD: i64 = 1_000_000;

/// What one client saw.
#[derive(Debug, Default)]
struct Ledger {
    character: Uuid,
    /// Acknowledged trades: (side, quantity, total).
    trades: Vec<(&'static str, i64, i64)>,
    /// Refused trades: (side, quantity, error).
    refused: Vec<(&'static str, i64, RpcFailure)>,
    /// Gold and grain held according to the last acknowledged trade.
    last_gold: Option<i64>,
    held: i64,
    /// Quotas the client was shown.
    quotas_seen: Vec<i64>,
}

impl Ledger {
    fn gold_change(&self) -> i64 {
        self.trades
            .iter()
            .map(|(side, _, total)| if *side == "sell" { *total } else { -*total })
            .sum()
    }

    fn cargo_change(&self) -> i64 {
        self.trades
            .iter()
            .map(|(side, q, _)| if *side == "buy" { *q } else { -*q })
            .sum()
    }
}

/// Cheap deterministic variety per (client, round).
fn mix(i: usize, r: usize, salt: usize) -> usize {
    (i.wrapping_mul(2654435761) ^ r.wrapping_mul(40503) ^ salt.wrapping_mul(977)) % 1009
}

async fn run_client(i: usize, client: GameClient, character: Uuid) -> Ledger {
    let mut ledger = Ledger {
        character,
        ..Ledger::default()
    };
    let mut ws = client.socket().await;
    for r in 0..ROUNDS {
        let quotes = ws
            .rpc("get_trade_quotes", &json!({"character_id": character}))
            .await
            .expect("quotes");
        let q = quotes["quotes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["good"] == GOOD)
            .expect("grain is quoted")["quota"]
            .as_i64()
            .unwrap();
        ledger.quotas_seen.push(q);
        let mut orders: Vec<(&'static str, i64)> = vec![("buy", 1 + (mix(i, r, 1) % 6) as i64)];
        if mix(i, r, 2).is_multiple_of(5) {
            // More than the market usually has left: refused when the quota is short.
            orders.push(("buy", 40 + (mix(i, r, 3) % 20) as i64));
        }
        orders.push(("sell", -1)); // half of what is held, decided below
        if mix(i, r, 4).is_multiple_of(3) {
            orders.push(("buy", 1 + (mix(i, r, 5) % 5) as i64));
        }
        for (side, quantity) in orders {
            let quantity = if quantity < 0 {
                if ledger.held == 0 {
                    continue;
                }
                (ledger.held + 1) / 2
            } else {
                quantity
            };
            let payload = json!({
                "character_id": character, "good": GOOD, "side": side, "quantity": quantity,
            });
            match ws.rpc("execute_trade", &payload).await {
                Ok(v) => {
                    let total = v["total"].as_i64().expect("total");
                    assert_eq!(total, v["unit_price"].as_i64().unwrap() * quantity, "{v}");
                    ledger.trades.push((side, quantity, total));
                    ledger.last_gold = Some(v["gold"].as_i64().expect("gold"));
                    ledger.held = held_in(&v);
                }
                Err(e) => ledger.refused.push((side, quantity, e)),
            }
        }
    }
    ws.close().await;
    ledger
}

fn held_in(v: &Value) -> i64 {
    v["cargo"]
        .as_array()
        .expect("cargo")
        .iter()
        .find(|l| l["good"] == GOOD)
        .map_or(0, |l| l["quantity"].as_i64().unwrap())
}

/// `serai_db_retries_total` from the admin `/metrics` endpoint.
async fn db_retries(admin: std::net::SocketAddr) -> f64 {
    let metrics = common::client::request(admin, "GET", "/metrics", &[], b"").await;
    metrics
        .body
        .lines()
        .find(|l| l.starts_with("serai_db_retries_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Checks the database against the acknowledged trades; returns the market's quota.
async fn check(
    pg: &tokio_postgres::Client,
    ledgers: &[Ledger],
    characters: &[Uuid],
    quota0: i64,
) -> i64 {
    let rows = pg
        .query(
            "SELECT p.id, p.gold, coalesce(c.quantity, 0) FROM player_character p \
                 LEFT JOIN caravan_cargo c ON c.character_id = p.id AND c.good = $2 \
                 WHERE p.id = ANY($1)",
            &[&characters, &GOOD],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), CLIENTS);
    let db: BTreeMap<Uuid, (i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let (mut gold_change, mut cargo_change) = (0i64, 0i64);
    for l in ledgers {
        let (gold, held) = db[&l.character];
        assert_eq!(
            gold - START_GOLD,
            l.gold_change(),
            "gold of {} against its acknowledged trades {:?}",
            l.character,
            l.trades
        );
        assert_eq!(
            held,
            l.cargo_change(),
            "grain of {} against its acknowledged trades {:?}",
            l.character,
            l.trades
        );
        if let Some(last) = l.last_gold {
            assert_eq!(gold, last, "the last answer's gold is what is stored");
        }
        assert!(gold >= 0 && held >= 0);
        gold_change += gold - START_GOLD;
        cargo_change += held;
    }
    let sells: i64 = ledgers
        .iter()
        .flat_map(|l| &l.trades)
        .filter(|t| t.0 == "sell")
        .map(|t| t.2)
        .sum();
    let bought: i64 = ledgers
        .iter()
        .flat_map(|l| &l.trades)
        .filter(|t| t.0 == "buy")
        .map(|t| t.2)
        .sum();
    assert_eq!(gold_change, sells - bought, "gold is conserved exactly");
    let quota: i64 = pg
        .query_one(
            "SELECT quota FROM market_price_snapshot WHERE node = $1 AND good = $2",
            &[&NODE, &GOOD],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        quota - quota0,
        -cargo_change,
        "the market's quota moved by exactly the goods the caravans took"
    );
    let min: i64 = pg
        .query_one("SELECT min(quota) FROM market_price_snapshot", &[])
        .await
        .unwrap()
        .get(0);
    assert!(min >= 0, "a quota below zero: {min}");
    let other: i64 = pg
        .query_one(
            "SELECT count(*) FROM caravan_cargo WHERE character_id = ANY($1) AND good <> $2",
            &[&characters, &GOOD],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(other, 0, "no other good appeared");
    quota
}

#[actix_rt::test]
async fn fifty_clients_trading_one_good_conserve_gold_and_goods() {
    let started = Instant::now();
    let t = start_game_node(
        "UPDATE trade_node_stock SET restock_per_min = 0 WHERE node = 'port_azul' AND good = 'grain'",
        |_| {},
    )
    .await;
    let addr = t.node.client_addr;
    let pg = raw_client(&t.db.url).await;
    let quota_sql = "SELECT quota FROM market_price_snapshot WHERE node = $1 AND good = $2";
    let quota0: i64 = pg
        .query_one(quota_sql, &[&NODE, &GOOD])
        .await
        .unwrap()
        .get(0);

    // 50 accounts, one character each, all at the same home node.
    let clients =
        join_all((0..CLIENTS).map(|i| async move {
            GameClient::device(addr, &format!("device-conc-{i:04}")).await
        }))
        .await;
    let characters: Vec<Uuid> = join_all(clients.iter().enumerate().map(|(i, c)| async move {
        let v = c
            .rpc(
                "create_character",
                &json!({"name": format!("Trader {i}"), "faction": "merchant_league", "background": "caravan_hand"}),
            )
            .await
            .expect("create_character");
        assert_eq!(v["location"], NODE);
        v["id"].as_str().unwrap().parse::<Uuid>().unwrap()
    }))
    .await;
    // Rich enough that gold never limits, set before any RPC activates a session.
    let n = pg
        .execute(
            "UPDATE player_character SET gold = $1 WHERE id = ANY($2)",
            &[&START_GOLD, &characters],
        )
        .await
        .unwrap();
    assert_eq!(n as usize, CLIENTS);
    let setup = started.elapsed();
    let retries_at_setup = db_retries(t.node.admin_addr).await;

    // Watch the stored quota while the clients trade.
    let done = Arc::new(AtomicBool::new(false));
    let lowest = Arc::new(AtomicI64::new(i64::MAX));
    let watcher = {
        let (done, lowest, url) = (done.clone(), lowest.clone(), t.db.url.clone());
        tokio::spawn(async move {
            let pg = raw_client(&url).await;
            while !done.load(Ordering::Acquire) {
                let q: i64 = pg
                    .query_one("SELECT min(quota) FROM market_price_snapshot", &[])
                    .await
                    .unwrap()
                    .get(0);
                lowest.fetch_min(q, Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let trading = Instant::now();
    let ledgers: Vec<Ledger> = join_all(
        clients
            .into_iter()
            .zip(characters.iter().copied())
            .enumerate()
            .map(|(i, (c, id))| run_client(i, c, id)),
    )
    .await;
    let trading = trading.elapsed();
    done.store(true, Ordering::Release);
    watcher.await.unwrap();

    // Every refusal is a refusal of the trade itself (quota, cargo space), never a failure.
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for l in &ledgers {
        for (side, q, e) in &l.refused {
            assert_eq!(
                (e.code, e.grpc_code),
                (3, Some(9)),
                "{side} {q} for {}: not a plain refusal: {e:?}",
                l.character
            );
            let kind = if e.message.contains("quota") {
                "quota"
            } else if e.message.contains("cargo space") {
                "cargo space"
            } else {
                e.message.as_str()
            };
            *refusals.entry(format!("{side}: {kind}")).or_default() += 1;
        }
    }
    let acknowledged: usize = ledgers.iter().map(|l| l.trades.len()).sum();
    let buys = ledgers
        .iter()
        .flat_map(|l| &l.trades)
        .filter(|t| t.0 == "buy")
        .count();
    let retries = db_retries(t.node.admin_addr).await - retries_at_setup;
    eprintln!(
        "setup {setup:?}, trading {trading:?}: {acknowledged} trades acknowledged ({buys} buys), \
         refused {refusals:?}; {retries} transaction retries ({retries_at_setup} during setup)"
    );
    assert!(
        refusals.get("buy: quota").copied().unwrap_or(0) > 0,
        "some buys ask for more than the quota left: {refusals:?}"
    );
    let sells = acknowledged - buys;
    assert!(
        buys >= CLIENTS && sells >= CLIENTS,
        "{buys} buys and {sells} sales acknowledged"
    );

    // The database against the acknowledged trades.
    let quota = check(&raw_client(&t.db.url).await, &ledgers, &characters, quota0).await;
    assert!(
        lowest.load(Ordering::Acquire) >= 0,
        "a quota below zero was stored during the run"
    );
    for l in &ledgers {
        assert!(l.quotas_seen.iter().all(|q| *q >= 0), "{:?}", l.quotas_seen);
    }

    // The market's own view agrees with the database.
    let probe = GameClient::device(addr, "device-conc-probe").await;
    let v = probe
        .rpc(
            "create_character",
            &json!({"name": "Probe", "faction": "merchant_league", "background": "caravan_hand"}),
        )
        .await
        .unwrap();
    let quotes = probe
        .rpc("get_trade_quotes", &json!({"character_id": v["id"]}))
        .await
        .unwrap();
    let shown = quotes["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["good"] == GOOD)
        .unwrap()["quota"]
        .as_i64()
        .unwrap();
    assert_eq!(shown, quota, "the market's quota is the stored quota");

    // Stopping the node (sessions and the market flush and release) changes none of it.
    tokio::time::timeout(Duration::from_secs(30), t.node.stop())
        .await
        .expect("the node stops in time")
        .expect("the node stops cleanly");
    let pg = raw_client(&t.db.url).await;
    assert_eq!(check(&pg, &ledgers, &characters, quota0).await, quota);
    let claimed: i64 = pg
        .query_one(
            "SELECT (SELECT count(*) FROM player_character WHERE owner_node IS NOT NULL) \
                  + (SELECT count(*) FROM trade_node WHERE owner_node IS NOT NULL)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(claimed, 0, "a stopped node holds no claims");
    eprintln!("total {:?}", started.elapsed());
}
