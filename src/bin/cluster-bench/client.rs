//! The benchmark's game client: one device's socket, RPCs over it, characters made and deleted.

use std::net::SocketAddr;

use uuid::Uuid;

use crate::common::socket::{self, exchange, json_string, rpc_frame, Ws};
use crate::common::BoxError;

pub const SERVER_KEY: &str = "defaultkey";

pub struct Client {
    pub ws: Ws,
    cid: u64,
}

impl Client {
    pub async fn connect(addr: SocketAddr, device: &str) -> Result<Client, BoxError> {
        let ws = socket::connect(&addr.to_string(), SERVER_KEY, device).await?;
        Ok(Client { ws, cid: 0 })
    }

    /// One RPC: `Ok(text of the reply frame)` or `Err("code N: message")`. Transport failures
    /// are errors of the outer result.
    pub async fn call(
        &mut self,
        id: &str,
        payload: &str,
    ) -> Result<Result<String, String>, BoxError> {
        self.cid += 1;
        let frame = rpc_frame(self.cid, id, &json_string(payload));
        let (text, answer) = exchange(&mut self.ws, self.cid, frame).await?;
        Ok(answer
            .map(|()| text)
            .map_err(|e| format!("code {}: {}", e.code, e.message)))
    }

    /// An RPC that must succeed; its payload, decoded.
    pub async fn must(&mut self, id: &str, payload: &str) -> Result<serde_json::Value, BoxError> {
        let text = self
            .call(id, payload)
            .await
            .map_err(|e| format!("{id}: {e}"))?
            .map_err(|e| format!("{id}: {e}"))?;
        Ok(serde_json::from_str(&socket::payload(&text)?)?)
    }

    pub async fn create_character(&mut self, name: &str) -> Result<Uuid, BoxError> {
        let catalog = self.must("get_catalog", "{}").await?;
        let faction = catalog["factions"][0]["code"]
            .as_str()
            .ok_or("no faction")?;
        let background = catalog["backgrounds"][0]["code"]
            .as_str()
            .ok_or("no background")?;
        let made = self
            .must(
                "create_character",
                &serde_json::json!({"name": name, "faction": faction, "background": background})
                    .to_string(),
            )
            .await?;
        Ok(made["id"].as_str().ok_or("no id")?.parse()?)
    }

    pub async fn delete_character(&mut self, id: Uuid) -> Result<(), BoxError> {
        self.must("delete_character", &character_ref(id)).await?;
        Ok(())
    }
}

pub fn character_ref(id: Uuid) -> String {
    serde_json::json!({ "character_id": id }).to_string()
}
