//! The client requests a [`CharacterSession`] serves. Each starts with
//! [`CharacterSession::start`] (deadline, then caller), decides with the pure rules, and
//! answers only after its change committed. A keyed request (`request_id`) stores its answer
//! in the transaction of its change; a repeat is answered from memory or from the database
//! (see `replay`), never applied twice.
//!
//! Critical writes (one transaction each, acknowledged after commit): trade, hire, dismiss,
//! learn a skill, depart, delete. The session applies to memory exactly what committed; after
//! a commit whose outcome is unknown it reloads (see `CharacterSession::on_db_error`).

use actix::prelude::*;
use uuid::Uuid;

use super::actor::{market_error, rule_error, CharacterSession};
use super::messages::*;
use super::replay::{self, Written};
use crate::domain::character::rules;
use crate::domain::character::state::CharacterState;
use crate::domain::character::travel;
use crate::domain::market::rules::GoodState;
use crate::market::actor::Market;
use crate::market::messages as market;
use crate::persistence::characters::{self, TradeSettlement};
use crate::persistence::messages::FlushEntity;
use crate::persistence::receipts::Receipt;
use crate::persistence::DbError;
use crate::request::{within, Call, Caller};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An answer known before any work (a refusal, or a repeat answered from memory).
pub(super) fn answered<T: 'static>(
    r: SessionResult<T>,
) -> AtomicResponse<CharacterSession, SessionResult<T>> {
    AtomicResponse::new(Box::pin(actix::fut::ready(r)))
}

/// Finishes a critical write on the actor: a replay is answered as stored (memory already
/// holds the change, or was reloaded with it); a commit is applied to memory by `apply`,
/// which returns the answer; a write error goes through `on_db_error`.
pub(super) fn finish<T, W>(
    act: &mut CharacterSession,
    ctx: &mut Context<CharacterSession>,
    call: &Call,
    outcome: SessionResult<Result<Written<T, W>, DbError>>,
    apply: impl FnOnce(&mut CharacterSession, W) -> SessionResult<T>,
) -> SessionResult<T>
where
    T: serde::Serialize,
{
    match outcome?.map_err(|e| act.on_db_error(&e, ctx))? {
        Written::Replayed(answer) => Ok(answer),
        Written::Committed(w) => {
            let answer = apply(act, w)?;
            if let Some(key) = &call.key {
                if let Ok(json) = serde_json::to_string(&answer) {
                    act.answers.remember(key, json);
                }
            }
            Ok(answer)
        }
    }
}

