//! The `WorldBoss` actor: one per world event, keyed by the event id.
//!
//! - **Start** (`ctx.wait`): claims the `world_event` row (owner node + epoch) and loads it,
//!   its participants and who was rewarded. An unknown id answers [`BossError::NotFound`].
//! - **Attacks** change memory only ([`crate::domain::world::boss::Boss::attack`]); their
//!   answers come before their damage is written. Every [`TICK`] the actor writes the progress
//!   (HP and the changed participants' totals, one fenced transaction) if it changed and
//!   [`WRITE_EVERY`] passed, pushes the HP to its subscribers if it changed, and ends the event
//!   once `ends_at` passed (state `expired`).
//! - **The killing attack** is written (state `defeated`, fenced by the epoch, over a row still
//!   open) before it is answered, holding the mailbox meanwhile: a later attack finds the boss
//!   defeated, and a new owner loads it defeated, so no second kill is possible.
//! - All writes hold the mailbox (`ctx.wait`), so two never race. A fenced write (another
//!   claim, or an admin cancel) stops the actor and drops its memory; an unknown commit too
//!   (the next activation reads what committed).
//! - **Rewards** start once the end is written ([`super::rewards`]).
//! - **Passivation**: after `idle` without messages and with no reward under way (or on
//!   [`Passivate`]): the last progress is written, the claim released, the actor stops.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::messages::{Attack, BossError, BossResult, GetEvent, Wake};
use crate::domain::world::boss::{self as rules, Boss, EventState, Participant, Refusal};
use crate::persistence::claims::{self, EntityId, EntityTable};
use crate::persistence::world_events::{self, EventDef, Loaded, Progress};
use crate::persistence::{Db, DbError};
use crate::protocol::client::Notification;
use crate::protocol::world::boss::{AttackReply, EventUpdate, EventView, WORLD_EVENT};
use crate::request::Failure;
use crate::routing::{Entity, Passivate, Router};
use crate::world::fanout::WorldFanout;

/// How often the actor looks at what is due (writes, pushes, expiry, idling). Well above
/// 500 ms, so its pushes stay under 2 per second in any 1 s window with room for jitter.
pub const TICK: Duration = Duration::from_millis(600);
/// Progress is written at least this often while it changes (the issue asks for 2 s).
pub const WRITE_EVERY: Duration = Duration::from_secs(1);
/// Answers to attacks with a `request_id` kept for repeats, at most.
const ANSWERS_KEPT: usize = 20_000;
/// Users subscribed to one event's pushes, at most (later ones can still poll).
const SUBSCRIBERS_MAX: usize = 200_000;

/// What a boss needs from its node.
#[derive(Clone)]
pub struct BossDeps {
    pub db: Db,
    pub node_id: String,
    pub idle: Duration,
    /// Weak: the router's registries hold these deps.
    pub router: Weak<Router>,
    pub fanout: WorldFanout,
}

pub(super) enum Phase {
    Loading,
    Ready,
    Stopping,
    Gone(BossError),
}

/// Recent keyed answers, bounded (oldest go first).
#[derive(Default)]
struct Recent {
    by_key: HashMap<(Uuid, String), (String, AttackReply)>,
    order: VecDeque<(Uuid, String)>,
}

impl Recent {
    fn get(&self, user: Uuid, request: &(String, String)) -> Option<BossResult<AttackReply>> {
        let (fp, reply) = self.by_key.get(&(user, request.0.clone()))?;
        Some(match *fp == request.1 {
            true => Ok(reply.clone()),
            false => Err(BossError::Conflict),
        })
    }

    fn put(&mut self, user: Uuid, request: &(String, String), reply: &AttackReply) {
        let key = (user, request.0.clone());
        if self
            .by_key
            .insert(key.clone(), (request.1.clone(), reply.clone()))
            .is_none()
        {
            self.order.push_back(key);
        }
        while self.order.len() > ANSWERS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
    }
}

pub struct WorldBoss {
    pub(super) id: String,
    pub(super) deps: BossDeps,
    pub(super) phase: Phase,
    pub(super) epoch: i64,
    pub(super) def: Option<EventDef>,
    pub(super) boss: Boss,
    pub(super) participants: BTreeMap<Uuid, Participant>,
    /// Participants whose total changed since it was last written.
    dirty: BTreeSet<Uuid>,
    hp_dirty: bool,
    pub(super) rewarded: BTreeSet<Uuid>,
    pub(super) rewarding: bool,
    pub(super) reward_backoff: Duration,
    subscribers: BTreeSet<Uuid>,
    push_due: bool,
    recent: Recent,
    last_active: Instant,
    last_write: Instant,
}

