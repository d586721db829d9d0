//! The game RPCs end to end: a real node in this process on a fresh PostgreSQL database, driven
//! only through its client listener (HTTP `POST /v2/rpc/{id}` and the realtime socket) like a
//! game client, with every effect checked directly in the database with SQL.
//!
//! Most tests freeze market recovery at the home node (`restock_per_min = 0`, set before the
//! node loads its catalog) so that quotas change only through the trades under test and can be
//! compared exactly.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use common::client::{basic, request, start_game_node, GameClient, GameSocket, RpcFailure};
use common::node::TestNode;
use common::{raw_client, take_over_character, wait_for, wait_until};
use serai::config::{Config, Dialect};
use serai::gateway::auth::{encode_token, Claims};
use serai::metrics::Metrics;
use serai::persistence::Db;

/// The home node of [`FACTION`], where every character of these tests starts and trades.
const NODE: &str = "port_azul";
const FACTION: &str = "merchant_league";
/// Freezes recovery at the home node, so quotas move only with trades.
const FREEZE: &str = "UPDATE trade_node_stock SET restock_per_min = 0 WHERE node = 'port_azul'";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

struct Game {
    t: TestNode,
    pg: tokio_postgres::Client,
}

impl Game {
    async fn start(setup_sql: &str, tune: impl FnOnce(&mut Config)) -> Game {
        let t = start_game_node(setup_sql, tune).await;
        let pg = raw_client(&t.db.url).await;
        Game { t, pg }
    }

    fn addr(&self) -> SocketAddr {
        self.t.node.client_addr
    }

    async fn player(&self, device: &str) -> GameClient {
        GameClient::device(self.addr(), device).await
    }

    /// A second pool on the node's database, as "another node" would have.
    fn other_db(&self) -> Db {
        Db::connect(&self.t.db.url, 2, Dialect::Postgres, Metrics::new("other")).expect("pool")
    }

