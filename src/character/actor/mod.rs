//! CharacterSession: one actor per character, activated through the Router on its first
//! message. It claims the character's row, loads its state, serves requests one at a time,
//! and passivates (flush, release the claim, stop) after the idle timeout.
//!
//! Travel: the session keeps the trip in memory (dirty-flushed as the `travel` column) and an
//! actix timer for what is due next: the encounter, then the arrival. Encounter and arrival
//! are critical writes, and so is a battle's settlement, which the Battle sends here so that
//! memory and database change together. A session with a caravan on the road does not idle
//! out; one that was stopped mid-trip (shutdown, handoff) picks the trip up on load and does
//! what fell due meanwhile. Every critical write that touches a dirty column waits for the
//! dirty rows it queued before (`FlushEntity`: its own rows only, written at once, never the
//! node's whole backlog), so a late batch never overwrites it.

mod passivation;
mod published;
mod settlement;
mod trip;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix::prelude::*;
use uuid::Uuid;

use super::messages::*;
use crate::battle::messages::{BattleError, BattleSnapshot, Resume, StartBattle};
use crate::battle::Battle;
use crate::domain::battle::rng::Rng;
use crate::domain::battle::rules as battle_rules;
use crate::domain::catalog::CurrentCatalog;
use crate::domain::character::rules::{self, RuleError};
use crate::domain::character::state::{CharacterState, SKILL_PREFIX};
use crate::domain::character::travel::{self, Next, TravelSettings};
use crate::gateway::notification_store::to_stored;
use crate::gateway::Notifier;
use crate::market::messages as market;
use crate::persistence::batch::{AttributeDirty, CharacterDirty, DirtyRow};
use crate::persistence::battles::{self, BattleSettlement, SettleOutcome};
use crate::persistence::characters;
use crate::persistence::claims::{self, EntityId, EntityTable};
use crate::persistence::messages::{wait_for_room, Fenced, FlushEntity, MarkDirty};
use crate::persistence::{Db, DbError, PersistenceActor};
use crate::protocol::client::Notification;
use crate::protocol::rpc::{self as wire, notify};
use crate::request::{Answers, Deadline, Failure};
use crate::request::{Call, Caller};
use crate::routing::handover::Handovers;
use crate::routing::placement::Owner;
use crate::routing::Passivate;
use crate::routing::{Entity, Router};

/// What a session needs from its node.
#[derive(Clone)]
pub struct CharacterDeps {
    pub db: Db,
    /// The catalog served now: take it with `get()` at the start of each request.
    pub catalog: CurrentCatalog,
    pub persistence: Addr<PersistenceActor>,
    /// Weak, so that the router's registries (which hold this) do not keep the router alive.
    pub router: Weak<Router>,
    pub node_id: String,
    pub idle: Duration,
    /// Pushes to the character's owner, wherever in the cluster their sockets are.
    pub notifier: Notifier,
    pub travel: TravelSettings,
    /// States handed over by the previous owners of characters that moved here.
    pub handovers: Arc<Handovers<Uuid, CharacterState>>,
    /// Where ready sessions publish their [`Whereabouts`] for readers on other threads.
    pub whereabouts: Arc<CharacterWhereabouts>,
}

/// How long to wait before trying a failed encounter or arrival write again.
const TRIP_RETRY: Duration = Duration::from_secs(1);
/// How long a passivating session keeps asking for its final flush before it gives up for now
/// (its mailbox waits meanwhile: short, so requests queued behind it still meet their deadline).
const FINAL_FLUSH_LIMIT: Duration = Duration::from_secs(2);
/// When a passivation whose final flush failed is tried again.
const PASSIVATION_RETRY: Duration = Duration::from_secs(1);
/// How long a released session waits for its new owner to take its state.
const HANDOVER_OFFER_LIMIT: Duration = Duration::from_millis(500);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(super) enum Phase {
    Loading,
    Ready {
        state: Box<CharacterState>,
        epoch: i64,
    },
    /// A write's outcome is unknown: memory may be stale, so the state is read again from the
    /// database (keeping the claim and its epoch) before the next request is served.
    Reloading {
        epoch: i64,
    },
    Gone(SessionError),
}

