//! Nakama's leaderboard and tournament write semantics, as a pure function.
//!
//! What [`apply`] reproduces (Nakama `core_leaderboard.go` `LeaderboardRecordWrite` and
//! `core_tournament.go` `TournamentRecordWrite`, which do it in one upsert statement):
//!
//! | operator | first write stores | later write stores | leaderboard: counts when |
//! |---|---|---|---|
//! | best | score, subscore | the better score and, independently, the better subscore | either is better |
//! | set  | score, subscore | score, subscore | either differs |
//! | incr | score, subscore | old + delta (each) | a delta is non-zero |
//! | decr | 0, 0 | max(old − delta, 0) (each) | a delta is non-zero |
//!
//! - "Better" follows the board's order: higher on a descending board, lower on an ascending one.
//! - A leaderboard write that does not count leaves the record untouched: no `num_score`
//!   increment, no metadata or update time change (Nakama's `WHERE` filter on the upsert).
//! - A tournament write always counts (`num_score + 1`). Once it would exceed the record's
//!   `max_num_score`, a tournament without `join_required` fails with
//!   [`WriteError::MaxNumScoreReached`], while one with `join_required` answers the record
//!   unchanged and no error (Nakama 3.40: its `UPDATE … WHERE num_score < max_num_score`
//!   matches no row and the record is read back). With `join_required` and no record (no
//!   join): [`WriteError::JoinRequired`].
//! - Scores and subscores are never negative: Nakama's table has `CHECK (score >= 0)` and
//!   `CHECK (subscore >= 0)` so a negative value (a negative input, which the check sees on the
//!   inserted row before the conflict is resolved) fails the write; an overflowing `incr`
//!   fails like PostgreSQL's `bigint out of range`. Both surface as Nakama's internal error.
//!   Deviation: Nakama accepts a negative `decr` delta (it increments); we refuse it too.
//! - Metadata: a write without metadata keeps the old one; a first write without it stores `{}`.

use crate::leaderboard::rank_cache::SortOrder;

/// How a write combines with the existing record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    Best,
    Set,
    Incr,
    Decr,
}

impl Operator {
    /// The operator of a write: Nakama's API numbers (0 no override → the board's operator,
    /// 1 best, 2 set, 3 incr, 4 decr). Any other number is [`WriteError::InvalidOperator`].
    pub fn resolve(board: Operator, override_number: i64) -> Result<Operator, WriteError> {
        match override_number {
            0 => Ok(board),
            n => Operator::from_nakama(n).ok_or(WriteError::InvalidOperator),
        }
    }

    /// Nakama's API numbers 1–4 (0, "no override", is not an operator).
    pub fn from_nakama(n: i64) -> Option<Operator> {
        match n {
            1 => Some(Operator::Best),
            2 => Some(Operator::Set),
            3 => Some(Operator::Incr),
            4 => Some(Operator::Decr),
            _ => None,
        }
    }

    pub fn nakama_number(self) -> i64 {
        match self {
            Operator::Best => 1,
            Operator::Set => 2,
            Operator::Incr => 3,
            Operator::Decr => 4,
        }
    }

    /// `best`, `set`, `incr`/`increment`, `decr`/`decrement` (case-insensitive), as Nakama's
    /// runtimes accept them.
    pub fn parse(s: &str) -> Option<Operator> {
        match s.to_ascii_lowercase().as_str() {
            "best" => Some(Operator::Best),
            "set" => Some(Operator::Set),
            "incr" | "increment" => Some(Operator::Incr),
            "decr" | "decrement" => Some(Operator::Decr),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Best => "best",
            Operator::Set => "set",
            Operator::Incr => "incr",
            Operator::Decr => "decr",
        }
    }
}

/// Nakama's column default for `max_num_score`, shown on leaderboard (non-tournament) records.
pub const NAKAMA_DEFAULT_MAX_NUM_SCORE: u32 = 1_000_000;

/// One owner's record in one (board, expiry) bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub score: i64,
    pub subscore: i64,
    /// Accepted writes; also the rank cache generation. A tournament join stores 0.
    pub num_score: u32,
    /// Tournament attempts allowed; `None` = unlimited (leaderboards; Nakama shows
    /// [`NAKAMA_DEFAULT_MAX_NUM_SCORE`] there).
    pub max_num_score: Option<u32>,
    /// JSON object text.
    pub metadata: String,
    /// Unix seconds.
    pub create_time: i64,
    /// Unix seconds.
    pub update_time: i64,
}

