//! The game RPCs: decode the payload (protocol::rpc), send a message through the router to
//! the owning actor, encode the answer. No game rule is decided here.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::battle::messages::{self as bmsg, BattleError};
use crate::battle::Battle;
use crate::catalog::Catalog;
use crate::character::messages::{self as msg, Caller, SessionError};
use crate::character::{rules, CharacterSession};
use crate::gateway::rpc::{RpcContext, RpcError};
use crate::node::Services;
use crate::persistence::{characters, Db};
use crate::protocol::rpc as wire;
use crate::routing::{RouteError, Router};

/// What the handlers share.
#[derive(Clone)]
struct Api {
    router: Arc<Router>,
    db: Db,
    catalog: Arc<Catalog>,
}

pub fn register(services: &Services) {
    let api = Api {
        router: services.router.clone(),
        db: services.db.clone(),
        catalog: services.catalog.clone(),
    };
    let rpc = &services.rpc;
    macro_rules! rpc {
        ($id:literal, $handler:ident) => {{
            let api = api.clone();
            rpc.register_fn($id, move |ctx, payload| {
                let api = api.clone();
                async move { $handler(api, ctx, payload).await }
            });
        }};
    }
    rpc!("get_catalog", get_catalog);
    rpc!("create_character", create_character);
    rpc!("get_character", get_character);
    rpc!("list_characters", list_characters);
    rpc!("delete_character", delete_character);
    rpc!("get_trade_quotes", get_trade_quotes);
    rpc!("execute_trade", execute_trade);
    rpc!("hire_crew", hire_crew);
    rpc!("dismiss_crew", dismiss_crew);
    rpc!("learn_skill", learn_skill);
    rpc!("travel", travel);
    rpc!("force_encounter", force_encounter);
    rpc!("get_battle", get_battle);
    rpc!("submit_turn", submit_turn);
}

