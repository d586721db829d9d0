//! Database TLS against a real PostgreSQL: a throwaway server started here with `ssl = on`,
//! a certificate for "localhost" signed by a CA made here, and a pg_hba.conf that takes TCP
//! only over TLS. Each `sslmode` connects or is refused as libpq's would, and a refusal says why
//! and where.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serai::config::{Config, Dialect};
use serai::localdb::{LocalServer, ServerTls, Throwaway};
use serai::metrics::Metrics;
use serai::persistence::{self, Db, DbSettings};

/// A CA: its certificate (PEM) and what signs with it.
fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

/// A server certificate for `names` signed by `ca`, and its key (PEM).
fn server_cert(names: &[&str], ca: &Issuer<'_, KeyPair>) -> ServerTls {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("server params");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, ca).expect("server certificate");
    ServerTls {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A throwaway server with a certificate for "localhost" only, in a temporary directory that
/// also holds the CA that signed it (`ca_file`) and another CA (`other_ca_file`). Stopped and
/// removed when dropped.
struct TlsServer {
    dir: PathBuf,
    pg: Option<Throwaway>,
    ca_file: PathBuf,
    other_ca_file: PathBuf,
}

impl TlsServer {
    /// Starts one; `None` (skip) only where no PostgreSQL binaries exist and the suite runs
    /// against a given SERAI_DATABASE_URL.
    async fn start() -> Option<TlsServer> {
        let (ca_pem, ca) = new_ca("serai test CA");
        let (other_ca_pem, _) = new_ca("some other CA");
        let dir =
            std::env::temp_dir().join(format!("serai-db-tls-{}", uuid::Uuid::new_v4().simple()));
        let mut server = TlsServer {
            ca_file: dir.join("ca.pem"),
            other_ca_file: dir.join("other-ca.pem"),
            dir,
            pg: None,
        };
        let tls = server_cert(&["localhost"], &ca);
        match LocalServer::start_throwaway_with_tls(&server.dir.join("pg"), &tls).await {
            Ok(pg) => server.pg = Some(pg),
            Err(e)
                if e.0.contains("no initdb/pg_ctl")
                    && std::env::var_os("SERAI_DATABASE_URL").is_some() =>
            {
                eprintln!("skipped: {e}");
                return None;
            }
            Err(e) => panic!("starting a throwaway TLS server: {e}"),
        }
        write(&server.ca_file, &ca_pem);
        write(&server.other_ca_file, &other_ca_pem);
        Some(server)
    }

    fn port(&self) -> u16 {
        self.pg.as_ref().expect("running").port
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(pg) = self.pg.take() {
            // Drop may run inside a runtime; a fresh thread with its own runtime is always safe.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                if let Err(e) = rt.block_on(pg.stop()) {
                    eprintln!("warning: the TLS test server was not stopped: {e}");
                }
            })
            .join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the TLS connection of this session is encrypted, by the server's own account.
async fn ssl_in_use(client: &tokio_postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

/// Connects with `url`; the error's text when refused.
async fn refused(url: &str) -> String {
    match persistence::connect(url, None).await {
        Ok(_) => panic!("{url} connected"),
        Err(e) => {
            eprintln!("refused as expected: {e}");
            e.to_string()
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sslmode_against_a_server_that_takes_only_tls() {
    let Some(server) = TlsServer::start().await else {
        return;
    };
    let port = server.port();
    let (ca_file, other_ca_file) = (server.ca_file.display(), server.other_ca_file.display());

    // The certificate names "localhost": connect there by name (hostaddr skips the resolver).
    let by_name = |query: &str| {
        format!(
            "postgresql://postgres@localhost:{port}/postgres?hostaddr=127.0.0.1&connect_timeout=10&{query}"
        )
    };
    let by_ip = |query: &str| {
        format!("postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=10&{query}")
    };

    // verify-full with the right CA: connected, encrypted, answers.
    let client = persistence::connect(
        &by_name(&format!("sslmode=verify-full&sslrootcert={ca_file}")),
        None,
    )
    .await
    .expect("verify-full with the server's CA connects");
    assert!(ssl_in_use(&client).await);
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);

    // A CA that did not sign the server's certificate.
    let e = refused(&by_name(&format!(
        "sslmode=verify-full&sslrootcert={other_ca_file}"
    )))
    .await;
    assert!(
        e.contains("certificate verify failed: unknown issuer"),
        "{e}"
    );
    assert!(
        e.contains(&format!("localhost:{port} (sslmode=verify-full)")),
        "{e}"
    );
    let e = refused(&by_ip(&format!(
        "sslmode=verify-ca&sslrootcert={other_ca_file}"
    )))
    .await;
    assert!(
        e.contains("certificate verify failed: unknown issuer"),
        "{e}"
    );

    // The right CA, but a host the certificate does not name.
    let e = refused(&by_ip(&format!(
        "sslmode=verify-full&sslrootcert={ca_file}"
    )))
    .await;
    assert!(
        e.contains("certificate not valid for name '127.0.0.1' (it is for: localhost)"),
        "{e}"
    );
    assert!(
        e.contains(&format!("127.0.0.1:{port} (sslmode=verify-full)")),
        "{e}"
    );
    // verify-ca checks the chain only: the same host is fine.
    let client = persistence::connect(
        &by_ip(&format!("sslmode=verify-ca&sslrootcert={ca_file}")),
        None,
    )
    .await
    .expect("verify-ca does not check the name");
    assert!(ssl_in_use(&client).await);

    // require and prefer encrypt without any CA.
    for mode in ["require", "prefer"] {
        let client = persistence::connect(&by_ip(&format!("sslmode={mode}")), None)
            .await
            .unwrap_or_else(|e| panic!("sslmode={mode} connects: {e}"));
        assert!(ssl_in_use(&client).await, "sslmode={mode} encrypts");
    }
    // As in libpq, a CA given with require is checked.
    let e = refused(&by_ip(&format!(
        "sslmode=require&sslrootcert={other_ca_file}"
    )))
    .await;
    assert!(
        e.contains("certificate verify failed: unknown issuer"),
        "{e}"
    );

    // disable: the server takes TCP only over TLS.
    let e = refused(&by_ip("sslmode=disable")).await;
    assert!(
        e.contains("no pg_hba.conf entry") && e.contains("no encryption"),
        "{e}"
    );
    assert!(
        e.contains(&format!("127.0.0.1:{port} (sslmode=disable)")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_pool_takes_the_ca_from_the_config() {
    let Some(server) = TlsServer::start().await else {
        return;
    };
    let port = server.port();

    // What SERAI_DATABASE_URL and SERAI_DATABASE_CA_FILE would say.
    let url = format!(
        "postgresql://postgres@localhost:{port}/postgres?hostaddr=127.0.0.1&sslmode=verify-full"
    );
    let mut config = Config::for_test(&url);
    config.database_ca_file = Some(server.ca_file.clone());
    let db = Db::connect_with(
        &config.database_url,
        &serai::node::db_settings(&config),
        Dialect::Postgres,
        Metrics::new("tls"),
    )
    .expect("pool");
    db.ping().await.expect("the pool connects with verify-full");
    let encrypted = db
        .transact("test_tls", |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                        &[],
                    )
                    .await?;
                Ok(row.get::<_, bool>(0))
            })
        })
        .await
        .expect("a transaction over TLS");
    assert!(encrypted);

    // The wrong CA: the pool's error says where and why.
    let settings = DbSettings {
        ca_file: Some(server.other_ca_file.clone()),
        ..DbSettings::default()
    };
    let db = Db::connect_with(&url, &settings, Dialect::Postgres, Metrics::new("tls")).unwrap();
    let e = db
        .ping()
        .await
        .expect_err("the wrong CA is refused")
        .to_string();
    eprintln!("refused as expected: {e}");
    assert!(
        e.starts_with(&format!(
            "cannot connect to the database at localhost:{port} (sslmode=verify-full): \
             error performing TLS handshake: certificate verify failed: unknown issuer"
        )),
        "{e}"
    );

    // A CA file that is not there fails when the pool is built, not at first use.
    let settings = DbSettings {
        ca_file: Some(server.dir.join("missing.pem")),
        ..DbSettings::default()
    };
    let e = Db::connect_with(&url, &settings, Dialect::Postgres, Metrics::new("tls"))
        .expect_err("a missing CA file is refused")
        .to_string();
    assert!(e.contains("missing.pem"), "{e}");
}