impl Entity for WorldBoss {
    type Key = String;
    const KIND: &'static str = "world_event";
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn refusal(r: Refusal) -> BossError {
    match r {
        Refusal::NotActive(s) => BossError::Refused(format!("the world event is {}", s.as_str())),
        Refusal::NoDamage => BossError::Refused("the attack does no damage".into()),
    }
}

impl WorldBoss {
    pub fn new(id: String, deps: BossDeps) -> WorldBoss {
        let now = Instant::now();
        WorldBoss {
            id,
            deps,
            phase: Phase::Loading,
            epoch: 0,
            def: None,
            boss: Boss {
                max_hp: 0,
                hp: 0,
                starts_at_ms: 0,
                ends_at_ms: 0,
                ended: None,
            },
            participants: BTreeMap::new(),
            dirty: BTreeSet::new(),
            hp_dirty: false,
            rewarded: BTreeSet::new(),
            rewarding: false,
            reward_backoff: Duration::from_millis(200),
            subscribers: BTreeSet::new(),
            push_due: false,
            recent: Recent::default(),
            last_active: now,
            last_write: now,
        }
    }

    /// Serving: `Ok`, else the error to answer (loading is *not run*: ask again).
    fn serving(&mut self) -> BossResult<()> {
        self.last_active = Instant::now();
        match &self.phase {
            Phase::Ready => Ok(()),
            Phase::Gone(e) => Err(e.clone()),
            Phase::Loading | Phase::Stopping => Err(BossError::Failed(Failure::not_run(
                "the world event is moving between servers, try again",
            ))),
        }
    }

    fn loaded(&mut self, l: Loaded, epoch: i64, ctx: &mut Context<Self>) {
        self.epoch = epoch;
        self.boss = l.event.boss();
        self.def = Some(l.event.def);
        self.participants = l.participants;
        self.rewarded = l.rewarded;
        self.phase = Phase::Ready;
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
        tracing::debug!(event = %self.id, epoch, hp = self.boss.hp, "world boss loaded");
        self.tick(ctx);
        self.start_rewards(ctx);
    }

    /// Ends the actor's memory: later messages get `e`; stops once queued ones are answered.
    fn fail(&mut self, e: BossError, ctx: &mut Context<Self>) {
        self.phase = Phase::Gone(e);
        self.participants.clear();
        ctx.run_later(Duration::ZERO, |_, ctx| ctx.stop());
    }

    fn on_write_error(&mut self, e: &DbError, ctx: &mut Context<Self>) -> BossError {
        match e {
            DbError::Fenced(_) => {
                tracing::warn!(event = %self.id, "world boss fenced (another claim, or cancelled); stopping");
                self.fail(
                    BossError::Failed(Failure::not_run("the world event moved, try again")),
                    ctx,
                );
                BossError::Failed(Failure::not_run("the world event moved, try again"))
            }
            DbError::CommitUnknown(_) => {
                tracing::warn!(event = %self.id, error = %e, "world boss: commit unknown; reloading");
                // Whatever committed, the claim is still ours at this epoch: let it go, so the
                // next activation (here or on a new owner) claims at once and reads the row.
                let (db, id, node, epoch) = (
                    self.deps.db.clone(),
                    EntityId::Text(self.id.clone()),
                    self.deps.node_id.clone(),
                    self.epoch,
                );
                actix::spawn(async move {
                    let _ = claims::release(&db, EntityTable::WorldEvent, &id, &node, epoch).await;
                });
                self.fail(
                    BossError::Failed(Failure::not_run("the world event is reloading, try again")),
                    ctx,
                );
                BossError::Failed(e.failure())
            }
            other => BossError::Failed(other.failure()),
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.phase, Phase::Ready) {
            return;
        }
        if self.push_due {
            self.push();
        }
        let now = now_ms();
        if self.boss.ended.is_none() && self.boss.state_at(now) == EventState::Expired {
            self.end(EventState::Expired, ctx);
        } else if (self.hp_dirty || !self.dirty.is_empty())
            && self.last_write.elapsed() >= WRITE_EVERY
        {
            self.write(None, ctx);
        } else if self.last_active.elapsed() >= self.deps.idle && !self.rewarding {
            self.begin_stop(ctx);
        }
    }

    /// The progress not yet written, taken out of the dirty sets.
    fn take_progress(&mut self, end: Option<(EventState, Option<Uuid>)>) -> Progress {
        self.hp_dirty = false;
        let participants = std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|c| self.participants.get(&c).map(|p| (c, *p)))
            .collect();
        Progress {
            hp: self.boss.hp,
            participants,
            end,
        }
    }

