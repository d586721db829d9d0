//! The session's trip: the timer for what is due next on the road, the encounter (a battle
//! starts) and the arrival, both critical writes; and a forced encounter (server callers).

use super::*;

impl CharacterSession {
    /// Arms the timer for what is due next on the trip (or does it now).
    pub(in crate::character) fn schedule_trip(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.trip_timer.take() {
            ctx.cancel_future(h);
        }
        let next = match &self.phase {
            Phase::Ready { state, .. } if state.battle_id.is_none() => {
                state.travel.as_ref().map(|t| travel::next(t, now_ms()))
            }
            _ => None,
        };
        match next {
            None | Some(Next::Paused) => {}
            Some(Next::Wait(ms)) => {
                let delay = Duration::from_millis(ms.max(1) as u64);
                self.trip_timer = Some(ctx.run_later(delay, |act, ctx| {
                    act.trip_timer = None;
                    act.schedule_trip(ctx);
                }));
            }
            Some(Next::Encounter) => {
                match self.encounter() {
                    Ok(fut) => ctx.wait(fut.map(|result, act, ctx| {
                        if let Err(e) = result {
                            tracing::warn!(character = %act.id, error = %e, "encounter failed, will retry");
                            act.retry_trip(ctx);
                        }
                    })),
                    Err(e) => tracing::warn!(character = %self.id, error = %e, "no encounter"),
                }
            }
            Some(Next::Arrive) => self.arrive(ctx),
        }
    }

