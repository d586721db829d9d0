//! The node's monitoring, checked with Prometheus's own tool (promtool, Debian's `prometheus`
//! package; scripts/lib/deps.sh installs it):
//! - a node's `/metrics`, after a little of everything (RPCs over HTTP and the socket, a
//!   transaction, a flush, readiness), passes `promtool check metrics` and has the figures of
//!   the design's monitoring list;
//! - deploy/monitoring/alerts.yml passes `promtool check rules` and its unit tests
//!   (`promtool test rules alerts.test.yml`), and prometheusrule.yaml carries the same rules;
//! - every expression of the dashboard is valid PromQL, and every metric named by the
//!   dashboard, the rules, docs/monitoring.md or `src/` is one the node describes
//!   (`serai::metrics::CATALOG`), and the docs list every one of them.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::client::GameClient;
use common::node::{http, start_node, wait_for_status};
use serai::metrics::{described, Kind, CATALOG};
use serai::persistence::batch::{CharacterDirty, DirtyRow};
use serai::persistence::messages::MarkDirty;
use serde_json::{json, Value};
use uuid::Uuid;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn monitoring(file: &str) -> PathBuf {
    root().join("deploy/monitoring").join(file)
}

/// `text` in a file of this test run's own (promtool 2.42 reads rule files only by path).
fn scratch(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("monitoring-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs promtool with `args` (in deploy/monitoring), `stdin` on its standard input; its exit
/// status and everything it printed.
fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(monitoring(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool: {e}. It comes with Debian's `prometheus` package: run \
                 `bash scripts/lib/deps.sh test` (scripts/test.sh does) or `apt-get install prometheus`"
            )
        });
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write to promtool");
    }
    drop(input);
    let out = child.wait_with_output().expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The value of the first sample of `name` whose labels include every one of `labels`.
