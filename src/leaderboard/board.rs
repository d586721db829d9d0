//! A board's definition as the actor uses it: the stored row with its sort order, operator and
//! reset schedule parsed, and the periods (buckets, tournament windows) it implies.

use super::messages::BoardInfo;
use super::rank_cache::SortOrder;
use super::rules::{BoardKind, Operator, NAKAMA_DEFAULT_MAX_NUM_SCORE};
use super::schedule::{self, CronSchedule, Deadlines};
use crate::persistence::leaderboards::BoardRow;

/// Nakama's default `max_size` (the column default): no limit in practice.
pub const DEFAULT_MAX_SIZE: i32 = 100_000_000;

/// A parsed board.
#[derive(Debug, Clone)]
pub struct Board {
    pub row: BoardRow,
    pub order: SortOrder,
    pub operator: Operator,
    pub schedule: Option<CronSchedule>,
}

/// The operator as stored (Nakama's internal numbers: 0 best, 1 set, 2 incr, 3 decr).
pub fn operator_from_db(n: i32) -> Option<Operator> {
    match n {
        0 => Some(Operator::Best),
        1 => Some(Operator::Set),
        2 => Some(Operator::Incr),
        3 => Some(Operator::Decr),
        _ => None,
    }
}

pub fn operator_to_db(op: Operator) -> i32 {
    match op {
        Operator::Best => 0,
        Operator::Set => 1,
        Operator::Incr => 2,
        Operator::Decr => 3,
    }
}

impl Board {
    /// Parses a stored row; a row that cannot be used (unknown numbers, bad cron) is an error.
    pub fn from_row(row: BoardRow) -> Result<Board, String> {
        let order = SortOrder::from_nakama(i64::from(row.sort_order))
            .ok_or_else(|| format!("sort_order {} is not 0 or 1", row.sort_order))?;
        let operator = operator_from_db(row.operator)
            .ok_or_else(|| format!("operator {} is not 0-3", row.operator))?;
        let schedule = match row.reset_schedule.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(CronSchedule::parse(s).map_err(|e| e.to_string())?),
        };
        Ok(Board {
            row,
            order,
            operator,
            schedule,
        })
    }

    pub fn id(&self) -> &str {
        &self.row.id
    }

    pub fn is_tournament(&self) -> bool {
        self.row.is_tournament
    }

    /// The tournament's period at `now` (Nakama's `calculateTournamentDeadlines`).
    pub fn deadlines(&self, now: i64) -> Deadlines {
        schedule::tournament_deadlines(
            self.row.start_time,
            self.row.end_time,
            i64::from(self.row.duration),
            self.schedule.as_ref(),
            now,
        )
    }

    /// The bucket (expiry) writes go to at `now`; 0 = never expires.
    pub fn current_expiry(&self, now: i64) -> i64 {
        if self.is_tournament() {
            self.deadlines(now).expiry
        } else {
            schedule::expiry_for(self.schedule.as_ref(), now)
        }
    }

    /// Whether the tournament has ended for good (its end time passed).
    pub fn ended(&self, now: i64) -> bool {
        self.is_tournament() && self.row.end_time > 0 && self.row.end_time <= now
    }

    /// The tournament accepts writes and joins at `now` (inside its active window).
    pub fn active(&self, now: i64) -> bool {
        let d = self.deadlines(now);
        d.start_active <= now && now < d.end_active
    }

    pub fn kind(&self) -> BoardKind {
        if self.is_tournament() {
            BoardKind::Tournament {
                max_num_score: u32::try_from(self.row.max_num_score).ok(),
                join_required: self.row.join_required,
            }
        } else {
            BoardKind::Leaderboard
        }
    }

    /// The tournament's participant limit, if any.
    pub fn max_size(&self) -> Option<u64> {
        (self.is_tournament() && self.row.max_size > 0 && self.row.max_size < DEFAULT_MAX_SIZE)
            .then_some(self.row.max_size as u64)
    }

    /// `max_num_score` as records show it.
    pub fn record_max_num_score(&self, stored: Option<u32>) -> u32 {
        stored.unwrap_or(NAKAMA_DEFAULT_MAX_NUM_SCORE)
    }

    /// The definition with live figures (`size`: records in the current bucket).
    pub fn info(&self, now: i64, size: u64, cached: bool) -> BoardInfo {
        let r = &self.row;
        let (start_active, end_active, expiry) = if self.is_tournament() {
            let d = self.deadlines(now);
            (d.start_active, d.end_active, d.expiry)
        } else {
            (0, 0, self.current_expiry(now))
        };
        BoardInfo {
            id: r.id.clone(),
            sort_order: self.order.nakama_number() as u32,
            operator: self.operator.nakama_number() as u32,
            authoritative: r.authoritative,
            reset_schedule: self.schedule.as_ref().map(|s| s.as_str().to_string()),
            metadata: r.metadata.clone(),
            enable_ranks: r.enable_ranks,
            is_tournament: r.is_tournament,
            category: r.category.max(0) as u32,
            title: r.title.clone(),
            description: r.description.clone(),
            duration: r.duration.max(0) as u32,
            start_time: r.start_time,
            end_time: r.end_time,
            max_size: r.max_size.max(0) as u32,
            max_num_score: r.max_num_score.max(0) as u32,
            join_required: r.join_required,
            create_time: r.create_time,
            size,
            expiry,
            start_active,
            end_active,
            prev_reset: schedule::prev_reset(self.schedule.as_ref(), r.start_time, now),
            cached,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_and_buckets_follow_the_schedule() {
        let mut row = BoardRow::leaderboard("weekly");
        row.reset_schedule = Some("0 0 * * 1".into());
        let b = Board::from_row(row.clone()).unwrap();
        assert_eq!(b.order, SortOrder::Descending);
        assert_eq!(b.operator, Operator::Best);
        // 2023-11-14 22:13:20 UTC is a Tuesday; the next Monday 00:00 is 2023-11-20.
        assert_eq!(b.current_expiry(1_700_000_000), 1_700_438_400);
        row.reset_schedule = None;
        assert_eq!(Board::from_row(row.clone()).unwrap().current_expiry(5), 0);
        row.operator = 9;
        assert!(Board::from_row(row).is_err());
        for op in [
            Operator::Best,
            Operator::Set,
            Operator::Incr,
            Operator::Decr,
        ] {
            assert_eq!(operator_from_db(operator_to_db(op)), Some(op));
        }
    }

    #[test]
    fn tournaments_have_windows_and_limits() {
        let mut row = BoardRow::leaderboard("cup");
        row.is_tournament = true;
        row.start_time = 1_000;
        row.duration = 100;
        row.end_time = 0;
        row.max_size = 2;
        let b = Board::from_row(row).unwrap();
        assert!(!b.active(999));
        assert!(b.active(1_000) && b.active(1_099));
        assert!(!b.active(1_100));
        assert_eq!(b.max_size(), Some(2));
        assert!(!b.ended(10_000));
    }
}
