//! CharacterSession: one actor per character, activated through the Router on its first
//! message. It claims the character's row, loads its state, serves requests one at a time,
//! and passivates (flush, release the claim, stop) after the idle timeout.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix::prelude::*;
use uuid::Uuid;

use super::messages::*;
use super::rules::{self, RuleError};
use super::state::{CharacterState, SKILL_PREFIX};
use crate::catalog::Catalog;
use crate::market::actor::Market;
use crate::market::messages as market;
use crate::market::rules::GoodState;
use crate::persistence::batch::{AttributeDirty, CharacterDirty, DirtyRow};
use crate::persistence::characters::{self, TradeSettlement};
use crate::persistence::claims::{self, EntityId, EntityTable};
use crate::persistence::messages::{Fenced, FlushNow, MarkDirty};
use crate::persistence::{Db, DbError, PersistenceActor};
use crate::routing::{Entity, Router};

/// What a session needs from its node.
#[derive(Clone)]
pub struct CharacterDeps {
    pub db: Db,
    pub catalog: Arc<Catalog>,
    pub persistence: Addr<PersistenceActor>,
    /// Weak, so that the router's registries (which hold this) do not keep the router alive.
    pub router: Weak<Router>,
    pub node_id: String,
    pub idle: Duration,
}

enum Phase {
    Loading,
    Ready {
        state: Box<CharacterState>,
        epoch: i64,
    },
    Gone(SessionError),
}

pub struct CharacterSession {
    id: Uuid,
    deps: CharacterDeps,
    phase: Phase,
    last_active: Instant,
}

impl Entity for CharacterSession {
    type Key = Uuid;
    const KIND: &'static str = "character";
}

impl CharacterSession {
    pub fn new(id: Uuid, deps: CharacterDeps) -> Self {
        CharacterSession {
            id,
            deps,
            phase: Phase::Loading,
            last_active: Instant::now(),
        }
    }

    /// The loaded state, if the caller may see it.
    fn ready(&mut self, caller: Caller) -> SessionResult<(&mut CharacterState, i64)> {
        self.last_active = Instant::now();
        match &mut self.phase {
            Phase::Ready { state, epoch } => match caller {
                Caller::User(u) if u != state.user_id => Err(SessionError::NotYours),
                _ => Ok((state, *epoch)),
            },
            Phase::Gone(e) => Err(e.clone()),
            Phase::Loading => Err(SessionError::Unavailable),
        }
    }

    fn router(&self) -> SessionResult<Arc<Router>> {
        self.deps.router.upgrade().ok_or(SessionError::Unavailable)
    }

    /// Ends the session after a database error that means another node owns the character.
    fn on_db_error(&mut self, e: &DbError, ctx: &mut Context<Self>) -> SessionError {
        match e {
            DbError::Fenced(_) => {
                tracing::warn!(character = %self.id, "fenced: another claim owns this character; stopping");
                self.phase = Phase::Gone(SessionError::Unavailable);
                ctx.stop();
                SessionError::Unavailable
            }
            other => db_error(other),
        }
    }

    fn mark_dirty(&self, ctx: &mut Context<Self>, rows: Vec<DirtyRow>) {
        let fence = ctx.address().recipient::<Fenced>();
        for row in rows {
            self.deps.persistence.do_send(MarkDirty {
                row,
                fence: Some(fence.clone()),
            });
        }
    }
}

fn db_error(e: &DbError) -> SessionError {
    match e {
        DbError::Rejected(m) => SessionError::Refused(m.clone()),
        DbError::NotFound(m) => SessionError::Invalid(format!("{m} not found")),
        DbError::Fenced(_) | DbError::Unavailable(_) => SessionError::Unavailable,
        other => {
            tracing::error!(error = %other, "character database error");
            SessionError::Internal
        }
    }
}

fn rule_error(e: RuleError) -> SessionError {
    match e {
        RuleError::Invalid(m) => SessionError::Invalid(m),
        RuleError::NotAllowed(m) => SessionError::Refused(m),
    }
}

fn market_error(e: market::MarketError) -> SessionError {
    use market::MarketError as M;
    match e {
        M::UnknownGood | M::BadQuantity => SessionError::Invalid(e.to_string()),
        M::Unavailable => SessionError::Unavailable,
        other => SessionError::Refused(other.to_string()),
    }
}

/// The non-critical columns, as a dirty row.
pub fn dirty_rows(state: &CharacterState, epoch: i64) -> Vec<DirtyRow> {
    let mut rows = vec![DirtyRow::Character(CharacterDirty {
        id: state.id,
        epoch,
        location: state.location.clone(),
        hp: state.hp,
        xp: state.xp,
        level: state.level,
        skill_points: state.skill_points,
        travel: state.travel.clone(),
    })];
    rows.extend(state.skills.iter().map(|(code, rank)| {
        DirtyRow::Attribute(AttributeDirty {
            character_id: state.id,
            epoch,
            code: format!("{SKILL_PREFIX}{code}"),
            value: *rank,
        })
    }));
    rows
}

