//! Part 1, the hop: the same `get_character` for characters owned by node A and by node B,
//! over A's socket and straight on `Router::ask`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serai::character::messages::GetCharacter;
use serai::character::CharacterSession;
use serai::request::Call;
use serai::routing::placement::Owner;
use serai::routing::Router;
use uuid::Uuid;

use crate::args::Args;
use crate::client::{character_ref, Client};
use crate::common::percentile::percentile;
use crate::common::BoxError;
use crate::in_process::{start_node, InProcessNode};

/// Latencies of one run, in nanoseconds, sorted.
pub struct Run {
    pub path: &'static str,
    pub owner: &'static str,
    pub conc: usize,
    pub seconds: f64,
    pub lat: Vec<u64>,
    pub errors: usize,
}

impl Run {
    pub fn pct_us(&self, p: f64) -> f64 {
        percentile(&self.lat, p)
    }
    pub fn rate(&self) -> f64 {
        self.lat.len() as f64 / self.seconds
    }
}

/// One WebSocket client with a character owned by A and one owned by B.
struct HopClient {
    client: Client,
    local: Uuid,
    remote: Uuid,
}

/// Creates characters on A until this client has one of each side (a character of a side
/// already covered is deleted again: 8 per account at most).
async fn hop_client(a: &InProcessNode, run: &str, i: usize) -> Result<HopClient, BoxError> {
    let mut client = Client::connect(a.client_addr, &format!("cluster-bench-{run}-{i}")).await?;
    let (mut local, mut remote) = (None, None);
    let mut n = 0;
    while local.is_none() || remote.is_none() {
        n += 1;
        let id = client.create_character(&format!("Bench {i} {n}")).await?;
        match a.router.placement().owner("character", id.as_bytes()) {
            Owner::Local if local.is_none() => local = Some(id),
            Owner::Remote(_) if remote.is_none() => remote = Some(id),
            _ => client.delete_character(id).await?,
        }
    }
    Ok(HopClient {
        client,
        local: local.unwrap(),
        remote: remote.unwrap(),
    })
}

/// Closed loop on the first `conc` clients: `get_character` on their local or remote character.
async fn ws_run(
    clients: Vec<HopClient>,
    conc: usize,
    remote: bool,
    args: &Args,
) -> (Vec<HopClient>, Run) {
    let warm_end = Instant::now() + Duration::from_secs(args.warmup);
    let end = warm_end + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    let mut idle = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        if i >= conc {
            idle.push(c);
            continue;
        }
        tasks.push(tokio::spawn(async move {
            let payload = character_ref(if remote { c.remote } else { c.local });
            let (mut lat, mut errors) = (Vec::new(), 0);
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let ok = matches!(c.client.call("get_character", &payload).await, Ok(Ok(_)));
                if t >= warm_end {
                    if ok {
                        lat.push(t.elapsed().as_nanos() as u64);
                    } else {
                        errors += 1;
                    }
                }
            }
            (c, lat, errors)
        }));
    }
    let mut run = Run {
        path: "ws get_character",
        owner: if remote { "remote" } else { "local" },
        conc,
        seconds: args.seconds as f64,
        lat: Vec::new(),
        errors: 0,
    };
    let mut back = Vec::new();
    for t in tasks {
        let (c, lat, errors) = t.await.expect("client task");
        back.push(c);
        run.lat.extend(lat);
        run.errors += errors;
    }
    back.extend(idle);
    run.lat.sort_unstable();
    (back, run)
}

/// Closed loop straight on `Router::ask` of node A, on a thread of its own (as an actix-web
/// worker would call it).
fn ask_run(router: Arc<Router>, ids: Vec<Uuid>, conc: usize, remote: bool, args: &Args) -> Run {
    let (warmup, seconds) = (args.warmup, args.seconds);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (lat, errors) = rt.block_on(async move {
        let warm_end = Instant::now() + Duration::from_secs(warmup);
        let end = warm_end + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..conc)
            .map(|i| {
                let (router, id) = (router.clone(), ids[i % ids.len()]);
                tokio::spawn(async move {
                    let (mut lat, mut errors) = (Vec::new(), 0usize);
                    loop {
                        let t = Instant::now();
                        if t >= end {
                            break;
                        }
                        let msg = GetCharacter {
                            call: Call::server(serai::request::Deadline::after(
                                Duration::from_secs(5),
                            )),
                        };
                        let ok = matches!(
                            router.ask::<CharacterSession, GetCharacter>(id, msg).await,
                            Ok(Ok(_))
                        );
                        if t >= warm_end {
                            if ok {
                                lat.push(t.elapsed().as_nanos() as u64);
                            } else {
                                errors += 1;
                            }
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        let (mut all, mut errs) = (Vec::new(), 0);
        for t in tasks {
            let (l, e) = t.await.expect("ask task");
            all.extend(l);
            errs += e;
        }
        (all, errs)
    });
    let mut lat = lat;
    lat.sort_unstable();
    Run {
        path: "Router::ask (no HTTP)",
        owner: if remote { "remote" } else { "local" },
        conc,
        seconds: seconds as f64,
        lat,
        errors,
    }
}

pub fn hop(args: &Args) -> Result<Vec<Run>, BoxError> {
    let setup_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    let db = setup_rt.block_on(serai::localdb::TestDatabase::create())?;
    eprintln!("hop: two nodes in this process on database {}", db.name);
    let a = start_node(&db.url, "bench-a")?;
    let b = start_node(&db.url, "bench-b")?;
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while [&a, &b].iter().any(|n| {
            n.membership.lock().unwrap().members.len() != 2
                || n.router.placement().members().count() != 2
        }) {
            if Instant::now() > deadline {
                return Err::<_, BoxError>("the two nodes did not see each other in 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let run_id = Uuid::new_v4().simple().to_string()[..8].to_string();
        let conc_max = args.clients.max(1);
        let (mut clients, ids) = setup_rt.block_on(async {
            let mut clients = Vec::new();
            let (mut local, mut remote) = (Vec::new(), Vec::new());
            for i in 0..conc_max {
                let c = hop_client(&a, &run_id, i).await?;
                local.push(c.local);
                remote.push(c.remote);
                clients.push(c);
            }
            Ok::<_, BoxError>((clients, (local, remote)))
        })?;
        eprintln!(
            "hop: {} clients on node A, each with a character owned by A and one by B",
            clients.len()
        );
        let mut runs = Vec::new();
        for conc in [1, conc_max] {
            for remote in [false, true] {
                let (back, run) = setup_rt.block_on(ws_run(clients, conc, remote, args));
                clients = back;
                runs.push(run);
            }
        }
        for conc in [1, conc_max] {
            for remote in [false, true] {
                let list = if remote { &ids.1 } else { &ids.0 };
                runs.push(ask_run(a.router.clone(), list.clone(), conc, remote, args));
            }
        }
        setup_rt.block_on(async {
            for mut c in clients {
                let _ = c.client.ws.close(None).await;
            }
        });
        Ok(runs)
    })();
    for n in [a, b] {
        n.shutdown.trigger();
        let _ = n.thread.join();
    }
    drop(setup_rt);
    drop(db);
    result
}
