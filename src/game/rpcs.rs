//! The game RPCs: decode the payload (protocol::rpc) once, with its call (caller, deadline,
//! idempotency key from `request_id`), send a message through the router to the owning actor,
//! encode the answer. No game rule is decided here. A *not run* answer is sent again until the
//! deadline; a *may have run* never is (docs/rpc.md: the three outcomes).

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::battle::messages::{self as bmsg, BattleError};
use crate::battle::Battle;
use crate::character::messages as msg;
use crate::character::CharacterSession;
use crate::domain::catalog::CurrentCatalog;
use crate::domain::character::rules;
use crate::gateway::rpc::{RpcContext, RpcError};
use crate::gateway::rpc_payload::{self, encode, Decoded};
use crate::persistence::receipts::{self, Receipt};
use crate::persistence::{characters, Db, DbError};
use crate::protocol::rpc as wire;
use crate::request::{Call, Deadline, Failure};
use crate::routing::{Entity, NotRun, Remote, Router};
use crate::services::Services;

use super::snapshots::{self, Snapshots};

/// What the handlers share.
#[derive(Clone)]
struct Api {
    router: Arc<Router>,
    db: Db,
    /// Taken with `get()` once per request.
    catalog: CurrentCatalog,
    snapshots: Snapshots,
}

pub fn register(services: &Services, snapshots: Snapshots) {
    let api = Api {
        router: services.router.clone(),
        db: services.db.clone(),
        catalog: services.catalog.clone(),
        snapshots,
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

/// The payload decoded with this node's request deadline (`gateway::rpc_payload`).
fn decode<T: DeserializeOwned>(
    api: &Api,
    ctx: &RpcContext,
    rpc: &str,
    payload: &str,
) -> Result<Decoded<T>, RpcError> {
    rpc_payload::decode(ctx, rpc, payload, api.router.deadline())
}

fn battle_error(e: BattleError) -> RpcError {
    match e {
        BattleError::NotFound => RpcError::not_found("battle not found"),
        BattleError::NotYours => {
            RpcError::permission_denied("this battle belongs to another account")
        }
        BattleError::Invalid(m) => RpcError::invalid_argument(m),
        BattleError::Refused(m) => RpcError::failed_precondition(m),
        BattleError::Conflict => RpcError::request_id_reused(),
        BattleError::Stale => Failure::not_run(e.to_string()).into(),
        BattleError::Failed(f) => f.into(),
    }
}

/// Sends `m` to the entity's owner, again while it answers *not run*
/// ([`Router::ask_retrying`]); anything that may have run is answered as it is.
async fn ask<A, M>(api: &Api, id: Uuid, m: M, deadline: Deadline) -> Result<M::Result, RpcError>
where
    A: Entity<Key = Uuid> + actix::Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: Remote + Clone,
    M::Result: Serialize + DeserializeOwned + Send + NotRun,
{
    Ok(api.router.ask_retrying::<A, M>(id, m, deadline).await?)
}

async fn get_catalog(api: Api, _: RpcContext, _: String) -> Result<String, RpcError> {
    encode(&wire::CatalogView::new(&api.catalog.get()))
}

async fn create_character(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let user = ctx.session_user()?;
    let Decoded { req, call } =
        decode::<wire::CreateCharacter>(&api, &ctx, "create_character", &payload)?;
    let catalog = api.catalog.get();
    let state = rules::new_character(
        &catalog,
        Uuid::new_v4(),
        user,
        &req.name,
        &req.faction,
        &req.background,
    )
    .map_err(|e| RpcError::invalid_argument(e.to_string()))?;
    let view = wire::CharacterView::new(&state, &catalog);
    let answer = encode(&view)?;
    let receipt = call.key.map(|key| Receipt {
        key,
        answer: answer.clone(),
    });
    let created = characters::create(
        &api.db,
        &state,
        rules::MAX_CHARACTERS_PER_ACCOUNT,
        receipt.as_ref(),
    )
    .await;
    match (created, &receipt) {
        (Ok(()), _) => Ok(answer),
        // Created before under this request_id: the first answer (or a conflict).
        (Err(e @ (DbError::DuplicateRequest | DbError::Rejected(_))), Some(r)) => {
            stored_answer(&api, r).await?.ok_or_else(|| e.into())
        }
        (Err(e), _) => Err(e.into()),
    }
}

/// The answer stored under a receipt's key: `None` when there is none, a conflict when the key
/// was used for another request.
async fn stored_answer(api: &Api, r: &Receipt) -> Result<Option<String>, RpcError> {
    match receipts::find(&api.db, r.key.user_id, &r.key.request_id).await? {
        None => Ok(None),
        Some(s) if s.fingerprint != r.key.fingerprint => Err(RpcError::request_id_reused()),
        Some(s) => Ok(Some(s.answer)),
    }
}

async fn list_characters(api: Api, ctx: RpcContext, _: String) -> Result<String, RpcError> {
    let user = ctx.session_user()?;
    let list = characters::list(&api.db, user).await?;
    encode(&wire::CharacterList {
        characters: list.into_iter().map(Into::into).collect(),
    })
}

/// Sends a session message built from the call and answers what the session answered.
async fn session<M>(api: &Api, id: Uuid, call: &Call, m: M) -> Result<M::Result, RpcError>
where
    M: Remote + Clone,
    M::Result: Serialize + DeserializeOwned + Send + NotRun,
    CharacterSession: actix::Handler<M>,
{
    ask::<CharacterSession, M>(api, id, m, call.deadline).await
}

async fn get_character(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } =
        decode::<wire::CharacterRef>(&api, &ctx, "get_character", &payload)?;
    let m = msg::GetCharacter { call: call.clone() };
    let state = session(&api, req.character_id, &call, m)
        .await?
        .map_err(RpcError::from)?;
    encode(&wire::CharacterView::new(&state, &api.catalog.get()))
}

async fn delete_character(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } =
        decode::<wire::CharacterRef>(&api, &ctx, "delete_character", &payload)?;
    let m = msg::DeleteCharacter { call: call.clone() };
    session(&api, req.character_id, &call, m)
        .await?
        .map_err(RpcError::from)?;
    encode(&wire::Deleted { deleted: true })
}

