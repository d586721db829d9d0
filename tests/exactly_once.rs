//! Exactly-once game requests (issue 9), end to end over real nodes in this process
//! (`TestCluster`), real HTTP and sockets, and a real PostgreSQL checked directly with SQL:
//!
//! - concurrent copies of one `request_id` apply once and all get the same answer; the same id
//!   for another request is refused (409 / code 6) and changes nothing;
//! - a forwarded reply the caller cannot read is *may have run* (504 / code 4): the trade is in
//!   the database once, and a retry with the same id answers it without applying it again;
//! - a commit whose outcome is unknown is *may have run*; the session reloads, and a battle
//!   settled afterwards does not undo the trade;
//! - a repeat after the owner changed returns the first answer and applies nothing;
//! - invalid `request_id`s are refused (400 / code 3) and change nothing;
//! - requests that waited behind a stalled owner past their deadline never run later;
//! - the other state-changing RPCs (create, dismiss, travel, delete) answer repeats alike;
//! - the market does not hand back stock that a trade with an unknown commit took (this one
//!   waits for the market's reservation to expire: about 30 s).
//!
//! Recovery is frozen at the home market (set before the nodes load the catalog), so quotas
//! move only with the trades under test and are compared exactly.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use common::client::{request, GameClient, GameSocket};
use common::cluster::TestCluster;
use common::node::Response;
use serai::character::CharacterSession;
use serai::config::Config;
use serai::localdb::TestDatabase;
use serai::routing::placement::Owner;

/// Where every character of these tests starts and trades.
const HOME: &str = "port_azul";
const FACTION: &str = "merchant_league";
/// Freezes recovery at the home market, so quotas move only with trades.
const FREEZE: &str = "UPDATE trade_node_stock SET restock_per_min = 0 WHERE node = 'port_azul'";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A fresh database with the schema, the default catalog and recovery frozen at [`HOME`].
async fn frozen_db() -> TestDatabase {
    common::migrated_db_with(FREEZE).await
}

struct World {
    cluster: TestCluster,
    pg: tokio_postgres::Client,
}

impl World {
    /// `n` nodes on a fresh frozen database.
    async fn start(n: usize, tune: impl Fn(usize, &mut Config)) -> World {
        World::on(frozen_db().await, n, tune).await
    }

    async fn on(db: TestDatabase, n: usize, tune: impl Fn(usize, &mut Config)) -> World {
        let cluster = TestCluster::start_on(db, n, tune).await;
        let pg = common::raw_client(&cluster.db.url).await;
        World { cluster, pg }
    }

    async fn stop(mut self) {
        tokio::time::timeout(Duration::from_secs(60), self.cluster.stop_all())
            .await
            .expect("the cluster stops in time");
    }

    fn running(&self) -> Vec<usize> {
        (0..self.cluster.nodes.len())
            .filter(|i| self.cluster.nodes[*i].is_some())
            .collect()
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.cluster.node(i).client_addr
    }

    /// The node owning character `id`; every running node agrees on it.
    fn owner(&self, id: Uuid) -> usize {
        let owners: Vec<usize> = self
            .running()
            .into_iter()
            .filter(|i| {
                self.cluster
                    .node(*i)
                    .services
                    .router
                    .owner::<CharacterSession>(&id)
                    == Owner::Local
            })
            .collect();
        assert_eq!(owners.len(), 1, "one owner for {id}: {owners:?}");
        owners[0]
    }

    /// A running node other than `i`.
    fn other_than(&self, i: usize) -> usize {
        self.running()
            .into_iter()
            .find(|n| *n != i)
            .expect("another running node")
    }

    async fn player(&self, node: usize, device: &str) -> GameClient {
        GameClient::device(self.addr(node), device).await
    }

