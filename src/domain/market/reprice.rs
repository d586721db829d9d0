//! A market under a new catalog version: what becomes of the goods it holds. Pure: the
//! `Market` actor asks [`reprice`] and carries the answer out.
//!
//! The catalog gives each good at a node its parameters (base price, base quota, restock
//! rate); the market's live figures are its own and stay: the committed row (stock and
//! version) and the open reservations. So a good still traded keeps its ledger with the new
//! parameters, and its quotes move at once to the new base price. A restock rate that changed
//! starts the good's recovery span afresh (the span counts units at one rate; at most the
//! fraction of a unit not yet written under the old rate is lost). A good the catalog newly
//! trades at the node needs its market row first; a good it no longer trades there leaves the
//! market (a trade already reserved on it still commits its row).

use super::ledger::Ledger;
use crate::domain::catalog::Stock;

/// A good still traded, under its new parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repriced {
    pub good: String,
    /// The held ledger with the new parameters: committed row and reservations unchanged.
    pub ledger: Ledger,
    /// The restock rate changed: recovery starts a new span.
    pub restart_recovery: bool,
}

/// What a market does with its goods when the catalog changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repricing {
    /// Goods held and still traded whose parameters changed (unchanged ones are left out).
    pub repriced: Vec<Repriced>,
    /// Goods the new catalog trades at the node that the market does not hold yet.
    pub added: Vec<Stock>,
    /// Goods held that the new catalog no longer trades at the node.
    pub removed: Vec<String>,
}

/// Compares the goods a market `held` (by good code, with their ledgers) with the new
/// catalog's `stock` rows for its node.
pub fn reprice<'a>(
    held: impl IntoIterator<Item = (&'a str, &'a Ledger)>,
    stock: impl IntoIterator<Item = &'a Stock>,
) -> Repricing {
    let stock: Vec<&Stock> = stock.into_iter().collect();
    let mut out = Repricing::default();
    let mut seen = Vec::new();
    for (good, ledger) in held {
        seen.push(good);
        let Some(s) = stock.iter().find(|s| s.good == good) else {
            out.removed.push(good.to_string());
            continue;
        };
        let state = ledger.state;
        if (state.base_price, state.base_quota, state.restock_per_min)
            == (s.base_price, s.base_quota, s.restock_per_min)
        {
            continue;
        }
        let mut next = *ledger;
        next.state.base_price = s.base_price;
        next.state.base_quota = s.base_quota;
        next.state.restock_per_min = s.restock_per_min;
        out.repriced.push(Repriced {
            good: good.to_string(),
            ledger: next,
            restart_recovery: state.restock_per_min != s.restock_per_min,
        });
    }
    out.added = stock
        .into_iter()
        .filter(|s| !seen.contains(&s.good.as_str()))
        .cloned()
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::market::ledger::Committed;
    use crate::domain::market::rules::{GoodState, Side};

    fn stock(good: &str, base_price: i64, base_quota: i64, restock_per_min: i64) -> Stock {
        Stock {
            node: "n".into(),
            good: good.into(),
            base_price,
            base_quota,
            restock_per_min,
        }
    }

    fn ledger(s: &Stock, quota: i64, version: i64) -> Ledger {
        Ledger::new(GoodState::from_stock(s, quota), version)
    }

    #[test]
    fn a_new_base_price_moves_the_quotes_and_keeps_stock_and_reservations() {
        let old = stock("grain", 10, 200, 6);
        let mut grain = ledger(&old, 150, 9);
        grain.reserve(Side::Buy, 20, None).unwrap();
        grain.reserve(Side::Sell, 5, None).unwrap();
        let before = grain.quote("grain");
        let plan = reprice([("grain", &grain)], [&stock("grain", 20, 200, 6)]);
        assert!(plan.added.is_empty() && plan.removed.is_empty());
        let [r] = plan.repriced.as_slice() else {
            panic!("one good repriced: {plan:?}")
        };
        assert_eq!(r.good, "grain");
        assert!(!r.restart_recovery, "the rate did not change");
        assert_eq!(r.ledger.state.base_price, 20);
        assert_eq!(
            r.ledger.committed,
            Committed {
                quota: 150,
                version: 9
            }
        );
        assert_eq!((r.ledger.open_buys, r.ledger.open_sells), (20, 5));
        assert_eq!(r.ledger.stock(), grain.stock());
        assert_eq!(r.ledger.buyable(), 130);
        let after = r.ledger.quote("grain");
        assert_eq!(after.quota, before.quota);
        assert!(
            after.buy_price > before.buy_price * 19 / 10,
            "{before:?} → {after:?}"
        );
        // The reservations still close as before.
        let mut l = r.ledger;
        l.release(Side::Buy, 20);
        l.release(Side::Sell, 5);
        assert_eq!(l.buyable(), 150);
    }

    #[test]
    fn unchanged_goods_stay_and_a_new_rate_restarts_recovery() {
        let (a, b) = (stock("a", 10, 100, 6), stock("b", 30, 50, 2));
        let (la, lb) = (ledger(&a, 100, 1), ledger(&b, 10, 4));
        let plan = reprice([("a", &la), ("b", &lb)], [&a, &stock("b", 30, 80, 4)]);
        assert_eq!(plan.repriced.len(), 1, "a is unchanged: {plan:?}");
        let r = &plan.repriced[0];
        assert_eq!(r.good, "b");
        assert!(r.restart_recovery);
        assert_eq!(
            (r.ledger.state.base_quota, r.ledger.state.restock_per_min),
            (80, 4)
        );
        assert_eq!(r.ledger.committed, lb.committed);
    }

    #[test]
    fn goods_come_and_go_with_the_catalog() {
        let (a, b, c) = (
            stock("a", 10, 100, 6),
            stock("b", 30, 50, 2),
            stock("c", 7, 70, 1),
        );
        let (la, lb) = (ledger(&a, 100, 1), ledger(&b, 10, 4));
        let plan = reprice([("a", &la), ("b", &lb)], [&a, &c]);
        assert!(plan.repriced.is_empty());
        assert_eq!(plan.removed, vec!["b".to_string()]);
        assert_eq!(plan.added, vec![c]);
        assert_eq!(reprice([("a", &la)], [&a]), Repricing::default());
    }
}