fn sample(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[actix_rt::test]
async fn a_scrape_passes_promtool_and_covers_the_monitoring_list() {
    let t = start_node().await;
    let admin = t.node.admin_addr;
    wait_for_status(admin, "/readyz", 200, Duration::from_secs(10)).await;

    // A transaction and RPCs: ok and refused over HTTP, ok over the socket (kept open).
    let player = GameClient::device(t.node.client_addr, "monitoring-device-1").await;
    let created = player
        .rpc(
            "create_character",
            &json!({"name": "Mo", "faction": "sand_nomads", "background": "smuggler"}),
        )
        .await
        .expect("create_character");
    player
        .rpc(
            "create_character",
            &json!({"name": "Mo", "faction": "nobody", "background": "smuggler"}),
        )
        .await
        .expect_err("an unknown faction is refused");
    let mut socket = player.socket().await;
    socket.rpc("echo", &json!({})).await.expect("echo");

    // A flush (of a row whose epoch is stale: fenced, and committed all the same).
    let id: Uuid = created["id"].as_str().expect("id").parse().expect("uuid");
    t.node.services.persistence.do_send(MarkDirty {
        row: DirtyRow::Character(CharacterDirty {
            id,
            epoch: -1,
            location: "nowhere".into(),
            hp: 1,
            xp: 0,
            level: 1,
            skill_points: 0,
            travel: None,
        }),
        fence: None,
    });
    serai::persistence::flush_now(&t.node.services.persistence, Duration::from_secs(10))
        .await
        .expect("the flush");

    let scrape = http(admin, "GET", "/metrics", None, "")
        .await
        .expect("scrape");
    assert_eq!(scrape.status, 200);
    let body = scrape.body;

    let (ok, out) = promtool(&["check", "metrics"], Some(&body));
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics complains:\n{out}\n--- the scrape:\n{body}"
    );

    let has = |name: &str, labels: &[&str]| {
        sample(&body, name, labels)
            .unwrap_or_else(|| panic!("no sample of {name} with {labels:?} in the scrape:\n{body}"))
    };
    assert_eq!(
        has(
            "serai_build_info",
            &[&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(has("serai_ready", &[]), 1.0, "readyz answered 200");
    has("serai_readiness_changes_total", &[]);
    assert!(
        has(
            "serai_db_write_duration_seconds_count",
            &["op=\"create_character\""]
        ) >= 1.0
    );
    assert!(has("serai_db_write_duration_seconds_count", &["op=\"flush\""]) >= 1.0);
    has(
        "serai_db_write_duration_seconds_bucket",
        &["op=\"flush\"", "le=\"0.005\""],
    );
    let rpc = |transport: &str, rpc: &str, outcome: &str| {
        has(
            "serai_rpc_duration_seconds_count",
            &[
                &format!("rpc=\"{rpc}\""),
                &format!("transport=\"{transport}\""),
                &format!("outcome=\"{outcome}\""),
            ],
        )
    };
    assert_eq!(rpc("http", "create_character", "ok"), 1.0);
    assert_eq!(rpc("http", "create_character", "refused"), 1.0);
    assert_eq!(rpc("socket", "echo", "ok"), 1.0);
    has("serai_rpc_duration_seconds_bucket", &["le=\"0.0005\""]);
    assert_eq!(has("serai_sessions_online", &[]), 1.0, "the open socket");
    assert_eq!(has("serai_cluster_members", &[]), 1.0);
    assert_eq!(has("serai_cluster_members_missing", &[]), 0.0);
    has("serai_flush_backlog_rows", &[]);
    has("serai_persistence_oldest_unflushed_seconds", &[]);
    has("serai_compensation_open", &[]);
    has("serai_compensation_rows_total", &[]);
    assert!(has("process_resident_memory_bytes", &[]) > 0.0);
    assert!(has("process_open_fds", &[]) > 0.0);
    has("process_cpu_seconds_total", &[]);
    has("serai_leaderboard_reads_total", &["served=\"replica\""]);
    has(
        "serai_leaderboard_owner_reads_total",
        &["source=\"memory\""],
    );
    for d in CATALOG.iter().filter(|d| d.kind == Kind::Histogram) {
        if body.contains(&format!("\n{}_count", d.name)) {
            assert!(
                body.contains(&format!("# TYPE {} histogram", d.name)),
                "{} is a histogram with buckets, not a summary",
                d.name
            );
        }
    }
    socket.close().await;
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let (ok, out) = promtool(&["check", "rules", "alerts.yml"], None);
    assert!(ok, "promtool check rules alerts.yml:\n{out}");
    let (ok, out) = promtool(&["test", "rules", "alerts.test.yml"], None);
    assert!(ok, "promtool test rules alerts.test.yml:\n{out}");
}

/// `groups:` and everything after it.
fn from_groups(text: &str) -> String {
    let start = text.find("\ngroups:").expect("a groups: key") + 1;
    text[start..].to_string()
}

#[test]
fn the_prometheus_rule_carries_the_same_rules() {
    let manifest = read(&monitoring("prometheusrule.yaml"));
    assert!(manifest.contains("\nkind: PrometheusRule\n"), "{manifest}");
    assert!(manifest.contains("\napiVersion: monitoring.coreos.com/v1\n"));
    let spec = manifest
        .split_once("\nspec:\n")
        .expect("a spec")
        .1
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let rules = from_groups(&read(&monitoring("alerts.yml")));
    assert_eq!(
        spec.trim_end(),
        rules.trim_end(),
        "prometheusrule.yaml's spec must be alerts.yml (from `groups:`) indented by two spaces"
    );
    let file = scratch("prometheusrule-spec.yml", &spec);
    let (ok, out) = promtool(&["check", "rules", file.to_str().expect("utf-8")], None);
    assert!(ok, "the PrometheusRule's spec as a rules file:\n{out}");
    let _ = std::fs::remove_file(file);
}

/// Every `expr` string anywhere in `v`.
fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// The metric names in a text: identifiers starting `serai_` or `process_`, with a
/// histogram's `_bucket`, `_sum` and `_count` taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if ident(bytes[i]) && (i == 0 || !ident(bytes[i - 1])) {
            let end = (i..bytes.len())
                .find(|&j| !ident(bytes[j]))
                .unwrap_or(bytes.len());
            let word = &text[i..end];
            if word.starts_with("serai_") || word.starts_with("process_") {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .filter_map(|s| word.strip_suffix(s))
                    .find(|b| described(b).is_some_and(|d| d.kind == Kind::Histogram))
                    .unwrap_or(word);
                names.insert(base.to_string());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

fn assert_described(names: &BTreeSet<String>, what: &str) {
    let unknown: Vec<&String> = names.iter().filter(|n| described(n).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "{what} names metrics the node does not export: {unknown:?}"
    );
}

#[test]
fn the_dashboard_is_valid_and_names_only_exported_metrics() {
    let dashboard: Value =
        serde_json::from_str(&read(&monitoring("dashboard.json"))).expect("dashboard.json is JSON");
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    let panels = dashboard["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "every panel has its own id");
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    assert!(all.len() >= 20, "the dashboard has its figures: {all:?}");

    // Valid PromQL: each expression as a recording rule (Grafana's range variable made 5m).
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in all.iter().enumerate() {
        let e = e.replace("$__rate_interval", "5m");
        rules.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: {}\n",
            serde_json::to_string(&e).expect("a JSON string is a YAML string")
        ));
    }
    let file = scratch("dashboard-exprs.yml", &rules);
    let (ok, out) = promtool(&["check", "rules", file.to_str().expect("utf-8")], None);
    assert!(ok, "the dashboard's expressions:\n{out}\n{rules}");
    let _ = std::fs::remove_file(file);

    let names = metric_names(&all.join("\n"));
    assert_described(&names, "the dashboard");
    for must in [
        "serai_db_write_duration_seconds",
        "serai_db_write_failures_total",
        "serai_db_errors_total",
        "serai_rpc_duration_seconds",
        "serai_flush_backlog_rows",
        "serai_persistence_oldest_unflushed_seconds",
        "serai_sessions_online",
        "serai_cluster_members",
        "serai_compensation_open",
        "serai_leaderboard_reads_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "serai_build_info",
    ] {
        assert!(names.contains(must), "the dashboard shows {must}");
    }
    assert_described(
        &metric_names(&read(&monitoring("alerts.yml"))),
        "alerts.yml",
    );
}

#[test]
fn every_metric_in_the_code_is_described_and_documented() {
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(&root().join("src"), &mut files);
    // The load and bench binaries are clients, not the node.
    files.retain(|f| !f.starts_with(root().join("src/bin")));
    let mut in_code = BTreeSet::new();
    for file in &files {
        let text = read(file);
        // Names written as string literals: "serai_…".
        for piece in text.split('"').skip(1).step_by(2) {
            if piece.starts_with("serai_")
                && piece.len() > 6
                && piece.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                in_code.insert(piece.to_string());
            }
        }
    }
    assert!(in_code.len() > 30, "found the names: {in_code:?}");
    let undescribed: Vec<&String> = in_code.iter().filter(|n| described(n).is_none()).collect();
    assert!(
        undescribed.is_empty(),
        "metrics without help text: add them to src/metrics/catalog.rs: {undescribed:?}"
    );

    let docs = read(&root().join("docs/monitoring.md"));
    let undocumented: Vec<&str> = CATALOG
        .iter()
        .map(|d| d.name)
        .filter(|n| !docs.contains(&format!("`{n}")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/monitoring.md does not list {undocumented:?}"
    );
    assert_described(&metric_names(&docs), "docs/monitoring.md");
}
