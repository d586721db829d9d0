//! Attacks per second on one boss from every node: `--clients` closed-loop sockets spread over
//! the nodes (round robin), each keeping one RPC outstanding for `--seconds`. The target is
//! pluggable: `--attack-rpc` and `--attack-payload`, a template in which `{character_id}`
//! (one character made per client, so the target needs it), `{request_id}` (a fresh UUID per
//! call) and `{event_id}` (`--event-id`) are replaced; in `--event-create` also `{starts_at}`
//! (a minute ago) and `{ends_at}` (in an hour). `--event-create` (a JSON body) is POSTed
//! to node 0's `/admin/world/events` first. The baseline is the built-in `echo` RPC with the
//! same payloads on the same sockets, run first.
//!
//! ```text
//! serai-world-load --part attacks --attack-rpc attack_world_boss \
//!   --attack-payload '{"event_id":"{event_id}","character_id":"{character_id}","request_id":"{request_id}"}' \
//!   --event-create '{"id":"{event_id}","kind":"boss","title":"Bench","max_hp":1000000000000,
//!     "starts_at":"{starts_at}","ends_at":"{ends_at}","reward_gold":1,"reward_item":null}'
//! ```

use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::client::Client;
use crate::common::http;
use crate::common::percentile::percentile;
use crate::common::BoxError;
use crate::nodes::Node;

/// What the attack part sends.
#[derive(Debug, Clone)]
pub struct Target {
    pub rpc: String,
    pub payload: String,
    pub event_id: String,
    pub event_create: Option<String>,
    pub admin_token: String,
}

/// One closed-loop run.
pub struct Run {
    pub name: String,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub lat_us: Vec<u64>,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    pub fn p(&self, q: f64) -> f64 {
        percentile(&self.lat_us, q)
    }
}

struct Attacker {
    client: Client,
    character: Option<Uuid>,
}

fn fill(template: &str, target: &Target, character: Option<Uuid>) -> String {
    let mut s = template.replace("{event_id}", &target.event_id);
    if s.contains("{starts_at}") || s.contains("{ends_at}") {
        let now = chrono::Utc::now();
        let at =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        s = s
            .replace("{starts_at}", &at(now - chrono::Duration::minutes(1)))
            .replace("{ends_at}", &at(now + chrono::Duration::hours(1)));
    }
    if let Some(c) = character {
        s = s.replace("{character_id}", &c.to_string());
    }
    if s.contains("{request_id}") {
        s = s.replace("{request_id}", &Uuid::new_v4().to_string());
    }
    s
}

async fn create_event(nodes: &[Node], target: &Target) -> Result<(), BoxError> {
    let Some(body) = &target.event_create else {
        return Ok(());
    };
    let body = fill(body, target, None);
    let (status, text) = http::request(
        &nodes[0].admin_addr.to_string(),
        "POST",
        "/admin/world/events",
        &[("Authorization", format!("Bearer {}", target.admin_token))],
        &body,
        Duration::from_secs(10),
    )
    .await?;
    if !(200..300).contains(&status) {
        return Err(format!("POST /admin/world/events: HTTP {status}: {text}").into());
    }
    Ok(())
}

async fn connect(
    nodes: &[Node],
    clients: usize,
    target: &Target,
) -> Result<Vec<Attacker>, BoxError> {
    let run = Uuid::new_v4().simple().to_string()[..8].to_string();
    let needs_character = target.payload.contains("{character_id}");
    let mut out = Vec::with_capacity(clients);
    let indexes: Vec<usize> = (0..clients).collect();
    for chunk in indexes.chunks(16) {
        let batch = futures_util::future::join_all(chunk.iter().map(|&i| {
            let addr = nodes[i % nodes.len()].client_addr;
            let device = format!("world-attack-{run}-{i}");
            async move {
                let mut client = Client::connect(addr, &device).await?;
                let character = match needs_character {
                    true => Some(client.create_character(&format!("Raider {i}")).await?),
                    false => None,
                };
                Ok::<_, BoxError>(Attacker { client, character })
            }
        }))
        .await;
        for a in batch {
            out.push(a?);
        }
    }
    Ok(out)
}

/// Every attacker calls `rpc` in a closed loop for `seconds`.
async fn closed_loop(
    attackers: Vec<Attacker>,
    rpc: &str,
    target: &Target,
    seconds: u64,
) -> (Vec<Attacker>, Run) {
    let began = Instant::now();
    let end = began + Duration::from_secs(seconds);
    let tasks: Vec<_> = attackers
        .into_iter()
        .map(|mut a| {
            let (rpc, target) = (rpc.to_string(), target.clone());
            tokio::spawn(async move {
                let (mut ok, mut errors, mut first, mut lat) = (0u64, 0u64, None, Vec::new());
                while Instant::now() < end {
                    let payload = fill(&target.payload, &target, a.character);
                    let t = Instant::now();
                    match a.client.call(&rpc, &payload).await {
                        Ok(Ok(_)) => {
                            ok += 1;
                            lat.push(t.elapsed().as_micros() as u64);
                        }
                        Ok(Err(e)) => {
                            errors += 1;
                            first.get_or_insert(e);
                        }
                        Err(e) => {
                            first.get_or_insert(e.to_string());
                            errors += 1;
                            break;
                        }
                    }
                }
                (a, ok, errors, first, lat)
            })
        })
        .collect();
    let mut run = Run {
        name: rpc.to_string(),
        ok: 0,
        errors: 0,
        first_error: None,
        seconds: 0.0,
        lat_us: Vec::new(),
    };
    let mut back = Vec::new();
    for t in tasks {
        if let Ok((a, ok, errors, first, lat)) = t.await {
            back.push(a);
            run.ok += ok;
            run.errors += errors;
            if run.first_error.is_none() {
                run.first_error = first;
            }
            run.lat_us.extend(lat);
        }
    }
    run.seconds = began.elapsed().as_secs_f64();
    run.lat_us.sort_unstable();
    (back, run)
}

/// The echo baseline, then the target, on the same sockets.
pub async fn run(
    nodes: &[Node],
    clients: usize,
    seconds: u64,
    target: &Target,
) -> Result<Vec<Run>, BoxError> {
    create_event(nodes, target).await?;
    let attackers = connect(nodes, clients, target).await?;
    eprintln!(
        "attacks: {} clients on {} nodes, {} s per run",
        attackers.len(),
        nodes.len(),
        seconds
    );
    let (attackers, echo) = closed_loop(attackers, "echo", target, seconds).await;
    let (_, attack) = closed_loop(attackers, &target.rpc, target, seconds).await;
    Ok(vec![echo, attack])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled() {
        let t = Target {
            rpc: "attack_world_boss".into(),
            payload: r#"{"event_id":"{event_id}","character_id":"{character_id}","request_id":"{request_id}"}"#.into(),
            event_id: "boss-1".into(),
            event_create: None,
            admin_token: String::new(),
        };
        let c = Uuid::new_v4();
        let v: serde_json::Value = serde_json::from_str(&fill(&t.payload, &t, Some(c))).unwrap();
        assert_eq!(v["event_id"], "boss-1");
        assert_eq!(v["character_id"], c.to_string());
        assert!(v["request_id"].as_str().unwrap().parse::<Uuid>().is_ok());
    }
}
