//! The `Sale` actor: one per sale id. It claims the `world_sale` row (owner node + epoch),
//! loads `sold` and every buyer's units, and then holds reservations over its
//! [`SaleBook`]. It writes nothing itself: purchases are written by the buyers' sessions,
//! guarded in the database, and their settles (or a read, when a settle cannot say) bring the
//! rows back. A new owner after a failover loads the same rows; the guards make whatever a
//! stale owner still grants safe.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::messages::{GetStatus, Reserve, SaleGrant, SaleStatus, Settle};
use crate::domain::world::sale::{SaleBook, SaleError, SaleSpec};
use crate::persistence::claims::{self, EntityId, EntityTable};
use crate::persistence::{world_sales, Db, DbError};
use crate::routing::{Entity, Passivate};

/// What a sale needs from its node.
#[derive(Debug, Clone)]
pub struct SaleDeps {
    pub db: Db,
    /// This node's id, written as the claim's `owner_node`.
    pub node_id: String,
    /// Passivate after this long without messages (and no reservation open).
    pub idle: Duration,
    /// How long a reservation may stay open before it is released.
    pub reservation_ttl: Duration,
}

enum Phase {
    Loading,
    Ready(SaleBook),
    Stopping,
    Failed(SaleError),
}

/// One limited-time sale.
pub struct Sale {
    id: String,
    deps: SaleDeps,
    phase: Phase,
    epoch: i64,
    next_seq: u32,
    last_activity: Instant,
}

impl Entity for Sale {
    type Key = String;
    const KIND: &'static str = "world_sale";
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Sale {
    pub fn new(id: String, deps: SaleDeps) -> Sale {
        Sale {
            id,
            deps,
            phase: Phase::Loading,
            epoch: 0,
            next_seq: 0,
            last_activity: Instant::now(),
        }
    }

    fn book(&mut self) -> Result<&mut SaleBook, SaleError> {
        match &mut self.phase {
            Phase::Ready(book) => Ok(book),
            Phase::Failed(e) => Err(e.clone()),
            Phase::Loading | Phase::Stopping => Err(SaleError::Unavailable),
        }
    }

    fn fail(&mut self, error: SaleError, ctx: &mut Context<Self>) {
        self.phase = Phase::Failed(error);
        // Stopping from a timer lets the messages already queued be answered first.
        ctx.run_later(Duration::ZERO, |_, ctx| ctx.stop());
    }

    /// Releases a reservation nobody settled in time; its purchase may still have
    /// committed, so the rows are read again.
    fn expire(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Ok(book) = self.book() else { return };
        if let Some(hold) = book.release(id) {
            tracing::warn!(sale = %self.id, id, "sale reservation not settled in time, released");
            self.refresh(hold.character, ctx);
        }
    }

    /// Reads the sale's `sold` and `character`'s units and adopts them.
    fn refresh(&mut self, character: Uuid, ctx: &mut Context<Self>) {
        let (db, id) = (self.deps.db.clone(), self.id.clone());
        let read = async move { world_sales::read_rows(&db, &id, character).await };
        ctx.spawn(
            read.into_actor(self)
                .map(move |rows, act, _| match (rows, act.book()) {
                    (Ok(rows), Ok(book)) => book.adopt(character, rows),
                    (Err(e), _) => {
                        tracing::warn!(sale = %act.id, error = %e, "sale: reading its rows failed")
                    }
                    _ => {}
                }),
        );
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let idle = self.last_activity.elapsed() >= self.deps.idle;
        if let Phase::Ready(book) = &self.phase {
            if idle && book.open_count() == 0 {
                self.begin_stop(ctx, None);
            }
        }
    }

    /// Stops taking reservations, releases the claim, then stops.
    fn begin_stop(&mut self, ctx: &mut Context<Self>, done: Option<oneshot::Sender<()>>) {
        self.phase = Phase::Stopping;
        let (db, owner, epoch) = (self.deps.db.clone(), self.deps.node_id.clone(), self.epoch);
        let id = EntityId::Text(self.id.clone());
        let release = async move {
            if let Err(e) = claims::release(&db, EntityTable::WorldSale, &id, &owner, epoch).await {
                tracing::warn!(sale = %id, error = %e, "sale: releasing the claim failed");
            }
        };
        ctx.wait(release.into_actor(self).map(|(), _, ctx| {
            if let Some(done) = done {
                let _ = done.send(());
            }
            ctx.stop();
        }));
    }
}

/// Claims the sale's row and loads its book.
async fn load(deps: SaleDeps, id: String) -> Result<(i64, SaleBook), SaleError> {
    let unavailable = |what: &str, e: DbError| {
        tracing::warn!(sale = %id, error = %e, "sale: {what} failed");
        SaleError::Unavailable
    };
    let key = EntityId::Text(id.clone());
    let epoch = match claims::claim(&deps.db, EntityTable::WorldSale, &key, &deps.node_id).await {
        Ok(epoch) => epoch,
        Err(DbError::NotFound(_)) => return Err(SaleError::NotFound),
        Err(e) => return Err(unavailable("claim", e)),
    };
    let (row, bought) = world_sales::load(&deps.db, &id)
        .await
        .map_err(|e| unavailable("load", e))?
        .ok_or(SaleError::NotFound)?;
    let spec: SaleSpec = row.spec;
    Ok((epoch, SaleBook::new(spec, row.sold, bought)))
}

impl Actor for Sale {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let load = load(self.deps.clone(), self.id.clone());
        ctx.wait(load.into_actor(self).map(|result, act, ctx| match result {
            Ok((epoch, book)) => {
                tracing::debug!(sale = %act.id, epoch, sold = book.sold, "sale loaded");
                act.epoch = epoch;
                act.phase = Phase::Ready(book);
                let tick = act
                    .deps
                    .idle
                    .clamp(Duration::from_millis(10), Duration::from_secs(1));
                ctx.run_interval(tick, |act, ctx| act.tick(ctx));
            }
            Err(e) => act.fail(e, ctx),
        }));
    }
}