    fn retry_trip(&mut self, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Ready { .. }) {
            self.trip_timer = Some(ctx.run_later(TRIP_RETRY, |act, ctx| {
                act.trip_timer = None;
                act.schedule_trip(ctx);
            }));
        }
    }

    /// Starts a battle for the character: the trip's encounter on the road, an ambush in
    /// town. The Battle inserts the encounter and sets `battle_id` (and the paused trip) in one
    /// transaction fenced by this session's epoch; memory follows once it committed.
    fn encounter(
        &mut self,
    ) -> SessionResult<ResponseActFuture<Self, SessionResult<BattleSnapshot>>> {
        let catalog = self.deps.catalog.get();
        let (state, epoch) = self.ready(Caller::Server)?;
        if state.battle_id.is_some() {
            return Err(SessionError::Refused(
                "the character is already in a battle".into(),
            ));
        }
        let now = now_ms();
        let (battle_id, seed, from, to, danger, paused) = match &state.travel {
            Some(trip) => {
                // The trip's own encounter has a battle id from its seed (a retried start
                // names the same battle); a forced one after it gets fresh ones.
                let (id, seed) = if trip.encounter_done {
                    let seed: u64 = rand::random();
                    (Rng::derive(seed, 1).uuid(), seed)
                } else {
                    travel::encounter_battle(trip)
                };
                let paused = travel::pause(trip, now, id);
                (
                    id,
                    seed,
                    trip.from.clone(),
                    trip.to.clone(),
                    trip.danger,
                    Some(paused),
                )
            }
            None => {
                let seed: u64 = rand::random();
                let danger = catalog
                    .routes_from(&state.location)
                    .map(|r| r.danger)
                    .max()
                    .unwrap_or(25);
                let loc = state.location.clone();
                (
                    Rng::derive(seed, 1).uuid(),
                    seed,
                    loc.clone(),
                    loc,
                    danger,
                    None,
                )
            }
        };
        let setup = battle_rules::new_setup(state, &catalog, &from, &to, danger, seed);
        let start = StartBattle {
            seed,
            setup,
            session_epoch: epoch,
            travel: paused.clone(),
        };
        let (router, persistence, id) = (self.router()?, self.deps.persistence.clone(), self.id);
        let work = async move {
            // The trip's departure row (dirty) lands before the encounter's write.
            match persistence.send(FlushEntity(id)).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(SessionError::Failed(Failure::not_run(
                        "the trip's departure is not written yet",
                    )))
                }
            }
            // A start that may have run is answered by the battle when asked again (same id).
            Ok(router.ask::<Battle, _>(battle_id, start).await)
        };
        Ok(Box::pin(work.into_actor(self).map(move |result, act, ctx| {
            let snapshot = match result? {
                Err(f) => return Err(SessionError::Failed(f)),
                Ok(Ok(s)) => s,
                Ok(Err(BattleError::Stale)) => {
                    return Err(act.on_db_error(&DbError::Fenced("character".into()), ctx))
                }
                Ok(Err(BattleError::Refused(m))) => {
                    // The database knows a battle memory does not: load afresh.
                    tracing::error!(character = %act.id, "battle refused: {m}; reloading the session");
                    act.reload(ctx);
                    return Err(SessionError::Refused(m));
                }
                Ok(Err(BattleError::Failed(f))) => {
                    tracing::warn!(character = %act.id, error = %f, "battle did not start");
                    if !f.is_retryable() {
                        act.reload(ctx);
                    }
                    return Err(SessionError::Failed(f));
                }
                Ok(Err(e)) => {
                    tracing::warn!(character = %act.id, error = %e, "battle did not start");
                    return Err(SessionError::busy());
                }
            };
            if let Some(h) = act.trip_timer.take() {
                ctx.cancel_future(h);
            }
            let (state, _) = act.ready(Caller::Server)?;
            state.battle_id = Some(battle_id);
            if paused.is_some() {
                state.travel = paused.clone();
            }
            let progress = state
                .travel
                .as_ref()
                .map_or(0.0, |t| travel::progress(t, now));
            let notice = wire::EncounterNotice {
                character_id: state.id,
                battle_id,
                from: snapshot.combat.setup.from.clone(),
                to: snapshot.combat.setup.to.clone(),
                progress,
                battle: wire::BattleView::new(&snapshot),
            };
            let user = state.user_id;
            act.notify(user, notify::TRAVEL_ENCOUNTER, &notice);
            act.count_travel("encounter");
            Ok(snapshot)
        })))
    }

    /// The caravan reaches the end of its trip: written at once, then pushed.
    fn arrive(&mut self, ctx: &mut Context<Self>) {
        let Ok((state, epoch)) = self.ready(Caller::Server) else {
            return;
        };
        let Some((from, seed)) = state.travel.as_ref().map(|t| (t.from.clone(), t.seed)) else {
            return;
        };
        let arrived = rules::arrive(state);
        // Stored with the arrival (one transaction); its id is the trip's, see persistent_notice.
        let notice = Self::persistent_notice(
            notify::TRAVEL_ARRIVED,
            &wire::ArrivedNotice::new(state.id, &from, &arrived.location),
            &format!("{}/arrived/{seed}", state.id),
        );
        let stored: Vec<_> = to_stored(state.user_id, &notice).into_iter().collect();
        let (persistence, db, id) = (self.deps.persistence.clone(), self.deps.db.clone(), self.id);
        let row = arrived.clone();
        let work = async move {
            persistence
                .send(FlushEntity(id))
                .await
                .map_err(|e| DbError::Unavailable(e.to_string()))??;
            characters::arrive(&db, &row, epoch, &stored).await
        };
        ctx.wait(work.into_actor(self).map(move |result, act, ctx| match result {
            Ok(()) => {
                let Ok((state, _)) = act.ready(Caller::Server) else {
                    return;
                };
                *state = arrived;
                let user = state.user_id;
                act.publish();
                act.deps.notifier.push(user, notice);
                act.count_travel("arrived");
            }
            Err(e @ DbError::Fenced(_)) => {
                act.on_db_error(&e, ctx);
            }
            Err(e) => {
                tracing::warn!(character = %act.id, error = %e, "arrival not written, will retry");
                act.retry_trip(ctx);
            }
        }));
    }
}

impl Handler<ForceEncounter> for CharacterSession {
    type Result = AtomicResponse<Self, SessionResult<BattleSnapshot>>;

    fn handle(&mut self, msg: ForceEncounter, _: &mut Self::Context) -> Self::Result {
        if msg.call.caller != Caller::Server {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Err(SessionError::NotYours))));
        }
        if let Err(e) = msg.call.start() {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Err(e.into()))));
        }
        match self.encounter() {
            Ok(fut) => AtomicResponse::new(fut),
            Err(e) => AtomicResponse::new(Box::pin(actix::fut::ready(Err(e)))),
        }
    }
}