/// Whether a trade whose commit got no answer was applied: the session is the only writer of
/// its cargo, so the cargo it would have left says so. Asked again for a while (the database
/// may be away); a reservation never settled expires at the market on its own.
async fn trade_committed(db: &crate::persistence::Db, id: Uuid, good: &str, held: i64) -> bool {
    for _ in 0..20 {
        match characters::load(db, id).await {
            Ok(Some(c)) => return c.cargo.get(good).copied().unwrap_or(0) == held,
            Ok(None) => return false,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
    false
}

impl Handler<GetCharacter> for CharacterSession {
    type Result = SessionResult<CharacterState>;

    fn handle(&mut self, msg: GetCharacter, _: &mut Self::Context) -> Self::Result {
        self.start(&msg.call).map(|(s, _)| s.clone())
    }
}

impl Handler<GetQuotes> for CharacterSession {
    type Result = ResponseFuture<SessionResult<(String, Vec<crate::domain::market::rules::Quote>)>>;

    fn handle(&mut self, msg: GetQuotes, _: &mut Self::Context) -> Self::Result {
        let node = match self.start(&msg.call) {
            Ok((s, _)) => s.location.clone(),
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let router = self.router();
        Box::pin(async move {
            let quotes = router?
                .ask_until::<Market, _>(node.clone(), market::GetQuotes, msg.call.deadline)
                .await?;
            Ok((node, quotes))
        })
    }
}

impl Handler<ExecuteTrade> for CharacterSession {
    type Result = AtomicResponse<Self, SessionResult<TradeReceipt>>;

    /// Reserve at the market, settle gold, cargo and quota (and the receipt) in one
    /// transaction, then commit or release the reservation. Atomic: the session takes no
    /// other message meanwhile.
    fn handle(&mut self, msg: ExecuteTrade, _: &mut Self::Context) -> Self::Result {
        if let Some(hit) = replay::from_memory(&self.answers, &msg.call) {
            return answered(hit);
        }
        let catalog = self.deps.catalog.get();
        let prepared = self.start(&msg.call).and_then(|(state, epoch)| {
            rules::precheck_trade(state, &catalog, &msg.good, msg.side, msg.quantity)
                .map_err(rule_error)?;
            Ok((state.clone(), epoch))
        });
        let (router, db) = (self.router(), self.deps.db.clone());
        let (call, good) = (msg.call.clone(), msg.good.clone());
        let work = async move {
            let key = msg.call.key.as_ref();
            let (state, epoch) = match prepared {
                Ok(p) => p,
                Err(e) => {
                    return replay::refusal_or_stored(&db, key, e)
                        .await
                        .map(|t| Ok(Written::Replayed(t)))
                }
            };
            let router = router?;
            let node = state.location.clone();
            let reserve = market::Reserve {
                good: msg.good.clone(),
                side: msg.side,
                quantity: msg.quantity,
                price_limit: msg.price_limit,
            };
            // Whatever happened to a reservation we never hear of, it expires at the market.
            let reservation = match router
                .ask_until::<Market, _>(node.clone(), reserve, msg.call.deadline)
                .await?
            {
                Ok(r) => r,
                Err(e) => {
                    return replay::refusal_or_stored(&db, key, market_error(e))
                        .await
                        .map(|t| Ok(Written::Replayed(t)))
                }
            };
            let reservation_id = reservation.id;
            let settled_good = msg.good.clone();
            let settle = move |outcome| market::Settle {
                reservation_id,
                good: settled_good.clone(),
                outcome,
            };
            let effect = match rules::trade_effect(
                &state,
                &msg.good,
                msg.side,
                msg.quantity,
                reservation.total,
            ) {
                Ok(e) => e,
                Err(e) => {
                    let _ = router
                        .ask::<Market, _>(node.clone(), settle(market::SettleOutcome::NotRun))
                        .await;
                    return Err(rule_error(e));
                }
            };
            let mut after = state.clone();
            rules::apply_trade(&mut after, &msg.good, &effect);
            let answer = TradeReceipt {
                gold: effect.gold_after,
                unit_price: reservation.unit_price,
                total: reservation.total,
                cargo: after.cargo,
            };
            let price_after = catalog
                .stock(&node, &msg.good)
                .map_or(reservation.unit_price, |s| {
                    GoodState::from_stock(s, reservation.stock_after).reference_price()
                });
            let settlement = TradeSettlement {
                character_id: state.id,
                epoch,
                node: node.clone(),
                good: msg.good.clone(),
                side: msg.side,
                quantity: msg.quantity,
                total: reservation.total,
                price_after,
                receipt: replay::receipt(&msg.call, &answer),
            };
            let result = characters::settle_trade(&db, &settlement).await;
            if let Err(DbError::CommitUnknown(_)) = &result {
                // The market learns the outcome once the database can tell it.
                let held = effect.cargo_after;
                let (db, router, good) = (db.clone(), router.clone(), msg.good.clone());
                let id = state.id;
                tokio::spawn(async move {
                    let outcome = match trade_committed(&db, id, &good, held).await {
                        true => market::SettleOutcome::Committed(None),
                        false => market::SettleOutcome::NotRun,
                    };
                    let _ = router.ask::<Market, _>(node, settle(outcome)).await;
                });
            } else {
                let outcome = match &result {
                    Ok(done) => market::SettleOutcome::Committed(Some(done.market)),
                    Err(DbError::Rejected(_)) => market::SettleOutcome::Refused,
                    Err(_) => market::SettleOutcome::NotRun,
                };
                let _ = router.ask::<Market, _>(node, settle(outcome)).await;
            }
            let result = result.map(|_| answer);
            replay::settle(&db, key, result).await
        };
        AtomicResponse::new(Box::pin(within(call.deadline, work).into_actor(self).map(
            move |outcome, act, ctx| {
                finish(act, ctx, &call, outcome, |act, answer: TradeReceipt| {
                    let (state, _) = act.ready(Caller::Server)?;
                    let effect = rules::TradeEffect {
                        gold_after: answer.gold,
                        cargo_after: answer.cargo.get(&good).copied().unwrap_or(0),
                    };
                    rules::apply_trade(state, &good, &effect);
                    act.feed_boards(false);
                    Ok(answer)
                })
            },
        )))
    }
}

/// A critical write whose answer is the character afterwards.
type StateWrite = AtomicResponse<CharacterSession, SessionResult<CharacterState>>;

impl CharacterSession {
    /// Carries out a critical write the rules decided: `prepared` is their verdict (what
    /// `write` needs, and the character afterwards); `write` commits it with the receipt of
    /// that answer; once committed, memory becomes the character afterwards and `on_commit`
    /// follows. A refusal of a repeat, or a duplicate receipt, answers the stored answer.
    fn write_state<P, Fut>(
        &mut self,
        call: Call,
        prepared: SessionResult<(P, CharacterState)>,
        write: impl FnOnce(crate::persistence::Db, P, CharacterState, Option<Receipt>) -> Fut + 'static,
        on_commit: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
    ) -> StateWrite
    where
        P: 'static,
        Fut: std::future::Future<Output = Result<(), DbError>> + 'static,
    {
        if let Some(hit) = replay::from_memory(&self.answers, &call) {
            return answered(hit);
        }
        let db = self.deps.db.clone();
        let key = call.key.clone();
        let receipt_call = call.clone();
        let work = async move {
            let (p, after) = match prepared {
                Ok(p) => p,
                Err(e) => {
                    let stored = replay::refusal_or_stored(&db, key.as_ref(), e).await;
                    return stored.map(|t| Ok(Written::Replayed(t)));
                }
            };
            let receipt = replay::receipt(&receipt_call, &after);
            let result = write(db.clone(), p, after.clone(), receipt)
                .await
                .map(|()| after);
            replay::settle(&db, key.as_ref(), result).await
        };
        let deadline = call.deadline;
        AtomicResponse::new(Box::pin(within(deadline, work).into_actor(self).map(
            move |outcome, act, ctx| {
                let answer = finish(act, ctx, &call, outcome, |act, after: CharacterState| {
                    let (state, _) = act.ready(Caller::Server)?;
                    *state = after.clone();
                    act.publish();
                    Ok(after)
                });
                if answer.is_ok() {
                    on_commit(act, ctx);
                }
                answer
            },
        )))
    }
}

impl Handler<HireCrew> for CharacterSession {
    type Result = StateWrite;

    fn handle(&mut self, msg: HireCrew, _: &mut Self::Context) -> Self::Result {
        let catalog = self.deps.catalog.get();
        let prepared = self.start(&msg.call).and_then(|(state, epoch)| {
            let (member, cost) = rules::hire(
                state,
                &catalog,
                &msg.archetype,
                msg.name.as_deref(),
                Uuid::new_v4(),
            )
            .map_err(rule_error)?;
            let mut after = state.clone();
            after.gold -= cost;
            after.crew.push(member.clone());
            Ok(((epoch, member, cost), after))
        });
        let write = |db, (epoch, member, cost), after: CharacterState, receipt: Option<Receipt>| async move {
            characters::hire(&db, after.id, epoch, &member, cost, receipt.as_ref())
                .await
                .map(|_| ())
        };
        self.write_state(msg.call, prepared, write, |_, _| {})
    }
}

impl Handler<DismissCrew> for CharacterSession {
    type Result = StateWrite;

    fn handle(&mut self, msg: DismissCrew, _: &mut Self::Context) -> Self::Result {
        let catalog = self.deps.catalog.get();
        let crew_id = msg.crew_id;
        let prepared = self.start(&msg.call).and_then(|(state, epoch)| {
            rules::dismiss(state, &catalog, crew_id).map_err(rule_error)?;
            let mut after = state.clone();
            after.crew.retain(|c| c.id != crew_id);
            Ok((epoch, after))
        });
        let write = move |db, epoch, after: CharacterState, receipt: Option<Receipt>| async move {
            characters::dismiss(&db, after.id, epoch, crew_id, receipt.as_ref()).await
        };
        self.write_state(msg.call, prepared, write, |_, _| {})
    }
}

impl Handler<LearnSkill> for CharacterSession {
    type Result = StateWrite;

    /// Spends skill points: written before the answer (a crash must not refund or lose it).
    fn handle(&mut self, msg: LearnSkill, _: &mut Self::Context) -> Self::Result {
        let catalog = self.deps.catalog.get();
        let prepared = self.start(&msg.call).and_then(|(state, epoch)| {
            let rank = rules::learn(state, &catalog, &msg.skill).map_err(rule_error)?;
            let cost = catalog.skill(&msg.skill).map_or(0, |s| s.cost);
            let mut after = state.clone();
            after.skill_points -= cost;
            after.skills.insert(msg.skill.clone(), rank);
            Ok(((epoch, rank, cost), after))
        });
        let (persistence, deadline, skill) = (
            self.deps.persistence.clone(),
            msg.call.deadline,
            msg.skill.clone(),
        );
        let write = move |db,
                          (epoch, rank, cost),
                          after: CharacterState,
                          receipt: Option<Receipt>| async move {
            // Rows queued before (they carry skill points) land first, never after: this
            // character's rows only, not the node's backlog.
            let flush = persistence.send(FlushEntity(after.id));
            match tokio::time::timeout_at(deadline.instant(), flush).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(e)) => return Err(DbError::Unavailable(e.to_string())),
                Err(_) => {
                    return Err(DbError::Unavailable(
                        "queued rows not flushed before the deadline".into(),
                    ))
                }
            }
            let skill = (skill.as_str(), rank, cost);
            characters::learn_skill(&db, after.id, epoch, skill, receipt.as_ref())
                .await
                .map(|_| ())
        };
        self.write_state(msg.call, prepared, write, |_, _| {})
    }
}

impl Handler<DeleteCharacter> for CharacterSession {
    type Result = AtomicResponse<Self, SessionResult<()>>;

    fn handle(&mut self, msg: DeleteCharacter, _: &mut Self::Context) -> Self::Result {
        if let Some(hit) = replay::from_memory(&self.answers, &msg.call) {
            return answered(hit);
        }
        let prepared = self.start(&msg.call).and_then(|(state, epoch)| {
            if state.battle_id.is_some() {
                return Err(SessionError::Refused(
                    "the character is in a battle; finish it first".into(),
                ));
            }
            Ok((state.id, epoch))
        });
        let db = self.deps.db.clone();
        let call = msg.call.clone();
        let work = async move {
            let key = call.key.as_ref();
            let (id, epoch) = match prepared {
                Ok(p) => p,
                Err(e) => {
                    return replay::refusal_or_stored(&db, key, e)
                        .await
                        .map(|t| Ok(Written::Replayed(t)))
                }
            };
            let receipt = replay::receipt(&call, &());
            let result = characters::delete(&db, id, epoch, receipt.as_ref()).await;
            replay::settle(&db, key, result).await
        };
        let call = msg.call;
        AtomicResponse::new(Box::pin(within(call.deadline, work).into_actor(self).map(
            move |outcome, act, ctx| {
                let answer = finish(act, ctx, &call, outcome, |_, ()| Ok(()));
                if let Ok(()) = answer {
                    // Gone: a later message activates afresh and finds no character.
                    act.phase = super::actor::Phase::Gone(SessionError::NotFound);
                    act.withdraw();
                    ctx.stop();
                }
                answer
            },
        )))
    }
}

impl Handler<Travel> for CharacterSession {
    type Result = StateWrite;

    /// Departure is written before it is acknowledged; the trip's progress is then kept in
    /// memory, and the encounter and the arrival are written when they happen.
    fn handle(&mut self, msg: Travel, _: &mut Self::Context) -> Self::Result {
        let (catalog, settings) = (self.deps.catalog.get(), self.deps.travel);
        let prepared = self.start(&msg.call).and_then(|(state, epoch)| {
            let trip = travel::plan(
                state,
                &catalog,
                &msg.to,
                &settings,
                rand::random(),
                now_ms(),
            )
            .map_err(rule_error)?;
            let json = serde_json::to_value(&trip)
                .map_err(|e| SessionError::Invalid(format!("the trip does not encode: {e}")))?;
            let mut after = state.clone();
            after.travel = Some(trip);
            Ok(((epoch, json), after))
        });
        let write = |db, (epoch, json), after: CharacterState, receipt: Option<Receipt>| async move {
            characters::depart(&db, after.id, epoch, &json, receipt.as_ref()).await
        };
        self.write_state(msg.call, prepared, write, |act, ctx| {
            act.count_travel("departed");
            act.schedule_trip(ctx);
        })
    }
}
