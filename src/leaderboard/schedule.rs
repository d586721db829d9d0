//! Reset schedules (5-field cron, UTC) and tournament windows, as Nakama computes them.
//!
//! The cron dialect is the 5-field subset of Nakama's `internal/cronexpr`: minute, hour,
//! day of month, month, day of week; each a list of `*`, `?`, `n`, `a-b`, `*/s`, `n/s`
//! (`n` to the field's maximum), `a-b/s`; month and weekday names (`jan`, `january`, `mon`,
//! `monday` …, any case); weekday 7 = Sunday; `L` (last day of the month) in the day-of-month
//! field; the aliases `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@hourly`.
//! As in cron (and cronexpr), when both day fields are restricted (neither is `*`/`?`) a day
//! matches when either does. Not supported (refused at parse): seconds and year fields,
//! `W`, `LW`, `nL`, `n#k`. Occurrences are searched up to the end of 2099, cronexpr's range.
//!
//! - [`CronSchedule::next_after`]: the first occurrence strictly after a time (cronexpr `Next`).
//! - [`CronSchedule::last_before`]: the last occurrence strictly before a time (`Last`).
//! - [`expiry_for`]: a leaderboard bucket's expiry (`ResetSchedule.Next(now)`, 0 = never).
//! - [`tournament_deadlines`] / [`active_window`]: Nakama's `calculateTournamentDeadlines`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};

/// Occurrences are searched up to the end of this year (cronexpr's year range ends there).
const MAX_YEAR: i32 = 2099;
const MIN_YEAR: i32 = 1970;

/// A parsed 5-field cron expression, evaluated in UTC.
#[derive(Clone, PartialEq, Eq)]
pub struct CronSchedule {
    source: String,
    minutes: u64,
    hours: u32,
    /// Bits 1–31.
    days_of_month: u32,
    /// Bits 1–12.
    months: u16,
    /// Bits 0–6, 0 = Sunday.
    days_of_week: u8,
    last_day_of_month: bool,
    dom_restricted: bool,
    dow_restricted: bool,
}

/// Why a cron expression was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid reset schedule {expr:?}: {reason}")]
pub struct CronError {
    pub expr: String,
    pub reason: String,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?})", self.source)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for CronSchedule {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronSchedule::parse(s)
    }
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTH_NAMES: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const MONTH_LONG: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DOW_NAMES: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const DOW_LONG: &[&str] = &[
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: MONTH_NAMES,
};
const DOW: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: DOW_NAMES,
};

impl Field {
    fn value(&self, s: &str) -> Result<u32, String> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let v: u32 = s
                .parse()
                .map_err(|_| format!("{} field: bad value {s:?}", self.name))?;
            if v < self.min || v > self.max {
                return Err(format!(
                    "{} field: {v} is outside {}-{}",
                    self.name, self.min, self.max
                ));
            }
            return Ok(v);
        }
        let long: &[&str] = match self.name {
            "month" => MONTH_LONG,
            "day-of-week" => DOW_LONG,
            _ => &[],
        };
        for list in [self.names, long] {
            if let Some(i) = list.iter().position(|n| *n == s) {
                return Ok(i as u32 + self.min);
            }
        }
        Err(format!("{} field: bad value {s:?}", self.name))
    }

    fn step(&self, s: &str) -> Result<u32, String> {
        match s.parse::<u32>() {
            Ok(n) if n >= 1 && n <= self.max => Ok(n),
            _ => Err(format!("{} field: invalid interval {s:?}", self.name)),
        }
    }

    /// The field's bit set and whether it is restricted (no bare `*`/`?` entry).
    /// `extra` handles entries this field allows beyond the generic forms.
    fn parse(
        &self,
        s: &str,
        mut extra: impl FnMut(&str) -> Result<bool, String>,
    ) -> Result<(u64, bool), String> {
        let mut bits = 0u64;
        let mut restricted = true;
        for entry in s.split(',') {
            if entry.is_empty() {
                return Err(format!("{} field: empty entry in {s:?}", self.name));
            }
            if entry == "*" || entry == "?" {
                restricted = false;
                bits |= span(self.min, self.max, 1);
                continue;
            }
            if extra(entry)? {
                continue;
            }
            let (range, step) = match entry.split_once('/') {
                Some((r, st)) => (r, Some(self.step(st)?)),
                None => (entry, None),
            };
            let (first, last) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.value(a)?, self.value(b)?)
            } else {
                let v = self.value(range)?;
                // `n/s` runs from n to the field's maximum; a bare `n` is just n.
                (v, if step.is_some() { self.max } else { v })
            };
            bits |= span(first, last, step.unwrap_or(1));
        }
        Ok((bits, restricted))
    }
}

