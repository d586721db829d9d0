//! The `Market` actor: one per trade node, keyed by the node's code.
//!
//! Life cycle:
//! - **Start** (`ctx.wait`, so no message is handled before it is done): claims the
//!   `trade_node` row (bumping `owner_epoch`), loads the node's `market_price_snapshot` rows
//!   (creating missing ones from the catalog), and credits the recovery owed since each row was
//!   last written. An unknown node answers [`MarketError::UnknownGood`] (and no quotes), a
//!   database failure [`MarketError::Unavailable`]; either way the actor then stops.
//! - **Catalog reload**: the market remembers the catalog version it loaded with. A `GetQuotes`
//!   or `Reserve` that finds a newer one installed applies it first
//!   ([`crate::domain::market::reprice`]): goods still traded take the new base price, base
//!   quota and restock rate and keep their committed row and open reservations; goods no longer
//!   traded there leave; goods newly traded get their row (seeded at base) and join once read.
//! - **Reserve / Settle**: see [`crate::domain::market::ledger`]: the row is the one truth of the stock, the
//!   actor holds the newest row it heard of plus its open reservations. A settle brings the
//!   row its trade left; when it cannot (a commit resolved from its receipt, a trade the
//!   database refused) and when a reservation is released by its timer (not settled within
//!   `reservation_ttl`: the caller crashed), the actor reads the good's row again. Settles of
//!   reservations it does not know (expired, or granted by an earlier activation) still bring
//!   their row.
//! - **Recovery**: every `recovery_interval` the due recovery of every good is written as
//!   `quota = quota + delta` in one transaction fenced by the claim epoch, and the rows it left
//!   are adopted. A fall is held at once (so it can never race a reservation below zero) and
//!   let go if the write fails. A fenced write stops the actor at once.
//! - **Passivation**: after `idle` without messages and with no reservation open (or on
//!   [`Passivate`]), the actor writes the recovery due, releases its claim and stops. Messages
//!   arriving meanwhile get [`MarketError::Unavailable`]: send them again to reach a fresh
//!   activation.

mod published;
mod recovery;
mod reload;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use metrics::Counter;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::messages::{
    GetQuotes, GetStatus, MarketQuotes, MarketStatus, Reservation, Reserve, Settle, SettleOutcome,
};
use crate::domain::catalog::{CurrentCatalog, Stock};
use crate::domain::market::ledger::Ledger;
use crate::domain::market::rules::{GoodState, MarketError, Quote, Restock};
use crate::persistence::claims::{self, EntityId, EntityTable};
use crate::persistence::markets::{self, QuotaDelta};
use crate::persistence::{Db, DbError};
use crate::routing::Entity;
use crate::routing::Passivate;

/// How long a reservation may stay open before it is released (tests; nodes use
/// [`reservation_ttl`]).
pub const RESERVATION_TTL: Duration = Duration::from_secs(30);

/// A trade settles its reservation within its deadline (the trade transaction cannot commit
/// later); past that plus a margin its caller is gone or stalled, and holding the units longer
/// only hides stock. A commit that still lands later brings its row with its settle.
pub fn reservation_ttl(request_timeout: Duration) -> Duration {
    request_timeout + Duration::from_secs(5)
}
/// How often recovery is written.
pub const RECOVERY_INTERVAL: Duration = Duration::from_secs(10);
/// Recovery owed at load is counted for at most this long (a market idle for longer is back at
/// its base anyway).
const MAX_CATCH_UP: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a market needs from its node.
#[derive(Debug, Clone)]
pub struct MarketDeps {
    pub db: Db,
    /// The catalog served now; the market follows a newer version at its next request.
    pub catalog: CurrentCatalog,
    /// This node's id, written as the claim's `owner_node`.
    pub node_id: String,
    /// Passivate after this long without messages (and no reservation open).
    pub idle: Duration,
    /// How often recovery is written ([`RECOVERY_INTERVAL`]).
    pub recovery_interval: Duration,
    /// How long a reservation may stay open ([`RESERVATION_TTL`]).
    pub reservation_ttl: Duration,
    /// Where the market publishes its quotes for readers on other threads.
    pub quotes: Arc<MarketQuotes>,
}

