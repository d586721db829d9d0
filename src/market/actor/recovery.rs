//! Recovery over time: every tick plans what each good recovers since it was last written
//! (pure, in the ledger and the rules) and writes it as quota deltas, one write in flight.

use super::*;

impl Market {
    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if self.phase != Phase::Ready {
            return;
        }
        if now.duration_since(self.last_recovery) >= self.deps.recovery_interval {
            self.start_recovery(ctx);
        }
        if self.deps.quotes.take_read(&self.node) {
            // Quotes read from the snapshot: activity the mailbox never saw.
            self.touch();
        }
        if self.open.is_empty()
            && !self.recovery_in_flight
            && now.duration_since(self.last_activity) >= self.deps.idle
        {
            tracing::debug!(node = %self.node, "market idle, passivating");
            self.begin_stop(ctx);
        }
    }

    /// Credits the time since the last plan to every good and takes the recovery due: falls
    /// are held at once, the rows written are adopted once committed.
    pub(super) fn plan_recovery(&mut self) -> (Vec<Planned>, Vec<QuotaDelta>) {
        let now = Instant::now();
        let dt = now.duration_since(self.clock);
        self.clock = now;
        self.last_recovery = now;
        let mut plan = Vec::new();
        let mut deltas = Vec::new();
        for (good, slot) in self.goods.iter_mut() {
            slot.restock.since = slot.restock.since.saturating_add(dt);
            let (delta, next) = slot.ledger.plan_recovery(slot.restock);
            if delta == 0 {
                slot.restock = next;
                continue;
            }
            let after = GoodState {
                stock: slot.ledger.state.stock.saturating_add(delta),
                ..slot.ledger.state
            };
            slot.ledger.hold_recovery(delta);
            deltas.push(QuotaDelta {
                good: good.clone(),
                delta,
                price: after.reference_price(),
            });
            plan.push(Planned {
                good: good.clone(),
                delta,
                next,
            });
        }
        (plan, deltas)
    }

    pub(super) fn start_recovery(&mut self, ctx: &mut Context<Self>) {
        if self.recovery_in_flight {
            return;
        }
        let (plan, deltas) = self.plan_recovery();
        if plan.is_empty() {
            return;
        }
        // Falls are held at once: the quotes show them.
        self.publish();
        self.recovery_in_flight = true;
        let (db, node, owner, epoch) = (
            self.deps.db.clone(),
            self.node.clone(),
            self.deps.node_id.clone(),
            self.epoch,
        );
        let write =
            async move { markets::apply_recovery(&db, &node, &owner, epoch, &deltas).await };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            act.recovery_in_flight = false;
            match result {
                Ok(rows) => {
                    let rows: HashMap<String, _> = rows.into_iter().collect();
                    for p in plan {
                        if let Some(slot) = act.goods.get_mut(&p.good) {
                            slot.ledger
                                .recovery_written(p.delta, rows.get(&p.good).copied());
                            slot.restock = p.next;
                        }
                    }
                }
                Err(DbError::Fenced(_)) => {
                    tracing::warn!(node = %act.node, epoch = act.epoch, "market fenced by a newer claim, stopping");
                    act.fail(MarketError::Unavailable, ctx);
                    return;
                }
                Err(e) => {
                    tracing::warn!(node = %act.node, error = %e, "market recovery write failed, will retry");
                    for p in &plan {
                        if let Some(slot) = act.goods.get_mut(&p.good) {
                            slot.ledger.recovery_written(p.delta, None);
                        }
                    }
                }
            }
            act.publish();
            if act.phase == Phase::Stopping {
                act.finish_stop(ctx);
            }
        }));
    }
}
