//! The market's rules: prices from supply and demand, order pricing, quotas, reservations and
//! recovery over time. Pure: no actix, tokio or SQL; the `Market` actor only carries out what
//! these functions decide.
//!
//! # Prices
//! Every unit of stock sits on a *slot*: slot `k` is the unit that moves the stock between
//! `k - 1` and `k`. Its mid price is
//!
//! ```text
//! mid(k) = base_price × sqrt(base_quota / max(k, 1)),  clamped to [base_price / 4, base_price × 4]
//! ```
//!
//! so the mid equals `base_price` when the stock is at `base_quota`, rises as the stock runs
//! down and falls as the market fills up. Buying a unit at stock `s` takes slot `s` and costs
//! `ceil(mid(s) × 1.05)` (at least 2); selling a unit at stock `s` fills slot `s + 1` and pays
//! `floor(mid(s + 1) × 0.95)` (at least 1, always below that slot's buy price). Because a buy
//! and the sell that undoes it price the same slot, buying and selling back at one node never
//! makes money, however small the stock. Unit prices are capped at [`MAX_UNIT_PRICE`].
//!
//! An order of `quantity` units pays the average of its units' prices as the stock moves unit
//! by unit (a big order gets a worse price), rounded against the player: up for buys, down
//! for sells. `total = unit_price × quantity`, computed with checked arithmetic.
//!
//! # Quotas
//! `quota` (what players can buy) is the stock; `sell_quota` (what the market absorbs) is
//! `max(0, 3 × base_quota − stock)`. Reservations and the committed stock are kept by
//! [`super::ledger::Ledger`].
//!
//! # Recovery
//! [`recover`] moves the stock toward `base_quota` by `restock_per_min` units per minute, in
//! both directions, and never past `base_quota`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::catalog::Stock;

/// The largest quantity one order may ask for.
pub const MAX_ORDER: i64 = 10_000;
/// The spread around the mid price, in percent: buyers pay mid + 5 %, sellers get mid − 5 %.
pub const SPREAD_PERCENT: i64 = 5;
/// The highest unit price the market ever asks or pays; with [`MAX_ORDER`] it keeps every
/// total far below `i64::MAX`.
pub const MAX_UNIT_PRICE: i64 = 1_000_000_000_000;
/// The market absorbs sales until its stock reaches this many times its base quota.
pub const SELL_CAPACITY_FACTOR: i64 = 3;

/// Whether the player buys from the market or sells to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Side {
    type Err = ();

    /// `"buy"` or `"sell"`, case-insensitive.
    fn from_str(s: &str) -> Result<Side, ()> {
        if s.eq_ignore_ascii_case("buy") {
            Ok(Side::Buy)
        } else if s.eq_ignore_ascii_case("sell") {
            Ok(Side::Sell)
        } else {
            Err(())
        }
    }
}

/// Why the market refused an order. The messages are meant for client developers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MarketError {
    #[error("this market does not trade that good")]
    UnknownGood,
    #[error("quantity must be a whole number from 1 to {MAX_ORDER}")]
    BadQuantity,
    #[error(
        "not enough quota: this market can trade at most {available} units of that good right now"
    )]
    Insufficient { available: i64 },
    #[error("the price moved: the unit price is {unit_price}, beyond your price_limit of {limit}")]
    PriceLimit { unit_price: i64, limit: i64 },
    #[error("the market is unavailable right now, try again")]
    Unavailable,
}

/// The market's state for one good at one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoodState {
    pub base_price: i64,
    pub base_quota: i64,
    pub restock_per_min: i64,
    /// Units on the market's shelves (never negative in a ledger).
    pub stock: i64,
}

/// What a player sees for one good: per-unit prices for one unit, and how much can be traded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub good: String,
    pub buy_price: i64,
    pub sell_price: i64,
    /// Units the player can buy.
    pub quota: i64,
    /// Units the market takes from sellers.
    pub sell_quota: i64,
}

/// The price of an order, and the stock it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub unit_price: i64,
    pub total: i64,
    pub stock_after: i64,
}

impl GoodState {
    /// The catalog's stock row with the market's current `stock`.
    pub fn from_stock(s: &Stock, stock: i64) -> GoodState {
        GoodState {
            base_price: s.base_price,
            base_quota: s.base_quota,
            restock_per_min: s.restock_per_min,
            stock,
        }
    }

    /// A fresh market: stock at the base quota.
    pub fn at_base(s: &Stock) -> GoodState {
        GoodState::from_stock(s, s.base_quota)
    }