impl Handler<Reserve> for Sale {
    type Result = Result<SaleGrant, SaleError>;

    fn handle(&mut self, msg: Reserve, ctx: &mut Context<Self>) -> Self::Result {
        self.last_activity = Instant::now();
        self.next_seq = self.next_seq.wrapping_add(1);
        let id = ((self.epoch as u64) << 32) | u64::from(self.next_seq);
        let book = self.book()?;
        let node = book.spec.node.clone();
        book.reserve(id, msg.character_id, &node, msg.quantity, now_ms())?;
        let s = &book.spec;
        let grant = SaleGrant {
            id,
            node,
            good: s.good.clone(),
            quantity: msg.quantity,
            price: s.price,
            total: s.price.saturating_mul(msg.quantity),
            stock: s.stock,
            limit: s.per_character_limit,
        };
        ctx.run_later(self.deps.reservation_ttl, move |act, ctx| {
            act.expire(id, ctx)
        });
        Ok(grant)
    }
}

impl Handler<Settle> for Sale {
    type Result = ();

    fn handle(&mut self, msg: Settle, ctx: &mut Context<Self>) {
        self.last_activity = Instant::now();
        let Ok(book) = self.book() else { return };
        if book.settle(msg.reservation_id, msg.character_id, msg.outcome) {
            self.refresh(msg.character_id, ctx);
        }
    }
}

impl Handler<GetStatus> for Sale {
    type Result = Option<SaleStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Option<SaleStatus> {
        let epoch = self.epoch;
        self.book().ok().map(|b| SaleStatus {
            epoch,
            sold: b.sold,
            reserved: b.reserved(),
            open_reservations: b.open_count(),
        })
    }
}

impl Handler<Passivate> for Sale {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Passivate, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if let Phase::Ready(_) = self.phase {
            self.begin_stop(ctx, Some(tx));
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