pub struct CharacterSession {
    pub(super) id: Uuid,
    pub(super) deps: CharacterDeps,
    pub(super) phase: Phase,
    last_active: Instant,
    /// The timer of what is due next on the trip.
    trip_timer: Option<SpawnHandle>,
    /// Answers to keyed requests this session committed (repeats are answered from here).
    pub(super) answers: Answers,
    /// The epoch under which this activation's [`Whereabouts`] are published, if they are.
    published: Option<i64>,
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
            trip_timer: None,
            answers: Answers::default(),
            published: None,
        }
    }

    /// The loaded state for a client request: refused (*not run*) past its deadline.
    pub(super) fn start(&mut self, call: &Call) -> SessionResult<(&mut CharacterState, i64)> {
        call.start()?;
        self.ready(call.caller)
    }

    /// The loaded state, if the caller may see it.
    pub(super) fn ready(&mut self, caller: Caller) -> SessionResult<(&mut CharacterState, i64)> {
        self.last_active = Instant::now();
        match &mut self.phase {
            Phase::Ready { state, epoch } => match caller {
                Caller::User(u) if u != state.user_id => Err(SessionError::NotYours),
                _ => Ok((state, *epoch)),
            },
            Phase::Gone(e) => Err(e.clone()),
            Phase::Loading | Phase::Reloading { .. } => Err(SessionError::busy()),
        }
    }

    pub(super) fn router(&self) -> SessionResult<Arc<Router>> {
        self.deps
            .router
            .upgrade()
            .ok_or_else(|| Failure::not_run("the node is stopping").into())
    }

    /// What a failed critical write means for the session and its caller: a newer claim ends
    /// the session; an unknown commit makes it read its state again before serving anything
    /// else (memory may be stale either way), and the caller hears it may have run.
    pub(super) fn on_db_error(&mut self, e: &DbError, ctx: &mut Context<Self>) -> SessionError {
        match e {
            DbError::Fenced(_) => {
                tracing::warn!(character = %self.id, "fenced: another claim owns this character; stopping");
                self.phase = Phase::Gone(SessionError::busy());
                self.withdraw();
                ctx.stop();
                SessionError::busy()
            }
            DbError::CommitUnknown(_) => {
                tracing::warn!(character = %self.id, error = %e, "commit outcome unknown; reloading the session");
                self.reload(ctx);
                SessionError::Failed(e.failure())
            }
            other => db_error(other),
        }
    }

    /// Reads the character again from the database under the same claim, after flushing what
    /// is queued for it, holding the mailbox meanwhile; tried again until it works.
    fn reload(&mut self, ctx: &mut Context<Self>) {
        let epoch = match &self.phase {
            Phase::Ready { epoch, .. } | Phase::Reloading { epoch } => *epoch,
            _ => return,
        };
        self.phase = Phase::Reloading { epoch };
        self.withdraw();
        if let Some(h) = self.trip_timer.take() {
            ctx.cancel_future(h);
        }
        let (persistence, db, id) = (self.deps.persistence.clone(), self.deps.db.clone(), self.id);
        let work = async move {
            persistence
                .send(FlushEntity(id))
                .await
                .map_err(|e| DbError::Unavailable(e.to_string()))??;
            characters::load(&db, id).await
        };
        ctx.wait(work.into_actor(self).map(move |result, act, ctx| match result {
            Ok(Some(state)) => {
                act.phase = Phase::Ready {
                    state: Box::new(state),
                    epoch,
                };
                act.publish();
                act.schedule_trip(ctx);
            }
            Ok(None) => {
                act.phase = Phase::Gone(SessionError::NotFound);
                ctx.stop();
            }
            Err(e) => {
                tracing::warn!(character = %act.id, error = %e, "reload failed, will retry");
                ctx.run_later(TRIP_RETRY, |act, ctx| act.reload(ctx));
            }
        }));
    }

    /// Whether a caravan is on the road (not held by a battle): the session stays up for it.
    fn on_the_road(&self) -> bool {
        matches!(&self.phase, Phase::Ready { state, .. }
            if state.battle_id.is_none() && state.travel.is_some())
    }

    pub(super) fn notify(
        &self,
        user_id: Uuid,
        (subject, code): (&str, i32),
        content: &impl serde::Serialize,
    ) {
        self.deps
            .notifier
            .notify(user_id, Notification::new(subject, code, content));
    }

    /// A persistent notification whose id derives from `key`, the event it reports: written
    /// in the transaction of that event, a retried transaction stores it once.
    pub(super) fn persistent_notice(
        (subject, code): (&str, i32),
        content: &impl serde::Serialize,
        key: &str,
    ) -> Notification {
        let mut n = Notification::new(subject, code, content);
        let key = format!("serai/notification/{key}");
        n.id = Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()).to_string();
        n.persistent = true;
        n
    }

    /// `serai_travel_total{event}`: departed, encounter, arrived.
    pub(super) fn count_travel(&self, event: &'static str) {
        self.deps
            .db
            .metrics()
            .counter("serai_travel_total", "event", event)
            .increment(1);
    }

    /// Feeds the server's game boards (`wealth`, `battles_won`) after a committed change. The
    /// leaderboard write commits on its own; a failure is logged and the next change catches
    /// the board up (wealth is a `set`, battles an `incr` that is lost only if the board is
    /// unreachable).
    pub(super) fn feed_boards(&self, battle_won: bool) {
        let (Ok(router), Phase::Ready { state, .. }) = (self.router(), &self.phase) else {
            return;
        };
        let wealth = rules::wealth(state, &self.deps.catalog.get());
        let (id, name) = (state.id, state.name.clone());
        actix::spawn(async move {
            use crate::leaderboard::game_boards;
            if let Err(e) = game_boards::submit_wealth(&router, id, &name, wealth).await {
                tracing::warn!(character = %id, error = ?e, "wealth board not updated");
            }
            if battle_won {
                if let Err(e) = game_boards::submit_battle_won(&router, id, &name).await {
                    tracing::warn!(character = %id, error = ?e, "battles_won board not updated");
                }
            }
        });
    }

    /// After loading: pick the trip up, and wake the battle the character is in (a battle
    /// whose node stopped continues when touched; this touches it).
    fn after_load(&mut self, ctx: &mut Context<Self>) {
        // A trip left paused without a battle (never written so, but cheap to mend) goes on.
        if let Phase::Ready { state, epoch } = &mut self.phase {
            if state.battle_id.is_none()
                && state
                    .travel
                    .as_ref()
                    .is_some_and(|t| t.paused_elapsed_ms.is_some())
            {
                state.travel = state.travel.as_ref().map(|t| travel::resume(t, now_ms()));
                let rows = dirty_rows(state, *epoch);
                self.mark_dirty(ctx, rows);
            }
        }
        self.publish();
        self.schedule_trip(ctx);
        let battle = match &self.phase {
            Phase::Ready { state, .. } => state.battle_id,
            _ => None,
        };
        if let (Some(battle_id), Ok(router)) = (battle, self.router()) {
            ctx.spawn(
                async move {
                    if !router
                        .ask::<Battle, _>(battle_id, Resume)
                        .await
                        .unwrap_or(true)
                    {
                        tracing::warn!(%battle_id, "the character's battle does not exist");
                    }
                }
                .into_actor(self),
            );
        }
    }

    /// Queues the rows, then takes no other message until the node's backlog has room (at
    /// once, unless it is over its high-water mark; bounded by the writer wait): the
    /// backpressure that keeps the backlog bounded without dropping anything.
    pub(super) fn mark_dirty(&self, ctx: &mut Context<Self>, rows: Vec<DirtyRow>) {
        let fence = ctx.address().recipient::<Fenced>();
        for row in rows {
            self.deps.persistence.do_send(MarkDirty {
                row,
                fence: Some(fence.clone()),
            });
        }
        wait_for_room(&self.deps.persistence, ctx);
    }
}