/// What kind of board is written and its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardKind {
    Leaderboard,
    Tournament {
        /// Stored on a record created by its first write (`None` = unlimited).
        max_num_score: Option<u32>,
        /// A write needs a record made by a join first.
        join_required: bool,
    },
}

/// The write's environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteContext {
    pub kind: BoardKind,
    /// Unix seconds, for create/update times.
    pub now: i64,
}

/// The result of [`apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The record after the write (the old one when `changed` is false).
    pub record: Record,
    /// The write counted: the record must be stored and its new generation
    /// (`record.num_score`) sent to the rank cache.
    pub changed: bool,
    /// No record existed before (tournaments with `max_size` count it).
    pub created: bool,
}

/// Why a write (or join) is refused. See [`WriteError::status`] for Nakama's answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("score and subscore must not be negative")]
    NegativeScore,
    #[error("score or subscore out of range")]
    Overflow,
    #[error("invalid operator")]
    InvalidOperator,
    #[error("max number score count reached")]
    MaxNumScoreReached,
    #[error("required to join before writing tournament record")]
    JoinRequired,
    #[error("tournament max size reached")]
    MaxSizeReached,
    #[error("tournament outside of duration")]
    OutsideDuration,
    #[error("only allows authoritative submissions")]
    Authoritative,
}

/// Where an error is answered, for its Nakama status and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSite {
    LeaderboardWrite,
    TournamentWrite,
    TournamentJoin,
}

/// Nakama's answer for an error: gRPC code, the HTTP status grpc-gateway maps it to, message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorStatus {
    pub grpc_code: i32,
    pub http_status: u16,
    pub message: &'static str,
}

const INVALID_ARGUMENT: (i32, u16) = (3, 400);
const PERMISSION_DENIED: (i32, u16) = (7, 403);
const FAILED_PRECONDITION: (i32, u16) = (9, 400);
const INTERNAL: (i32, u16) = (13, 500);

impl WriteError {
    /// Nakama's status and message for this error (`api_leaderboard.go`, `api_tournament.go`).
    pub fn status(self, site: ErrorSite) -> ErrorStatus {
        use ErrorSite::*;
        use WriteError::*;
        let ((grpc_code, http_status), message) = match (self, site) {
            (NegativeScore | Overflow | InvalidOperator, LeaderboardWrite) => {
                (INTERNAL, "Error writing score to leaderboard.")
            }
            (NegativeScore | Overflow | InvalidOperator, _) => {
                (INTERNAL, "Error writing score to tournament.")
            }
            (Authoritative, LeaderboardWrite) => (
                PERMISSION_DENIED,
                "Leaderboard only allows authoritative score submissions.",
            ),
            (Authoritative, _) => (
                PERMISSION_DENIED,
                "Tournament only allows authoritative score submissions.",
            ),
            (MaxNumScoreReached, _) => (
                FAILED_PRECONDITION,
                "Reached allowed max number of score attempts.",
            ),
            (JoinRequired, _) => (
                FAILED_PRECONDITION,
                "Must join tournament before attempting to write value.",
            ),
            (MaxSizeReached, TournamentJoin) => (
                INVALID_ARGUMENT,
                "Tournament cannot be joined as it has reached its max size.",
            ),
            (MaxSizeReached, _) => (FAILED_PRECONDITION, "Tournament has reached max size."),
            (OutsideDuration, TournamentJoin) => (
                INVALID_ARGUMENT,
                "Tournament is not active and cannot accept new joins.",
            ),
            (OutsideDuration, _) => (
                FAILED_PRECONDITION,
                "Tournament is not active and cannot accept new scores.",
            ),
        };
        ErrorStatus {
            grpc_code,
            http_status,
            message,
        }
    }
}

