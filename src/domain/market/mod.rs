//! A market's pure parts: pricing and quotas ([`rules`]) and the bookkeeping of one good's
//! committed row and open reservations ([`ledger`]).

pub mod ledger;
pub mod rules;
