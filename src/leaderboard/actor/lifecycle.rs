//! The actor's life: activation (`ctx.wait`, so nothing is answered before the load is done;
//! an unknown board answers "not found" for a few seconds, then stops), the second tick
//! (storing the bucket size, trimming expired buckets), a fenced or deleted board stopping,
//! and passivation (commit what is queued, release the claim, stop).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::load::{load, LoadError, Loaded};
use super::{unix_now, Leaderboard, Phase, BUCKET_GRACE_SECS};
use crate::leaderboard::messages::{BoardInfo, Forget, GetInfo, LeaderboardError, Warm};
use crate::leaderboard::rank_cache::RankCaches;
use crate::leaderboard::reads::Buckets;
use crate::leaderboard::replication::sync::instance_of;
use crate::persistence::claims::{self, EntityId, EntityTable};
use crate::persistence::leaderboards;
use crate::persistence::DbError;
use crate::routing::Passivate;

/// How long an actor for an unknown board answers "not found" before stopping.
const MISSING_TTL: Duration = Duration::from_secs(5);

impl Leaderboard {
    /// Starts loading; nothing else is handled until it is done.
    pub(super) fn begin_load(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Loading;
        let (deps, id) = (self.deps.clone(), self.id.clone());
        ctx.wait(
            load(deps, id)
                .into_actor(self)
                .map(|result, act, ctx| act.loaded(result, ctx)),
        );
    }

    fn loaded(&mut self, result: Result<Loaded, LoadError>, ctx: &mut Context<Self>) {
        match result {
            Ok(l) => {
                let count = l.records.len();
                self.caches = RankCaches::new(self.deps.blacklist.as_ref().clone());
                if let Some(cache) = l.cache {
                    self.caches.insert(&self.id, l.expiry, cache);
                }
                self.buckets.clear();
                self.buckets.insert(l.expiry, l.records);
                self.epoch = l.epoch;
                if let (Some(sync), Some(replica)) = (&self.deps.sync, l.replica) {
                    sync.install(replica, &[l.expiry]);
                }
                self.board = Some(Arc::new(l.board));
                self.phase = Phase::Ready;
                tracing::info!(board = %self.id, records = count, expiry = l.expiry,
                    cached = self.cached(), load_ms = l.load_ms, build_ms = l.build_ms,
                    "leaderboard loaded");
            }
            Err(LoadError::Missing) => {
                self.phase = Phase::Missing;
                ctx.run_later(MISSING_TTL, |act, ctx| {
                    if act.phase == Phase::Missing {
                        ctx.stop();
                    }
                });
            }
            Err(LoadError::Failed) => self.fail(ctx),
        }
    }

    pub(super) fn fail(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Failed;
        self.buckets.clear();
        self.caches = RankCaches::new(Vec::new());
        for op in self.pending.drain(..) {
            let _ = op.reply.send(Err(LeaderboardError::Unavailable));
        }
        // Stopping from a timer lets the messages already queued be answered first.
        ctx.run_later(Duration::ZERO, |_, ctx| ctx.stop());
    }

    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        self.store_size(ctx);
        let horizon = unix_now() - BUCKET_GRACE_SECS;
        let before = self.buckets.len();
        self.buckets
            .retain(|&expiry, _| expiry == 0 || expiry > horizon);
        if self.buckets.len() != before {
            self.caches.trim_expired(horizon);
            tracing::debug!(board = %self.id, "expired buckets trimmed");
        }
    }

    /// Writes the current bucket's size to `leaderboard.size` when it changed (tournament
    /// lists show it); fenced like every write of the board.
    fn store_size(&mut self, ctx: &mut Context<Self>) {
        let Some(board) = self.board.clone() else {
            return;
        };
        if self.phase != Phase::Ready {
            return;
        }
        let size = self.bucket_len(board.current_expiry(unix_now()));
        if self.stored_size == Some(size) {
            return;
        }
        self.stored_size = Some(size);
        let (db, id, node, epoch) = (
            self.deps.db.clone(),
            self.id.clone(),
            self.deps.node_id.clone(),
            self.epoch,
        );
        let write = async move { leaderboards::store_size(&db, &id, &node, epoch, size).await };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| match result {
            Ok(()) => {}
            Err(DbError::Fenced(_)) => {
                tracing::warn!(board = %act.id, "leaderboard fenced by a newer claim (or deleted), stopping");
                act.fail(ctx);
            }
            Err(e) => {
                tracing::debug!(board = %act.id, error = %e, "leaderboard size not stored, will retry");
                act.stored_size = None;
            }
        }));
    }

    fn begin_stop(&mut self, ctx: &mut Context<Self>) {
        if self.phase == Phase::Ready {
            self.phase = Phase::Stopping;
        }
        self.maybe_flush(ctx);
    }

    pub(super) fn finish_stop(&mut self, ctx: &mut Context<Self>) {
        if self.stop_started {
            return;
        }
        self.stop_started = true;
        let (db, id, node, epoch) = (
            self.deps.db.clone(),
            self.id.clone(),
            self.deps.node_id.clone(),
            self.epoch,
        );
        let release = async move {
            let key = EntityId::Text(id.clone());
            if let Err(e) = claims::release(&db, EntityTable::Leaderboard, &key, &node, epoch).await
            {
                tracing::warn!(board = %id, error = %e, "leaderboard: releasing the claim failed");
            }
        };
        ctx.wait(release.into_actor(self).map(|(), act, ctx| {
            for w in act.stop_waiters.drain(..) {
                let _ = w.send(());
            }
            ctx.stop();
        }));
    }
}

impl Handler<Warm> for Leaderboard {
    type Result = ResponseActFuture<Self, Result<BoardInfo, LeaderboardError>>;

    fn handle(&mut self, _: Warm, ctx: &mut Context<Self>) -> Self::Result {
        if self.phase == Phase::Missing {
            // Created since: look again (the answer below waits for the load).
            self.begin_load(ctx);
        }
        Box::pin(
            async {}
                .into_actor(self)
                .map(|(), act, ctx| act.handle(GetInfo, ctx)),
        )
    }
}

impl Handler<Forget> for Leaderboard {
    type Result = Result<(), LeaderboardError>;

    fn handle(&mut self, _: Forget, ctx: &mut Context<Self>) -> Self::Result {
        tracing::info!(board = %self.id, "leaderboard deleted, stopping");
        if let Some(sync) = &self.deps.sync {
            let instance = self.board.as_ref().map(|b| instance_of(b, self.epoch));
            sync.deleted(&self.id, instance);
        }
        self.fail(ctx);
        Ok(())
    }
}

impl Handler<Passivate> for Leaderboard {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Passivate, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        match self.phase {
            Phase::Ready | Phase::Stopping => {
                self.stop_waiters.push(tx);
                self.begin_stop(ctx);
            }
            Phase::Loading | Phase::Missing | Phase::Failed => {
                drop(tx);
                ctx.stop();
            }
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
