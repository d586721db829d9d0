//! The `Battle` actor: one per battle id, reached through the Router.
//!
//! Life cycle:
//! - **Start**: the first message of a new battle is [`StartBattle`] from the character's
//!   session. The actor finds no row when it loads, so it inserts the encounter row claimed by
//!   this node (epoch 1) together with the character's `battle_id`, in one transaction fenced
//!   by the session's epoch.
//! - **Load** (any other first message): claim the row (epoch + 1), load the setup and the
//!   logged turns, and replay them with the same seed. A battle that had ended but was not
//!   settled settles now; an active one continues from the last logged turn with a fresh
//!   turn timer. Turns resolved but not yet logged when a node died are played again.
//! - **Turns**: [`SubmitTurn`] validates and resolves a turn (pure rules), queues its compact
//!   log row with the persistence actor (batched, fenced by the epoch), pushes `battle_turn`
//!   to the owner's sockets and restarts the turn timer. A turn not submitted within
//!   `turn_timeout` resolves with no actions: everyone in the party defends.
//! - **End**: the log is flushed, then [`SettleBattle`] goes to the character's session, which
//!   settles everything in one transaction and applies it to its memory. A failed settlement
//!   is retried with backoff; nothing is half-settled because it is one transaction.
//! - **Passivation**: a settled battle passivates after `idle`; an active one never idles
//!   out (its timer ends it within `MAX_TURNS` timeouts). [`Passivate`] (shutdown) flushes the
//!   log, releases the claim and stops in any state.

mod settle;
mod turns;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use uuid::Uuid;

use super::messages::*;
use crate::domain::battle::rules::{self, Combat, Outcome, Setup, TurnRecord};
use crate::gateway::Notifier;
use crate::persistence::batch::{ActionLogRow, DirtyRow};
use crate::persistence::battles::{self, EncounterRow, NewEncounter};
use crate::persistence::claims::{self, EntityId, EntityTable};
use crate::persistence::messages::{wait_for_room, Fenced, FlushEntity, MarkDirty};
use crate::persistence::{Db, DbError, PersistenceActor};
use crate::protocol::client::Notification;
use crate::protocol::rpc::{notify, BattleView, TurnNotice, TurnView};
use crate::request::{Answers, Failure, Replay};
use crate::request::{Call, Caller};
use crate::routing::Entity;
use crate::routing::Passivate;

/// What a battle needs from its node.
#[derive(Clone)]
pub struct BattleDeps {
    pub db: Db,
    pub persistence: Addr<PersistenceActor>,
    /// Pushes to the owner, wherever in the cluster their sockets are.
    pub notifier: Notifier,
    /// Settles an ended battle with its character's session.
    pub settler: Arc<dyn Settler>,
    pub node_id: String,
    /// A settled battle passivates after this long without messages.
    pub idle: Duration,
    /// A turn not submitted within this resolves as "defend".
    pub turn_timeout: Duration,
}

struct Live {
    epoch: i64,
    combat: Combat,
    last: Option<TurnRecord>,
    settled: bool,
    /// The settlement summary (JSON text).
    result: Option<String>,
    deadline: Option<chrono::DateTime<Utc>>,
}

enum Phase {
    Loading,
    /// No such battle (yet): waiting for `StartBattle`, else stopping.
    Empty,
    Live(Box<Live>),
    Gone(BattleError),
}

/// One battle.
pub struct Battle {
    id: Uuid,
    deps: BattleDeps,
    phase: Phase,
    last_active: Instant,
    turn_timer: Option<SpawnHandle>,
    settling: bool,
    settle_attempts: u32,
    stopping: bool,
    /// Answers to keyed turns (`request_id`) this actor played: a repeat that reaches it is
    /// answered from here; one that reaches a new owner finds the answer in the database
    /// (written with the turn's record, see `play_turn`).
    answers: Answers,
}

impl Entity for Battle {
    type Key = Uuid;
    const KIND: &'static str = "battle";
}

struct Loaded {
    epoch: i64,
    row: EncounterRow,
    logs: Vec<(u32, Vec<u8>)>,
}

