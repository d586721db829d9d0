//! One good's stock at a market: the committed truth as last heard from the database, plus the
//! market's own open reservations. Pure: no actix, tokio or SQL.
//!
//! # One truth
//! `market_price_snapshot.quota` is the stock; every write of it (a trade in the trade
//! transaction, the market's recovery) bumps the row's `version` and returns `(quota,
//! version)`. The ledger keeps the newest such pair it has heard of ([`Committed`]) and the
//! reservations it granted that have not been settled. What players may buy is
//! `committed.quota − open buys`, so the ledger can grant only what the row can give, beyond
//! the reservations still in flight:
//!
//! - a settled trade brings the row as its transaction left it: the reservation closes and the
//!   newer row is adopted ([`Ledger::settle`]);
//! - when the row is not known (a trade whose commit was resolved from its receipt, a
//!   reservation that expired, a trade the database refused), the caller reads the row again
//!   and adopts it ([`Ledger::adopt`]); until then a committed change is applied locally and
//!   marked unversioned, so the read replaces it even at the same version;
//! - a reservation of an earlier activation of the market (a handoff or a crash) that commits
//!   late is unknown here, but its row still arrives and is adopted.
//!
//! A row adopted while a reservation is still open may already include that reservation's
//! trade: the ledger then counts it twice until the settle arrives, which only makes it refuse
//! more, never grant more.
//!
//! Reserved sales count for prices and for the sell quota at once but can be bought only once
//! they commit (they are not in `committed.quota` before).

use serde::{Deserialize, Serialize};

use super::rules::{price_order, Fill, GoodState, MarketError, Quote, Restock, Side};
use super::rules::{quote_for, recover_step, valid_quantity};

/// The stock of a good as a committed database row: `version` grows by one per write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Committed {
    pub quota: i64,
    pub version: i64,
}

/// See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ledger {
    /// Prices and quotas are computed from this; `state.stock` is derived (see
    /// [`Ledger::stock`]), never set directly.
    pub state: GoodState,
    pub committed: Committed,
    /// Units of open (unsettled) buys, and of recovery falls being written.
    pub open_buys: i64,
    /// Units of open (unsettled) sales.
    pub open_sells: i64,
    /// A committed change was applied without knowing the row it made: the next read of the
    /// row replaces it, even at the same version.
    pub unversioned: bool,
}

impl Ledger {
    /// A ledger over a freshly read row, with no open reservations (a negative quota reads as
    /// zero). `state.stock` is taken from `row.quota`.
    pub fn new(state: GoodState, version: i64) -> Ledger {
        let mut l = Ledger {
            state,
            committed: Committed {
                quota: state.stock.max(0),
                version,
            },
            open_buys: 0,
            open_sells: 0,
            unversioned: false,
        };
        l.derive();
        l
    }

    /// Units on the shelves as prices see them: committed, minus open buys, plus open sales.
    pub fn stock(&self) -> i64 {
        (self.committed.quota - self.open_buys + self.open_sells).max(0)
    }

    fn derive(&mut self) {
        self.state.stock = self.stock();
    }

    /// Units a player can buy now.
    pub fn buyable(&self) -> i64 {
        (self.committed.quota - self.open_buys).max(0)
    }

    pub fn quote(&self, good: &str) -> Quote {
        Quote {
            quota: self.buyable(),
            ..quote_for(good, &self.state)
        }
    }

    /// Prices the order and holds its units; the caller must later settle or release the same
    /// side and quantity.
    pub fn reserve(
        &mut self,
        side: Side,
        quantity: i64,
        price_limit: Option<i64>,
    ) -> Result<Fill, MarketError> {
        if !valid_quantity(quantity) {
            return Err(MarketError::BadQuantity);
        }
        if side == Side::Buy && quantity > self.buyable() {
            return Err(MarketError::Insufficient {
                available: self.buyable(),
            });
        }
        let fill = price_order(&self.state, side, quantity, price_limit)?;
        match side {
            Side::Buy => self.open_buys += quantity,
            Side::Sell => self.open_sells += quantity,
        }
        self.derive();
        Ok(fill)
    }

    fn close(&mut self, side: Side, quantity: i64) {
        let q = quantity.max(0);
        match side {
            Side::Buy => self.open_buys = (self.open_buys - q).max(0),
            Side::Sell => self.open_sells = (self.open_sells - q).max(0),
        }
    }

    /// The trade of an open reservation committed. With the row it left (`seen`), the row is
    /// adopted; without, the change is applied locally until the row is read again.
    pub fn settle(&mut self, side: Side, quantity: i64, seen: Option<Committed>) {
        self.close(side, quantity);
        self.committed_elsewhere(side, quantity, seen);
    }