    /// A new character at [`HOME`] for `c`, with `gold` in its purse (set before its session
    /// first loads it).
    async fn character(&self, c: &GameClient, name: &str, gold: i64) -> Uuid {
        let v = c
            .rpc(
                "create_character",
                &json!({"name": name, "faction": FACTION, "background": "merchant_heir"}),
            )
            .await
            .unwrap_or_else(|e| panic!("create_character {name}: {e:?}"));
        assert_eq!(v["location"], HOME);
        let id: Uuid = v["id"].as_str().expect("an id").parse().expect("a UUID");
        let n = self
            .pg
            .execute(
                "UPDATE player_character SET gold = $2 WHERE id = $1",
                &[&id, &gold],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
        id
    }

    async fn gold(&self, id: Uuid) -> i64 {
        common::rows::gold(&self.pg, id).await
    }

    async fn cargo(&self, id: Uuid) -> BTreeMap<String, i64> {
        common::rows::cargo(&self.pg, id).await
    }

    async fn quota(&self, good: &str) -> i64 {
        common::rows::quota(&self.pg, HOME, good).await
    }

    /// The request ids stored for `user`, sorted.
    async fn receipts(&self, user: Uuid) -> Vec<String> {
        self.pg
            .query(
                "SELECT request_id FROM request_receipt WHERE user_id = $1 ORDER BY request_id",
                &[&user],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Everything a game request could change, as text: characters (ownership columns and
    /// timestamps left out), cargo, crew, attributes, items, the home market's quotas and
    /// prices, and the stored receipts.
    async fn digest(&self) -> String {
        self.pg
            .query_one(
                "SELECT coalesce(string_agg(x, E'\\n' ORDER BY x), '') FROM ( \
                 SELECT format('character %s %s %s %s %s %s %s %s %s %s', id, user_id, name, gold, \
                        location, level, xp, hp, skill_points, battle_id) AS x FROM player_character \
                 UNION ALL SELECT format('cargo %s %s %s', character_id, good, quantity) FROM caravan_cargo \
                 UNION ALL SELECT format('crew %s %s %s %s', character_id, id, archetype, name) FROM crew_member \
                 UNION ALL SELECT format('attribute %s %s %s', character_id, code, value) FROM character_attribute \
                 UNION ALL SELECT format('item %s %s %s', character_id, template, quantity) FROM character_item \
                 UNION ALL SELECT format('market %s %s %s %s', node, good, price, quota) FROM market_price_snapshot \
                   WHERE node = 'port_azul' \
                 UNION ALL SELECT format('receipt %s %s %s', user_id, request_id, answer) FROM request_receipt \
                 ) AS t",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn count(&self, sql: &str, id: Uuid) -> i64 {
        self.pg.query_one(sql, &[&id]).await.unwrap().get(0)
    }

    /// The cheapest good to buy at [`HOME`] (asking for quotes also activates the session and
    /// the market).
    async fn cheapest(&self, c: &GameClient, id: Uuid) -> String {
        common::rows::cheapest(c, id, HOME).await
    }
}

/// The same player talking to another node.
fn at(c: &GameClient, addr: SocketAddr) -> GameClient {
    GameClient { addr, ..c.clone() }
}

/// An RPC over HTTP as the client sends it; the whole response.
async fn call(c: &GameClient, id: &str, payload: &Value) -> Response {
    let body = serde_json::to_string(&payload.to_string()).expect("a JSON string");
    c.rpc_raw(id, body.as_bytes()).await
}

/// The payload of a successful answer, parsed.
#[track_caller]
fn payload(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    serde_json::from_str(v["payload"].as_str().expect("a payload string")).expect("JSON payload")
}

/// Asserts an error answer: HTTP status and gRPC code; returns its message.
#[track_caller]
fn refused(r: &Response, status: u16, code: i64) -> String {
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    assert_eq!(
        (r.status, v["code"].as_i64()),
        (status, Some(code)),
        "expected {status}/{code}, got {} {}",
        r.status,
        r.body
    );
    v["message"].as_str().unwrap_or_default().to_string()
}

/// Asserts the "may have run" answer (504, code 4) and that it tells the client what to do.
#[track_caller]
fn may_have_run(r: &Response) {
    let message = refused(r, 504, 4);
    assert!(
        message.contains("request_id"),
        "the message says to retry with the same request_id: {message:?}"
    );
}

fn buy(id: Uuid, good: &str, quantity: i64, request_id: &str) -> Value {
    json!({"character_id": id, "good": good, "side": "buy", "quantity": quantity,
           "request_id": request_id})
}

fn int(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} is not an integer in {v}"))
}

/// A server-to-server RPC (`?http_key=`) over HTTP.
async fn server_rpc(addr: SocketAddr, id: &str, payload: &Value) -> Response {
    let body = serde_json::to_string(&payload.to_string()).unwrap();
    request(
        addr,
        "POST",
        &format!("/v2/rpc/{id}?http_key=defaulthttpkey"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await
}

/// Attacks the first enemy standing with everyone, over HTTP, until the battle ends; the last
/// answer.
async fn fight(c: &GameClient, battle_id: &str, mut view: Value) -> Value {
    let mut turns = 0;
    while view["state"] == "active" {
        turns += 1;
        assert!(turns <= 100, "the battle must end");
        let target = view["combatants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["side"] == "enemy" && c["alive"] == true)
            .expect("an enemy standing")["id"]
            .clone();
        let actions: Vec<Value> = view["combatants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["side"] == "party" && c["alive"] == true)
            .map(|c| json!({"actor": c["id"], "action": "attack", "target": target}))
            .collect();
        let next = view["turn"].as_u64().unwrap() + 1;
        let r = call(
            c,
            "submit_turn",
            &json!({"battle_id": battle_id, "turn": next, "actions": actions,
                    "request_id": format!("turn-{battle_id}-{next}")}),
        )
        .await;
        view = payload(&r);
        assert_eq!(view["turn"], next);
    }
    view
}

/// One socket RPC; the whole answer frame (matched by `cid`).
async fn socket_call(sock: &mut GameSocket, cid: &str, id: &str, payload: &Value) -> Value {
    let frame = json!({"cid": cid, "rpc": {"id": id, "payload": payload.to_string()}});
    sock.send_text(&frame.to_string()).await;
    loop {
        let v = sock.next_json().await;
        if v.get("cid").and_then(Value::as_str) == Some(cid) {
            return v;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// 20 copies of one `execute_trade` (one `request_id`) sent at once, spread over three nodes:
/// one application, 20 byte-equal answers. The same id for another payload, another RPC or
/// another character of the same user: 409 / code 6, nothing changed.
#[actix_rt::test]
async fn concurrent_copies_of_one_request_apply_once_and_answer_alike() {
    let w = World::start(3, |_, _| {}).await;
    let c = w.player(0, "exactly-once-copies").await;
    let id = w.character(&c, "Copycat", 10_000).await;
    let good = w.cheapest(&c, id).await;
    let (gold0, quota0) = (w.gold(id).await, w.quota(&good).await);

    let trade = buy(id, &good, 1, "copies-0000001");
    let copies = (0..20).map(|i| {
        let c = at(&c, w.addr(i % 3));
        let trade = trade.clone();
        async move { call(&c, "execute_trade", &trade).await }
    });
    let answers = join_all(copies).await;
    let first = payload(&answers[0]);
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(r.status, 200, "copy {i}: {}", r.body);
        assert_eq!(r.body, answers[0].body, "copy {i} answers like copy 0");
    }
    let total = int(&first, "total");
    assert!(total > 0, "{first}");
    assert_eq!(int(&first, "gold"), gold0 - total);
    assert_eq!(first["cargo"], json!([{"good": good, "quantity": 1}]));
    assert_eq!(w.gold(id).await, gold0 - total, "gold paid once");
    assert_eq!(w.cargo(id).await, BTreeMap::from([(good.clone(), 1)]));
    assert_eq!(w.quota(&good).await, quota0 - 1, "one unit left the market");
    assert_eq!(w.receipts(c.user_id).await, vec!["copies-0000001"]);

    // The same id for something else: refused wherever it is sent, and nothing changes.
    let other = w.character(&c, "Copycat Two", 10_000).await;
    let before = w.digest().await;
    for i in 0..3 {
        let c = at(&c, w.addr(i));
        let r = call(&c, "execute_trade", &buy(id, &good, 2, "copies-0000001")).await;
        let message = refused(&r, 409, 6);
        assert!(message.contains("request_id"), "{message}");
        let r = call(
            &c,
            "hire_crew",
            &json!({"character_id": id, "archetype": "porter", "request_id": "copies-0000001"}),
        )
        .await;
        refused(&r, 409, 6);
    }
    // Another character's session never saw the id: the database's receipt refuses it.
    let r = call(&c, "execute_trade", &buy(other, &good, 1, "copies-0000001")).await;
    refused(&r, 409, 6);
    assert_eq!(w.digest().await, before, "a refused reuse changes nothing");
    assert_eq!(w.gold(other).await, 10_000);

    // And a repeat of the real one still answers the first answer.
    let again = call(&at(&c, w.addr(2)), "execute_trade", &trade).await;
    assert_eq!(again.body, answers[0].body);
    assert_eq!(w.digest().await, before);
    w.stop().await;
}

/// The owner runs a trade and its reply cannot be read by the node that forwarded it: the
/// client hears "may have run" (504 / code 4; over the socket, the same in its own words), the
/// trade is in the database once, and a retry with the same `request_id` answers it without
/// applying it again.
#[actix_rt::test]
async fn an_unreadable_reply_may_have_run_and_its_retry_does_not_apply_again() {
    let w = World::start(2, |_, _| {}).await;
    let c = w.player(0, "exactly-once-garbled").await;
    let id = w.character(&c, "Garbled", 10_000).await;
    let owner = w.owner(id);
    let via = w.other_than(owner);
    let c = at(&c, w.addr(via));
    let good = w.cheapest(&c, id).await;
    let (gold0, quota0) = (w.gold(id).await, w.quota(&good).await);

    let faults = w.cluster.node(owner).services.router.faults().clone();
    faults.garble_reply.store(1, Ordering::SeqCst);
    let trade = buy(id, &good, 1, "garbled-000001");
    may_have_run(&call(&c, "execute_trade", &trade).await);
    assert_eq!(
        faults.garble_reply.load(Ordering::SeqCst),
        0,
        "the trade's reply was the one spoiled"
    );
    // It ran, once.
    let spent = gold0 - w.gold(id).await;
    assert!(spent > 0, "the trade was applied");
    assert_eq!(w.cargo(id).await, BTreeMap::from([(good.clone(), 1)]));
    assert_eq!(w.quota(&good).await, quota0 - 1);
    assert_eq!(w.receipts(c.user_id).await, vec!["garbled-000001"]);
    let before = w.digest().await;

    // The client's recipe: the same request again, with the same id.
    let again = call(&c, "execute_trade", &trade).await;
    let answer = payload(&again);
    assert_eq!(
        (int(&answer, "gold"), int(&answer, "total")),
        (gold0 - spent, spent)
    );
    assert_eq!(answer["cargo"], json!([{"good": good, "quantity": 1}]));
    let direct = call(&at(&c, w.addr(owner)), "execute_trade", &trade).await;
    assert_eq!(direct.body, again.body, "the owner answers the same");
    assert_eq!(w.digest().await, before, "the retries applied nothing");

    // Over the socket.
    faults.garble_reply.store(1, Ordering::SeqCst);
    let mut sock = c.socket().await;
    let trade = buy(id, &good, 1, "garbled-000002");
    let v = socket_call(&mut sock, "1", "execute_trade", &trade).await;
    let error = &v["error"];
    assert_eq!(error["context"]["grpc_code"], "4", "{v}");
    assert_eq!(error["context"]["outcome"], "may_have_run", "{v}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("request_id"),
        "{v}"
    );
    assert_eq!(faults.garble_reply.load(Ordering::SeqCst), 0);
    let gold1 = w.gold(id).await;
    assert!(gold1 < gold0 - spent, "the second trade was applied");
    let v = socket_call(&mut sock, "2", "execute_trade", &trade).await;
    let answer: Value = serde_json::from_str(
        v["rpc"]["payload"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}")),
    )
    .unwrap();
    assert_eq!(int(&answer, "gold"), gold1);
    assert_eq!(answer["cargo"], json!([{"good": good, "quantity": 2}]));
    assert_eq!(w.gold(id).await, gold1);
    assert_eq!(w.cargo(id).await, BTreeMap::from([(good.clone(), 2)]));
    assert_eq!(w.quota(&good).await, quota0 - 2);
    assert_eq!(
        w.receipts(c.user_id).await,
        vec!["garbled-000001", "garbled-000002"]
    );
    sock.close().await;
    w.stop().await;
}

/// A trade whose commit succeeded but whose answer was lost: the client hears "may have run";
/// the session reloads (the next request sees the trade); the retry answers from the receipt;
/// and a battle settled afterwards adds its change to the traded gold instead of writing back
/// the gold from before the trade.
#[actix_rt::test]
async fn a_battle_after_a_trade_with_an_unknown_commit_does_not_undo_it() {
    let w = World::start(2, |_, _| {}).await;
    let c = w.player(0, "exactly-once-unknown-commit").await;
    let id = w.character(&c, "Unsure", 10_000).await;
    let owner = w.owner(id);
    let via = w.other_than(owner);
    let c = at(&c, w.addr(via));
    let good = w.cheapest(&c, id).await;
    let (gold0, quota0) = (w.gold(id).await, w.quota(&good).await);

    let faults = w.cluster.node(owner).services.db.faults().clone();
    faults.commit_unknown.store(1, Ordering::SeqCst);
    let trade = buy(id, &good, 2, "unknown-commit-1");
    may_have_run(&call(&c, "execute_trade", &trade).await);
    assert_eq!(
        faults.commit_unknown.load(Ordering::SeqCst),
        0,
        "the trade's commit was the one spoiled"
    );
    let spent = gold0 - w.gold(id).await;
    assert!(spent > 0, "the commit happened");
    assert_eq!(w.cargo(id).await, BTreeMap::from([(good.clone(), 2)]));
    assert_eq!(w.quota(&good).await, quota0 - 2);

    // The session reloaded: it serves what the database holds.
    let view = c
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .expect("get_character");
    assert_eq!(int(&view, "gold"), gold0 - spent, "memory reloaded: {view}");
    assert_eq!(view["cargo"], json!([{"good": good, "quantity": 2}]));
    // The retry answers from the receipt and applies nothing.
    let before = w.digest().await;
    let answer = payload(&call(&c, "execute_trade", &trade).await);
    assert_eq!(
        (int(&answer, "gold"), int(&answer, "total")),
        (gold0 - spent, spent)
    );
    assert_eq!(w.digest().await, before);

    // Bandits: the battle is fought to its end and settled.
    let r = server_rpc(w.addr(via), "force_encounter", &json!({"character_id": id})).await;
    let battle = payload(&r);
    assert_eq!(battle["state"], "active");
    let battle_id = battle["battle_id"].as_str().unwrap().to_string();
    let end = fight(&c, &battle_id, battle).await;
    assert_eq!(end["settled"], true, "{end}");
    let result = &end["result"];
    let delta = int(result, "gold");
    assert_eq!(
        w.gold(id).await,
        gold0 - spent + delta,
        "the battle's change ({delta}) on top of the trade: {result}"
    );
    let lost: i64 = result["cargo_lost"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|x| x["good"] == good.as_str())
                .map(|x| int(x, "quantity"))
                .sum()
        })
        .unwrap_or(0);
    let held = w.cargo(id).await.get(&good).copied().unwrap_or(0);
    assert_eq!(held, 2 - lost, "cargo: bought 2, lost {lost}: {result}");
    let view = c
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .expect("get_character");
    assert_eq!(int(&view, "gold"), w.gold(id).await);
    w.stop().await;
}

/// `learn_skill` and `hire_crew` applied, then their owner drains and another node owns the
/// character: repeats with the same ids, through any node, return the first answers and apply
/// nothing (skill points spent once, one crew member); a reuse of an id is still refused.
#[actix_rt::test]
async fn a_repeat_after_the_owner_changed_returns_the_first_answer_and_applies_nothing() {
    let mut w = World::start(3, |_, _| {}).await;
    let c = w.player(0, "exactly-once-handoff").await;
    let id = w.character(&c, "Mover", 10_000).await;
    let owner = w.owner(id);
    let via = w.other_than(owner);
    let c = at(&c, w.addr(via));
    let start = c
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .expect("get_character");
    let points = int(&start, "skill_points");
    assert!(points >= 1, "{start}");

    let learn = json!({"character_id": id, "skill": "haggling", "request_id": "learn-haggling-1"});
    let hire = json!({"character_id": id, "archetype": "porter", "name": "Pim",
                      "request_id": "hire-porter-0001"});
    let learned = payload(&call(&c, "learn_skill", &learn).await);
    assert_eq!(learned["skills"], json!([{"code": "haggling", "rank": 1}]));
    assert_eq!(int(&learned, "skill_points"), points - 1);
    let hired = payload(&call(&c, "hire_crew", &hire).await);
    assert_eq!(hired["crew"].as_array().map(Vec::len), Some(1), "{hired}");
    // Both are critical writes: in the database before their answers.
    let skill_points = "SELECT skill_points::int8 FROM player_character WHERE id = $1";
    let crew = "SELECT count(*) FROM crew_member WHERE character_id = $1";
    assert_eq!(w.count(skill_points, id).await, points - 1);
    assert_eq!(w.count(crew, id).await, 1);
    assert_eq!(w.gold(id).await, int(&hired, "gold"));

    // The owner drains: the character moves to another node.
    w.cluster.stop(owner).await;
    w.cluster.wait_converged(2, Duration::from_secs(10)).await;
    let new_owner = w.owner(id);
    assert_ne!(new_owner, owner);
    let before = w.digest().await;
    let mut nodes = vec![via, new_owner];
    nodes.dedup();
    for node in nodes {
        let c = at(&c, w.addr(node));
        // Twice each: the first repeat reaches a fresh session (the receipt in the database),
        // the second may be answered from its memory.
        for _ in 0..2 {
            let again = payload(&call(&c, "learn_skill", &learn).await);
            assert_eq!(again, learned, "learn_skill repeated via node-{node}");
            let again = payload(&call(&c, "hire_crew", &hire).await);
            assert_eq!(again, hired, "hire_crew repeated via node-{node}");
        }
    }
    assert_eq!(w.digest().await, before, "the repeats applied nothing");
    assert_eq!(w.count(skill_points, id).await, points - 1);
    assert_eq!(w.count(crew, id).await, 1);

    // The ids stay taken for other requests.
    let r = call(
        &c,
        "hire_crew",
        &json!({"character_id": id, "archetype": "guard", "request_id": "hire-porter-0001"}),
    )
    .await;
    refused(&r, 409, 6);
    let r = call(
        &c,
        "learn_skill",
        &json!({"character_id": id, "skill": "appraisal", "request_id": "learn-haggling-1"}),
    )
    .await;
    refused(&r, 409, 6);
    assert_eq!(w.digest().await, before);

    // The new owner serves the character as the database holds it.
    let view = c
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .expect("get_character");
    assert_eq!(int(&view, "skill_points"), points - 1);
    assert_eq!(view["crew"].as_array().map(Vec::len), Some(1));
    w.stop().await;
}

/// A `request_id` that is not a string of 8 to 64 characters of `[A-Za-z0-9_-]` is refused
/// (400 / code 3) before anything runs; the bounds themselves are accepted; `null` means none.
#[actix_rt::test]
async fn invalid_request_ids_are_refused_and_change_nothing() {
    let w = World::start(2, |_, _| {}).await;
    let c = w.player(0, "exactly-once-invalid").await;
    let id = w.character(&c, "Checked", 10_000).await;
    let c = at(&c, w.addr(w.other_than(w.owner(id))));
    let good = w.cheapest(&c, id).await;
    let characters = "SELECT count(*) FROM player_character WHERE user_id = $1";
    let before = w.digest().await;

    let bad = [
        json!("short"),
        json!("seven77"),
        json!("a".repeat(65)),
        json!("has space"),
        json!("semi;colon"),
        json!("dotted.id.here"),
        json!("ünïcödé-id"),
        json!(""),
        json!(12345678),
        json!(true),
        json!({"id": "abcdefgh"}),
        json!(["abcdefgh"]),
    ];
    for rid in &bad {
        let requests = [
            ("execute_trade", buy(id, &good, 1, "placeholder")),
            (
                "hire_crew",
                json!({"character_id": id, "archetype": "porter"}),
            ),
            (
                "learn_skill",
                json!({"character_id": id, "skill": "haggling"}),
            ),
            (
                "create_character",
                json!({"name": "Extra", "faction": FACTION, "background": "sellsword"}),
            ),
        ];
        for (rpc, mut p) in requests {
            p["request_id"] = rid.clone();
            let r = call(&c, rpc, &p).await;
            let message = refused(&r, 400, 3);
            assert!(
                message.contains("request_id"),
                "{rpc} with {rid}: {message:?}"
            );
        }
    }
    assert_eq!(w.digest().await, before, "nothing changed");
    assert_eq!(w.count(characters, c.user_id).await, 1);
    assert!(w.receipts(c.user_id).await.is_empty());

    // The bounds are valid ids; `null` is no id (applied, nothing stored).
    let (shortest, longest) = ("Ab3_-xyz".to_string(), "Z9_-".repeat(16));
    payload(&call(&c, "execute_trade", &buy(id, &good, 1, &shortest)).await);
    payload(&call(&c, "execute_trade", &buy(id, &good, 1, &longest)).await);
    let mut none = buy(id, &good, 1, "");
    none["request_id"] = Value::Null;
    payload(&call(&c, "execute_trade", &none).await);
    let mut stored = vec![shortest, longest];
    stored.sort();
    assert_eq!(w.receipts(c.user_id).await, stored);
    assert_eq!(w.cargo(id).await, BTreeMap::from([(good.clone(), 3)]));
    w.stop().await;
}

/// The owner's database stalls (every byte held) longer than the request deadline while
/// trades of one character wait on it: the one that had started may have run, the ones queued
/// behind it expired and never run, not even after the database comes back; the clients that
/// then retry with the same ids get every trade applied exactly once.
#[actix_rt::test]
async fn requests_that_waited_past_their_deadline_behind_a_stalled_owner_never_run() {
    let db = frozen_db().await;
    let (proxy, stalled_url) = common::client::proxied(&db).await;
    let budget = Duration::from_millis(1500);
    let w = World::on(db, 2, move |i, c| {
        if i == 0 {
            c.database_url = stalled_url.clone();
        }
        c.request_timeout = budget;
        // The stall must not cost node-0 its lease: only the requests are under test.
        c.membership_timeout = Duration::from_secs(10);
    })
    .await;
    // A character owned by node-0 (the stalled one), its player talking to node-1.
    let mut found = None;
    for i in 0..24 {
        let c = w.player(1, &format!("exactly-once-stall-{i}")).await;
        let id = w.character(&c, "Stalled", 100_000).await;
        if w.owner(id) == 0 {
            found = Some((c, id));
            break;
        }
    }
    let (c, id) = found.expect("a character owned by node-0");
    let good = w.cheapest(&c, id).await;
    let (gold0, quota0) = (w.gold(id).await, w.quota(&good).await);

    proxy.pause();
    let ids: Vec<String> = (0..4).map(|i| format!("stalled-{i:08}")).collect();
    let sent = Instant::now();
    let answers = join_all(ids.iter().map(|rid| {
        let (c, trade) = (c.clone(), buy(id, &good, 1, rid));
        async move { call(&c, "execute_trade", &trade).await }
    }))
    .await;
    let waited = sent.elapsed();
    let mut not_run = Vec::new();
    for (rid, r) in ids.iter().zip(&answers) {
        match r.status {
            504 => may_have_run(r),
            503 => {
                refused(r, 503, 14);
                not_run.push(rid.clone());
            }
            _ => panic!(
                "{rid}: expected 504 or 503 while the owner stalls, got {} {}",
                r.status, r.body
            ),
        }
    }
    assert!(
        waited < budget + Duration::from_secs(2),
        "answered at the deadline ({waited:?})"
    );
    proxy.resume();

    // A later request of the character is served after all of them (the owner takes one
    // character's requests in order): what it shows is what they came to.
    let view = c
        .rpc("get_character", &json!({"character_id": id}))
        .await
        .expect("get_character after the stall");
    let applied = w.receipts(c.user_id).await;
    println!("applied during the stall: {applied:?}");
    assert!(
        applied.len() <= 1,
        "only the trade that had started before the stall may have run; those queued behind it \
         expired: {applied:?}"
    );
    assert!(
        applied.iter().all(|a| !not_run.contains(a)),
        "a request answered 'not run' ran: {applied:?} {not_run:?}"
    );
    let n = applied.len() as i64;
    assert_eq!(
        int(&view, "gold"),
        w.gold(id).await,
        "the answer shows the database"
    );
    assert_eq!(w.cargo(id).await.get(&good).copied().unwrap_or(0), n);
    assert_eq!(w.quota(&good).await, quota0 - n);
    // Nothing of them runs later: a new trade is answered with the state the database keeps.
    let later = payload(&call(&c, "execute_trade", &buy(id, &good, 1, "after-the-stall")).await);
    assert_eq!(int(&later, "gold"), w.gold(id).await);
    assert_eq!(w.cargo(id).await.get(&good).copied().unwrap_or(0), n + 1);
    let mut expected = applied.clone();
    expected.push("after-the-stall".into());
    expected.sort();
    assert_eq!(w.receipts(c.user_id).await, expected);

    // The client's recipe: each unanswered trade again, with its id: each applied exactly once.
    let mut spent = int(&later, "total");
    for rid in &ids {
        let answer = payload(&call(&c, "execute_trade", &buy(id, &good, 1, rid)).await);
        spent += int(&answer, "total");
    }
    assert_eq!(w.gold(id).await, gold0 - spent);
    assert_eq!(w.cargo(id).await, BTreeMap::from([(good.clone(), 5)]));
    assert_eq!(w.quota(&good).await, quota0 - 5);
    assert_eq!(w.receipts(c.user_id).await.len(), 5);
    w.stop().await;
    drop(proxy);
}

/// `serai_market_reservations_total{outcome="expired"|"committed"}` summed over the running
/// nodes: reservations that ended without a refund of their units.
fn ended_reservations(w: &World) -> f64 {
    w.running()
        .into_iter()
        .map(|i| {
            w.cluster
                .node(i)
                .services
                .metrics
                .render()
                .lines()
                .filter(|l| {
                    l.starts_with("serai_market_reservations_total{")
                        && (l.contains("outcome=\"expired\"")
                            || l.contains("outcome=\"committed\""))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        })
        .sum()
}

/// After a trade whose commit outcome is unknown, the market's reservation is settled once the
/// database can tell whether the trade committed (or, failing that, expires after
/// `RESERVATION_TTL`). The database took the units in the trade's transaction, so the market
/// must not hand them back: what it quotes must stay what the database holds.
#[actix_rt::test]
async fn the_market_does_not_give_back_stock_taken_by_a_trade_with_an_unknown_commit() {
    let w = World::start(2, |_, _| {}).await;
    let c = w.player(0, "exactly-once-unknown-market").await;
    let id = w.character(&c, "Unsure Buyer", 10_000).await;
    let owner = w.owner(id);
    let good = w.cheapest(&c, id).await;
    let quota0 = w.quota(&good).await;
    let ended0 = ended_reservations(&w);

    let faults = w.cluster.node(owner).services.db.faults().clone();
    faults.commit_unknown.store(1, Ordering::SeqCst);
    may_have_run(&call(&c, "execute_trade", &buy(id, &good, 2, "unknown-market-1")).await);
    assert_eq!(faults.commit_unknown.load(Ordering::SeqCst), 0);
    assert_eq!(w.quota(&good).await, quota0 - 2, "the trade committed");

    // The event: the reservation the unknown commit left open ends at the market (settled
    // as committed, or expired).
    let within = serai::market::RESERVATION_TTL + Duration::from_secs(15);
    let deadline = Instant::now() + within;
    while ended_reservations(&w) <= ended0 {
        assert!(
            Instant::now() < deadline,
            "the open reservation did not end within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let quotes = c
        .rpc("get_trade_quotes", &json!({"character_id": id}))
        .await
        .expect("quotes");
    let quoted = quotes["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["good"] == good.as_str())
        .map(|q| int(q, "quota"))
        .expect("a quote for the good");
    assert_eq!(
        (quoted, w.quota(&good).await),
        (quota0 - 2, quota0 - 2),
        "(market quote, database quota) after the reservation ended"
    );
    w.stop().await;
}

/// The answer without what changes with the clock (a trip's progress "now").
fn timeless(mut v: Value) -> Value {
    if let Some(t) = v.get_mut("travel").and_then(Value::as_object_mut) {
        t.remove("progress");
        t.remove("remaining_ms");
    }
    v
}

/// Every other state-changing RPC takes a `request_id` too: concurrent copies of a
/// `create_character` make one character; repeats of `dismiss_crew`, `travel` and
/// `delete_character`, through any node, return their first answers and apply nothing.
#[actix_rt::test]
async fn every_state_changing_rpc_answers_a_repeat_with_its_first_answer() {
    let w = World::start(2, |_, c| c.encounter_rate = Some(0.0)).await;
    let c = w.player(0, "exactly-once-every-rpc").await;
    let characters = "SELECT count(*) FROM player_character WHERE user_id = $1";

    // create_character: five copies at once over both nodes, one character.
    let create = json!({"name": "Once", "faction": FACTION, "background": "merchant_heir",
                        "request_id": "create-once-0001"});
    let copies = join_all((0..5).map(|i| {
        let (c, create) = (at(&c, w.addr(i % 2)), create.clone());
        async move { call(&c, "create_character", &create).await }
    }))
    .await;
    let created = payload(&copies[0]);
    for (i, r) in copies.iter().enumerate() {
        assert_eq!(payload(r), created, "create_character copy {i}");
    }
    assert_eq!(w.count(characters, c.user_id).await, 1, "one character");
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();

    // dismiss_crew
    let hired = c
        .rpc(
            "hire_crew",
            &json!({"character_id": id, "archetype": "porter", "request_id": "hire-once-00001"}),
        )
        .await
        .expect("hired");
    let crew_id = hired["crew"][0]["id"].as_str().unwrap().to_string();
    let dismiss = json!({"character_id": id, "crew_id": crew_id, "request_id": "dismiss-once-001"});
    let dismissed = payload(&call(&c, "dismiss_crew", &dismiss).await);
    assert_eq!(dismissed["crew"], json!([]));
    let before = w.digest().await;
    for node in [0, 1] {
        let again = payload(&call(&at(&c, w.addr(node)), "dismiss_crew", &dismiss).await);
        assert_eq!(again, dismissed, "dismiss_crew repeated via node-{node}");
    }
    assert_eq!(w.digest().await, before);

    // travel
    let travel =
        json!({"character_id": id, "to_node": "saltspire", "request_id": "travel-once-0001"});
    let departed = payload(&call(&c, "travel", &travel).await);
    assert_eq!(departed["travel"]["to"], "saltspire");
    let departure = "SELECT count(*) FROM player_character WHERE id = $1 AND travel IS NOT NULL";
    assert_eq!(
        w.count(departure, id).await,
        1,
        "departure written before the answer"
    );
    let before = w.digest().await;
    for node in [0, 1] {
        let again = payload(&call(&at(&c, w.addr(node)), "travel", &travel).await);
        assert_eq!(
            timeless(again),
            timeless(departed.clone()),
            "travel repeated via node-{node}"
        );
    }
    assert_eq!(w.digest().await, before);

    // delete_character: the repeat finds the character gone, and answers as the first time.
    let delete = json!({"character_id": id, "request_id": "delete-once-0001"});
    let deleted = payload(&call(&c, "delete_character", &delete).await);
    assert_eq!(deleted, json!({"deleted": true}));
    assert_eq!(w.count(characters, c.user_id).await, 0);
    for node in [0, 1] {
        let r = call(&at(&c, w.addr(node)), "delete_character", &delete).await;
        assert_eq!(
            (r.status, payload_or_body(&r)),
            (200, deleted.clone()),
            "delete_character repeated via node-{node}"
        );
    }
    let mut ids = w.receipts(c.user_id).await;
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "create-once-0001",
            "delete-once-0001",
            "dismiss-once-001",
            "hire-once-00001",
            "travel-once-0001"
        ]
    );
    w.stop().await;
}

/// The payload of a 200, else the whole body as JSON (to show in an assertion).
fn payload_or_body(r: &Response) -> Value {
    match r.status {
        200 => payload(r),
        _ => serde_json::from_str(&r.body).unwrap_or(Value::Null),
    }
}

/// A keyed `submit_turn` is written with its answer: a repeat after the battle's owner drained
/// reaches a new owner, which answers the first answer and plays nothing again.
#[actix_rt::test]
async fn a_repeated_turn_after_the_battle_moved_returns_its_first_answer() {
    let mut w = World::start(3, |_, _| {}).await;
    let c = w.player(0, "exactly-once-turn-repeat").await;
    let id = w.character(&c, "Turn Taker", 5_000).await;
    let battle =
        payload(&server_rpc(w.addr(0), "force_encounter", &json!({"character_id": id})).await);
    assert_eq!(battle["state"], "active");
    let battle_id = battle["battle_id"].as_str().unwrap().to_string();
    let bid: Uuid = battle_id.parse().unwrap();
    let actions: Vec<Value> = battle["combatants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["side"] == "party" && c["alive"] == true)
        .map(|c| json!({"actor": c["id"], "action": "defend"}))
        .collect();
    let turn = json!({"battle_id": battle_id, "turn": 1, "actions": actions,
                      "request_id": "turn-repeat-0001"});
    let first = payload(&call(&c, "submit_turn", &turn).await);
    assert_eq!(first["turn"], 1, "{first}");
    let logged = "SELECT count(*) FROM battle_action_log WHERE battle_id = $1";
    assert_eq!(
        w.count(logged, bid).await,
        1,
        "the turn is written before its answer"
    );

    // The battle's owner drains; the repeat reaches the new owner through another node.
    let holder = w
        .running()
        .into_iter()
        .find(|i| {
            w.cluster
                .node(*i)
                .services
                .router
                .local::<serai::battle::Battle>(&bid)
                .is_some()
        })
        .expect("a node holds the battle");
    let via = (holder + 1) % 3;
    w.cluster.stop(holder).await;
    w.cluster.wait_converged(2, Duration::from_secs(10)).await;
    let c = at(&c, w.addr(via));
    let before = w.digest().await;
    let again = payload(&call(&c, "submit_turn", &turn).await);
    assert_eq!(again, first, "the repeat answers the first answer");
    assert_eq!(w.count(logged, bid).await, 1, "no turn played twice");
    assert_eq!(w.digest().await, before);
    // The same id for another turn is refused and changes nothing.
    let other = json!({"battle_id": battle_id, "turn": 2, "actions": [],
                       "request_id": "turn-repeat-0001"});
    refused(&call(&c, "submit_turn", &other).await, 409, 6);
    assert_eq!(w.count(logged, bid).await, 1);
    w.stop().await;
}