    /// The mid price at the current stock (no spread, unrounded).
    pub fn mid_price(&self) -> f64 {
        mid_at(self, self.stock)
    }

    /// The mid price rounded to whole gold, as stored in `market_price_snapshot.price`.
    pub fn reference_price(&self) -> i64 {
        to_price(self.mid_price().round()).max(1)
    }

    /// What one unit costs the player now.
    pub fn buy_price(&self) -> i64 {
        buy_slot(self, self.stock)
    }

    /// What the market pays for one unit now.
    pub fn sell_price(&self) -> i64 {
        sell_slot(self, self.stock.saturating_add(1))
    }

    /// Units a player can buy.
    pub fn quota(&self) -> i64 {
        self.stock.max(0)
    }

    /// Units the market still takes: `max(0, 3 × base_quota − stock)`.
    pub fn sell_quota(&self) -> i64 {
        self.base_quota
            .max(0)
            .saturating_mul(SELL_CAPACITY_FACTOR)
            .saturating_sub(self.stock.max(0))
            .max(0)
    }
}

/// The mid price of slot `k` (the unit between stock `k - 1` and `k`).
fn mid_at(state: &GoodState, k: i64) -> f64 {
    let base = state.base_price.max(1) as f64;
    let quota = state.base_quota.max(1) as f64;
    let stock = k.max(1) as f64;
    (base * (quota / stock).sqrt()).clamp(base / 4.0, base * 4.0)
}

/// A non-negative float price as whole gold, capped at [`MAX_UNIT_PRICE`].
fn to_price(x: f64) -> i64 {
    if x.is_nan() {
        return MAX_UNIT_PRICE;
    }
    // `as` saturates; the cap keeps it far from the edges anyway.
    (x.min(MAX_UNIT_PRICE as f64) as i64).clamp(0, MAX_UNIT_PRICE)
}

/// What the player pays for slot `k`.
pub fn buy_slot(state: &GoodState, k: i64) -> i64 {
    let x = mid_at(state, k) * (100 + SPREAD_PERCENT) as f64 / 100.0;
    to_price(x.ceil()).max(2)
}

/// What the market pays for slot `k`; always at least 1 and below [`buy_slot`] of `k`.
pub fn sell_slot(state: &GoodState, k: i64) -> i64 {
    let x = mid_at(state, k) * (100 - SPREAD_PERCENT) as f64 / 100.0;
    to_price(x.floor()).min(buy_slot(state, k) - 1).max(1)
}

/// The quote for `good` at this state.
pub fn quote_for(good: &str, state: &GoodState) -> Quote {
    Quote {
        good: good.to_string(),
        buy_price: state.buy_price(),
        sell_price: state.sell_price(),
        quota: state.quota(),
        sell_quota: state.sell_quota(),
    }
}

/// Whether `quantity` is an acceptable order size (1..=[`MAX_ORDER`]).
pub fn valid_quantity(quantity: i64) -> bool {
    (1..=MAX_ORDER).contains(&quantity)
}

/// Prices an order of `quantity` units against `state` without changing it: checks the
/// quantity, the quota ([`GoodState::quota`] or [`GoodState::sell_quota`]) and the player's
/// `price_limit` (a buy is refused above it, a sell below it).
pub fn price_order(
    state: &GoodState,
    side: Side,
    quantity: i64,
    price_limit: Option<i64>,
) -> Result<Fill, MarketError> {
    if !valid_quantity(quantity) {
        return Err(MarketError::BadQuantity);
    }
    let available = match side {
        Side::Buy => state.quota(),
        Side::Sell => state.sell_quota(),
    };
    if quantity > available {
        return Err(MarketError::Insufficient { available });
    }
    let s = state.stock.max(0);
    let q = quantity;
    // Each unit price is at most MAX_UNIT_PRICE, so the sum fits easily in i128.
    let (unit_price, stock_after) = match side {
        Side::Buy => {
            let sum: i128 = (0..q).map(|i| buy_slot(state, s - i) as i128).sum();
            let avg = (sum + q as i128 - 1) / q as i128;
            (avg, s - q)
        }
        Side::Sell => {
            let sum: i128 = (1..=q)
                .map(|i| sell_slot(state, s.saturating_add(i)) as i128)
                .sum();
            (sum / q as i128, s + q)
        }
    };
    let unit_price = i64::try_from(unit_price).map_err(|_| MarketError::BadQuantity)?;
    if let Some(limit) = price_limit {
        let refused = match side {
            Side::Buy => unit_price > limit,
            Side::Sell => unit_price < limit,
        };
        if refused {
            return Err(MarketError::PriceLimit { unit_price, limit });
        }
    }
    let total = unit_price
        .checked_mul(quantity)
        .ok_or(MarketError::BadQuantity)?;
    Ok(Fill {
        unit_price,
        total,
        stock_after,
    })
}

