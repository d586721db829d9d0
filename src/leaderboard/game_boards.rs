//! The boards the game keeps itself (authoritative: clients read them, only the server
//! writes):
//!
//! - [`WEALTH`]: a character's gold plus its cargo at base price, set after each trade
//!   settlement ([`submit_wealth`]);
//! - [`BATTLES_WON`]: battles a character has won, one more per victory
//!   ([`submit_battle_won`]).
//!
//! Records are owned by the character id and carry the character's name as username. Both
//! boards are created at node start when missing.

use std::time::Duration;

use uuid::Uuid;

use super::board::operator_to_db;
use super::messages::{Api, LeaderboardError, RecordView, Warm, Write};
use super::rules::Operator;
use super::service;
use crate::persistence::leaderboards::{self, BoardRow};
use crate::persistence::{Db, DbError};
use crate::request::Caller;
use crate::routing::Router;

/// Gold plus cargo at base price, per character (descending, `set`).
pub const WEALTH: &str = "wealth";
/// Battles won, per character (descending, `incr`).
pub const BATTLES_WON: &str = "battles_won";

fn game_board(id: &str, operator: Operator, title: &str) -> BoardRow {
    let mut b = BoardRow::leaderboard(id);
    b.authoritative = true;
    b.operator = operator_to_db(operator);
    b.title = title.to_string();
    b
}

/// Creates the game's boards unless they exist.
pub async fn ensure(db: &Db) -> Result<(), DbError> {
    for board in [
        game_board(WEALTH, Operator::Set, "Wealth"),
        game_board(BATTLES_WON, Operator::Incr, "Battles won"),
    ] {
        let (_, created) = leaderboards::create_board(db, &board).await?;
        if created {
            tracing::info!(board = %board.id, "game leaderboard created");
        }
    }
    Ok(())
}

async fn submit(router: &Router, board: &str, msg: Write) -> Result<RecordView, LeaderboardError> {
    match service::send(router, board.to_string(), msg.clone(), false).await {
        // At start the board may be created just after its actor first looked: look again.
        Err(LeaderboardError::NotFound(_)) => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = service::send(router, board.to_string(), Warm, true).await;
            service::send(router, board.to_string(), msg, false).await
        }
        other => other,
    }
}

/// Records a character's wealth (gold plus cargo at base price), replacing the previous value.
/// Answers once committed. Negative values are stored as 0.
pub async fn submit_wealth(
    router: &Router,
    character_id: Uuid,
    name: &str,
    value: i64,
) -> Result<RecordView, LeaderboardError> {
    let msg = Write {
        api: Api::Leaderboard,
        caller: Caller::Server,
        owner: character_id,
        username: Some(name.to_string()),
        score: value.max(0),
        subscore: 0,
        metadata: None,
        operator: Operator::Set.nakama_number(),
    };
    submit(router, WEALTH, msg).await
}

/// Counts one more battle won for a character. Answers once committed.
pub async fn submit_battle_won(
    router: &Router,
    character_id: Uuid,
    name: &str,
) -> Result<RecordView, LeaderboardError> {
    let msg = Write {
        api: Api::Leaderboard,
        caller: Caller::Server,
        owner: character_id,
        username: Some(name.to_string()),
        score: 1,
        subscore: 0,
        metadata: None,
        operator: Operator::Incr.nakama_number(),
    };
    submit(router, BATTLES_WON, msg).await
}
