//! A newer catalog version: the goods follow it. What changes is decided by
//! [`crate::domain::market::reprice`]; this carries it out, and gives goods the catalog newly
//! trades here their row before they join.

use super::*;
use crate::domain::market::reprice::reprice;

impl Market {
    /// Applies the installed catalog if it is newer than the one the goods come from. Only a
    /// ready market follows: a loading one takes the installed catalog anyway, a failed one
    /// holds nothing.
    pub(super) fn follow_catalog(&mut self, ctx: &mut Context<Self>) {
        if self.phase != Phase::Ready || self.deps.catalog.version() <= self.catalog_version {
            return;
        }
        let catalog = self.deps.catalog.get();
        let plan = reprice(
            self.goods.iter().map(|(g, s)| (g.as_str(), &s.ledger)),
            catalog.stock_at(&self.node),
        );
        self.catalog_version = catalog.version;
        tracing::info!(node = %self.node, version = catalog.version, repriced = plan.repriced.len(),
            added = plan.added.len(), removed = plan.removed.len(), "market follows the catalog");
        for r in plan.repriced {
            if let Some(slot) = self.goods.get_mut(&r.good) {
                slot.ledger = r.ledger;
                if r.restart_recovery {
                    slot.restock = Restock::default();
                }
            }
        }
        for good in &plan.removed {
            self.goods.remove(good);
        }
        if !plan.added.is_empty() {
            self.add_goods(&plan.added, catalog.version, ctx);
        }
    }

    /// Seeds the rows of goods newly traded here (at their base; a row kept from an earlier
    /// catalog stays as it is), reads them, and lets the goods join with the parameters of the
    /// catalog installed by then. If that fails, the next request follows the catalog again.
    fn add_goods(&mut self, added: &[Stock], version: i64, ctx: &mut Context<Self>) {
        let seed: Vec<(String, i64, i64)> = added
            .iter()
            .map(|s| {
                let state = GoodState::at_base(s);
                (s.good.clone(), state.reference_price(), state.stock)
            })
            .collect();
        let (db, node) = (self.deps.db.clone(), self.node.clone());
        let work = async move {
            markets::seed(&db, &node, &seed).await?;
            markets::load(&db, &node).await
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, _| {
            let rows = match result {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(node = %act.node, error = %e, "market: adding the catalog's new goods failed");
                    if act.catalog_version == version {
                        act.catalog_version = version - 1;
                    }
                    // Readers of the snapshot see the older version and ask the market, which
                    // follows the catalog again.
                    act.publish();
                    return;
                }
            };
            if act.phase != Phase::Ready {
                return;
            }
            let catalog = act.deps.catalog.get();
            for row in &rows {
                if act.goods.contains_key(&row.good) {
                    continue;
                }
                if let Some(stock) = catalog.stock(&act.node, &row.good) {
                    act.goods
                        .insert(row.good.clone(), slot_from_row(stock, row));
                }
            }
            act.publish();
        }));
    }
}