/// Recovery progress of one good: the time since recovery was last settled (the stock reached
/// its base, or the market was loaded) and the units of recovery applied in that time. Keeping
/// the whole span instead of a rounded remainder makes recovery in many small steps add up to
/// exactly the recovery of one big step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restock {
    pub since: Duration,
    pub applied: u64,
}

/// The recovery due now for a good whose progress is `restock`, and the progress to keep once
/// that delta is applied. The delta is the recovery of the whole span `since` (`restock_per_min`
/// units per whole minute's worth, fractions rounded down) minus what was already applied,
/// toward `base_quota` and never past it (negative when the stock is above it); reaching the base (or not restocking at all) starts afresh.
pub fn recover_step(state: &GoodState, restock: Restock) -> (i64, Restock) {
    let rate = state.restock_per_min;
    if rate <= 0 {
        return (0, Restock::default());
    }
    let units = (rate as u128).saturating_mul(restock.since.as_millis()) / 60_000;
    let due = units.saturating_sub(restock.applied as u128);
    let base = state.base_quota.max(0);
    let stock = state.stock.max(0);
    let gap = base - stock;
    let step = due.min(gap.unsigned_abs() as u128) as i64;
    let delta = if gap >= 0 { step } else { -step };
    if stock + delta == base {
        return (delta, Restock::default());
    }
    let applied = restock.applied.saturating_add(step as u64);
    (
        delta,
        Restock {
            since: restock.since,
            applied,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recovery of one step over `elapsed` from a fresh start.
    fn recover(state: &GoodState, elapsed: Duration) -> i64 {
        recover_step(
            state,
            Restock {
                since: elapsed,
                applied: 0,
            },
        )
        .0
    }
    use proptest::prelude::*;

    fn st(base_price: i64, base_quota: i64, restock_per_min: i64, stock: i64) -> GoodState {
        GoodState {
            base_price,
            base_quota,
            restock_per_min,
            stock,
        }
    }

    #[test]
    fn at_base_quota_the_mid_is_the_base_price() {
        let s = st(10, 200, 6, 200);
        assert_eq!(s.mid_price(), 10.0);
        assert_eq!(s.reference_price(), 10);
        assert_eq!(s.buy_price(), 11); // ceil(10.5)
        assert_eq!(s.sell_price(), 9); // floor(0.95 × 9.975)
        assert_eq!(s.quota(), 200);
        assert_eq!(s.sell_quota(), 400);
    }

    #[test]
    fn scarcity_raises_and_glut_lowers_the_price() {
        let s = st(100, 100, 1, 25);
        assert_eq!(s.mid_price(), 200.0);
        assert_eq!(s.buy_price(), 210);
        let s = st(100, 100, 1, 400);
        assert_eq!(s.mid_price(), 50.0);
        // clamped at ×4 and ÷4
        assert_eq!(st(100, 100, 1, 1).mid_price(), 400.0);
        assert_eq!(st(100, 100, 1, 0).mid_price(), 400.0);
        assert_eq!(st(100, 100, 1, 1_000_000).mid_price(), 25.0);
    }

    #[test]
    fn cheap_goods_still_have_a_spread() {
        let s = st(1, 10, 1, 1_000);
        assert_eq!(s.buy_price(), 2);
        assert_eq!(s.sell_price(), 1);
    }

    #[test]
    fn a_big_order_pays_the_average_over_its_units() {
        let s = st(100, 100, 1, 100);
        let one = price_order(&s, Side::Buy, 1, None).unwrap();
        assert_eq!(one.unit_price, s.buy_price());
        assert_eq!(one.total, 105);
        assert_eq!(one.stock_after, 99);
        let big = price_order(&s, Side::Buy, 50, None).unwrap();
        let sum: i64 = (0..50).map(|i| buy_slot(&s, 100 - i)).sum();
        let expect = (sum + 49) / 50;
        assert_eq!(big.unit_price, expect);
        assert!(big.unit_price > one.unit_price);
        assert_eq!(big.total, big.unit_price * 50);
        assert_eq!(big.stock_after, 50);

        let sell = price_order(&s, Side::Sell, 50, None).unwrap();
        assert!(sell.unit_price < s.sell_price());
        assert_eq!(sell.stock_after, 150);
    }

    #[test]
    fn orders_are_checked() {
        let s = st(10, 20, 1, 5);
        assert_eq!(
            price_order(&s, Side::Buy, 0, None),
            Err(MarketError::BadQuantity)
        );
        assert_eq!(
            price_order(&s, Side::Buy, -3, None),
            Err(MarketError::BadQuantity)
        );
        assert_eq!(
            price_order(&s, Side::Sell, MAX_ORDER + 1, None),
            Err(MarketError::BadQuantity)
        );
        assert_eq!(
            price_order(&s, Side::Buy, 6, None),
            Err(MarketError::Insufficient { available: 5 })
        );
        assert_eq!(
            price_order(&s, Side::Sell, 56, None),
            Err(MarketError::Insufficient { available: 55 })
        );
        let buy = s.buy_price();
        assert!(price_order(&s, Side::Buy, 1, Some(buy)).is_ok());
        assert_eq!(
            price_order(&s, Side::Buy, 1, Some(buy - 1)),
            Err(MarketError::PriceLimit {
                unit_price: buy,
                limit: buy - 1
            })
        );
        let sell = s.sell_price();
        assert!(price_order(&s, Side::Sell, 1, Some(sell)).is_ok());
        assert!(matches!(
            price_order(&s, Side::Sell, 1, Some(sell + 1)),
            Err(MarketError::PriceLimit { .. })
        ));
    }

    #[test]
    fn recovery_moves_toward_base_both_ways() {
        let s = st(10, 100, 6, 40);
        assert_eq!(recover(&s, Duration::from_secs(10)), 1);
        assert_eq!(recover(&s, Duration::from_secs(60)), 6);
        assert_eq!(recover(&s, Duration::from_secs(3600)), 60);
        let s = st(10, 100, 6, 130);
        assert_eq!(recover(&s, Duration::from_secs(60)), -6);
        assert_eq!(recover(&s, Duration::from_secs(86_400)), -30);
        assert_eq!(recover(&st(10, 100, 0, 5), Duration::from_secs(999)), 0);
        assert_eq!(recover(&st(10, 100, 6, 100), Duration::from_secs(999)), 0);
    }

    #[test]
    fn recovery_keeps_fractions_of_a_unit() {
        // 1 unit per minute: 25 s is not enough, the time is kept.
        let mut s = st(10, 100, 1, 40);
        let mut r = Restock {
            since: Duration::from_secs(25),
            applied: 0,
        };
        let (delta, next) = recover_step(&s, r);
        assert_eq!((delta, next), (0, r));
        r.since += Duration::from_secs(60);
        let (delta, next) = recover_step(&s, r);
        assert_eq!(delta, 1);
        assert_eq!(next.applied, 1);
        s.stock += delta;
        r = next;
        r.since += Duration::from_secs(35);
        assert_eq!(recover_step(&s, r).0, 1);
        // at base nothing is banked
        let s = st(10, 100, 1, 99);
        let r = Restock {
            since: Duration::from_secs(600),
            applied: 0,
        };
        assert_eq!(recover_step(&s, r), (1, Restock::default()));
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            MarketError::BadQuantity.to_string(),
            "quantity must be a whole number from 1 to 10000"
        );
        assert_eq!(
            MarketError::Insufficient { available: 3 }.to_string(),
            "not enough quota: this market can trade at most 3 units of that good right now"
        );
        assert_eq!(
            MarketError::PriceLimit {
                unit_price: 12,
                limit: 10
            }
            .to_string(),
            "the price moved: the unit price is 12, beyond your price_limit of 10"
        );
    }

    #[test]
    fn side_parses() {
        assert_eq!("buy".parse::<Side>(), Ok(Side::Buy));
        assert_eq!("SELL".parse::<Side>(), Ok(Side::Sell));
        assert!("hold".parse::<Side>().is_err());
        assert_eq!(serde_json::to_string(&Side::Sell).unwrap(), "\"sell\"");
    }

    fn any_state() -> impl Strategy<Value = GoodState> {
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>())
            .prop_map(|(p, q, r, s)| st(p, q, r, s))
    }

    /// Catalog-like states: positive prices and quotas, stock anywhere in its range.
    fn sane_state() -> impl Strategy<Value = GoodState> {
        (1i64..1_000_000, 0i64..100_000, 0i64..1_000)
            .prop_flat_map(|(p, q, r)| (Just((p, q, r)), 0..=q.saturating_mul(3) + 1))
            .prop_map(|((p, q, r), s)| st(p, q, r, s))
    }

    proptest! {
        #[test]
        fn prices_are_positive_and_sell_is_below_buy(s in any_state()) {
            let (buy, sell) = (s.buy_price(), s.sell_price());
            prop_assert!(sell >= 1);
            prop_assert!(sell < buy);
            prop_assert!(buy <= MAX_UNIT_PRICE);
            prop_assert!(s.quota() >= 0 && s.sell_quota() >= 0);
        }

        #[test]
        fn orders_never_overflow(s in prop_oneof![any_state(), sane_state()], side in prop_oneof![Just(Side::Buy), Just(Side::Sell)],
                                 q in prop_oneof![any::<i64>(), 1..=MAX_ORDER], limit in any::<Option<i64>>()) {
            if let Ok(fill) = price_order(&s, side, q, limit) {
                prop_assert!(valid_quantity(q));
                prop_assert!(fill.unit_price >= 1);
                prop_assert_eq!(Some(fill.total), fill.unit_price.checked_mul(q));
                prop_assert!(fill.stock_after >= 0);
            }
        }

        #[test]
        fn buying_raises_and_selling_lowers_the_next_price(s in sane_state(), q in 1..=MAX_ORDER) {
            // Strictly, as long as neither stock is at the price clamps or the stock floor.
            let inside = |g: &GoodState| {
                let (m, b) = (g.mid_price(), g.base_price as f64);
                g.stock >= 1 && m > b / 4.0 && m < b * 4.0
            };
            if let Ok(fill) = price_order(&s, Side::Buy, q, None) {
                let after = GoodState { stock: fill.stock_after, ..s };
                prop_assert!(after.buy_price() >= s.buy_price());
                prop_assert!(after.sell_price() >= s.sell_price());
                prop_assert!(fill.unit_price >= s.buy_price());
                if inside(&s) && inside(&after) {
                    prop_assert!(after.mid_price() > s.mid_price());
                }
            }
            if let Ok(fill) = price_order(&s, Side::Sell, q, None) {
                let after = GoodState { stock: fill.stock_after, ..s };
                prop_assert!(after.buy_price() <= s.buy_price());
                prop_assert!(after.sell_price() <= s.sell_price());
                prop_assert!(fill.unit_price <= s.sell_price());
                if inside(&s) && inside(&after) {
                    prop_assert!(after.mid_price() < s.mid_price());
                }
            }
        }

        #[test]
        fn buying_and_selling_back_never_profits(s in prop_oneof![any_state(), sane_state()], q in 1..=MAX_ORDER) {
            if let Ok(buy) = price_order(&s, Side::Buy, q, None) {
                let after = GoodState { stock: buy.stock_after, ..s };
                if let Ok(sell) = price_order(&after, Side::Sell, q, None) {
                    prop_assert!(sell.total < buy.total);
                }
            }
            if let Ok(sell) = price_order(&s, Side::Sell, q, None) {
                let after = GoodState { stock: sell.stock_after, ..s };
                if let Ok(buy) = price_order(&after, Side::Buy, q, None) {
                    prop_assert!(sell.total < buy.total);
                }
            }
        }

        #[test]
        fn recovery_never_overshoots(s in any_state(), ms in any::<u64>()) {
            let elapsed = Duration::from_millis(ms);
            let delta = recover(&s, elapsed);
            let r = Restock { since: elapsed, applied: 0 };
            prop_assert_eq!(recover_step(&s, r).0, delta);
            let base = s.base_quota.max(0);
            let stock = s.stock.max(0);
            let after = stock + delta;
            if stock <= base {
                prop_assert!(delta >= 0 && after <= base);
            } else {
                prop_assert!(delta <= 0 && after >= base);
            }
            // deterministic
            prop_assert_eq!(recover(&s, elapsed), delta);
        }

        #[test]
        fn recovery_in_steps_adds_up(s in sane_state(), steps in proptest::collection::vec(0u64..120_000, 1..20)) {
            // Applying recovery in small steps reaches the same stock as one step over the
            // whole time.
            let mut cur = s;
            let mut r = Restock::default();
            let mut total = Duration::ZERO;
            for ms in steps {
                let d = Duration::from_millis(ms);
                total += d;
                r.since += d;
                let (delta, next) = recover_step(&cur, r);
                cur.stock += delta;
                r = next;
            }
            prop_assert_eq!(cur.stock, s.stock + recover(&s, total));
        }
    }
}