async fn load(deps: BattleDeps, id: Uuid) -> Result<Option<Loaded>, DbError> {
    let key = EntityId::Uuid(id);
    let epoch = match claims::claim(&deps.db, EntityTable::Battle, &key, &deps.node_id).await {
        Ok(e) => e,
        Err(DbError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(row) = battles::load(&deps.db, id).await? else {
        return Ok(None);
    };
    let logs = battles::load_log(&deps.db, id).await?;
    Ok(Some(Loaded { epoch, row, logs }))
}

fn rebuild(id: Uuid, l: Loaded) -> Result<Live, String> {
    let setup: Setup = serde_json::from_value(l.row.setup).map_err(|e| e.to_string())?;
    let mut combat = Combat::new(l.row.seed as u64, setup).map_err(|e| e.to_string())?;
    let (records, diverged) = rules::replay(&mut combat, &l.logs);
    if diverged > 0 {
        tracing::warn!(battle = %id, diverged, "replay differed from the log; the logged hit points were kept");
    }
    let settled = l.row.state != Outcome::Active.as_str();
    if settled {
        // The database's word on how it ended wins (a log row may be missing).
        if let Some(o) = Outcome::parse(&l.row.state) {
            combat.state.outcome = o;
        }
    }
    tracing::debug!(battle = %id, epoch = l.epoch, turns = records.len(), settled, "battle loaded");
    Ok(Live {
        epoch: l.epoch,
        combat,
        last: records.last().cloned(),
        settled,
        result: l.row.result.map(|v| v.to_string()),
        deadline: None,
    })
}

fn ready_fut<T: 'static>(v: T) -> ResponseActFuture<Battle, T> {
    Box::pin(actix::fut::ready(v))
}

fn atomic<T: 'static>(v: T) -> AtomicResponse<Battle, T> {
    AtomicResponse::new(ready_fut(v))
}

impl Battle {
    pub fn new(id: Uuid, deps: BattleDeps) -> Battle {
        Battle {
            id,
            deps,
            phase: Phase::Loading,
            last_active: Instant::now(),
            turn_timer: None,
            settling: false,
            settle_attempts: 0,
            stopping: false,
            answers: Answers::default(),
        }
    }

    /// The stored answer to a repeat of a keyed turn, if this battle played it.
    fn replay(&self, call: &Call) -> Option<BattleResult<(TurnRecord, BattleSnapshot)>> {
        match self.answers.replay(call.key.as_ref()?)? {
            Replay::Same(json) => Some(serde_json::from_str(&json).map_err(|e| {
                BattleError::Failed(Failure::may_have_run(format!(
                    "stored answer unreadable: {e}"
                )))
            })),
            Replay::Conflict => Some(Err(BattleError::Conflict)),
        }
    }

    fn remember(&mut self, call: &Call, answer: &(TurnRecord, BattleSnapshot)) {
        if let (Some(key), Ok(json)) = (&call.key, serde_json::to_string(answer)) {
            self.answers.remember(key, json);
        }
    }

    fn live(&mut self, caller: Caller) -> BattleResult<&mut Live> {
        self.last_active = Instant::now();
        match &mut self.phase {
            Phase::Live(live) => match caller {
                Caller::User(u) if u != live.combat.setup.user_id => Err(BattleError::NotYours),
                _ => Ok(live),
            },
            Phase::Empty => Err(BattleError::NotFound),
            Phase::Gone(e) => Err(e.clone()),
            Phase::Loading => Err(BattleError::busy()),
        }
    }

    fn snapshot(&self) -> Option<BattleSnapshot> {
        match &self.phase {
            Phase::Live(l) => Some(BattleSnapshot {
                id: self.id,
                combat: l.combat.clone(),
                last: l.last.clone(),
                settled: l.settled,
                result: l.result.clone(),
                turn_deadline: l.deadline,
            }),
            _ => None,
        }
    }

    fn gone(&mut self, e: BattleError, ctx: &mut Context<Self>) {
        self.phase = Phase::Gone(e);
        self.cancel_timer(ctx);
        // Answer what is queued first, then stop.
        ctx.run_later(Duration::from_millis(50), |_, ctx| ctx.stop());
    }

