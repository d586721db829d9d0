//! Part 2, failover: node 2 of three real processes is SIGKILLed under a client calling a
//! character it owns; the time until the first successful RPC after the kill.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serai::routing::ring::Ring;
use uuid::Uuid;

use crate::args::Args;
use crate::client::{character_ref, Client};
use crate::common::BoxError;
use crate::processes::{members, spawn_node, wait_members, Proc};

/// One timed failover.
pub struct Failover {
    pub moved_to: String,
    /// Kill → node 0's and node 1's views without node 2.
    pub view: [Option<Duration>; 2],
    /// Kill → answer of the first successful RPC sent after the kill.
    pub first_ok: Duration,
    pub errors: Vec<String>,
}

/// Calls `get_character` in a loop; records (sent, answered, outcome).
type Events = Arc<Mutex<Vec<(Instant, Instant, Result<(), String>)>>>;

async fn failover_once(
    procs: &mut [Option<Proc>],
    mut client: Client,
    vnodes: usize,
    bin: &PathBuf,
    url: &str,
) -> Result<(Client, Failover), BoxError> {
    let ids: Vec<String> = members(procs[0].as_ref().unwrap().admin).await;
    if ids.len() != 3 {
        return Err(format!("node 0 sees {ids:?}, not three members").into());
    }
    let ring = Ring::new(&ids, vnodes);
    // The previous runs' characters go first (8 per account at most).
    let listed = client.must("list_characters", "{}").await?;
    for c in listed["characters"].as_array().into_iter().flatten() {
        if let Some(id) = c["id"].as_str().and_then(|i| i.parse().ok()) {
            client.delete_character(id).await?;
        }
    }
    // A character owned by node-2 (made over node 0's client API; 8 per account at most).
    let mut made = Vec::new();
    let target = loop {
        let id = client.create_character("Failover").await?;
        if ring.owner("character", id.as_bytes()) == Some("node-2") {
            break id;
        }
        made.push(id);
        if made.len() >= 6 {
            for id in made.drain(..) {
                client.delete_character(id).await?;
            }
        }
    };
    for id in made {
        client.delete_character(id).await?;
    }
    let payload = character_ref(target);
    // Activate it on node 2 (its claim now names node-2).
    client.must("get_character", &payload).await?;
    let survivors: Vec<String> = ids.iter().filter(|i| *i != "node-2").cloned().collect();
    let moved_to = Ring::new(&survivors, vnodes)
        .owner("character", target.as_bytes())
        .unwrap_or("?")
        .to_string();

    // The client calls in a loop on a task of its own and is handed back when it stops.
    let events: Events = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (ev, st) = (events.clone(), stop.clone());
    let looper = tokio::spawn(async move {
        while !st.load(Ordering::Relaxed) {
            let sent = Instant::now();
            let outcome = match client.call("get_character", &payload).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(format!("transport: {e}")),
            };
            let failed = outcome.is_err();
            ev.lock().unwrap().push((sent, Instant::now(), outcome));
            if failed {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        client
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut victim = procs[2].take().unwrap();
    victim.child.kill()?; // SIGKILL
    let killed = Instant::now();
    victim.child.wait()?;
    drop(victim);

    let mut view = [None, None];
    let deadline = killed + Duration::from_secs(30);
    let first_ok = loop {
        for (k, v) in view.iter_mut().enumerate() {
            if v.is_none() {
                let m = members(procs[k].as_ref().unwrap().admin).await;
                if m.len() == 2 && !m.iter().any(|i| i == "node-2") {
                    *v = Some(killed.elapsed());
                }
            }
        }
        let found = events
            .lock()
            .unwrap()
            .iter()
            .find(|(sent, _, r)| *sent >= killed && r.is_ok())
            .map(|(_, done, _)| *done - killed);
        if let Some(d) = found {
            // Keep watching the views a little longer so both are timed.
            if view.iter().all(Option::is_some) || killed.elapsed() > Duration::from_secs(10) {
                break d;
            }
        }
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            return Err("no successful RPC within 30 s of the kill".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    stop.store(true, Ordering::Relaxed);
    let client = looper.await?;
    let errors = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, done, r)| match r {
            Err(e) if *done >= killed => Some(e.clone()),
            _ => None,
        })
        .collect();

    // Bring node 2 back for the next run.
    procs[2] = Some(spawn_node(bin, url, 2)?);
    let live: Vec<&Proc> = procs.iter().flatten().collect();
    wait_members(&live, 3, Duration::from_secs(30)).await?;
    Ok((
        client,
        Failover {
            moved_to,
            view,
            first_ok,
            errors,
        },
    ))
}

pub fn failover(args: &Args) -> Result<Vec<Failover>, BoxError> {
    let bin = match &args.serai_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("serai"),
    };
    if !bin.exists() {
        return Err(format!(
            "{} not found: cargo build --release --bin serai (or --serai-bin)",
            bin.display()
        )
        .into());
    }
    if let (Ok(me), Ok(it)) = (
        std::env::current_exe().and_then(|p| p.metadata()?.modified()),
        bin.metadata().and_then(|m| m.modified()),
    ) {
        if it + Duration::from_secs(600) < me {
            eprintln!(
                "warning: {} is older than this benchmark; rebuild it (cargo build --release --bin serai)",
                bin.display()
            );
        }
    }
    let defaults = serai::config::RawConfig::default().validate()?;
    println!();
    println!(
        "== failover: {} as 3 processes, default heartbeat {} ms, membership timeout {} ms",
        bin.display(),
        defaults.heartbeat_interval.as_millis(),
        defaults.membership_timeout.as_millis()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let db = serai::localdb::TestDatabase::create().await?;
        let mut procs: Vec<Option<Proc>> = Vec::new();
        for i in 0..3 {
            procs.push(Some(spawn_node(&bin, &db.url, i)?));
        }
        let live: Vec<&Proc> = procs.iter().flatten().collect();
        wait_members(&live, 3, Duration::from_secs(60)).await?;
        let node0 = procs[0].as_ref().unwrap().client;
        let mut client =
            Client::connect(node0, &format!("cluster-bench-{}", Uuid::new_v4())).await?;
        let mut out = Vec::new();
        for run in 1..=args.failovers {
            let (c, f) =
                failover_once(&mut procs, client, defaults.ring_vnodes, &bin, &db.url).await?;
            client = c;
            eprintln!(
                "failover {run}: first successful RPC {:.3} s after the kill",
                f.first_ok.as_secs_f64()
            );
            out.push(f);
        }
        let _ = client.ws.close(None).await;
        // Drain the survivors (SIGTERM), then drop the database.
        for p in procs.iter().flatten() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(p.child.id().to_string())
                .status();
        }
        for p in procs.iter_mut().flatten() {
            let _ = p.child.wait();
        }
        drop(procs);
        drop(db);
        Ok(out)
    })
}
