//! Leaderboard replication on three real nodes in one process, on real PostgreSQL: every node
//! keeps a replica of every board and answers reads from it exactly as the owner's actor
//! would; a node reads its own writes; a replica that missed entries catches up from the
//! origin's buffer or, when they are gone, from snapshots; reads keep answering while an owner
//! drains and restarts; blacklisted boards are not replicated; compressed and plain streams
//! give equal replicas; a page larger than a peer frame is answered locally.

mod common;
#[path = "leaderboard_support.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use common::cluster::TestCluster;
use serai::config::Config;
use serai::leaderboard::actor::Leaderboard;
use serai::leaderboard::messages::{Api, AroundOwner, List, RecordList};
use serai::leaderboard::replication::LeaderboardSync;
use serai::leaderboard::service::{self, ReplicaRead};
use serai::node::RunningNode;
use serai::routing::placement::Owner;
use support::{records, request, Player};

fn fast(_: usize, c: &mut Config) {
    c.leaderboard_sync_batch_timeout = Duration::from_millis(200);
}

async fn admin(node: &RunningNode, method: &str, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {}", node.services.config.admin_token);
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    request(
        node.admin_addr,
        method,
        path,
        &[("Authorization", &auth)],
        &body,
    )
    .await
}

fn sync(node: &RunningNode) -> Arc<LeaderboardSync> {
    service::sync_of(&node.services.router).expect("replication is on")
}