impl MarketDeps {
    /// Dependencies with the default recovery interval and reservation lifetime.
    pub fn new(
        db: Db,
        catalog: impl Into<CurrentCatalog>,
        node_id: impl Into<String>,
        idle: Duration,
    ) -> Self {
        MarketDeps {
            db,
            catalog: catalog.into(),
            node_id: node_id.into(),
            idle,
            recovery_interval: RECOVERY_INTERVAL,
            reservation_ttl: RESERVATION_TTL,
            quotes: Arc::new(MarketQuotes::new()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Loading,
    Ready,
    /// Passivating: no new reservations; stops once the last write is done.
    Stopping,
    Failed(MarketError),
}

struct Slot {
    ledger: Ledger,
    restock: Restock,
    /// A read of the row is under way (one at a time per good).
    refreshing: bool,
}

impl Slot {
    fn new(ledger: Ledger, restock: Restock) -> Slot {
        Slot {
            ledger,
            restock,
            refreshing: false,
        }
    }
}

struct Loaded {
    epoch: i64,
    /// The catalog version the goods' parameters come from.
    catalog_version: i64,
    goods: BTreeMap<String, Slot>,
}

/// A recovery delta being written, and what to do once it commits.
struct Planned {
    good: String,
    delta: i64,
    next: Restock,
}

struct Counters {
    reserved: Counter,
    refused: Counter,
    committed: Counter,
    released: Counter,
    expired: Counter,
}

impl Counters {
    fn new(db: &Db) -> Counters {
        let c = |v| {
            db.metrics()
                .counter("serai_market_reservations_total", "outcome", v)
        };
        Counters {
            reserved: c("reserved"),
            refused: c("refused"),
            committed: c("committed"),
            released: c("released"),
            expired: c("expired"),
        }
    }
}

/// The market of one trade node.
pub struct Market {
    node: String,
    deps: MarketDeps,
    phase: Phase,
    epoch: i64,
    /// The catalog version the goods' parameters come from.
    catalog_version: i64,
    goods: BTreeMap<String, Slot>,
    open: HashMap<u64, Reservation>,
    next_seq: u32,
    /// Recovery time is credited up to here.
    clock: Instant,
    last_recovery: Instant,
    last_activity: Instant,
    recovery_in_flight: bool,
    stop_started: bool,
    stop_waiters: Vec<oneshot::Sender<()>>,
    counters: Counters,
}

impl Entity for Market {
    type Key = String;
    const KIND: &'static str = "market";
}

impl Market {
    /// The market of trade node `node`; it loads itself when started.
    pub fn new(node: String, deps: MarketDeps) -> Market {
        let now = Instant::now();
        Market {
            node,
            phase: Phase::Loading,
            epoch: 0,
            catalog_version: 0,
            goods: BTreeMap::new(),
            open: HashMap::new(),
            next_seq: 0,
            clock: now,
            last_recovery: now,
            last_activity: now,
            recovery_in_flight: false,
            stop_started: false,
            stop_waiters: Vec::new(),
            counters: Counters::new(&deps.db),
            deps,
        }
    }

    fn ready(&mut self, loaded: Loaded, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.epoch = loaded.epoch;
        self.catalog_version = loaded.catalog_version;
        self.goods = loaded.goods;
        self.phase = Phase::Ready;
        self.clock = now;
        self.last_activity = now;
        tracing::debug!(node = %self.node, epoch = self.epoch, goods = self.goods.len(), "market loaded");
        let tick = self
            .deps
            .recovery_interval
            .min(self.deps.idle)
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10));
        ctx.run_interval(tick, |act, ctx| act.tick(ctx));
        // Write the recovery owed since the rows were last written.
        self.start_recovery(ctx);
        self.publish();
    }

    fn fail(&mut self, error: MarketError, ctx: &mut Context<Self>) {
        self.phase = Phase::Failed(error);
        self.withdraw();
        self.goods.clear();
        self.open.clear();
        // Stopping at once would drop the messages already queued; stopping from a timer lets
        // them be answered (with the error) first.
        ctx.run_later(Duration::ZERO, |_, ctx| ctx.stop());
    }

    /// Stops taking reservations; writes the last recovery and releases the claim as soon as
    /// no recovery write is in flight (a write in flight holds row locks the last one needs).
    fn begin_stop(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Stopping;
        self.withdraw();
        if !self.recovery_in_flight {
            self.finish_stop(ctx);
        }
    }

    fn finish_stop(&mut self, ctx: &mut Context<Self>) {
        if self.stop_started {
            return;
        }
        self.stop_started = true;
        let (_, deltas) = self.plan_recovery();
        let (db, node, owner, epoch) = (
            self.deps.db.clone(),
            self.node.clone(),
            self.deps.node_id.clone(),
            self.epoch,
        );
        let last = async move {
            if !deltas.is_empty() {
                match markets::apply_recovery(&db, &node, &owner, epoch, &deltas).await {
                    Ok(_) => {}
                    Err(DbError::Fenced(_)) => return,
                    Err(e) => {
                        tracing::warn!(node = %node, error = %e, "market: last recovery write failed")
                    }
                }
            }
            let id = EntityId::Text(node.clone());
            if let Err(e) = claims::release(&db, EntityTable::TradeNode, &id, &owner, epoch).await {
                tracing::warn!(node = %node, error = %e, "market: releasing the claim failed");
            }
        };
        ctx.wait(last.into_actor(self).map(|(), act, ctx| {
            for w in act.stop_waiters.drain(..) {
                let _ = w.send(());
            }
            ctx.stop();
        }));
    }

    fn next_id(&mut self) -> u64 {
        self.next_seq = self.next_seq.wrapping_add(1);
        ((self.epoch as u64) << 32) | u64::from(self.next_seq)
    }

    /// A reservation nobody settled in time: its trade may still have committed, so the
    /// units are freed and the row read again.
    fn expire(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(r) = self.open.remove(&id) else {
            return;
        };
        if let Some(slot) = self.goods.get_mut(&r.good) {
            slot.ledger.release(r.side, r.quantity);
        }
        tracing::warn!(node = %self.node, id, good = %r.good, side = %r.side, quantity = r.quantity,
            "market reservation not settled in time, released");
        self.counters.expired.increment(1);
        self.publish();
        self.refresh(&r.good, ctx);
    }

    /// Reads `good`'s row and adopts it if it is newer than what the ledger holds: for when
    /// the ledger may have missed a committed change.
    fn refresh(&mut self, good: &str, ctx: &mut Context<Self>) {
        let Some(slot) = self.goods.get_mut(good) else {
            return;
        };
        if slot.refreshing {
            return;
        }
        slot.refreshing = true;
        let (db, node, good) = (self.deps.db.clone(), self.node.clone(), good.to_string());
        let read = {
            let good = good.clone();
            async move { markets::read_stock(&db, &node, &good).await }
        };
        ctx.spawn(read.into_actor(self).map(move |result, act, _| {
            let Some(slot) = act.goods.get_mut(&good) else {
                return;
            };
            slot.refreshing = false;
            match result {
                Ok(Some(row)) => {
                    slot.ledger.adopt(row);
                    act.publish();
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(node = %act.node, %good, error = %e, "market: reading the row failed")
                }
            }
        }));
    }

    fn touch(&mut self) {
        self.last_activity = Instant::now();
    }
}

impl Actor for Market {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (deps, node) = (self.deps.clone(), self.node.clone());
        ctx.wait(
            load(deps, node)
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(loaded) => act.ready(loaded, ctx),
                    Err(e) => {
                        if e == MarketError::Unavailable {
                            tracing::warn!(node = %act.node, "market failed to load");
                        }
                        act.fail(e, ctx)
                    }
                }),
        );
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.withdraw();
        tracing::debug!(node = %self.node, "market stopped");
    }
}

