//! Paying an ended event's participants: once the end is written (defeated or expired), the
//! boss sends [`GrantWorldReward`] to each participant without a reward row, through the
//! router (the session may live on any node), at most [`CONCURRENCY`] at a time. Each grant is
//! idempotent (the reward row), so anything that failed or *may have run* is simply sent again:
//! a few times at once with backoff, then in later rounds with a growing pause (at most
//! [`MAX_BACKOFF`]). A new owner after a failover loads who has a reward row and goes on.

use std::time::Duration;

use actix::prelude::*;
use futures_util::{stream, StreamExt};
use uuid::Uuid;

use super::actor::WorldBoss;
use crate::character::messages::SessionError;
use crate::character::world_reward::GrantWorldReward;
use crate::character::CharacterSession;
use crate::domain::world::boss as rules;
use crate::persistence::{world_events, Db};
use crate::request::Deadline;

/// Grants in flight at once, per event.
pub const CONCURRENCY: usize = 32;
/// Attempts of one grant within a round.
const ATTEMPTS: u32 = 3;
/// The longest pause between rounds.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The deadline of one grant.
const GRANT_BUDGET: Duration = Duration::from_secs(5);

impl WorldBoss {
    /// Starts a round of grants for everyone still owed, unless one is under way.
    pub(super) fn start_rewards(&mut self, ctx: &mut Context<Self>) {
        let Some(state) = self.boss.ended else { return };
        let owed = rules::unrewarded(state, &self.participants, &self.rewarded);
        if self.rewarding || owed.is_empty() {
            return;
        }
        let (Some(router), Some(def)) = (self.deps.router.upgrade(), self.def.clone()) else {
            return;
        };
        self.rewarding = true;
        let event = self.id.clone();
        let db = self.deps.db.clone();
        let round = stream::iter(owed)
            .map(move |(character, _)| {
                let (router, event, def, db) =
                    (router.clone(), event.clone(), def.clone(), db.clone());
                async move {
                    let msg = GrantWorldReward {
                        event_id: event,
                        gold: def.reward_gold,
                        item: def.reward_item,
                        deadline: Deadline::after(GRANT_BUDGET),
                    };
                    (character, grant(&router, &db, character, msg).await)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>();
        ctx.spawn(round.into_actor(self).map(|results, act, ctx| {
            act.rewarding = false;
            let mut failed = 0;
            for (character, done) in results {
                match done {
                    true => {
                        act.rewarded.insert(character);
                    }
                    false => failed += 1,
                }
            }
            if failed == 0 {
                return;
            }
            tracing::warn!(event = %act.id, failed, "world event rewards: some grants failed; retrying");
            let pause = act.reward_backoff;
            act.reward_backoff = (pause * 2).min(MAX_BACKOFF);
            ctx.run_later(pause, |act, ctx| act.start_rewards(ctx));
        }));
    }
}

/// One grant, sent again (fresh deadline) while it fails. `true` once it is paid (now or
/// before), or settled as paying nothing because the character no longer exists.
async fn grant(
    router: &crate::routing::Router,
    db: &Db,
    character: Uuid,
    msg: GrantWorldReward,
) -> bool {
    let mut pause = Duration::from_millis(50);
    for _ in 0..ATTEMPTS {
        let mut m = msg.clone();
        m.deadline = Deadline::after(GRANT_BUDGET);
        let deadline = m.deadline;
        match router
            .ask_until::<CharacterSession, GrantWorldReward>(character, m, deadline)
            .await
        {
            Ok(Ok(_)) => return true,
            Ok(Err(SessionError::NotFound)) => {
                // Deleted: nothing to pay; a row paying nothing settles it.
                match world_events::settle_gone(db, &msg.event_id, character).await {
                    Ok(()) => return true,
                    Err(e) => {
                        tracing::debug!(%character, error = %e, "settling a gone participant failed")
                    }
                }
            }
            Ok(Err(e)) => tracing::debug!(%character, error = %e, "world reward grant failed"),
            Err(e) => tracing::debug!(%character, error = %e, "world reward grant failed"),
        }
        tokio::time::sleep(pause).await;
        pause *= 4;
    }
    false
}
