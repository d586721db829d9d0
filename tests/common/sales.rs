//! A limited-time sale workload for cluster tests: buyers spread over nodes buy concurrently
//! until the sale is sold out or they reach their limit, retrying every answer that is not
//! final with the same `request_id` (switching node when theirs is gone); then the ledger of
//! answers is checked against the database.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use uuid::Uuid;

use super::raw::{auth, http};

pub const START_GOLD: i64 = 10_000;

/// A buyer: its token, character, and the node it talks to first.
#[derive(Clone)]
pub struct Buyer {
    pub token: String,
    pub character: String,
    pub node: usize,
}

/// The sale's terms as the test scheduled them.
#[derive(Clone)]
pub struct Terms {
    pub id: String,
    pub node: String,
    pub good: String,
    pub stock: i64,
    pub price: i64,
    pub limit: i64,
}

/// `n` buyers over `addrs` (created `concurrency` at a time), each with a character at the
/// first faction's home and [`START_GOLD`]; returns them with that home node.
pub async fn prepare(
    addrs: &[SocketAddr],
    n: usize,
    pg: &tokio_postgres::Client,
) -> (Vec<Buyer>, String) {
    let reader = auth(addrs[0], "sale-catalog-reader").await;
    let (_, catalog) = rpc(addrs[0], &reader, "get_catalog", &json!({})).await;
    let faction = catalog["factions"][0]["code"].as_str().unwrap().to_string();
    let home = catalog["factions"][0]["home_node"]
        .as_str()
        .unwrap()
        .to_string();
    let background = catalog["backgrounds"][0]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let addrs = addrs.to_vec();
    let buyers: Vec<Buyer> = stream::iter(0..n)
        .map(|i| {
            let (addrs, faction, background) = (addrs.clone(), faction.clone(), background.clone());
            async move {
                let node = i % addrs.len();
                let token = auth(addrs[node], &format!("sale-buyer-{i:04}")).await;
                let req = json!({"name": format!("Buyer {i}"), "faction": faction, "background": background});
                let deadline = Instant::now() + Duration::from_secs(20);
                let c = loop {
                    // Not run (503): the node sheds load while many are created at once.
                    match rpc(addrs[node], &token, "create_character", &req).await {
                        (200, c) => break c,
                        (503, c) if Instant::now() < deadline => {
                            let _ = c;
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                        (status, c) => panic!("create buyer {i}: {status} {c}"),
                    }
                };
                Buyer {
                    token,
                    character: c["id"].as_str().unwrap().to_string(),
                    node,
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    pg.execute("UPDATE player_character SET gold = $1", &[&START_GOLD])
        .await
        .unwrap();
    (buyers, home)
}

/// An RPC over HTTP: (status, payload or error body); status 0 when not sent, 1 when no answer.
pub async fn rpc(addr: SocketAddr, token: &str, id: &str, payload: &Value) -> (u16, Value) {
    let body = serde_json::to_string(&payload.to_string()).unwrap();
    let path = format!("/v2/rpc/{id}");
    match http(addr, "POST", &path, &format!("Bearer {token}"), &body).await {
        Some((200, v)) => (
            200,
            serde_json::from_str(v["payload"].as_str().unwrap_or("null")).unwrap(),
        ),
        Some((status, v)) => (status, v),
        None => (1, Value::Null),
    }
}

/// `POST` or `GET /admin/world/sales` on the admin listener.
pub async fn admin(addr: SocketAddr, token: &str, method: &str, body: &Value) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    http(
        addr,
        method,
        "/admin/world/sales",
        &format!("Bearer {token}"),
        &body,
    )
    .await
    .expect("the admin listener answers")
}

/// The admin body of a sale open from a minute ago for an hour.
pub fn sale_body(t: &Terms) -> Value {
    let now = chrono::Utc::now();
    json!({"id": t.id, "node": t.node, "good": t.good, "stock": t.stock, "price": t.price,
           "per_character_limit": t.limit,
           "starts_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
           "ends_at": (now + chrono::Duration::hours(1)).to_rfc3339()})
}

/// What one buyer was told: every answer of a committed purchase.
#[derive(Default, Debug)]
pub struct Ledger {
    pub answers: Vec<Value>,
    /// Requests repeated with their request_id after any answer that was not final.
    pub retried: usize,
    /// Of those, the ones whose first outcome was unknown: "may have run" (4) or no answer.
    pub may_have_run: usize,
    /// Refusals, by message.
    pub refusals: Vec<String>,
}

/// Buys until sold out or at the limit: first `first` units, then 1 at a time. Every answer
/// that is not final is asked again with the same request_id, until `give_up`.
pub async fn buy_until_done(
    addrs: Vec<SocketAddr>,
    b: Buyer,
    t: Terms,
    first: i64,
    give_up: Instant,
) -> Ledger {
    let mut ledger = Ledger::default();
    let (mut node, mut q, mut seq) = (b.node, first, 0u32);
    let (mut bought, mut sold_out_seen) = (0, 0);
    while bought < t.limit {
        seq += 1;
        let req = json!({"sale_id": t.id, "character_id": b.character, "quantity": q,
                         "request_id": format!("{}-{seq}", b.character)});
        let (status, v) = loop {
            let (status, v) = rpc(addrs[node], &b.token, "buy_sale", &req).await;
            let code = v["code"].as_i64();
            // Not sent, no answer, not run (14), may have run (4, 13): the same request again.
            let final_answer = status == 200 || matches!(code, Some(3 | 5 | 6 | 7 | 9));
            if final_answer {
                break (status, v);
            }
            if status == 1 || code == Some(4) {
                ledger.may_have_run += 1;
            }
            if status <= 1 || status >= 500 {
                node = (node + 1) % addrs.len();
            }
            ledger.retried += 1;
            assert!(
                Instant::now() < give_up,
                "{} got no final answer: {status} {v}",
                b.character
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if status == 200 {
            bought = v["bought_total"].as_i64().unwrap();
            ledger.answers.push(v);
            q = 1;
            continue;
        }
        let message = v["message"].as_str().unwrap_or_default().to_string();
        ledger.refusals.push(message.clone());
        if message.contains("only 0 left") || message.contains("sold out") {
            // Units held by reservations that fail come back: look a few more times.
            sold_out_seen += 1;
            if sold_out_seen >= 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        if message.contains("over the limit") {
            if q == 1 {
                break;
            }
            q = 1;
        }
    }
    ledger
}

/// Checks the database against the answers: exactly `stock` sold, no character over the
/// limit, gold and goods conserved, every answer consistent with the rows.
pub async fn verify(pg: &tokio_postgres::Client, t: &Terms, buyers: &[Buyer], ledgers: &[Ledger]) {
    let sold: i64 = pg
        .query_one("SELECT sold FROM world_sale WHERE id = $1", &[&t.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sold, t.stock, "exactly the stock is sold");
    let rows = pg
        .query(
            "SELECT character_id, quantity FROM world_sale_purchase WHERE sale_id = $1",
            &[&t.id],
        )
        .await
        .unwrap();
    let purchases: HashMap<Uuid, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        purchases.values().sum::<i64>(),
        sold,
        "purchases add up to sold"
    );
    let (mut spent, mut gained) = (0i64, 0i64);
    let mut stock_left_seen = BTreeSet::new();
    for (b, l) in buyers.iter().zip(ledgers) {
        let id: Uuid = b.character.parse().unwrap();
        let bought = purchases.get(&id).copied().unwrap_or(0);
        assert!(bought <= t.limit, "{id} bought {bought}, over the limit");
        let answered: i64 = l
            .answers
            .iter()
            .map(|a| a["bought"].as_i64().unwrap())
            .sum();
        assert_eq!(
            answered, bought,
            "{id}: the answers say what the database holds"
        );
        if let Some(last) = l.answers.last() {
            assert_eq!(last["bought_total"].as_i64(), Some(bought));
        }
        for a in &l.answers {
            assert!(
                stock_left_seen.insert(a["stock_left"].as_i64().unwrap()),
                "each commit leaves its own stock_left"
            );
        }
        let gold: i64 = pg
            .query_one("SELECT gold FROM player_character WHERE id = $1", &[&id])
            .await
            .unwrap()
            .get(0);
        let held: i64 = pg
            .query_opt(
                "SELECT quantity FROM caravan_cargo WHERE character_id = $1 AND good = $2",
                &[&id, &t.good],
            )
            .await
            .unwrap()
            .map_or(0, |r| r.get(0));
        assert_eq!(
            START_GOLD - gold,
            t.price * bought,
            "{id}: gold paid for what was bought"
        );
        assert_eq!(held, bought, "{id}: cargo gained is what was bought");
        spent += START_GOLD - gold;
        gained += held;
    }
    assert_eq!(spent, t.price * sold, "gold conserved");
    assert_eq!(gained, sold, "goods conserved");
    assert_eq!(
        stock_left_seen.first(),
        Some(&0),
        "the last purchase left nothing"
    );
}