    /// A write that failed: what it carried is dirty again.
    fn restore(&mut self, p: &Progress) {
        self.hp_dirty = true;
        self.dirty.extend(p.participants.iter().map(|(c, _)| *c));
    }

    fn save(&self, p: Progress) -> impl std::future::Future<Output = Result<(), DbError>> {
        let (db, id, node, epoch) = (
            self.deps.db.clone(),
            self.id.clone(),
            self.deps.node_id.clone(),
            self.epoch,
        );
        async move { world_events::save_progress(&db, &id, &node, epoch, &p).await }
    }

    /// Writes the progress (and `end`, if given), holding the mailbox.
    fn write(&mut self, end: Option<(EventState, Option<Uuid>)>, ctx: &mut Context<Self>) {
        let p = self.take_progress(end);
        self.last_write = Instant::now();
        let fut = self.save(p.clone());
        ctx.wait(fut.into_actor(self).map(move |r, act, ctx| match r {
            Ok(()) => {
                if let Some((state, _)) = p.end {
                    act.boss.ended = Some(state);
                    act.push_due = true;
                    act.start_rewards(ctx);
                }
            }
            Err(e) => {
                act.restore(&p);
                tracing::warn!(event = %act.id, error = %e, "world boss: progress write failed");
                let _ = act.on_write_error(&e, ctx);
            }
        }));
    }

    fn end(&mut self, state: EventState, ctx: &mut Context<Self>) {
        tracing::info!(event = %self.id, state = state.as_str(), "world event ends");
        self.write(Some((state, None)), ctx);
    }

    pub(super) fn begin_stop(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.phase, Phase::Ready) {
            if matches!(self.phase, Phase::Loading | Phase::Gone(_)) {
                ctx.stop();
            }
            return;
        }
        self.phase = Phase::Stopping;
        let progress = (self.boss.ended.is_none() && (self.hp_dirty || !self.dirty.is_empty()))
            .then(|| self.take_progress(None));
        let save = progress.map(|p| self.save(p));
        let (db, id, node, epoch) = (
            self.deps.db.clone(),
            EntityId::Text(self.id.clone()),
            self.deps.node_id.clone(),
            self.epoch,
        );
        let last = async move {
            if let Some(save) = save {
                if let Err(e) = save.await {
                    tracing::warn!(event = %id, error = %e, "world boss: last progress write failed");
                    return;
                }
            }
            if let Err(e) = claims::release(&db, EntityTable::WorldEvent, &id, &node, epoch).await {
                tracing::warn!(event = %id, error = %e, "world boss: releasing the claim failed");
            }
        };
        ctx.wait(last.into_actor(self).map(|(), _, ctx| ctx.stop()));
    }

    fn subscribe(&mut self, user: Uuid) {
        if self.subscribers.len() < SUBSCRIBERS_MAX {
            self.subscribers.insert(user);
        }
    }

    /// Pushes HP and state to every subscriber (the fan-out coalesces per topic).
    fn push(&mut self) {
        self.push_due = false;
        let Some(def) = &self.def else { return };
        let update = EventUpdate {
            event_id: self.id.clone(),
            hp: self.boss.hp,
            max_hp: def.max_hp,
            state: self.boss.state_at(now_ms()).as_str().to_string(),
        };
        let users: Arc<[Uuid]> = self.subscribers.iter().copied().collect();
        let n = Notification::new(WORLD_EVENT.0, WORLD_EVENT.1, &update);
        self.deps
            .fanout
            .publish(&format!("world_event/{}", self.id), n, users);
    }

    fn view(&self, user: Option<Uuid>) -> EventView {
        let def = self.def.as_ref();
        let rfc = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default()
        };
        EventView {
            id: self.id.clone(),
            title: def.map(|d| d.title.clone()).unwrap_or_default(),
            hp: self.boss.hp,
            max_hp: self.boss.max_hp,
            state: self.boss.state_at(now_ms()).as_str().to_string(),
            starts_at: rfc(def.map(|d| d.starts_at)),
            ends_at: rfc(def.map(|d| d.ends_at)),
            participants: self.participants.len() as u64,
            your_damage: user.map_or(0, |u| {
                self.participants
                    .values()
                    .filter(|p| p.user_id == u)
                    .map(|p| p.damage)
                    .sum()
            }),
        }
    }

    fn reply(&self, damage: i64, killed: bool) -> AttackReply {
        AttackReply {
            damage,
            hp: self.boss.hp,
            state: self.boss.state_at(now_ms()).as_str().to_string(),
            killed,
        }
    }
}

