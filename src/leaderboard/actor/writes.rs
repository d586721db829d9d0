//! The write messages (`Write`, `DeleteRecord`, `Join`): checked against the board (API,
//! phase, end, authority, operator, active window) and queued for the next batch; the writer
//! is answered once its batch is committed. The queue is bounded: beyond it, "try again".

use actix::prelude::*;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::{ready_answer, unix_now, Answer, Leaderboard, Phase};
use crate::leaderboard::messages::{Api, DeleteRecord, Join, LeaderboardError, RecordView, Write};
use crate::leaderboard::rules::{Operator, WriteError};
use crate::request::Caller;

/// What a queued write does.
#[derive(Debug)]
pub(super) enum OpKind {
    Write {
        api: Api,
        operator: Operator,
        score: i64,
        subscore: i64,
        metadata: Option<String>,
        username: Option<String>,
    },
    Delete,
    Join {
        username: Option<String>,
    },
}

pub(super) type Reply = oneshot::Sender<Result<Option<RecordView>, LeaderboardError>>;

pub(super) struct Op {
    pub(super) expiry: i64,
    pub(super) owner: Uuid,
    pub(super) kind: OpKind,
    pub(super) reply: Reply,
    pub(super) queued: Instant,
}

impl Leaderboard {
    fn enqueue(
        &mut self,
        expiry: i64,
        owner: Uuid,
        kind: OpKind,
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<Option<RecordView>, LeaderboardError>> {
        let (tx, rx) = oneshot::channel();
        if self.pending.len() >= self.deps.write_queue_limit {
            // Bounded: the writer retries later rather than the queue growing.
            self.deps.counters.writes_refused.increment(1);
            let _ = tx.send(Err(LeaderboardError::Unavailable));
            return rx;
        }
        self.pending.push_back(Op {
            expiry,
            owner,
            kind,
            reply: tx,
            queued: Instant::now(),
        });
        self.maybe_flush(ctx);
        rx
    }
}

impl Handler<Write> for Leaderboard {
    type Result = Answer<RecordView>;

    fn handle(&mut self, msg: Write, ctx: &mut Context<Self>) -> Self::Result {
        let board = match self.ready(msg.api) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        let now = unix_now();
        if self.phase == Phase::Stopping {
            return ready_answer(Err(LeaderboardError::Unavailable));
        }
        if msg.api == Api::Leaderboard && board.is_tournament() {
            return ready_answer(Err(LeaderboardError::NotFound(Api::Leaderboard)));
        }
        if board.ended(now) {
            return ready_answer(Err(LeaderboardError::Ended));
        }
        if board.row.authoritative && matches!(msg.caller, Caller::User(_)) {
            return ready_answer(Err(LeaderboardError::write(
                WriteError::Authoritative,
                msg.api,
            )));
        }
        let operator = match Operator::resolve(board.operator, msg.operator) {
            Ok(op) => op,
            Err(e) => return ready_answer(Err(LeaderboardError::write(e, msg.api))),
        };
        if board.is_tournament() && !board.active(now) {
            return ready_answer(Err(LeaderboardError::write(
                WriteError::OutsideDuration,
                msg.api,
            )));
        }
        let expiry = board.current_expiry(now);
        let rx = self.enqueue(
            expiry,
            msg.owner,
            OpKind::Write {
                api: msg.api,
                operator,
                score: msg.score,
                subscore: msg.subscore,
                metadata: msg.metadata,
                username: msg.username,
            },
            ctx,
        );
        Box::pin(async move {
            match rx.await {
                Ok(Ok(Some(view))) => Ok(view),
                Ok(Ok(None)) | Err(_) => Err(LeaderboardError::Unavailable),
                Ok(Err(e)) => Err(e),
            }
        })
    }
}

impl Handler<DeleteRecord> for Leaderboard {
    type Result = Answer<()>;

    fn handle(&mut self, msg: DeleteRecord, ctx: &mut Context<Self>) -> Self::Result {
        let board = match self.ready(msg.api) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        if self.phase == Phase::Stopping {
            return ready_answer(Err(LeaderboardError::Unavailable));
        }
        if msg.api == Api::Leaderboard && board.is_tournament() {
            return ready_answer(Err(LeaderboardError::NotFound(Api::Leaderboard)));
        }
        if board.row.authoritative && matches!(msg.caller, Caller::User(_)) {
            return ready_answer(Err(LeaderboardError::write(
                WriteError::Authoritative,
                msg.api,
            )));
        }
        let expiry = board.current_expiry(unix_now());
        let rx = self.enqueue(expiry, msg.owner, OpKind::Delete, ctx);
        Box::pin(async move {
            match rx.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(LeaderboardError::Unavailable),
            }
        })
    }
}

impl Handler<Join> for Leaderboard {
    type Result = Answer<()>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        let board = match self.ready(Api::Tournament) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        if !board.row.join_required {
            return ready_answer(Ok(()));
        }
        if self.phase == Phase::Stopping {
            return ready_answer(Err(LeaderboardError::Unavailable));
        }
        let now = unix_now();
        let d = board.deadlines(now);
        if d.end_active <= now {
            return ready_answer(Err(LeaderboardError::join(WriteError::OutsideDuration)));
        }
        let rx = self.enqueue(
            d.expiry,
            msg.owner,
            OpKind::Join {
                username: msg.username,
            },
            ctx,
        );
        Box::pin(async move {
            match rx.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(LeaderboardError::Unavailable),
            }
        })
    }
}