impl Actor for CharacterSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (db, id, node) = (self.deps.db.clone(), self.id, self.deps.node_id.clone());
        // Claim first, then load: the load then sees everything the previous owner committed.
        let load = async move {
            let epoch =
                claims::claim(&db, EntityTable::Character, &EntityId::Uuid(id), &node).await?;
            let state = characters::load(&db, id).await?;
            Ok::<_, DbError>(state.map(|s| (s, epoch)))
        };
        ctx.wait(load.into_actor(self).map(|result, act, ctx| {
            act.phase = match result {
                Ok(Some((state, epoch))) => Phase::Ready {
                    state: Box::new(state),
                    epoch,
                },
                Ok(None) | Err(DbError::NotFound(_)) => Phase::Gone(SessionError::NotFound),
                Err(e) => {
                    tracing::warn!(character = %act.id, error = %e, "activation failed");
                    Phase::Gone(SessionError::Unavailable)
                }
            };
            if let Phase::Gone(_) = act.phase {
                // Answer what is queued, then go: a later message activates afresh.
                ctx.run_later(Duration::from_millis(50), |_, ctx| ctx.stop());
            }
        }));
        let tick = (self.deps.idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
        ctx.run_interval(tick, |act, ctx| {
            if act.last_active.elapsed() >= act.deps.idle {
                ctx.notify(Passivate);
            }
        });
    }
}

impl Handler<Fenced> for CharacterSession {
    type Result = ();

    fn handle(&mut self, msg: Fenced, ctx: &mut Self::Context) {
        tracing::warn!(character = %self.id, key = ?msg.key, "dirty write fenced; stopping");
        self.phase = Phase::Gone(SessionError::Unavailable);
        ctx.stop();
    }
}

impl Handler<Passivate> for CharacterSession {
    type Result = ();

    /// Queues the final dirty rows, waits for their flush, releases the claim and stops. The
    /// mailbox is paused meanwhile; messages still queued when the actor stops are refused
    /// (the router answers "unavailable") and a later message activates a fresh session.
    fn handle(&mut self, _: Passivate, ctx: &mut Self::Context) {
        let Phase::Ready { state, epoch } = &self.phase else {
            ctx.stop();
            return;
        };
        let epoch = *epoch;
        self.mark_dirty(ctx, dirty_rows(state, epoch));
        let (persistence, db, id, node) = (
            self.deps.persistence.clone(),
            self.deps.db.clone(),
            self.id,
            self.deps.node_id.clone(),
        );
        self.phase = Phase::Gone(SessionError::Unavailable);
        let work = async move {
            if let Ok(Ok(())) = persistence.send(FlushNow).await {
                // Only after the flush: releasing first would let a new owner load stale rows.
                let _ = claims::release(
                    &db,
                    EntityTable::Character,
                    &EntityId::Uuid(id),
                    &node,
                    epoch,
                )
                .await;
            }
        };
        ctx.wait(work.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }
}

impl Handler<GetCharacter> for CharacterSession {
    type Result = SessionResult<CharacterState>;

    fn handle(&mut self, msg: GetCharacter, _: &mut Self::Context) -> Self::Result {
        self.ready(msg.caller).map(|(s, _)| s.clone())
    }
}

impl Handler<GetQuotes> for CharacterSession {
    type Result = ResponseFuture<SessionResult<(String, Vec<crate::market::rules::Quote>)>>;

    fn handle(&mut self, msg: GetQuotes, _: &mut Self::Context) -> Self::Result {
        let node = match self.ready(msg.caller) {
            Ok((s, _)) => s.location.clone(),
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let router = self.router();
        Box::pin(async move {
            let quotes = router?
                .send::<Market, _>(node.clone(), market::GetQuotes)
                .await
                .map_err(|_| SessionError::Unavailable)?;
            Ok((node, quotes))
        })
    }
}

impl Handler<ExecuteTrade> for CharacterSession {
    type Result = AtomicResponse<Self, SessionResult<TradeReceipt>>;

