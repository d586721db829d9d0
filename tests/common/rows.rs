//! What the database holds for a character or a market, read directly (the tests' ground
//! truth), the cheapest good to buy as the game quotes it, and characters inserted in bulk.

use std::collections::BTreeMap;

use serde_json::json;
use uuid::Uuid;

use super::client::GameClient;

pub async fn gold(pg: &tokio_postgres::Client, id: Uuid) -> i64 {
    pg.query_one("SELECT gold FROM player_character WHERE id = $1", &[&id])
        .await
        .expect("character row")
        .get(0)
}

pub async fn cargo(pg: &tokio_postgres::Client, id: Uuid) -> BTreeMap<String, i64> {
    pg.query(
        "SELECT good, quantity FROM caravan_cargo WHERE character_id = $1",
        &[&id],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

pub async fn quota(pg: &tokio_postgres::Client, node: &str, good: &str) -> i64 {
    pg.query_one(
        "SELECT quota FROM market_price_snapshot WHERE node = $1 AND good = $2",
        &[&node, &good],
    )
    .await
    .unwrap()
    .get(0)
}

/// The cheapest good with stock to buy where the character is, which must be `home` (asking
/// for quotes also activates the session and the market).
pub async fn cheapest(c: &GameClient, id: Uuid, home: &str) -> String {
    let quotes = c
        .rpc("get_trade_quotes", &json!({"character_id": id}))
        .await
        .expect("quotes");
    assert_eq!(quotes["node"], home);
    quotes["quotes"]
        .as_array()
        .expect("quotes")
        .iter()
        .filter(|q| q["quota"].as_i64().unwrap_or(0) >= 10)
        .min_by_key(|q| q["buy_price"].as_i64())
        .expect("a good to buy")["good"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Inserts `n` characters (hp 10, gold 100, owner epoch 0) in one statement.
pub async fn insert_characters(pg: &tokio_postgres::Client, n: i64) -> Vec<Uuid> {
    pg.query(
        "INSERT INTO player_character (id, user_id, name, faction, background, gold, location, hp, max_hp) \
         SELECT gen_random_uuid(), gen_random_uuid(), 'c' || i, 'f', 'b', 100, 'start', 10, 10 \
         FROM generate_series(1, $1::INT8) AS i RETURNING id",
        &[&n],
    )
    .await
    .expect("insert characters")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Waits until `n` participants of world event `event` have their reward row (each is paid in
/// one transaction with its row, so a row is a paid reward).
pub async fn wait_rewarded(pg: &tokio_postgres::Client, event: &str, n: i64) {
    super::wait_for(
        "every participant rewarded",
        std::time::Duration::from_secs(30),
        async || {
            let r: i64 = pg
                .query_one(
                    "SELECT count(*) FROM world_event_reward WHERE event_id = $1",
                    &[&event],
                )
                .await
                .unwrap()
                .get(0);
            if r == n {
                Ok(())
            } else {
                Err(format!("{r} of {n}"))
            }
        },
    )
    .await;
}