    fn cancel_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.turn_timer.take() {
            ctx.cancel_future(h);
        }
    }

    /// Starts the timer of the turn being played.
    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        self.cancel_timer(ctx);
        let timeout = self.deps.turn_timeout;
        let Phase::Live(live) = &mut self.phase else {
            return;
        };
        if live.combat.state.outcome != Outcome::Active {
            live.deadline = None;
            return;
        }
        let turn = live.combat.state.turn + 1;
        live.deadline = chrono::Duration::from_std(timeout)
            .ok()
            .map(|d| Utc::now() + d);
        self.turn_timer = Some(ctx.run_later(timeout, move |act, ctx| {
            act.turn_timer = None;
            act.on_timeout(turn, ctx);
        }));
    }

    /// After loading or starting: run the turn timer, or settle an ended battle.
    fn after_load(&mut self, ctx: &mut Context<Self>) {
        let Phase::Live(live) = &self.phase else {
            return;
        };
        if live.combat.state.outcome == Outcome::Active {
            self.arm_timer(ctx);
        } else if !live.settled {
            self.start_settle(ctx);
        }
    }

    fn on_timeout(&mut self, turn: u32, ctx: &mut Context<Self>) {
        let due = matches!(&self.phase, Phase::Live(l)
            if l.combat.state.outcome == Outcome::Active && l.combat.state.turn + 1 == turn);
        if !due || self.stopping {
            return;
        }
        tracing::debug!(battle = %self.id, turn, "turn timed out: the party defends");
        self.resolve(&[], true, ctx);
        self.after_turn(ctx);
    }

    /// Resolves the next turn, queues its log row, pushes it to the owner and rearms the timer.
    fn resolve(
        &mut self,
        actions: &[rules::Action],
        timed_out: bool,
        ctx: &mut Context<Self>,
    ) -> Option<TurnRecord> {
        let fence = ctx.address().recipient::<Fenced>();
        let Phase::Live(live) = &mut self.phase else {
            return None;
        };
        let record = rules::resolve_turn(&mut live.combat, actions, timed_out);
        live.last = Some(record.clone());
        let resolution = if timed_out { "timeout" } else { "submitted" };
        self.deps
            .db
            .metrics()
            .counter("serai_battle_turns_total", "resolution", resolution)
            .increment(1);
        self.deps.persistence.do_send(MarkDirty {
            row: DirtyRow::ActionLog(ActionLogRow {
                battle_id: self.id,
                epoch: live.epoch,
                turn: record.turn as i32,
                payload: record.log().encode(),
            }),
            fence: Some(fence),
        });
        // Backpressure: no further turn until the node's backlog has room (bounded wait).
        wait_for_room(&self.deps.persistence, ctx);
        self.arm_timer(ctx);
        if let Some(snapshot) = self.snapshot() {
            let notice = TurnNotice {
                battle_id: self.id,
                character_id: snapshot.combat.setup.character_id,
                resolved: TurnView::new(&snapshot.combat, &record),
                battle: BattleView::new(&snapshot),
            };
            let (subject, code) = notify::BATTLE_TURN;
            self.deps.notifier.notify(
                snapshot.combat.setup.user_id,
                Notification::new(subject, code, &notice),
            );
        }
        Some(record)
    }

    /// After a turn: settle if the battle ended.
    fn after_turn(&mut self, ctx: &mut Context<Self>) {
        let ended = matches!(&self.phase, Phase::Live(l) if l.combat.state.outcome != Outcome::Active && !l.settled);
        if ended {
            self.start_settle(ctx);
        }
    }

    fn begin_passivate(&mut self, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.cancel_timer(ctx);
        let epoch = match &self.phase {
            Phase::Live(l) => l.epoch,
            _ => {
                ctx.stop();
                return;
            }
        };
        self.phase = Phase::Gone(BattleError::busy());
        let (persistence, db, id, node) = (
            self.deps.persistence.clone(),
            self.deps.db.clone(),
            self.id,
            self.deps.node_id.clone(),
        );
        let work = async move {
            if let Ok(Ok(())) = persistence.send(FlushEntity(id)).await {
                // Only after the flush: releasing first would let a new owner miss log rows.
                let _ =
                    claims::release(&db, EntityTable::Battle, &EntityId::Uuid(id), &node, epoch)
                        .await;
            }
        };
        ctx.wait(work.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }
}

impl Actor for Battle {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (deps, id) = (self.deps.clone(), self.id);
        ctx.wait(load(deps, id).into_actor(self).map(|result, act, ctx| {
            match result {
                Ok(None) => {
                    act.phase = Phase::Empty;
                    // A new battle's `StartBattle` is already queued; anything else found
                    // nothing and the actor goes.
                    ctx.run_later(Duration::from_secs(1), |act, ctx| {
                        if matches!(act.phase, Phase::Empty) {
                            ctx.stop();
                        }
                    });
                }
                Ok(Some(loaded)) => match rebuild(act.id, loaded) {
                    Ok(live) => {
                        act.phase = Phase::Live(Box::new(live));
                        act.after_load(ctx);
                    }
                    Err(e) => {
                        tracing::error!(battle = %act.id, error = %e, "battle cannot be rebuilt");
                        act.gone(
                            BattleError::Failed(crate::request::Failure::not_run(
                                "the battle cannot be rebuilt",
                            )),
                            ctx,
                        );
                    }
                },
                Err(e) => {
                    tracing::warn!(battle = %act.id, error = %e, "battle activation failed");
                    act.gone(BattleError::busy(), ctx);
                }
            }
        }));
        let tick = (self.deps.idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
        ctx.run_interval(tick, |act, ctx| {
            let idle = match &act.phase {
                Phase::Live(l) => l.settled,
                _ => false,
            };
            if idle && !act.settling && act.last_active.elapsed() >= act.deps.idle {
                act.begin_passivate(ctx);
            }
        });
    }
}

