//! Before the load: a migrated database with market restock switched off, the clients'
//! accounts and characters, their starting state read from the database, and whether the
//! server takes `request_id` at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde_json::json;
use tokio_postgres::Client as Pg;
use uuid::Uuid;

use super::client::authenticate;
use super::load::{with_id, Caller, CharState, Final, Options, Player};

/// Connects the harness's own session (direct, never through the proxy).
pub async fn connect(url: &str) -> Result<Pg, String> {
    serai::persistence::connect(url, None)
        .await
        .map_err(|e| e.to_string())
}

/// `serai migrate` with the real binary, then restock off: markets only change by trades, so
/// goods are conserved exactly between caravans and markets (recovery would add stock).
pub async fn prepare_database(bin: &Path, url: &str, pg: &Pg) -> Result<(), String> {
    let out = tokio::process::Command::new(bin)
        .arg("migrate")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SERAI_DATABASE_URL", url)
        .output()
        .await
        .map_err(|e| format!("run {} migrate: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "serai migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    pg.execute("UPDATE trade_node_stock SET restock_per_min = 0", &[])
        .await
        .map_err(|e| format!("switching restock off: {e}"))?;
    Ok(())
}

/// Game data the clients need, read from the catalog tables.
pub struct World {
    /// (faction, home node)
    pub factions: Vec<(String, String)>,
    pub background: String,
    /// Every skill, prerequisites first (by tier): (code, cost).
    pub skills: Vec<(String, i64)>,
    /// Per market: the good with the largest stock, traded by every client there.
    pub goods: BTreeMap<String, String>,
}

pub async fn world(pg: &Pg) -> Result<World, String> {
    let err = |e: tokio_postgres::Error| format!("reading the catalog: {e}");
    let factions: Vec<(String, String)> = pg
        .query("SELECT code, home_node FROM faction ORDER BY code", &[])
        .await
        .map_err(err)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let background: String = pg
        .query_one(
            "SELECT code FROM background_archetype ORDER BY code LIMIT 1",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    let skills = pg
        .query(
            "SELECT code, cost::INT8 FROM skill_definition ORDER BY tier, code",
            &[],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut goods = BTreeMap::new();
    for (_, home) in &factions {
        let row = pg
            .query_one(
                "SELECT good FROM market_price_snapshot WHERE node = $1 ORDER BY quota DESC, good LIMIT 1",
                &[home],
            )
            .await
            .map_err(err)?;
        goods.insert(home.clone(), row.get(0));
    }
    if factions.is_empty() {
        return Err("the catalog has no factions".into());
    }
    Ok(World {
        factions,
        background,
        skills,
        goods,
    })
}

/// Whether the server takes `request_id`: a `create_character` with a valid `request_id` and a
/// name the game refuses. A server without the field refuses the payload itself ("unknown
/// field `request_id`"); one with it refuses the name. `Err` if neither answer came.
pub async fn probe_request_id(
    caller: &mut Caller,
    world: &World,
) -> Result<(bool, String), String> {
    let mut payload = json!({"name": "x", "faction": world.factions[0].0,
                             "background": world.background});
    payload["request_id"] = json!(caller.next_request_id());
    match caller.call("create_character", &payload).await.0 {
        Final::Refused(_, m) => Ok((!m.contains("request_id"), m)),
        other => Err(format!("request_id probe: unexpected answer {other:?}")),
    }
}

/// Authenticates `n` clients and creates one character each, spread over factions (markets),
/// nodes, and HTTP/socket; then sets their gold (before any actor holds them in memory) and
/// reads their starting state from the database.
pub async fn players(
    nodes: &[SocketAddr],
    server_key: &str,
    n: usize,
    world: &World,
    opts: &Options,
    pg: &Pg,
    start_gold: i64,
) -> Result<Vec<Player>, String> {
    let mut players = Vec::new();
    for i in 0..n {
        let home = i % nodes.len();
        let device = format!("{}-device-{i:03}", opts.run_tag);
        let token = authenticate(nodes[home], server_key, &device).await?;
        let (faction, market) = world.factions[i % world.factions.len()].clone();
        let mut caller = Caller::new(nodes.to_vec(), home, token.clone(), false, i, opts.clone());
        let payload = json!({"name": format!("Trader {i}"), "faction": faction,
                             "background": world.background});
        let payload = with_id(&mut caller, payload);
        let character = match caller.call("create_character", &payload).await.0 {
            Final::Done(v) => v["id"].as_str().unwrap_or_default().to_string(),
            other => return Err(format!("create_character for client {i}: {other:?}")),
        };
        players.push(Player {
            index: i,
            token,
            character,
            good: world.goods[&market].clone(),
            market,
            home,
            over_socket: i % 2 == 1,
            start: CharState::default(),
        });
    }
    // create_character writes the row and activates nothing, so this is what the actors load.
    // Enough skill points for every skill, so each learning wave has something to learn.
    let points: i64 = world.skills.iter().map(|(_, cost)| cost).sum();
    let ids: Vec<Uuid> = players.iter().map(|p| uuid(&p.character)).collect();
    pg.execute(
        "UPDATE player_character SET gold = $1, skill_points = $3::INT8 WHERE id = ANY($2)",
        &[&start_gold, &ids, &points],
    )
    .await
    .map_err(|e| format!("setting the starting gold: {e}"))?;
    for p in &mut players {
        p.start = read_state(pg, &p.character).await?;
    }
    Ok(players)
}

pub fn uuid(s: &str) -> Uuid {
    s.parse().unwrap_or_default()
}

/// A character's gold, cargo, skills and skill points as stored.
pub async fn read_state(pg: &Pg, character: &str) -> Result<CharState, String> {
    let id = uuid(character);
    let err = |e: tokio_postgres::Error| format!("reading character {character}: {e}");
    let row = pg
        .query_opt(
            "SELECT gold, skill_points::INT8 FROM player_character WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(err)?
        .ok_or_else(|| format!("character {character} is not in the database"))?;
    let cargo = pg
        .query(
            "SELECT good, quantity FROM caravan_cargo WHERE character_id = $1 AND quantity <> 0",
            &[&id],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let prefix = serai::domain::character::state::SKILL_PREFIX;
    let mut skills: Vec<String> = pg
        .query(
            "SELECT substr(code, $2) FROM character_attribute \
             WHERE character_id = $1 AND code LIKE $3",
            &[&id, &(prefix.len() as i32 + 1), &format!("{prefix}%")],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    skills.sort();
    Ok(CharState {
        gold: row.get(0),
        cargo,
        skills,
        skill_points: row.get(1),
    })
}

/// Every market's stock as stored: (node, good) → quota.
pub async fn read_quotas(
    pg: &Pg,
    markets: &[String],
) -> Result<BTreeMap<(String, String), i64>, String> {
    Ok(pg
        .query(
            "SELECT node, good, quota FROM market_price_snapshot WHERE node = ANY($1)",
            &[&markets],
        )
        .await
        .map_err(|e| format!("reading market stock: {e}"))?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect())
}

/// A character as its live owner answers it (`get_character`), in the checker's terms.
pub fn live_state(v: &serde_json::Value) -> CharState {
    let cargo = v["cargo"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["good"].as_str()?.to_string(), c["quantity"].as_i64()?)))
        .filter(|(_, q)| *q != 0)
        .collect();
    let mut skills: Vec<String> = v["skills"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["code"].as_str().map(str::to_string))
        .collect();
    skills.sort();
    CharState {
        gold: v["gold"].as_i64().unwrap_or(i64::MIN),
        cargo,
        skills,
        skill_points: v["skill_points"].as_i64().unwrap_or(i64::MIN),
    }
}