    /// A trade committed that this ledger holds no reservation for (it expired, or an earlier
    /// activation granted it): like [`Ledger::settle`] without closing anything.
    pub fn committed_elsewhere(&mut self, side: Side, quantity: i64, seen: Option<Committed>) {
        match seen {
            Some(row) => {
                self.adopt(row);
            }
            None => {
                let q = quantity.max(0);
                let delta = if side == Side::Buy { -q } else { q };
                self.committed.quota = (self.committed.quota + delta).max(0);
                self.unversioned = true;
                self.derive();
            }
        }
    }

    /// The trade of a reservation did not happen: its units are free again.
    pub fn release(&mut self, side: Side, quantity: i64) {
        self.close(side, quantity);
        self.derive();
    }

    /// Takes `row` when it is newer than what the ledger holds (or as new, over a local
    /// unversioned change). Answers whether it was taken.
    pub fn adopt(&mut self, row: Committed) -> bool {
        let newer = row.version > self.committed.version
            || (row.version == self.committed.version && self.unversioned);
        if newer {
            self.committed = Committed {
                quota: row.quota.max(0),
                version: row.version,
            };
            self.unversioned = false;
            self.derive();
        }
        newer
    }

    /// The recovery due now ([`recover_step`]), limited so that it never takes units that are
    /// not buyable (open reservations stay covered).
    pub fn plan_recovery(&self, restock: Restock) -> (i64, Restock) {
        let (delta, next) = recover_step(&self.state, restock);
        if delta < -self.buyable() {
            let delta = -self.buyable();
            let applied = restock.applied.saturating_add(delta.unsigned_abs());
            return (delta, Restock { applied, ..restock });
        }
        (delta, next)
    }

    /// A recovery fall is about to be written: its units are held like an open buy so that no
    /// reservation can take them meanwhile. Rises need no hold.
    pub fn hold_recovery(&mut self, delta: i64) {
        if delta < 0 {
            self.open_buys += -delta;
            self.derive();
        }
    }

    /// The recovery write ended: the hold goes, and the row it wrote (if it committed) is
    /// adopted.
    pub fn recovery_written(&mut self, delta: i64, row: Option<Committed>) {
        if delta < 0 {
            self.close(Side::Buy, -delta);
        }
        if let Some(row) = row {
            self.adopt(row);
        }
        self.derive();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn st(base_price: i64, base_quota: i64, restock_per_min: i64, stock: i64) -> GoodState {
        GoodState {
            base_price,
            base_quota,
            restock_per_min,
            stock,
        }
    }

    fn row(quota: i64, version: i64) -> Committed {
        Committed { quota, version }
    }

    #[test]
    fn sales_are_not_buyable_until_committed() {
        let mut l = Ledger::new(st(10, 10, 1, 0), 0);
        let sale = l.reserve(Side::Sell, 5, None).unwrap();
        assert_eq!(sale.stock_after, 5);
        assert_eq!(l.state.stock, 5);
        assert_eq!(l.buyable(), 0);
        assert_eq!(
            l.reserve(Side::Buy, 1, None),
            Err(MarketError::Insufficient { available: 0 })
        );
        l.release(Side::Sell, 5);
        assert_eq!(l.state.stock, 0);
        l.reserve(Side::Sell, 5, None).unwrap();
        l.settle(Side::Sell, 5, Some(row(5, 1)));
        assert_eq!(l.buyable(), 5);
        l.reserve(Side::Buy, 5, None).unwrap();
        assert_eq!(l.state.stock, 0);
        l.release(Side::Buy, 5);
        assert_eq!(l.state.stock, 5);
    }

    #[test]
    fn an_older_row_never_replaces_a_newer_one() {
        let mut l = Ledger::new(st(10, 100, 1, 100), 4);
        l.reserve(Side::Buy, 10, None).unwrap();
        l.reserve(Side::Buy, 5, None).unwrap();
        // The second trade committed last but its settle arrives first.
        l.settle(Side::Buy, 5, Some(row(85, 6)));
        l.settle(Side::Buy, 10, Some(row(90, 5)));
        assert_eq!(l.committed, row(85, 6));
        assert_eq!(l.buyable(), 85);
    }

    #[test]
    fn a_late_commit_from_an_earlier_activation_is_adopted() {
        let mut l = Ledger::new(st(10, 100, 1, 100), 7);
        l.committed_elsewhere(Side::Buy, 30, Some(row(70, 8)));
        assert_eq!(l.buyable(), 70);
    }

    #[test]
    fn an_unversioned_change_gives_way_to_the_row_read_again() {
        let mut l = Ledger::new(st(10, 100, 1, 100), 3);
        l.reserve(Side::Buy, 10, None).unwrap();
        // Another trade's settle already brought the row with this trade in it …
        l.committed_elsewhere(Side::Buy, 1, Some(row(89, 5)));
        // … then this one is resolved without its row: counted again, locally.
        l.settle(Side::Buy, 10, None);
        assert_eq!(l.buyable(), 79);
        // The read of the row (same version) puts it right.
        assert!(l.adopt(row(89, 5)));
        assert_eq!(l.buyable(), 89);
        assert!(!l.adopt(row(89, 5)));
    }

    #[test]
    fn a_recovery_fall_is_held_until_written() {
        let mut l = Ledger::new(st(10, 10, 60, 20), 0);
        l.hold_recovery(-5);
        assert_eq!(l.buyable(), 15);
        l.recovery_written(-5, Some(row(15, 1)));
        assert_eq!(l.buyable(), 15);
        l.hold_recovery(-5);
        l.recovery_written(-5, None);
        assert_eq!(l.buyable(), 15);
        let (delta, _) = l.plan_recovery(Restock {
            since: Duration::from_secs(60),
            applied: 0,
        });
        assert_eq!(delta, -5);
    }

    /// A model of the database row and the messages between the trade transactions and the
    /// ledger, delivered in any order.
    #[derive(Debug, Clone, Copy)]
    enum Op {
        Reserve(bool, i64),
        /// The database commits (or refuses) the oldest uncommitted reservation.
        Commit,
        /// One pending settle is delivered, picked by index.
        Deliver(usize),
        /// A settle is delivered without its row, and the row is read afterwards.
        DeliverBlind(usize),
        Recover(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<bool>(), 1i64..40).prop_map(|(b, q)| Op::Reserve(b, q)),
            Just(Op::Commit),
            (0usize..8).prop_map(Op::Deliver),
            (0usize..8).prop_map(Op::DeliverBlind),
            (-20i64..20).prop_map(Op::Recover),
        ]
    }

