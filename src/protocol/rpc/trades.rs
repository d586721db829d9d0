//! Market payloads: quotes and trade results.

use super::*;

#[derive(Debug, Serialize)]
pub struct QuoteView {
    pub good: String,
    pub buy_price: i64,
    pub sell_price: i64,
    pub quota: i64,
    pub sell_quota: i64,
}

impl From<Quote> for QuoteView {
    fn from(q: Quote) -> Self {
        QuoteView {
            good: q.good,
            buy_price: q.buy_price,
            sell_price: q.sell_price,
            quota: q.quota,
            sell_quota: q.sell_quota,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Quotes {
    pub node: String,
    pub quotes: Vec<QuoteView>,
}

#[derive(Debug, Serialize)]
pub struct TradeResult {
    pub gold: i64,
    pub unit_price: i64,
    pub total: i64,
    pub cargo: Vec<CargoLine>,
}

#[derive(Debug, Serialize)]
pub struct Deleted {
    pub deleted: bool,
}
