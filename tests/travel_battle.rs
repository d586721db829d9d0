//! Travel and battles over a real node, real sockets and a real PostgreSQL: a forced encounter
//! fought to the end over the socket with the database checked afterwards, a timed-out turn,
//! a second battle refused, an arrival without encounter, a trip surviving passivation, and a
//! battle carried on by another node after its node stopped.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use common::node::{parse_response, Response, TestNode};
use serai::config::Config;
use serai::domain::battle::rules::{self as battle, Combat, Setup, TurnLog};
use serai::localdb::TestDatabase;
use serai::shutdown::Shutdown;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

async fn start_on(db: TestDatabase, node_id: &str, tune: impl FnOnce(&mut Config)) -> TestNode {
    let mut config = Config::for_test(&db.url);
    config.node_id = node_id.to_string();
    tune(&mut config);
    let node = serai::node::start(config.clone(), Shutdown::new())
        .await
        .expect("node starts");
    TestNode { node, config, db }
}

async fn start(tune: impl FnOnce(&mut Config)) -> TestNode {
    let db = TestDatabase::create().await.expect("a test database");
    start_on(db, "test-0", tune).await
}

async fn request(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        parse_response(&raw).expect("an HTTP response")
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("an answer within 20 s")
}

/// A device-authenticated player.
struct Player {
    addr: SocketAddr,
    token: String,
}

impl Player {
    async fn device(addr: SocketAddr, device: &str) -> Player {
        let auth = format!("Basic {}", STANDARD.encode("defaultkey:"));
        let r = request(
            addr,
            "/v2/account/authenticate/device?create=true",
            &[("Authorization", &auth)],
            &json!({ "id": device }).to_string(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let token = r.json()["token"].as_str().unwrap().to_string();
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(claims["uid"].is_string());
        Player { addr, token }
    }

    async fn socket(&self) -> Sock {
        let url = format!(
            "ws://{}/ws?lang=en&status=true&token={}",
            self.addr, self.token
        );
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("socket connects");
        Sock {
            ws,
            cid: 0,
            pushes: VecDeque::new(),
        }
    }
}

/// A server-to-server RPC (`?http_key=`) over HTTP: the payload, or (HTTP status, body).
async fn server_rpc(addr: SocketAddr, id: &str, payload: Value) -> Result<Value, (u16, Value)> {
    let body = serde_json::to_string(&payload.to_string()).unwrap();
    let r = request(
        addr,
        &format!("/v2/rpc/{id}?http_key=defaulthttpkey"),
        &[],
        &body,
    )
    .await;
    if r.status != 200 {
        return Err((r.status, r.json()));
    }
    Ok(serde_json::from_str(r.json()["payload"].as_str().unwrap()).unwrap())
}

/// A pushed notification: subject, code, content parsed.
#[derive(Debug, Clone)]
struct Push {
    id: String,
    subject: String,
    code: i64,
    content: Value,
    persistent: bool,
}

struct Sock {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    cid: u64,
    pushes: VecDeque<Push>,
}

/// A failed socket RPC: the realtime code and the gRPC code from the context.
#[derive(Debug)]
struct Failure {
    grpc: String,
    message: String,
}

impl Sock {
    async fn next_frame(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return None,
                Ok(m) => m.expect("socket open").expect("no socket error"),
            };
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
                    if let Some(list) = v["notifications"]["notifications"].as_array() {
                        assert!(v.get("cid").is_none(), "pushes carry no cid: {v}");
                        for n in list {
                            self.pushes.push_back(Push {
                                id: n["id"].as_str().unwrap_or_default().to_string(),
                                persistent: n["persistent"] == true,
                                subject: n["subject"].as_str().unwrap_or_default().to_string(),
                                code: n["code"].as_i64().unwrap_or(0),
                                content: serde_json::from_str(n["content"].as_str().unwrap())
                                    .expect("content is JSON"),
                            });
                        }
                        continue;
                    }
                    return Some(v);
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    async fn rpc(&mut self, id: &str, payload: Value) -> Result<Value, Failure> {
        self.cid += 1;
        let cid = self.cid.to_string();
        let frame = json!({"cid": cid, "rpc": {"id": id, "payload": payload.to_string()}});
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("send");
        loop {
            let v = self
                .next_frame(Duration::from_secs(20))
                .await
                .unwrap_or_else(|| panic!("no answer to {id}"));
            if v["cid"].as_str() != Some(&cid) {
                continue;
            }
            if let Some(e) = v.get("error") {
                return Err(Failure {
                    grpc: e["context"]["grpc_code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    message: e["message"].as_str().unwrap_or_default().to_string(),
                });
            }
            return Ok(serde_json::from_str(v["rpc"]["payload"].as_str().unwrap()).unwrap());
        }
    }

    /// The next push with `subject` (earlier pushes of other subjects are kept).
    async fn push(&mut self, subject: &str, within: Duration) -> Push {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.pushes.iter().position(|p| p.subject == subject) {
                return self.pushes.remove(i).unwrap();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "no `{subject}` push within {within:?}; got {:?}",
                    self.pushes
                );
            }
            if let Some(v) = self.next_frame(left).await {
                panic!("unexpected frame while waiting for a push: {v}");
            }
        }
    }
}

async fn create_character(sock: &mut Sock, faction: &str, background: &str) -> Value {
    sock.rpc(
        "create_character",
        json!({"name": "Marco", "faction": faction, "background": background}),
    )
    .await
    .expect("character created")
}

fn fast(rate: f64) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.encounter_rate = Some(rate);
        c.travel_time_scale = 0.002; // port_azul → saltspire: 240 ms
    }
}

