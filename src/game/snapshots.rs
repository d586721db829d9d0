//! Read-only RPCs answered from what the owners published (`routing::published`), on the
//! caller's own thread: `get_trade_quotes` for a character whose session and market both live
//! on this node reads the session's [`Whereabouts`] and the market's [`PublishedQuotes`]
//! instead of asking the session, which asks the market (two mailbox round trips).
//!
//! Why a snapshot is enough here: quotes are advisory. A trade is priced again by the market
//! (`Reserve`) through the session, and fenced there; a quote only shows what the market held
//! at its last change, which is what the actor would answer a moment earlier or later. What
//! the actors' path guarantees is kept:
//! - only the owner answers: the character and the market must both be owned by this node in
//!   the current view and the node must be serving (a key owned elsewhere goes to its owner);
//! - only the character's player (or the server) sees its quotes: the published owner is
//!   checked like the session checks it;
//! - a session that is not ready (loading, reloading after an unknown commit, passivating,
//!   fenced, deleted) has withdrawn its snapshot, and so has a market that is not ready;
//! - a newer catalog installed than the market's snapshot follows goes to the market, whose
//!   next request makes it follow the catalog.
//!
//! Anything else (no snapshot yet, a deadline passed) takes the actors' path, which also
//! activates what is missing and publishes.

use std::sync::Arc;

use metrics::Counter;
use uuid::Uuid;

use crate::character::messages::{CharacterWhereabouts, Whereabouts};
use crate::character::CharacterSession;
use crate::domain::catalog::CurrentCatalog;
use crate::market::actor::Market;
use crate::market::messages::{MarketQuotes, PublishedQuotes};
use crate::metrics::Metrics;
use crate::request::{Call, Caller};
use crate::routing::placement::Owner;
use crate::routing::Router;

/// What this node's sessions and markets publish, and how often it answered.
#[derive(Clone)]
pub struct Snapshots {
    pub whereabouts: Arc<CharacterWhereabouts>,
    pub quotes: Arc<MarketQuotes>,
    /// `get_trade_quotes` answered from the snapshots / by the actors.
    answered: [Counter; 2],
}

impl Snapshots {
    pub fn new(metrics: &Metrics) -> Snapshots {
        let answered = |by| {
            metrics.counter_with(
                "serai_snapshot_reads_total",
                &[("rpc", "get_trade_quotes"), ("answered", by)],
            )
        };
        Snapshots {
            whereabouts: Default::default(),
            quotes: Default::default(),
            answered: [answered("snapshot"), answered("owner")],
        }
    }
}

/// The quotes where `character` stands, from the snapshots, when this node may answer them
/// without asking the actors; `None` sends the request down the actors' path.
pub(super) fn quotes(
    router: &Router,
    snapshots: &Snapshots,
    catalog: &CurrentCatalog,
    character: Uuid,
    call: &Call,
) -> Option<(String, Arc<PublishedQuotes>)> {
    let answer = from_snapshots(router, snapshots, catalog, character, call);
    snapshots.answered[usize::from(answer.is_none())].increment(1);
    answer
}

fn from_snapshots(
    router: &Router,
    snapshots: &Snapshots,
    catalog: &CurrentCatalog,
    character: Uuid,
    call: &Call,
) -> Option<(String, Arc<PublishedQuotes>)> {
    if !router.is_serving() || call.deadline.check().is_err() {
        return None;
    }
    if router.owner::<CharacterSession>(&character) != Owner::Local {
        return None;
    }
    let Whereabouts { user_id, location } = &*snapshots.whereabouts.get(&character)?;
    if let Caller::User(u) = call.caller {
        if u != *user_id {
            // The session answers "not yours" (and counts it): let it.
            return None;
        }
    }
    if router.owner::<Market>(location) != Owner::Local {
        return None;
    }
    let quotes = snapshots.quotes.get(location)?;
    if quotes.catalog_version < catalog.version() {
        return None;
    }
    Some((location.clone(), quotes))
}