/// Bits first..=last every `step` (nothing when first > last, as cronexpr).
fn span(first: u32, last: u32, step: u32) -> u64 {
    let mut bits = 0u64;
    let mut v = first;
    while v <= last {
        bits |= 1 << v;
        v += step;
    }
    bits
}

impl CronSchedule {
    /// Parses a 5-field expression or an `@` alias.
    pub fn parse(expr: &str) -> Result<CronSchedule, CronError> {
        let err = |reason: String| CronError {
            expr: expr.to_string(),
            reason,
        };
        let lower = expr.trim().to_ascii_lowercase();
        let normalised = match lower.as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = normalised.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        }
        let none = |_: &str| Ok(false);
        let (minutes, _) = MINUTE.parse(fields[0], none).map_err(err)?;
        let (hours, _) = HOUR.parse(fields[1], none).map_err(err)?;
        let mut last_day_of_month = false;
        let (dom, dom_restricted) = DOM
            .parse(fields[2], |e| {
                if e == "l" {
                    last_day_of_month = true;
                    Ok(true)
                } else if e.ends_with('w') {
                    Err(format!("day-of-month field: {e:?} (W) is not supported"))
                } else {
                    Ok(false)
                }
            })
            .map_err(err)?;
        let (months, _) = MONTH.parse(fields[3], none).map_err(err)?;
        let (dow, dow_restricted) = DOW
            .parse(fields[4], |e| {
                if e.contains('#') || (e.len() > 1 && e.ends_with('l')) {
                    Err(format!(
                        "day-of-week field: {e:?} (# and L) is not supported"
                    ))
                } else {
                    Ok(false)
                }
            })
            .map_err(err)?;
        // Weekday 7 is Sunday.
        let dow = (dow & 0x7f) | ((dow >> 7) & 1);
        Ok(CronSchedule {
            source: expr.trim().to_string(),
            minutes,
            hours: hours as u32,
            days_of_month: dom as u32,
            months: months as u16,
            days_of_week: dow as u8,
            last_day_of_month,
            dom_restricted,
            dow_restricted,
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = || {
            self.days_of_month & (1 << date.day()) != 0
                || (self.last_day_of_month && date.succ_opt().is_none_or(|n| n.day() == 1))
        };
        let dow = || self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom() || dow(),
            (true, false) => dom(),
            (false, true) => dow(),
            (false, false) => true,
        }
    }

    /// The first occurrence strictly after `t` (unix seconds); `None` when there is none
    /// before the end of 2099.
    pub fn next_after(&self, t: i64) -> Option<i64> {
        let mut c = to_datetime(t.div_euclid(60).checked_add(1)?.checked_mul(60)?)?;
        loop {
            if c.year() > MAX_YEAR {
                return None;
            }
            if self.months & (1 << c.month()) == 0 {
                c = first_of_next_month(c.date())?.and_hms_opt(0, 0, 0)?;
            } else if !self.day_matches(c.date()) {
                c = c.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
            } else if self.hours & (1 << c.hour()) == 0 {
                c = c.with_minute(0)? + Duration::hours(1);
            } else if self.minutes & (1 << c.minute()) == 0 {
                // The next allowed minute in this hour, or the next hour.
                let above = self.minutes >> c.minute();
                if above == 0 {
                    c = c.with_minute(0)? + Duration::hours(1);
                } else {
                    c += Duration::minutes(above.trailing_zeros() as i64);
                }
            } else {
                return Some(c.and_utc().timestamp());
            }
        }
    }

