//! No answer depends on fitting one peer frame: a read of a board that is not replicated
//! (blacklisted `tournament_*`) is forwarded to the board's owner in parts that each fit a
//! frame, and a page of over 1 MiB asked on another node is answered exactly as the owner's
//! actor answers it (pages with next and previous cursors, owners' records, around an owner).

mod common;
#[path = "leaderboard_support.rs"]
mod support;

use std::time::Duration;

use uuid::Uuid;

use common::cluster::TestCluster;
use serai::config::Config;
use serai::leaderboard::actor::Leaderboard;
use serai::leaderboard::messages::{Api, AroundOwner, List, PartRead, RecordList};
use serai::leaderboard::parts;
use serai::leaderboard::service;
use serai::node::RunningNode;
use serai::routing::placement::Owner;
use support::records;

/// Two boards matching the sync blacklist: the owner reads one from its rank cache, the other
/// (in `rank_cache_blacklist`) from the database.
const BOARDS: [&str; 2] = ["tournament_big", "tournament_db"];

fn tune(_: usize, c: &mut Config) {
    c.leaderboard_sync_batch_timeout = Duration::from_millis(200);
    c.leaderboard_sync_blacklist = vec!["tournament_*".to_string()];
    c.rank_cache_blacklist = vec![BOARDS[1].to_string()];
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

fn metric(node: &RunningNode, name: &str, label: &str) -> f64 {
    node.services
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn list(limit: Option<u32>, cursor: Option<String>, owner_ids: Vec<Uuid>) -> List {
    List {
        api: Api::Leaderboard,
        owner_ids,
        limit,
        cursor,
        expiry: None,
    }
}

/// The owner's actor's answer, asked on the owner node (no peer frame involved).
async fn on_owner(owner: &RunningNode, board: &str, msg: List) -> RecordList {
    service::send(&owner.services.router, board.into(), msg, true)
        .await
        .expect("the owner answers")
}

fn owner_of(i: u32) -> Uuid {
    Uuid::parse_str(&format!("00000000-0000-0000-0000-{i:012}")).unwrap()
}

/// Assembles `msg` from the owner in parts of `max_bytes` on node `on`.
async fn in_parts(on: &RunningNode, board: &str, read: PartRead, max_bytes: u32) -> RecordList {
    parts::fetch_with(&on.services.router, board, read, max_bytes)
        .await
        .expect("answered in parts")
}

#[actix_rt::test]
async fn a_page_over_a_peer_frame_of_a_blacklisted_board_is_answered_on_another_node() {
    // 1 200 records with 1 KiB of metadata each: a page of 1 000 is over 1 MiB.
    let (db, _) = common::migrated_db().await;
    let pad = "x".repeat(1000);
    let raw = support::raw(&db.url).await;
    for board in BOARDS {
        raw.batch_execute(&format!(
            "INSERT INTO leaderboard (id, sort_order, operator) VALUES ('{board}', 1, 0);
             INSERT INTO leaderboard_record (leaderboard_id, expiry_time, owner_id, username,
                 score, subscore, num_score, metadata)
             SELECT '{board}', 0, ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid,
                 'u' || i, i, i % 7, 1, '{{\"pad\":\"{pad}\"}}'
             FROM generate_series(1, 1200) AS i;"
        ))
        .await
        .expect("seed");
    }
    let mut cluster = TestCluster::start_on(db, 3, tune).await;
    for board in BOARDS {
        check(&cluster, board).await;
    }
    cluster.stop_all().await;
}

async fn check(cluster: &TestCluster, board: &str) {
    let owner_i = owner_index(cluster, board);
    let owner = cluster.node(owner_i);
    let other = cluster.node((owner_i + 1) % 3);
    for n in cluster.nodes.iter().flatten() {
        let s = service::sync_of(&n.services.router).expect("replication is on");
        assert!(!s.replicated(board), "{board} is blacklisted");
        assert!(!s.serves(board));
    }
    // A page of 1 000 with some owners' records, from the top.
    let owners: Vec<Uuid> = [5, 600, 1199, 77].into_iter().map(owner_of).collect();
    let msg = list(Some(1000), None, owners.clone());
    let want = on_owner(owner, board, msg.clone()).await;
    assert_eq!(want.records.len(), 1000);
    assert_eq!(want.owner_records.len(), 4);
    let bytes = serde_json::to_vec(&want.records).unwrap().len();
    assert!(bytes > 1 << 20, "the page is {bytes} bytes");
    // One forward of the whole page does not fit a peer frame …
    let whole = service::send(&other.services.router, board.into(), msg.clone(), true).await;
    assert!(whole.is_err(), "a single forwarded answer over 1 MiB fails");
    // … the read on the other node is answered, in parts, exactly as the owner answers.
    let forwarded = metric(
        other,
        "serai_leaderboard_reads_total",
        "served=\"forwarded\"",
    );
    let got = service::read(&other.services.router, board.into(), msg.clone())
        .await
        .expect("a forwarded page over 1 MiB is answered");
    assert_eq!(got, want);
    assert_eq!(
        metric(
            other,
            "serai_leaderboard_reads_total",
            "served=\"forwarded\""
        ),
        forwarded + 1.0,
        "counted once, as forwarded"
    );
    // The next page from its cursor, and back with the previous cursor.
    let next = list(Some(1000), want.next_cursor.clone(), Vec::new());
    let want_next = on_owner(owner, board, next.clone()).await;
    assert_eq!(want_next.records.len(), 200);
    let got_next = service::read(&other.services.router, board.into(), next)
        .await
        .expect("next page");
    assert_eq!(got_next, want_next);
    let prev = list(Some(1000), want_next.prev_cursor.clone(), Vec::new());
    let want_prev = on_owner(owner, board, prev.clone()).await;
    assert_eq!(want_prev.records.len(), 1000);
    let got_prev = service::read(&other.services.router, board.into(), prev)
        .await
        .expect("previous page");
    assert_eq!(got_prev, want_prev);
    // Small parts: many of them, owners' records over several parts too, and around an owner.
    for max_bytes in [3_000, 20_000, 200_000] {
        let got = in_parts(other, board, PartRead::List(msg.clone()), max_bytes).await;
        assert_eq!(got, want, "parts of {max_bytes} bytes");
        let around = AroundOwner {
            api: Api::Leaderboard,
            owner: owner_of(600),
            limit: 100,
            cursor: None,
            expiry: None,
        };
        let want_around = service::send(&owner.services.router, board.into(), around.clone(), true)
            .await
            .expect("around on the owner");
        assert_eq!(want_around.records.len(), 100);
        let got_around = in_parts(other, board, PartRead::Around(around), max_bytes).await;
        assert_eq!(
            got_around, want_around,
            "around in parts of {max_bytes} bytes"
        );
    }
    let only_owners = list(None, None, (1..=300).map(owner_of).collect());
    let want_owners = on_owner(owner, board, only_owners.clone()).await;
    assert_eq!(want_owners.owner_records.len(), 300);
    let got_owners = in_parts(other, board, PartRead::List(only_owners), 50_000).await;
    assert_eq!(got_owners, want_owners);
    // Over HTTP on the non-owner node.
    let p = support::player_at(other.client_addr, &format!("reader-{board}")).await;
    let v = p
        .get(&format!(
            "/v2/leaderboard/{board}?limit=1000&owner_ids={}",
            owner_of(3)
        ))
        .await;
    let recs = records(&v, "records");
    assert_eq!(recs.len(), 1000);
    assert_eq!(support::int64(&recs[0]["score"]), 1200);
    assert_eq!(support::int64(&recs[999]["score"]), 201);
    assert_eq!(records(&v, "owner_records").len(), 1);
}