/// Applies one write to `existing` (the owner's record in the current bucket, if any).
///
/// `metadata`: JSON object text, `None` to keep the old metadata. The caller checks
/// authoritative boards, tournament windows and `max_size` (with `Outcome::created`).
pub fn apply(
    order: SortOrder,
    operator: Operator,
    existing: Option<&Record>,
    score: i64,
    subscore: i64,
    metadata: Option<&str>,
    ctx: &WriteContext,
) -> Result<Outcome, WriteError> {
    if score < 0 || subscore < 0 {
        return Err(WriteError::NegativeScore);
    }
    let tournament = match ctx.kind {
        BoardKind::Leaderboard => None,
        BoardKind::Tournament {
            max_num_score,
            join_required,
        } => Some((max_num_score, join_required)),
    };

    let Some(old) = existing else {
        if let Some((_, true)) = tournament {
            return Err(WriteError::JoinRequired);
        }
        let (score, subscore) = match operator {
            Operator::Decr => (0, 0),
            _ => (score, subscore),
        };
        let record = Record {
            score,
            subscore,
            num_score: 1,
            max_num_score: tournament.and_then(|(max, _)| max),
            metadata: metadata.unwrap_or("{}").to_string(),
            create_time: ctx.now,
            update_time: ctx.now,
        };
        check_max_num_score(&record)?;
        return Ok(Outcome {
            record,
            changed: true,
            created: true,
        });
    };

    let better = |a: i64, b: i64| match order {
        SortOrder::Descending => a.max(b),
        SortOrder::Ascending => a.min(b),
    };
    let (new_score, new_subscore, counts) = match operator {
        Operator::Best => {
            let (s, ss) = (better(old.score, score), better(old.subscore, subscore));
            (s, ss, s != old.score || ss != old.subscore)
        }
        Operator::Set => (
            score,
            subscore,
            score != old.score || subscore != old.subscore,
        ),
        Operator::Incr => (
            old.score.checked_add(score).ok_or(WriteError::Overflow)?,
            old.subscore
                .checked_add(subscore)
                .ok_or(WriteError::Overflow)?,
            score != 0 || subscore != 0,
        ),
        Operator::Decr => (
            old.score.saturating_sub(score).max(0),
            old.subscore.saturating_sub(subscore).max(0),
            score != 0 || subscore != 0,
        ),
    };

    // Leaderboards skip writes that change nothing; tournaments count every attempt, but a
    // joined tournament's attempts past the limit change nothing either (see the module doc).
    let spent = matches!(old.max_num_score, Some(max) if max > 0 && old.num_score >= max);
    if (tournament.is_none() && !counts) || (spent && matches!(tournament, Some((_, true)))) {
        return Ok(Outcome {
            record: old.clone(),
            changed: false,
            created: false,
        });
    }
    let record = Record {
        score: new_score,
        subscore: new_subscore,
        num_score: old.num_score.checked_add(1).ok_or(WriteError::Overflow)?,
        max_num_score: old.max_num_score,
        metadata: metadata.unwrap_or(&old.metadata).to_string(),
        create_time: old.create_time,
        update_time: ctx.now,
    };
    check_max_num_score(&record)?;
    Ok(Outcome {
        record,
        changed: true,
        created: false,
    })
}

fn check_max_num_score(record: &Record) -> Result<(), WriteError> {
    match record.max_num_score {
        Some(max) if max > 0 && record.num_score > max => Err(WriteError::MaxNumScoreReached),
        _ => Ok(()),
    }
}

/// A tournament join (Nakama `TournamentJoin`): the record a join creates — score 0,
/// subscore 0, `num_score` 0 (so the first write is generation 1) — or `None` when the owner
/// already has one (a join is idempotent). The caller checks the window and `max_size` for a
/// new join ([`check_max_size`]) and, as Nakama, only needs this with `join_required`.
pub fn join(existing: Option<&Record>, max_num_score: Option<u32>, now: i64) -> Option<Record> {
    if existing.is_some() {
        return None;
    }
    Some(Record {
        score: 0,
        subscore: 0,
        num_score: 0,
        max_num_score,
        metadata: "{}".to_string(),
        create_time: now,
        update_time: now,
    })
}

/// A new participant is refused when the tournament already has `max_size` (`None` = no
/// limit).
pub fn check_max_size(size: u64, max_size: Option<u64>) -> Result<(), WriteError> {
    match max_size {
        Some(max) if size >= max => Err(WriteError::MaxSizeReached),
        _ => Ok(()),
    }
}

