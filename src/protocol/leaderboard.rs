//! Nakama's JSON shapes of the leaderboard and tournament API (grpc-gateway: snake_case field
//! names, int64 values as strings, zero values left out, timestamps in RFC 3339): the records,
//! record lists and tournaments it answers with, and the body of a score write.
//!
//! Nothing here knows a board: the leaderboard module fills these shapes from its own types
//! (`leaderboard::http::answers`) and turns a refused body into its error.

use chrono::DateTime;
use serde::Serialize;
use serde_json::Value;

use super::client::{is_false, timestamp};

/// A unix time as protobuf JSON writes a timestamp.
pub fn unix_timestamp(secs: i64) -> String {
    timestamp(&DateTime::from_timestamp(secs, 0).unwrap_or_default())
}

/// An int64 as protobuf JSON writes it: a string, left out when zero.
pub fn int64(v: i64) -> Option<String> {
    (v != 0).then(|| v.to_string())
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// `api.LeaderboardRecord`.
#[derive(Debug, Serialize)]
pub struct LeaderboardRecord<'a> {
    pub leaderboard_id: &'a str,
    pub owner_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscore: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub num_score: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub metadata: &'a str,
    pub create_time: String,
    pub update_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_num_score: u32,
}

/// `api.LeaderboardRecordList` / `api.TournamentRecordList`.
#[derive(Debug, Serialize)]
pub struct LeaderboardRecordList<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<LeaderboardRecord<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owner_records: Vec<LeaderboardRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_cursor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank_count: Option<String>,
}

/// `api.Tournament`.
#[derive(Debug, Serialize)]
pub struct Tournament<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub title: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    pub category: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub sort_order: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub size: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_size: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_num_score: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub can_enter: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub end_active: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub next_reset: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub metadata: &'a str,
    pub create_time: String,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub duration: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_active: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub prev_reset: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub operator: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub authoritative: bool,
}

/// `api.TournamentList`.
#[derive(Debug, Serialize)]
pub struct TournamentList<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tournaments: Vec<Tournament<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A write's body (`api.WriteLeaderboardRecordRequest.LeaderboardRecordWrite`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteBody {
    pub score: i64,
    pub subscore: i64,
    pub metadata: Option<String>,
    pub operator: i64,
}

fn int64_field(v: &Value, name: &str) -> Result<i64, String> {
    let bad =
        || format!("Invalid JSON request body: `{name}` must be an int64 (a string or a number).");
    match v {
        Value::Null => Ok(0),
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => s.trim().parse().map_err(|_| bad()),
        Value::Number(n) => n.as_i64().ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// Parses a write body: int64 fields as strings or numbers, `metadata` a string holding a JSON
/// object (as nakama-js sends it) or an object, `operator` a number or an enum name. A refused
/// body is answered with the message (an invalid argument).
pub fn parse_write_body(body: &[u8]) -> Result<WriteBody, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("Invalid input, record score value is required.".into());
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON request body: {e}."))?;
    let Value::Object(o) = v else {
        return Err("Invalid JSON request body: expected an object.".into());
    };
    let get = |k: &str| o.get(k).unwrap_or(&Value::Null);
    let metadata_error = || "Metadata value must be JSON, if provided.".to_string();
    let metadata = match get("metadata") {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(m @ Value::Object(_)) => Some(m.to_string()),
            _ => return Err(metadata_error()),
        },
        m @ Value::Object(_) => Some(m.to_string()),
        _ => return Err(metadata_error()),
    };
    let bad_operator = || "Invalid JSON request body: bad `operator`.".to_string();
    let operator = match get("operator") {
        Value::Null => 0,
        Value::Number(n) => n.as_i64().ok_or_else(bad_operator)?,
        Value::String(s) => match s.to_ascii_uppercase().as_str() {
            "" | "NO_OVERRIDE" => 0,
            "BEST" => 1,
            "SET" => 2,
            "INCREMENT" | "INCR" => 3,
            "DECREMENT" | "DECR" => 4,
            other => other
                .parse()
                .map_err(|_| format!("Invalid JSON request body: unknown operator {s:?}."))?,
        },
        _ => return Err(bad_operator()),
    };
    Ok(WriteBody {
        score: int64_field(get("score"), "score")?,
        subscore: int64_field(get("subscore"), "subscore")?,
        metadata,
        operator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_bodies() {
        let b =
            parse_write_body(br#"{"score":"100","subscore":5,"metadata":"{\"a\": 1}"}"#).unwrap();
        assert_eq!(
            b,
            WriteBody {
                score: 100,
                subscore: 5,
                metadata: Some("{\"a\":1}".into()),
                operator: 0
            }
        );
        let b = parse_write_body(br#"{"score":"7","metadata":{"k":"v"},"operator":"INCREMENT"}"#)
            .unwrap();
        assert_eq!((b.score, b.operator), (7, 3));
        assert_eq!(b.metadata.as_deref(), Some("{\"k\":\"v\"}"));
        assert_eq!(parse_write_body(br#"{"operator":4}"#).unwrap().operator, 4);
        for bad in [
            &br#"{"metadata":"[1]"}"#[..],
            br#"{"metadata":"nope"}"#,
            br#"{"metadata":5}"#,
        ] {
            assert_eq!(
                parse_write_body(bad).unwrap_err(),
                "Metadata value must be JSON, if provided."
            );
        }
        assert!(parse_write_body(br#"{"score":"x"}"#).is_err());
        assert!(parse_write_body(br#"[1]"#).is_err());
        assert!(parse_write_body(b"").is_err());
        assert_eq!(parse_write_body(br#"{"score":"-3"}"#).unwrap().score, -3);
    }
}
