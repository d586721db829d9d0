//! Leaderboards end to end over HTTP against a real node and PostgreSQL: operators and ties as
//! Nakama documents them, response shapes, errors, authoritative boards, deletes, grouped
//! commits, restarts, the rank-cache blacklist, and the game's own boards.

#[path = "leaderboard_support.rs"]
mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use serai::leaderboard::game_boards;
use support::{int64, records, start};

/// (score, subscore) of a record.
fn scores(r: &Value) -> (i64, i64) {
    (int64(&r["score"]), int64(&r["subscore"]))
}

#[actix_rt::test]
async fn operators_follow_nakama() {
    let lb = start("", |_| {}).await;
    for (id, order, op) in [
        ("best_desc", "desc", "best"),
        ("best_asc", "asc", "best"),
        ("set", "desc", "set"),
        ("incr", "desc", "incr"),
        ("decr", "desc", "decr"),
    ] {
        lb.create_board(json!({"id": id, "sort_order": order, "operator": op}))
            .await;
    }
    let p = lb.player("alice").await;

    // best, descending: score and subscore kept independently; a worse write does not count.
    let r = p.write_ok("best_desc", 10, 5).await;
    assert_eq!((scores(&r), r["num_score"].as_u64()), ((10, 5), Some(1)));
    let r = p.write_ok("best_desc", 20, 1).await;
    assert_eq!((scores(&r), r["num_score"].as_u64()), ((20, 5), Some(2)));
    let r = p.write_ok("best_desc", 5, 9).await;
    assert_eq!((scores(&r), r["num_score"].as_u64()), ((20, 9), Some(3)));
    let r = p.write_ok("best_desc", 1, 1).await;
    assert_eq!((scores(&r), r["num_score"].as_u64()), ((20, 9), Some(3)));

    // best, ascending: lower is better.
    p.write_ok("best_asc", 10, 5).await;
    let r = p.write_ok("best_asc", 20, 1).await;
    assert_eq!(scores(&r), (10, 1));
    let r = p.write_ok("best_asc", 3, 7).await;
    assert_eq!((scores(&r), r["num_score"].as_u64()), ((3, 1), Some(3)));

    // set replaces; the same values do not count.
    p.write_ok("set", 10, 5).await;
    let r = p.write_ok("set", 4, 0).await;
    assert_eq!((scores(&r), r["num_score"].as_u64()), ((4, 0), Some(2)));
    let r = p.write_ok("set", 4, 0).await;
    assert_eq!(r["num_score"].as_u64(), Some(2));

    // incr adds; a zero delta does not count.
    p.write_ok("incr", 10, 5).await;
    let r = p.write_ok("incr", 7, 1).await;
    assert_eq!((scores(&r), r["num_score"].as_u64()), ((17, 6), Some(2)));
    let r = p.write_ok("incr", 0, 0).await;
    assert_eq!(r["num_score"].as_u64(), Some(2));

    // decr: a first decr stores 0; floored at 0.
    let r = p.write_ok("decr", 10, 5).await;
    assert_eq!(scores(&r), (0, 0));
    let q = lb.player("bob").await;
    let (s, _) = q
        .call(
            "POST",
            "/v2/leaderboard/incr",
            &json!({"score": "50", "operator": 2}).to_string(),
        )
        .await;
    assert_eq!(s, 200);
    // Operator override: decrement (4) on the incr board, floored at 0.
    let (s, r) = q
        .call(
            "POST",
            "/v2/leaderboard/incr",
            &json!({"score": "80", "subscore": "1", "operator": 4}).to_string(),
        )
        .await;
    assert_eq!((s, scores(&r)), (200, (0, 0)), "{r}");
    let (s, r) = q
        .call(
            "POST",
            "/v2/leaderboard/incr",
            &json!({"score": "9", "operator": "INCREMENT"}).to_string(),
        )
        .await;
    assert_eq!(
        (s, scores(&r), r["num_score"].as_u64()),
        (200, (9, 0), Some(3))
    );

    // Metadata: kept when a write brings none, JSON object only.
    let (s, r) = p
        .call(
            "POST",
            "/v2/leaderboard/set",
            &json!({"score": "11", "metadata": "{\"ship\":\"galleon\"}"}).to_string(),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(r["metadata"].as_str().unwrap()).unwrap(),
        json!({"ship": "galleon"})
    );
    let r = p.write_ok("set", 12, 0).await;
    assert_eq!(
        serde_json::from_str::<Value>(r["metadata"].as_str().unwrap()).unwrap(),
        json!({"ship": "galleon"})
    );
    let (s, e) = p
        .call(
            "POST",
            "/v2/leaderboard/set",
            &json!({"score": "1", "metadata": "[1,2]"}).to_string(),
        )
        .await;
    assert_eq!((s, e["code"].as_i64()), (400, Some(3)), "{e}");
    assert_eq!(e["message"], "Metadata value must be JSON, if provided.");

    // Negative scores fail as Nakama's CHECK constraint does.
    let (s, e) = p.write("set", -1, 0).await;
    assert_eq!((s, e["code"].as_i64()), (500, Some(13)), "{e}");
    // An operator that does not exist.
    let (s, e) = p
        .call(
            "POST",
            "/v2/leaderboard/set",
            &json!({"score": "1", "operator": 9}).to_string(),
        )
        .await;
    assert_eq!((s, e["code"].as_i64()), (500, Some(13)), "{e}");

    // Unknown board, no token, bad token.
    let (s, e) = p.write("nope", 1, 1).await;
    assert_eq!((s, e["code"].as_i64()), (404, Some(5)));
    assert_eq!(e["message"], "Leaderboard not found.");
    let (s, _) = support::request(lb.client(), "GET", "/v2/leaderboard/set", &[], "").await;
    assert_eq!(s, 401);
    lb.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn ties_ranks_and_shapes() {
    let lb = start("", |_| {}).await;
    lb.create_board(json!({"id": "desc", "sort_order": "desc"}))
        .await;
    lb.create_board(json!({"id": "asc", "sort_order": "asc"}))
        .await;
    let mut players = Vec::new();
    for i in 0..6 {
        players.push(lb.player(&format!("p{i}")).await);
    }
    // Scores with full ties: (5,1) ×3, (5,0), (9,9), (0,0).
    let plan = [(5, 1), (5, 1), (5, 1), (5, 0), (9, 9), (0, 0)];
    for (p, &(s, ss)) in players.iter().zip(plan.iter()) {
        p.write_ok("desc", s, ss).await;
        p.write_ok("asc", s, ss).await;
    }
    for (board, desc) in [("desc", true), ("asc", false)] {
        let mut expected: Vec<(i64, i64, Uuid)> = players
            .iter()
            .zip(plan.iter())
            .map(|(p, &(s, ss))| (s, ss, p.id))
            .collect();
        expected.sort();
        if desc {
            expected.reverse();
        }
        let v = players[0]
            .get(&format!("/v2/leaderboard/{board}?limit=100"))
            .await;
        let got: Vec<(i64, i64, Uuid)> = records(&v, "records")
            .iter()
            .map(|r| {
                let (s, ss) = scores(r);
                (s, ss, r["owner_id"].as_str().unwrap().parse().unwrap())
            })
            .collect();
        assert_eq!(got, expected, "{board}: order with ties broken by owner id");
        for (i, r) in records(&v, "records").iter().enumerate() {
            assert_eq!(int64(&r["rank"]), i as i64 + 1);
            assert_eq!(r["leaderboard_id"], board);
        }
        assert_eq!(int64(&v["rank_count"]), 6);
        assert!(v.get("next_cursor").is_none() && v.get("prev_cursor").is_none());
        // Owner records: ranks from the cache, in board order.
        let q = format!(
            "/v2/leaderboard/{board}?owner_ids={}&owner_ids={}",
            players[5].id, players[4].id
        );
        let v = players[1].get(&q).await;
        assert!(v.get("records").is_none(), "no limit, only owners: {v}");
        let owners = records(&v, "owner_records");
        assert_eq!(owners.len(), 2);
        let top = if desc { &players[4] } else { &players[5] };
        assert_eq!(owners[0]["owner_id"], top.id.to_string());
        assert_eq!(int64(&owners[0]["rank"]), 1);
        assert_eq!(int64(&owners[1]["rank"]), 6);
        // Around owner: the owner and neighbours with ranks.
        let me = &players[3];
        let v = me
            .get(&format!("/v2/leaderboard/{board}/owner/{}?limit=3", me.id))
            .await;
        let around = records(&v, "records");
        assert_eq!(around.len(), 3);
        let pos = expected.iter().position(|e| e.2 == me.id).unwrap() as i64 + 1;
        assert!(around.iter().any(|r| r["owner_id"] == me.id.to_string()));
        let ranks: Vec<i64> = around.iter().map(|r| int64(&r["rank"])).collect();
        assert!(ranks.contains(&pos) && ranks.windows(2).all(|w| w[1] == w[0] + 1));
    }

    // Shapes: int64 as strings, zero values left out, times RFC 3339.
    let v = players[5]
        .get(&format!("/v2/leaderboard/desc?owner_ids={}", players[5].id))
        .await;
    let r = &records(&v, "owner_records")[0];
    assert!(
        r.get("score").is_none() && r.get("subscore").is_none(),
        "{r}"
    );
    assert!(r.get("expiry_time").is_none());
    assert_eq!(r["username"], "p5");
    assert_eq!(r["num_score"], 1);
    assert_eq!(r["max_num_score"], 1_000_000);
    assert!(r["rank"].is_string() && r["create_time"].as_str().unwrap().ends_with('Z'));
    let w = players[4].write_ok("desc", 9, 9).await;
    assert_eq!(w["rank"], "1");
    assert_eq!(w["score"], "9");

    // Limits as Nakama checks them.
    for (path, msg) in [
        (
            "/v2/leaderboard/desc?limit=0",
            "Invalid limit - limit must be between 1 and 1000.",
        ),
        (
            "/v2/leaderboard/desc?limit=1001",
            "Invalid limit - limit must be between 1 and 1000.",
        ),
        (
            "/v2/leaderboard/desc?owner_ids=xyz",
            "One or more owner IDs are invalid.",
        ),
        (
            "/v2/leaderboard/desc?limit=1&cursor=garbage",
            "Cursor is invalid or expired.",
        ),
    ] {
        let (s, e) = players[0].call("GET", path, "").await;
        assert_eq!((s, e["message"].as_str()), (400, Some(msg)), "{path}");
    }
    let (s, e) = players[0]
        .call(
            "GET",
            &format!("/v2/leaderboard/desc/owner/{}?limit=101", players[0].id),
            "",
        )
        .await;
    assert_eq!((s, e["code"].as_i64()), (400, Some(3)));
    // Without a limit Nakama lists one record.
    let v = players[0].get("/v2/leaderboard/desc").await;
    assert_eq!(records(&v, "records").len(), 1);
    assert!(v["next_cursor"].is_string());
    // Around an owner without a record: nothing.
    let v = players[0]
        .get(&format!("/v2/leaderboard/desc/owner/{}", Uuid::new_v4()))
        .await;
    assert_eq!(v, json!({}));
    lb.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn authoritative_delete_and_board_admin() {
    let lb = start("", |_| {}).await;
    lb.create_board(json!({"id": "auth", "authoritative": true}))
        .await;
    lb.create_board(json!({"id": "open", "metadata": {"season": 1}}))
        .await;
    // Creating again is idempotent.
    let (s, v) = lb
        .admin(
            "POST",
            "/admin/leaderboards",
            json!({"id": "open", "sort_order": "asc"}),
        )
        .await;
    assert_eq!((s, v["created"].as_bool()), (200, Some(false)), "{v}");
    assert_eq!(
        v["leaderboard"]["sort_order"], 1,
        "the existing board is kept"
    );
    let (s, _) = lb
        .admin(
            "POST",
            "/admin/leaderboards",
            json!({"id": "x", "operator": "max"}),
        )
        .await;
    assert_eq!(s, 400);
    // Without the admin token.
    let (s, _) = support::request(lb.node.admin_addr, "GET", "/admin/leaderboards", &[], "").await;
    assert_eq!(s, 401);

    let p = lb.player("carol").await;
    let (s, e) = p.write("auth", 5, 0).await;
    assert_eq!((s, e["code"].as_i64()), (403, Some(7)));
    assert_eq!(
        e["message"],
        "Leaderboard only allows authoritative score submissions."
    );
    let (s, e) = p.call("DELETE", "/v2/leaderboard/auth", "").await;
    assert_eq!((s, e["code"].as_i64()), (403, Some(7)));

    // Delete own record.
    p.write_ok("open", 5, 0).await;
    let (s, v) = p.call("DELETE", "/v2/leaderboard/open", "").await;
    assert_eq!((s, v), (200, json!({})));
    let v = p.get("/v2/leaderboard/open?limit=10").await;
    assert!(v.get("records").is_none(), "{v}");
    let r = p.write_ok("open", 3, 0).await;
    assert_eq!(r["num_score"], 1, "a deleted record starts over");

    // The admin list shows boards with their live size.
    let (s, v) = lb.admin("GET", "/admin/leaderboards", Value::Null).await;
    assert_eq!(s, 200);
    let boards = v["leaderboards"].as_array().unwrap();
    let ids: HashSet<&str> = boards.iter().filter_map(|b| b["id"].as_str()).collect();
    for id in [
        "auth",
        "open",
        game_boards::WEALTH,
        game_boards::BATTLES_WON,
    ] {
        assert!(ids.contains(id), "{id} in {ids:?}");
    }
    let open = boards.iter().find(|b| b["id"] == "open").unwrap();
    assert_eq!(
        (open["size"].as_u64(), open["cached"].as_bool()),
        (Some(1), Some(true))
    );

    // Deleting a board removes it and its records.
    let (s, v) = lb
        .admin("DELETE", "/admin/leaderboards/open", Value::Null)
        .await;
    assert_eq!((s, v["records_deleted"].as_u64()), (200, Some(1)), "{v}");
    let (s, _) = p.write("open", 1, 0).await;
    assert_eq!(s, 404);
    let (s, _) = lb
        .admin("DELETE", "/admin/leaderboards/open", Value::Null)
        .await;
    assert_eq!(s, 404);
    // And it can be created again, empty.
    lb.create_board(json!({"id": "open"})).await;
    let v = p.get("/v2/leaderboard/open?limit=10").await;
    assert!(v.get("records").is_none(), "{v}");
    p.write_ok("open", 8, 0).await;
    lb.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn concurrent_writes_are_grouped_and_acknowledged_after_commit() {
    let lb = start("", |c| {
        c.leaderboard_batch_window = Duration::from_millis(30);
        c.leaderboard_batch_size = 1000;
    })
    .await;
    lb.create_board(json!({"id": "rush", "operator": "incr"}))
        .await;
    let mut players = Vec::new();
    for i in 0..20 {
        players.push(lb.player(&format!("r{i}")).await);
    }
    let db = support::raw(&lb.db.url).await;
    let batches = || async {
        let (_, m) = support::request(lb.node.admin_addr, "GET", "/metrics", &[], "").await;
        let text = m.as_str().unwrap_or_default().to_string();
        text.lines()
            .find(|l| l.starts_with("serai_leaderboard_batches_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = batches().await;
    // Every player writes 5 times at once (the same owner several times in a batch too).
    let writes = players
        .iter()
        .flat_map(|p| (0..5).map(move |_| p.write("rush", 2, 1)));
    let answers = futures_util::future::join_all(writes).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    // Acknowledged means committed: the rows are there now.
    let rows = db
        .query(
            "SELECT score, subscore, num_score FROM leaderboard_record WHERE leaderboard_id = 'rush'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 20);
    for r in &rows {
        let (s, ss, n): (i64, i64, i32) = (r.get(0), r.get(1), r.get(2));
        assert_eq!((s, ss, n), (10, 5, 5));
    }
    let used = batches().await - before;
    assert!(
        (1.0..=20.0).contains(&used),
        "100 writes went to the database in {used} batches"
    );
    lb.node.stop().await.unwrap();
}

/// A board's top page is serialized once per change and served as bytes in between: every
/// write (a new leader, a better score, a deleted record) shows in the next page at once, and
/// pages of other sizes and other boards are their own.
#[actix_rt::test]
async fn cached_top_pages_show_every_change_at_once() {
    let lb = start("", |_| {}).await;
    lb.create_board(json!({"id": "cached", "operator": "best"}))
        .await;
    lb.create_board(json!({"id": "other", "operator": "best"}))
        .await;
    let (p1, p2) = (lb.player("c1").await, lb.player("c2").await);
    let top = |limit: u32| {
        let p1 = p1.clone();
        async move {
            records(
                &p1.get(&format!("/v2/leaderboard/cached?limit={limit}"))
                    .await,
                "records",
            )
            .iter()
            .map(|r| {
                (
                    r["owner_id"].as_str().unwrap().to_string(),
                    int64(&r["score"]),
                )
            })
            .collect::<Vec<_>>()
        }
    };
    let (id1, id2) = (p1.id.to_string(), p2.id.to_string());
    p1.write_ok("cached", 10, 0).await;
    assert_eq!(top(5).await, vec![(id1.clone(), 10)]);
    assert_eq!(
        top(5).await,
        vec![(id1.clone(), 10)],
        "served again unchanged"
    );
    p2.write_ok("cached", 20, 0).await;
    assert_eq!(top(5).await, vec![(id2.clone(), 20), (id1.clone(), 10)]);
    assert_eq!(
        top(1).await,
        vec![(id2.clone(), 20)],
        "another size, another page"
    );
    p1.write_ok("cached", 30, 0).await;
    assert_eq!(top(5).await, vec![(id1.clone(), 30), (id2.clone(), 20)]);
    assert_eq!(top(1).await, vec![(id1.clone(), 30)]);
    // A write to another board leaves this one's page right.
    p2.write_ok("other", 99, 0).await;
    assert_eq!(top(5).await, vec![(id1.clone(), 30), (id2.clone(), 20)]);
    let (status, _) = p2.call("DELETE", "/v2/leaderboard/cached", "").await;
    assert_eq!(status, 200);
    assert_eq!(top(5).await, vec![(id1, 30)]);
    lb.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn boards_and_records_survive_a_restart() {
    let lb = start("", |_| {}).await;
    lb.create_board(json!({"id": "keep", "sort_order": "asc", "operator": "set"}))
        .await;
    let p = lb.player("dave").await;
    let q = lb.player("erin").await;
    p.write_ok("keep", 30, 0).await;
    q.write_ok("keep", 20, 0).await;
    let lb = support::restart(lb).await;
    lb.wait_size("keep", 2, Duration::from_secs(10)).await;
    // The same players (their tokens stay valid) on the new node's address.
    let p = support::Player {
        addr: lb.client(),
        ..p
    };
    let v = p.get("/v2/leaderboard/keep?limit=10").await;
    let r = records(&v, "records");
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["owner_id"], q.id.to_string());
    assert_eq!(int64(&r[0]["rank"]), 1);
    // The operator survived too: set replaces.
    let w = p.write_ok("keep", 10, 0).await;
    assert_eq!((int64(&w["score"]), int64(&w["rank"])), (10, 1));
    lb.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn blacklisted_boards_read_from_the_database() {
    let lb = start("", |c| c.rank_cache_blacklist = vec!["cold".into()]).await;
    lb.create_board(json!({"id": "cold"})).await;
    lb.create_board(json!({"id": "hot"})).await;
    let mut players = Vec::new();
    for i in 0..5 {
        let p = lb.player(&format!("c{i}")).await;
        let r = p.write_ok("cold", 10 * i, 0).await;
        assert!(r.get("rank").is_none(), "no rank without the cache: {r}");
        let r = p.write_ok("hot", 10 * i, 0).await;
        assert!(r.get("rank").is_some());
        players.push(p);
    }
    // Pages still carry positional ranks; owners' records and the count have none.
    let v = players[0]
        .get(&format!(
            "/v2/leaderboard/cold?limit=2&owner_ids={}",
            players[0].id
        ))
        .await;
    let page = records(&v, "records");
    assert_eq!(page.len(), 2);
    assert_eq!((int64(&page[0]["rank"]), int64(&page[1]["rank"])), (1, 2));
    assert_eq!(page[0]["owner_id"], players[4].id.to_string());
    assert!(records(&v, "owner_records")[0].get("rank").is_none());
    assert!(v.get("rank_count").is_none());
    let next = v["next_cursor"].as_str().unwrap();
    let v = players[0]
        .get(&format!("/v2/leaderboard/cold?limit=2&cursor={next}"))
        .await;
    let page = records(&v, "records");
    assert_eq!(int64(&page[0]["rank"]), 3);
    assert_eq!(page[0]["owner_id"], players[2].id.to_string());
    let back = v["prev_cursor"].as_str().unwrap();
    let v = players[0]
        .get(&format!("/v2/leaderboard/cold?limit=2&cursor={back}"))
        .await;
    let page = records(&v, "records");
    assert_eq!(page[0]["owner_id"], players[4].id.to_string());
    // Around owner works, without ranks.
    let v = players[2]
        .get(&format!(
            "/v2/leaderboard/cold/owner/{}?limit=3",
            players[2].id
        ))
        .await;
    let around: Vec<Value> = records(&v, "records");
    assert_eq!(around.len(), 3);
    assert_eq!(around[1]["owner_id"], players[2].id.to_string());
    assert!(around.iter().all(|r| r.get("rank").is_none()));
    lb.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn game_boards_are_kept_by_the_server() {
    let lb = start("", |_| {}).await;
    let router = lb.node.services.router.clone();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let r = game_boards::submit_wealth(&router, a, "Anna", 1_500)
        .await
        .unwrap();
    assert_eq!((r.score, r.rank), (1_500, 1));
    game_boards::submit_wealth(&router, b, "Boris", 2_000)
        .await
        .unwrap();
    // Wealth is replaced, not kept at its best.
    let r = game_boards::submit_wealth(&router, b, "Boris", 900)
        .await
        .unwrap();
    assert_eq!((r.score, r.rank, r.num_score), (900, 2, 2));
    for _ in 0..3 {
        game_boards::submit_battle_won(&router, a, "Anna")
            .await
            .unwrap();
    }
    let r = game_boards::submit_battle_won(&router, b, "Boris")
        .await
        .unwrap();
    assert_eq!((r.score, r.rank), (1, 2));

    let p = lb.player("viewer").await;
    let v = p.get("/v2/leaderboard/wealth?limit=10").await;
    let rows = records(&v, "records");
    assert_eq!(rows[0]["username"], "Anna");
    assert_eq!(int64(&rows[0]["score"]), 1_500);
    let v = p.get("/v2/leaderboard/battles_won?limit=10").await;
    assert_eq!(int64(&records(&v, "records")[0]["score"]), 3);
    // Clients cannot write them.
    let (s, _) = p.write("wealth", 1_000_000, 0).await;
    assert_eq!(s, 403);
    lb.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn a_newer_claim_fences_the_board_and_loses_nothing_acknowledged() {
    let lb = start("", |_| {}).await;
    lb.create_board(json!({"id": "fenced", "operator": "incr"}))
        .await;
    let p = lb.player("fred").await;
    p.write_ok("fenced", 5, 0).await;
    // Another node claims the board behind this node's back.
    let db = support::raw(&lb.db.url).await;
    db.execute(
        "UPDATE leaderboard SET owner_node = 'elsewhere', owner_epoch = owner_epoch + 1 \
         WHERE id = 'fenced'",
        &[],
    )
    .await
    .unwrap();
    // The next batch is refused by the fence: the writer is told to retry, nothing is written.
    let (s, e) = p.write("fenced", 7, 0).await;
    assert_eq!((s, e["code"].as_i64()), (503, Some(14)), "{e}");
    let row = db
        .query_one(
            "SELECT score, num_score FROM leaderboard_record WHERE leaderboard_id = 'fenced'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i32>(1)), (5, 1));
    // The retry reaches a fresh activation, which claims the board again and loads it.
    let mut answer = p.write("fenced", 7, 0).await;
    for _ in 0..20 {
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer = p.write("fenced", 7, 0).await;
    }
    let (s, r) = answer;
    assert_eq!(s, 200, "{r}");
    assert_eq!((int64(&r["score"]), r["num_score"].as_u64()), (12, Some(2)));
    let owner: String = db
        .query_one(
            "SELECT owner_node FROM leaderboard WHERE id = 'fenced'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, lb.config.node_id);
    lb.node.stop().await.unwrap();
}
