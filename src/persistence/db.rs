//! The database handle: a deadpool of tokio-postgres connections plus the critical path.

use std::path::PathBuf;
use std::time::Duration;

use deadpool_postgres::{ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, Timeouts};
use futures_util::future::BoxFuture;
pub use tokio_postgres::Transaction;
use tokio_postgres::{error::SqlState, IsolationLevel as Isolation};

use super::connect::Target;
use super::retry::Backoff;
use super::tls::explain;
use crate::config::Dialect;
use crate::metrics::Metrics;
use crate::request::{current_deadline, Failure, Faults};
use std::sync::Arc;

/// Errors of the persistence layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {}", sql_detail(.0))]
    Sql(#[from] tokio_postgres::Error),
    /// No connection could be made: to which server(s), and why (refused, TLS, the
    /// server's own refusal such as pg_hba.conf or a bad password).
    #[error("cannot connect to the database at {server}: {}", sql_detail(.source))]
    Connect {
        server: String,
        source: tokio_postgres::Error,
    },
    /// The row is owned by a newer claim: this node's copy is stale.
    #[error("fenced: {0} is owned by a newer claim")]
    Fenced(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A rule of the change itself refused it (e.g. not enough gold); never retried.
    #[error("{0}")]
    Rejected(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// The connection failed while committing: the transaction may or may not have been
    /// applied. Never retried blindly (that could apply a trade twice); the caller must
    /// reload its state from the database.
    #[error("commit outcome unknown: {0}")]
    CommitUnknown(String),
    /// A live owner holds the entity's row (its lease is fresh): not claimed, nothing
    /// changed; it hands the row over by releasing it.
    #[error("owned by live node {0}")]
    Claimed(String),
    /// The request's idempotency key is stored already: the transaction rolled back, and the
    /// stored answer is the answer.
    #[error("this request was applied before")]
    DuplicateRequest,
}

/// The SQLSTATE and server message of a database error (tokio-postgres prints only "db error"),
/// or any other error with its causes (it prints only "error performing TLS handshake").
fn sql_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.code().code(), db.severity(), db.message()),
        None => explain(e),
    }
}

/// Whether running the same work again may succeed after this error: serialization failures
/// (40001), deadlocks, and lost or unavailable connections.
fn sql_retryable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || code.code().starts_with("08")
        }
        None => e.is_closed() || e.to_string().contains("connection"),
    }
}

impl DbError {
    /// SQLSTATE of the underlying error, if any.
    pub fn sqlstate(&self) -> Option<&SqlState> {
        match self {
            DbError::Sql(e) | DbError::Connect { source: e, .. } => e.code(),
            _ => None,
        }
    }

    /// What the failed call means for its request. Everything before a commit rolled back
    /// (or never started) and is *not run*; only a commit that got no answer *may have run*.
    pub fn failure(&self) -> Failure {
        match self {
            DbError::CommitUnknown(m) => Failure::may_have_run(format!("database commit: {m}")),
            DbError::Unavailable(m) => Failure::not_run(format!("database unavailable: {m}")),
            DbError::Fenced(m) => Failure::not_run(format!("{m} moved to another owner")),
            DbError::Claimed(m) => Failure::not_run(format!("still owned by live node {m}")),
            other => Failure::not_run(format!("database: {other}")),
        }
    }

    /// Whether the work may have been applied (its commit got no answer).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, DbError::CommitUnknown(_))
    }

    /// Whether the server refused the data itself: SQLSTATE class 22 (data exception: bad
    /// byte, value out of range …) or 23 (integrity constraint). Such a failure belongs to a
    /// row, so a batch that fails this way can be split to find it. Any other non-retryable
    /// error (missing column, permission, statement timeout) would fail every row alike, and
    /// must never make the backlog look like poison.
    pub fn is_bad_row(&self) -> bool {
        self.sqlstate()
            .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"))
    }

    /// Whether running the same work again may succeed: serialization failures (40001),
    /// deadlocks, and lost or unavailable connections.
    pub fn is_retryable(&self) -> bool {
        match self {
            DbError::Unavailable(_) => true,
            DbError::Sql(e) | DbError::Connect { source: e, .. } => sql_retryable(e),
            _ => false,
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => DbError::Sql(e),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

/// A cloneable handle on the node's connection pool.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    dialect: Dialect,
    metrics: Arc<Metrics>,
    faults: Arc<Faults>,
    /// How long the critical path keeps retrying a transaction.
    retry_budget: Duration,
    /// A node's ownership lasts this long past its last heartbeat (the membership timeout).
    lease_timeout: Duration,
    /// `host:port (sslmode=…)`, named by connection errors.
    server: Arc<str>,
}

/// The pool's size and the deadlines of every database wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSettings {
    pub pool_size: usize,
    /// Connecting (and recycling a connection) gives up after this.
    pub connect_timeout: Duration,
    /// Waiting for a free connection gives up after this: the backpressure answer of a busy
    /// or unreachable database ("not run, try again").
    pub pool_wait: Duration,
    /// The server cancels any statement running longer (`statement_timeout`).
    pub statement_timeout: Duration,
    /// TCP keepalive: a silently dropped connection is noticed after about 4× this.
    pub keepalive_idle: Duration,
    /// The critical path stops retrying a failed transaction after this, so a request learns
    /// of an outage well within its own deadline.
    pub retry_budget: Duration,
    /// A node's ownership of its rows lasts this long past its last heartbeat (the
    /// membership timeout): claims over a live owner wait for it to hand over.
    pub lease_timeout: Duration,
    /// The CA certificates (PEM) the server's certificate must chain to, unless the URL's
    /// `sslrootcert` names them (the `database_ca_file` setting).
    pub ca_file: Option<PathBuf>,
}

