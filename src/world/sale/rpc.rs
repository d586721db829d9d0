//! `buy_sale {sale_id, character_id, quantity, request_id?}` → `{bought, bought_total,
//! stock_left, gold, cargo}`.
//!
//! Reserve at the sale's owner → the buyer's session writes the purchase (one transaction,
//! see `character::sale_purchase`) → settle the reservation with what happened. A request that
//! may have run is answered as such and never sent again; the client repeats it with the same
//! `request_id`, which returns the stored answer (also when the sale, meanwhile sold out or at
//! the buyer's limit, refuses the repeat's reservation).

use std::sync::Arc;

use super::messages::{Reserve, SaleGrant, Settle};
use super::Sale;
use crate::character::messages::SessionError;
use crate::character::sale_purchase::{BuySale, SaleReceipt};
use crate::character::CharacterSession;
use crate::domain::world::sale::{Outcome, SaleError};
use crate::gateway::rpc::{RpcContext, RpcError};
use crate::gateway::rpc_payload::{self, Decoded};
use crate::persistence::{receipts, Db};
use crate::protocol::world::sale as wire;
use crate::request::{Call, Failure};
use crate::routing::{NotRun, Router};
use crate::services::Services;

#[derive(Clone)]
struct Api {
    router: Arc<Router>,
    db: Db,
}

pub fn register(services: &Services) {
    let api = Api {
        router: services.router.clone(),
        db: services.db.clone(),
    };
    services.rpc.register_fn("buy_sale", move |ctx, payload| {
        let api = api.clone();
        async move { buy_sale(api, ctx, payload).await }
    });
}

async fn buy_sale(api: Api, ctx: RpcContext, payload: String) -> Result<String, RpcError> {
    let Decoded { req, call } =
        rpc_payload::decode::<wire::BuySale>(&ctx, "buy_sale", &payload, api.router.deadline())?;
    // The id names an actor: a bounded key, checked before anything is activated.
    if req.sale_id.is_empty() || req.sale_id.len() > 128 {
        return Err(RpcError::invalid_argument("sale_id must be 1-128 bytes"));
    }
    let reserve = Reserve {
        character_id: req.character_id,
        quantity: req.quantity,
    };
    let granted = api
        .router
        .ask_retrying::<Sale, _>(req.sale_id.clone(), reserve, call.deadline)
        .await;
    let grant = match granted {
        Ok(Ok(grant)) => grant,
        // A repeat of a purchase that committed is refused by the sale (sold out, the limit
        // reached): its stored answer stands instead.
        refused => return stored_or(&api, &call, refusal(refused)).await,
    };
    let buy = BuySale {
        call: call.clone(),
        sale_id: req.sale_id.clone(),
        node: grant.node.clone(),
        good: grant.good.clone(),
        quantity: grant.quantity,
        total: grant.total,
        stock: grant.stock,
        limit: grant.limit,
    };
    let answer = api
        .router
        .ask_retrying::<CharacterSession, _>(req.character_id, buy, call.deadline)
        .await;
    settle(&api, &req.sale_id, &grant, req.character_id, &answer).await;
    let receipt = match answer {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(e.into()),
        Err(f) => return Err(f.into()),
    };
    encode(&receipt)
}

fn encode(r: &SaleReceipt) -> Result<String, RpcError> {
    let view = wire::SaleBought::new(r.bought, r.bought_total, r.stock_left, r.gold, &r.cargo);
    rpc_payload::encode(&view)
}

/// Tells the sale what became of its reservation. A session that may have written the
/// purchase makes the sale read its rows; one that did not frees the units.
async fn settle(
    api: &Api,
    sale_id: &str,
    grant: &SaleGrant,
    character_id: uuid::Uuid,
    answer: &Result<Result<SaleReceipt, SessionError>, Failure>,
) {
    let outcome = match answer {
        Ok(Ok(r)) => Outcome::Committed(Some(r.rows())),
        Ok(Err(SessionError::Failed(Failure::NotRun(_)))) | Err(Failure::NotRun(_)) => {
            Outcome::NotRun
        }
        Ok(Err(SessionError::Failed(_))) | Err(_) => Outcome::Committed(None),
        Ok(Err(_)) => Outcome::Refused,
    };
    let msg = Settle {
        reservation_id: grant.id,
        character_id,
        outcome,
    };
    // Unsettled, the reservation expires at the sale on its own.
    let _ = api.router.ask::<Sale, _>(sale_id.to_string(), msg).await;
}

fn refusal(r: Result<Result<SaleGrant, SaleError>, Failure>) -> RpcError {
    match r {
        Ok(Ok(_)) => RpcError::internal("granted"),
        Ok(Err(e)) => sale_error(e),
        Err(f) => f.into(),
    }
}

/// The stored answer of a repeated request, else `error`.
async fn stored_or(api: &Api, call: &Call, error: RpcError) -> Result<String, RpcError> {
    let Some(key) = &call.key else {
        return Err(error);
    };
    match receipts::find(&api.db, key.user_id, &key.request_id).await {
        Ok(Some(s)) if s.fingerprint != key.fingerprint => Err(RpcError::request_id_reused()),
        Ok(Some(s)) => match serde_json::from_str::<SaleReceipt>(&s.answer) {
            Ok(r) => encode(&r),
            Err(_) => Err(error),
        },
        _ => Err(error),
    }
}

fn sale_error(e: SaleError) -> RpcError {
    match e {
        SaleError::NotFound => RpcError::not_found("no such sale"),
        SaleError::Invalid(m) => RpcError::invalid_argument(m),
        SaleError::Unavailable => Failure::not_run(e.to_string()).into(),
        other => RpcError::failed_precondition(other.to_string()),
    }
}

impl<T> NotRun for Result<T, SaleError> {
    fn not_run(&self) -> bool {
        matches!(self, Err(SaleError::Unavailable))
    }
}
