//! World bosses on an in-process 3-node cluster (real PostgreSQL, real sockets): 500 attackers
//! spread over the nodes until the kill, the admin endpoints' validation, and a retried attack.

mod common;

use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use uuid::Uuid;

use common::client::{request, GameClient, RpcFailure};
use common::cluster::TestCluster;
use common::{raw_client, wait_for};

const ATTACKERS: usize = 500;
const REWARD_GOLD: i64 = 250;
const REWARD_ITEM: &str = "iron_sword";

fn rfc3339(offset_secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn admin(cluster: &TestCluster, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let node = cluster.node(0);
    let auth = format!("Bearer {}", node.services.config.admin_token);
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let r = request(
        node.admin_addr,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
    .await;
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

fn event(id: &str, max_hp: i64) -> Value {
    json!({
        "id": id, "kind": "boss", "title": "The Sand Wyrm", "max_hp": max_hp,
        "starts_at": rfc3339(-60), "ends_at": rfc3339(600),
        "reward_gold": REWARD_GOLD, "reward_item": REWARD_ITEM,
    })
}

/// A player with one character, on node `i % 3`.
async fn player(cluster: &TestCluster, i: usize) -> (GameClient, Uuid, i64) {
    let addr = cluster.node(i % 3).client_addr;
    GameClient::with_character(addr, &format!("boss-device-{i:04}"), &format!("Hero {i}")).await
}

/// What one attacker saw: its answers (damage, hp, killed) and the refusal that ended it.
struct Seen {
    character: Uuid,
    hits: Vec<(i64, i64, bool)>,
    refused: Option<RpcFailure>,
}

async fn attack_until_refused(client: GameClient, character: Uuid, event_id: &str) -> Seen {
    let mut ws = client.socket().await;
    let mut seen = Seen {
        character,
        hits: Vec::new(),
        refused: None,
    };
    loop {
        match ws
            .rpc(
                "attack_world_boss",
                &json!({"event_id": event_id, "character_id": character}),
            )
            .await
        {
            Ok(v) => seen.hits.push((
                v["damage"].as_i64().unwrap(),
                v["hp"].as_i64().unwrap(),
                v["killed"].as_bool().unwrap(),
            )),
            Err(e) if e.message.contains("defeated") => {
                seen.refused = Some(e);
                break;
            }
            // Anything else (not run: an owner moving) is asked again.
            Err(e) => assert!(
                e.grpc_code != Some(9) || e.message.contains("defeated"),
                "{e:?}"
            ),
        }
    }
    ws.close().await;
    seen
}

/// Subscribes `watcher` to `event_id` (its `get_world_event` answer is returned) and reads its
/// pushes on a thread and runtime of its own: the arrival times it records are the test's
/// evidence of the 2-per-second bound, and the attackers' tasks on the test's runtime must not
/// delay when an update is seen (one late first update made three look closer than sent).
async fn watch_on_own_thread(
    watcher: GameClient,
    event_id: &str,
) -> (Value, tokio::sync::oneshot::Receiver<Vec<(Instant, Value)>>) {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let event_id = event_id.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("watcher runtime");
        rt.block_on(async move {
            let mut ws = watcher.socket().await;
            let v = ws
                .rpc("get_world_event", &json!({ "event_id": event_id }))
                .await
                .expect("get");
            let _ = ready_tx.send(v);
            let _ = done_tx.send(watch(ws, event_id).await);
        });
    });
    (ready_rx.await.expect("the watcher subscribed"), done_rx)
}

/// Reads `world_event` pushes until one says the boss is defeated; their arrival times.
async fn watch(mut ws: common::client::GameSocket, event_id: String) -> Vec<(Instant, Value)> {
    let mut got = Vec::new();
    loop {
        let v = ws.next_json().await;
        for n in v["notifications"]["notifications"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if n["subject"] != "world_event" {
                continue;
            }
            let content: Value = serde_json::from_str(n["content"].as_str().unwrap()).unwrap();
            assert_eq!(content["event_id"], event_id.as_str());
            let done = content["state"] == "defeated";
            got.push((Instant::now(), content));
            if done {
                ws.close().await;
                return got;
            }
        }
    }
}

#[actix_rt::test]
async fn five_hundred_attackers_on_three_nodes_kill_once_and_each_is_rewarded_once() {
    let mut cluster = TestCluster::start(3, |_, _| {}).await;
    let players: Vec<_> = stream::iter(0..ATTACKERS)
        .map(|i| player(&cluster, i))
        .buffer_unordered(32)
        .collect()
        .await;
    // Enough HP for several rounds of everyone.
    let max_hp = 30_000;
    let (status, body) = admin(
        &cluster,
        "POST",
        "/admin/world/events",
        &event("wyrm", max_hp),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // A watcher subscribes by reading the event, on the boss's own node: what it receives is
    // what the node sends, not the peer link's delays under the attackers' load.
    let db = raw_client(&cluster.db.url).await;
    let probe = GameClient::device(cluster.node(0).client_addr, "boss-probe").await;
    probe
        .rpc("get_world_event", &json!({"event_id": "wyrm"}))
        .await
        .expect("get");
    let owner: String = db
        .query_one("SELECT owner_node FROM world_event WHERE id = 'wyrm'", &[])
        .await
        .unwrap()
        .get(0);
    let at: usize = owner.trim_start_matches("node-").parse().unwrap();
    let watcher = GameClient::device(cluster.node(at).client_addr, "boss-watcher").await;
    let (v, watching) = watch_on_own_thread(watcher, "wyrm").await;
    assert_eq!(
        (v["state"].as_str(), v["hp"].as_i64()),
        (Some("active"), Some(max_hp))
    );

    let started = Instant::now();
    let seen: Vec<Seen> = futures_util::future::join_all(
        players
            .iter()
            .map(|(c, id, _)| attack_until_refused(c.clone(), *id, "wyrm")),
    )
    .await;
    let attacks: usize = seen.iter().map(|s| s.hits.len()).sum();
    eprintln!(
        "{attacks} attacks by {ATTACKERS} attackers in {:?}",
        started.elapsed()
    );

    // Exactly one kill; HP never below 0; every attacker ends on the refusal.
    let kills = seen.iter().flat_map(|s| &s.hits).filter(|h| h.2).count();
    assert_eq!(kills, 1, "exactly one attack kills");
    assert!(seen
        .iter()
        .flat_map(|s| &s.hits)
        .all(|h| h.1 >= 0 && h.0 > 0));
    assert!(seen
        .iter()
        .all(|s| s.refused.as_ref().is_some_and(|e| e.grpc_code == Some(9))));
    let counted: i64 = seen.iter().flat_map(|s| &s.hits).map(|h| h.0).sum();
    assert_eq!(counted, max_hp, "the damage answered sums to the boss's HP");

    // Later attacks are refused; the event reads defeated.
    let (c, id, _) = &players[0];
    let late = c
        .rpc(
            "attack_world_boss",
            &json!({"event_id": "wyrm", "character_id": id}),
        )
        .await
        .unwrap_err();
    assert_eq!(late.grpc_code, Some(9), "{late:?}");
    let v = c
        .rpc("get_world_event", &json!({"event_id": "wyrm"}))
        .await
        .unwrap();
    assert_eq!(
        (v["state"].as_str(), v["hp"].as_i64()),
        (Some("defeated"), Some(0))
    );
    let participants: Vec<&Seen> = seen.iter().filter(|s| !s.hits.is_empty()).collect();
    assert_eq!(v["participants"].as_u64(), Some(participants.len() as u64));
    let mine: i64 = seen[0].hits.iter().map(|h| h.0).sum();
    assert_eq!(v["your_damage"].as_i64(), Some(mine));

    // Every participant rewarded exactly once: reward rows, gold, items, stored notices.
    let n = participants.len() as i64;
    common::rows::wait_rewarded(&db, "wyrm", n).await;
    let damage: i64 = db
        .query_one("SELECT COALESCE(sum(damage), 0)::INT8 FROM world_event_participant WHERE event_id = 'wyrm'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(damage, max_hp, "the persisted damage sums to the boss's HP");
    let before: std::collections::HashMap<Uuid, i64> =
        players.iter().map(|(_, id, g)| (*id, *g)).collect();
    for s in &participants {
        let row = db
            .query_one(
                "SELECT c.gold, (SELECT count(*) FROM character_item i WHERE i.character_id = c.id AND i.template = $2), \
                 (SELECT count(*) FROM notification n WHERE n.user_id = c.user_id AND n.subject = 'world_event_reward') \
                 FROM player_character c WHERE c.id = $1",
                &[&s.character, &REWARD_ITEM],
            )
            .await
            .unwrap();
        let (gold, items, notices): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(
            gold,
            before[&s.character] + REWARD_GOLD,
            "gold of {}",
            s.character
        );
        assert_eq!(
            (items, notices),
            (1, 1),
            "item and notice of {}",
            s.character
        );
    }

    // The watcher got updates, never more than 2 within any 1 s, the last one the kill.
    let updates = tokio::time::timeout(Duration::from_secs(10), watching)
        .await
        .expect("the watcher hears the kill")
        .unwrap();
    assert!(updates.len() >= 2, "{} updates", updates.len());
    for w in updates.windows(3) {
        assert!(
            w[2].0.duration_since(w[0].0) >= Duration::from_millis(1000),
            "3 updates within 1 s ({:?} after the first): {:?}",
            w.iter().map(|u| u.0 - w[0].0).collect::<Vec<_>>(),
            w.iter().map(|u| &u.1).collect::<Vec<_>>()
        );
    }
    assert!(updates
        .windows(2)
        .all(|w| w[1].1["hp"].as_i64() <= w[0].1["hp"].as_i64()));
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn admin_validates_is_idempotent_and_cancels() {
    let mut cluster = TestCluster::start(1, |_, _| {}).await;
    let good = event("kraken", 100);
    let mut bad_cases: Vec<(&str, Value)> = Vec::new();
    let with = |k: &str, v: Value| {
        let mut e = good.clone();
        e[k] = v;
        e
    };
    bad_cases.push(("id", with("id", json!(""))));
    bad_cases.push(("id", with("id", json!("has space"))));
    bad_cases.push(("kind", with("kind", json!("dragon"))));
    bad_cases.push(("title", with("title", json!(" "))));
    bad_cases.push(("max_hp", with("max_hp", json!(0))));
    bad_cases.push(("starts_at", with("starts_at", json!("yesterday"))));
    bad_cases.push(("ends_at", with("ends_at", json!(rfc3339(-120)))));
    bad_cases.push(("reward_gold", with("reward_gold", json!(-5))));
    bad_cases.push(("reward_item", with("reward_item", json!("no_such_item"))));
    for (field, body) in &bad_cases {
        let (status, v) = admin(&cluster, "POST", "/admin/world/events", body).await;
        assert_eq!(
            (status, v["field"].as_str()),
            (400, Some(*field)),
            "{body} → {v}"
        );
    }
    let (status, _) = admin(&cluster, "POST", "/admin/world/events", &json!({"id": "x"})).await;
    assert_eq!(status, 400);
    let (status, v) = admin(&cluster, "GET", "/admin/world/events", &Value::Null).await;
    assert_eq!(
        (status, v["events"].as_array().map(Vec::len)),
        (200, Some(0)),
        "bad input changed nothing"
    );

    let (status, v) = admin(&cluster, "POST", "/admin/world/events", &good).await;
    assert_eq!(status, 201, "{v}");
    let (status, _) = admin(&cluster, "POST", "/admin/world/events", &good).await;
    assert_eq!(status, 200, "the same body again is idempotent");
    let (status, _) = admin(
        &cluster,
        "POST",
        "/admin/world/events",
        &with("max_hp", json!(101)),
    )
    .await;
    assert_eq!(status, 409, "another body under the same id");
    let (status, v) = admin(&cluster, "GET", "/admin/world/events", &Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(v["events"][0]["hp"], 100);
    assert_eq!(v["events"][0]["state"], "active");

    // Cancel: attacks are refused afterwards, no rewards; a second cancel is 409.
    let (client, id, _) = player(&cluster, 0).await;
    let hit = client
        .rpc(
            "attack_world_boss",
            &json!({"event_id": "kraken", "character_id": id}),
        )
        .await
        .expect("attack");
    assert!(hit["damage"].as_i64().unwrap() > 0);
    let (status, v) = admin(
        &cluster,
        "DELETE",
        "/admin/world/events/kraken",
        &Value::Null,
    )
    .await;
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("cancelled")),
        "{v}"
    );
    let e = wait_for(
        "attacks refused once cancelled",
        Duration::from_secs(10),
        async || match client
            .rpc(
                "attack_world_boss",
                &json!({"event_id": "kraken", "character_id": id}),
            )
            .await
        {
            Err(e) if e.message.contains("cancelled") => Ok(e),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    assert_eq!(e.grpc_code, Some(9));
    let (status, _) = admin(
        &cluster,
        "DELETE",
        "/admin/world/events/kraken",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = admin(&cluster, "DELETE", "/admin/world/events/nope", &Value::Null).await;
    assert_eq!(status, 404);
    let db = raw_client(&cluster.db.url).await;
    let rewards: i64 = db
        .query_one("SELECT count(*) FROM world_event_reward", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rewards, 0, "a cancelled event pays nothing");
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn a_retried_attack_returns_the_same_answer_and_counts_once() {
    let mut cluster = TestCluster::start(3, |_, _| {}).await;
    let (status, _) = admin(
        &cluster,
        "POST",
        "/admin/world/events",
        &event("golem", 1_000_000),
    )
    .await;
    assert_eq!(status, 201);
    let (client, id, _) = player(&cluster, 1).await;
    let payload = json!({"event_id": "golem", "character_id": id, "request_id": "swing-0001"});
    let first = client
        .rpc("attack_world_boss", &payload)
        .await
        .expect("attack");
    let again = client
        .rpc("attack_world_boss", &payload)
        .await
        .expect("repeat");
    assert_eq!(first, again, "the repeat is answered with the first answer");
    let other =
        json!({"event_id": "golem", "character_id": Uuid::new_v4(), "request_id": "swing-0001"});
    let e = client.rpc("attack_world_boss", &other).await.unwrap_err();
    assert!(e.grpc_code == Some(6) || e.grpc_code == Some(5), "{e:?}");
    let v = client
        .rpc("get_world_event", &json!({"event_id": "golem"}))
        .await
        .unwrap();
    assert_eq!(v["your_damage"], first["damage"], "counted once");
    assert_eq!(
        v["hp"].as_i64(),
        Some(1_000_000 - first["damage"].as_i64().unwrap())
    );

    // Someone else's character, bad input, an unknown event: refused, nothing changes.
    let (intruder, _, _) = player(&cluster, 2).await;
    let e = intruder
        .rpc(
            "attack_world_boss",
            &json!({"event_id": "golem", "character_id": id}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.grpc_code, Some(7), "{e:?}");
    let e = client
        .rpc_str("attack_world_boss", "{\"event_id\": 5}")
        .await
        .unwrap_err();
    assert_eq!(e.grpc_code, Some(3), "{e:?}");
    let e = client
        .rpc("get_world_event", &json!({"event_id": "nothing-here"}))
        .await
        .unwrap_err();
    assert_eq!(e.grpc_code, Some(5), "{e:?}");
    let v = client
        .rpc("get_world_event", &json!({"event_id": "golem"}))
        .await
        .unwrap();
    assert_eq!(v["your_damage"], first["damage"]);
    cluster.stop_all().await;
}

/// An event nobody touches after one attack still ends at `ends_at` and pays: its actor idles
/// out (writing its progress), and a node's sweeper wakes it when it is due.
#[actix_rt::test]
async fn an_untouched_event_expires_at_its_end_and_pays_its_participants() {
    let mut cluster =
        TestCluster::start(3, |_, c| c.idle_timeout = Duration::from_millis(500)).await;
    let mut e = event("mirage", 1_000_000);
    let ends = chrono::Utc::now() + chrono::Duration::seconds(4);
    e["ends_at"] = json!(ends.to_rfc3339());
    let (status, v) = admin(&cluster, "POST", "/admin/world/events", &e).await;
    assert_eq!(status, 201, "{v}");
    let (client, id, gold) = player(&cluster, 0).await;
    let hit = client
        .rpc(
            "attack_world_boss",
            &json!({"event_id": "mirage", "character_id": id}),
        )
        .await
        .expect("attack");
    let db = raw_client(&cluster.db.url).await;
    // Passivated: progress written and the claim released, before the end.
    wait_for("the boss passivates", Duration::from_secs(5), async || {
        let r = db
            .query_one(
                "SELECT owner_node, hp FROM world_event WHERE id = 'mirage'",
                &[],
            )
            .await
            .unwrap();
        let (owner, hp): (Option<String>, i64) = (r.get(0), r.get(1));
        match owner {
            None => Ok(hp),
            Some(o) => Err(format!("owned by {o}")),
        }
    })
    .await;
    assert!(chrono::Utc::now() < ends, "passivated before the end");
    let r = db
        .query_one("SELECT hp FROM world_event WHERE id = 'mirage'", &[])
        .await
        .unwrap();
    assert_eq!(
        r.get::<_, i64>(0),
        1_000_000 - hit["damage"].as_i64().unwrap()
    );
    wait_for("the event expires and pays", Duration::from_secs(15), async || {
        let r = db
            .query_one(
                "SELECT e.state, (SELECT count(*) FROM world_event_reward r WHERE r.event_id = e.id), \
                 (SELECT gold FROM player_character WHERE id = $1) FROM world_event e WHERE e.id = 'mirage'",
                &[&id],
            )
            .await
            .unwrap();
        let (state, rewards, now): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        match (state.as_str(), rewards) {
            ("expired", 1) => Ok(now),
            _ => Err(format!("{state}, {rewards} rewards")),
        }
    })
    .await;
    let now: i64 = db
        .query_one("SELECT gold FROM player_character WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(now, gold + REWARD_GOLD);
    let e = client
        .rpc(
            "attack_world_boss",
            &json!({"event_id": "mirage", "character_id": id}),
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("expired"), "{e:?}");
    cluster.stop_all().await;
}
