//! Tournaments end to end over HTTP: joins (`join_required`, `max_size`), `max_num_score`,
//! active windows (not started, ended, outside a reset window), authoritative tournaments,
//! listing records and tournaments, with Nakama's codes and messages.

#[path = "leaderboard_support.rs"]
mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use support::{int64, records, start};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn write_body(score: i64) -> String {
    json!({"score": score.to_string()}).to_string()
}

/// (status, grpc code, message) of an error answer.
fn err(answer: (u16, Value)) -> (u16, i64, String) {
    let (s, v) = answer;
    (
        s,
        v["code"].as_i64().unwrap_or(0),
        v["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[actix_rt::test]
async fn joins_sizes_and_attempts() {
    let lb = start("", |_| {}).await;
    lb.create_tournament(json!({
        "id": "cup", "title": "The Cup", "description": "weekend", "category": 3,
        "duration": 3600, "max_size": 2, "max_num_score": 2, "join_required": true,
        "metadata": {"prize": "gold"}
    }))
    .await;
    let p1 = lb.player("t1").await;
    let p2 = lb.player("t2").await;
    let p3 = lb.player("t3").await;

    // Writing before joining.
    let e = err(p1.call("POST", "/v2/tournament/cup", &write_body(5)).await);
    assert_eq!(
        e,
        (
            400,
            9,
            "Must join tournament before attempting to write value.".into()
        )
    );
    // Joins, idempotent; the third participant does not fit.
    for p in [&p1, &p2, &p1] {
        let (s, v) = p.call("POST", "/v2/tournament/cup/join", "").await;
        assert_eq!((s, v), (200, json!({})));
    }
    let e = err(p3.call("POST", "/v2/tournament/cup/join", "").await);
    assert_eq!(
        e,
        (
            400,
            3,
            "Tournament cannot be joined as it has reached its max size.".into()
        )
    );

    // Attempts: max_num_score 2, then refused; PUT writes too.
    let (s, r) = p1.call("POST", "/v2/tournament/cup", &write_body(10)).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!((int64(&r["score"]), r["num_score"].as_u64()), (10, Some(1)));
    assert_eq!(r["max_num_score"], 2);
    let (s, r) = p1.call("PUT", "/v2/tournament/cup", &write_body(20)).await;
    assert_eq!(
        (s, int64(&r["score"]), r["num_score"].as_u64()),
        (200, 20, Some(2))
    );
    // Past max_num_score with join_required: Nakama 3.40's update matches no row, so the
    // answer is the record unchanged, and no error.
    let (s, r) = p1.call("POST", "/v2/tournament/cup", &write_body(30)).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (int64(&r["score"]), r["num_score"].as_u64()),
        (20, Some(2)),
        "unchanged: {r}"
    );
    let v = p1.get("/v2/tournament/cup").await;
    assert_eq!(int64(&records(&v, "records")[0]["score"]), 20);
    // A tournament is not written through the leaderboard API.
    let (s, _) = p1.write("cup", 1, 0).await;
    assert_eq!(s, 404);

    // Records: the joined player without a score is listed too (default limit 10).
    let v = p1.get("/v2/tournament/cup").await;
    let rows = records(&v, "records");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["owner_id"], p1.id.to_string());
    assert_eq!(rows[1]["owner_id"], p2.id.to_string());
    assert!(rows[1].get("score").is_none() && rows[1].get("num_score").is_none());
    assert!(
        rows[0]["expiry_time"].is_null(),
        "no end, no reset: never expires"
    );
    let v = p2
        .get(&format!("/v2/tournament/cup/owner/{}?limit=2", p2.id))
        .await;
    assert_eq!(int64(&records(&v, "records")[1]["rank"]), 2);

    // The tournament list: full, so it cannot be entered.
    let v = p3.get("/v2/tournament").await;
    let t = v["tournaments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "cup")
        .cloned()
        .expect("cup is listed");
    assert_eq!(t["title"], "The Cup");
    assert_eq!(t["category"], 3);
    assert_eq!(
        (t["size"].as_u64(), t["max_size"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(t.get("can_enter").is_none(), "full: {t}");
    assert_eq!(t["duration"], 3600);
    assert_eq!(
        serde_json::from_str::<Value>(t["metadata"].as_str().unwrap()).unwrap(),
        json!({"prize": "gold"})
    );
    assert!(t["end_active"].as_u64().unwrap() > now() as u64);
    // Category filter.
    let v = p3
        .get("/v2/tournament?category_start=4&category_end=10")
        .await;
    assert!(v.get("tournaments").is_none(), "{v}");
    lb.node.stop().await.unwrap();
}

/// Without `join_required` a write past `max_num_score` is refused (Nakama's upsert path
/// checks the count it returns), and the record keeps its last accepted score.
#[actix_rt::test]
async fn max_scores_without_join_are_refused() {
    let lb = start("", |_| {}).await;
    lb.create_tournament(json!({"id": "open_cup", "duration": 3600, "max_num_score": 1}))
        .await;
    let p = lb.player("o1").await;
    let (s, r) = p
        .call("POST", "/v2/tournament/open_cup", &write_body(10))
        .await;
    assert_eq!(
        (s, int64(&r["score"]), r["num_score"].as_u64()),
        (200, 10, Some(1))
    );
    let e = err(p
        .call("POST", "/v2/tournament/open_cup", &write_body(30))
        .await);
    assert_eq!(
        e,
        (
            400,
            9,
            "Reached allowed max number of score attempts.".into()
        )
    );
    let v = p.get("/v2/tournament/open_cup").await;
    assert_eq!(int64(&records(&v, "records")[0]["score"]), 10);
    lb.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn windows_and_limits_without_joining() {
    let lb = start("", |_| {}).await;
    let t = now();
    lb.create_tournament(json!({"id": "open", "duration": 600, "max_size": 1}))
        .await;
    lb.create_tournament(
        json!({"id": "later", "duration": 600, "start_time": t + 3600,
        "join_required": true}),
    )
    .await;
    lb.create_tournament(
        json!({"id": "over", "duration": 600, "start_time": t - 7200,
        "end_time": t - 3600, "join_required": true}),
    )
    .await;
    // Daily at midnight, open one second: outside its window now (unless at midnight).
    lb.create_tournament(
        json!({"id": "blink", "duration": 1, "reset_schedule": "0 0 * * *",
        "start_time": t - 2 * 86_400}),
    )
    .await;
    lb.create_tournament(json!({"id": "staff", "duration": 600, "authoritative": true}))
        .await;
    lb.create_board(json!({"id": "plain"})).await;
    let p1 = lb.player("w1").await;
    let p2 = lb.player("w2").await;

    // max_size without joins: the first writer takes the only place.
    let (s, _) = p1.call("POST", "/v2/tournament/open", &write_body(1)).await;
    assert_eq!(s, 200);
    let (s, _) = p1.call("POST", "/v2/tournament/open", &write_body(2)).await;
    assert_eq!(s, 200, "the same participant writes again");
    let e = err(p2.call("POST", "/v2/tournament/open", &write_body(3)).await);
    assert_eq!(e, (400, 9, "Tournament has reached max size.".into()));

    // Not started yet.
    let e = err(p1
        .call("POST", "/v2/tournament/later", &write_body(1))
        .await);
    assert_eq!(
        e,
        (
            400,
            9,
            "Tournament is not active and cannot accept new scores.".into()
        )
    );
    // As in Nakama, players may join ahead of the start.
    let (s, _) = p1.call("POST", "/v2/tournament/later/join", "").await;
    assert_eq!(s, 200);

    // Ended.
    let e = err(p1.call("POST", "/v2/tournament/over", &write_body(1)).await);
    assert_eq!(e, (404, 5, "Tournament not found or has ended.".into()));
    let e = err(p1.call("GET", "/v2/tournament/over?limit=5", "").await);
    assert_eq!(e, (404, 5, "Tournament has ended.".into()));
    let e = err(p1.call("POST", "/v2/tournament/over/join", "").await);
    assert_eq!(
        e,
        (
            400,
            3,
            "Tournament is not active and cannot accept new joins.".into()
        )
    );

    // Outside the active part of a reset period.
    let secs_today = t % 86_400;
    if secs_today > 5 && secs_today < 86_395 {
        let e = err(p1
            .call("POST", "/v2/tournament/blink", &write_body(1))
            .await);
        assert_eq!(e.0, 400);
        assert_eq!(e.1, 9);
    }

    // Authoritative.
    let e = err(p1
        .call("POST", "/v2/tournament/staff", &write_body(1))
        .await);
    assert_eq!(
        e,
        (
            403,
            7,
            "Tournament only allows authoritative score submissions.".into()
        )
    );
    // A leaderboard is not a tournament.
    let e = err(p1
        .call("POST", "/v2/tournament/plain", &write_body(1))
        .await);
    assert_eq!(e, (404, 5, "Tournament not found.".into()));
    let e = err(p1.call("POST", "/v2/tournament/plain/join", "").await);
    assert_eq!(e, (404, 5, "Tournament not found.".into()));
    // Limits of the records list.
    let e = err(p1.call("GET", "/v2/tournament/open?limit=101", "").await);
    assert_eq!(
        e,
        (
            400,
            3,
            "Invalid limit - limit must be between 1 and 100.".into()
        )
    );

    // The list: current and future tournaments by default, ended ones on request.
    let v = p1.get("/v2/tournament").await;
    let ids: Vec<&str> = v["tournaments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert!(ids.contains(&"open") && ids.contains(&"later") && !ids.contains(&"over"));
    assert!(!ids.contains(&"plain"));
    let later = v["tournaments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "later")
        .unwrap();
    assert!(later.get("can_enter").is_none());
    assert_eq!(later["start_active"].as_i64(), Some(t + 3600));
    let open = v["tournaments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "open")
        .unwrap();
    assert_eq!(open["size"], 1);
    let v = p1
        .get(&format!("/v2/tournament?start_time=0&end_time={}", t))
        .await;
    let ids: Vec<&str> = v["tournaments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["over"]);
    // Paging the list with its cursor.
    let v = p1.get("/v2/tournament?limit=1").await;
    let first = v["tournaments"][0]["id"].as_str().unwrap().to_string();
    let c = v["cursor"].as_str().expect("a cursor").to_string();
    let v = p1.get(&format!("/v2/tournament?limit=1&cursor={c}")).await;
    assert_ne!(v["tournaments"][0]["id"].as_str().unwrap(), first);
    lb.node.stop().await.unwrap();
}
