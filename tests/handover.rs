//! Live handover (issue 10): a character whose key moves — its node drains, or a node joins —
//! goes to its new owner with its state. The new owner's activation takes the state instead of
//! loading it, answers exactly what the old owner answered, and the database holds the same.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::cluster::TestCluster;
use serai::character::messages::GetCharacter;
use serai::character::CharacterSession;
use serai::domain::character::state::CharacterState;
use serai::request::Call;
use serai::request::Deadline;
use serai::routing::placement::Owner;
use uuid::Uuid;

const CHARACTERS: usize = 24;

async fn insert_characters(url: &str, n: usize) -> Vec<Uuid> {
    let db = common::raw_client(url).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = Uuid::new_v4();
        db.execute(
            "INSERT INTO player_character (id, user_id, name, faction, background, gold, location, hp, max_hp) \
             VALUES ($1, $2, $3, 'f', 'b', $4, 'start', 10, 10)",
            &[&id, &Uuid::new_v4(), &format!("mover {i}"), &(100 + i as i64)],
        )
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}

async fn get(cluster: &TestCluster, via: usize, id: Uuid) -> CharacterState {
    let call = Call::server(Deadline::after(Duration::from_secs(5)));
    cluster
        .node(via)
        .services
        .router
        .ask::<CharacterSession, _>(id, GetCharacter { call })
        .await
        .expect("delivered")
        .expect("answered")
}

fn owner_of(cluster: &TestCluster, via: usize, id: Uuid) -> String {
    let router = &cluster.node(via).services.router;
    match router.owner::<CharacterSession>(&id) {
        Owner::Local => router.placement().node_id().to_string(),
        Owner::Remote(n) => n,
        Owner::Nobody => "nobody".into(),
    }
}

/// `serai_character_activations_total{from}` of node `i`.
fn activations(cluster: &TestCluster, i: usize, from: &str) -> f64 {
    let label = format!("from=\"{from}\"");
    cluster
        .node(i)
        .services
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("serai_character_activations_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn sum(cluster: &TestCluster, nodes: &[usize], from: &str) -> f64 {
    nodes.iter().map(|i| activations(cluster, *i, from)).sum()
}

async fn answers(cluster: &TestCluster, via: usize, ids: &[Uuid]) -> HashMap<Uuid, CharacterState> {
    let mut out = HashMap::new();
    for id in ids {
        out.insert(*id, get(cluster, via, *id).await);
    }
    out
}

async fn stored(url: &str, ids: &[Uuid]) -> HashMap<Uuid, i64> {
    let db = common::raw_client(url).await;
    let mut out = HashMap::new();
    for id in ids {
        let gold: i64 = db
            .query_one("SELECT gold FROM player_character WHERE id = $1", &[id])
            .await
            .unwrap()
            .get(0);
        out.insert(*id, gold);
    }
    out
}

#[actix_rt::test]
async fn a_draining_nodes_characters_move_with_their_state() {
    let mut cluster = TestCluster::start(3, |_, _| {}).await;
    let ids = insert_characters(&cluster.db.url, CHARACTERS).await;
    let before = answers(&cluster, 0, &ids).await;
    let moving: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| owner_of(&cluster, 0, *id) == "node-2")
        .collect();
    assert!(
        !moving.is_empty(),
        "node-2 owns some of {CHARACTERS} characters"
    );
    let loaded_before = sum(&cluster, &[0, 1], "database");

    cluster.stop(2).await;
    cluster.wait_converged(2, Duration::from_secs(5)).await;

    let after = answers(&cluster, 0, &ids).await;
    assert_eq!(after, before, "every character answers as before the drain");
    assert_eq!(
        sum(&cluster, &[0, 1], "handover"),
        moving.len() as f64,
        "each moved character was activated from its handed-over state"
    );
    assert_eq!(
        sum(&cluster, &[0, 1], "database"),
        loaded_before,
        "no moved character was loaded from the database"
    );
    let gold = stored(&cluster.db.url, &ids).await;
    for id in &ids {
        assert_eq!(
            gold[id], after[id].gold,
            "the database holds what is answered"
        );
    }
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn characters_move_with_their_state_to_a_node_that_joins() {
    let mut cluster = TestCluster::start(2, |_, _| {}).await;
    let ids = insert_characters(&cluster.db.url, CHARACTERS).await;
    let before = answers(&cluster, 0, &ids).await;

    let joined = cluster.add(|_, _| {}).await;
    let moving: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| owner_of(&cluster, 0, *id) == format!("node-{joined}"))
        .collect();
    assert!(
        !moving.is_empty(),
        "the new node owns some of {CHARACTERS} characters"
    );
    // The old owners hand off as their views change; wait until none of them runs a moved one.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while moving.iter().any(|id| {
        (0..2).any(|i| {
            cluster
                .node(i)
                .services
                .router
                .local::<CharacterSession>(id)
                .is_some()
        })
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "moved sessions did not stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let after = answers(&cluster, 0, &ids).await;
    assert_eq!(after, before, "every character answers as before the join");
    assert_eq!(
        activations(&cluster, joined, "handover"),
        moving.len() as f64,
        "each moved character was activated from its handed-over state"
    );
    assert_eq!(activations(&cluster, joined, "database"), 0.0);
    cluster.stop_all().await;
}
