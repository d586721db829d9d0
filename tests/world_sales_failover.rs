//! A limited-time sale through a failover of its owner: the real binary as three processes on
//! one database; 500 buyers (characters over the three nodes) start one after another and buy
//! through all nodes for a stock of 100 with a limit of 2, retrying every answer that is not
//! final with its request_id; the node that owns the sale is SIGKILLed in the middle. Still
//! exactly 100 sold, nobody over the limit, gold and goods conserved, every answer matches the
//! database, and the sale went on at a new owner.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::process::NodeProcess;
use common::sales::{self, admin, buy_until_done, sale_body, Terms};
use futures_util::future::join_all;
use serai::localdb::TestDatabase;
use serde_json::json;

const ADMIN_TOKEN: &str = "sales-failover-admin-token";
const BUYERS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_the_sale_owner_never_oversells() {
    let started = Instant::now();
    let db = TestDatabase::create().await.expect("database");
    let mut procs = NodeProcess::start_cluster(&db.url, 3, ADMIN_TOKEN, "sales-failover").await;
    let addrs: Vec<SocketAddr> = procs.iter().flatten().map(|p| p.client).collect();
    let pg = common::raw_client(&db.url).await;
    let (buyers, home) = sales::prepare(&addrs, BUYERS, &pg).await;
    let good: String = pg
        .query_one("SELECT code FROM trade_good ORDER BY code LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    let t = Terms {
        id: "failover-flash".into(),
        node: home,
        good,
        stock: 100,
        price: 7,
        limit: 2,
    };
    let admin_addr = procs[0].as_ref().unwrap().admin;
    let (status, v) = admin(admin_addr, ADMIN_TOKEN, "POST", &sale_body(&t)).await;
    assert_eq!(status, 201, "{v}");

    // Buyers arrive one after another (10 ms apart), so the sale is still selling when its
    // owner dies.
    let give_up = Instant::now() + Duration::from_secs(45);
    let work = buyers.iter().enumerate().map(|(i, b)| {
        let (addrs, b, t) = (addrs.clone(), b.clone(), t.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10 * i as u64)).await;
            buy_until_done(addrs, b, t, 1 + (i % 3) as i64, give_up).await
        })
    });
    let buying = tokio::spawn(join_all(work));

    // The owner, once it sold a fifth of the stock.
    let mut victim = None;
    common::wait_until(
        "a fifth of the stock sold",
        Duration::from_secs(30),
        async || {
            let (sold, owner) = row(&pg, &t.id).await;
            victim = owner.filter(|_| sold >= 20);
            victim.is_some()
        },
    )
    .await;
    let victim = victim.unwrap();
    let i: usize = victim.trim_start_matches("node-").parse().unwrap();
    let mut p = procs[i].take().unwrap();
    p.child.kill().expect("SIGKILL");
    p.child.wait().unwrap();
    let (sold_at_kill, _) = row(&pg, &t.id).await;
    assert!(
        sold_at_kill < t.stock,
        "the owner died in the middle of the sale ({sold_at_kill} sold)"
    );

    let ledgers: Vec<_> = buying
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    sales::verify(&pg, &t, &buyers, &ledgers).await;
    let (_, owner) = row(&pg, &t.id).await;
    let (sold, _) = row(&pg, &t.id).await;
    assert!(
        owner.as_deref() != Some(victim.as_str()),
        "a new owner sells: {owner:?}"
    );
    assert_eq!(sold, t.stock);
    let retried: usize = ledgers.iter().map(|l| l.retried).sum();
    let unknown: usize = ledgers.iter().map(|l| l.may_have_run).sum();
    let live = procs.iter().flatten().next().unwrap();
    let (_, list) = admin(live.admin, ADMIN_TOKEN, "GET", &json!(null)).await;
    assert_eq!(list["sales"][0]["stock_left"].as_i64(), Some(0), "{list}");
    println!(
        "{victim} (the owner) killed at {sold_at_kill}/100 sold; 100 sold in the end by {owner:?}; \
         {retried} requests asked again ({unknown} after \"may have run\" or no answer), every \
         answer exact; {:?} in all",
        started.elapsed()
    );
}

/// The sale's `sold` and `owner_node`.
async fn row(pg: &tokio_postgres::Client, id: &str) -> (i64, Option<String>) {
    let r = pg
        .query_one(
            "SELECT sold, owner_node FROM world_sale WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}
