//! The databases handed out: the one `serai dev` keeps, and a fresh one per test.

use uuid::Uuid;

use super::{env_database_url, LocalDbError, LocalServer};

/// URL of the database `serai dev` uses: `SERAI_DATABASE_URL` as is when set, else database
/// `serai` (created if missing, kept between runs) on the server [`LocalServer::obtain`] finds.
pub async fn dev_database() -> Result<String, LocalDbError> {
    if let Some(url) = env_database_url() {
        return Ok(url);
    }
    LocalServer::obtain().await?.ensure_database("serai").await
}

/// A fresh, empty database for one test, dropped when the value is dropped.
pub struct TestDatabase {
    pub url: String,
    pub name: String,
    server: LocalServer,
}

impl TestDatabase {
    /// Creates `serai_test_<uuid>` on the server [`LocalServer::obtain`] finds.
    pub async fn create() -> Result<TestDatabase, LocalDbError> {
        let server = LocalServer::obtain().await?;
        let name = format!("serai_test_{}", Uuid::new_v4().simple());
        let url = server.ensure_database(&name).await?;
        Ok(TestDatabase { url, name, server })
    }

    /// The server the database lives on.
    pub fn server(&self) -> &LocalServer {
        &self.server
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime; a fresh thread with its own runtime is always safe.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                if let Err(e) = rt.block_on(server.drop_database(&name)) {
                    eprintln!("warning: test database {name} was not dropped: {e}");
                }
            }
        })
        .join();
    }
}