impl Actor for WorldBoss {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (db, id, node) = (
            self.deps.db.clone(),
            self.id.clone(),
            self.deps.node_id.clone(),
        );
        let load = async move {
            let epoch = claims::claim(
                &db,
                EntityTable::WorldEvent,
                &EntityId::Text(id.clone()),
                &node,
            )
            .await?;
            let loaded = world_events::load(&db, &id).await?;
            Ok::<_, DbError>(loaded.map(|l| (l, epoch)))
        };
        ctx.wait(load.into_actor(self).map(|r, act, ctx| match r {
            Ok(Some((l, epoch))) => act.loaded(l, epoch, ctx),
            Ok(None) | Err(DbError::NotFound(_)) => act.fail(BossError::NotFound, ctx),
            Err(e) => {
                tracing::warn!(event = %act.id, error = %e, "world boss: activation failed");
                act.fail(BossError::Failed(e.failure()), ctx)
            }
        }));
    }
}

impl Handler<Attack> for WorldBoss {
    type Result = ActorResponse<Self, BossResult<AttackReply>>;

    fn handle(&mut self, m: Attack, ctx: &mut Context<Self>) -> Self::Result {
        let checked = m
            .deadline
            .check()
            .map_err(BossError::from)
            .and_then(|()| self.serving());
        if let Err(e) = checked {
            return ActorResponse::reply(Err(e));
        }
        if let Some(answer) = m
            .request
            .as_ref()
            .and_then(|r| self.recent.get(m.user_id, r))
        {
            return ActorResponse::reply(answer);
        }
        self.subscribe(m.user_id);
        let mut after = self.boss.clone();
        let hit = match after.attack(m.damage, now_ms()) {
            Ok(hit) => hit,
            Err(r) => return ActorResponse::reply(Err(refusal(r))),
        };
        if !hit.killed {
            self.boss = after;
            self.count(&m, hit.damage);
            let reply = self.reply(hit.damage, false);
            if let Some(req) = &m.request {
                self.recent.put(m.user_id, req, &reply);
            }
            return ActorResponse::reply(Ok(reply));
        }
        // The kill: written before it is answered, holding the mailbox.
        let (tx, rx) = oneshot::channel();
        let before = self.participants.get(&m.character_id).copied();
        self.count(&m, hit.damage);
        self.boss.hp = 0;
        let p = self.take_progress(Some((EventState::Defeated, Some(m.character_id))));
        self.last_write = Instant::now();
        let fut = self.save(p.clone());
        ctx.wait(fut.into_actor(self).map(move |r, act, ctx| {
            let answer = match r {
                Ok(()) => {
                    act.boss.ended = Some(EventState::Defeated);
                    act.push_due = true;
                    let reply = act.reply(hit.damage, true);
                    if let Some(req) = &m.request {
                        act.recent.put(m.user_id, req, &reply);
                    }
                    tracing::info!(event = %act.id, character = %m.character_id, "world boss defeated");
                    act.start_rewards(ctx);
                    Ok(reply)
                }
                Err(e) => {
                    // Not applied: HP and the attacker's total go back.
                    act.boss.hp = hit.damage;
                    match before {
                        Some(b) => act.participants.insert(m.character_id, b),
                        None => act.participants.remove(&m.character_id),
                    };
                    act.restore(&p);
                    Err(act.on_write_error(&e, ctx))
                }
            };
            let _ = tx.send(answer);
        }));
        ActorResponse::r#async(rx.into_actor(self).map(|r, _, _| {
            r.unwrap_or_else(|_| {
                Err(BossError::Failed(Failure::may_have_run(
                    "the world event stopped during the kill",
                )))
            })
        }))
    }
}

impl WorldBoss {
    /// Counts a hit in memory: the attacker's total, dirty, a push due.
    fn count(&mut self, m: &Attack, damage: i64) {
        rules::record(&mut self.participants, m.character_id, m.user_id, damage);
        self.dirty.insert(m.character_id);
        self.hp_dirty = true;
        self.push_due = true;
    }
}

impl Handler<GetEvent> for WorldBoss {
    type Result = BossResult<EventView>;

    fn handle(&mut self, m: GetEvent, _: &mut Context<Self>) -> Self::Result {
        m.deadline.check()?;
        self.serving()?;
        if let Some(u) = m.user_id {
            self.subscribe(u);
        }
        Ok(self.view(m.user_id))
    }
}

impl Handler<Wake> for WorldBoss {
    type Result = ();

    /// Activation did the work (expiry at the first tick, rewards at load); this keeps it
    /// from idling out at once.
    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Ready) {
            self.start_rewards(ctx);
        }
    }
}

impl Handler<Passivate> for WorldBoss {
    type Result = ();

    fn handle(&mut self, _: Passivate, ctx: &mut Context<Self>) {
        self.begin_stop(ctx);
    }
}
