//! One load client: its socket, its account's characters and the payloads that name them.

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::args::Target;
use crate::common::socket::{self, exchange, json_string, rpc_frame, Ws};
use crate::common::BoxError;

pub struct Client {
    pub index: usize,
    pub ws: Ws,
    pub next_cid: u64,
    /// The account's characters; requests go to `characters[current]`.
    pub characters: Vec<Character>,
    pub current: usize,
    /// How many characters were made so far (for their names).
    pub made: usize,
    pub rng: StdRng,
}

/// One character of a client and the payloads that name it.
pub struct Character {
    pub id: String,
    pub good: String,
    /// The payloads, as JSON string literals ready for the frame.
    pub quotes_payload: String,
    pub buy_payload: String,
    pub sell_payload: String,
    pub next_side_buy: bool,
    /// A buy was refused for want of gold: buying and selling back always loses the spread
    /// (1–2 gold a round trip), so a character lasts a few hundred trades.
    pub broke: bool,
}

/// What the catalog offers a new character.
#[derive(Debug, Clone)]
pub struct Choices {
    pub factions: Vec<String>,
    pub background: String,
}

impl Client {
    pub async fn connect(
        target: &Target,
        server_key: &str,
        index: usize,
        run_id: &str,
    ) -> Result<Client, BoxError> {
        let device = format!("serai-load-{run_id}-{index:05}");
        let ws = socket::connect(&target.authority, server_key, &device).await?;
        Ok(Client {
            index,
            ws,
            next_cid: 0,
            characters: Vec::new(),
            current: 0,
            made: 0,
            rng: StdRng::seed_from_u64(0x5e7a1 ^ index as u64),
        })
    }

    /// One RPC during setup: the payload of the answer, or the error.
    pub async fn call(&mut self, id: &str, payload: &str) -> Result<String, BoxError> {
        self.next_cid += 1;
        let cid = self.next_cid;
        let frame = rpc_frame(cid, id, &json_string(payload));
        let (text, answer) = exchange(&mut self.ws, cid, frame)
            .await
            .map_err(|e| format!("{id}: {e}"))?;
        answer.map_err(|e| format!("{id}: {e}"))?;
        socket::payload(&text)
    }

    /// Creates a character, asks its quotes (which activates its session and its market),
    /// finds the cheapest good at its node and prepares the payloads.
    pub async fn new_character(&mut self, choices: &Choices) -> Result<Character, BoxError> {
        let faction = &choices.factions[self.index % choices.factions.len()];
        self.made += 1;
        let create = serde_json::json!({
            "name": format!("Load {} {}", self.index, self.made),
            "faction": faction,
            "background": choices.background,
        });
        let made: serde_json::Value =
            serde_json::from_str(&self.call("create_character", &create.to_string()).await?)?;
        let id = made["id"]
            .as_str()
            .ok_or("create_character: no id in the answer")?
            .to_string();
        let gold = made["gold"].as_i64().unwrap_or(0);
        let quotes_payload = serde_json::json!({ "character_id": id }).to_string();
        let quotes: serde_json::Value =
            serde_json::from_str(&self.call("get_trade_quotes", &quotes_payload).await?)?;
        let cheapest = quotes["quotes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|q| q["quota"].as_i64().unwrap_or(0) > 0)
            .filter(|q| q["sell_quota"].as_i64().unwrap_or(1) > 0)
            .filter_map(|q| Some((q["buy_price"].as_i64()?, q["good"].as_str()?.to_string())))
            .min();
        let (price, good) = cheapest.ok_or_else(|| {
            format!(
                "no good to trade at {}: {}",
                quotes["node"].as_str().unwrap_or("?"),
                quotes
            )
        })?;
        if price > gold {
            return Err(format!("the cheapest good ({good} at {price}) costs more than the {gold} gold of a new character").into());
        }
        let trade = |side: &str| {
            serde_json::json!({
                "character_id": id,
                "good": good,
                "side": side,
                "quantity": 1,
            })
            .to_string()
        };
        Ok(Character {
            buy_payload: json_string(&trade("buy")),
            sell_payload: json_string(&trade("sell")),
            quotes_payload: json_string(&quotes_payload),
            good,
            id,
            next_side_buy: true,
            broke: false,
        })
    }

    /// Makes `count` characters.
    pub async fn prepare(&mut self, choices: &Choices, count: usize) -> Result<(), BoxError> {
        for _ in 0..count {
            let c = self.new_character(choices).await?;
            self.characters.push(c);
        }
        Ok(())
    }

    /// Moves on from a broke character: to the next one with gold, else replaces it (delete,
    /// create). Not measured; the time it takes is lost to the client's throughput.
    pub async fn next_character(&mut self, choices: &Choices) -> Result<bool, BoxError> {
        let n = self.characters.len();
        if let Some(i) = (1..n)
            .map(|k| (self.current + k) % n)
            .find(|&i| !self.characters[i].broke)
        {
            self.current = i;
            return Ok(false);
        }
        let old = &self.characters[self.current];
        let payload = serde_json::json!({ "character_id": old.id }).to_string();
        self.call("delete_character", &payload).await?;
        let fresh = self.new_character(choices).await?;
        self.characters[self.current] = fresh;
        Ok(true)
    }
}