    async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(30), self.t.node.stop())
            .await
            .expect("the node stops in time")
            .expect("the node stops cleanly");
    }

    async fn gold(&self, id: Uuid) -> i64 {
        common::rows::gold(&self.pg, id).await
    }

    async fn set_gold(&self, id: Uuid, gold: i64) {
        let n = self
            .pg
            .execute(
                "UPDATE player_character SET gold = $2 WHERE id = $1",
                &[&id, &gold],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    async fn cargo(&self, id: Uuid) -> BTreeMap<String, i64> {
        common::rows::cargo(&self.pg, id).await
    }

    async fn quota(&self, good: &str) -> i64 {
        common::rows::quota(&self.pg, NODE, good).await
    }

    async fn owner(&self, id: Uuid) -> (Option<String>, i64) {
        let r = self
            .pg
            .query_one(
                "SELECT owner_node, owner_epoch FROM player_character WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    }

    async fn count(&self, sql: &str, id: Uuid) -> i64 {
        self.pg.query_one(sql, &[&id]).await.unwrap().get(0)
    }

    async fn attribute(&self, id: Uuid, code: &str) -> Option<i64> {
        self.pg
            .query_opt(
                "SELECT value FROM character_attribute WHERE character_id = $1 AND code = $2",
                &[&id, &code],
            )
            .await
            .unwrap()
            .map(|r| r.get(0))
    }

    /// Everything a game RPC could change, as text (ownership columns and timestamps left out).
    async fn digest(&self) -> String {
        self.pg
            .query_one(
                "SELECT coalesce(string_agg(x, E'\\n' ORDER BY x), '') FROM ( \
                 SELECT format('character %s %s %s %s %s %s %s %s %s %s %s', id, user_id, name, faction, \
                        background, gold, location, level, xp, hp, skill_points) AS x FROM player_character \
                 UNION ALL SELECT format('cargo %s %s %s', character_id, good, quantity) FROM caravan_cargo \
                 UNION ALL SELECT format('crew %s %s %s %s', character_id, id, archetype, name) FROM crew_member \
                 UNION ALL SELECT format('attribute %s %s %s', character_id, code, value) FROM character_attribute \
                 UNION ALL SELECT format('caravan %s %s %s', character_id, capacity, speed) FROM caravan \
                 UNION ALL SELECT format('item %s %s %s', character_id, template, quantity) FROM character_item \
                 UNION ALL SELECT format('market %s %s %s %s', node, good, price, quota) FROM market_price_snapshot \
                 UNION ALL SELECT format('user %s %s', id, username) FROM users \
                 UNION ALL SELECT format('device %s %s', id, user_id) FROM user_device) AS t",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// `serai_fenced_writes_total` from the admin `/metrics` endpoint.
    async fn fenced_writes(&self) -> f64 {
        self.metric("serai_fenced_writes_total", "").await
    }

    /// The value of the first sample of `name` whose labels contain `label` (`""`: any) on the
    /// admin `/metrics` endpoint.
    async fn metric(&self, name: &str, label: &str) -> f64 {
        let r = request(self.t.node.admin_addr, "GET", "/metrics", &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
            })
            .find(|l| l.contains(label))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} with {label:?} in\n{}", r.body))
    }

    /// An admin endpoint, with the admin token.
    async fn admin(&self, method: &str, path: &str) -> common::node::Response {
        let auth = format!("Bearer {}", self.t.config.admin_token);
        request(
            self.t.node.admin_addr,
            method,
            path,
            &[("Authorization", &auth)],
            b"",
        )
        .await
    }

    /// The persistence figures of `GET /admin/status`.
    async fn persistence_status(&self) -> Value {
        let r = self.admin("GET", "/admin/status").await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["persistence"].clone()
    }

    /// `POST /admin/flush`: answers once every row the node had queued is committed.
    async fn flush(&self) {
        let r = self.admin("POST", "/admin/flush").await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

fn uuid_of(v: &Value) -> Uuid {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .parse()
        .expect("a UUID id")
}

async fn create(c: &GameClient, name: &str, background: &str) -> Value {
    c.rpc(
        "create_character",
        &json!({"name": name, "faction": FACTION, "background": background}),
    )
    .await
    .unwrap_or_else(|e| panic!("create_character {name}: {e:?}"))
}

fn trade(id: Uuid, good: &str, side: &str, quantity: i64) -> Value {
    json!({"character_id": id, "good": good, "side": side, "quantity": quantity})
}

fn with_limit(mut v: Value, limit: i64) -> Value {
    v["price_limit"] = json!(limit);
    v
}

fn quote<'a>(quotes: &'a Value, good: &str) -> &'a Value {
    quotes["quotes"]
        .as_array()
        .expect("quotes array")
        .iter()
        .find(|q| q["good"] == good)
        .unwrap_or_else(|| panic!("no quote for {good} in {quotes}"))
}

fn int(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} is not an integer in {v}"))
}

/// Asserts an HTTP RPC error: status, gRPC code and a message containing `text`.
#[track_caller]
fn http_err(r: Result<Value, RpcFailure>, status: u16, code: i64, text: &str) {
    match r {
        Ok(v) => panic!("expected error {code} ({text}), got {v}"),
        Err(e) => {
            assert_eq!((e.status, e.code), (status, code), "{e:?}");
            assert!(
                e.message.to_lowercase().contains(&text.to_lowercase()),
                "message {:?} lacks {text:?}",
                e.message
            );
        }
    }
}

/// Asserts a socket RPC error: realtime code, gRPC code in the context, message text.
#[track_caller]
fn socket_err(r: Result<Value, RpcFailure>, code: i64, grpc: Option<i64>, text: &str) {
    match r {
        Ok(v) => panic!("expected socket error {code} ({text}), got {v}"),
        Err(e) => {
            assert_eq!((e.status, e.code, e.grpc_code), (0, code, grpc), "{e:?}");
            assert!(
                e.message.to_lowercase().contains(&text.to_lowercase()),
                "message {:?} lacks {text:?}",
                e.message
            );
        }
    }
}

fn cargo_of(v: &Value) -> BTreeMap<String, i64> {
    v["cargo"]
        .as_array()
        .unwrap_or_else(|| panic!("no cargo array in {v}"))
        .iter()
        .map(|l| (l["good"].as_str().unwrap().to_string(), int(l, "quantity")))
        .collect()
}

fn map(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

// ---------------------------------------------------------------------------------------------
// Characters
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn characters_create_get_list_limit_and_delete() {
    let g = Game::start("", |_| {}).await;
    let a = g.player("device-alpha-0001").await;
    let b = g.player("device-bravo-0001").await;

    // The catalog names everything by code.
    let cat = a.rpc("get_catalog", &json!({})).await.unwrap();
    let faction = cat["factions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == FACTION)
        .expect("the faction is in the catalog");
    assert_eq!(faction["home_node"], NODE);
    for (list, keys) in [
        ("factions", &["code", "name", "home_node"][..]),
        ("backgrounds", &["code", "name"][..]),
        ("goods", &["code", "name", "base_price"][..]),
        ("nodes", &["code", "name"][..]),
        ("routes", &["from", "to", "distance", "danger"][..]),
    ] {
        let items = cat[list].as_array().unwrap_or_else(|| panic!("{list}"));
        assert!(!items.is_empty(), "{list}");
        for k in keys {
            assert!(items.iter().all(|i| i.get(*k).is_some()), "{list}.{k}");
        }
    }

    // create_character answers the character in the documented shape.
    let ada = create(&a, "Ada", "merchant_heir").await;
    let id = uuid_of(&ada);
    for key in [
        "id",
        "name",
        "faction",
        "background",
        "gold",
        "location",
        "cargo",
        "crew",
        "skills",
        "attributes",
    ] {
        assert!(ada.get(key).is_some(), "{key} missing from {ada}");
    }
    assert_eq!(ada["name"], "Ada");
    assert_eq!(ada["faction"], FACTION);
    assert_eq!(ada["background"], "merchant_heir");
    assert_eq!(ada["gold"], 500);
    assert_eq!(ada["location"], NODE);
    assert_eq!(ada["cargo"], json!([]));
    assert_eq!(ada["crew"], json!([]));
    assert_eq!(ada["skills"], json!([]));
    assert_eq!(
        ada["attributes"],
        json!({"strength": 3, "cunning": 5, "charisma": 7, "endurance": 4})
    );
    // Committed before the answer.
    let row = g
        .pg
        .query_one(
            "SELECT user_id, name, faction, background, gold, location FROM player_character WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Uuid>(0), a.user_id);
    assert_eq!(row.get::<_, String>(1), "Ada");
    assert_eq!(row.get::<_, String>(3), "merchant_heir");
    assert_eq!(row.get::<_, i64>(4), 500);
    assert_eq!(row.get::<_, String>(5), NODE);
    assert_eq!(
        g.count(
            "SELECT count(*) FROM character_attribute WHERE character_id = $1",
            id
        )
        .await,
        4
    );
    assert_eq!(
        g.count("SELECT count(*) FROM caravan WHERE character_id = $1", id)
            .await,
        1
    );

    // get_character over HTTP and over the socket: the same character.
    let got = a
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(got, ada);
    let mut ws = a.socket().await;
    let got = ws
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(got, ada);
    // RPC ids are case-insensitive.
    let r = a
        .rpc_str("GET_Character", &json!({"character_id": id}).to_string())
        .await
        .unwrap();
    assert_eq!(r["id"], ada["id"]);

    // ?unwrap: the raw body is the payload and the answer is the raw payload.
    let auth = format!("Bearer {}", a.token);
    let r = request(
        g.addr(),
        "POST",
        "/v2/rpc/get_character?unwrap",
        &[("Authorization", &auth)],
        json!({"character_id": id}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), ada);

    // Several characters per account (names trimmed), listed oldest first.
    let bo = create(&a, "  Bo  ", "sellsword").await;
    assert_eq!(bo["name"], "Bo");
    assert_eq!(bo["gold"], 150);
    let cy = a
        .rpc(
            "create_character",
            &json!({"name": "Cy", "faction": "sand_nomads", "background": "smuggler"}),
        )
        .await
        .unwrap();
    assert_eq!(cy["location"], "dune_oasis");
    let list = a.rpc("list_characters", &json!({})).await.unwrap();
    let ids: Vec<&str> = list["characters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [&ada["id"], &bo["id"], &cy["id"]].map(|v| v.as_str().unwrap())
    );
    let first = &list["characters"][0];
    assert_eq!(
        (&first["name"], &first["faction"], &first["location"]),
        (&json!("Ada"), &json!(FACTION), &json!(NODE))
    );
    let listed = ws.rpc("list_characters", &json!({})).await.unwrap();
    assert_eq!(listed, list);
    assert_eq!(
        b.rpc("list_characters", &json!({})).await.unwrap(),
        json!({"characters": []})
    );

    // Bad creations change nothing.
    let before = g.digest().await;
    for (payload, text) in [
        (
            json!({"name": "Di", "faction": "pirates", "background": "smuggler"}),
            "faction",
        ),
        (
            json!({"name": "Di", "faction": FACTION, "background": "wizard"}),
            "background",
        ),
        (
            json!({"name": "D", "faction": FACTION, "background": "smuggler"}),
            "name",
        ),
        (
            json!({"name": "x".repeat(25), "faction": FACTION, "background": "smuggler"}),
            "name",
        ),
        (
            json!({"name": "Robert'); DROP TABLE users;--", "faction": FACTION, "background": "smuggler"}),
            "name",
        ),
        (json!({"name": "Di", "faction": FACTION}), "background"),
        (
            json!({"name": "Di", "faction": FACTION, "background": "smuggler", "gold": 1000000}),
            "unknown field",
        ),
    ] {
        http_err(a.rpc("create_character", &payload).await, 400, 3, text);
    }
    assert_eq!(
        g.digest().await,
        before,
        "refused creations changed nothing"
    );

    // The per-account limit: 8.
    for i in 3..8 {
        create(&a, &format!("Extra {i}"), "caravan_hand").await;
    }
    assert_eq!(
        g.count(
            "SELECT count(*) FROM player_character WHERE user_id = $1",
            a.user_id
        )
        .await,
        8
    );
    http_err(
        a.rpc(
            "create_character",
            &json!({"name": "Ninth", "faction": FACTION, "background": "smuggler"}),
        )
        .await,
        400,
        9,
        "at most 8",
    );
    socket_err(
        ws.rpc(
            "create_character",
            &json!({"name": "Ninth", "faction": FACTION, "background": "smuggler"}),
        )
        .await,
        3,
        Some(9),
        "at most 8",
    );
    assert_eq!(
        g.count(
            "SELECT count(*) FROM player_character WHERE user_id = $1",
            a.user_id
        )
        .await,
        8
    );
    // Another account is not affected by a's limit.
    create(&b, "Bravo", "smuggler").await;
    // Concurrent creations by one account still stop at the limit.
    let c3 = g.player("device-charlie-01").await;
    let results = futures_util::future::join_all((0..12).map(|i| {
        let c3 = c3.clone();
        async move {
            c3.rpc(
                "create_character",
                &json!({"name": format!("Rush {i}"), "faction": FACTION, "background": "smuggler"}),
            )
            .await
        }
    }))
    .await;
    let made = results.iter().filter(|r| r.is_ok()).count();
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!((r.status, r.code), (400, 9), "{r:?}");
    }
    assert_eq!(made, 8, "{results:?}");
    assert_eq!(
        g.count(
            "SELECT count(*) FROM player_character WHERE user_id = $1",
            c3.user_id
        )
        .await,
        8
    );

    // Someone else's character: 403 / code 7 on every RPC that names it, and nothing changes.
    let before = g.digest().await;
    for (rpc, payload) in [
        ("get_character", json!({"character_id": id})),
        ("delete_character", json!({"character_id": id})),
        ("get_trade_quotes", json!({"character_id": id})),
        ("execute_trade", trade(id, "grain", "buy", 1)),
        (
            "hire_crew",
            json!({"character_id": id, "archetype": "porter"}),
        ),
        (
            "dismiss_crew",
            json!({"character_id": id, "crew_id": Uuid::new_v4()}),
        ),
        (
            "learn_skill",
            json!({"character_id": id, "skill": "haggling"}),
        ),
    ] {
        http_err(b.rpc(rpc, &payload).await, 403, 7, "another account");
    }
    let mut bws = b.socket().await;
    socket_err(
        bws.rpc("get_character", &json!({"character_id": id})).await,
        3,
        Some(7),
        "another account",
    );
    socket_err(
        bws.rpc("delete_character", &json!({"character_id": id}))
            .await,
        3,
        Some(7),
        "another account",
    );
    assert_eq!(g.digest().await, before, "b changed nothing of a's");

    // delete_character: the row and its children are gone; later RPCs answer 404 / code 5.
    let r = a
        .rpc("delete_character", &json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(r, json!({"deleted": true}));
    for table in [
        "SELECT count(*) FROM player_character WHERE id = $1",
        "SELECT count(*) FROM character_attribute WHERE character_id = $1",
        "SELECT count(*) FROM caravan WHERE character_id = $1",
    ] {
        assert_eq!(g.count(table, id).await, 0, "{table}");
    }
    http_err(
        a.rpc("get_character", &json!({"character_id": id})).await,
        404,
        5,
        "not found",
    );
    socket_err(
        ws.rpc("get_character", &json!({"character_id": id})).await,
        3,
        Some(5),
        "not found",
    );
    http_err(
        a.rpc("delete_character", &json!({"character_id": id}))
            .await,
        404,
        5,
        "not found",
    );
    http_err(
        a.rpc("execute_trade", &trade(id, "grain", "buy", 1)).await,
        404,
        5,
        "not found",
    );
    http_err(
        a.rpc("get_character", &json!({"character_id": Uuid::new_v4()}))
            .await,
        404,
        5,
        "not found",
    );
    let list = a.rpc("list_characters", &json!({})).await.unwrap();
    assert_eq!(list["characters"].as_array().unwrap().len(), 7);
    assert!(list["characters"][0]["id"] == bo["id"]);
    // A slot is free again.
    create(&a, "Eve", "noble_exile").await;

    // Server to server (http_key): may read any character, may not create one (no user).
    let path = format!("/v2/rpc/get_character?http_key={}", g.t.config.http_key);
    let body = serde_json::to_string(&json!({"character_id": uuid_of(&bo)}).to_string()).unwrap();
    let r = request(g.addr(), "POST", &path, &[], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let path = format!("/v2/rpc/create_character?http_key={}", g.t.config.http_key);
    let body = serde_json::to_string(
        &json!({"name": "Srv", "faction": FACTION, "background": "smuggler"}).to_string(),
    )
    .unwrap();
    let r = request(g.addr(), "POST", &path, &[], body.as_bytes()).await;
    assert_eq!(r.status, 400, "{}", r.body);

    ws.close().await;
    bws.close().await;
    g.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Trading
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn quotes_and_trades_settle_in_the_database_before_the_answer() {
    let g = Game::start(FREEZE, |_| {}).await;
    let a = g.player("device-trader-0001").await;
    let id = uuid_of(&create(&a, "Trader", "merchant_heir").await);
    // Before the first RPC that activates the session.
    g.set_gold(id, 100_000).await;
    let c = a
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(c["gold"], 100_000, "the session loads the row as it is");
    let mut gold = 100_000i64;

    // Quotes: every good the node trades, with its quota as stored.
    let q0 = a
        .rpc("get_trade_quotes", &json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(q0["node"], NODE);
    let traded: Vec<String> =
        g.pg.query(
            "SELECT good FROM trade_node_stock WHERE node = $1 ORDER BY good",
            &[&NODE],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut quoted: Vec<String> = q0["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["good"].as_str().unwrap().to_string())
        .collect();
    quoted.sort();
    assert_eq!(quoted, traded);
    for q in q0["quotes"].as_array().unwrap() {
        let good = q["good"].as_str().unwrap();
        assert_eq!(int(q, "quota"), g.quota(good).await, "{good}");
        assert!(int(q, "buy_price") > int(q, "sell_price"), "{q}");
        assert!(int(q, "sell_price") > 0, "{q}");
    }
    let grain0 = quote(&q0, "grain").clone();
    let quota0 = int(&grain0, "quota");

    // Buy 10 grain: the answer and the database agree, at once.
    let r = a
        .rpc(
            "execute_trade",
            &with_limit(trade(id, "grain", "buy", 10), int(&grain0, "buy_price") + 5),
        )
        .await
        .unwrap();
    let (unit, total) = (int(&r, "unit_price"), int(&r, "total"));
    assert!(unit >= int(&grain0, "buy_price"), "{r} vs {grain0}");
    assert_eq!(total, unit * 10);
    gold -= total;
    assert_eq!(int(&r, "gold"), gold);
    assert_eq!(cargo_of(&r), map(&[("grain", 10)]));
    assert_eq!(g.gold(id).await, gold);
    assert_eq!(g.cargo(id).await, map(&[("grain", 10)]));
    assert_eq!(g.quota("grain").await, quota0 - 10);

    // Buying raised the next buy quote.
    let q1 = a
        .rpc("get_trade_quotes", &json!({"character_id": id}))
        .await
        .unwrap();
    let grain1 = quote(&q1, "grain").clone();
    assert!(
        int(&grain1, "buy_price") > int(&grain0, "buy_price"),
        "{grain1} after a buy vs {grain0}"
    );
    assert_eq!(int(&grain1, "quota"), quota0 - 10);

    // Sell 4 over the socket: same checks.
    let mut ws = a.socket().await;
    let r = ws
        .rpc(
            "execute_trade",
            &with_limit(
                trade(id, "grain", "sell", 4),
                int(&grain1, "sell_price") - 3,
            ),
        )
        .await
        .unwrap();
    let total = int(&r, "total");
    assert_eq!(total, int(&r, "unit_price") * 4);
    assert!(int(&r, "unit_price") <= int(&grain1, "sell_price"));
    gold += total;
    assert_eq!(int(&r, "gold"), gold);
    assert_eq!(cargo_of(&r), map(&[("grain", 6)]));
    assert_eq!(g.gold(id).await, gold);
    assert_eq!(g.cargo(id).await, map(&[("grain", 6)]));
    assert_eq!(g.quota("grain").await, quota0 - 6);

    // Selling lowered the next buy quote.
    let q2 = ws
        .rpc("get_trade_quotes", &json!({"character_id": id}))
        .await
        .unwrap();
    let grain2 = quote(&q2, "grain").clone();
    assert!(
        int(&grain2, "buy_price") < int(&grain1, "buy_price"),
        "{grain2} after a sale vs {grain1}"
    );
    assert_eq!(int(&grain2, "quota"), quota0 - 6);

    // Refusals change nothing: not in the database, not in the market's quotes.
    let before = g.digest().await;
    let refusals = [
        (
            with_limit(trade(id, "grain", "buy", 5), int(&grain2, "buy_price") - 1),
            "price_limit",
        ),
        (
            with_limit(
                trade(id, "grain", "sell", 2),
                int(&grain2, "sell_price") + 5,
            ),
            "price_limit",
        ),
        (trade(id, "grain", "sell", 7), "holds 6"),
        (trade(id, "wine", "sell", 1), "holds 0"),
        (trade(id, "spices", "buy", 16), "quota"),
        (trade(id, "grain", "buy", 95), "cargo space"),
        (trade(id, "gemstones", "buy", 1), "not traded"),
    ];
    for (payload, text) in &refusals {
        http_err(a.rpc("execute_trade", payload).await, 400, 9, text);
        socket_err(ws.rpc("execute_trade", payload).await, 3, Some(9), text);
    }
    assert_eq!(g.digest().await, before, "refused trades changed nothing");
    let q3 = a
        .rpc("get_trade_quotes", &json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(q3, q2, "refused trades released their reservations");

    // Not enough gold: a second character of the same account.
    let poor = uuid_of(&create(&a, "Pauper", "sellsword").await);
    http_err(
        a.rpc("execute_trade", &trade(poor, "spices", "buy", 2))
            .await,
        400,
        9,
        "not enough gold",
    );
    assert_eq!(g.gold(poor).await, 150);
    assert!(g.cargo(poor).await.is_empty());
    let q4 = a
        .rpc("get_trade_quotes", &json!({"character_id": poor}))
        .await
        .unwrap();
    assert_eq!(q4, q2, "the refused buy released its reservation");

    // Buy and sell back wine over the socket; an emptied good leaves no cargo row.
    let wine_quota = g.quota("wine").await;
    let r = ws
        .rpc("execute_trade", &trade(id, "wine", "buy", 3))
        .await
        .unwrap();
    gold -= int(&r, "total");
    assert_eq!(cargo_of(&r), map(&[("grain", 6), ("wine", 3)]));
    assert_eq!(g.cargo(id).await, map(&[("grain", 6), ("wine", 3)]));
    assert_eq!(g.quota("wine").await, wine_quota - 3);
    let r = ws
        .rpc("execute_trade", &trade(id, "wine", "sell", 3))
        .await
        .unwrap();
    gold += int(&r, "total");
    assert_eq!(cargo_of(&r), map(&[("grain", 6)]));
    assert_eq!(g.cargo(id).await, map(&[("grain", 6)]));
    assert_eq!(g.quota("wine").await, wine_quota);
    assert_eq!(g.gold(id).await, gold);

    // Sell everything: back to no cargo, the market back where it started, and round trips
    // never make money.
    let r = a
        .rpc("execute_trade", &trade(id, "grain", "sell", 6))
        .await
        .unwrap();
    gold += int(&r, "total");
    assert_eq!(int(&r, "gold"), gold);
    assert_eq!(r["cargo"], json!([]));
    assert!(g.cargo(id).await.is_empty());
    assert_eq!(g.quota("grain").await, quota0);
    assert_eq!(g.gold(id).await, gold);
    assert!(gold < 100_000, "buying and selling back lost money: {gold}");
    let c = a
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!((int(&c, "gold"), &c["cargo"]), (gold, &json!([])));

    // One character traded from several connections at once: the session settles one trade
    // at a time, so only what the character can pay for, or holds, goes through. `poor` has
    // 150 gold; 10 grain cost more than 65, so one buy of 10 fits, never two.
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(a.socket().await);
    }
    let quota_before = g.quota("grain").await;
    for (side, order, text) in [
        ("buy", trade(poor, "grain", "buy", 10), "not enough gold"),
        ("sell", trade(poor, "grain", "sell", 10), "holds 0"),
    ] {
        let (over_http, over_sockets) = futures_util::join!(
            futures_util::future::join_all((0..3).map(|_| a.rpc("execute_trade", &order))),
            futures_util::future::join_all(
                sockets.iter_mut().map(|s| s.rpc("execute_trade", &order))
            )
        );
        let oks: Vec<&Value> = over_http
            .iter()
            .chain(over_sockets.iter())
            .filter_map(|r| r.as_ref().ok())
            .collect();
        assert_eq!(oks.len(), 1, "{side}: {over_http:?} {over_sockets:?}");
        for e in over_http.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!((e.status, e.code), (400, 9), "{e:?}");
            assert!(e.message.contains(text), "{e:?}");
        }
        for e in over_sockets.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!((e.code, e.grpc_code), (3, Some(9)), "{e:?}");
            assert!(e.message.contains(text), "{e:?}");
        }
        assert_eq!(g.gold(poor).await, int(oks[0], "gold"));
        assert_eq!(g.cargo(poor).await, cargo_of(oks[0]));
    }
    assert!(g.cargo(poor).await.is_empty());
    assert_eq!(g.quota("grain").await, quota_before);
    assert!(g.gold(poor).await < 150);
    for s in sockets {
        s.close().await;
    }

    // Quotas at their edges: the whole buy quota can be bought, then nothing more; the market
    // takes sales up to three times its base quota, then nothing more.
    let spices0 = g.quota("spices").await;
    let r = a
        .rpc("execute_trade", &trade(id, "spices", "buy", spices0))
        .await
        .unwrap();
    assert_eq!(g.quota("spices").await, 0);
    assert_eq!(g.cargo(id).await, map(&[("spices", spices0)]));
    assert_eq!(g.gold(id).await, int(&r, "gold"));
    http_err(
        a.rpc("execute_trade", &trade(id, "spices", "buy", 1)).await,
        400,
        9,
        "quota",
    );
    a.rpc("execute_trade", &trade(id, "spices", "sell", spices0))
        .await
        .unwrap();
    assert_eq!(g.quota("spices").await, spices0);
    let hoarder = uuid_of(&create(&a, "Hoarder", "merchant_heir").await);
    g.pg.execute(
        "INSERT INTO caravan_cargo (character_id, good, quantity) VALUES ($1, 'spices', 100)",
        &[&hoarder],
    )
    .await
    .unwrap();
    let absorbable = 3 * spices0 - spices0;
    let before = g.digest().await;
    http_err(
        a.rpc(
            "execute_trade",
            &trade(hoarder, "spices", "sell", absorbable + 1),
        )
        .await,
        400,
        9,
        "quota",
    );
    assert_eq!(g.digest().await, before);
    let r = a
        .rpc(
            "execute_trade",
            &trade(hoarder, "spices", "sell", absorbable),
        )
        .await
        .unwrap();
    assert_eq!(g.quota("spices").await, 3 * spices0);
    assert_eq!(g.gold(hoarder).await, int(&r, "gold"));
    assert_eq!(g.cargo(hoarder).await, map(&[("spices", 100 - absorbable)]));
    http_err(
        a.rpc("execute_trade", &trade(hoarder, "spices", "sell", 1))
            .await,
        400,
        9,
        "quota",
    );
    assert_eq!(g.quota("spices").await, 3 * spices0);

    // Gold never overflows: a sale that would take gold past i64::MAX is refused.
    let croesus = uuid_of(&create(&a, "Croesus", "merchant_heir").await);
    g.set_gold(croesus, i64::MAX - 20).await;
    g.pg.execute(
        "INSERT INTO caravan_cargo (character_id, good, quantity) VALUES ($1, 'grain', 10)",
        &[&croesus],
    )
    .await
    .unwrap();
    let before = g.digest().await;
    http_err(
        a.rpc("execute_trade", &trade(croesus, "grain", "sell", 10))
            .await,
        400,
        9,
        "overflow",
    );
    assert_eq!(g.digest().await, before, "the refused sale changed nothing");
    let r = a
        .rpc("execute_trade", &trade(croesus, "grain", "sell", 1))
        .await
        .unwrap();
    assert_eq!(int(&r, "gold"), i64::MAX - 20 + int(&r, "total"));
    assert_eq!(g.gold(croesus).await, int(&r, "gold"));
    assert_eq!(g.cargo(croesus).await, map(&[("grain", 9)]));

    ws.close().await;
    g.stop().await;
}

/// Quotes of a ready session at a market of this node come from what the session and the
/// market published (no mailbox round trip), and still show every trade at once, refuse other
/// players, and step aside for a newer catalog.
#[actix_rt::test]
async fn quotes_come_from_the_owners_snapshots_and_show_every_trade() {
    let g = Game::start(FREEZE, |_| {}).await;
    let a = g.player("device-snap-0001").await;
    let b = g.player("device-snap-0002").await;
    let id = uuid_of(&create(&a, "Snap", "merchant_heir").await);
    let snapshot = "answered=\"snapshot\"";
    let quotes = |c: &GameClient| {
        let c = c.clone();
        async move {
            c.rpc("get_trade_quotes", &json!({"character_id": id}))
                .await
        }
    };
    // The first read activates the market through the session; they publish.
    let q0 = quotes(&a).await.unwrap();
    let before = g.metric("serai_snapshot_reads_total", snapshot).await;
    let q1 = quotes(&a).await.unwrap();
    assert_eq!(q1, q0, "nothing changed in between");
    assert_eq!(
        g.metric("serai_snapshot_reads_total", snapshot).await,
        before + 1.0,
        "the second read is answered from the snapshots"
    );

    // Another player's read is refused as the session refuses it, snapshot or not.
    http_err(
        quotes(&b).await,
        403,
        7,
        "this character belongs to another account",
    );

    // A trade's answer comes after the market published what it left.
    let grain = quote(&q1, "grain").clone();
    a.rpc("execute_trade", &trade(id, "grain", "buy", 10))
        .await
        .unwrap();
    let q2 = quotes(&a).await.unwrap();
    assert_eq!(int(quote(&q2, "grain"), "quota"), int(&grain, "quota") - 10);
    assert_eq!(int(quote(&q2, "grain"), "quota"), g.quota("grain").await);
    assert!(int(quote(&q2, "grain"), "buy_price") > int(&grain, "buy_price"));
    assert_eq!(
        g.metric("serai_snapshot_reads_total", snapshot).await,
        before + 2.0
    );
    g.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Crew and skills
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn crew_is_written_at_once_and_skills_by_the_flush() {
    let g = Game::start(FREEZE, |_| {}).await;
    let a = g.player("device-crew-00001").await;
    let id = uuid_of(&create(&a, "Captain", "merchant_heir").await);
    g.set_gold(id, 10_000).await;
    let crew_rows = "SELECT count(*) FROM crew_member WHERE character_id = $1";

    // Hire: gold and the crew row committed before the answer.
    let c = a
        .rpc(
            "hire_crew",
            &json!({"character_id": id, "archetype": "porter"}),
        )
        .await
        .unwrap();
    let crew = c["crew"].as_array().unwrap();
    assert_eq!(crew.len(), 1, "{c}");
    assert_eq!(crew[0]["archetype"], "porter");
    let porter: Uuid = crew[0]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(c["gold"], 10_000 - 40);
    assert_eq!(c["capacity"], 240);
    assert_eq!(g.gold(id).await, 10_000 - 40);
    let row =
        g.pg.query_one(
            "SELECT character_id, archetype FROM crew_member WHERE id = $1",
            &[&porter],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, Uuid>(0), row.get::<_, String>(1)),
        (id, "porter".into())
    );

    let mut ws = a.socket().await;
    let c = ws
        .rpc(
            "hire_crew",
            &json!({"character_id": id, "archetype": "guard", "name": "Old Bram"}),
        )
        .await
        .unwrap();
    let guard = c["crew"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["archetype"] == "guard")
        .expect("the guard")
        .clone();
    assert_eq!(guard["name"], "Old Bram");
    let guard: Uuid = guard["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(g.count(crew_rows, id).await, 2);
    assert_eq!(g.gold(id).await, 10_000 - 40 - 90);

    // Bad hires change nothing.
    let before = g.digest().await;
    http_err(
        a.rpc(
            "hire_crew",
            &json!({"character_id": id, "archetype": "dragon"}),
        )
        .await,
        400,
        3,
        "archetype",
    );
    http_err(
        a.rpc(
            "hire_crew",
            &json!({"character_id": id, "archetype": "guard", "name": "x"}),
        )
        .await,
        400,
        3,
        "name",
    );
    http_err(
        a.rpc("hire_crew", &json!({"character_id": id, "archetype": 7}))
            .await,
        400,
        3,
        "invalid",
    );
    assert_eq!(g.digest().await, before);

    // Dismiss: the row goes at once; no refund.
    let c = a
        .rpc(
            "dismiss_crew",
            &json!({"character_id": id, "crew_id": guard}),
        )
        .await
        .unwrap();
    assert_eq!(c["crew"].as_array().unwrap().len(), 1);
    assert_eq!(
        g.count("SELECT count(*) FROM crew_member WHERE id = $1", guard)
            .await,
        0
    );
    assert_eq!(g.count(crew_rows, id).await, 1);
    assert_eq!(g.gold(id).await, 10_000 - 130);
    let before = g.digest().await;
    for crew_id in [guard, Uuid::new_v4()] {
        http_err(
            a.rpc(
                "dismiss_crew",
                &json!({"character_id": id, "crew_id": crew_id}),
            )
            .await,
            400,
            3,
            "no such crew member",
        );
    }
    // A porter carrying part of the load cannot be dismissed.
    let r = a
        .rpc("execute_trade", &trade(id, "grain", "buy", 110))
        .await
        .unwrap();
    assert_eq!(cargo_of(&r), map(&[("grain", 110)]));
    let before_trade_digest = g.digest().await;
    assert_ne!(before_trade_digest, before);
    http_err(
        a.rpc(
            "dismiss_crew",
            &json!({"character_id": id, "crew_id": porter}),
        )
        .await,
        400,
        9,
        "more cargo",
    );
    assert_eq!(g.digest().await, before_trade_digest);
    assert_eq!(g.count(crew_rows, id).await, 1);

    // At most 8 crew; hiring needs the gold.
    for _ in 1..8 {
        a.rpc(
            "hire_crew",
            &json!({"character_id": id, "archetype": "porter"}),
        )
        .await
        .unwrap();
    }
    assert_eq!(g.count(crew_rows, id).await, 8);
    let before = g.digest().await;
    http_err(
        a.rpc(
            "hire_crew",
            &json!({"character_id": id, "archetype": "porter"}),
        )
        .await,
        400,
        9,
        "at most 8",
    );
    assert_eq!(g.digest().await, before);
    let pauper = uuid_of(&create(&a, "Pauper", "sellsword").await);
    http_err(
        a.rpc(
            "hire_crew",
            &json!({"character_id": pauper, "archetype": "mercenary"}),
        )
        .await,
        400,
        9,
        "not enough gold",
    );
    assert_eq!(g.count(crew_rows, pauper).await, 0);
    assert_eq!(g.gold(pauper).await, 150);
    assert_eq!(g.count(crew_rows, id).await, 8);

    // learn_skill: a small change, answered at once and written by a later flush.
    let c = a
        .rpc(
            "learn_skill",
            &json!({"character_id": id, "skill": "haggling"}),
        )
        .await
        .unwrap();
    assert_eq!(c["skills"], json!([{"code": "haggling", "rank": 1}]));
    assert_eq!(c["skill_points"], 2);
    wait_until(
        "skill:haggling in character_attribute",
        Duration::from_secs(5),
        || async { g.attribute(id, "skill:haggling").await == Some(1) },
    )
    .await;
    wait_until("skill_points flushed", Duration::from_secs(5), || async {
        g.count(
            "SELECT skill_points::int8 FROM player_character WHERE id = $1",
            id,
        )
        .await
            == 2
    })
    .await;

    // Refusals: known but already learned, missing prerequisite, too few points, unknown.
    let before = g.digest().await;
    http_err(
        a.rpc(
            "learn_skill",
            &json!({"character_id": id, "skill": "haggling"}),
        )
        .await,
        400,
        9,
        "already learned",
    );
    http_err(
        a.rpc(
            "learn_skill",
            &json!({"character_id": id, "skill": "trade_empire"}),
        )
        .await,
        400,
        9,
        "requires",
    );
    http_err(
        a.rpc(
            "learn_skill",
            &json!({"character_id": id, "skill": "flying"}),
        )
        .await,
        400,
        3,
        "unknown skill",
    );
    let c = ws
        .rpc(
            "learn_skill",
            &json!({"character_id": id, "skill": "caravan_logistics"}),
        )
        .await
        .unwrap();
    assert_eq!(c["skill_points"], 0);
    socket_err(
        ws.rpc(
            "learn_skill",
            &json!({"character_id": id, "skill": "appraisal"}),
        )
        .await,
        3,
        Some(9),
        "skill points",
    );
    wait_until(
        "skill:caravan_logistics in character_attribute",
        Duration::from_secs(5),
        || async { g.attribute(id, "skill:caravan_logistics").await == Some(1) },
    )
    .await;
    assert_ne!(g.digest().await, before);
    assert_eq!(g.attribute(id, "skill:appraisal").await, None);
    assert_eq!(g.attribute(id, "skill:trade_empire").await, None);

    ws.close().await;
    g.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Passivation and fencing
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn an_idle_session_passivates_and_the_next_rpc_reactivates_it() {
    let g = Game::start(FREEZE, |c| c.idle_timeout = Duration::from_millis(300)).await;
    let a = g.player("device-idle-00001").await;
    let id = uuid_of(&create(&a, "Sleeper", "merchant_heir").await);
    assert_eq!(g.owner(id).await, (None, 0), "creation claims nothing");
    let quota0 = g.quota("grain").await;
    let mut ws = a.socket().await;
    ws.rpc("execute_trade", &trade(id, "grain", "buy", 5))
        .await
        .unwrap();
    ws.rpc(
        "learn_skill",
        &json!({"character_id": id, "skill": "haggling"}),
    )
    .await
    .unwrap();
    let before = ws
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .unwrap();
    let (owner, epoch) = g.owner(id).await;
    assert_eq!(owner.as_deref(), Some("test-0"));
    assert!(epoch >= 1);

    // Idle: flushed, claim released (the epoch stays), the market passivates too.
    wait_until("owner_node released", Duration::from_secs(5), || async {
        g.owner(id).await.0.is_none()
    })
    .await;
    assert_eq!(g.owner(id).await, (None, epoch));
    assert_eq!(
        g.attribute(id, "skill:haggling").await,
        Some(1),
        "flushed before release"
    );
    wait_until(
        "the market released its trade node",
        Duration::from_secs(5),
        || async {
            g.pg.query_one(
                "SELECT owner_node FROM trade_node WHERE code = $1",
                &[&NODE],
            )
            .await
            .unwrap()
            .get::<_, Option<String>>(0)
            .is_none()
        },
    )
    .await;
    let digest = g.digest().await;

    // The next RPC (on the socket opened before) activates a fresh session with the state intact.
    let after = ws
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(g.owner(id).await, (Some("test-0".into()), epoch + 1));
    assert_eq!(g.digest().await, digest, "reactivation writes nothing");
    let r = a
        .rpc("execute_trade", &trade(id, "grain", "sell", 5))
        .await
        .unwrap();
    assert_eq!(r["cargo"], json!([]));
    assert!(g.cargo(id).await.is_empty());
    assert_eq!(g.gold(id).await, int(&r, "gold"));
    assert_eq!(
        g.quota("grain").await,
        quota0,
        "the reactivated market took the sale back"
    );

    // And again, over HTTP this time.
    wait_until("released again", Duration::from_secs(5), || async {
        g.owner(id).await.0.is_none()
    })
    .await;
    let c = a
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(c["gold"], r["gold"]);
    assert_eq!(c["skills"], json!([{"code": "haggling", "rank": 1}]));
    assert_eq!(g.owner(id).await.1, epoch + 2);
    ws.close().await;
    g.stop().await;
}

/// A claim taken by "another node" while the session is live. What the client sees (documented
/// here): the stale session's settlement matches no row (its epoch is old), so nothing of it is
/// written; the session stops; the gateway retries the RPC against a fresh session, which
/// claims the row again (epoch + 1) and settles the trade exactly once. The client gets a
/// normal answer. A dirty (non-critical) change made by a fenced session is dropped.
#[actix_rt::test]
async fn a_fenced_session_writes_nothing_and_a_fresh_session_takes_over() {
    let g = Game::start(FREEZE, |_| {}).await;
    let a = g.player("device-fence-0001").await;
    let id = uuid_of(&create(&a, "Fenced", "merchant_heir").await);
    g.set_gold(id, 10_000).await;
    let other = g.other_db();
    let r = a
        .rpc("execute_trade", &trade(id, "grain", "buy", 5))
        .await
        .unwrap();
    let gold1 = int(&r, "gold");
    let quota1 = g.quota("grain").await;
    let (owner, e1) = g.owner(id).await;
    assert_eq!(owner.as_deref(), Some("test-0"));

    // Another node claims the character.
    let e2 = take_over_character(&other, id, "other").await;
    assert_eq!(e2, e1 + 1);

    let r = a
        .rpc("execute_trade", &trade(id, "grain", "buy", 3))
        .await
        .expect("the retry against a fresh session succeeds");
    assert_eq!(
        g.owner(id).await,
        (Some("test-0".into()), e2 + 1),
        "a fresh session claimed the row after the stale one was fenced"
    );
    assert_eq!(int(&r, "gold"), gold1 - int(&r, "total"));
    assert_eq!(g.gold(id).await, gold1 - int(&r, "total"), "applied once");
    assert_eq!(g.cargo(id).await, map(&[("grain", 8)]));
    assert_eq!(g.quota("grain").await, quota1 - 3, "quota changed once");

    // learn_skill is a critical write too: the stale session's write is fenced (counted), the
    // session stops, and the gateway's retry reaches a fresh session that claims the row and
    // writes the skill once. Nothing is acknowledged that is not in the database.
    let fenced_before = g.fenced_writes().await;
    let e4 = take_over_character(&other, id, "other").await;
    let c = a
        .rpc(
            "learn_skill",
            &json!({"character_id": id, "skill": "haggling"}),
        )
        .await
        .unwrap();
    assert_eq!(c["skills"], json!([{"code": "haggling", "rank": 1}]));
    assert!(
        g.fenced_writes().await > fenced_before,
        "the stale write was fenced"
    );
    assert_eq!(g.attribute(id, "skill:haggling").await, Some(1));
    assert_eq!(g.owner(id).await, (Some("test-0".into()), e4 + 1));
    assert_eq!(
        g.count(
            "SELECT skill_points::int8 FROM player_character WHERE id = $1",
            id
        )
        .await,
        c["skill_points"].as_i64().unwrap(),
        "the answer is what the database holds"
    );
    let c = a
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(c["skills"], json!([{"code": "haggling", "rank": 1}]));
    assert_eq!(c["gold"], r["gold"]);
    assert_eq!(cargo_of(&c), map(&[("grain", 8)]));
    g.stop().await;
}

/// `serai_fenced_writes_total` is "writes refused because a newer claim owns the row"; a trade
/// settlement refused that way is one.
#[actix_rt::test]
async fn a_fenced_trade_settlement_is_counted_in_serai_fenced_writes_total() {
    let g = Game::start(FREEZE, |_| {}).await;
    let a = g.player("device-fence-0002").await;
    let id = uuid_of(&create(&a, "Counted", "merchant_heir").await);
    a.rpc("execute_trade", &trade(id, "grain", "buy", 2))
        .await
        .unwrap();
    let before = g.fenced_writes().await;
    take_over_character(&g.other_db(), id, "other").await;
    a.rpc("execute_trade", &trade(id, "grain", "buy", 2))
        .await
        .unwrap();
    assert_eq!(g.cargo(id).await, map(&[("grain", 4)]));
    let after = g.fenced_writes().await;
    assert!(
        after > before,
        "the fenced settlement was not counted: serai_fenced_writes_total {before} -> {after}"
    );
    g.stop().await;
}

/// Sessions passivating (100 ms idle timeout), reactivating and being fenced by "another node"
/// while their clients trade: every trade is either acknowledged and stored exactly once, or
/// answered with an error and not stored at all.
#[actix_rt::test]
async fn trades_racing_passivation_and_fencing_are_stored_exactly_once() {
    const CLIENTS: usize = 6;
    const TRADES: usize = 20;
    const START: i64 = 100_000;
    let g = Game::start(FREEZE, |c| c.idle_timeout = Duration::from_millis(100)).await;
    let quota0 = g.quota("grain").await;
    let mut players = Vec::new();
    for i in 0..CLIENTS {
        let p = g.player(&format!("device-churn-{i:04}")).await;
        let id = uuid_of(&create(&p, &format!("Churn {i}"), "merchant_heir").await);
        g.set_gold(id, START).await;
        players.push((p, id));
    }
    let ids: Vec<Uuid> = players.iter().map(|(_, id)| *id).collect();

    let started = Instant::now();
    // "Another node" keeps claiming characters while they trade.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let thief = {
        let (done, other, ids) = (done.clone(), g.other_db(), ids.clone());
        tokio::spawn(async move {
            let mut claims_made = 0usize;
            let mut k = 0usize;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                k = (k * 7 + 3) % ids.len();
                take_over_character(&other, ids[k], "other").await;
                claims_made += 1;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            claims_made
        })
    };

    let runs = futures_util::future::join_all(players.iter().enumerate().map(|(i, (p, id))| {
        let id = *id;
        async move {
            let mut ws = p.socket().await;
            let (mut gold, mut held) = (0i64, 0i64);
            let mut errors = Vec::new();
            let mut seed = i as u64 * 31 + 7;
            for n in 0..TRADES {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let pause = (seed >> 33) % 200;
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let (side, q) = if held > 0 && n % 2 == 1 {
                    ("sell", held.min(1 + (seed >> 40) as i64 % 4))
                } else {
                    ("buy", 1 + (seed >> 44) as i64 % 3)
                };
                // Alternate transports: the socket and HTTP.
                let r = if n % 3 == 0 {
                    p.rpc("execute_trade", &trade(id, "grain", side, q)).await
                } else {
                    ws.rpc("execute_trade", &trade(id, "grain", side, q)).await
                };
                match r {
                    Ok(v) => {
                        let total = int(&v, "total");
                        gold += if side == "buy" { -total } else { total };
                        held += if side == "buy" { q } else { -q };
                        assert_eq!(int(&v, "gold"), START + gold, "{v}");
                        assert_eq!(cargo_of(&v).get("grain").copied().unwrap_or(0), held);
                    }
                    Err(e) => errors.push((side, q, e)),
                }
            }
            ws.close().await;
            (id, gold, held, errors)
        }
    }))
    .await;
    let trading = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Release);
    let claims_made = thief.await.unwrap();

    let mut cargo_total = 0;
    let mut all_errors = Vec::new();
    for (id, gold, held, errors) in runs {
        assert_eq!(
            g.gold(id).await,
            START + gold,
            "gold of {id}: acknowledged trades only"
        );
        assert_eq!(
            g.cargo(id).await.get("grain").copied().unwrap_or(0),
            held,
            "grain of {id}: acknowledged trades only"
        );
        cargo_total += held;
        all_errors.extend(errors);
    }
    assert_eq!(g.quota("grain").await, quota0 - cargo_total);
    let activations = g
        .metric("serai_character_activations_total", "from=\"database\"")
        .await;
    eprintln!(
        "{} trades, {claims_made} foreign claims, {activations} activations, {} errors, {:?}",
        CLIENTS * TRADES,
        all_errors.len(),
        trading
    );
    assert!(claims_made > 10, "{claims_made} claims");
    // The pauses between trades (around the idle timeout) and the foreign claims did end
    // sessions while their clients traded: they were activated from the database again.
    assert!(
        activations > CLIENTS as f64,
        "{activations} activations from the database for {CLIENTS} characters"
    );
    // Only "unavailable, try again" may come back (the gateway retries a replaced session a
    // few times, then gives up), and only now and then.
    for (side, q, e) in &all_errors {
        assert_eq!(e.grpc_code, Some(14), "{side} {q}: {e:?}");
    }
    assert!(
        all_errors.len() <= CLIENTS * TRADES / 4,
        "{} of {} trades failed: {all_errors:?}",
        all_errors.len(),
        CLIENTS * TRADES
    );
    g.stop().await;
}

/// A database outage: a change is refused with "not run" (14) from the first request, never
/// acknowledged from memory; the session goes idle and passivates during the outage (its final
/// flush fails and it stays). Once the database is back the change goes through, written
/// before its answer.
#[actix_rt::test]
async fn a_change_during_a_database_outage_is_not_run_and_goes_through_after() {
    let tdb = serai::localdb::TestDatabase::create()
        .await
        .expect("a test database");
    let (proxy, url) = common::client::proxied(&tdb).await;
    let t = common::client::start_game_node_on(tdb, FREEZE, |c| {
        c.database_url = url;
        c.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let pg = raw_client(&t.db.url).await;
    let g = Game { t, pg };
    let a = g.player("device-outage-0001").await;
    let id = uuid_of(&create(&a, "Outage", "merchant_heir").await);
    a.rpc("get_character", &json!({"character_id": id}))
        .await
        .unwrap();

    // Nothing is queued to write before the cut (a flush answers once all of it is
    // committed): the rows queued after it are the session's.
    g.flush().await;
    let at_cut = g.persistence_status().await;
    assert_eq!(at_cut["backlog"], 0, "{at_cut}");
    let count = |p: &Value, k: &str| p[k].as_u64().unwrap_or_else(|| panic!("no {k} in {p}"));
    proxy.cut();
    // From the first failing request, a database outage says "not run, try again" (14 / 503),
    // well within the request's deadline, and changes nothing.
    let asked = Instant::now();
    let e = a
        .rpc(
            "learn_skill",
            &json!({"character_id": id, "skill": "haggling"}),
        )
        .await
        .expect_err("nothing is acknowledged that is not written");
    assert_eq!((e.status, e.grpc_code), (503, Some(14)), "{e:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    // Idle for longer than the idle timeout: the session queues its final rows and asks for
    // their own flush (an entity flush), which fails; the rows are kept.
    wait_for(
        "the idle session's final flush to fail during the outage",
        Duration::from_secs(15),
        async || {
            let p = g.persistence_status().await;
            let tried = count(&p, "entity_flushes") > count(&at_cut, "entity_flushes");
            let failed = count(&p, "failed_flushes") > count(&at_cut, "failed_flushes");
            if tried && failed && count(&p, "backlog") > 0 {
                Ok(())
            } else {
                Err(p.to_string())
            }
        },
    )
    .await;
    proxy.restore();
    // The client asks again until the change goes through.
    wait_for(
        "learn_skill to go through after the outage",
        Duration::from_secs(15),
        async || {
            let asked = a
                .rpc(
                    "learn_skill",
                    &json!({"character_id": id, "skill": "haggling"}),
                )
                .await;
            match asked {
                Ok(c) => {
                    assert_eq!(c["skills"], json!([{"code": "haggling", "rank": 1}]));
                    Ok(())
                }
                Err(e) => {
                    assert_eq!(
                        e.grpc_code,
                        Some(14),
                        "only 'not run' while it recovers: {e:?}"
                    );
                    Err(format!("{e:?}"))
                }
            }
        },
    )
    .await;

    // The client retries until the node answers again.
    let c = wait_for(
        "get_character to answer after the outage",
        Duration::from_secs(15),
        async || {
            a.rpc("get_character", &json!({"character_id": id}))
                .await
                .map_err(|e| format!("{e:?}"))
        },
    )
    .await;
    assert_eq!(
        c["skills"],
        json!([{"code": "haggling", "rank": 1}]),
        "the acknowledged skill was lost across the outage"
    );
    assert_eq!(
        g.attribute(id, "skill:haggling").await,
        Some(1),
        "written before the answer"
    );
    g.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let g = Game::start(FREEZE, |_| {}).await;
    let a = g.player("device-badin-0001").await;
    let b = g.player("device-badin-0002").await;
    let id = uuid_of(&create(&a, "Target", "merchant_heir").await);
    let bid = uuid_of(&create(&b, "Bystander", "smuggler").await);
    a.rpc("execute_trade", &trade(id, "grain", "buy", 5))
        .await
        .unwrap();
    let mut ws = a.socket().await;
    let mut bws = b.socket().await;
    let before = g.digest().await;
    let ids = id.to_string();

    // Payloads that are not what execute_trade takes: (payload string, text in the message).
    let t = |rest: &str| format!("{{\"character_id\":\"{ids}\",{rest}}}");
    let malformed: Vec<(String, &str)> =
        vec![
        (String::new(), "payload is required"),
        ("{\"character_id\": ".into(), "invalid payload"),
        ("not json".into(), "invalid payload"),
        ("[1, 2]".into(), "invalid payload"),
        ("null".into(), "invalid payload"),
        ("\"a string\"".into(), "invalid payload"),
        ("42".into(), "invalid payload"),
        // Wrong types.
        (
            t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":\"5\""),
            "invalid type",
        ),
        (
            t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":true"),
            "invalid type",
        ),
        (
            t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":null"),
            "invalid type",
        ),
        (
            t("\"good\":7,\"side\":\"buy\",\"quantity\":5"),
            "invalid type",
        ),
        (
            t("\"good\":\"grain\",\"side\":\"steal\",\"quantity\":5"),
            "unknown variant",
        ),
        (
            t("\"good\":\"grain\",\"side\":1,\"quantity\":5"),
            "invalid",
        ),
        (
            t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":5,\"price_limit\":\"10\""),
            "invalid type",
        ),
        (
            "{\"character_id\":42,\"good\":\"grain\",\"side\":\"buy\",\"quantity\":5}".into(),
            "invalid",
        ),
        (
            "{\"character_id\":\"not-a-uuid\",\"good\":\"grain\",\"side\":\"buy\",\"quantity\":5}"
                .into(),
            "invalid",
        ),
        // Unknown and missing fields.
        (
            t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":5,\"discount\":50"),
            "unknown field",
        ),
        (
            t("\"good\":\"grain\",\"side\":\"buy\",\"Quantity\":5"),
            "unknown field",
        ),
        (t("\"good\":\"grain\",\"side\":\"buy\""), "missing field"),
        // Quantities: zero, negative, huge, fractional.
        (t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":0"), "quantity"),
        (t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":-1"), "quantity"),
        (t("\"good\":\"grain\",\"side\":\"sell\",\"quantity\":-5"), "quantity"),
        (t("\"good\":\"grain\",\"side\":\"sell\",\"quantity\":0"), "quantity"),
        (
            t(&format!("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":{}", i64::MIN)),
            "quantity",
        ),
        (
            t(&format!("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":{}", i64::MAX)),
            "quantity",
        ),
        (
            t(&format!("\"good\":\"grain\",\"side\":\"sell\",\"quantity\":{}", i64::MAX)),
            "quantity",
        ),
        (t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":10001"), "quantity"),
        (
            t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":18446744073709551615"),
            "invalid value",
        ),
        (
            t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":1e30"),
            "invalid type",
        ),
        (
            t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":1.5"),
            "invalid type",
        ),
        (
            t("\"good\":\"grain\",\"side\":\"buy\",\"quantity\":5,\"price_limit\":1e30"),
            "invalid type",
        ),
        // Unknown goods.
        (t("\"good\":\"unobtainium\",\"side\":\"buy\",\"quantity\":1"), "unknown good"),
        (t("\"good\":\"\",\"side\":\"buy\",\"quantity\":1"), "unknown good"),
        (t("\"good\":\"GRAIN\",\"side\":\"sell\",\"quantity\":1"), "unknown good"),
    ];
    for (payload, text) in &malformed {
        let r = a.rpc_str("execute_trade", payload).await;
        match &r {
            Err(e) if e.status == 400 && e.code == 3 => assert!(
                e.message.to_lowercase().contains(text),
                "{payload}: message {:?} lacks {text:?}",
                e.message
            ),
            other => panic!("{payload}: expected 400 code 3, got {other:?}"),
        }
        match ws.rpc_str("execute_trade", payload).await {
            Err(e) if e.code == 3 && e.grpc_code == Some(3) => {}
            other => panic!("socket {payload}: expected code 3 (grpc 3), got {other:?}"),
        }
    }
    // Other RPCs: wrong types and unknown fields.
    for (rpc, payload) in [
        ("get_character", json!({"character_id": 5})),
        ("get_character", json!({"character_id": id, "extra": true})),
        ("get_trade_quotes", json!({"character": id})),
        ("delete_character", json!({"character_id": [id]})),
        ("hire_crew", json!({"character_id": id, "archetype": null})),
        (
            "dismiss_crew",
            json!({"character_id": id, "crew_id": "nobody"}),
        ),
        ("learn_skill", json!({"character_id": id, "skill": 1})),
        ("create_character", json!({"name": 5, "faction": FACTION})),
    ] {
        http_err(a.rpc(rpc, &payload).await, 400, 3, "invalid payload");
        socket_err(ws.rpc(rpc, &payload).await, 3, Some(3), "invalid payload");
    }

    // HTTP bodies that are not a JSON string literal.
    for body in [&b"{\"character_id\":1}"[..], b"\"unterminated", b"[\"a\"]"] {
        let r = a.rpc_raw("execute_trade", body).await;
        assert_eq!(
            (r.status, &r.json()["code"]),
            (400, &json!(3)),
            "{}",
            r.body
        );
    }

    // Unknown RPC ids: 404 code 5 over HTTP, code 6 on the socket.
    let payload = trade(id, "grain", "buy", 1);
    for rpc in ["execute_trades", "executetrade", "admin_give_gold"] {
        http_err(a.rpc(rpc, &payload).await, 404, 5, "not found");
        socket_err(ws.rpc(rpc, &payload).await, 6, None, "");
    }

    // Someone else's character: every side, both transports.
    for side in ["buy", "sell"] {
        http_err(
            b.rpc("execute_trade", &trade(id, "grain", side, 1)).await,
            403,
            7,
            "another account",
        );
        socket_err(
            bws.rpc("execute_trade", &trade(id, "grain", side, 1)).await,
            3,
            Some(7),
            "another account",
        );
    }
    // ... even with a bad quantity the ownership check comes first or the input is refused:
    // either way no change.
    let r = b.rpc("execute_trade", &trade(id, "grain", "sell", 0)).await;
    assert!(r.is_err(), "{r:?}");

    // Tokens: missing, garbage, expired, forged, tampered, a refresh token.
    let claims_json = common::client::jwt_claims(&a.token);
    let mut expired: Claims = serde_json::from_value(claims_json.clone()).unwrap();
    expired.iat -= 10_000;
    expired.exp = expired.iat + 60;
    let key = jsonwebtoken::EncodingKey::from_secret(g.t.config.session_encryption_key.as_bytes());
    let expired = encode_token(&expired, &key).unwrap();
    let mut forged: Claims = serde_json::from_value(claims_json).unwrap();
    forged.exp += 3600;
    let forged = encode_token(
        &forged,
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-server-key"),
    )
    .unwrap();
    let mut tampered = a.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for token in [
        "",
        "garbage",
        expired.as_str(),
        forged.as_str(),
        tampered.as_str(),
        a.refresh_token.as_str(),
    ] {
        let c = a.with_token(token);
        http_err(
            c.rpc("execute_trade", &trade(id, "grain", "buy", 1)).await,
            401,
            16,
            "",
        );
        match GameSocket::connect(g.addr(), token).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 401, "socket with {token:?}")
            }
            Err(e) => panic!("socket with {token:?}: expected 401, got {e}"),
            Ok(_) => panic!("socket with {token:?}: expected 401, got a connection"),
        }
    }
    // A wrong http_key.
    let body = serde_json::to_string(&trade(id, "grain", "buy", 1).to_string()).unwrap();
    let r = request(
        g.addr(),
        "POST",
        "/v2/rpc/execute_trade?http_key=wrong",
        &[],
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        (r.status, &r.json()["code"]),
        (401, &json!(16)),
        "{}",
        r.body
    );

    // A wrong server key: no account is created.
    for key in ["wrongkey", ""] {
        let auth = basic(key);
        let r = request(
            g.addr(),
            "POST",
            "/v2/account/authenticate/device",
            &[("Authorization", &auth)],
            json!({"id": "device-intruder-01"}).to_string().as_bytes(),
        )
        .await;
        assert_eq!(
            (r.status, &r.json()["code"]),
            (401, &json!(16)),
            "{}",
            r.body
        );
    }
    let r = request(
        g.addr(),
        "POST",
        "/v2/account/authenticate/device",
        &[],
        json!({"id": "device-intruder-01"}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);

    // An oversized socket frame holding a valid trade: closed with 1009, the trade not made.
    let padded = format!(
        "{{\"character_id\":\"{ids}\",\"good\":\"grain\",\"side\":\"buy\",\"quantity\":1{}}}",
        " ".repeat(5000)
    );
    let frame = json!({"cid": "big", "rpc": {"id": "execute_trade", "payload": padded}});
    let mut big = a.socket().await;
    big.send_text(&frame.to_string()).await;
    assert_eq!(
        big.closed(Duration::from_secs(5)).await,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Size)
    );
    // The other socket of the same user is unaffected.
    ws.rpc("get_character", &json!({"character_id": id}))
        .await
        .unwrap();

    // Every request above was answered; whatever the node still had queued to write is
    // committed once an explicit flush answers.
    g.flush().await;
    assert_eq!(g.digest().await, before, "bad input changed the database");
    assert_eq!(g.cargo(id).await, map(&[("grain", 5)]));
    assert!(g.cargo(bid).await.is_empty());
    ws.close().await;
    bws.close().await;
    g.stop().await;
}
