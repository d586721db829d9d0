//! Write batching (group commit): a batch is taken when `leaderboard_batch_size` writes wait,
//! or the oldest has waited `leaderboard_batch_window` and the batch is worth a commit of its
//! own ([`due`]: at once when nothing is in flight, else once it is about as full as those in
//! flight); its changes go to the database in one fenced
//! statement ([`leaderboards::flush`]); only after it commits are they applied to memory (and
//! replication) and each writer answered. Up to `max_in_flight` batches at once, never two on
//! one record. A failed batch changes nothing and its writers are told to retry; a fenced one
//! stops the actor.

use std::collections::{HashSet, VecDeque};

use actix::prelude::*;
use uuid::Uuid;

use super::apply::{Answers, Applied, Done, Overlay};
use super::writes::Op;
use super::{unix_now, Entry, Leaderboard, Phase};
use crate::leaderboard::board::Board;
use crate::leaderboard::messages::LeaderboardError;
use crate::leaderboard::reads;
use crate::leaderboard::replication::sync::local_change;
use crate::persistence::leaderboards::{self, FlushBatch, RecordRow};
use crate::persistence::DbError;

impl Leaderboard {
    /// Takes batches while one is due and fewer than `max_in_flight` are in flight; otherwise
    /// arms the window timer.
    pub(super) fn maybe_flush(&mut self, ctx: &mut Context<Self>) {
        while self.in_flight < self.deps.max_in_flight.max(1) {
            let Some(oldest) = self.pending.front().map(|op| op.queued) else {
                if self.phase == Phase::Stopping && self.in_flight == 0 {
                    self.finish_stop(ctx);
                }
                return;
            };
            let waited = oldest.elapsed();
            let gather = self.deps.batch_window;
            let due = due(
                self.pending.len(),
                self.deps.batch_size,
                self.in_flight,
                waited >= gather,
                self.phase == Phase::Stopping,
            );
            if !due {
                // Inside the window the timer looks again when it ends; past it the batch
                // waits to fill, and the next commit of a batch in flight (or the next write)
                // looks again.
                if waited < gather && !self.timer_armed {
                    self.timer_armed = true;
                    ctx.run_later(gather - waited, |act, ctx| {
                        act.timer_armed = false;
                        act.maybe_flush(ctx);
                    });
                }
                return;
            }
            if !self.start_flush(ctx) {
                // Everything waiting touches records of batches in flight.
                return;
            }
        }
    }

    /// Takes the next batch: waiting writes in arrival order, up to `batch_size`, leaving
    /// (in order) those whose record is changed by a batch in flight.
    fn take_batch(&mut self) -> Vec<Op> {
        let limit = self.deps.batch_size.max(1);
        if self.busy.is_empty() {
            let take = self.pending.len().min(limit);
            return self.pending.drain(..take).collect();
        }
        let mut ops = Vec::new();
        let mut kept = VecDeque::with_capacity(self.pending.len());
        let mut blocked: HashSet<(i64, Uuid)> = HashSet::new();
        while let Some(op) = self.pending.pop_front() {
            if ops.len() >= limit {
                kept.push_back(op);
                kept.extend(self.pending.drain(..));
                break;
            }
            let key = (op.expiry, op.owner);
            if self.busy.contains(&key) || blocked.contains(&key) {
                blocked.insert(key);
                kept.push_back(op);
            } else {
                ops.push(op);
            }
        }
        self.pending = kept;
        ops
    }

    /// Applies the next batch on top of the committed records and sends the changes to the
    /// database; memory and the writers follow once it commits. False when no write could be
    /// taken.
    fn start_flush(&mut self, ctx: &mut Context<Self>) -> bool {
        let Some(board) = self.board.clone() else {
            return false;
        };
        let ops = self.take_batch();
        if ops.is_empty() {
            return false;
        }
        let Applied {
            overlay,
            size_delta,
            answers,
        } = self.apply_batch(&board, ops, unix_now());
        let mut batch = FlushBatch::default();
        for (&(expiry, owner), change) in &overlay {
            match change {
                Some(e) => batch.upserts.push(row_of(&board, expiry, owner, e)),
                None => batch.deletes.push((expiry, owner)),
            }
        }
        if batch.is_empty() {
            self.commit(&board, overlay, answers);
            return true;
        }
        self.in_flight += 1;
        self.busy.extend(overlay.keys().copied());
        for (&expiry, &d) in &size_delta {
            *self.busy_size.entry(expiry).or_default() += d;
        }
        let (db, id, node, epoch) = (
            self.deps.db.clone(),
            self.id.clone(),
            self.deps.node_id.clone(),
            self.epoch,
        );
        let rows = batch.upserts.len() + batch.deletes.len();
        let started = std::time::Instant::now();
        let write = async move {
            let r = leaderboards::flush(&db, &id, &node, epoch, &batch).await;
            (r, started.elapsed())
        };
        ctx.spawn(write.into_actor(self).map(move |(result, db_time), act, ctx| {
            act.in_flight -= 1;
            for key in overlay.keys() {
                act.busy.remove(key);
            }
            for (expiry, d) in size_delta {
                if let Some(v) = act.busy_size.get_mut(&expiry) {
                    *v -= d;
                }
            }
            act.busy_size.retain(|_, v| *v != 0);
            act.commit_time = (act.commit_time * 7 + db_time) / 8;
            tracing::debug!(board = %act.id, rows, db_us = db_time.as_micros() as u64,
                total_us = started.elapsed().as_micros() as u64, "leaderboard batch");
            match result {
                Ok(()) => {
                    act.deps.counters.batches.increment(1);
                    act.commit(&board, overlay, answers);
                }
                Err(e) => {
                    let fenced = matches!(e, DbError::Fenced(_));
                    if fenced {
                        tracing::warn!(board = %act.id, epoch = act.epoch, "leaderboard fenced by a newer claim (or deleted), stopping");
                    } else {
                        tracing::warn!(board = %act.id, error = %e, "leaderboard batch failed; its writers are told to retry");
                    }
                    act.deps.counters.writes_failed.increment(answers.len() as u64);
                    for (reply, ..) in answers {
                        let _ = reply.send(Err(LeaderboardError::Unavailable));
                    }
                    if fenced {
                        act.fail(ctx);
                        return;
                    }
                }
            }
            act.maybe_flush(ctx);
        }));
        true
    }

