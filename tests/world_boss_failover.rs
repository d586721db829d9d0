//! The real binary as three processes on one database: attackers on the two survivors fight a
//! world boss, its owner is SIGKILLed mid-fight, and the fight goes on on the new owner.
//! Exactly one kill overall, HP never below 0, every participant rewarded exactly once.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use serde_json::json;
use uuid::Uuid;

use common::client::GameClient;
use common::process::NodeProcess;
use common::{raw_client, wait_until};
use serai::localdb::TestDatabase;

const ADMIN_TOKEN: &str = "world-boss-failover-admin-token";
const ATTACKERS: usize = 30;
const MAX_HP: i64 = 40_000;
const REWARD_GOLD: i64 = 75;

/// One answered attack: when, and what it said.
#[derive(Debug, Clone, Copy)]
struct Hit {
    at: Instant,
    damage: i64,
    hp: i64,
    killed: bool,
}

async fn player(addr: SocketAddr, i: usize) -> (GameClient, Uuid, i64) {
    let device = format!("failover-device-{i:04}");
    GameClient::with_character(addr, &device, &format!("Fighter {i}")).await
}

/// Attacks until the boss is defeated; an attack without a final answer (the owner moving) is
/// asked again with its request_id until it has one.
async fn fight(client: GameClient, character: Uuid, i: usize, last_hp: Arc<AtomicI64>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(45);
    for n in 0.. {
        let payload = json!({
            "event_id": "leviathan", "character_id": character,
            "request_id": format!("hit-{i:04}-{n:06}"),
        });
        loop {
            assert!(Instant::now() < give_up, "the fight did not end");
            match client.rpc("attack_world_boss", &payload).await {
                Ok(v) => {
                    let hit = Hit {
                        at: Instant::now(),
                        damage: v["damage"].as_i64().unwrap(),
                        hp: v["hp"].as_i64().unwrap(),
                        killed: v["killed"].as_bool().unwrap(),
                    };
                    last_hp.fetch_min(hit.hp, Ordering::Relaxed);
                    hits.push(hit);
                    break;
                }
                Err(e) if e.message.contains("defeated") => return hits,
                Err(e) if e.grpc_code == Some(14) || e.grpc_code == Some(4) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("attack: {e:?}"),
            }
        }
        // Paces the fight so that it lasts through the failover.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_the_bosss_owner_mid_fight_kills_once_and_rewards_once() {
    let db = TestDatabase::create().await.expect("database");
    let mut procs = NodeProcess::start_cluster(&db.url, 3, ADMIN_TOKEN, "world-boss").await;
    let pg = raw_client(&db.url).await;
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let now = chrono::Utc::now();
    let body = json!({
        "id": "leviathan", "kind": "boss", "title": "Leviathan", "max_hp": MAX_HP,
        "starts_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
        "ends_at": (now + chrono::Duration::minutes(10)).to_rfc3339(),
        "reward_gold": REWARD_GOLD, "reward_item": null,
    })
    .to_string();
    let admin = procs[0].as_ref().unwrap().admin;
    let created = common::raw::http(admin, "POST", "/admin/world/events", &auth, &body).await;
    assert_eq!(created.map(|c| c.0), Some(201));

    // Activate the boss to learn its owner; the attackers live on the two others.
    let probe = GameClient::device(procs[0].as_ref().unwrap().client, "failover-probe").await;
    probe
        .rpc("get_world_event", &json!({"event_id": "leviathan"}))
        .await
        .expect("get_world_event");
    let owner: String = pg
        .query_one(
            "SELECT owner_node FROM world_event WHERE id = 'leviathan'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let victim: usize = owner.trim_start_matches("node-").parse().unwrap();
    let survivors: Vec<SocketAddr> = (0..3)
        .filter(|i| *i != victim)
        .map(|i| procs[i].as_ref().unwrap().client)
        .collect();
    let players: Vec<_> = stream::iter(0..ATTACKERS)
        .map(|i| player(survivors[i % 2], i))
        .buffer_unordered(10)
        .collect()
        .await;
    let gold_before: HashMap<Uuid, i64> = players.iter().map(|(_, id, g)| (*id, *g)).collect();

    let last_hp = Arc::new(AtomicI64::new(MAX_HP));
    let tasks: Vec<_> = players
        .iter()
        .enumerate()
        .map(|(i, (c, id, _))| tokio::spawn(fight(c.clone(), *id, i, last_hp.clone())))
        .collect();
    wait_until(
        "a fifth of the boss's HP gone",
        Duration::from_secs(20),
        async || last_hp.load(Ordering::Relaxed) < MAX_HP * 4 / 5,
    )
    .await;
    let hp_at_kill = last_hp.load(Ordering::Relaxed);
    let mut dead = procs[victim].take().unwrap();
    dead.child.kill().expect("SIGKILL");
    dead.child.wait().unwrap();
    let killed_at = Instant::now();
    let mut hits: Vec<(Uuid, Hit)> = Vec::new();
    for (t, (_, id, _)) in tasks.into_iter().zip(&players) {
        hits.extend(t.await.unwrap().into_iter().map(|h| (*id, h)));
    }

    // The fight went on after the kill, on the new owner; one kill in all; HP never below 0.
    let after: Vec<&Hit> = hits
        .iter()
        .map(|(_, h)| h)
        .filter(|h| h.at > killed_at)
        .collect();
    assert!(!after.is_empty(), "attacks succeeded after the owner died");
    let resumed = after.iter().map(|h| h.at).min().unwrap() - killed_at;
    println!(
        "owner {owner} killed at hp {hp_at_kill}; {} attacks before, {} after; first answer after the kill in {resumed:?}",
        hits.len() - after.len(),
        after.len()
    );
    assert_eq!(
        hits.iter().filter(|(_, h)| h.killed).count(),
        1,
        "exactly one kill"
    );
    assert!(hits.iter().all(|(_, h)| h.hp >= 0 && h.damage > 0));
    let new_owner: Option<String> = pg
        .query_one(
            "SELECT owner_node FROM world_event WHERE id = 'leviathan'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_ne!(
        new_owner.as_deref(),
        Some(owner.as_str()),
        "a survivor owns the boss now"
    );
    let row = pg
        .query_one(
            "SELECT state, hp FROM world_event WHERE id = 'leviathan'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i64>(1)),
        ("defeated".to_string(), 0)
    );

    // Every participant in the database is rewarded exactly once; every attacker that hit
    // after the failover is one of them.
    let participants: Vec<Uuid> = pg
        .query(
            "SELECT character_id FROM world_event_participant WHERE event_id = 'leviathan'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let n = participants.len() as i64;
    common::rows::wait_rewarded(&pg, "leviathan", n).await;
    for (id, h) in &hits {
        if h.at > killed_at {
            assert!(participants.contains(id), "{id} hit after the failover");
        }
    }
    for id in &participants {
        let g: i64 = pg
            .query_one("SELECT gold FROM player_character WHERE id = $1", &[id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(g, gold_before[id] + REWARD_GOLD, "{id} paid exactly once");
    }
}
