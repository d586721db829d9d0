//! The real `@heroiclabs/nakama-js` client against a real node on a fresh database:
//! `clients/js/accounts.mjs` updates a profile and reads it back with getAccount and
//! getUsers, signs up and in by email, links and unlinks device, custom and email ids down to
//! the last way in, rotates a refresh token and logs out (the script asserts every answer,
//! Nakama's codes and messages included). Needs Node 18+ and npm (see tests/nakama_js.rs).

mod common;

use std::time::Duration;

#[actix_rt::test]
async fn nakama_js_accounts_email_links_and_logout() {
    let tools = common::nodejs::require_node();
    common::nodejs::ensure_client_deps();
    let common::node::TestNode { node, config, db } = common::node::start_node().await;
    let run = common::nodejs::run_script(
        "accounts.mjs",
        &[
            ("SERAI_CLIENT_ADDR", node.client_addr.to_string()),
            ("SERAI_SERVER_KEY", config.server_key.clone()),
        ],
        Duration::from_secs(50),
    )
    .await;
    node.stop().await.expect("node stops");
    drop(db);
    let report = run.report();
    println!("{report}");
    assert!(
        run.status.is_some_and(|s| s.success()),
        "accounts.mjs failed with {tools}\n{report}"
    );
    common::nodejs::assert_checks(&run.stdout, "ACCOUNTS", 50, &report);
    for step in [
        "-- profile: updateAccount, getAccount, getUsers",
        "-- email: authenticateEmail",
        "-- links: link and unlink device, custom, email",
        "-- session: refresh rotation and logout",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == step),
            "missing {step:?}\n{report}"
        );
    }
}