fn decode<T: DeserializeOwned>(payload: &str) -> Result<T, RpcError> {
    if payload.trim().is_empty() {
        return Err(RpcError::invalid_argument("a JSON payload is required"));
    }
    serde_json::from_str(payload)
        .map_err(|e| RpcError::invalid_argument(format!("invalid payload: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<String, RpcError> {
    serde_json::to_string(value)
        .map_err(|e| RpcError::internal(format!("encoding the answer failed: {e}")))
}

fn caller(ctx: &RpcContext) -> Caller {
    if ctx.http_key {
        Caller::Server
    } else {
        Caller::User(ctx.user_id)
    }
}

fn user(ctx: &RpcContext) -> Result<Uuid, RpcError> {
    if ctx.http_key {
        return Err(RpcError::invalid_argument(
            "this RPC needs a user session, not the http key",
        ));
    }
    Ok(ctx.user_id)
}

fn session_error(e: SessionError) -> RpcError {
    match e {
        SessionError::NotFound => RpcError::not_found("character not found"),
        SessionError::NotYours => {
            RpcError::permission_denied("this character belongs to another account")
        }
        SessionError::Invalid(m) => RpcError::invalid_argument(m),
        SessionError::Refused(m) => RpcError::failed_precondition(m),
        SessionError::Unavailable => RpcError::unavailable(e.to_string()),
        SessionError::Internal => RpcError::internal("internal error"),
    }
}

fn battle_error(e: BattleError) -> RpcError {
    match e {
        BattleError::NotFound => RpcError::not_found("battle not found"),
        BattleError::NotYours => {
            RpcError::permission_denied("this battle belongs to another account")
        }
        BattleError::Invalid(m) => RpcError::invalid_argument(m),
        BattleError::Refused(m) => RpcError::failed_precondition(m),
        BattleError::Stale | BattleError::Unavailable => RpcError::unavailable(e.to_string()),
        BattleError::Internal => RpcError::internal("internal error"),
    }
}

fn route_error(e: RouteError) -> RpcError {
    match e {
        // 4 DeadlineExceeded (HTTP 504): the request may have been applied; the client must
        // look at the state before trying again.
        RouteError::Unknown => {
            RpcError::new(crate::gateway::GrpcCode::DeadlineExceeded, e.to_string())
        }
        other => RpcError::unavailable(other.to_string()),
    }
}

/// Sends `m` to the character's session (on whichever node owns it), retrying a few times
/// while a session is being replaced (passivating, or just fenced); those refusals change
/// nothing.
async fn ask<M>(api: &Api, id: Uuid, m: M) -> Result<M::Result, RpcError>
where
    M: crate::routing::Remote + Clone,
    M::Result: serde::Serialize + serde::de::DeserializeOwned + Send + IsUnavailable,
    CharacterSession: actix::Handler<M>,
{
    let mut delay = std::time::Duration::from_millis(20);
    for _ in 0..4 {
        match api.router.ask::<CharacterSession, M>(id, m.clone()).await {
            Ok(r) if r.is_unavailable() => {}
            Ok(r) => return Ok(r),
            Err(RouteError::Unavailable) => {}
            Err(e) => return Err(route_error(e)),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    Err(RpcError::unavailable("the character is busy, try again"))
}

/// Sends `m` to the battle's actor, retrying like [`ask`] while it is being replaced.
async fn ask_battle<M>(api: &Api, id: Uuid, m: M) -> Result<M::Result, RpcError>
where
    M: crate::routing::Remote + Clone,
    M::Result: serde::Serialize + serde::de::DeserializeOwned + Send + IsUnavailable,
    Battle: actix::Handler<M>,
{
    let mut delay = std::time::Duration::from_millis(20);
    for _ in 0..4 {
        match api.router.ask::<Battle, M>(id, m.clone()).await {
            Ok(r) if r.is_unavailable() => {}
            Ok(r) => return Ok(r),
            Err(RouteError::Unavailable) => {}
            Err(e) => return Err(route_error(e)),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    Err(RpcError::unavailable("the battle is busy, try again"))
}

/// Whether an answer is the actor's "unavailable, try again".
trait IsUnavailable {
    fn is_unavailable(&self) -> bool;
}

impl<T> IsUnavailable for Result<T, SessionError> {
    fn is_unavailable(&self) -> bool {
        matches!(self, Err(SessionError::Unavailable))
    }
}

impl<T> IsUnavailable for Result<T, BattleError> {
    fn is_unavailable(&self) -> bool {
        matches!(self, Err(BattleError::Unavailable))
    }
}

async fn get_catalog(api: Api, _: RpcContext, _: String) -> Result<String, RpcError> {
    encode(&wire::CatalogView::new(&api.catalog))
}

async fn create_character(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let user = user(&ctx)?;
    let req: wire::CreateCharacter = decode(&payload)?;
    let state = rules::new_character(
        &api.catalog,
        Uuid::new_v4(),
        user,
        &req.name,
        &req.faction,
        &req.background,
    )
    .map_err(|e| RpcError::invalid_argument(e.to_string()))?;
    characters::create(&api.db, &state, rules::MAX_CHARACTERS_PER_ACCOUNT).await?;
    encode(&wire::CharacterView::new(&state, &api.catalog))
}

async fn list_characters(api: Api, ctx: RpcContext, _: String) -> Result<String, RpcError> {
    let user = user(&ctx)?;
    let list = characters::list(&api.db, user).await?;
    encode(&wire::CharacterList {
        characters: list.into_iter().map(Into::into).collect(),
    })
}

async fn get_character(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let req: wire::CharacterRef = decode(&payload)?;
    let state = ask(
        &api,
        req.character_id,
        msg::GetCharacter {
            caller: caller(&ctx),
        },
    )
    .await?
    .map_err(session_error)?;
    encode(&wire::CharacterView::new(&state, &api.catalog))
}

async fn delete_character(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let req: wire::CharacterRef = decode(&payload)?;
    ask(
        &api,
        req.character_id,
        msg::DeleteCharacter {
            caller: caller(&ctx),
        },
    )
    .await?
    .map_err(session_error)?;
    encode(&wire::Deleted { deleted: true })
}

async fn get_trade_quotes(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let req: wire::CharacterRef = decode(&payload)?;
    let (node, quotes) = ask(
        &api,
        req.character_id,
        msg::GetQuotes {
            caller: caller(&ctx),
        },
    )
    .await?
    .map_err(session_error)?;
    encode(&wire::Quotes {
        node,
        quotes: quotes.into_iter().map(Into::into).collect(),
    })
}

async fn execute_trade(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let req: wire::ExecuteTrade = decode(&payload)?;
    let m = msg::ExecuteTrade {
        caller: caller(&ctx),
        good: req.good,
        side: req.side.into(),
        quantity: req.quantity,
        price_limit: req.price_limit,
    };
    let receipt = ask(&api, req.character_id, m)
        .await?
        .map_err(session_error)?;
    encode(&wire::TradeResult {
        gold: receipt.gold,
        unit_price: receipt.unit_price,
        total: receipt.total,
        cargo: wire::cargo_lines(&receipt.state),
    })
}

async fn hire_crew(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let req: wire::HireCrew = decode(&payload)?;
    let m = msg::HireCrew {
        caller: caller(&ctx),
        archetype: req.archetype,
        name: req.name,
    };
    let state = ask(&api, req.character_id, m)
        .await?
        .map_err(session_error)?;
    encode(&wire::CharacterView::new(&state, &api.catalog))
}

async fn dismiss_crew(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let req: wire::DismissCrew = decode(&payload)?;
    let m = msg::DismissCrew {
        caller: caller(&ctx),
        crew_id: req.crew_id,
    };
    let state = ask(&api, req.character_id, m)
        .await?
        .map_err(session_error)?;
    encode(&wire::CharacterView::new(&state, &api.catalog))
}

async fn learn_skill(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let req: wire::LearnSkill = decode(&payload)?;
    let m = msg::LearnSkill {
        caller: caller(&ctx),
        skill: req.skill,
    };
    let state = ask(&api, req.character_id, m)
        .await?
        .map_err(session_error)?;
    encode(&wire::CharacterView::new(&state, &api.catalog))
}

async fn travel(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let req: wire::TravelRequest = decode(&payload)?;
    let m = msg::Travel {
        caller: caller(&ctx),
        to: req.to_node,
    };
    let state = ask(&api, req.character_id, m)
        .await?
        .map_err(session_error)?;
    encode(&wire::CharacterView::new(&state, &api.catalog))
}

/// Server-to-server only (`http_key`): bandits fall upon the caravan now.
async fn force_encounter(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    if !ctx.http_key {
        return Err(RpcError::permission_denied(
            "force_encounter is a server-to-server RPC (http_key)",
        ));
    }
    let req: wire::ForceEncounterRequest = decode(&payload)?;
    let m = msg::ForceEncounter {
        caller: Caller::Server,
    };
    let snapshot = ask(&api, req.character_id, m)
        .await?
        .map_err(session_error)?;
    encode(&wire::BattleView::new(&snapshot))
}

async fn get_battle(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let req: wire::BattleRef = decode(&payload)?;
    let m = bmsg::GetBattle {
        caller: caller(&ctx),
    };
    let snapshot = ask_battle(&api, req.battle_id, m)
        .await?
        .map_err(battle_error)?;
    encode(&wire::BattleView::new(&snapshot))
}

async fn submit_turn(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let req: wire::SubmitTurnRequest = decode(&payload)?;
    if req.actions.len() > 32 {
        return Err(RpcError::invalid_argument("at most 32 actions a turn"));
    }
    let m = bmsg::SubmitTurn {
        caller: caller(&ctx),
        turn: req.turn,
        actions: req.actions.into_iter().map(Into::into).collect(),
    };
    let (record, snapshot) = ask_battle(&api, req.battle_id, m)
        .await?
        .map_err(battle_error)?;
    encode(&wire::SubmitTurnAnswer {
        resolved: wire::TurnView::new(&snapshot.combat, &record),
        battle: wire::BattleView::new(&snapshot),
    })
}
