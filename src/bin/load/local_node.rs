//! The node started in this process when no `--url` is given.

use std::net::SocketAddr;

use crate::common::BoxError;

/// A node in this process on a fresh database: defaults, but free ports and our server key.
pub struct LocalNode {
    pub addr: SocketAddr,
    pub shutdown: serai::shutdown::Shutdown,
    pub thread: std::thread::JoinHandle<()>,
}

pub fn start_local_node(server_key: &str) -> Result<LocalNode, BoxError> {
    let shutdown = serai::shutdown::Shutdown::new();
    let (tx, rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
    let key = server_key.to_string();
    let stop = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("serai-node".into())
        .spawn(move || {
            let system = actix_rt::System::new();
            let db = system.block_on(async move {
                let db = match serai::localdb::TestDatabase::create().await {
                    Ok(db) => db,
                    Err(e) => {
                        let _ = tx.send(Err(format!("local database: {e}")));
                        return None;
                    }
                };
                let mut config = match serai::config::RawConfig::default().validate() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return Some(db);
                    }
                };
                let any: SocketAddr = "127.0.0.1:0".parse().expect("loopback");
                config.client_addr = any;
                config.admin_addr = any;
                config.peer_addr = any;
                config.database_url = db.url.clone();
                config.server_key = key;
                let node = match serai::node::start(config, stop.clone()).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(format!("node: {e}")));
                        return Some(db);
                    }
                };
                let _ = tx.send(Ok(node.client_addr));
                if let Err(e) = node.wait().await {
                    eprintln!("warning: stopping the node: {e}");
                }
                Some(db)
            });
            // The node's pool goes with its runtime; only then is the database dropped, so no
            // pooled connection is cut under a task that still holds it.
            drop(system);
            drop(db);
        })?;
    let addr = rx
        .recv()
        .map_err(|_| "the node thread ended before starting")??;
    Ok(LocalNode {
        addr,
        shutdown,
        thread,
    })
}