impl Default for DbSettings {
    fn default() -> Self {
        DbSettings {
            pool_size: 16,
            connect_timeout: Duration::from_secs(2),
            pool_wait: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(5),
            keepalive_idle: Duration::from_secs(2),
            retry_budget: Duration::from_millis(1500),
            lease_timeout: Duration::from_secs(3),
            ca_file: None,
        }
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dialect", &self.dialect)
            .field("server", &self.server)
            .field("status", &self.pool.status())
            .finish()
    }
}

/// How many times the critical path retries a transaction before giving up.
const MAX_TRANSACT_ATTEMPTS: u32 = 10;

impl Db {
    /// Builds a pool of `pool_size` with the default deadlines (see [`DbSettings`]).
    pub fn connect(
        url: &str,
        pool_size: usize,
        dialect: Dialect,
        metrics: Arc<Metrics>,
    ) -> Result<Db, DbError> {
        let settings = DbSettings {
            pool_size,
            ..DbSettings::default()
        };
        Db::connect_with(url, &settings, dialect, metrics)
    }

    /// Builds the pool; `url`'s `sslmode` (and CA) pick how it is secured. No connection is
    /// made until first use, but a bad URL or CA file fails here. Every wait has a deadline:
    /// deadpool's timeouts default to none and TCP keepalive to two hours, so without these a
    /// dead or silently partitioned database would hang callers (and the heartbeat) forever.
    pub fn connect_with(
        url: &str,
        settings: &DbSettings,
        dialect: Dialect,
        metrics: Arc<Metrics>,
    ) -> Result<Db, DbError> {
        let mut target = Target::parse(url, settings.ca_file.as_deref())?;
        let server = Arc::from(target.server());
        let pg = target.pg_mut();
        pg.connect_timeout(settings.connect_timeout);
        pg.application_name("serai");
        pg.keepalives(true);
        pg.keepalives_idle(settings.keepalive_idle);
        pg.keepalives_interval(settings.keepalive_idle);
        pg.keepalives_retries(3);
        // Server-side bound on any statement (both PostgreSQL and CockroachDB read it).
        let options = format!(
            "{} -c statement_timeout={}",
            pg.get_options().unwrap_or_default(),
            settings.statement_timeout.as_millis()
        );
        pg.options(options.trim());
        let manager = target.into_manager(ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        });
        let timeouts = Timeouts {
            wait: Some(settings.pool_wait),
            create: Some(settings.connect_timeout),
            recycle: Some(settings.connect_timeout),
        };
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .timeouts(timeouts)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        Ok(Db {
            pool,
            dialect,
            metrics,
            faults: Arc::default(),
            retry_budget: settings.retry_budget,
            lease_timeout: settings.lease_timeout,
            server,
        })
    }

    /// `host:port (sslmode=…)` of the database this pool connects to.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// How long a node's ownership lasts past its last heartbeat.
    pub fn lease_timeout(&self) -> Duration {
        self.lease_timeout
    }

    /// How long a claim waits for a live owner to hand over: a lease, and a little more.
    pub fn claim_wait(&self) -> Duration {
        self.lease_timeout + Duration::from_millis(500)
    }

    /// Test hooks: see [`Faults`].
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// A pooled connection; the wait ends at the pool's own timeout or at the current
    /// request's deadline, whichever comes first.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        let Some(deadline) = current_deadline() else {
            return self.pool.get().await.map_err(|e| self.pool_error(e));
        };
        match tokio::time::timeout_at(deadline.instant(), self.pool.get()).await {
            Ok(client) => client.map_err(|e| self.pool_error(e)),
            Err(_) => Err(DbError::Unavailable(
                "no database connection before the request's deadline".into(),
            )),
        }
    }

    /// A failed wait for a pooled connection; a failure to make one names the server.
    fn pool_error(&self, e: PoolError) -> DbError {
        match e {
            PoolError::Backend(source) => DbError::Connect {
                server: self.server.to_string(),
                source,
            },
            PoolError::Timeout(deadpool_postgres::TimeoutType::Create) => {
                DbError::Unavailable(format!(
                    "no connection to {} within the connect timeout",
                    self.server
                ))
            }
            other => other.into(),
        }
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Runs `work` in one SERIALIZABLE transaction and commits; on a retryable error the whole
    /// transaction is run again with backoff. Returns only after the commit succeeded. `op`
    /// names the transaction in the metrics (`serai_db_write_duration_seconds{op}`).
    pub async fn transact<T, F>(&self, op: &'static str, work: F) -> Result<T, DbError>
    where
        F: for<'t> Fn(&'t Transaction<'t>) -> BoxFuture<'t, Result<T, DbError>>,
    {
        self.transact_at(op, Isolation::Serializable, work).await
    }

    /// Like [`Db::transact`] at READ COMMITTED, for changes made only of guarded relative
    /// updates (`x = x + d WHERE … AND x + d >= 0`, fenced by epoch): each statement re-checks
    /// its guard on the latest row, so hot rows (a market's quota) do not abort on 40001.
    /// CockroachDB runs it SERIALIZABLE (its default; READ COMMITTED is a cluster option there).
    pub async fn transact_guarded<T, F>(&self, op: &'static str, work: F) -> Result<T, DbError>
    where
        F: for<'t> Fn(&'t Transaction<'t>) -> BoxFuture<'t, Result<T, DbError>>,
    {
        let level = match self.dialect {
            Dialect::Postgres => Isolation::ReadCommitted,
            Dialect::Cockroach => Isolation::Serializable,
        };
        self.transact_at(op, level, work).await
    }

    async fn transact_at<T, F>(
        &self,
        op: &'static str,
        level: Isolation,
        work: F,
    ) -> Result<T, DbError>
    where
        F: for<'t> Fn(&'t Transaction<'t>) -> BoxFuture<'t, Result<T, DbError>>,
    {
        let started = std::time::Instant::now();
        let result = self.transact_retried(op, level, work).await;
        self.record_write(op, started, &result);
        result
    }

    async fn transact_retried<T, F>(
        &self,
        op: &'static str,
        level: Isolation,
        work: F,
    ) -> Result<T, DbError>
    where
        F: for<'t> Fn(&'t Transaction<'t>) -> BoxFuture<'t, Result<T, DbError>>,
    {
        // Interactive callers wait on this: about 1.5 s of retries at most, then they get a
        // clear "try again" rather than a request hanging for many seconds.
        let mut backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(400));
        let started = std::time::Instant::now();
        loop {
            let attempt = self.transact_once(level, &work).await;
            self.count_attempt(op, &attempt);
            match attempt {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.is_retryable()
                        && backoff.attempts() < MAX_TRANSACT_ATTEMPTS
                        && started.elapsed() + backoff.peek() < self.retry_budget
                        && current_deadline().is_none_or(|d| !d.passed()) =>
                {
                    tracing::debug!(error = %e, attempt = backoff.attempts(), "retrying transaction");
                    self.metrics.db_retries.increment(1);
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn transact_once<T, F>(&self, level: Isolation, work: &F) -> Result<T, DbError>
    where
        F: for<'t> Fn(&'t Transaction<'t>) -> BoxFuture<'t, Result<T, DbError>>,
    {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(level)
            .start()
            .await?;
        let value = work(&tx).await?;
        // Past the request's deadline its caller has been told it was not run (or hears so
        // now): roll back rather than commit something nobody waits for.
        if current_deadline().is_some_and(|d| d.passed()) {
            return Err(DbError::Unavailable(
                "the request's deadline passed before its commit".into(),
            ));
        }
        match tx.commit().await {
            Ok(()) if Faults::take(&self.faults.commit_unknown) => Err(DbError::CommitUnknown(
                "injected: the commit's answer was lost".into(),
            )),
            Ok(()) => Ok(value),
            // A serialization failure at commit means it was rolled back: safe to run again.
            Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {
                Err(DbError::Sql(e))
            }
            Err(e) if e.code().is_none() => Err(DbError::CommitUnknown(e.to_string())),
            Err(e) => Err(DbError::Sql(e)),
        }
    }
}
