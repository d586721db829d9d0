//! The local database helpers against real servers: the throwaway server is started from
//! the system's binaries in a temporary directory even when 127.0.0.1:5432 is up.

use std::path::PathBuf;

use serai::localdb::{dev_database, LocalServer, TestDatabase};

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "serai-localdb-test-{}",
            uuid::Uuid::new_v4().simple()
        ));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throwaway_server_starts_once_serves_restarts_and_stops() {
    let tmp = TempDir::new();
    let dir = tmp.0.join("pg");

    // Two concurrent starts on a fresh directory agree on one server.
    let (a, b) = tokio::join!(
        LocalServer::start_throwaway(&dir),
        LocalServer::start_throwaway(&dir)
    );
    let a = match a {
        Ok(a) => a,
        Err(e)
            if e.0.contains("no initdb/pg_ctl")
                && std::env::var_os("SERAI_DATABASE_URL").is_some() =>
        {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("starting a throwaway server: {e}"),
    };
    let b = b.expect("second concurrent start");
    assert_eq!(a.port, b.port);
    assert_eq!(a.server.admin_url, b.server.admin_url);
    assert!(a.started ^ b.started, "exactly one call starts the server");
    assert!(dir.join("data/PG_VERSION").is_file());
    assert_eq!(
        std::fs::read_to_string(dir.join("port")).unwrap().trim(),
        a.port.to_string()
    );

    // Its settings: loopback only, no fsync.
    let admin = connect(&a.server.admin_url)
        .await
        .expect("connect to the throwaway server");
    let show = |name: &'static str| {
        let admin = &admin;
        async move {
            let row = admin.query_one(&format!("SHOW {name}"), &[]).await.unwrap();
            row.get::<_, String>(0)
        }
    };
    assert_eq!(show("listen_addresses").await, "127.0.0.1");
    assert_eq!(show("fsync").await, "off");
    assert_eq!(show("port").await, a.port.to_string());

    // A database on it works.
    let url = a
        .server
        .ensure_database("probe")
        .await
        .expect("create database");
    assert!(url.ends_with("/probe"), "{url}");
    let db = connect(&url).await.expect("connect to the new database");
    db.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (20), (22);")
        .await
        .unwrap();
    let sum: i64 = db
        .query_one("SELECT sum(x) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 42);
    drop(db);
    drop(admin);

    // Starting again reuses the running server.
    let again = LocalServer::start_throwaway(&dir).await.expect("reuse");
    assert!(!again.started);
    assert_eq!(again.port, a.port);

    // Stopped: nothing answers any more; stopping twice is fine.
    a.stop().await.expect("stop");
    assert!(
        connect(&url).await.is_err(),
        "server still answers after stop"
    );
    a.stop().await.expect("second stop");

    // Started again from the same directory: the data survived.
    let restarted = LocalServer::start_throwaway(&dir).await.expect("restart");
    assert!(restarted.started);
    let db = connect(&restarted.server.url_for("probe"))
        .await
        .expect("reconnect");
    let sum: i64 = db
        .query_one("SELECT sum(x) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 42);
    drop(db);
    restarted.stop().await.expect("final stop");
    assert!(!dir.join("data/postmaster.pid").exists());
}

/// As root the server runs as an unprivileged user, which must be able to reach the
/// directory: one it cannot reach is refused with a message saying so.
#[tokio::test]
async fn as_root_an_unreachable_directory_is_refused() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new();
    std::fs::create_dir_all(&tmp.0).unwrap();
    std::fs::set_permissions(&tmp.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = LocalServer::start_throwaway(&tmp.0.join("pg"))
        .await
        .unwrap_err();
    assert!(err.0.contains("cannot reach"), "{err}");
}

#[tokio::test]
async fn test_database_is_fresh_and_dropped_afterwards() {
    let db = TestDatabase::create().await.expect("test database");
    let server = db.server().clone();
    let name = db.name.clone();
    assert!(db.url.contains(&name));

    let client = connect(&db.url)
        .await
        .expect("connect to the test database");
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "a fresh database is empty");
    client
        .batch_execute("CREATE TABLE scratch (id int)")
        .await
        .unwrap();

    // Dropped even while a session is still connected to it.
    drop(db);
    let admin = connect(&server.admin_url)
        .await
        .expect("connect to the server");
    let left = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    assert!(
        left.is_none(),
        "database {name} still exists after the TestDatabase was dropped"
    );
    drop(client);
}

#[tokio::test]
async fn test_databases_are_distinct() {
    let (a, b) = tokio::join!(TestDatabase::create(), TestDatabase::create());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.name, b.name);
    assert_ne!(a.url, b.url);
}

#[tokio::test]
async fn dev_database_is_persistent() {
    let url = dev_database().await.expect("dev database");
    if std::env::var_os("SERAI_DATABASE_URL").is_none() {
        assert!(url.ends_with("/serai"), "{url}");
        // Asking twice gives the same database.
        assert_eq!(dev_database().await.unwrap(), url);
    }
    let client = connect(&url).await.expect("connect to the dev database");
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}
