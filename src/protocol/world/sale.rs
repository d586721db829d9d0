//! `buy_sale` and `/admin/world/sales`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::world::sale::SaleSpec;
use crate::protocol::rpc::{cargo_lines, CargoLine};

/// `buy_sale` (its `request_id` is taken off before decoding).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuySale {
    pub sale_id: String,
    pub character_id: Uuid,
    pub quantity: i64,
}

/// The answer to `buy_sale`.
#[derive(Debug, Serialize)]
pub struct SaleBought {
    /// Units bought by this request.
    pub bought: i64,
    /// Units this character has bought in the sale, this request included.
    pub bought_total: i64,
    /// Units left when this purchase committed.
    pub stock_left: i64,
    pub gold: i64,
    pub cargo: Vec<CargoLine>,
}

impl SaleBought {
    pub fn new(
        bought: i64,
        bought_total: i64,
        stock_left: i64,
        gold: i64,
        cargo: &BTreeMap<String, i64>,
    ) -> SaleBought {
        SaleBought {
            bought,
            bought_total,
            stock_left,
            gold,
            cargo: cargo_lines(cargo),
        }
    }
}

/// A sale as `GET /admin/world/sales` lists it.
#[derive(Debug, Serialize)]
pub struct SaleView {
    pub id: String,
    pub node: String,
    pub good: String,
    pub stock: i64,
    pub sold: i64,
    pub stock_left: i64,
    pub price: i64,
    pub per_character_limit: i64,
    pub starts_at: String,
    pub ends_at: String,
    /// `scheduled`, `open`, `sold_out` or `ended`, at the time of the answer.
    pub state: &'static str,
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl SaleView {
    pub fn new(spec: &SaleSpec, sold: i64, now_ms: i64) -> SaleView {
        let state = if now_ms < spec.starts_at_ms {
            "scheduled"
        } else if now_ms >= spec.ends_at_ms {
            "ended"
        } else if sold >= spec.stock {
            "sold_out"
        } else {
            "open"
        };
        SaleView {
            id: spec.id.clone(),
            node: spec.node.clone(),
            good: spec.good.clone(),
            stock: spec.stock,
            sold,
            stock_left: (spec.stock - sold).max(0),
            price: spec.price,
            per_character_limit: spec.per_character_limit,
            starts_at: rfc3339(spec.starts_at_ms),
            ends_at: rfc3339(spec.ends_at_ms),
            state,
        }
    }
}

/// Decodes `POST /admin/world/sales`; an error names the field.
pub fn decode_sale(body: &Value) -> Result<SaleSpec, (&'static str, String)> {
    let o = body
        .as_object()
        .ok_or(("body", "the body must be a JSON object".to_string()))?;
    const KNOWN: [&str; 8] = [
        "id",
        "node",
        "good",
        "stock",
        "price",
        "per_character_limit",
        "starts_at",
        "ends_at",
    ];
    if let Some(k) = o.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(("body", format!("unknown field `{k}`")));
    }
    Ok(SaleSpec {
        id: text(o, "id")?,
        node: text(o, "node")?,
        good: text(o, "good")?,
        stock: int(o, "stock")?,
        price: int(o, "price")?,
        per_character_limit: int(o, "per_character_limit")?,
        starts_at_ms: time(o, "starts_at")?,
        ends_at_ms: time(o, "ends_at")?,
    })
}

fn text(o: &Map<String, Value>, k: &'static str) -> Result<String, (&'static str, String)> {
    match o.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err((k, format!("{k} must be a string"))),
    }
}

/// An integer, as a JSON number or a string (Nakama sends int64 as strings).
fn int(o: &Map<String, Value>, k: &'static str) -> Result<i64, (&'static str, String)> {
    let n = match o.get(k) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| (k, format!("{k} must be an integer")))
}

/// An RFC 3339 time, as unix milliseconds.
fn time(o: &Map<String, Value>, k: &'static str) -> Result<i64, (&'static str, String)> {
    let s = text(o, k).map_err(|_| (k, format!("{k} must be an RFC 3339 time")))?;
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| (k, format!("{k} must be an RFC 3339 time: {e}")))
}
