//! A node in this process (the hop part): its own thread and actix System, its router and
//! membership at hand.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serai::routing::Router;

use crate::common::BoxError;

/// A node running in its own thread with its own actix System.
pub struct InProcessNode {
    pub client_addr: SocketAddr,
    pub router: Arc<Router>,
    pub membership: Arc<Mutex<serai::routing::membership::MembershipStatus>>,
    pub shutdown: serai::shutdown::Shutdown,
    pub thread: std::thread::JoinHandle<()>,
}

pub fn start_node(url: &str, node_id: &str) -> Result<InProcessNode, BoxError> {
    let mut config = serai::config::Config::for_test(url);
    config.node_id = node_id.to_string();
    let shutdown = serai::shutdown::Shutdown::new();
    let stop = shutdown.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(node_id.to_string())
        .spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                match serai::node::start(config, stop).await {
                    Ok(node) => {
                        let _ = tx.send(Ok((
                            node.client_addr,
                            node.services.router.clone(),
                            node.membership.clone(),
                        )));
                        if let Err(e) = node.wait().await {
                            eprintln!("warning: stopping the node: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        })?;
    let (client_addr, router, membership) = rx.recv().map_err(|_| "node thread ended")??;
    Ok(InProcessNode {
        client_addr,
        router,
        membership,
        shutdown,
        thread,
    })
}