/// Claims the node's row and loads its market.
async fn load(deps: MarketDeps, node: String) -> Result<Loaded, MarketError> {
    let catalog = deps.catalog.get();
    if catalog.node(&node).is_none() {
        return Err(MarketError::UnknownGood);
    }
    let unavailable = |what: &str, e: DbError| {
        tracing::warn!(node = %node, error = %e, "market: {what} failed");
        MarketError::Unavailable
    };
    let id = EntityId::Text(node.clone());
    let epoch = claims::claim(&deps.db, EntityTable::TradeNode, &id, &deps.node_id)
        .await
        .map_err(|e| unavailable("claim", e))?;
    let rows = markets::load(&deps.db, &node)
        .await
        .map_err(|e| unavailable("load", e))?;
    let rows: HashMap<&str, &markets::SnapshotRow> =
        rows.iter().map(|r| (r.good.as_str(), r)).collect();
    let mut goods = BTreeMap::new();
    let mut missing = Vec::new();
    for stock in catalog.stock_at(&node) {
        let slot = match rows.get(stock.good.as_str()) {
            Some(row) => slot_from_row(stock, row),
            None => {
                let state = GoodState::at_base(stock);
                missing.push((stock.good.clone(), state.reference_price(), state.stock));
                Slot::new(Ledger::new(state, 0), Restock::default())
            }
        };
        goods.insert(stock.good.clone(), slot);
    }
    markets::seed(&deps.db, &node, &missing)
        .await
        .map_err(|e| unavailable("seed", e))?;
    Ok(Loaded {
        epoch,
        catalog_version: catalog.version,
        goods,
    })
}

