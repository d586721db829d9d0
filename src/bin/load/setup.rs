//! Setting the clients up: connected in batches, the catalog's choices read, each client's
//! characters made.

use std::time::Instant;

use crate::args::{Args, Target};
use crate::client::{Choices, Client};
use crate::common::BoxError;

pub async fn setup_clients(
    target: &Target,
    args: &Args,
) -> Result<(Vec<Client>, Choices), BoxError> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    eprintln!(
        "connecting {} clients to {}",
        args.clients, target.authority
    );
    let began = Instant::now();
    let mut clients = Vec::with_capacity(args.clients);
    // Connect in small batches: a burst of hundreds of device auths is not what is measured.
    for chunk in (0..args.clients).collect::<Vec<_>>().chunks(16) {
        let batch = futures_util::future::join_all(
            chunk
                .iter()
                .map(|&i| Client::connect(target, &args.server_key, i, &run_id)),
        )
        .await;
        for c in batch {
            clients.push(c?);
        }
    }
    if clients.is_empty() {
        return Err("--clients must be at least 1".into());
    }
    let catalog: serde_json::Value =
        serde_json::from_str(&clients[0].call("get_catalog", "{}").await?)?;
    let factions: Vec<String> = catalog["factions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect();
    // The richest background: the most buy/sell round trips before any refusal.
    let background = catalog["backgrounds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            Some((
                b["starting_gold"].as_i64()?,
                b["code"].as_str()?.to_string(),
            ))
        })
        .max()
        .map(|(_, code)| code)
        .ok_or("the catalog has no backgrounds")?;
    if factions.is_empty() {
        return Err("the catalog has no factions".into());
    }
    let choices = Choices {
        factions,
        background,
    };
    let mut ready = Vec::with_capacity(clients.len());
    let mut pending = clients.into_iter();
    loop {
        let chunk: Vec<Client> = pending.by_ref().take(16).collect();
        if chunk.is_empty() {
            break;
        }
        let done = futures_util::future::join_all(chunk.into_iter().map(|mut c| {
            let choices = choices.clone();
            let count = args.characters as usize;
            async move { c.prepare(&choices, count).await.map(|_| c) }
        }))
        .await;
        for c in done {
            ready.push(c?);
        }
    }
    let mut goods: Vec<(String, usize)> = Vec::new();
    for ch in ready.iter().flat_map(|c| &c.characters) {
        match goods.iter_mut().find(|(g, _)| *g == ch.good) {
            Some((_, n)) => *n += 1,
            None => goods.push((ch.good.clone(), 1)),
        }
    }
    eprintln!(
        "{} clients with {} character(s) each ready in {:.1} s ({} factions; goods traded: {})",
        ready.len(),
        args.characters,
        began.elapsed().as_secs_f64(),
        choices.factions.len(),
        goods
            .iter()
            .map(|(g, n)| format!("{g}×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((ready, choices))
}