    /// The last occurrence strictly before `t` (unix seconds); `None` before 1970.
    pub fn last_before(&self, t: i64) -> Option<i64> {
        // The last whole minute strictly before t.
        let mut c = to_datetime((t.checked_add(59)?.div_euclid(60) - 1).checked_mul(60)?)?;
        loop {
            if c.year() < MIN_YEAR {
                return None;
            }
            if self.months & (1 << c.month()) == 0 {
                c = c.date().with_day(1)?.and_hms_opt(0, 0, 0)? - Duration::minutes(1);
            } else if !self.day_matches(c.date()) {
                c = c.date().and_hms_opt(0, 0, 0)? - Duration::minutes(1);
            } else if self.hours & (1 << c.hour()) == 0 {
                c = c.with_minute(0)? - Duration::minutes(1);
            } else if self.minutes & (1 << c.minute()) == 0 {
                let below = self.minutes & ((1u64 << c.minute()) - 1);
                if below == 0 {
                    c = c.with_minute(0)? - Duration::minutes(1);
                } else {
                    c = c.with_minute(63 - below.leading_zeros())?;
                }
            } else {
                return Some(c.and_utc().timestamp());
            }
        }
    }

    #[cfg(test)]
    /// The first `n` occurrences strictly after `t`.
    pub fn next_n(&self, t: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        let mut t = t;
        while out.len() < n {
            match self.next_after(t) {
                Some(x) => {
                    out.push(x);
                    t = x;
                }
                None => break,
            }
        }
        out
    }
}

fn to_datetime(t: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(t, 0).map(|d| d.naive_utc())
}

fn first_of_next_month(d: NaiveDate) -> Option<NaiveDate> {
    if d.month() == 12 {
        NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
    }
}

/// The expiry of a leaderboard's current bucket at `now`: the next reset strictly after `now`
/// (unix seconds), or 0 (never) without a schedule. As Nakama: `ResetSchedule.Next(now)`.
pub fn expiry_for(schedule: Option<&CronSchedule>, now: i64) -> i64 {
    schedule.and_then(|s| s.next_after(now)).unwrap_or(0)
}

/// A leaderboard's previous reset (Nakama `calculatePrevReset`): 0 without a schedule or
/// before `start_time`.
pub fn prev_reset(schedule: Option<&CronSchedule>, start_time: i64, now: i64) -> i64 {
    match schedule {
        Some(s) if start_time <= now => s.last_before(now).unwrap_or(0),
        _ => 0,
    }
}

/// A tournament's current period, Nakama's `calculateTournamentDeadlines`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// Start of the current (or next) active period.
    pub start_active: i64,
    /// End of the active period (writes and joins are refused from here).
    pub end_active: i64,
    /// When this period's records expire (the bucket key); 0 = never.
    pub expiry: i64,
}

/// Nakama's `calculateTournamentDeadlines(start_time, end_time, duration, reset_schedule, now)`.
/// `end_time` 0 = no end. A schedule without any further occurrence is treated as no schedule.
pub fn tournament_deadlines(
    start_time: i64,
    end_time: i64,
    duration: i64,
    reset_schedule: Option<&CronSchedule>,
    now: i64,
) -> Deadlines {
    if let Some(d) =
        reset_schedule.and_then(|s| scheduled_deadlines(s, start_time, end_time, duration, now))
    {
        return d;
    }
    let mut end_active = start_time.saturating_add(duration);
    if end_time > 0 && end_active > end_time {
        end_active = end_time;
    }
    Deadlines {
        start_active: start_time,
        end_active,
        expiry: end_time,
    }
}

fn scheduled_deadlines(
    s: &CronSchedule,
    start_time: i64,
    end_time: i64,
    duration: i64,
    now: i64,
) -> Option<Deadlines> {
    let mut start_active = if now < start_time {
        s.next_after(start_time)?
    } else if s.next_after(now - 1) == Some(now) {
        // `now` is itself a reset.
        now
    } else {
        s.last_before(now)?
    };
    let mut expiry = s.next_after(start_active)?;
    let mut end_active = start_active.saturating_add(duration).min(expiry);

    if start_time > end_active {
        // Starts after this period's active part but before its next reset: the first period
        // is the one after start_time.
        start_active = s.next_after(start_time)?;
        expiry = s.next_after(start_active)?;
        end_active = start_active.saturating_add(duration).min(expiry);
    } else if start_time > start_active {
        start_active = start_time;
    }

    if end_time > 0 && expiry > end_time {
        expiry = end_time;
        end_active = end_active.min(expiry);
    }
    Some(Deadlines {
        start_active,
        end_active,
        expiry,
    })
}

