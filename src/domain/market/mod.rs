//! A market's pure parts: pricing and quotas ([`rules`]) and the bookkeeping of one good's
//! committed row and open reservations ([`ledger`]), and what a new catalog version does to
//! the goods a market holds ([`reprice`]).

pub mod ledger;
pub mod reprice;
pub mod rules;
