//! Settling an ended battle: the action log flushed first, then the character's session
//! settles through the [`Settler`] port; retried with backoff, and a battle whose character has
//! nothing to settle reads its own row to learn whether it was settled or is an orphan.

use super::*;

impl Battle {
    pub(super) fn start_settle(&mut self, ctx: &mut Context<Self>) {
        let fut = self.settle_future();
        ctx.wait(fut);
    }

    /// Flushes the log, then has the character's session settle the battle. Blocks the
    /// mailbox while it runs (used with `ctx.wait` or an atomic response).
    pub(super) fn settle_future(&mut self) -> ResponseActFuture<Self, ()> {
        if self.settling || self.stopping {
            return ready_fut(());
        }
        let Phase::Live(live) = &self.phase else {
            return ready_fut(());
        };
        if live.settled {
            return ready_fut(());
        }
        let Some(rewards) = rules::rewards(&live.combat) else {
            return ready_fut(());
        };
        self.settling = true;
        let settlement = Settlement {
            battle_id: self.id,
            battle_epoch: live.epoch,
            rewards,
        };
        let character_id = live.combat.setup.character_id;
        let (persistence, settler, id) = (
            self.deps.persistence.clone(),
            self.deps.settler.clone(),
            self.id,
        );
        let work = async move {
            // The log rows first: the settled battle's log is complete in the database.
            match persistence.send(FlushEntity(id)).await {
                Ok(Ok(())) => settler.settle(character_id, settlement).await,
                _ => SettleAnswer::Failed("the action log could not be flushed".to_string()),
            }
        };
        Box::pin(work.into_actor(self).map(|result, act, ctx| {
            act.settling = false;
            match result {
                SettleAnswer::Settled(summary) => {
                    if let Phase::Live(live) = &mut act.phase {
                        live.settled = true;
                        live.result = Some(summary);
                        act.deps
                            .db
                            .metrics()
                            .counter("serai_battles_total", "outcome", live.combat.state.outcome.as_str())
                            .increment(1);
                    }
                    act.settle_attempts = 0;
                    tracing::debug!(battle = %act.id, "battle settled");
                }
                SettleAnswer::Fenced => {
                    tracing::warn!(battle = %act.id, "fenced while settling: another node owns this battle");
                    act.gone(BattleError::busy(), ctx);
                }
                SettleAnswer::NothingToSettle => act.check_settled(ctx),
                SettleAnswer::Failed(e) => act.retry_settle(&e, ctx),
            }
        }))
    }

    pub(super) fn retry_settle(&mut self, why: &str, ctx: &mut Context<Self>) {
        self.settle_attempts = self.settle_attempts.saturating_add(1);
        let delay = Duration::from_millis(200)
            .saturating_mul(1 << self.settle_attempts.min(8))
            .min(Duration::from_secs(30));
        tracing::warn!(battle = %self.id, why, retry_in = ?delay, "battle settlement failed, will retry");
        ctx.run_later(delay, |act, ctx| act.start_settle(ctx));
    }

    /// The session says there is nothing to settle: look at the row. Settled → take its
    /// result; still active (the character is not in this battle, or is gone) → close it as
    /// abandoned.
    pub(super) fn check_settled(&mut self, ctx: &mut Context<Self>) {
        let Phase::Live(live) = &self.phase else {
            return;
        };
        let (db, id, epoch) = (self.deps.db.clone(), self.id, live.epoch);
        let outcome = live.combat.state.outcome.as_str();
        let turns = live.combat.state.turn as i32;
        let work = async move {
            let row = battles::load(&db, id).await?;
            match row {
                Some(r) if r.state != Outcome::Active.as_str() => {
                    Ok(r.result.map(|v| v.to_string()))
                }
                Some(_) => {
                    tracing::warn!(battle = %id, "the character is not in this battle: closing it as abandoned");
                    battles::close_orphan(&db, id, epoch, outcome, turns).await?;
                    Ok(battles::load(&db, id)
                        .await?
                        .and_then(|r| r.result)
                        .map(|v| v.to_string()))
                }
                None => Err(DbError::NotFound(format!("battle {id}"))),
            }
        };
        ctx.wait(work.into_actor(self).map(|result, act, ctx| match result {
            Ok(summary) => {
                if let Phase::Live(live) = &mut act.phase {
                    live.settled = true;
                    live.result = summary;
                }
            }
            Err(e) => act.retry_settle(&e.to_string(), ctx),
        }));
    }
}