/// The value of a metric line (`name{labels}`) in the node's exposition, 0 when absent.
fn metric(node: &RunningNode, name: &str, label: &str) -> f64 {
    let text = node.services.metrics.render();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn owner_index(cluster: &TestCluster, board: &str) -> usize {
    let router = &cluster.node(0).services.router;
    let id = match router.owner::<Leaderboard>(&board.to_string()) {
        Owner::Local => cluster.node(0).services.config.node_id.clone(),
        Owner::Remote(n) => n,
        Owner::Nobody => panic!("nobody owns {board}"),
    };
    id.trim_start_matches("node-").parse().expect("node index")
}

async fn wait_synced(cluster: &TestCluster) {
    for i in 0..cluster.nodes.len() {
        if let Some(n) = cluster.nodes[i].as_ref() {
            assert!(
                sync(n).wait_synced(Duration::from_secs(20)).await,
                "node-{i} synced: {}",
                sync(n).status()
            );
        }
    }
}

/// The first `limit` records of a board.
fn top(limit: u32) -> List {
    List {
        api: Api::Leaderboard,
        owner_ids: Vec::new(),
        limit: Some(limit),
        cursor: None,
        expiry: None,
    }
}

/// What the owner's actor answers (never a replica).
async fn from_owner_actor(cluster: &TestCluster, board: &str, msg: List) -> RecordList {
    let owner = cluster.node(owner_index(cluster, board));
    service::send(&owner.services.router, board.to_string(), msg, true)
        .await
        .expect("owner answers")
}

/// Waits until every running node's replica answers `msg` as the owner's actor does.
async fn wait_equal(cluster: &TestCluster, board: &str, msg: List, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let want = from_owner_actor(cluster, board, msg.clone()).await;
        let mut all = true;
        for n in cluster.nodes.iter().flatten() {
            let got = sync(n).read(board, |r| msg.answer(r, now()));
            all &= matches!(got, Some(Ok(ref l)) if *l == want);
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replicas of {board} differ from the owner after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most 10 s) until `done`.
async fn wait_for(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "condition not met within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn players(cluster: &TestCluster, n: usize) -> Vec<Player> {
    let mut v = Vec::new();
    for i in 0..n {
        let at = cluster.node(i % cluster.nodes.len()).client_addr;
        let name = format!("p{i}-{}", &Uuid::new_v4().simple().to_string()[..8]);
        v.push(support::player_at(at, &name).await);
    }
    v
}

fn via(p: &Player, node: &RunningNode) -> Player {
    Player {
        addr: node.client_addr,
        ..p.clone()
    }
}

#[actix_rt::test]
async fn replicas_answer_like_the_owner_and_reads_are_not_forwarded() {
    let mut cluster = TestCluster::start(3, fast).await;
    let boards: Vec<String> = (0..4).map(|i| format!("weekly-{i}")).collect();
    for b in &boards {
        let (s, v) = admin(
            cluster.node(0),
            "POST",
            "/admin/leaderboards",
            json!({"id": b}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    wait_synced(&cluster).await;
    let ps = players(&cluster, 6).await;
    // Every player writes every board through each node in turn, and reads its own write on
    // that node at once (read your writes), whoever owns the board.
    for (k, p) in ps.iter().enumerate() {
        for (j, b) in boards.iter().enumerate() {
            let node = cluster.node((k + j) % 3);
            let p = via(p, node);
            let score = (k * 7 + j * 3) as i64;
            p.write_ok(b, score, k as i64).await;
            let v = p
                .get(&format!("/v2/leaderboard/{b}?owner_ids={}&limit=1", p.id))
                .await;
            let own = records(&v, "owner_records");
            assert_eq!(
                own.len(),
                1,
                "own write visible on the node that took it: {v}"
            );
            assert_eq!(support::int64(&own[0]["score"]), score);
        }
    }
    for b in &boards {
        wait_equal(&cluster, b, top(100), Duration::from_secs(1)).await;
    }
    // Around-owner on every node equals the owner's.
    for b in &boards {
        let msg = AroundOwner {
            api: Api::Leaderboard,
            owner: ps[2].id,
            limit: 3,
            cursor: None,
            expiry: None,
        };
        let owner = cluster.node(owner_index(&cluster, b));
        let want: RecordList = service::send(&owner.services.router, b.clone(), msg.clone(), true)
            .await
            .unwrap();
        assert_eq!(want.records.len(), 3);
        for n in cluster.nodes.iter().flatten() {
            let got = service::read(&n.services.router, b.clone(), msg.clone())
                .await
                .unwrap();
            assert_eq!(
                got, want,
                "around-owner of {b} on {}",
                n.services.config.node_id
            );
        }
    }

    // Reads on a node that owns none of these boards' copies make no peer request: the
    // forwarding counter stands still, and they answer with the links to the owners cut.
    let b = &boards[0];
    let owner = owner_index(&cluster, b);
    let reader = (owner + 1) % 3;
    let node = cluster.node(reader);
    let owner_id = format!("node-{owner}");
    node.services.peers.cut(&owner_id);
    let forwarded = metric(node, "serai_forwarded_total", "leaderboard");
    let replica_reads = metric(node, "serai_leaderboard_reads_total", "served=\"replica\"");
    let p = via(&ps[0], node);
    for _ in 0..20 {
        let v = p.get(&format!("/v2/leaderboard/{b}?limit=100")).await;
        assert_eq!(records(&v, "records").len(), 6);
        let v = p
            .get(&format!("/v2/leaderboard/{b}/owner/{}?limit=5", ps[1].id))
            .await;
        assert_eq!(records(&v, "records").len(), 5);
    }
    assert_eq!(
        metric(node, "serai_forwarded_total", "leaderboard"),
        forwarded
    );
    assert_eq!(
        metric(node, "serai_leaderboard_reads_total", "served=\"replica\""),
        replica_reads + 40.0
    );
    node.services.peers.heal(&owner_id);
    // The admin view shows the applied version per origin.
    let (s, v) = admin(node, "GET", "/admin/cluster", Value::Null).await;
    assert_eq!(s, 200);
    let origins = v["leaderboard_sync"]["origins"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(origins.len(), 2, "{v}");
    assert!(origins
        .iter()
        .all(|o| o["applied_version"].as_u64().is_some()));
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn a_replica_that_missed_entries_catches_up_from_the_buffer_or_a_snapshot() {
    let tune = |i: usize, c: &mut Config| {
        fast(i, c);
        c.leaderboard_sync_buffer = 32;
    };
    let mut cluster = TestCluster::start(3, tune).await;
    let b = "season";
    admin(
        cluster.node(0),
        "POST",
        "/admin/leaderboards",
        json!({"id": b}),
    )
    .await;
    wait_synced(&cluster).await;
    let owner = owner_index(&cluster, b);
    let lagging = (owner + 1) % 3;
    let writer = (owner + 2) % 3;
    let ps = players(&cluster, 1).await;
    let p = via(&ps[0], cluster.node(writer));
    let o = cluster.node(owner);
    let lag = cluster.node(lagging);
    let lagging_id = format!("node-{lagging}");

    // A short absence: 10 entries missed, then the stream resumes and shows the gap.
    o.services.peers.cut(&lagging_id);
    let failed = metric(o, "serai_leaderboard_sync_failures_total", "send");
    for i in 0..10 {
        p.write_ok(b, i, 0).await;
    }
    // The batches carrying them went out and did not reach the lagging node.
    wait_for(|| metric(o, "serai_leaderboard_sync_failures_total", "send") > failed).await;
    let incremental = metric(lag, "serai_leaderboard_sync_resyncs_total", "incremental");
    o.services.peers.heal(&lagging_id);
    wait_equal(&cluster, b, top(100), Duration::from_secs(5)).await;
    assert!(
        metric(lag, "serai_leaderboard_sync_resyncs_total", "incremental") > incremental,
        "{} {}\n{}",
        incremental,
        sync(lag).status(),
        lag.services.metrics.render()
    );

    // A long absence: more entries than the buffer holds (one player per write, so none
    // collapses), then a full snapshot.
    o.services.peers.cut(&lagging_id);
    let many = players(&cluster, 40).await;
    let failed = metric(o, "serai_leaderboard_sync_failures_total", "send");
    for (i, q) in many.iter().enumerate() {
        via(q, cluster.node(writer))
            .write_ok(b, 100 + i as i64, 0)
            .await;
    }
    wait_for(|| metric(o, "serai_leaderboard_sync_failures_total", "send") > failed).await;
    let full = metric(lag, "serai_leaderboard_sync_resyncs_total", "full");
    o.services.peers.heal(&lagging_id);
    wait_equal(&cluster, b, top(100), Duration::from_secs(10)).await;
    assert!(metric(lag, "serai_leaderboard_sync_resyncs_total", "full") > full);
    assert!(metric(lag, "serai_leaderboard_sync_gaps_total", "version") >= 2.0);
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn reads_keep_answering_while_the_owner_drains_and_restarts() {
    let mut cluster = TestCluster::start(3, fast).await;
    let b = "arena";
    admin(
        cluster.node(0),
        "POST",
        "/admin/leaderboards",
        json!({"id": b}),
    )
    .await;
    wait_synced(&cluster).await;
    let owner = owner_index(&cluster, b);
    let reader = (owner + 1) % 3;
    let writer = (owner + 2) % 3;
    let ps = players(&cluster, 8).await;
    for (i, p) in ps.iter().enumerate() {
        via(p, cluster.node(writer)).write_ok(b, i as i64, 0).await;
    }
    wait_equal(&cluster, b, top(100), Duration::from_secs(2)).await;

    // A reader on another node hammers the board while its owner drains away.
    let reader_addr = cluster.node(reader).client_addr;
    let reader_player = Player {
        addr: reader_addr,
        ..ps[0].clone()
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (stop2, rp) = (stop.clone(), reader_player.clone());
    let reads = actix_rt::spawn(async move {
        let (mut ok, mut failed) = (0u32, 0u32);
        while !stop2.load(std::sync::atomic::Ordering::Acquire) {
            let (s, v) = rp.call("GET", "/v2/leaderboard/arena?limit=100", "").await;
            if s == 200 && records(&v, "records").len() >= 8 {
                ok += 1;
            } else {
                failed += 1;
            }
        }
        (ok, failed)
    });
    cluster.stop(owner).await;
    cluster.wait_converged(2, Duration::from_secs(10)).await;
    // Writes go on through the new owner; then the old owner comes back (a new incarnation)
    // and takes the board back.
    via(&ps[1], cluster.node(writer)).write_ok(b, 1000, 0).await;
    cluster.restart(owner, fast).await;
    cluster.wait_converged(3, Duration::from_secs(10)).await;
    via(&ps[2], cluster.node(writer)).write_ok(b, 2000, 0).await;
    wait_synced(&cluster).await;
    stop.store(true, std::sync::atomic::Ordering::Release);
    let (ok, failed) = reads.await.unwrap();
    assert!(ok > 0);
    assert_eq!(
        failed, 0,
        "reads on node-{reader} failed during the failover ({ok} ok)"
    );
    wait_equal(&cluster, b, top(100), Duration::from_secs(5)).await;
    let v = reader_player.get("/v2/leaderboard/arena?limit=2").await;
    let top2: Vec<i64> = records(&v, "records")
        .iter()
        .map(|r| support::int64(&r["score"]))
        .collect();
    assert_eq!(top2, vec![2000, 1000]);
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn blacklisted_boards_stay_with_their_owner_and_compression_changes_nothing() {
    let tune = |i: usize, c: &mut Config| {
        fast(i, c);
        c.leaderboard_sync_blacklist = vec!["tournament_*".to_string()];
        // Node 0 compresses its stream and snapshots; the others do not.
        c.leaderboard_sync_compression = i == 0;
    };
    let mut cluster = TestCluster::start(3, tune).await;
    let boards: Vec<String> = (0..6).map(|i| format!("cup-{i}")).collect();
    for b in boards
        .iter()
        .chain(["tournament_spring".to_string()].iter())
    {
        admin(
            cluster.node(0),
            "POST",
            "/admin/leaderboards",
            json!({"id": b}),
        )
        .await;
    }
    wait_synced(&cluster).await;
    let ps = players(&cluster, 5).await;
    for (k, p) in ps.iter().enumerate() {
        for b in boards
            .iter()
            .chain(["tournament_spring".to_string()].iter())
        {
            via(p, cluster.node(k % 3))
                .write_ok(b, k as i64 * 10, 0)
                .await;
        }
    }
    // Replicas from the compressing origin and the plain ones equal their owners.
    assert!(boards.iter().any(|b| owner_index(&cluster, b) == 0));
    assert!(boards.iter().any(|b| owner_index(&cluster, b) != 0));
    for b in &boards {
        wait_equal(&cluster, b, top(100), Duration::from_secs(2)).await;
    }
    // The blacklisted board is in no replica; reads go to its owner.
    let t = "tournament_spring";
    let owner = owner_index(&cluster, t);
    let other = cluster.node((owner + 1) % 3);
    for n in cluster.nodes.iter().flatten() {
        assert!(!sync(n).serves(t));
    }
    let forwarded = metric(
        other,
        "serai_leaderboard_reads_total",
        "served=\"forwarded\"",
    );
    let v = via(&ps[0], other)
        .get(&format!("/v2/leaderboard/{t}?limit=10"))
        .await;
    assert_eq!(records(&v, "records").len(), 5);
    assert_eq!(
        metric(
            other,
            "serai_leaderboard_reads_total",
            "served=\"forwarded\""
        ),
        forwarded + 1.0
    );
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn a_page_larger_than_a_peer_frame_is_answered_locally() {
    // 1 200 records with 1 KiB of metadata each: a page of 1 000 is over 1 MiB.
    let (db, _) = common::migrated_db().await;
    let pad = "x".repeat(1000);
    support::raw(&db.url)
        .await
        .batch_execute(&format!(
            "INSERT INTO leaderboard (id, sort_order, operator) VALUES ('big', 1, 0);
             INSERT INTO leaderboard_record (leaderboard_id, expiry_time, owner_id, username,
                 score, subscore, num_score, metadata)
             SELECT 'big', 0, md5('big' || i)::uuid, 'u' || i, i, 0, 1,
                 '{{\"pad\":\"{pad}\"}}'
             FROM generate_series(1, 1200) AS i;"
        ))
        .await
        .expect("seed");
    let mut cluster = TestCluster::start_on(db, 3, fast).await;
    wait_synced(&cluster).await;
    let owner = owner_index(&cluster, "big");
    let other = cluster.node((owner + 1) % 3);
    let msg = List {
        api: Api::Leaderboard,
        owner_ids: vec![Uuid::nil()],
        limit: Some(1000),
        cursor: None,
        expiry: None,
    };
    let local = service::read(&other.services.router, "big".into(), msg.clone())
        .await
        .expect("answered from the replica");
    assert_eq!(local.records.len(), 1000);
    assert_eq!(local.records[0].score, 1200);
    let bytes = serde_json::to_vec(&local.records).unwrap().len();
    assert!(bytes > 1 << 20, "the page is {bytes} bytes");
    // The same page forwarded to the owner does not fit a peer frame.
    let forwarded = service::send(&other.services.router, "big".into(), msg.clone(), true).await;
    assert!(forwarded.is_err(), "a forwarded page over 1 MiB fails");
    // Over HTTP on the non-owner node too.
    let p = support::player_at(other.client_addr, "big-reader").await;
    let v = p.get("/v2/leaderboard/big?limit=1000").await;
    assert_eq!(records(&v, "records").len(), 1000);
    wait_equal(&cluster, "big", top(100), Duration::from_secs(2)).await;
    cluster.stop_all().await;
}
