//! Shutdown is a value passed around: every long-running task holds a [`Shutdown`] and stops
//! when it fires. SIGINT/SIGTERM fire it in `main`; tests fire it by hand.

use tokio_util::sync::CancellationToken;

/// A cloneable signal that the node is stopping.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Asks everything holding this value (or a clone) to stop.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once [`Shutdown::trigger`] has been called.
    pub async fn wait(&self) {
        self.token.cancelled().await
    }

    /// Fires on SIGINT or SIGTERM.
    pub fn trigger_on_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("install SIGTERM handler");
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
            tracing::info!("signal received, shutting down");
            this.trigger();
        });
    }
}