    proptest! {
        /// Whatever the order of settles, the database never has to refuse a buy the ledger
        /// granted, and once every settle is delivered the ledger equals the row.
        #[test]
        fn the_ledger_never_grants_what_the_row_cannot_give(
            start in 0i64..200,
            ops in proptest::collection::vec(op(), 1..80),
        ) {
            let mut l = Ledger::new(st(10, 100, 6, start), 0);
            let mut db = row(start, 0);
            let mut uncommitted: Vec<(Side, i64)> = Vec::new();
            let mut pending: Vec<(Side, i64, Option<Committed>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Reserve(buy, q) => {
                        let side = if buy { Side::Buy } else { Side::Sell };
                        if l.reserve(side, q, None).is_ok() {
                            uncommitted.push((side, q));
                        }
                    }
                    Op::Commit => {
                        if !uncommitted.is_empty() {
                            let (side, q) = uncommitted.remove(0);
                            let delta = if side == Side::Buy { -q } else { q };
                            prop_assert!(db.quota + delta >= 0, "the database refused a granted buy");
                            db = row(db.quota + delta, db.version + 1);
                            pending.push((side, q, Some(db)));
                        }
                    }
                    Op::Deliver(i) | Op::DeliverBlind(i) => {
                        if !pending.is_empty() {
                            let (side, q, seen) = pending.remove(i % pending.len());
                            if matches!(op, Op::Deliver(_)) {
                                l.settle(side, q, seen);
                            } else {
                                l.settle(side, q, None);
                                l.adopt(db);
                            }
                        }
                    }
                    Op::Recover(delta) => {
                        let delta = delta.max(-l.buyable());
                        l.hold_recovery(delta);
                        db = row((db.quota + delta).max(0), db.version + 1);
                        l.recovery_written(delta, Some(db));
                    }
                }
                prop_assert!(l.buyable() >= 0 && l.state.stock >= 0);
            }
            for (side, q) in uncommitted.drain(..) {
                l.release(side, q);
            }
            for (side, q, seen) in pending.drain(..) {
                l.settle(side, q, seen);
            }
            prop_assert_eq!(l.committed, db);
            prop_assert_eq!(l.buyable(), db.quota);
        }

        #[test]
        fn releasing_everything_restores_the_stock(
            start in 0i64..500,
            orders in proptest::collection::vec((any::<bool>(), 1i64..200), 1..40),
        ) {
            let mut l = Ledger::new(st(10, 200, 6, start), 3);
            let before = l;
            let mut open = Vec::new();
            for (buy, q) in orders {
                let side = if buy { Side::Buy } else { Side::Sell };
                if l.reserve(side, q, None).is_ok() {
                    open.push((side, q));
                }
            }
            for (side, q) in open.into_iter().rev() {
                l.release(side, q);
            }
            prop_assert_eq!(l, before);
        }
    }
}
