//! Cursors and buckets end to end: 10 000 records seeded with SQL and warmed at start are paged
//! through (forwards, backwards, while other records change) without a gap or a repeat, from
//! the rank cache and from the database (blacklisted board); reset schedules make buckets.

#[path = "leaderboard_support.rs"]
mod support;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use uuid::Uuid;

use support::{int64, records, start, Lb, Player};

const N: usize = 10_000;

/// A board `big` (descending, best) with N records in the never-expiring bucket: scores with
/// many full ties (score and subscore equal), broken by owner id.
const SEED: &str = "
INSERT INTO leaderboard (id, sort_order, operator) VALUES ('big', 1, 0);
INSERT INTO leaderboard_record (leaderboard_id, expiry_time, owner_id, username, score, subscore, num_score, metadata)
SELECT 'big', 0, md5('big' || i)::uuid, 'u' || i, (i * 7919) % 5000, i % 2, 1, '{}'
FROM generate_series(1, 10000) AS i;
";

/// The seeded owners in rank order, as the database orders them.
async fn expected(lb: &Lb) -> Vec<Uuid> {
    let db = support::raw(&lb.db.url).await;
    db.query(
        "SELECT owner_id FROM leaderboard_record WHERE leaderboard_id = 'big' \
         ORDER BY score DESC, subscore DESC, owner_id DESC",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn owners(page: &Value) -> Vec<Uuid> {
    records(page, "records")
        .iter()
        .map(|r| r["owner_id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Pages forward from the top with `limit`; returns every owner seen and every page. Between
/// pages `between` runs (writes that move other records).
async fn page_forward<F, Fut>(p: &Player, limit: usize, mut between: F) -> (Vec<Uuid>, Vec<Value>)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for i in 0.. {
        let path = match &cursor {
            None => format!("/v2/leaderboard/big?limit={limit}"),
            Some(c) => format!("/v2/leaderboard/big?limit={limit}&cursor={c}"),
        };
        let v = p.get(&path).await;
        seen.extend(owners(&v));
        cursor = v["next_cursor"].as_str().map(str::to_string);
        pages.push(v);
        if cursor.is_none() {
            break;
        }
        between(i).await;
        assert!(i < 2 * N, "paging does not end");
    }
    (seen, pages)
}

#[actix_rt::test]
async fn cursors_page_10k_records_without_gaps_or_repeats() {
    let lb = start(SEED, |_| {}).await;
    lb.wait_size("big", N as u64, Duration::from_secs(60)).await;
    let want = expected(&lb).await;
    let p = lb.player("pager").await;

    // Forward, 100 at a time: exactly the seeded order, ranks 1..N, the count on every page.
    let (seen, pages) = page_forward(&p, 100, |_| async {}).await;
    assert_eq!(seen.len(), N);
    assert_eq!(seen, want);
    assert_eq!(pages.len(), N / 100);
    let ranks: Vec<i64> = pages
        .iter()
        .flat_map(|v| records(v, "records"))
        .map(|r| int64(&r["rank"]))
        .collect();
    assert_eq!(ranks, (1..=N as i64).collect::<Vec<_>>());
    assert!(pages.iter().all(|v| int64(&v["rank_count"]) == N as i64));
    assert!(pages[0].get("prev_cursor").is_none());
    assert!(pages[1..].iter().all(|v| v["prev_cursor"].is_string()));

    // Backward from the last page with prev cursors, 100 at a time.
    let mut back = Vec::new();
    let mut cursor = pages.last().unwrap()["prev_cursor"]
        .as_str()
        .map(str::to_string);
    back.extend(owners(pages.last().unwrap()).into_iter().rev());
    while let Some(c) = cursor {
        let v = p
            .get(&format!("/v2/leaderboard/big?limit=100&cursor={c}"))
            .await;
        back.extend(owners(&v).into_iter().rev());
        cursor = v["prev_cursor"].as_str().map(str::to_string);
    }
    back.reverse();
    assert_eq!(back, want, "backward paging");

    // Forward 1000 at a time (the largest page) while other players keep writing scores that
    // land before, inside and after the pages being read: every seeded record once, in order.
    let movers: Vec<Player> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(lb.player(&format!("mover{i}")).await);
        }
        v
    };
    let (seen, _) = page_forward(&p, 1000, |i| {
        let movers = movers.clone();
        async move {
            for (j, m) in movers.iter().enumerate() {
                m.write_ok("big", ((i * 997 + j * 1_301) % 6_000) as i64, 1)
                    .await;
            }
        }
    })
    .await;
    let mover_ids: HashSet<Uuid> = movers.iter().map(|m| m.id).collect();
    let seeded: Vec<Uuid> = seen
        .iter()
        .copied()
        .filter(|o| !mover_ids.contains(o))
        .collect();
    assert_eq!(seeded, want, "seeded records under concurrent writes");

    // Around an owner: its rank is its position.
    for pos in [0usize, 1, 4_999, N - 1] {
        let owner = want[pos];
        let v = p
            .get(&format!("/v2/leaderboard/big/owner/{owner}?limit=5"))
            .await;
        let rows = records(&v, "records");
        let me = rows
            .iter()
            .find(|r| r["owner_id"] == owner.to_string())
            .expect("the owner is in its own window");
        // Movers may sit above it now; its rank counts them.
        let rank = int64(&me["rank"]) as usize;
        assert!(
            rank > pos && rank <= pos + 1 + movers.len(),
            "{pos}: {rank}"
        );
        assert_eq!(rows.len(), 5);
    }

    // A cursor of another board or bucket is refused.
    let c = pages[3]["next_cursor"].as_str().unwrap();
    let (s, e) = p
        .call(
            "GET",
            &format!("/v2/leaderboard/big?limit=5&cursor={c}&expiry=99"),
            "",
        )
        .await;
    assert_eq!((s, e["code"].as_i64()), (400, Some(3)));
    lb.node.stop().await.unwrap();
}

#[actix_rt::test]
async fn database_cursors_page_10k_records_of_a_blacklisted_board() {
    let lb = start(SEED, |c| c.rank_cache_blacklist = vec!["big".into()]).await;
    lb.wait_size("big", N as u64, Duration::from_secs(60)).await;
    let want = expected(&lb).await;
    let p = lb.player("pager").await;
    let (seen, pages) = page_forward(&p, 500, |_| async {}).await;
    assert_eq!(seen, want);
    let ranks: Vec<i64> = pages
        .iter()
        .flat_map(|v| records(v, "records"))
        .map(|r| int64(&r["rank"]))
        .collect();
    assert_eq!(ranks, (1..=N as i64).collect::<Vec<_>>());
    assert!(pages.iter().all(|v| v.get("rank_count").is_none()));
    lb.node.stop().await.unwrap();
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[actix_rt::test]
async fn reset_schedules_make_buckets() {
    // Keep clear of a minute boundary while setting up.
    if 60 - now() % 60 < 8 {
        tokio::time::sleep(Duration::from_secs((60 - now() % 60 + 1) as u64)).await;
    }
    let bucket = now() - now() % 60 + 60;
    let past = bucket - 600;
    let seed = format!(
        "INSERT INTO leaderboard (id, sort_order, operator, reset_schedule) \
         VALUES ('minutely', 1, 2, '* * * * *');
         INSERT INTO leaderboard_record (leaderboard_id, expiry_time, owner_id, username, score) \
         VALUES ('minutely', {past}, '00000000-0000-0000-0000-000000000001', 'old', 77);"
    );
    let lb = start(&seed, |_| {}).await;
    let p = lb.player("resetter").await;
    let r = p.write_ok("minutely", 5, 0).await;
    assert_eq!(r["expiry_time"], rfc3339(bucket), "{r}");
    let r = p.write_ok("minutely", 5, 0).await;
    assert_eq!((int64(&r["score"]), r["num_score"].as_u64()), (10, Some(2)));

    // The current bucket holds only this period's record; a past one is asked for by expiry.
    let v = p.get("/v2/leaderboard/minutely?limit=10").await;
    assert_eq!(owners(&v), vec![p.id]);
    let v = p
        .get(&format!("/v2/leaderboard/minutely?limit=10&expiry={past}"))
        .await;
    let old = records(&v, "records");
    assert_eq!(old.len(), 1);
    assert_eq!((int64(&old[0]["score"]), int64(&old[0]["rank"])), (77, 1));
    assert_eq!(old[0]["expiry_time"], rfc3339(past));

    // The period ends: the board starts over (incr begins again from nothing).
    let wait = bucket - now() + 1;
    tokio::time::sleep(Duration::from_secs(wait.max(0) as u64)).await;
    let v = p.get("/v2/leaderboard/minutely?limit=10").await;
    assert_eq!(v, json!({}), "the new period is empty");
    let r = p.write_ok("minutely", 3, 0).await;
    assert_eq!((int64(&r["score"]), r["num_score"].as_u64()), (3, Some(1)));
    assert_eq!(r["expiry_time"], rfc3339(bucket + 60));
    // The previous period is still there when asked for.
    let v = p
        .get(&format!(
            "/v2/leaderboard/minutely?limit=10&expiry={bucket}"
        ))
        .await;
    let prev = records(&v, "records");
    assert_eq!(prev.len(), 1);
    assert_eq!(int64(&prev[0]["score"]), 10);
    lb.node.stop().await.unwrap();
}
