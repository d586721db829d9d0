//! The server's own boards: a settled trade updates `wealth` (gold plus cargo at base price).

mod common;

use std::time::Duration;

use common::client::{request, start_game_node, GameClient};
use serde_json::json;

#[actix_rt::test]
async fn a_trade_updates_the_wealth_board() {
    let node = start_game_node("", |_| {}).await;
    let addr = node.node.client_addr;
    let player = GameClient::device(addr, "wealth-board-player").await;
    let catalog = player.rpc("get_catalog", &json!({})).await.unwrap();
    let req = json!({"name": "Rich", "faction": catalog["factions"][0]["code"], "background": catalog["backgrounds"][0]["code"]});
    let character = player.rpc("create_character", &req).await.unwrap();
    let id = character["id"].as_str().unwrap().to_string();
    let quotes = player
        .rpc("get_trade_quotes", &json!({"character_id": id}))
        .await
        .unwrap();
    let good = quotes["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .min_by_key(|q| q["buy_price"].as_i64())
        .unwrap()["good"]
        .as_str()
        .unwrap()
        .to_string();
    let trade = player
        .rpc(
            "execute_trade",
            &json!({"character_id": id, "good": good, "side": "buy", "quantity": 2}),
        )
        .await
        .unwrap();
    let base = catalog["goods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["code"] == good.as_str())
        .unwrap()["base_price"]
        .as_i64()
        .unwrap();
    let expected = trade["gold"].as_i64().unwrap() + 2 * base;
    let auth = format!("Bearer {}", player.token);
    let mut seen = None;
    for _ in 0..50 {
        let r = request(
            addr,
            "GET",
            "/v2/leaderboard/wealth?limit=10",
            &[("Authorization", &auth)],
            b"",
        )
        .await;
        if r.status == 200 {
            let v = r.json();
            seen = v["records"].as_array().and_then(|rs| {
                rs.iter()
                    .find(|r| r["owner_id"] == id.as_str())
                    .and_then(|r| r["score"].as_str()?.parse::<i64>().ok())
            });
            if seen == Some(expected) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, Some(expected), "wealth = gold + cargo at base price");
}