pub(super) fn db_error(e: &DbError) -> SessionError {
    match e {
        DbError::Rejected(m) => SessionError::Refused(m.clone()),
        DbError::NotFound(m) => SessionError::Invalid(format!("{m} not found")),
        other => {
            tracing::warn!(error = %other, "character database error");
            SessionError::Failed(other.failure())
        }
    }
}

pub(super) fn rule_error(e: RuleError) -> SessionError {
    match e {
        RuleError::Invalid(m) => SessionError::Invalid(m),
        RuleError::NotAllowed(m) => SessionError::Refused(m),
    }
}

pub(super) fn market_error(e: market::MarketError) -> SessionError {
    use market::MarketError as M;
    match e {
        M::UnknownGood | M::BadQuantity => SessionError::Invalid(e.to_string()),
        M::Unavailable => SessionError::busy(),
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
        travel: state
            .travel
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok()),
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

    fn stopped(&mut self, _: &mut Self::Context) {
        self.withdraw();
    }

    fn started(&mut self, ctx: &mut Self::Context) {
        let (db, id, node) = (self.deps.db.clone(), self.id, self.deps.node_id.clone());
        let handovers = self.deps.handovers.clone();
        let counter = |how| {
            db.metrics()
                .counter("serai_character_activations_total", "from", how)
        };
        let (from_handover, from_db) = (counter("handover"), counter("database"));
        // Claim first, then load: the load then sees everything the previous owner committed.
        // A state handed over right before this claim is exactly that, without the load.
        let load = async move {
            let epoch =
                claims::claim(&db, EntityTable::Character, &EntityId::Uuid(id), &node).await?;
            if let Some(state) = handovers.take(&id, epoch) {
                from_handover.increment(1);
                return Ok(Some((state, epoch)));
            }
            from_db.increment(1);
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
                    Phase::Gone(SessionError::busy())
                }
            };
            if let Phase::Gone(_) = act.phase {
                // Answer what is queued, then go: a later message activates afresh.
                ctx.run_later(Duration::from_millis(50), |_, ctx| ctx.stop());
            } else {
                act.after_load(ctx);
            }
        }));
        let tick = (self.deps.idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
        ctx.run_interval(tick, |act, ctx| {
            if act.deps.whereabouts.take_read(&act.id) {
                // Read through the snapshot: activity the mailbox never saw.
                act.last_active = Instant::now();
            }
            if act.last_active.elapsed() >= act.deps.idle && !act.on_the_road() {
                ctx.notify(Passivate);
            }
        });
    }
}

impl Handler<Fenced> for CharacterSession {
    type Result = ();

    fn handle(&mut self, msg: Fenced, ctx: &mut Self::Context) {
        tracing::warn!(character = %self.id, key = ?msg.key, "dirty write fenced; stopping");
        self.phase = Phase::Gone(SessionError::busy());
        self.withdraw();
        ctx.stop();
    }
}
