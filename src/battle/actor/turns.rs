//! Turns: a submitted turn (or a repeat of one, answered from memory or the log) is validated,
//! resolved by the rules, logged and pushed to the owner.

use super::*;

/// The answer to a submitted turn.
type TurnAnswer = (TurnRecord, BattleSnapshot);

impl Handler<SubmitTurn> for Battle {
    type Result = AtomicResponse<Self, BattleResult<TurnAnswer>>;

    /// A keyed turn (`request_id`) is looked up first (a repeat that reaches a new owner gets
    /// its first answer), and its record and answer are written together before the answer.
    fn handle(&mut self, msg: SubmitTurn, ctx: &mut Self::Context) -> Self::Result {
        if let Err(e) = msg.call.start() {
            return atomic(Err(e.into()));
        }
        if let Some(hit) = self.replay(&msg.call) {
            return atomic(hit);
        }
        let Some(key) = msg.call.key.clone() else {
            return AtomicResponse::new(self.play_turn(msg, ctx));
        };
        let db = self.deps.db.clone();
        let lookup = async move { stored_turn(&db, &key).await };
        AtomicResponse::new(Box::pin(lookup.into_actor(self).then(
            move |found, act, ctx| match found {
                Ok(Some(answer)) => ready_fut(Ok(answer)),
                Ok(None) => act.play_turn(msg, ctx),
                Err(e) => ready_fut(Err(e)),
            },
        )))
    }
}

/// The answer stored for a keyed turn, if it was played before (on any node).
async fn stored_turn(
    db: &Db,
    key: &crate::request::RequestKey,
) -> BattleResult<Option<TurnAnswer>> {
    let found = crate::persistence::receipts::find(db, key.user_id, &key.request_id)
        .await
        .map_err(|e| BattleError::Failed(e.failure()))?;
    match found {
        None => Ok(None),
        Some(s) if s.fingerprint != key.fingerprint => Err(BattleError::Conflict),
        Some(s) => serde_json::from_str(&s.answer).map(Some).map_err(|e| {
            BattleError::Failed(Failure::may_have_run(format!(
                "stored answer unreadable: {e}"
            )))
        }),
    }
}

impl Battle {
    /// Validates and resolves the turn, settles an ended battle, and (keyed) writes the turn
    /// with its answer before answering.
    fn play_turn(
        &mut self,
        msg: SubmitTurn,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, BattleResult<TurnAnswer>> {
        let actions = match self.live(msg.call.caller) {
            Ok(live) => {
                let next = live.combat.state.turn + 1;
                if live.combat.state.outcome != Outcome::Active {
                    Err(BattleError::Refused(format!(
                        "the battle is over ({})",
                        live.combat.state.outcome.as_str()
                    )))
                } else if msg.turn.is_some_and(|t| t != next) {
                    Err(BattleError::Refused(format!(
                        "turn {} is not being played: the current turn is {next}",
                        msg.turn.unwrap_or_default()
                    )))
                } else {
                    rules::validate(&live.combat, &msg.actions).map_err(|e| match e {
                        crate::domain::character::rules::RuleError::Invalid(m) => {
                            BattleError::Invalid(m)
                        }
                        crate::domain::character::rules::RuleError::NotAllowed(m) => {
                            BattleError::Refused(m)
                        }
                    })
                }
            }
            Err(e) => Err(e),
        };
        let actions = match actions {
            Ok(a) => a,
            Err(e) => return ready_fut(Err(e)),
        };
        let Some(record) = self.resolve(&actions, false, ctx) else {
            return ready_fut(Err(BattleError::busy()));
        };
        // An ended battle settles before the answer, so the answer shows it settled.
        let settle = self.settle_future();
        let call = msg.call;
        Box::pin(settle.then(move |(), act, _| {
            let answer = act
                .snapshot()
                .map(|s| (record, s))
                .ok_or_else(BattleError::busy);
            let answer = match answer {
                Ok(a) => a,
                Err(e) => return ready_fut(Err(e)),
            };
            act.remember(&call, &answer);
            let (Some(receipt), Phase::Live(live)) = (
                crate::persistence::receipts::Receipt::of(call.key.as_ref(), &answer),
                &act.phase,
            ) else {
                return ready_fut(Ok(answer));
            };
            let (db, id, epoch) = (act.deps.db.clone(), act.id, live.epoch);
            let write = async move {
                let turn = (id, epoch, answer.0.turn as i32);
                let logged = battles::log_turn(&db, turn, &answer.0.log().encode(), &receipt).await;
                match logged {
                    Ok(()) => Ok(answer),
                    Err(DbError::DuplicateRequest) => stored_turn(&db, &receipt.key)
                        .await?
                        .ok_or_else(|| BattleError::Failed(Failure::not_run("answer expired"))),
                    // Played in memory (its row is queued), but its answer is not stored.
                    Err(e) => Err(BattleError::Failed(Failure::may_have_run(e.to_string()))),
                }
            };
            Box::pin(write.into_actor(act))
        }))
    }
}
