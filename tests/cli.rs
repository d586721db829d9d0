//! The real `serai` binary: help texts, config errors (exit 2, one line naming the field),
//! concurrent `serai migrate`, `serai node` serving admin HTTP and stopping cleanly on
//! SIGTERM/SIGINT, `serai node` refusing secrets at their built-in defaults unless allowed, and
//! `serai dev` printing every key it uses. Each test runs on its own fresh database.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::node::{free_port, http_blocking, parse_response, Response};
use serai::localdb::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_serai");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn fresh_database() -> TestDatabase {
    runtime()
        .block_on(TestDatabase::create())
        .expect("a test database")
}

/// The binary with no `SERAI_*` variable inherited from the environment running the tests.
fn serai(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SERAI_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("SERAI_LOG", "info").stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run serai")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// A temporary file removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(suffix: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "serai-cli-test-{}{suffix}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Help

#[test]
fn help_describes_every_command() {
    let top = run(&mut serai(&["--help"]));
    assert!(top.status.success(), "serai --help: {:?}", top.status);
    let out = text(&top.stdout);
    assert!(out.contains("Usage: serai"), "{out}");
    assert!(out.contains("Nakama"), "the help says what serai is: {out}");
    for sub in ["node", "migrate", "dev"] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(sub)),
            "serai --help lists `{sub}`: {out}"
        );
    }

    let cases: &[(&str, &[&str])] = &[
        ("node", &["Run a node", "SIGTERM", "--config"]),
        ("migrate", &["migrations", "catalog", "--config"]),
        ("dev", &["local PostgreSQL", "admin token", "--config"]),
    ];
    for (sub, needles) in cases {
        let o = run(&mut serai(&[sub, "--help"]));
        assert!(o.status.success(), "serai {sub} --help: {:?}", o.status);
        let out = text(&o.stdout);
        assert!(out.contains(&format!("Usage: serai {sub}")), "{out}");
        for needle in *needles {
            assert!(
                out.contains(needle),
                "serai {sub} --help mentions {needle:?}: {out}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Config errors

/// Runs `serai node` expecting a config error: exit status 2 and exactly one line on
/// stderr, naming `field`. Returns that line.
fn assert_config_error(cmd: &mut Command, field: &str, what: &str) -> String {
    let o = run(cmd);
    let stderr = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{what}: exit status; stderr: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: exactly one stderr line, got {lines:#?}"
    );
    assert!(
        lines[0].contains(field),
        "{what}: the line names `{field}`: {:?}",
        lines[0]
    );
    assert!(
        text(&o.stdout).trim().is_empty(),
        "{what}: nothing on stdout: {}",
        text(&o.stdout)
    );
    lines[0].to_string()
}

#[test]
fn invalid_env_values_exit_2_naming_the_field() {
    for sub in ["node", "migrate"] {
        let line = assert_config_error(
            serai(&[sub]).env("SERAI_CLIENT_ADDR", "nowhere"),
            "client_addr",
            "SERAI_CLIENT_ADDR=nowhere",
        );
        assert!(line.contains("nowhere"), "says what is wrong: {line}");
        assert_config_error(
            serai(&[sub]).env("SERAI_NODE_ID", "a b"),
            "node_id",
            "SERAI_NODE_ID=\"a b\"",
        );
    }
    assert_config_error(
        serai(&["node"]).env("SERAI_ADMIN_ADDR", "127.0.0.1:notaport"),
        "admin_addr",
        "SERAI_ADMIN_ADDR",
    );
    assert_config_error(
        serai(&["node"]).env("SERAI_PEER_ADDR", ""),
        "peer_addr",
        "SERAI_PEER_ADDR empty",
    );
    assert_config_error(
        serai(&["node"]).env("SERAI_ADMIN_TOKEN", "short"),
        "admin_token",
        "SERAI_ADMIN_TOKEN too short",
    );
}

#[test]
fn config_file_with_an_unknown_key_exits_2_naming_it() {
    let file = TempFile::new(
        ".toml",
        "node_id = \"n1\"\nflush_intervall_ms = 50\n", // typo of flush_interval_ms
    );
    let path = file.path().to_str().unwrap();
    assert_config_error(
        &mut serai(&["node", "--config", path]),
        "flush_intervall_ms",
        "unknown key",
    );
    assert_config_error(
        &mut serai(&["migrate", "--config", path]),
        "flush_intervall_ms",
        "unknown key (migrate)",
    );
}

#[test]
fn config_file_with_a_bad_value_type_exits_2_naming_the_field() {
    let file = TempFile::new(".toml", "node_id = \"n1\"\nflush_batch_size = \"many\"\n");
    let path = file.path().to_str().unwrap();
    assert_config_error(
        &mut serai(&["node", "--config", path]),
        "flush_batch_size",
        "string where an integer belongs",
    );
    let file = TempFile::new(".toml", "client_addr = 7350\n");
    assert_config_error(
        &mut serai(&["node", "--config", file.path().to_str().unwrap()]),
        "client_addr",
        "integer where an address string belongs",
    );
}

#[test]
fn config_file_values_are_validated_and_env_wins() {
    // A well-typed but out-of-range file value names its field.
    let file = TempFile::new(".toml", "flush_batch_size = 0\n");
    assert_config_error(
        &mut serai(&["node", "--config", file.path().to_str().unwrap()]),
        "flush_batch_size",
        "flush_batch_size = 0",
    );
    // The environment overrides the file: a bad file value replaced by a good env value
    // passes validation, so the failure comes from the next bad field.
    let file = TempFile::new(".toml", "node_id = \"bad id\"\n");
    assert_config_error(
        serai(&["node", "--config", file.path().to_str().unwrap()])
            .env("SERAI_NODE_ID", "good-id")
            .env("SERAI_CLIENT_ADDR", "nowhere"),
        "client_addr",
        "env overrides file",
    );
    // A missing file is a config error too.
    assert_config_error(
        &mut serai(&["node", "--config", "/nonexistent/serai.toml"]),
        "config",
        "missing file",
    );
}

// ---------------------------------------------------------------------------------------
// Concurrent migrate

async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Tables, columns, indexes and recorded migrations: what "one schema" means.
async fn schema_listing(url: &str) -> Vec<String> {
    let client = raw(url).await;
    let mut out = Vec::new();
    for r in client
        .query(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns \
             WHERE table_schema = 'public' ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
    {
        let (t, c, ty, n): (String, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        out.push(format!("column {t}.{c} {ty} null={n}"));
    }
    for r in client
        .query(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
    {
        let (t, i, d): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        out.push(format!("index {t}.{i} {d}"));
    }
    for r in client
        .query(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
    {
        let (v, n, c): (i64, String, String) = (r.get(0), r.get(1), r.get(2));
        out.push(format!("migration {v} {n} {c}"));
    }
    out
}

async fn tables(url: &str) -> BTreeSet<String> {
    raw(url)
        .await
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn count(url: &str, table: &str) -> i64 {
    raw(url)
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

fn migrate_cmd(url: &str) -> Command {
    let mut cmd = serai(&["migrate"]);
    cmd.env("SERAI_DATABASE_URL", url);
    cmd
}

#[test]
fn three_migrates_at_once_on_an_empty_database_leave_one_schema() {
    // Several rounds: the processes interleave differently each time.
    for round in 0..3 {
        three_migrates_round(round);
    }
}

fn three_migrates_round(round: usize) {
    let shared = fresh_database();
    let alone = fresh_database();

    let started = Instant::now();
    let children: Vec<Child> = (0..3)
        .map(|_| {
            migrate_cmd(&shared.url)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn serai migrate")
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    let took = started.elapsed();
    for (i, o) in outputs.iter().enumerate() {
        assert!(
            o.status.success(),
            "migrate #{i} exited {:?}\nstdout: {}\nstderr: {}",
            o.status,
            text(&o.stdout),
            text(&o.stderr)
        );
        assert!(
            text(&o.stdout).contains("catalog version"),
            "migrate #{i} reports what it did: {}",
            text(&o.stdout)
        );
    }
    let seeded = outputs
        .iter()
        .filter(|o| text(&o.stdout).contains("default catalog seeded"))
        .count();
    assert_eq!(seeded, 1, "exactly one of the three seeds the catalog");
    eprintln!("round {round}: three concurrent `serai migrate` took {took:?}");

    let single = run(&mut migrate_cmd(&alone.url));
    assert!(single.status.success(), "{}", text(&single.stderr));

    runtime().block_on(async {
        let t_shared = tables(&shared.url).await;
        assert_eq!(t_shared, tables(&alone.url).await, "same tables");
        for t in ["schema_migrations", "catalog_meta", "faction", "player_character"] {
            assert!(t_shared.contains(t), "table {t} exists");
        }

        let s_shared = schema_listing(&shared.url).await;
        let s_alone = schema_listing(&alone.url).await;
        let only_shared: Vec<&String> = s_shared.iter().filter(|l| !s_alone.contains(l)).collect();
        let only_alone: Vec<&String> = s_alone.iter().filter(|l| !s_shared.contains(l)).collect();
        assert!(
            only_shared.is_empty() && only_alone.is_empty() && s_shared.len() == s_alone.len(),
            "schemas differ\nonly after 3 concurrent runs: {only_shared:#?}\nonly after one run: {only_alone:#?}"
        );

        assert_eq!(count(&shared.url, "catalog_meta").await, 1, "one catalog_meta row");
        for table in [
            "schema_migrations",
            "faction",
            "background_archetype",
            "skill_tree",
            "skill_definition",
            "item_template",
            "crew_archetype",
            "trade_good",
            "trade_node",
            "trade_route",
            "trade_node_stock",
            "market_price_snapshot",
        ] {
            assert_eq!(
                count(&shared.url, table).await,
                count(&alone.url, table).await,
                "rows in {table}"
            );
        }
    });

    // And a fourth run later changes nothing.
    let again = run(&mut migrate_cmd(&shared.url));
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(!text(&again.stdout).contains("default catalog seeded"));
    assert!(
        text(&again.stdout).contains("migrations applied: []"),
        "{}",
        text(&again.stdout)
    );
}

// ---------------------------------------------------------------------------------------
// serai node

/// A running `serai node` process; killed if the test ends without stopping it.
struct NodeProcess {
    child: Child,
    log: PathBuf,
    admin: SocketAddr,
    client: SocketAddr,
    token: String,
    node_id: String,
    _db: TestDatabase,
}

/// Where a started process's secrets come from.
#[derive(Clone, Copy, PartialEq)]
enum Secrets {
    /// Every secret set to a fresh value of its own.
    Own,
    /// All at their built-in defaults, with SERAI_ALLOW_DEFAULT_SECRETS=true.
    AllowDefaults,
    /// All at their built-in defaults, nothing else said (`serai dev`).
    Defaults,
}

impl NodeProcess {
    /// `serai node` with secrets of its own.
    fn start() -> NodeProcess {
        NodeProcess::launch("node", Secrets::Own, &[])
    }

    /// `serai <sub> <args>` on a fresh database and spare ports; stdout and stderr go to its
    /// log.
    fn launch(sub: &str, secrets: Secrets, args: &[&str]) -> NodeProcess {
        let db = fresh_database();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let node_id = format!("cli-{}", &suffix[..8]);
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let client: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let peer = format!("127.0.0.1:{}", free_port());
        let log = std::env::temp_dir().join(format!("serai-cli-{sub}-{suffix}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = serai(&[sub]);
        command
            .args(args)
            .env("SERAI_DATABASE_URL", &db.url)
            .env("SERAI_NODE_ID", &node_id)
            .env("SERAI_CLIENT_ADDR", client.to_string())
            .env("SERAI_ADMIN_ADDR", admin.to_string())
            .env("SERAI_PEER_ADDR", &peer);
        let token = match secrets {
            Secrets::Own => {
                for secret in serai::config::SECRETS {
                    command.env(secret.env, format!("{}-{suffix}", secret.key));
                }
                format!("admin_token-{suffix}")
            }
            Secrets::AllowDefaults => {
                command.env("SERAI_ALLOW_DEFAULT_SECRETS", "true");
                "defaultadmintoken".to_string()
            }
            Secrets::Defaults => "defaultadmintoken".to_string(),
        };
        let child = command
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn serai {sub}: {e}"));
        NodeProcess {
            child,
            log,
            admin,
            client,
            token,
            node_id,
            _db: db,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `path` on the admin port until it answers 200.
    fn wait_for_200(&mut self, path: &str, within: Duration) -> Response {
        let deadline = Instant::now() + within;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "serai node exited ({status}) before {path} answered\n{}",
                    self.log()
                );
            }
            match http_blocking(self.admin, "GET", path, None, "") {
                Ok(r) if r.status == 200 => return r,
                Ok(r) => last = format!("status {}: {}", r.status, r.body),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "GET {path} did not answer 200 within {within:?}; last: {last}\n{}",
            self.log()
        );
    }

    fn get(&self, path: &str, token: Option<&str>) -> Response {
        http_blocking(self.admin, "GET", path, token, "")
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()))
    }

    /// Sends `signal` with the `kill` command and waits for the exit status.
    fn signal_and_wait(&mut self, signal: &str, within: Duration) -> (ExitStatus, Duration) {
        let sent = Instant::now();
        let kill = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -{signal} failed");
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, sent.elapsed());
            }
            if sent.elapsed() > within {
                panic!(
                    "serai node still running {within:?} after SIG{signal}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The persistence figures every node reports from its first scrape.
const METRICS: [&str; 5] = [
    "serai_flush_backlog_rows",
    "serai_flush_latency_seconds",
    "serai_rows_written_total",
    "serai_db_retries_total",
    "serai_fenced_writes_total",
];

/// True when `body` has a sample line (not a comment) of metric `name`.
fn has_sample(body: &str, name: &str) -> bool {
    body.lines().any(|l| {
        !l.starts_with('#')
            && l.strip_prefix(name).is_some_and(|rest| {
                rest.starts_with('{')
                    || rest.starts_with(' ')
                    || rest.starts_with("_sum")
                    || rest.starts_with("_count")
                    || rest.starts_with("_bucket")
            })
    })
}

#[test]
fn node_serves_admin_http_and_exits_0_on_sigterm() {
    let started = Instant::now();
    let mut node = NodeProcess::start();
    let health = node.wait_for_200("/healthz", Duration::from_secs(60));
    let ready = node.wait_for_200("/readyz", Duration::from_secs(30));
    let up = started.elapsed();
    assert_eq!(health.json()["status"], "ok");
    let r = ready.json();
    assert_eq!(
        (&r["database"], &r["catalog"], &r["draining"]),
        (&true.into(), &true.into(), &false.into()),
        "{r}"
    );

    // Metrics: Prometheus text, open without a token.
    let metrics = node.get("/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "content type {:?}",
        metrics.header("content-type")
    );
    let missing: Vec<&str> = METRICS
        .iter()
        .copied()
        .filter(|m| !has_sample(&metrics.body, m))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics missing from /metrics: {missing:?}\n{}",
        metrics.body
    );
    for line in metrics.body.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# TYPE ") || line.starts_with("# HELP "),
                "comment line: {line}"
            );
            continue;
        }
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "sample line `name{{labels}} value`: {line}"
        );
        assert!(
            line.starts_with("serai_") || line.starts_with("process_"),
            "metric named serai_* (or the standard process_*): {line}"
        );
    }

    // Everything else needs the token: 401 with a JSON body.
    for path in [
        "/admin/status",
        "/admin/flush",
        "/",
        "/nonexistent",
        "/admin",
        "/healthz/../admin/status",
    ] {
        for token in [None, Some("wrong-token-value")] {
            let r = node.get(path, token);
            assert_eq!(r.status, 401, "GET {path} with {token:?}: {}", r.body);
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.contains("application/json")),
                "GET {path}: JSON content type"
            );
            assert!(r.json()["message"].is_string(), "GET {path}: {}", r.body);
        }
    }
    let post = http_blocking(node.admin, "POST", "/admin/flush", None, "").unwrap();
    assert_eq!(post.status, 401);

    // With the token.
    let token = node.token.clone();
    let status = node.get("/admin/status", Some(&token));
    assert_eq!(status.status, 200, "{}", status.body);
    let s = status.json();
    assert_eq!(s["node_id"], node.node_id.as_str(), "{s}");
    let flushed = http_blocking(node.admin, "POST", "/admin/flush", Some(&token), "").unwrap();
    assert_eq!(flushed.status, 200, "{}", flushed.body);
    assert_eq!(flushed.json(), serde_json::json!({"flushed": true}));

    // The client port is listening too.
    assert!(std::net::TcpStream::connect(node.client).is_ok());

    let (exit, took) = node.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(exit.success(), "SIGTERM: exit {exit:?}\n{}", node.log());
    let log = node.log();
    assert!(log.contains("node stopped"), "{log}");
    assert!(
        http_blocking(node.admin, "GET", "/healthz", None, "").is_err(),
        "admin port closed after exit"
    );
    eprintln!("serai node: ready after {up:?}, exited {took:?} after SIGTERM");
}

#[test]
fn metrics_report_active_actors_by_kind_from_the_first_scrape() {
    // A scraper (and an alert on absent series) needs `serai_active_actors{kind=...}` before
    // the first actor of a kind is activated, not only afterwards.
    let mut node = NodeProcess::start();
    node.wait_for_200("/readyz", Duration::from_secs(60));
    let metrics = node.get("/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(
        has_sample(&metrics.body, "serai_active_actors"),
        "no serai_active_actors{{kind=...}} sample on a fresh node:\n{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .lines()
            .filter(|l| l.starts_with("serai_active_actors{"))
            .all(|l| l.contains("kind=\"")),
        "active actors are labelled by kind:\n{}",
        metrics.body
    );
    let (exit, _) = node.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(exit.success(), "SIGTERM: exit {exit:?}\n{}", node.log());
}

#[test]
fn node_exits_0_on_sigint() {
    let mut node = NodeProcess::start();
    node.wait_for_200("/readyz", Duration::from_secs(60));
    let (exit, took) = node.signal_and_wait("INT", Duration::from_secs(15));
    assert!(exit.success(), "SIGINT: exit {exit:?}\n{}", node.log());
    assert!(node.log().contains("node stopped"), "{}", node.log());
    eprintln!("serai node exited {took:?} after SIGINT");
}

/// A client request sent by hand, with an `X-Request-Id` header if `id` is given.
fn client_request(addr: SocketAddr, path: &str, id: Option<&str>) -> Response {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the client port");
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let header = id.map_or(String::new(), |id| format!("X-Request-Id: {id}\r\n"));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{header}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    parse_response(&raw).expect("an HTTP response")
}

#[test]
fn client_requests_carry_a_request_id_and_are_access_logged() {
    let mut node = NodeProcess::start();
    node.wait_for_200("/readyz", Duration::from_secs(60));
    let id = format!("req-{}", uuid::Uuid::new_v4().simple());
    let res = client_request(node.client, "/v2/account", Some(&id));
    assert_eq!(res.status, 401, "no token: {}", res.body);
    assert_eq!(res.header("x-request-id"), Some(id.as_str()));
    // The line is written before the response is sent; the poll only absorbs a slow disk.
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let log = node.log();
        if let Some(l) = log
            .lines()
            .find(|l| l.contains("serai::access") && l.contains(&id))
        {
            break l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no access log line with {id}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    for part in ["GET", "/v2/account", "401", "duration_ms"] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    // Without a header the node makes one up, and says which.
    let res = client_request(node.client, "/v2/account", None);
    let fresh = res.header("x-request-id").expect("a generated request id");
    assert!(uuid::Uuid::parse_str(fresh).is_ok(), "{fresh}");
    let (exit, _) = node.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(exit.success(), "SIGTERM: exit {exit:?}\n{}", node.log());
    assert!(node.log().contains(fresh), "{}", node.log());
}

// ---------------------------------------------------------------------------------------
// Secrets: `serai node` refuses the built-in defaults; `serai dev` prints what it uses

/// Runs `cmd` to its exit (it must exit within `within`), returning (status, stderr).
fn run_to_exit(cmd: &mut Command, within: Duration) -> (ExitStatus, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serai");
    let deadline = Instant::now() + within;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().expect("wait");
            panic!(
                "still running after {within:?} (it should have refused to start)\n{}{}",
                text(&o.stdout),
                text(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().expect("wait");
    (o.status, text(&o.stdout), text(&o.stderr))
}

/// `serai node` that must not get as far as the database or its ports: a database nobody
/// answers on and spare ports, in case it started anyway.
fn node_going_nowhere() -> Command {
    let mut cmd = serai(&["node"]);
    cmd.env(
        "SERAI_DATABASE_URL",
        "postgresql://serai@127.0.0.1:1/nowhere",
    )
    .env("SERAI_CLIENT_ADDR", format!("127.0.0.1:{}", free_port()))
    .env("SERAI_ADMIN_ADDR", format!("127.0.0.1:{}", free_port()))
    .env("SERAI_PEER_ADDR", format!("127.0.0.1:{}", free_port()));
    cmd
}

#[test]
fn node_refuses_default_secrets_naming_each_and_how_to_set_it() {
    let (status, stdout, stderr) = run_to_exit(&mut node_going_nowhere(), Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "exit status; stderr: {stderr}");
    assert!(stdout.trim().is_empty(), "nothing on stdout: {stdout}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
    for secret in serai::config::SECRETS {
        assert!(
            stderr.contains(secret.key),
            "names {}: {stderr}",
            secret.key
        );
        assert!(
            stderr.contains(secret.env),
            "names {}: {stderr}",
            secret.env
        );
        assert!(
            stderr.contains(&format!("{} = \"...\"", secret.key)),
            "shows the TOML key {}: {stderr}",
            secret.key
        );
        assert!(
            !stderr.contains(secret.default),
            "never prints a value: {stderr}"
        );
    }
    assert!(
        stderr.contains("SERAI_ALLOW_DEFAULT_SECRETS=true")
            && stderr.contains("allow_default_secrets = true"),
        "says how to allow them: {stderr}"
    );

    // Some set (in the environment and in the file): only the others are named.
    let file = TempFile::new(
        ".toml",
        "http_key = \"file-http-key\"\ncluster_secret = \"file-cluster-secret\"\n",
    );
    let (status, _, stderr) = run_to_exit(
        node_going_nowhere()
            .args(["--config", file.path().to_str().unwrap()])
            .env("SERAI_SERVER_KEY", "env-server-key")
            .env("SERAI_ADMIN_TOKEN", "env-admin-token"),
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    for secret in serai::config::SECRETS {
        let expected = secret.key.ends_with("_encryption_key");
        assert_eq!(
            stderr.contains(secret.env),
            expected,
            "{} named: {expected}\n{stderr}",
            secret.env
        );
    }

    // allow_default_secrets = false in the file, or a bad value, is no way round it.
    let file = TempFile::new(".toml", "allow_default_secrets = false\n");
    let (status, _, stderr) = run_to_exit(
        node_going_nowhere().args(["--config", file.path().to_str().unwrap()]),
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert_config_error(
        node_going_nowhere().env("SERAI_ALLOW_DEFAULT_SECRETS", "maybe"),
        "allow_default_secrets",
        "SERAI_ALLOW_DEFAULT_SECRETS=maybe",
    );
}

#[test]
fn node_starts_with_default_secrets_when_allowed() {
    let mut node = NodeProcess::launch("node", Secrets::AllowDefaults, &[]);
    node.wait_for_200("/readyz", Duration::from_secs(60));
    let token = node.token.clone();
    let status = node.get("/admin/status", Some(&token));
    assert_eq!(
        status.status, 200,
        "the default admin token works: {}",
        status.body
    );
    assert!(
        node.log().contains("allow_default_secrets"),
        "warns that it runs with default secrets:\n{}",
        node.log()
    );
    let (exit, _) = node.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(exit.success(), "SIGTERM: exit {exit:?}\n{}", node.log());

    // The same from the file.
    let file = TempFile::new(".toml", "allow_default_secrets = true\n");
    let path = file.path().to_str().unwrap();
    let mut node = NodeProcess::launch("node", Secrets::Defaults, &["--config", path]);
    node.wait_for_200("/readyz", Duration::from_secs(60));
    let (exit, _) = node.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(exit.success(), "SIGTERM: exit {exit:?}\n{}", node.log());
}

#[test]
fn dev_starts_with_the_defaults_and_prints_every_key_it_uses() {
    let mut node = NodeProcess::launch("dev", Secrets::Defaults, &[]);
    node.wait_for_200("/readyz", Duration::from_secs(60));
    let banner = node.log();
    for secret in serai::config::SECRETS {
        assert!(
            banner.contains(&format!("{}  (", secret.default)),
            "prints {} = {}:\n{banner}",
            secret.key,
            secret.default
        );
    }
    assert!(
        banner.contains("HTTP key:       defaulthttpkey"),
        "{banner}"
    );
    assert!(
        banner.contains(&format!(
            "new Client(\"defaultkey\", \"127.0.0.1\", \"{}\", false)",
            node.client.port()
        )),
        "a nakama-js snippet for this node:\n{banner}"
    );
    assert!(
        banner.contains(&format!("http://{}", node.admin)),
        "{banner}"
    );
    let (exit, _) = node.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(exit.success(), "SIGTERM: exit {exit:?}\n{}", node.log());
}

#[test]
fn dev_prints_the_keys_it_was_given() {
    let mut node = NodeProcess::launch("dev", Secrets::Own, &[]);
    node.wait_for_200("/readyz", Duration::from_secs(60));
    let banner = node.log();
    for secret in serai::config::SECRETS {
        assert!(
            banner.contains(&format!("{}-", secret.key)) && banner.contains(secret.env),
            "prints its {}:\n{banner}",
            secret.key
        );
    }
    assert!(!banner.contains(", built-in default)"), "{banner}");
    let token = node.token.clone();
    assert_eq!(node.get("/admin/status", Some(&token)).status, 200);
    let (exit, _) = node.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(exit.success(), "SIGTERM: exit {exit:?}\n{}", node.log());
}