    /// Reserve at the market, settle gold, cargo and quota in one transaction, then commit or
    /// release the reservation. Atomic: the session takes no other message meanwhile.
    fn handle(&mut self, msg: ExecuteTrade, _: &mut Self::Context) -> Self::Result {
        let catalog = self.deps.catalog.clone();
        let prepared = self.ready(msg.caller).and_then(|(state, epoch)| {
            rules::precheck_trade(state, &catalog, &msg.good, msg.side, msg.quantity)
                .map_err(rule_error)?;
            Ok((state.clone(), epoch))
        });
        let (router, db) = (self.router(), self.deps.db.clone());
        let good = msg.good.clone();
        let work = async move {
            let (state, epoch) = prepared?;
            let router = router?;
            let node = state.location.clone();
            let reserve = market::Reserve {
                good: msg.good.clone(),
                side: msg.side,
                quantity: msg.quantity,
                price_limit: msg.price_limit,
            };
            let reservation = router
                .send::<Market, _>(node.clone(), reserve)
                .await
                .map_err(|_| SessionError::Unavailable)?
                .map_err(market_error)?;
            let settle = |committed| market::Settle {
                reservation_id: reservation.id,
                committed,
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
                    let _ = router.send::<Market, _>(node.clone(), settle(false)).await;
                    return Err(rule_error(e));
                }
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
            };
            let result = characters::settle_trade(&db, &settlement).await;
            let _ = router.send::<Market, _>(node, settle(result.is_ok())).await;
            Ok((result, effect, reservation))
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            move |outcome, act, ctx| {
                let (result, effect, reservation) = outcome?;
                let (gold, held) = result.map_err(|e| act.on_db_error(&e, ctx))?;
                debug_assert_eq!((gold, held), (effect.gold_after, effect.cargo_after));
                let (state, _) = act.ready(Caller::Server)?;
                rules::apply_trade(
                    state,
                    &good,
                    &rules::TradeEffect {
                        gold_after: gold,
                        cargo_after: held,
                    },
                );
                Ok(TradeReceipt {
                    gold,
                    unit_price: reservation.unit_price,
                    total: reservation.total,
                    state: state.clone(),
                })
            },
        )))
    }
}

impl Handler<HireCrew> for CharacterSession {
    type Result = AtomicResponse<Self, SessionResult<CharacterState>>;

    fn handle(&mut self, msg: HireCrew, _: &mut Self::Context) -> Self::Result {
        let catalog = self.deps.catalog.clone();
        let prepared = self.ready(msg.caller).and_then(|(state, epoch)| {
            let (member, cost) = rules::hire(
                state,
                &catalog,
                &msg.archetype,
                msg.name.as_deref(),
                Uuid::new_v4(),
            )
            .map_err(rule_error)?;
            Ok((state.id, epoch, member, cost))
        });
        let db = self.deps.db.clone();
        let work = async move {
            let (id, epoch, member, cost) = prepared?;
            Ok((
                characters::hire(&db, id, epoch, &member, cost).await,
                member,
            ))
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |outcome: SessionResult<_>, act, ctx| {
                let (result, member) = outcome?;
                let gold = result.map_err(|e| act.on_db_error(&e, ctx))?;
                let (state, _) = act.ready(Caller::Server)?;
                state.gold = gold;
                state.crew.push(member);
                Ok(state.clone())
            },
        )))
    }
}

impl Handler<DismissCrew> for CharacterSession {
    type Result = AtomicResponse<Self, SessionResult<CharacterState>>;

    fn handle(&mut self, msg: DismissCrew, _: &mut Self::Context) -> Self::Result {
        let catalog = self.deps.catalog.clone();
        let prepared = self.ready(msg.caller).and_then(|(state, epoch)| {
            rules::dismiss(state, &catalog, msg.crew_id).map_err(rule_error)?;
            Ok((state.id, epoch))
        });
        let db = self.deps.db.clone();
        let crew_id = msg.crew_id;
        let work = async move {
            let (id, epoch) = prepared?;
            Ok(characters::dismiss(&db, id, epoch, crew_id).await)
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            move |outcome: SessionResult<_>, act, ctx| {
                outcome?.map_err(|e| act.on_db_error(&e, ctx))?;
                let (state, _) = act.ready(Caller::Server)?;
                state.crew.retain(|c| c.id != crew_id);
                Ok(state.clone())
            },
        )))
    }
}

impl Handler<LearnSkill> for CharacterSession {
    type Result = SessionResult<CharacterState>;

    /// A small change: applied in memory and queued as dirty rows, flushed in a later batch.
    fn handle(&mut self, msg: LearnSkill, ctx: &mut Self::Context) -> Self::Result {
        let catalog = self.deps.catalog.clone();
        let (state, epoch) = self.ready(msg.caller)?;
        let rank = rules::learn(state, &catalog, &msg.skill).map_err(rule_error)?;
        let cost = catalog.skill(&msg.skill).map_or(0, |s| s.cost);
        state.skill_points -= cost;
        state.skills.insert(msg.skill.clone(), rank);
        let snapshot = state.clone();
        self.mark_dirty(ctx, dirty_rows(&snapshot, epoch));
        Ok(snapshot)
    }
}

impl Handler<DeleteCharacter> for CharacterSession {
    type Result = AtomicResponse<Self, SessionResult<()>>;

    fn handle(&mut self, msg: DeleteCharacter, _: &mut Self::Context) -> Self::Result {
        let prepared = self
            .ready(msg.caller)
            .map(|(state, epoch)| (state.id, epoch));
        let db = self.deps.db.clone();
        let work = async move {
            let (id, epoch) = prepared?;
            Ok(characters::delete(&db, id, epoch).await)
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |outcome: SessionResult<_>, act, ctx| {
                outcome?.map_err(|e| act.on_db_error(&e, ctx))?;
                act.phase = Phase::Gone(SessionError::NotFound);
                ctx.stop();
                Ok(())
            },
        )))
    }
}
