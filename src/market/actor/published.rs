//! The market's quotes published for readers on other threads ([`MarketQuotes`]): after every
//! change of a ledger the quotes show, and withdrawn when the market stops serving.

use super::*;
use crate::market::messages::PublishedQuotes;

impl Market {
    /// Publishes the current quotes while ready; otherwise withdraws them.
    pub(super) fn publish(&self) {
        if self.phase != Phase::Ready {
            return self.withdraw();
        }
        let quotes = self
            .goods
            .iter()
            .map(|(good, slot)| slot.ledger.quote(good))
            .collect();
        self.deps.quotes.publish(
            &self.node,
            self.epoch,
            PublishedQuotes {
                catalog_version: self.catalog_version,
                quotes,
            },
        );
    }

    pub(super) fn withdraw(&self) {
        self.deps.quotes.withdraw(&self.node, self.epoch);
    }
}
