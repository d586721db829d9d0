//! The buyer's side of a limited-time sale (`buy_sale`, docs/world.md#limited-time-sales).
//!
//! The sale's owner (`crate::world::sale`, a layer above) reserves the units first; then the
//! buyer's session gets a [`BuySale`] naming that reservation's terms. The session checks what
//! only it knows (whose the character is, where it stands, its gold and cargo room) and writes
//! gold, cargo, the sale's `sold`, the buyer's purchase row and the receipt in one
//! transaction (`persistence::world_sales::buy`), fenced by its epoch. The caller then settles
//! the reservation with what happened. Atomic: the session takes no other message meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::actor::{rule_error, CharacterSession};
use super::messages::{SessionError, SessionResult};
use super::replay::{self, Written};
use super::requests::{answered, finish};
use crate::domain::world::sale::{self as rules, Committed};
use crate::persistence::receipts::Receipt;
use crate::persistence::world_sales::{self, Bought, Purchase};
use crate::request::{within, Call, Caller, Ticket};
use crate::routing::Remote;

/// Buy `quantity` of `good` at `node` for `total` gold under the sale's reservation.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<SaleReceipt>")]
pub struct BuySale {
    pub call: Call,
    pub sale_id: String,
    pub node: String,
    pub good: String,
    pub quantity: i64,
    pub total: i64,
    pub stock: i64,
    pub limit: i64,
}

impl Remote for BuySale {
    const NAME: &'static str = "character.buy_sale";
    fn renew_ticket(&mut self) -> Option<Ticket> {
        self.call.ticket = Ticket::default();
        Some(self.call.ticket.clone())
    }
}

/// A committed purchase: the answer, also what a `request_id` stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleReceipt {
    /// Units bought by this request.
    pub bought: i64,
    /// Units this character has bought in the sale so far.
    pub bought_total: i64,
    /// Units of the sale not sold when this purchase committed.
    pub stock_left: i64,
    /// The sale's `sold` when this purchase committed.
    pub sold: i64,
    pub gold: i64,
    /// The caravan's cargo afterwards.
    pub cargo: BTreeMap<String, i64>,
}

impl SaleReceipt {
    /// The sale's rows this purchase left, for its reservation's settle.
    pub fn rows(&self) -> Committed {
        Committed {
            sold: self.sold,
            bought: self.bought_total,
        }
    }
}

/// The answer to `m` from the rows its transaction left, given the cargo before.
fn receipt_of(m: &BuySale, cargo: &BTreeMap<String, i64>, b: &Bought) -> SaleReceipt {
    let mut cargo = cargo.clone();
    cargo.insert(m.good.clone(), b.held);
    SaleReceipt {
        bought: m.quantity,
        bought_total: b.rows.bought,
        stock_left: (m.stock - b.rows.sold).max(0),
        sold: b.rows.sold,
        gold: b.gold,
        cargo,
    }
}

impl Handler<BuySale> for CharacterSession {
    type Result = AtomicResponse<Self, SessionResult<SaleReceipt>>;

    fn handle(&mut self, msg: BuySale, _: &mut Self::Context) -> Self::Result {
        if let Some(hit) = replay::from_memory(&self.answers, &msg.call) {
            return answered(hit);
        }
        let catalog = self.deps.catalog.get();
        let prepared = self.start(&msg.call).and_then(|(state, epoch)| {
            if state.location != msg.node {
                return Err(SessionError::Refused(
                    rules::SaleError::WrongNode(msg.node.clone()).to_string(),
                ));
            }
            rules::precheck_purchase(state, &catalog, &msg.good, msg.quantity, msg.total)
                .map_err(rule_error)?;
            Ok((state.id, epoch, state.cargo.clone()))
        });
        let db = self.deps.db.clone();
        let m = msg.clone();
        let work = async move {
            let key = m.call.key.as_ref();
            let (id, epoch, cargo) = match prepared {
                Ok(p) => p,
                Err(e) => {
                    return replay::refusal_or_stored(&db, key, e)
                        .await
                        .map(|t| Ok(Written::Replayed(t)))
                }
            };
            let answer = {
                let (m, call) = (m.clone(), m.call.clone());
                Arc::new(move |b: &Bought| -> Option<Receipt> {
                    replay::receipt(&call, &receipt_of(&m, &cargo, b))
                })
            };
            let purchase = Purchase {
                sale_id: m.sale_id.clone(),
                character_id: id,
                epoch,
                good: m.good.clone(),
                quantity: m.quantity,
                total: m.total,
                limit: m.limit,
            };
            let result = world_sales::buy(&db, &purchase, answer).await;
            replay::settle(&db, key, result).await
        };
        let call = msg.call.clone();
        AtomicResponse::new(Box::pin(within(call.deadline, work).into_actor(self).map(
            move |outcome, act, ctx| {
                finish(act, ctx, &call, outcome, |act, bought: Bought| {
                    let (state, _) = act.ready(Caller::Server)?;
                    let answer = receipt_of(&msg, &state.cargo, &bought);
                    state.gold = answer.gold;
                    state.cargo = answer.cargo.clone();
                    act.publish();
                    act.feed_boards(false);
                    Ok(answer)
                })
            },
        )))
    }
}
