//! A battle's end, settled by the session: rewards applied and everything written in one
//! transaction fenced by the session's epoch and the battle's, then memory updated.

use super::*;

impl Handler<SettleBattle> for CharacterSession {
    type Result = AtomicResponse<Self, SessionResult<SettleReply>>;

    /// Applies an ended battle: computes the character afterwards (pure rules), commits it
    /// with the encounter's result and the `battle_ended` notification in one transaction,
    /// then takes it into memory and pushes that notification. A won or fled trip goes on.
    fn handle(&mut self, SettleBattle(msg): SettleBattle, _: &mut Self::Context) -> Self::Result {
        let catalog = self.deps.catalog.get();
        let prepared = self.ready(Caller::Server).map(|(state, epoch)| {
            if state.battle_id != Some(msg.battle_id) {
                return None;
            }
            let (after, summary) = rules::apply_battle(state, &msg.rewards, now_ms());
            // Changes, not values: the database applies them to what it holds.
            let mut cargo: Vec<(String, i64)> = state
                .cargo
                .iter()
                .filter(|(g, q)| after.cargo.get(*g) != Some(*q))
                .map(|(g, q)| (g.clone(), after.cargo.get(g).copied().unwrap_or(0) - q))
                .collect();
            cargo.sort();
            let gold_delta = after.gold - state.gold;
            let result = serde_json::to_value(&summary).unwrap_or_default();
            let outcome = result["outcome"].as_str().unwrap_or_default().to_string();
            let notice = Self::persistent_notice(
                notify::BATTLE_ENDED,
                &wire::BattleEndedNotice {
                    battle_id: msg.battle_id,
                    character_id: state.id,
                    outcome: outcome.clone(),
                    result: result.clone(),
                    character: wire::CharacterView::new(&after, &catalog),
                },
                &format!("{}/battle_ended", msg.battle_id),
            );
            let settlement = BattleSettlement {
                notification: to_stored(state.user_id, &notice),
                battle_id: msg.battle_id,
                battle_epoch: msg.battle_epoch,
                outcome: summary.outcome.to_string(),
                turns: msg.rewards.turns as i32,
                result: result.clone(),
                character: after.clone(),
                session_epoch: epoch,
                gold_delta,
                cargo,
                items: msg
                    .rewards
                    .items
                    .iter()
                    .map(|i| (i.id, i.template.clone()))
                    .collect(),
            };
            Some((after, settlement, notice, outcome == "won"))
        });
        let (persistence, db, id) = (self.deps.persistence.clone(), self.deps.db.clone(), self.id);
        let battle_id = msg.battle_id;
        let work = async move {
            let Some((after, settlement, notice, won)) = prepared? else {
                return Ok(None);
            };
            let flushed = persistence
                .send(FlushEntity(id))
                .await
                .map_err(|e| DbError::Unavailable(e.to_string()))
                .and_then(|r| r);
            let result = match flushed {
                Ok(()) => battles::settle(&db, &settlement).await,
                Err(e) => Err(e),
            };
            Ok(Some((result, after, settlement.result, notice, won)))
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            move |outcome: SessionResult<_>, act, ctx| {
                let Some((result, after, summary, notice, won)) = outcome? else {
                    return Ok(SettleReply::NotInBattle);
                };
                match result.map_err(|e| act.on_db_error(&e, ctx))? {
                    SettleOutcome::Committed => {}
                    SettleOutcome::BattleFenced => return Ok(SettleReply::BattleFenced),
                    SettleOutcome::AlreadySettled => {
                        // Memory thought the battle open: load afresh from the database.
                        tracing::warn!(character = %act.id, %battle_id, "battle was settled already; reloading");
                        act.reload(ctx);
                        return Ok(SettleReply::AlreadySettled);
                    }
                }
                let (state, _) = act.ready(Caller::Server)?;
                *state = after;
                let user = state.user_id;
                act.publish();
                act.deps.notifier.push(user, notice);
                act.feed_boards(won);
                act.schedule_trip(ctx);
                Ok(SettleReply::Settled(summary.to_string()))
            },
        )))
    }
}
