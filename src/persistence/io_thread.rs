//! Where database connections read and write their sockets: one thread of their own.
//!
//! A tokio-postgres connection is a task that must be polled for a response to reach the
//! query waiting on it. Spawned where the pool happened to open it, that task lands on an
//! actor arbiter or an HTTP worker, and a reply from the database then waits until that
//! thread is done with whatever it is running: a leaderboard batch measured 1.45 ms in the
//! database that commits in 0.67 ms on a connection nobody else shares the thread of. Here
//! every connection of the process (pools and single connections) connects and runs on one
//! runtime of its own, so an answer is read as soon as it arrives and only the wakeup of its
//! caller crosses threads.

use std::future::Future;
use std::sync::OnceLock;

use deadpool_postgres::Connect;
use futures_util::future::BoxFuture;
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, Error, Socket};

/// The runtime, started on first use and kept for the life of the process.
fn runtime() -> &'static Handle {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("serai-db-io")
                .enable_all()
                .build()
                .expect("the database I/O runtime starts (a thread and an epoll instance)")
        })
        .handle()
}

/// Connects with `pg` on the I/O thread and drives the connection there until its client
/// is dropped (or the server closes it). The returned task ends with the connection.
pub(crate) async fn connect<T>(pg: Config, tls: T) -> Result<(Client, JoinHandle<()>), Error>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let opened = runtime().spawn(async move {
        let (client, connection) = pg.connect(tls).await?;
        let driven = tokio::spawn(drive(connection));
        Ok((client, driven))
    });
    match opened.await {
        Ok(result) => result,
        // Only a panic inside tokio-postgres's connect could end the task otherwise.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn drive(connection: impl Future<Output = Result<(), Error>>) {
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "database connection failed");
    }
}

/// The pools' way to connect: [`connect`], with the TLS connector `sslmode` asked for.
pub(crate) struct OnIoThread<T> {
    pub(crate) tls: T,
}

impl<T> Connect for OnIoThread<T>
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    fn connect(&self, pg: &Config) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), Error>> {
        Box::pin(connect(pg.clone(), self.tls.clone()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_runtime_is_one_named_thread_that_outlives_its_callers() {
        let name = std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(
                super::runtime().spawn(async { std::thread::current().name().map(str::to_owned) }),
            )
            .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(name.as_deref(), Some("serai-db-io"));
        // A second caller's runtime, after the first one's is gone, still reaches it.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt.block_on(super::runtime().spawn(async { 1 })).is_ok());
    }
}