/// The tournament's active window `(start, end)` at `now`, when `now` is inside it
/// (`start <= now < end`, Nakama's write check); `None` outside.
pub fn active_window(
    start_time: i64,
    end_time: i64,
    duration: i64,
    reset_schedule: Option<&CronSchedule>,
    now: i64,
) -> Option<(i64, i64)> {
    let d = tournament_deadlines(start_time, end_time, duration, reset_schedule, now);
    (d.start_active <= now && now < d.end_active).then_some((d.start_active, d.end_active))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(s: &str) -> CronSchedule {
        CronSchedule::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ts(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp()
    }

    #[test]
    fn parses_and_refuses() {
        for ok in [
            "* * * * *",
            "0 0 * * 1",
            "*/15 9-17 * * mon-fri",
            "0 12 1,15 * *",
            "5/10 * * * *",
            "0 0 L * *",
            "0 0 1 JAN *",
            "0 0 * * 7",
            "0 0 ? * SUNDAY",
            "@daily",
            "@weekly",
            "  0 0 * * *  ",
            "00 09 * * *",
        ] {
            assert!(CronSchedule::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "* * * *",
            "0 0 0 * * *",
            "0 0 0 * * * 2030",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "*/60 * * * *",
            "1,,2 * * * *",
            "x * * * *",
            "0 0 15W * *",
            "0 0 * * 5L",
            "0 0 * * 1#2",
            "@reboot",
        ] {
            assert!(CronSchedule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn next_and_last() {
        let daily = cron("0 0 * * *");
        let t = ts("2024-03-10 15:30:20");
        assert_eq!(daily.next_after(t), Some(ts("2024-03-11 00:00:00")));
        assert_eq!(daily.last_before(t), Some(ts("2024-03-10 00:00:00")));
        // Strictly after / before an occurrence.
        let mid = ts("2024-03-11 00:00:00");
        assert_eq!(daily.next_after(mid), Some(ts("2024-03-12 00:00:00")));
        assert_eq!(daily.last_before(mid), Some(ts("2024-03-10 00:00:00")));
        assert_eq!(daily.last_before(mid + 1), Some(mid));
        assert_eq!(daily.next_after(mid - 1), Some(mid));

        // Weekly on Monday (2024-03-11 is a Monday).
        let weekly = cron("0 0 * * 1");
        assert_eq!(weekly.next_after(t), Some(ts("2024-03-11 00:00:00")));
        assert_eq!(weekly.last_before(t), Some(ts("2024-03-04 00:00:00")));
        assert_eq!(
            cron("@weekly").next_after(t),
            Some(ts("2024-03-17 00:00:00"))
        );

        // Minutes and hours.
        let q = cron("*/15 9-17 * * *");
        assert_eq!(q.next_after(t), Some(ts("2024-03-10 15:45:00")));
        assert_eq!(q.last_before(t), Some(ts("2024-03-10 15:30:00")));
        assert_eq!(
            q.next_after(ts("2024-03-10 17:45:00")),
            Some(ts("2024-03-11 09:00:00"))
        );
        assert_eq!(
            q.last_before(ts("2024-03-10 09:00:00")),
            Some(ts("2024-03-09 17:45:00"))
        );

        // Leap day, end of month, year wrap.
        let leap = cron("0 0 29 2 *");
        assert_eq!(leap.next_after(t), Some(ts("2028-02-29 00:00:00")));
        assert_eq!(leap.last_before(t), Some(ts("2024-02-29 00:00:00")));
        let last = cron("30 23 L * *");
        assert_eq!(
            last.next_after(ts("2024-02-01 00:00:00")),
            Some(ts("2024-02-29 23:30:00"))
        );
        assert_eq!(
            last.next_after(ts("2023-12-31 23:30:00")),
            Some(ts("2024-01-31 23:30:00"))
        );
        assert_eq!(
            last.last_before(ts("2024-03-15 00:00:00")),
            Some(ts("2024-02-29 23:30:00"))
        );
        let ny = cron("@yearly");
        assert_eq!(ny.next_after(t), Some(ts("2025-01-01 00:00:00")));
        assert_eq!(ny.last_before(t), Some(ts("2024-01-01 00:00:00")));

        // Day of month OR day of week when both are restricted: the 13th or any Friday.
        let either = cron("0 0 13 * 5");
        assert_eq!(
            either.next_n(ts("2024-09-01 00:00:00"), 4),
            vec![
                ts("2024-09-06 00:00:00"),
                ts("2024-09-13 00:00:00"),
                ts("2024-09-20 00:00:00"),
                ts("2024-09-27 00:00:00"),
            ]
        );
        let thirteenth = cron("0 0 13 * *");
        assert_eq!(
            thirteenth.next_after(ts("2024-09-01 00:00:00")),
            Some(ts("2024-09-13 00:00:00"))
        );
        // `*/2` in day of month is a restriction: ORed with the weekday.
        let odd_or_sun = cron("0 0 */2 * 0");
        assert_eq!(
            odd_or_sun.next_n(ts("2024-09-01 00:00:00"), 3),
            vec![
                ts("2024-09-03 00:00:00"),
                ts("2024-09-05 00:00:00"),
                ts("2024-09-07 00:00:00"),
            ]
        );
        assert_eq!(
            odd_or_sun.next_after(ts("2024-09-07 00:00:00")),
            Some(ts("2024-09-08 00:00:00"))
        );

        // Never (30 February) and the year range.
        assert_eq!(cron("0 0 30 2 *").next_after(t), None);
        assert_eq!(cron("0 0 30 2 *").last_before(t), None);
        assert_eq!(expiry_for(Some(&cron("0 0 30 2 *")), t), 0);
        assert_eq!(ny.next_after(ts("2099-06-01 00:00:00")), None);
    }

    #[test]
    fn agrees_with_brute_force() {
        let exprs = [
            "*/7 */5 * * *",
            "0 3 */3 * 2,4",
            "15 10 L * *",
            "45 23 31 * *",
            "0 0 1-7 * mon",
        ];
        let start = ts("2023-12-20 00:00:00");
        for e in exprs {
            let c = cron(e);
            let brute: Vec<i64> = (0..60 * 24 * 200)
                .map(|m| start + m * 60)
                .filter(|&t| {
                    let d = to_datetime(t).unwrap();
                    c.months & (1 << d.month()) != 0
                        && c.day_matches(d.date())
                        && c.hours & (1 << d.hour()) != 0
                        && c.minutes & (1 << d.minute()) != 0
                })
                .collect();
            assert!(brute.len() > 3, "{e}");
            for w in brute.windows(2) {
                assert_eq!(c.next_after(w[0]), Some(w[1]), "{e} next");
                assert_eq!(c.next_after(w[1] - 1), Some(w[1]), "{e} next-1");
                assert_eq!(c.last_before(w[1]), Some(w[0]), "{e} last");
                assert_eq!(c.last_before(w[0] + 1), Some(w[0]), "{e} last+1");
                let mid = w[0] + (w[1] - w[0]) / 2;
                if mid > w[0] {
                    assert_eq!(c.next_after(mid), Some(w[1]), "{e} mid");
                    assert_eq!(c.last_before(mid), Some(w[0]), "{e} mid");
                }
            }
        }
    }

    #[test]
    fn leaderboard_expiry() {
        let t = ts("2024-03-10 15:30:20");
        assert_eq!(expiry_for(None, t), 0);
        assert_eq!(
            expiry_for(Some(&cron("0 0 * * *")), t),
            ts("2024-03-11 00:00:00")
        );
        assert_eq!(
            prev_reset(Some(&cron("0 0 * * *")), 0, t),
            ts("2024-03-10 00:00:00")
        );
        assert_eq!(prev_reset(Some(&cron("0 0 * * *")), t + 1, t), 0);
        assert_eq!(prev_reset(None, 0, t), 0);
    }

    // The figures of Nakama's own tests (server/core_tournament_test.go).
    #[test]
    fn tournament_every_fourteen_days() {
        let s = cron("0 9 */14 * *");
        let now = 1692608400; // 2023-08-21 11:00
        let d = tournament_deadlines(1692090000, 0, 1202400, Some(&s), now);
        assert_eq!(d.start_active, 1692090000); // 2023-08-15 09:00
        assert_eq!(d.end_active, 1693292400); // 2023-08-29 07:00
        assert_eq!(s.next_after(now), Some(1693299600)); // 2023-08-29 09:00
        assert_eq!(d.expiry, 1693299600);
        assert_eq!(
            active_window(1692090000, 0, 1202400, Some(&s), now),
            Some((1692090000, 1693292400))
        );
    }

    #[test]
    fn tournament_weekdays() {
        let s = cron("0 22 * * 1-5");
        let now = 1692615600; // Monday 2023-08-21 11:00
        let d = tournament_deadlines(1692090000, 0, 7200, Some(&s), now);
        assert_eq!(d.start_active, 1692396000); // Friday 2023-08-18 22:00
        assert_eq!(d.end_active, 1692403200); // 2023-08-19 00:00
        assert_eq!(s.next_after(now), Some(1692655200)); // 2023-08-21 22:00
        assert_eq!(active_window(1692090000, 0, 7200, Some(&s), now), None);
        // During Monday's period.
        let later = 1692655200 + 60;
        assert_eq!(
            active_window(1692090000, 0, 7200, Some(&s), later),
            Some((1692655200, 1692655200 + 7200))
        );
    }

    #[test]
    fn tournament_now_is_reset_time() {
        let s = cron("0 9 14 * *");
        let now = 1692003600; // 2023-08-14 09:00
        let d = tournament_deadlines(now, 0, 604800, Some(&s), now);
        assert_eq!(d.start_active, 1692003600);
        assert_eq!(d.end_active, 1692608400); // 2023-08-21 09:00
        assert_eq!(d.expiry, 1694682000); // 2023-09-14 09:00
        assert_eq!(
            active_window(now, 0, 604800, Some(&s), now),
            Some((now, 1692608400))
        );
        assert_eq!(active_window(now, 0, 604800, Some(&s), 1692608400), None);
    }

    #[test]
    fn tournament_now_before_start() {
        let s = cron("0 9 14 * *");
        let now = 1692003600; // 2023-08-14 09:00
        let d = tournament_deadlines(1693558800, 0, 604800 * 4, Some(&s), now);
        assert_eq!(d.start_active, 1694682000); // 2023-09-14 09:00
        assert_eq!(d.end_active, 1697101200); // 2023-10-12 09:00
        assert_eq!(
            active_window(1693558800, 0, 604800 * 4, Some(&s), now),
            None
        );
    }

    #[test]
    fn tournament_starts_between_periods() {
        // Daily at noon for an hour; created to start at 15:00 the same day: the first period
        // is the next day's.
        let s = cron("0 12 * * *");
        let start = ts("2024-05-01 15:00:00");
        let d = tournament_deadlines(start, 0, 3600, Some(&s), ts("2024-05-01 16:00:00"));
        assert_eq!(
            d,
            Deadlines {
                start_active: ts("2024-05-02 12:00:00"),
                end_active: ts("2024-05-02 13:00:00"),
                expiry: ts("2024-05-03 12:00:00"),
            }
        );
        // Start inside a period: the period starts at start_time.
        let start = ts("2024-05-01 12:20:00");
        let d = tournament_deadlines(start, 0, 3600, Some(&s), ts("2024-05-01 12:30:00"));
        assert_eq!(d.start_active, start);
        assert_eq!(d.end_active, ts("2024-05-01 13:00:00"));
        assert_eq!(d.expiry, ts("2024-05-02 12:00:00"));
    }

    #[test]
    fn tournament_end_time_caps() {
        let s = cron("0 0 * * *");
        let start = ts("2024-05-01 00:00:00");
        let end = ts("2024-05-03 06:00:00");
        let now = ts("2024-05-03 01:00:00");
        let d = tournament_deadlines(start, end, 86400, Some(&s), now);
        assert_eq!(d.start_active, ts("2024-05-03 00:00:00"));
        assert_eq!(d.expiry, end);
        assert_eq!(d.end_active, end);
        assert_eq!(
            active_window(start, end, 86400, Some(&s), now),
            Some((ts("2024-05-03 00:00:00"), end))
        );
        assert_eq!(active_window(start, end, 86400, Some(&s), end), None);
    }

    #[test]
    fn tournament_without_schedule() {
        let start = 1_000_000;
        let d = tournament_deadlines(start, 0, 3600, None, start + 10);
        assert_eq!(
            d,
            Deadlines {
                start_active: start,
                end_active: start + 3600,
                expiry: 0
            }
        );
        let d = tournament_deadlines(start, start + 600, 3600, None, start + 10);
        assert_eq!(d.end_active, start + 600);
        assert_eq!(d.expiry, start + 600);
        assert_eq!(active_window(start, 0, 3600, None, start - 1), None);
        assert_eq!(
            active_window(start, 0, 3600, None, start),
            Some((start, start + 3600))
        );
        assert_eq!(active_window(start, 0, 3600, None, start + 3600), None);
    }
}