impl Handler<StartBattle> for Battle {
    type Result = AtomicResponse<Self, BattleResult<BattleSnapshot>>;

    fn handle(&mut self, msg: StartBattle, _: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        match &self.phase {
            Phase::Empty => {}
            Phase::Live(l) => {
                // The same start again (its answer was lost): the battle as it is. Anything
                // else names a battle that exists already.
                let same = l.combat.setup.character_id == msg.setup.character_id
                    && l.combat.state.outcome == Outcome::Active
                    && !l.settled;
                return atomic(if same {
                    self.snapshot().ok_or_else(BattleError::busy)
                } else {
                    Err(BattleError::Refused("this battle id is taken".into()))
                });
            }
            Phase::Gone(e) => return atomic(Err(e.clone())),
            Phase::Loading => return atomic(Err(BattleError::busy())),
        }
        let combat = match Combat::new(msg.seed, msg.setup.clone()) {
            Ok(c) => c,
            Err(e) => return atomic(Err(BattleError::Invalid(e.to_string()))),
        };
        let setup = match serde_json::to_value(&msg.setup) {
            Ok(v) => v,
            Err(e) => return atomic(Err(BattleError::Invalid(e.to_string()))),
        };
        let encounter = NewEncounter {
            id: self.id,
            character_id: msg.setup.character_id,
            session_epoch: msg.session_epoch,
            node_id: self.deps.node_id.clone(),
            from: msg.setup.from.clone(),
            to: msg.setup.to.clone(),
            seed: msg.seed as i64,
            setup,
            travel: msg
                .travel
                .as_ref()
                .and_then(|t| serde_json::to_value(t).ok()),
        };
        let db = self.deps.db.clone();
        let work = async move { battles::create(&db, &encounter).await };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            move |result, act, ctx| {
                let epoch = result.map_err(|e| match e {
                    DbError::Rejected(m) => BattleError::Refused(m),
                    DbError::Fenced(_) => BattleError::Stale,
                    other => {
                        tracing::warn!(battle = %act.id, error = %other, "battle could not start");
                        BattleError::Failed(other.failure())
                    }
                })?;
                act.phase = Phase::Live(Box::new(Live {
                    epoch,
                    combat,
                    last: None,
                    settled: false,
                    result: None,
                    deadline: None,
                }));
                tracing::debug!(battle = %act.id, "battle started");
                act.deps
                    .db
                    .metrics()
                    .counter("serai_battles_total", "outcome", "started")
                    .increment(1);
                act.after_load(ctx);
                act.snapshot().ok_or_else(BattleError::busy)
            },
        )))
    }
}

impl Handler<GetBattle> for Battle {
    type Result = BattleResult<BattleSnapshot>;

    fn handle(&mut self, msg: GetBattle, _: &mut Self::Context) -> Self::Result {
        msg.call.start()?;
        self.live(msg.call.caller)?;
        self.snapshot().ok_or_else(BattleError::busy)
    }
}

impl Handler<Resume> for Battle {
    type Result = bool;

    fn handle(&mut self, _: Resume, _: &mut Self::Context) -> bool {
        matches!(self.phase, Phase::Live(_))
    }
}

impl Handler<Passivate> for Battle {
    type Result = ();

    fn handle(&mut self, _: Passivate, ctx: &mut Self::Context) {
        self.begin_passivate(ctx);
    }
}

impl Handler<Fenced> for Battle {
    type Result = ();

    fn handle(&mut self, msg: Fenced, ctx: &mut Self::Context) {
        tracing::warn!(battle = %self.id, key = ?msg.key, "battle log write fenced; stopping");
        self.stopping = true;
        self.gone(BattleError::busy(), ctx);
    }
}