    /// Applies a committed batch to memory and answers its writers.
    fn commit(&mut self, board: &Board, overlay: Overlay, answers: Answers) {
        let mut logged = Vec::new();
        for ((expiry, owner), change) in overlay {
            if self.deps.sync.is_some() {
                let record = change.as_ref().map(|e| (&e.rec, e.username.as_deref()));
                logged.push(local_change(expiry, owner, record));
            }
            match change {
                Some(e) => {
                    if let Some(cache) = self.caches.get_or_create(&self.id, expiry, board.order) {
                        cache.upsert(reads::rank_entry(owner, &e.rec));
                    }
                    self.buckets.entry(expiry).or_default().insert(owner, e);
                }
                None => {
                    if let Some(cache) = self.caches.get_mut(&self.id, expiry) {
                        cache.remove(owner);
                    }
                    if let Some(b) = self.buckets.get_mut(&expiry) {
                        b.remove(&owner);
                    }
                }
            }
        }
        // This node's reads see the batch before its writers hear back.
        if let Some(sync) = &self.deps.sync {
            sync.committed(board, self.epoch, logged);
        }
        for (reply, owner, expiry, result) in answers {
            let answer = match result {
                Ok(Done::Record { rec, username }) => {
                    self.deps.counters.writes_committed.increment(1);
                    let rank = reads::owner_rank(board, &*self, expiry, owner);
                    Ok(Some(reads::view(
                        board,
                        expiry,
                        owner,
                        &rec,
                        username.as_deref(),
                        rank,
                    )))
                }
                Ok(Done::Nothing) => {
                    self.deps.counters.writes_committed.increment(1);
                    Ok(None)
                }
                Err(e) => {
                    self.deps.counters.writes_refused.increment(1);
                    Err(e)
                }
            };
            let _ = reply.send(answer);
        }
    }
}

/// Writes per batch already in flight that the next batch must have before it goes on its own.
const FILL_PER_IN_FLIGHT: usize = 8;

/// Whether the `waiting` writes go to the database now (group commit). A full batch, or a
/// stopping board, goes at once; otherwise nothing goes before the batch window has passed
/// (`window_passed`). Then, with no batch in flight, the writes go: a lone write is not held
/// back. With batches in flight, the next one waits until it carries at least
/// [`FILL_PER_IN_FLIGHT`] writes per batch in flight; until then the commit of one in flight
/// takes it. Under light load every write goes at once; under heavy load each commit carries
/// more writes, and it is the number of commits, not of rows, that bounds a busy database.
fn due(
    waiting: usize,
    batch_size: usize,
    in_flight: usize,
    window_passed: bool,
    stopping: bool,
) -> bool {
    if waiting == 0 {
        return false;
    }
    if waiting >= batch_size.max(1) || stopping {
        return true;
    }
    window_passed && (in_flight == 0 || waiting >= in_flight * FILL_PER_IN_FLIGHT)
}

fn row_of(board: &Board, expiry: i64, owner: Uuid, e: &Entry) -> RecordRow {
    RecordRow {
        expiry,
        owner,
        username: e.username.clone(),
        score: e.rec.score,
        subscore: e.rec.subscore,
        num_score: e.rec.num_score.min(i32::MAX as u32) as i32,
        max_num_score: board
            .record_max_num_score(e.rec.max_num_score)
            .min(i32::MAX as u32) as i32,
        metadata: e.rec.metadata.clone(),
        create_time: e.rec.create_time,
        update_time: e.rec.update_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_write_goes_at_once_and_a_busy_board_fills_its_batches() {
        // Nothing in flight: anything waiting goes once the window has passed.
        assert!(due(1, 500, 0, true, false));
        assert!(!due(1, 500, 0, false, false), "inside the window");
        assert!(!due(0, 500, 0, true, false));
        // Batches in flight: the next one waits for FILL writes per batch in flight.
        assert!(!due(7, 500, 1, true, false));
        assert!(due(8, 500, 1, true, false));
        assert!(!due(15, 500, 2, true, false));
        assert!(due(16, 500, 2, true, false));
        // A full batch, or a stopping board, goes regardless.
        assert!(due(3, 3, 3, false, false));
        assert!(due(1, 500, 3, false, true));
    }
}