#[cfg(test)]
/// Nakama `TournamentAddAttempt`: raises (or, with a negative count, lowers) an owner's
/// `max_num_score`. A change that would leave it below 1 (Nakama's `CHECK (max_num_score > 0)`
/// fails the update) or above `u32::MAX` leaves the record as it is; so does an unlimited one.
pub fn add_attempts(record: &Record, count: i64) -> Record {
    let mut r = record.clone();
    if let Some(max) = r.max_num_score {
        let n = (max as i64).saturating_add(count);
        if let Ok(n @ 1..) = u32::try_from(n) {
            r.max_num_score = Some(n);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use SortOrder::{Ascending as Asc, Descending as Desc};

    const NOW: i64 = 1_700_000_000;
    const LB: WriteContext = WriteContext {
        kind: BoardKind::Leaderboard,
        now: NOW,
    };

    fn rec(score: i64, subscore: i64, num_score: u32) -> Record {
        Record {
            score,
            subscore,
            num_score,
            max_num_score: None,
            metadata: "{\"old\":true}".into(),
            create_time: NOW - 100,
            update_time: NOW - 50,
        }
    }

    /// (order, operator, existing (score, subscore), write (score, subscore),
    ///  expected (score, subscore), counts)
    type Case = (
        SortOrder,
        Operator,
        Option<(i64, i64)>,
        (i64, i64),
        (i64, i64),
        bool,
    );

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // best, descending: higher is better, score and subscore independently.
        (Desc, Operator::Best, None, (10, 5), (10, 5), true),
        (Desc, Operator::Best, Some((10, 5)), (20, 1), (20, 5), true),
        (Desc, Operator::Best, Some((10, 5)), (5, 9), (10, 9), true),
        (Desc, Operator::Best, Some((10, 5)), (20, 9), (20, 9), true),
        (Desc, Operator::Best, Some((10, 5)), (5, 1), (10, 5), false),
        (Desc, Operator::Best, Some((10, 5)), (10, 5), (10, 5), false),
        // best, ascending: lower is better.
        (Asc, Operator::Best, None, (10, 5), (10, 5), true),
        (Asc, Operator::Best, Some((10, 5)), (5, 9), (5, 5), true),
        (Asc, Operator::Best, Some((10, 5)), (20, 1), (10, 1), true),
        (Asc, Operator::Best, Some((10, 5)), (20, 9), (10, 5), false),
        (Asc, Operator::Best, Some((10, 5)), (10, 5), (10, 5), false),
        // set replaces; the same values do not count.
        (Desc, Operator::Set, None, (7, 3), (7, 3), true),
        (Desc, Operator::Set, Some((10, 5)), (7, 3), (7, 3), true),
        (Desc, Operator::Set, Some((10, 5)), (10, 6), (10, 6), true),
        (Desc, Operator::Set, Some((10, 5)), (10, 5), (10, 5), false),
        (Asc, Operator::Set, Some((10, 5)), (70, 0), (70, 0), true),
        (Asc, Operator::Set, Some((10, 5)), (10, 5), (10, 5), false),
        // incr adds; a zero delta does not count.
        (Desc, Operator::Incr, None, (7, 3), (7, 3), true),
        (Desc, Operator::Incr, Some((10, 5)), (7, 3), (17, 8), true),
        (Desc, Operator::Incr, Some((10, 5)), (0, 1), (10, 6), true),
        (Desc, Operator::Incr, Some((10, 5)), (0, 0), (10, 5), false),
        (Asc, Operator::Incr, Some((10, 5)), (7, 0), (17, 5), true),
        // decr subtracts floored at 0; a first decr stores 0; a zero delta does not count.
        (Desc, Operator::Decr, None, (7, 3), (0, 0), true),
        (Desc, Operator::Decr, Some((10, 5)), (7, 3), (3, 2), true),
        (Desc, Operator::Decr, Some((10, 5)), (70, 30), (0, 0), true),
        (Desc, Operator::Decr, Some((0, 0)), (1, 0), (0, 0), true),
        (Desc, Operator::Decr, Some((10, 5)), (0, 0), (10, 5), false),
        (Asc, Operator::Decr, Some((10, 5)), (3, 9), (7, 0), true),
    ];

    #[test]
    fn operators_on_leaderboards() {
        for (i, &(order, op, old, (s, ss), (es, ess), counts)) in CASES.iter().enumerate() {
            let existing = old.map(|(a, b)| rec(a, b, 4));
            let out = apply(
                order,
                op,
                existing.as_ref(),
                s,
                ss,
                Some("{\"new\":1}"),
                &LB,
            )
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(
                (out.record.score, out.record.subscore),
                (es, ess),
                "case {i}"
            );
            assert_eq!(out.changed, counts, "case {i}");
            assert_eq!(out.created, old.is_none(), "case {i}");
            match (old, counts) {
                (None, _) => {
                    assert_eq!(out.record.num_score, 1, "case {i}");
                    assert_eq!(out.record.create_time, NOW, "case {i}");
                    assert_eq!(out.record.metadata, "{\"new\":1}", "case {i}");
                }
                (Some(_), true) => {
                    assert_eq!(out.record.num_score, 5, "case {i}");
                    assert_eq!(out.record.create_time, NOW - 100, "case {i}");
                    assert_eq!(out.record.update_time, NOW, "case {i}");
                    assert_eq!(out.record.metadata, "{\"new\":1}", "case {i}");
                }
                (Some(_), false) => {
                    assert_eq!(out.record, existing.clone().unwrap(), "case {i}");
                }
            }
        }
    }

    #[test]
    fn tournament_writes_always_count() {
        let ctx = WriteContext {
            kind: BoardKind::Tournament {
                max_num_score: Some(3),
                join_required: false,
            },
            now: NOW,
        };
        for &(order, op, old, (s, ss), (es, ess), _) in CASES {
            let existing = old.map(|(a, b)| rec(a, b, 1));
            let out = apply(order, op, existing.as_ref(), s, ss, None, &ctx).unwrap();
            assert_eq!((out.record.score, out.record.subscore), (es, ess));
            assert!(out.changed);
            assert_eq!(out.record.num_score, 2 - old.is_none() as u32);
            if old.is_none() {
                assert_eq!(out.record.max_num_score, Some(3));
                assert_eq!(out.record.metadata, "{}");
            } else {
                assert_eq!(out.record.metadata, "{\"old\":true}");
            }
        }
    }

    #[test]
    fn max_num_score() {
        let ctx = WriteContext {
            kind: BoardKind::Tournament {
                max_num_score: Some(2),
                join_required: false,
            },
            now: NOW,
        };
        let first = apply(Desc, Operator::Best, None, 1, 0, None, &ctx).unwrap();
        let second = apply(Desc, Operator::Best, Some(&first.record), 1, 0, None, &ctx).unwrap();
        assert_eq!(second.record.num_score, 2);
        assert_eq!(
            apply(Desc, Operator::Best, Some(&second.record), 9, 0, None, &ctx),
            Err(WriteError::MaxNumScoreReached)
        );
        // The record's own limit rules (raised by add_attempts), not the tournament's.
        let raised = add_attempts(&second.record, 1);
        assert_eq!(raised.max_num_score, Some(3));
        let third = apply(Desc, Operator::Best, Some(&raised), 9, 0, None, &ctx).unwrap();
        assert_eq!((third.record.score, third.record.num_score), (9, 3));
        // Unlimited.
        let mut r = rec(1, 1, u32::MAX - 1);
        assert!(apply(Desc, Operator::Incr, Some(&r), 1, 0, None, &LB).is_ok());
        r.num_score = u32::MAX;
        assert_eq!(
            apply(Desc, Operator::Incr, Some(&r), 1, 0, None, &LB),
            Err(WriteError::Overflow)
        );
    }

    #[test]
    fn max_num_score_with_join_required_answers_the_record_unchanged() {
        let ctx = WriteContext {
            kind: BoardKind::Tournament {
                max_num_score: Some(1),
                join_required: true,
            },
            now: NOW,
        };
        let joined = join(None, Some(1), NOW).unwrap();
        let first = apply(Desc, Operator::Best, Some(&joined), 5, 0, None, &ctx).unwrap();
        assert_eq!(first.record.num_score, 1);
        let past = apply(
            Desc,
            Operator::Set,
            Some(&first.record),
            9,
            9,
            Some("{}"),
            &ctx,
        );
        assert_eq!(
            past,
            Ok(Outcome {
                record: first.record.clone(),
                changed: false,
                created: false,
            })
        );
    }

    #[test]
    fn join_required() {
        let ctx = WriteContext {
            kind: BoardKind::Tournament {
                max_num_score: Some(5),
                join_required: true,
            },
            now: NOW,
        };
        assert_eq!(
            apply(Desc, Operator::Best, None, 1, 0, None, &ctx),
            Err(WriteError::JoinRequired)
        );
        let joined = join(None, Some(5), NOW).unwrap();
        assert_eq!((joined.score, joined.subscore, joined.num_score), (0, 0, 0));
        assert_eq!(join(Some(&joined), Some(5), NOW), None);
        let out = apply(Desc, Operator::Best, Some(&joined), 7, 1, None, &ctx).unwrap();
        assert_eq!((out.record.score, out.record.num_score), (7, 1));
        assert!(!out.created);
        assert_eq!(check_max_size(9, Some(10)), Ok(()));
        assert_eq!(
            check_max_size(10, Some(10)),
            Err(WriteError::MaxSizeReached)
        );
        assert_eq!(check_max_size(10, None), Ok(()));
    }

    #[test]
    fn negative_and_overflow() {
        for op in [
            Operator::Best,
            Operator::Set,
            Operator::Incr,
            Operator::Decr,
        ] {
            for existing in [None, Some(rec(10, 10, 1))] {
                for (s, ss) in [(-1, 0), (0, -1), (i64::MIN, 5)] {
                    assert_eq!(
                        apply(Desc, op, existing.as_ref(), s, ss, None, &LB),
                        Err(WriteError::NegativeScore),
                        "{op:?} {s} {ss}"
                    );
                }
            }
        }
        let big = rec(i64::MAX - 1, 0, 1);
        assert_eq!(
            apply(Desc, Operator::Incr, Some(&big), 2, 0, None, &LB),
            Err(WriteError::Overflow)
        );
        let out = apply(Desc, Operator::Incr, Some(&big), 1, 0, None, &LB).unwrap();
        assert_eq!(out.record.score, i64::MAX);
        let subbig = rec(0, i64::MAX, 1);
        assert_eq!(
            apply(Desc, Operator::Incr, Some(&subbig), 0, 1, None, &LB),
            Err(WriteError::Overflow)
        );
        // decr by i64::MAX floors at 0.
        let out = apply(Desc, Operator::Decr, Some(&big), i64::MAX, 0, None, &LB).unwrap();
        assert_eq!(out.record.score, 0);
    }

    #[test]
    fn operator_numbers_and_names() {
        assert_eq!(Operator::resolve(Operator::Set, 0), Ok(Operator::Set));
        for n in 1..=4 {
            let op = Operator::resolve(Operator::Set, n).unwrap();
            assert_eq!(op.nakama_number(), n);
            assert_eq!(Operator::parse(op.as_str()), Some(op));
        }
        assert_eq!(
            Operator::resolve(Operator::Best, 5),
            Err(WriteError::InvalidOperator)
        );
        assert_eq!(
            Operator::resolve(Operator::Best, -1),
            Err(WriteError::InvalidOperator)
        );
        assert_eq!(Operator::parse("INCREMENT"), Some(Operator::Incr));
        assert_eq!(Operator::parse("decrement"), Some(Operator::Decr));
        assert_eq!(Operator::parse("max"), None);
    }

    #[test]
    fn error_statuses() {
        let s = WriteError::MaxNumScoreReached.status(ErrorSite::TournamentWrite);
        assert_eq!((s.grpc_code, s.http_status), (9, 400));
        let s = WriteError::NegativeScore.status(ErrorSite::LeaderboardWrite);
        assert_eq!(
            (s.grpc_code, s.http_status, s.message),
            (13, 500, "Error writing score to leaderboard.")
        );
        let s = WriteError::MaxSizeReached.status(ErrorSite::TournamentJoin);
        assert_eq!((s.grpc_code, s.http_status), (3, 400));
        let s = WriteError::Authoritative.status(ErrorSite::LeaderboardWrite);
        assert_eq!((s.grpc_code, s.http_status), (7, 403));
    }
}
