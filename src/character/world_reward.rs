//! A world event's reward, paid by the participant's session (modelled on `SettleBattle`):
//! one transaction inserts the reward row keyed by (event, character) `ON CONFLICT DO NOTHING`
//! and, only if it was new, adds the gold (fenced by the session's epoch) and the item and
//! stores the `world_event_reward` notification (its id derived from event and character, so
//! it is never stored twice); then memory follows and the notification is pushed live. The
//! boss retries a failed grant; a repeat pays nothing.

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::actor::CharacterSession;
use super::messages::{SessionError, SessionResult};
use crate::domain::character::state::Item;
use crate::gateway::notification_store::to_stored;
use crate::persistence::world_events::{self, RewardGrant};
use crate::protocol::world::boss::{RewardNotice, WORLD_EVENT_REWARD};
use crate::request::{Caller, Deadline};
use crate::routing::Remote;

/// Pays the character its reward for `event_id` unless it was paid before. Answers whether
/// this grant paid it (`false`: paid before, nothing changed).
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "SessionResult<bool>")]
pub struct GrantWorldReward {
    pub event_id: String,
    pub gold: i64,
    pub item: Option<String>,
    pub deadline: Deadline,
}

impl Remote for GrantWorldReward {
    const NAME: &'static str = "character.grant_world_reward";
}

/// The id of the item a reward gives: the same for every attempt, so it is inserted once.
fn item_id(event_id: &str, character: Uuid) -> Uuid {
    let key = format!("serai/world_reward/{event_id}/{character}");
    Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes())
}

impl Handler<GrantWorldReward> for CharacterSession {
    type Result = AtomicResponse<Self, SessionResult<bool>>;

    fn handle(&mut self, msg: GrantWorldReward, _: &mut Self::Context) -> Self::Result {
        let prepared = msg
            .deadline
            .check()
            .map_err(SessionError::from)
            .and_then(|()| {
                let (state, epoch) = self.ready(Caller::Server)?;
                let item = msg
                    .item
                    .clone()
                    .map(|t| (item_id(&msg.event_id, state.id), t));
                let notice = Self::persistent_notice(
                    WORLD_EVENT_REWARD,
                    &RewardNotice {
                        event_id: msg.event_id.clone(),
                        character_id: state.id,
                        gold: msg.gold,
                        item: msg.item.clone(),
                        character_gold: state.gold + msg.gold,
                    },
                    &format!("{}/{}/world_event_reward", msg.event_id, state.id),
                );
                let grant = RewardGrant {
                    event_id: msg.event_id.clone(),
                    character_id: state.id,
                    session_epoch: epoch,
                    gold: msg.gold,
                    item,
                    notification: to_stored(state.user_id, &notice),
                };
                Ok((grant, notice, state.user_id))
            });
        let db = self.deps.db.clone();
        let work = async move {
            let (grant, notice, user) = prepared?;
            let paid = world_events::grant_reward(&db, &grant).await;
            Ok((paid, grant, notice, user))
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |outcome: SessionResult<_>, act, ctx| {
                let (paid, grant, notice, user) = outcome?;
                let paid = paid.map_err(|e| act.on_db_error(&e, ctx))?;
                if paid {
                    let (state, _) = act.ready(Caller::Server)?;
                    state.gold += grant.gold;
                    if let Some((id, template)) = grant.item {
                        state.items.push(Item {
                            id,
                            template,
                            quantity: 1,
                            equipped: false,
                        });
                    }
                    act.publish();
                    act.deps.notifier.push(user, notice);
                }
                Ok(paid)
            },
        )))
    }
}
