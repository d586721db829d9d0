//! A batch's writes applied in arrival order on top of the committed records, with Nakama's
//! rules ([`rules::apply`], [`rules::join`], the board's size limit): what each record becomes
//! and what each writer is answered. Nothing changes until the batch commits.

use std::collections::HashMap;

use uuid::Uuid;

use super::writes::{Op, OpKind, Reply};
use super::{Entry, Leaderboard};
use crate::leaderboard::board::Board;
use crate::leaderboard::messages::LeaderboardError;
use crate::leaderboard::reads::Buckets;
use crate::leaderboard::rules::{self, Record, WriteContext, WriteError};

/// A successful write's answer, before ranks are known.
pub(super) enum Done {
    Record {
        rec: Record,
        username: Option<String>,
    },
    Nothing,
}

/// A batch's changes: record (bucket expiry, owner) → its new state, `None` = deleted.
pub(super) type Overlay = HashMap<(i64, Uuid), Option<Entry>>;

/// Each write's reply channel, owner, bucket and outcome, in arrival order.
pub(super) type Answers = Vec<(Reply, Uuid, i64, Result<Done, LeaderboardError>)>;

/// A batch applied on top of the committed records, not yet in memory nor in the database.
pub(super) struct Applied {
    pub(super) overlay: Overlay,
    /// Records created (+) or deleted (−) per bucket.
    pub(super) size_delta: HashMap<i64, i64>,
    pub(super) answers: Answers,
}

impl Leaderboard {
    /// Applies `ops` in arrival order with [`rules::apply`] (and [`rules::join`]) on top of
    /// the committed records; sizes count the batches in flight too. Changes nothing.
    pub(super) fn apply_batch(&self, board: &Board, ops: Vec<Op>, now: i64) -> Applied {
        let wctx = WriteContext {
            kind: board.kind(),
            now,
        };
        // Later writes in the batch see earlier ones: `None` = deleted.
        let mut overlay: Overlay = HashMap::new();
        let mut size_delta: HashMap<i64, i64> = HashMap::new();
        let mut answers: Answers = Vec::with_capacity(ops.len());
        for op in ops {
            let key = (op.expiry, op.owner);
            let existing: Option<Entry> = match overlay.get(&key) {
                Some(e) => e.clone(),
                None => self.entry(op.expiry, op.owner).cloned(),
            };
            let size = |delta: &HashMap<i64, i64>| {
                (self.bucket_len(op.expiry) as i64
                    + self.busy_size.get(&op.expiry).copied().unwrap_or(0)
                    + delta.get(&op.expiry).copied().unwrap_or(0))
                .max(0) as u64
            };
            let result = match op.kind {
                OpKind::Write {
                    api,
                    operator,
                    score,
                    subscore,
                    metadata,
                    username,
                } => match rules::apply(
                    board.order,
                    operator,
                    existing.as_ref().map(|e| &e.rec),
                    score,
                    subscore,
                    metadata.as_deref(),
                    &wctx,
                ) {
                    Err(e) => Err(LeaderboardError::write(e, api)),
                    Ok(out) => {
                        let full = out.created
                            && rules::check_max_size(size(&size_delta), board.max_size()).is_err();
                        if full {
                            Err(LeaderboardError::write(WriteError::MaxSizeReached, api))
                        } else {
                            let username = if out.changed {
                                username.or_else(|| existing.and_then(|e| e.username))
                            } else {
                                existing.and_then(|e| e.username)
                            };
                            if out.created {
                                *size_delta.entry(op.expiry).or_default() += 1;
                            }
                            if out.changed {
                                overlay.insert(
                                    key,
                                    Some(Entry {
                                        rec: out.record.clone(),
                                        username: username.clone(),
                                    }),
                                );
                            }
                            Ok(Done::Record {
                                rec: out.record,
                                username,
                            })
                        }
                    }
                },
                OpKind::Delete => {
                    if existing.is_some() {
                        overlay.insert(key, None);
                        *size_delta.entry(op.expiry).or_default() -= 1;
                    }
                    Ok(Done::Nothing)
                }
                OpKind::Join { username } => {
                    let max = match board.kind() {
                        rules::BoardKind::Tournament { max_num_score, .. } => max_num_score,
                        rules::BoardKind::Leaderboard => None,
                    };
                    match rules::join(existing.as_ref().map(|e| &e.rec), max, now) {
                        None => Ok(Done::Nothing),
                        Some(rec) => {
                            match rules::check_max_size(size(&size_delta), board.max_size()) {
                                Err(e) => Err(LeaderboardError::join(e)),
                                Ok(()) => {
                                    *size_delta.entry(op.expiry).or_default() += 1;
                                    overlay.insert(key, Some(Entry { rec, username }));
                                    Ok(Done::Nothing)
                                }
                            }
                        }
                    }
                }
            };
            answers.push((op.reply, op.owner, op.expiry, result));
        }
        Applied {
            overlay,
            size_delta,
            answers,
        }
    }
}
