//! Accounts against real nodes on a real PostgreSQL: revocation reaching every node (by
//! broadcast, by the poll when a broadcast was missed, and after a restart), refresh-token
//! rotation across nodes, and concurrent sign-ups that neither conflict nor retry.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use common::client::{basic, jwt_claims, request, SERVER_KEY};
use common::cluster::TestCluster;
use common::node::Response;

async fn post_key(addr: SocketAddr, path: &str, body: &Value) -> Response {
    post_key_owned(addr, path.to_string(), body.clone()).await
}

async fn post_key_owned(addr: SocketAddr, path: String, body: Value) -> Response {
    let path = path.as_str();
    let auth = basic(SERVER_KEY);
    request(
        addr,
        "POST",
        path,
        &[("Authorization", &auth)],
        body.to_string().as_bytes(),
    )
    .await
}

async fn bearer(addr: SocketAddr, method: &str, path: &str, token: &str, body: &Value) -> Response {
    let auth = format!("Bearer {token}");
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    request(addr, method, path, &[("Authorization", &auth)], &body).await
}

/// `(token, refresh_token)` of a device sign-in.
async fn device(addr: SocketAddr, id: &str) -> (String, String) {
    let r = post_key(
        addr,
        "/v2/account/authenticate/device",
        &json!({ "id": id }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    (
        v["token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn account_status(addr: SocketAddr, token: &str) -> u16 {
    bearer(addr, "GET", "/v2/account", token, &Value::Null)
        .await
        .status
}

async fn refresh(addr: SocketAddr, refresh_token: &str) -> Response {
    post_key(
        addr,
        "/v2/account/session/refresh",
        &json!({ "token": refresh_token }),
    )
    .await
}

/// The sum of a metric's series on the node's Prometheus page whose labels include every one
/// of `labels` (`key="value"`); 0 when there is none.
fn metric(node: &serai::node::RunningNode, name: &str, labels: &[&str]) -> f64 {
    node.services
        .metrics
        .render()
        .lines()
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            let matches = (rest.is_empty() || rest.starts_with('{'))
                && labels.iter().all(|want| rest.contains(want));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[actix_rt::test]
async fn logout_is_refused_everywhere_at_once_after_a_missed_broadcast_and_a_restart() {
    let mut cluster = TestCluster::start(2, |_, _| {}).await;
    let (a, b) = (cluster.node(0).client_addr, cluster.node(1).client_addr);
    let (token, refresh_token) = device(a, "revocation-device-1").await;
    assert_eq!(
        account_status(b, &token).await,
        200,
        "valid on the other node"
    );

    // Logout on node 0: when it answers, node 1 has been told (the broadcast is awaited).
    let r = bearer(
        a,
        "POST",
        "/v2/session/logout",
        &token,
        &json!({ "token": token, "refresh_token": refresh_token }),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    assert_eq!(account_status(a, &token).await, 401);
    assert_eq!(
        account_status(b, &token).await,
        401,
        "refused on node 1 at once"
    );
    assert_eq!(refresh(b, &refresh_token).await.status, 401);
    let ws = request(b, "GET", &format!("/ws?token={token}"), &[], b"").await;
    assert_eq!(ws.status, 401, "the socket refuses it too");

    // A revocation node 1 never heard of (written as another node's logout would be, without
    // its broadcast) is enforced by node 1's poll within a second or two.
    let (missed, _) = device(a, "revocation-device-2").await;
    assert_eq!(account_status(b, &missed).await, 200);
    let claims = jwt_claims(&missed);
    let pg = common::raw_client(&cluster.db.url).await;
    pg.execute(
        "INSERT INTO revoked_token (tid, expires_at) VALUES ($1, to_timestamp($2))",
        &[
            &claims["tid"].as_str().unwrap(),
            &(claims["exp"].as_i64().unwrap() as f64),
        ],
    )
    .await
    .unwrap();
    common::wait_until(
        "node 1 refusing a revocation it missed",
        Duration::from_secs(3),
        async || account_status(b, &missed).await == 401,
    )
    .await;

    // After a restart, node 1 refuses both from its first request on.
    cluster.restart(1, |_, _| {}).await;
    let b = cluster.node(1).client_addr;
    assert_eq!(account_status(b, &token).await, 401);
    assert_eq!(account_status(b, &missed).await, 401);
    let (fresh, _) = device(b, "revocation-device-3").await;
    assert_eq!(
        account_status(b, &fresh).await,
        200,
        "other tokens unaffected"
    );

    // Bad logouts change nothing.
    let (other, _) = device(a, "revocation-device-4").await;
    let r = bearer(
        a,
        "POST",
        "/v2/session/logout",
        &fresh,
        &json!({ "token": other }),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (400, json!("Session token invalid."))
    );
    assert_eq!(account_status(a, &other).await, 200);
    let r = bearer(a, "POST", "/v2/session/logout", &fresh, &json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(account_status(a, &fresh).await, 200);
    cluster.stop_all().await;
}

#[actix_rt::test]
async fn a_refresh_token_refreshes_once_even_when_two_nodes_race() {
    let mut cluster = TestCluster::start(2, |_, _| {}).await;
    let (a, b) = (cluster.node(0).client_addr, cluster.node(1).client_addr);
    let (_, first) = device(a, "rotation-device-1").await;

    let r = refresh(b, &first).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second, first, "a refresh answers a new refresh token");
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(account_status(a, &token).await, 200);
    assert_eq!(
        refresh(a, &first).await.status,
        401,
        "the used one is revoked"
    );
    assert_eq!(refresh(b, &first).await.status, 401);

    // Two refreshes of one token on two nodes at once: exactly one succeeds.
    for round in 0..5 {
        let (_, rt) = device(a, &format!("rotation-race-{round}")).await;
        let (x, y) = tokio::join!(refresh(a, &rt), refresh(b, &rt));
        let mut statuses = [x.status, y.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 401],
            "round {round}: {} / {}",
            x.body,
            y.body
        );
    }
    assert_eq!(
        refresh(a, &second).await.status,
        200,
        "the new one works, once"
    );
    cluster.stop_all().await;
}

const WAVES: usize = 4;
const PER_WAVE: usize = 64;

#[actix_rt::test]
async fn concurrent_sign_ups_make_one_account_per_id_without_retries() {
    let mut cluster = TestCluster::start(2, |_, _| {}).await;
    let addrs = [cluster.node(0).client_addr, cluster.node(1).client_addr];
    let retries_before: f64 = (0..2)
        .map(|i| metric(cluster.node(i), "serai_db_retries_total", &[]))
        .sum();

    // 24 clients sign up with the same new id on both nodes at once.
    let same = futures_util::future::join_all((0..24).map(|i| {
        post_key_owned(
            addrs[i % 2],
            "/v2/account/authenticate/device?username=samename".into(),
            json!({ "id": "same-device-signup" }),
        )
    }))
    .await;
    let mut users = std::collections::BTreeSet::new();
    let mut created = 0;
    for r in &same {
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        created += usize::from(v["created"] == json!(true));
        users.insert(jwt_claims(v["token"].as_str().unwrap())["uid"].to_string());
    }
    assert_eq!(users.len(), 1, "one account for one id: {users:?}");
    assert_eq!(created, 1, "exactly one answer says created");

    // Waves of 64 different, consecutive ids at once (neighbours in the id index: what made
    // SERIALIZABLE sign-ups abort each other): all created.
    for wave in 0..WAVES {
        let many = futures_util::future::join_all((0..PER_WAVE).map(|i| {
            post_key_owned(
                addrs[i % 2],
                "/v2/account/authenticate/device".into(),
                json!({ "id": format!("consecutive-device-{wave:02}-{i:04}") }),
            )
        }))
        .await;
        assert!(many
            .iter()
            .all(|r| r.status == 200 && r.json()["created"] == json!(true)));
    }

    let pg = common::raw_client(&cluster.db.url).await;
    let rows: i64 = pg
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1 + (WAVES * PER_WAVE) as i64);
    let mut retries = 0.0;
    for i in 0..2 {
        let node = cluster.node(i);
        retries += metric(node, "serai_db_retries_total", &[])
            + metric(
                node,
                "serai_account_signup_retries_total",
                &["reason=\"serialization\""],
            );
        assert!(
            metric(node, "serai_client_auth_total", &["account=\"created\""]) > 0.0,
            "the metrics are read"
        );
    }
    assert_eq!(retries - retries_before, 0.0, "no sign-up was retried");
    cluster.stop_all().await;
}
