//! Passivation: the final dirty rows flushed, the claim released, the state offered to the
//! character's new owner (a handover), then the session stops.

use super::*;

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
        if let Some(h) = self.trip_timer.take() {
            ctx.cancel_future(h);
        }
        let (persistence, db, id, node) = (
            self.deps.persistence.clone(),
            self.deps.db.clone(),
            self.id,
            self.deps.node_id.clone(),
        );
        let handover = Handover {
            released_epoch: epoch,
            state: (**state).clone(),
        };
        let router = self.deps.router.upgrade();
        // Keep the state until the flush is known to be committed: if it fails (database
        // away), the session stays and tries again later, so a fresh activation never loads
        // older rows than this one holds.
        let kept = std::mem::replace(&mut self.phase, Phase::Gone(SessionError::busy()));
        self.withdraw();
        let work = async move {
            // A failed attempt (a serialization conflict, a blip) is asked again at once: a
            // session that moved must not hold its key longer than the database needs.
            let flushed = crate::persistence::flush_entity(&persistence, id, FINAL_FLUSH_LIMIT)
                .await
                .is_ok();
            if flushed {
                // Only after the flush: releasing first would let a new owner load stale rows.
                let released = claims::release(
                    &db,
                    EntityTable::Character,
                    &EntityId::Uuid(id),
                    &node,
                    epoch,
                )
                .await;
                if let (Ok(true), Some(router)) = (released, router) {
                    offer_handover(&router, id, handover).await;
                }
            }
            flushed
        };
        ctx.wait(work.into_actor(self).map(move |flushed, act, ctx| {
            if flushed {
                ctx.stop();
                return;
            }
            tracing::warn!(character = %act.id, "final flush failed; staying active and trying again shortly");
            act.phase = kept;
            act.publish();
            act.last_active = Instant::now();
            act.schedule_trip(ctx);
            // The key may have moved: the new owner waits for our release, so try again soon
            // rather than at the next idle timeout.
            ctx.notify_later(Passivate, PASSIVATION_RETRY);
        }));
    }
}

/// Offers a released session's state to the character's owner, if that is another node now
/// (a handover after a view change or at a drain): its activation then needs no load.
async fn offer_handover(router: &Arc<Router>, id: Uuid, handover: Handover) {
    if router.owner::<CharacterSession>(&id) == Owner::Local {
        return;
    }
    let deadline = Deadline::after(HANDOVER_OFFER_LIMIT);
    match router
        .offer::<CharacterSession, _>(&id, handover, deadline)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::debug!(character = %id, "handover refused: the new owner is full"),
        Err(e) => {
            tracing::debug!(character = %id, error = %e, "handover not delivered; the new owner loads")
        }
    }
}