/// Attacks the first enemy standing with everyone until the battle ends; the last answer.
async fn fight(sock: &mut Sock, battle_id: &str, mut view: Value) -> Value {
    let mut turns = 0;
    while view["state"] == "active" {
        turns += 1;
        assert!(turns <= battle::MAX_TURNS, "the battle must end");
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
        view = sock
            .rpc(
                "submit_turn",
                json!({"battle_id": battle_id, "turn": next, "actions": actions}),
            )
            .await
            .expect("turn accepted");
        assert_eq!(view["resolved"]["turn"], next);
        assert_eq!(view["turn"], next);
        for c in view["combatants"].as_array().unwrap() {
            assert!(c["hp"].as_i64().unwrap() >= 0);
            assert_eq!(c["alive"], c["hp"].as_i64().unwrap() > 0);
        }
    }
    view
}

async fn db_row(url: &str, sql: &str, id: Uuid) -> tokio_postgres::Row {
    common::raw_client(url)
        .await
        .query_one(sql, &[&id])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Checks the database after a battle ended: the encounter settled, its log complete and
/// replayable to the same end, the character free and matching the settlement.
async fn assert_settled(url: &str, battle_id: Uuid, character_id: Uuid, end: &Value) {
    let client = common::raw_client(url).await;
    let enc = client
        .query_one(
            "SELECT state, turn, result_payload, ended_at IS NOT NULL, seed, enemy FROM battle_encounter WHERE id = $1",
            &[&battle_id],
        )
        .await
        .unwrap();
    let state: String = enc.get(0);
    let turns: i32 = enc.get(1);
    let result: Value = enc.get(2);
    assert_eq!(state, end["state"].as_str().unwrap());
    assert_eq!(i64::from(turns), end["turn"].as_i64().unwrap());
    assert!(enc.get::<_, bool>(3), "ended_at set");
    assert_eq!(result["outcome"], end["state"]);
    assert_eq!(
        &result, &end["result"],
        "the answer shows what was committed"
    );

    // The log: one row per turn, replaying to the same hit points.
    let logs: Vec<(u32, Vec<u8>)> = client
        .query(
            "SELECT turn, payload FROM battle_action_log WHERE battle_id = $1 ORDER BY turn",
            &[&battle_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, i32>(0) as u32, r.get(1)))
        .collect();
    assert_eq!(logs.len() as i32, turns, "a log row per turn");
    for (i, (turn, bytes)) in logs.iter().enumerate() {
        assert_eq!(*turn as usize, i + 1);
        assert!(bytes.len() < 128, "compact: {} bytes", bytes.len());
        TurnLog::decode(bytes).expect("a turn log");
    }
    let setup: Setup = serde_json::from_value(enc.get(5)).unwrap();
    let mut combat = Combat::new(enc.get::<_, i64>(4) as u64, setup).unwrap();
    let (records, diverged) = battle::replay(&mut combat, &logs);
    assert_eq!((records.len() as i32, diverged), (turns, 0));
    assert_eq!(combat.state.outcome.as_str(), state);
    let hp: Vec<i64> = end["combatants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hp"].as_i64().unwrap())
        .collect();
    assert_eq!(
        combat
            .state
            .hp
            .iter()
            .map(|h| i64::from(*h))
            .collect::<Vec<_>>(),
        hp
    );

    // The character: free, and as the settlement says.
    let c = client
        .query_one(
            "SELECT battle_id, xp, hp, location, travel FROM player_character WHERE id = $1",
            &[&character_id],
        )
        .await
        .unwrap();
    assert_eq!(c.get::<_, Option<Uuid>>(0), None, "battle_id cleared");
    // Every test's character fights its first battle: its experience is what it won.
    assert_eq!(c.get::<_, i64>(1), result["xp"].as_i64().unwrap());
    let travel: Option<Value> = c.get(4);
    if result["travelling"] == true && travel.is_none() {
        // The trip went on and has arrived since: at the destination, rested.
        assert_eq!(c.get::<_, String>(3), end["to"].as_str().unwrap());
        assert_eq!(
            i64::from(c.get::<_, i32>(2)),
            end["combatants"][0]["max_hp"].as_i64().unwrap()
                + 5 * result["levels_gained"].as_i64().unwrap()
        );
    } else {
        assert_eq!(
            i64::from(c.get::<_, i32>(2)),
            result["hp"].as_i64().unwrap()
        );
        assert_eq!(c.get::<_, String>(3), result["location"].as_str().unwrap());
        assert_eq!(travel.is_some(), result["travelling"] == true);
        if let Some(t) = travel {
            assert!(
                t["battle_id"].is_null() && t["paused_elapsed_ms"].is_null(),
                "{t}"
            );
        }
    }
    let items: i64 = client
        .query_one(
            "SELECT count(*) FROM character_item WHERE character_id = $1",
            &[&character_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(items as usize, result["items"].as_array().unwrap().len());
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_forced_encounter_is_fought_to_the_end_over_the_socket() {
    let t = start(fast(1.0)).await;
    let url = t.db.url.clone();
    let player = Player::device(t.node.client_addr, "travel-battle-device-1").await;
    let mut sock = player.socket().await;
    let c = create_character(&mut sock, "merchant_league", "sellsword").await;
    let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(c["location"], "port_azul");

    let after = sock
        .rpc(
            "travel",
            json!({"character_id": id, "to_node": "saltspire"}),
        )
        .await
        .expect("the caravan departs");
    assert_eq!(after["travel"]["to"], "saltspire");
    assert_eq!(after["travel"]["duration_ms"], 240);
    assert!(after["travel"]["progress"].as_f64().unwrap() < 1.0);
    assert_eq!(after["location"], "port_azul");
    let trade = sock
        .rpc(
            "execute_trade",
            json!({"character_id": id, "good": "salt", "side": "buy", "quantity": 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(trade.grpc, "9", "no trading on the road: {}", trade.message);

    let enc = sock.push("travel_encounter", Duration::from_secs(10)).await;
    assert_eq!(enc.code, 102);
    assert_eq!(enc.content["character_id"], id.to_string());
    let battle_id = enc.content["battle_id"].as_str().unwrap().to_string();
    let progress = enc.content["progress"].as_f64().unwrap();
    assert!((0.2..=0.8).contains(&progress), "{progress}");
    assert_eq!(enc.content["battle"]["state"], "active");

    let during = sock
        .rpc("get_character", json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(during["battle_id"], battle_id.as_str());
    assert_eq!(during["travel"]["paused"], true);
    assert!(during["travel"].get("arrives_at").is_none());
    // Paused: the progress does not move while the battle lasts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = sock
        .rpc("get_character", json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(still["travel"]["progress"], during["travel"]["progress"]);
    assert_eq!(still["location"], "port_azul");

    let view = sock
        .rpc("get_battle", json!({"battle_id": battle_id}))
        .await
        .unwrap();
    assert_eq!(view["state"], "active");
    assert_eq!(view["turn"], 0);
    assert_eq!(view["combatants"][0]["id"], id.to_string());
    assert_eq!(view["combatants"][0]["side"], "party");
    assert!(view["turn_deadline"].is_string());
    // Bad turns change nothing.
    for (bad, code) in [
        (
            json!({"battle_id": battle_id, "turn": 5, "actions": []}),
            "9",
        ),
        (
            json!({"battle_id": battle_id, "actions": [{"actor": id, "action": "dance"}]}),
            "3",
        ),
        (
            json!({"battle_id": battle_id, "actions": [{"actor": "enemy-1", "action": "attack"}]}),
            "3",
        ),
        (
            json!({"battle_id": battle_id, "actions": [{"actor": id, "action": "skill", "skill": "cleave"}]}),
            "9",
        ),
        (json!({"battle_id": Uuid::new_v4(), "actions": []}), "5"),
    ] {
        let e = sock.rpc("submit_turn", bad.clone()).await.unwrap_err();
        assert_eq!(e.grpc, code, "{bad}: {}", e.message);
    }
    // Someone else's battle.
    let other = Player::device(t.node.client_addr, "travel-battle-device-2").await;
    let mut other_sock = other.socket().await;
    let e = other_sock
        .rpc("get_battle", json!({"battle_id": battle_id}))
        .await
        .unwrap_err();
    assert_eq!(e.grpc, "7");

    let end = fight(&mut sock, &battle_id, view).await;
    let outcome = end["state"].as_str().unwrap().to_string();
    assert!(["won", "lost", "fled"].contains(&outcome.as_str()));
    assert_eq!(end["settled"], true, "settled before the answer: {end}");
    assert_eq!(end["result"]["outcome"], outcome.as_str());
    let turn_pushes = sock
        .pushes
        .iter()
        .filter(|p| p.subject == "battle_turn")
        .count();
    assert_eq!(turn_pushes as u64, end["turn"].as_u64().unwrap());
    let ended = sock.push("battle_ended", Duration::from_secs(5)).await;
    assert_eq!(ended.code, 104);
    assert_eq!(ended.content["outcome"], outcome.as_str());
    assert_eq!(ended.content["result"], end["result"]);
    // Stored with the settlement: the player finds it later under the pushed id.
    assert!(ended.persistent, "battle_ended is persistent");
    let r = common::node::http(
        t.node.client_addr,
        "GET",
        "/v2/notification?limit=100",
        Some(&player.token),
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = r.json()["notifications"].clone();
    assert!(
        stored.as_array().is_some_and(|l| l
            .iter()
            .any(|n| n["id"] == ended.id.as_str() && n["code"] == 104)),
        "{stored}"
    );
    let e = sock
        .rpc(
            "submit_turn",
            json!({"battle_id": battle_id, "actions": []}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.grpc, "9", "the battle is over");

    let battle_uuid: Uuid = battle_id.parse().unwrap();
    assert_settled(&url, battle_uuid, id, &end).await;
    let c = sock
        .rpc("get_character", json!({"character_id": id}))
        .await
        .unwrap();
    assert!(c.get("battle_id").is_none());
    assert_eq!(c["xp"], end["result"]["xp"]);
    match outcome.as_str() {
        "won" => assert!(end["result"]["xp"].as_i64().unwrap() > 0),
        "lost" => {
            assert_eq!(c["location"], "port_azul", "driven back");
            assert!(c.get("travel").is_none());
        }
        _ => {}
    }
    if outcome != "lost" {
        // The trip goes on from where it stopped and arrives.
        let arrived = sock.push("travel_arrived", Duration::from_secs(10)).await;
        assert_eq!(arrived.content["node"], "saltspire");
        let row = db_row(
            &url,
            "SELECT location, travel IS NULL FROM player_character WHERE id = $1",
            id,
        )
        .await;
        assert_eq!(row.get::<_, String>(0), "saltspire");
        assert!(row.get::<_, bool>(1));
    }
    let metrics = t.node.services.metrics.render();
    for name in [
        "serai_battles_total",
        "serai_battle_turns_total",
        "serai_travel_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from the metrics");
    }
    t.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn a_turn_not_submitted_in_time_is_resolved_as_defend() {
    let t = start(|c| c.battle_turn_timeout = Duration::from_millis(100)).await;
    let url = t.db.url.clone();
    let player = Player::device(t.node.client_addr, "travel-battle-timeout").await;
    let mut sock = player.socket().await;
    let c = create_character(&mut sock, "iron_covenant", "caravan_hand").await;
    let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
    // Only the server may force an encounter.
    let e = sock
        .rpc("force_encounter", json!({"character_id": id}))
        .await
        .unwrap_err();
    assert_eq!(e.grpc, "7");
    let view = server_rpc(
        t.node.client_addr,
        "force_encounter",
        json!({"character_id": id}),
    )
    .await
    .expect("an ambush");
    assert_eq!(view["state"], "active");
    let battle_id = view["battle_id"].as_str().unwrap().to_string();
    let enc = sock.push("travel_encounter", Duration::from_secs(5)).await;
    assert_eq!(enc.content["battle_id"], battle_id.as_str());

    let first = sock.push("battle_turn", Duration::from_secs(5)).await;
    assert_eq!(first.code, 103);
    let resolved = &first.content["resolved"];
    assert_eq!(resolved["turn"], 1);
    assert_eq!(resolved["timed_out"], true);
    assert_eq!(resolved["actions"], json!([]));
    assert!(
        resolved["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "defend" && e["actor"] == id.to_string() && e["auto"] == true),
        "{resolved}"
    );
    // Nobody acts: the battle grinds on by timeouts to its end, and settles.
    let ended = sock.push("battle_ended", Duration::from_secs(15)).await;
    let outcome = ended.content["outcome"].as_str().unwrap().to_string();
    assert!(outcome == "lost" || outcome == "fled", "{outcome}");
    let end = sock
        .rpc("get_battle", json!({"battle_id": battle_id}))
        .await
        .unwrap();
    assert_eq!(end["state"], outcome.as_str());
    assert!(end.get("turn_deadline").is_none());
    let battle_uuid: Uuid = battle_id.parse().unwrap();
    assert_settled(&url, battle_uuid, id, &end).await;
    let client = common::raw_client(&url).await;
    for r in client
        .query(
            "SELECT payload FROM battle_action_log WHERE battle_id = $1",
            &[&battle_uuid],
        )
        .await
        .unwrap()
    {
        let log = TurnLog::decode(r.get(0)).unwrap();
        assert!(log.timed_out && log.actions.is_empty());
    }
    t.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn a_second_battle_for_the_same_character_is_refused() {
    let t = start(fast(1.0)).await;
    let url = t.db.url.clone();
    let player = Player::device(t.node.client_addr, "travel-battle-second").await;
    let mut sock = player.socket().await;
    let c = create_character(&mut sock, "merchant_league", "merchant_heir").await;
    let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
    sock.rpc(
        "travel",
        json!({"character_id": id, "to_node": "kings_crossing"}),
    )
    .await
    .unwrap();
    let enc = sock.push("travel_encounter", Duration::from_secs(10)).await;
    let battle_id: Uuid = enc.content["battle_id"].as_str().unwrap().parse().unwrap();

    let e = sock
        .rpc(
            "travel",
            json!({"character_id": id, "to_node": "saltspire"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.grpc, "9", "{}", e.message);
    let (status, body) = server_rpc(
        t.node.client_addr,
        "force_encounter",
        json!({"character_id": id}),
    )
    .await
    .unwrap_err();
    assert_eq!((status, body["code"].as_i64()), (400, Some(9)), "{body}");
    let e = sock
        .rpc("delete_character", json!({"character_id": id}))
        .await
        .unwrap_err();
    assert_eq!(e.grpc, "9", "no deleting mid-battle");

    // Straight to a new Battle actor with the session's real epoch: the database refuses.
    let epoch: i64 = db_row(
        &url,
        "SELECT owner_epoch FROM player_character WHERE id = $1",
        id,
    )
    .await
    .get(0);
    let catalog = t.node.services.catalog.get();
    let state = serai::persistence::characters::load(&t.node.services.db, id)
        .await
        .unwrap()
        .unwrap();
    let mut free = state.clone();
    free.battle_id = None;
    let setup = battle::new_setup(&free, &catalog, "port_azul", "port_azul", 20, 9);
    let second = t
        .node
        .services
        .router
        .send::<serai::battle::Battle, _>(
            Uuid::new_v4(),
            serai::battle::StartBattle {
                seed: 9,
                setup,
                session_epoch: epoch,
                travel: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        second.unwrap_err(),
        serai::battle::BattleError::Refused("the character is already in a battle".into())
    );
    let client = common::raw_client(&url).await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM battle_encounter WHERE character_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "one encounter row");
    let row = db_row(
        &url,
        "SELECT battle_id FROM player_character WHERE id = $1",
        id,
    )
    .await;
    assert_eq!(row.get::<_, Option<Uuid>>(0), Some(battle_id));
    t.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn arrival_without_encounter_pushes_and_moves_the_character() {
    let t = start(fast(0.0)).await;
    let url = t.db.url.clone();
    let player = Player::device(t.node.client_addr, "travel-battle-arrive").await;
    let mut sock = player.socket().await;
    let c = create_character(&mut sock, "merchant_league", "smuggler").await;
    let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
    let e = sock
        .rpc(
            "travel",
            json!({"character_id": id, "to_node": "frostgate"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.grpc, "9", "no road: {}", e.message);
    let e = sock
        .rpc("travel", json!({"character_id": id, "to_node": "nowhere"}))
        .await
        .unwrap_err();
    assert_eq!(e.grpc, "3");
    let e = sock
        .rpc("travel", json!({"character_id": id, "to": "saltspire"}))
        .await
        .unwrap_err();
    assert_eq!(e.grpc, "3", "unknown field");

    let started = Instant::now();
    let after = sock
        .rpc(
            "travel",
            json!({"character_id": id, "to_node": "saltspire"}),
        )
        .await
        .unwrap();
    assert!(after["travel"]["arrives_at"].is_string());
    let e = sock
        .rpc(
            "travel",
            json!({"character_id": id, "to_node": "port_azul"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.grpc, "9", "already on the road");
    let arrived = sock.push("travel_arrived", Duration::from_secs(10)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the trip takes its time"
    );
    assert_eq!(arrived.code, 101);
    assert_eq!(arrived.content["character_id"], id.to_string());
    assert_eq!(arrived.content["from"], "port_azul");
    assert_eq!(arrived.content["node"], "saltspire");
    assert!(sock.pushes.iter().all(|p| p.subject != "travel_encounter"));
    let now = sock
        .rpc("get_character", json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(now["location"], "saltspire");
    assert!(now.get("travel").is_none());
    let row = db_row(
        &url,
        "SELECT location, travel IS NULL, battle_id IS NULL FROM player_character WHERE id = $1",
        id,
    )
    .await;
    assert_eq!(row.get::<_, String>(0), "saltspire", "written on arrival");
    assert!(row.get::<_, bool>(1) && row.get::<_, bool>(2));
    let n: i64 = common::raw_client(&url)
        .await
        .query_one("SELECT count(*) FROM battle_encounter", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // Trading works again at the new node.
    sock.rpc(
        "execute_trade",
        json!({"character_id": id, "good": "salt", "side": "buy", "quantity": 1}),
    )
    .await
    .expect("a trade at saltspire");
    t.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn a_trip_survives_passivation_and_completes_on_load() {
    let t = start(|c| {
        c.encounter_rate = Some(0.0);
        c.travel_time_scale = 0.01; // 1.2 s
    })
    .await;
    let url = t.db.url.clone();
    let player = Player::device(t.node.client_addr, "travel-battle-passivate").await;
    let mut sock = player.socket().await;
    let c = create_character(&mut sock, "merchant_league", "sellsword").await;
    let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
    sock.rpc(
        "travel",
        json!({"character_id": id, "to_node": "saltspire"}),
    )
    .await
    .unwrap();
    let router = t.node.services.router.clone();
    let session = router
        .local::<serai::character::CharacterSession>(&id)
        .expect("a live session");
    session.do_send(serai::routing::Passivate);
    eventually("the session to stop", Duration::from_secs(5), || {
        let s = session.clone();
        async move { !s.connected() }
    })
    .await;
    let row = db_row(
        &url,
        "SELECT travel, location, owner_node FROM player_character WHERE id = $1",
        id,
    )
    .await;
    let trip: Value = row
        .get::<_, Option<Value>>(0)
        .expect("the trip was flushed");
    assert_eq!(trip["to"], "saltspire");
    assert_eq!(row.get::<_, String>(1), "port_azul");
    assert_eq!(row.get::<_, Option<String>>(2), None, "claim released");
    tokio::time::sleep(Duration::from_millis(1400)).await;
    // Nobody was there to see it arrive; the next touch completes it.
    let now = sock
        .rpc("get_character", json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(now["location"], "saltspire");
    assert!(now.get("travel").is_none());
    sock.push("travel_arrived", Duration::from_secs(5)).await;
    let row = db_row(
        &url,
        "SELECT location, travel IS NULL FROM player_character WHERE id = $1",
        id,
    )
    .await;
    assert_eq!(row.get::<_, String>(0), "saltspire");
    assert!(row.get::<_, bool>(1));
    t.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn a_battle_continues_on_another_node_after_its_node_stops() {
    let t = start(fast(1.0)).await;
    let player = Player::device(t.node.client_addr, "travel-battle-handoff").await;
    let mut sock = player.socket().await;
    let c = create_character(&mut sock, "merchant_league", "caravan_hand").await;
    let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
    sock.rpc(
        "travel",
        json!({"character_id": id, "to_node": "saltspire"}),
    )
    .await
    .unwrap();
    let enc = sock.push("travel_encounter", Duration::from_secs(10)).await;
    let battle_id = enc.content["battle_id"].as_str().unwrap().to_string();
    let mut view = Value::Null;
    for turn in 1..=2 {
        view = sock
            .rpc(
                "submit_turn",
                json!({"battle_id": battle_id, "turn": turn,
                       "actions": [{"actor": id, "action": "defend"}]}),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        view["state"], "active",
        "defending two turns ends nothing: {view}"
    );
    sock.ws.close(None).await.ok();
    let TestNode { node, db, .. } = t;
    node.stop().await.unwrap();
    let url = db.url.clone();
    let owner = db_row(
        &url,
        "SELECT owner_node, owner_epoch FROM battle_encounter WHERE id = $1",
        battle_id.parse().unwrap(),
    )
    .await;
    assert_eq!(
        owner.get::<_, Option<String>>(0),
        None,
        "released at shutdown"
    );
    assert_eq!(owner.get::<_, i64>(1), 1);

    let t2 = start_on(db, "test-1", fast(1.0)).await;
    let player = Player::device(t2.node.client_addr, "travel-battle-handoff").await;
    let mut sock = player.socket().await;
    let c = sock
        .rpc("get_character", json!({"character_id": id}))
        .await
        .unwrap();
    assert_eq!(c["battle_id"], battle_id.as_str());
    let again = sock
        .rpc("get_battle", json!({"battle_id": battle_id}))
        .await
        .unwrap();
    assert_eq!(again["state"], "active");
    assert_eq!(again["turn"], 2, "continues from the last logged turn");
    assert_eq!(
        again["combatants"], view["combatants"],
        "replayed to the same hp"
    );
    let end = fight(&mut sock, &battle_id, again).await;
    assert_eq!(end["settled"], true);
    let owner = db_row(
        &url,
        "SELECT owner_node, owner_epoch FROM battle_encounter WHERE id = $1",
        battle_id.parse().unwrap(),
    )
    .await;
    assert_eq!(owner.get::<_, Option<String>>(0).as_deref(), Some("test-1"));
    assert_eq!(owner.get::<_, i64>(1), 2, "claimed again by the new node");
    assert_settled(&url, battle_id.parse().unwrap(), id, &end).await;
    t2.node.stop().await.unwrap();
}

/// The node that owns `key` of `kind` (as node 0 sees the ring).
fn owner_of(cluster: &common::cluster::TestCluster, kind: &str, key: Uuid) -> String {
    use serai::routing::placement::Owner;
    let p = cluster.node(0).services.router.placement();
    match p.owner(kind, key.as_bytes()) {
        Owner::Local => p.node_id().to_string(),
        Owner::Remote(n) => n,
        Owner::Nobody => "nobody".into(),
    }
}

#[actix_rt::test]
async fn a_battle_owned_by_another_node_than_its_character_settles_across_the_cluster() {
    let mut cluster = common::cluster::TestCluster::start(3, |_, c| {
        c.encounter_rate = Some(1.0);
        c.travel_time_scale = 0.002;
    })
    .await;
    let url = cluster.db.url.clone();
    let entry = cluster.node(0).client_addr;
    let player = Player::device(entry, "travel-battle-cluster").await;
    let mut sock = player.socket().await;
    // Characters and battles land on the ring by their ids: try until the battle is owned
    // by another node than its character.
    let mut found = None;
    for attempt in 0..8 {
        let c = sock
            .rpc(
                "create_character",
                json!({"name": format!("Rover {}", (b'a' + attempt) as char), "faction": "merchant_league", "background": "sellsword"}),
            )
            .await
            .expect("character created");
        let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
        sock.rpc(
            "travel",
            json!({"character_id": id, "to_node": "saltspire"}),
        )
        .await
        .expect("departs");
        let enc = sock.push("travel_encounter", Duration::from_secs(10)).await;
        assert_eq!(enc.content["character_id"], id.to_string());
        let battle_id: Uuid = enc.content["battle_id"].as_str().unwrap().parse().unwrap();
        let (c_owner, b_owner) = (
            owner_of(&cluster, "character", id),
            owner_of(&cluster, "battle", battle_id),
        );
        if c_owner != b_owner {
            found = Some((id, battle_id, c_owner, b_owner));
            break;
        }
    }
    let (id, battle_id, c_owner, b_owner) = found.expect("some battle lands on another node");
    let view = sock
        .rpc("get_battle", json!({"battle_id": battle_id}))
        .await
        .unwrap();
    let end = fight(&mut sock, &battle_id.to_string(), view).await;
    assert_eq!(end["settled"], true, "{end}");
    let ended = loop {
        let p = sock.push("battle_ended", Duration::from_secs(5)).await;
        if p.content["battle_id"] == battle_id.to_string() {
            break p;
        }
    };
    assert_eq!(ended.content["result"], end["result"]);
    assert_settled(&url, battle_id, id, &end).await;
    let client = common::raw_client(&url).await;
    let b: Option<String> = client
        .query_one(
            "SELECT owner_node FROM battle_encounter WHERE id = $1",
            &[&battle_id],
        )
        .await
        .unwrap()
        .get(0);
    let c: Option<String> = client
        .query_one(
            "SELECT owner_node FROM player_character WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        (b.as_deref(), c.as_deref()),
        (Some(b_owner.as_str()), Some(c_owner.as_str())),
        "each ran where the ring put it"
    );
    cluster.stop_all().await;
}