/// A good's slot over its stored row, owed the recovery since the row was last written.
fn slot_from_row(stock: &Stock, row: &markets::SnapshotRow) -> Slot {
    Slot::new(
        Ledger::new(GoodState::from_stock(stock, row.quota), row.version),
        Restock {
            since: row.age.min(MAX_CATCH_UP),
            applied: 0,
        },
    )
}

impl Handler<GetQuotes> for Market {
    type Result = Vec<Quote>;

    fn handle(&mut self, _: GetQuotes, ctx: &mut Context<Self>) -> Vec<Quote> {
        self.touch();
        self.follow_catalog(ctx);
        self.publish();
        self.goods
            .iter()
            .map(|(good, slot)| slot.ledger.quote(good))
            .collect()
    }
}

impl Handler<Reserve> for Market {
    type Result = Result<Reservation, MarketError>;

    fn handle(&mut self, msg: Reserve, ctx: &mut Context<Self>) -> Self::Result {
        self.touch();
        self.follow_catalog(ctx);
        match &self.phase {
            Phase::Ready => {}
            Phase::Failed(e) => return Err(e.clone()),
            Phase::Loading | Phase::Stopping => return Err(MarketError::Unavailable),
        }
        let Some(slot) = self.goods.get_mut(&msg.good) else {
            self.counters.refused.increment(1);
            return Err(MarketError::UnknownGood);
        };
        let fill = match slot.ledger.reserve(msg.side, msg.quantity, msg.price_limit) {
            Ok(fill) => fill,
            Err(e) => {
                self.counters.refused.increment(1);
                return Err(e);
            }
        };
        let id = self.next_id();
        let reservation = Reservation {
            id,
            node: self.node.clone(),
            good: msg.good,
            side: msg.side,
            quantity: msg.quantity,
            unit_price: fill.unit_price,
            total: fill.total,
            stock_after: fill.stock_after,
        };
        self.open.insert(id, reservation.clone());
        self.counters.reserved.increment(1);
        self.publish();
        ctx.run_later(self.deps.reservation_ttl, move |act, ctx| {
            act.expire(id, ctx)
        });
        Ok(reservation)
    }
}

impl Handler<Settle> for Market {
    type Result = ();

    fn handle(&mut self, msg: Settle, ctx: &mut Context<Self>) {
        self.touch();
        // An open reservation names its own good. An unknown one (expired, or granted by an
        // earlier activation) has only the message's, and only its row can teach us anything.
        let open = self.open.remove(&msg.reservation_id);
        let good = open.as_ref().map_or(msg.good, |r| r.good.clone());
        let Some(slot) = self.goods.get_mut(&good) else {
            return;
        };
        match (open, msg.outcome) {
            (Some(r), SettleOutcome::Committed(seen)) => {
                slot.ledger.settle(r.side, r.quantity, seen);
                self.counters.committed.increment(1);
            }
            (Some(r), SettleOutcome::Refused | SettleOutcome::NotRun) => {
                slot.ledger.release(r.side, r.quantity);
                self.counters.released.increment(1);
            }
            (None, SettleOutcome::Committed(Some(row))) => {
                slot.ledger.adopt(row);
            }
            (None, _) => {}
        }
        self.publish();
        // The row the trade left is not known, or the market's view of it was stale.
        if matches!(
            msg.outcome,
            SettleOutcome::Committed(None) | SettleOutcome::Refused
        ) {
            self.refresh(&good, ctx);
        }
    }
}

impl Handler<Passivate> for Market {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Passivate, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        match self.phase {
            Phase::Ready | Phase::Stopping => {
                self.stop_waiters.push(tx);
                self.begin_stop(ctx);
            }
            Phase::Loading | Phase::Failed(_) => drop(tx),
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<GetStatus> for Market {
    type Result = Option<MarketStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Option<MarketStatus> {
        match self.phase {
            Phase::Ready | Phase::Stopping => Some(MarketStatus {
                node: self.node.clone(),
                epoch: self.epoch,
                open_reservations: self.open.len(),
                goods: self
                    .goods
                    .iter()
                    .map(|(g, s)| (g.clone(), s.ledger))
                    .collect(),
            }),
            Phase::Loading | Phase::Failed(_) => None,
        }
    }
}
