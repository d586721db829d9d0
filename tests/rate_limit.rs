//! Cluster-wide rate limits on three real nodes in one process (docs/world.md "Rate limits"):
//! one user spreading requests over every node gets no more than burst + rate × elapsed,
//! refusals are RESOURCE_EXHAUSTED (HTTP 429, gRPC 8; on the socket code 3 with
//! `grpc_code` 8) and run nothing, and a user well under the limit is never refused.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::client::{GameClient, RpcFailure};
use common::cluster::TestCluster;
use serai::config::{RateGroup, RateLimits};
use serai::protocol::client::realtime_code;
use serde_json::json;
use uuid::Uuid;

const RATE: f64 = 20.0;
const BURST: u32 = 20;
/// How long the greedy user keeps every node busy.
const RUN: Duration = Duration::from_secs(3);

fn limits() -> RateLimits {
    RateLimits {
        lease: Duration::from_millis(500),
        default: None,
        groups: vec![RateGroup {
            name: "hits".into(),
            rate_per_sec: RATE,
            burst: BURST,
            rpcs: vec!["count_hit".into()],
        }],
    }
}

/// Sends `count_hit` through `client` until `until`, at most one every `gap` (none: as fast
/// as answers come); answers (accepted, refusals).
async fn hammer(
    client: GameClient,
    until: Instant,
    gap: Option<Duration>,
) -> (u64, Vec<RpcFailure>) {
    let (mut ok, mut refused) = (0, Vec::new());
    let mut tick = gap.map(tokio::time::interval);
    while Instant::now() < until {
        if let Some(tick) = tick.as_mut() {
            tick.tick().await;
        }
        match client.rpc("count_hit", &json!({})).await {
            Ok(_) => ok += 1,
            Err(e) => refused.push(e),
        }
    }
    (ok, refused)
}

/// `serai_rate_limit_owner_asks_total` summed over every node and group.
fn owner_asks(cluster: &TestCluster) -> u64 {
    (0..3)
        .flat_map(|i| {
            let text = cluster.node(i).services.metrics.render();
            text.lines()
                .filter(|l| l.starts_with("serai_rate_limit_owner_asks_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .sum::<f64>() as u64
}

#[actix_rt::test]
async fn a_user_spreading_over_three_nodes_gets_no_more_than_the_cluster_limit() {
    let mut cluster = TestCluster::start(3, |_, c| c.rate_limits = Some(limits())).await;
    // What each user's handler ran, on whichever node: refusals must add nothing here.
    let ran: Arc<Mutex<HashMap<Uuid, u64>>> = Arc::default();
    for i in 0..3 {
        let ran = ran.clone();
        cluster
            .node(i)
            .services
            .rpc
            .register_fn("count_hit", move |ctx, _| {
                let ran = ran.clone();
                async move {
                    *ran.lock().unwrap().entry(ctx.user_id).or_default() += 1;
                    Ok("{}".to_string())
                }
            });
    }
    let greedy = GameClient::device(cluster.node(0).client_addr, "rate-limit-greedy").await;
    let calm = GameClient::device(cluster.node(1).client_addr, "rate-limit-calm").await;
    let on = |c: &GameClient, i: usize| GameClient {
        addr: cluster.node(i).client_addr,
        ..c.clone()
    };

    let started = Instant::now();
    let until = started + RUN;
    let mut runs = Vec::new();
    // Two greedy loops per node; the calm user sends 5 per second (a quarter of the rate),
    // round robin over the nodes.
    for i in 0..6 {
        runs.push(tokio::spawn(hammer(on(&greedy, i % 3), until, None)));
    }
    let calm_runs: Vec<_> = (0..3)
        .map(|i| {
            let gap = Duration::from_millis(600);
            tokio::spawn(hammer(on(&calm, i), until, Some(gap)))
        })
        .collect();
    let (mut accepted, mut refusals) = (0u64, Vec::new());
    for r in runs {
        let (ok, refused) = r.await.expect("greedy loop");
        accepted += ok;
        refusals.extend(refused);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (mut calm_ok, mut calm_refused) = (0u64, Vec::new());
    for r in calm_runs {
        let (ok, refused) = r.await.expect("calm loop");
        calm_ok += ok;
        calm_refused.extend(refused);
    }

    let bound = RATE * elapsed + f64::from(BURST);
    eprintln!(
        "greedy: {accepted} accepted, {} refused in {elapsed:.2} s (bound {bound:.1}); calm: {calm_ok} accepted",
        refusals.len()
    );
    assert!(
        accepted as f64 <= bound,
        "{accepted} accepted > rate × elapsed + burst = {bound:.1}"
    );
    // The limit is not a wall: the user gets most of what the rate allows.
    assert!(
        accepted as f64 >= 0.5 * RATE * elapsed,
        "only {accepted} accepted in {elapsed:.2} s at {RATE}/s"
    );
    assert!(!refusals.is_empty(), "the greedy user was never refused");
    for r in &refusals {
        assert_eq!((r.status, r.grpc_code), (429, Some(8)), "{r:?}");
        assert!(r.message.contains("Rate limit exceeded"), "{r:?}");
    }
    assert!(
        calm_refused.is_empty(),
        "calm user refused: {calm_refused:?}"
    );
    assert!(calm_ok >= 12, "the calm user sent {calm_ok}");
    // Refused calls ran nothing: the handlers ran exactly the accepted ones.
    let ran_of = |u: Uuid| ran.lock().unwrap().get(&u).copied().unwrap_or(0);
    assert_eq!(ran_of(greedy.user_id), accepted);
    assert_eq!(ran_of(calm.user_id), calm_ok);
    // Batches, and refusals decided locally: the owners were asked far less than once per
    // request (each node may ask at most once per earned token, plus once per batch).
    let asks = owner_asks(&cluster);
    let sent = accepted + refusals.len() as u64 + calm_ok;
    eprintln!("owner asks over the peer link: {asks} for {sent} requests");
    assert!(asks * 10 < sent, "{asks} owner asks for {sent} requests");

    // Over the socket a refusal is realtime code 3 with gRPC code 8 in its context.
    let before = ran_of(greedy.user_id);
    let mut socket = on(&greedy, 2).socket().await;
    let mut socket_ok = 0;
    let refusal = loop {
        match socket.rpc("count_hit", &json!({})).await {
            Ok(_) => socket_ok += 1,
            Err(e) => break e,
        }
        assert!(socket_ok <= 2 * BURST, "the socket was never refused");
    };
    assert_eq!(
        (refusal.code, refusal.grpc_code),
        (i64::from(realtime_code::BAD_INPUT), Some(8)),
        "{refusal:?}"
    );
    assert_eq!(ran_of(greedy.user_id), before + socket_ok as u64);
    socket.close().await;
    cluster.stop_all().await;
}