async fn get_trade_quotes(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } =
        decode::<wire::CharacterRef>(&api, &ctx, "get_trade_quotes", &payload)?;
    if let Some((node, quotes)) = snapshots::quotes(
        &api.router,
        &api.snapshots,
        &api.catalog,
        req.character_id,
        &call,
    ) {
        return encode(&wire::Quotes {
            node,
            quotes: quotes.quotes.iter().cloned().map(Into::into).collect(),
        });
    }
    let m = msg::GetQuotes { call: call.clone() };
    let (node, quotes) = session(&api, req.character_id, &call, m)
        .await?
        .map_err(RpcError::from)?;
    encode(&wire::Quotes {
        node,
        quotes: quotes.into_iter().map(Into::into).collect(),
    })
}

async fn execute_trade(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } =
        decode::<wire::ExecuteTrade>(&api, &ctx, "execute_trade", &payload)?;
    let m = msg::ExecuteTrade {
        call: call.clone(),
        good: req.good,
        side: req.side.into(),
        quantity: req.quantity,
        price_limit: req.price_limit,
    };
    let receipt = session(&api, req.character_id, &call, m)
        .await?
        .map_err(RpcError::from)?;
    encode(&wire::TradeResult {
        gold: receipt.gold,
        unit_price: receipt.unit_price,
        total: receipt.total,
        cargo: wire::cargo_lines(&receipt.cargo),
    })
}

async fn hire_crew(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } = decode::<wire::HireCrew>(&api, &ctx, "hire_crew", &payload)?;
    let m = msg::HireCrew {
        call: call.clone(),
        archetype: req.archetype,
        name: req.name,
    };
    let state = session(&api, req.character_id, &call, m)
        .await?
        .map_err(RpcError::from)?;
    encode(&wire::CharacterView::new(&state, &api.catalog.get()))
}

async fn dismiss_crew(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } = decode::<wire::DismissCrew>(&api, &ctx, "dismiss_crew", &payload)?;
    let m = msg::DismissCrew {
        call: call.clone(),
        crew_id: req.crew_id,
    };
    let state = session(&api, req.character_id, &call, m)
        .await?
        .map_err(RpcError::from)?;
    encode(&wire::CharacterView::new(&state, &api.catalog.get()))
}

async fn learn_skill(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } = decode::<wire::LearnSkill>(&api, &ctx, "learn_skill", &payload)?;
    let m = msg::LearnSkill {
        call: call.clone(),
        skill: req.skill,
    };
    let state = session(&api, req.character_id, &call, m)
        .await?
        .map_err(RpcError::from)?;
    encode(&wire::CharacterView::new(&state, &api.catalog.get()))
}

async fn travel(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } = decode::<wire::TravelRequest>(&api, &ctx, "travel", &payload)?;
    let m = msg::Travel {
        call: call.clone(),
        to: req.to_node,
    };
    let state = session(&api, req.character_id, &call, m)
        .await?
        .map_err(RpcError::from)?;
    encode(&wire::CharacterView::new(&state, &api.catalog.get()))
}

/// Server-to-server only (`http_key`): bandits fall upon the caravan now.
async fn force_encounter(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    if !ctx.http_key {
        return Err(RpcError::permission_denied(
            "force_encounter is a server-to-server RPC (http_key)",
        ));
    }
    let Decoded { req, call } =
        decode::<wire::ForceEncounterRequest>(&api, &ctx, "force_encounter", &payload)?;
    let m = msg::ForceEncounter { call: call.clone() };
    let snapshot = session(&api, req.character_id, &call, m)
        .await?
        .map_err(RpcError::from)?;
    encode(&wire::BattleView::new(&snapshot))
}

async fn get_battle(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } = decode::<wire::BattleRef>(&api, &ctx, "get_battle", &payload)?;
    let m = bmsg::GetBattle { call: call.clone() };
    let snapshot = ask::<Battle, _>(&api, req.battle_id, m, call.deadline)
        .await?
        .map_err(battle_error)?;
    encode(&wire::BattleView::new(&snapshot))
}

async fn submit_turn(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } =
        decode::<wire::SubmitTurnRequest>(&api, &ctx, "submit_turn", &payload)?;
    if req.actions.len() > 32 {
        return Err(RpcError::invalid_argument("at most 32 actions a turn"));
    }
    let m = bmsg::SubmitTurn {
        call: call.clone(),
        turn: req.turn,
        actions: req.actions.into_iter().map(Into::into).collect(),
    };
    let (record, snapshot) = ask::<Battle, _>(&api, req.battle_id, m, call.deadline)
        .await?
        .map_err(battle_error)?;
    encode(&wire::SubmitTurnAnswer {
        resolved: wire::TurnView::new(&snapshot.combat, &record),
        battle: wire::BattleView::new(&snapshot),
    })
}
