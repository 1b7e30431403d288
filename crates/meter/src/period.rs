//! Metering periods: calendar months, ISO weeks or days, in UTC.
//!
//! Timestamps are `i64` microseconds since the Unix epoch, as everywhere in Liaison.
//! A period covers `[start_micros, end_micros)`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, Weekday};

/// First and last years a period may fall in, so that the period after any valid
/// one is still representable.
pub const MIN_YEAR: i32 = 1000;
/// See [`MIN_YEAR`].
pub const MAX_YEAR: i32 = 9998;

/// How long a metering period lasts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    /// A calendar month, labelled `2026-11`.
    #[default]
    Month,
    /// An ISO 8601 week (Monday to Sunday), labelled `2026-W48`.
    Week,
    /// A day, labelled `2026-11-25`.
    Day,
}

impl PeriodKind {
    /// The name used in configuration and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Month => "month",
            PeriodKind::Week => "week",
            PeriodKind::Day => "day",
        }
    }

    fn example(self) -> &'static str {
        match self {
            PeriodKind::Month => "2026-11",
            PeriodKind::Week => "2026-W48",
            PeriodKind::Day => "2026-11-25",
        }
    }
}

impl fmt::Display for PeriodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PeriodKind {
    type Err = PeriodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "month" => Ok(PeriodKind::Month),
            "week" => Ok(PeriodKind::Week),
            "day" => Ok(PeriodKind::Day),
            _ => Err(PeriodError::UnknownKind),
        }
    }
}

/// Why a period could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("not a {kind} label (expected e.g. {example})")]
    BadLabel {
        kind: PeriodKind,
        example: &'static str,
    },
    #[error("the period kind is none of month, week, day")]
    UnknownKind,
    #[error("the date is outside the years {MIN_YEAR} to {MAX_YEAR}")]
    OutOfRange,
}

/// One metering period. Its start is always the first day of the period (the 1st
/// of the month, the Monday of the week).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    kind: PeriodKind,
    start: Date,
}

impl Period {
    /// The period of `kind` that contains `date`.
    pub fn containing_date(kind: PeriodKind, date: Date) -> Result<Period, PeriodError> {
        let start = match kind {
            PeriodKind::Month => date.replace_day(1).map_err(|_| PeriodError::OutOfRange)?,
            PeriodKind::Week => {
                let back = i64::from(date.weekday().number_days_from_monday());
                date.checked_sub(time::Duration::days(back))
                    .ok_or(PeriodError::OutOfRange)?
            }
            PeriodKind::Day => date,
        };
        // A week's label year is its ISO year, which may differ from the Monday's.
        let year = match kind {
            PeriodKind::Week => start.to_iso_week_date().0,
            _ => start.year(),
        };
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(PeriodError::OutOfRange);
        }
        Ok(Period { kind, start })
    }

    /// The period of `kind` that contains the instant `ts_micros` (UTC).
    pub fn containing(kind: PeriodKind, ts_micros: i64) -> Result<Period, PeriodError> {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_micros) * 1000)
            .map_err(|_| PeriodError::OutOfRange)?;
        Period::containing_date(kind, at.date())
    }

    /// Reads a label as written by [`Period::label`]. Only that exact form is
    /// accepted.
    pub fn parse(kind: PeriodKind, label: &str) -> Result<Period, PeriodError> {
        let bad = PeriodError::BadLabel {
            kind,
            example: kind.example(),
        };
        let b = label.as_bytes();
        let digits = |range: std::ops::Range<usize>| -> Result<u32, PeriodError> {
            let part = b.get(range).ok_or(bad.clone())?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(bad.clone());
            }
            part.iter()
                .try_fold(0u32, |n, d| Ok(n * 10 + u32::from(d - b'0')))
        };
        let year = digits(0..4)? as i32;
        let date = match kind {
            PeriodKind::Month => {
                if b.len() != 7 || b[4] != b'-' {
                    return Err(bad);
                }
                let month = Month::try_from(digits(5..7)? as u8).map_err(|_| bad.clone())?;
                Date::from_calendar_date(year, month, 1)
            }
            PeriodKind::Week => {
                if b.len() != 8 || &b[4..6] != b"-W" {
                    return Err(bad);
                }
                Date::from_iso_week_date(year, digits(6..8)? as u8, Weekday::Monday)
            }
            PeriodKind::Day => {
                if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
                    return Err(bad);
                }
                let month = Month::try_from(digits(5..7)? as u8).map_err(|_| bad.clone())?;
                Date::from_calendar_date(year, month, digits(8..10)? as u8)
            }
        }
        .map_err(|_| bad)?;
        Period::containing_date(kind, date)
    }

    pub fn kind(&self) -> PeriodKind {
        self.kind
    }

    /// The first day of the period.
    pub fn start(&self) -> Date {
        self.start
    }

    /// The first day after the period.
    pub fn end(&self) -> Date {
        self.next_start()
            .expect("periods end before the year 10000")
    }

    /// `2026-11`, `2026-W48` (ISO year and week) or `2026-11-25`.
    pub fn label(&self) -> String {
        match self.kind {
            PeriodKind::Month => format!(
                "{:04}-{:02}",
                self.start.year(),
                u8::from(self.start.month())
            ),
            PeriodKind::Week => {
                let (year, week, _) = self.start.to_iso_week_date();
                format!("{year:04}-W{week:02}")
            }
            PeriodKind::Day => format!(
                "{:04}-{:02}-{:02}",
                self.start.year(),
                u8::from(self.start.month()),
                self.start.day()
            ),
        }
    }

    /// The first instant of the period, in microseconds since the epoch (UTC).
    pub fn start_micros(&self) -> i64 {
        micros(self.start)
    }

    /// The first instant after the period (exclusive end).
    pub fn end_micros(&self) -> i64 {
        micros(self.end())
    }

    /// The following period, if it falls before [`MAX_YEAR`]'s end.
    pub fn next(&self) -> Option<Period> {
        Period::containing_date(self.kind, self.next_start()?).ok()
    }

    /// The previous period, if it falls after [`MIN_YEAR`]'s start.
    pub fn prev(&self) -> Option<Period> {
        let day_before = self.start.previous_day()?;
        Period::containing_date(self.kind, day_before).ok()
    }

    /// Whether the period can be closed at `now_micros`: its end plus `grace` has
    /// passed (late events have had `grace` to arrive). Never, for a grace that
    /// reaches beyond the representable instants.
    pub fn close_due(&self, now_micros: i64, grace: Duration) -> bool {
        let grace = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
        self.end_micros()
            .checked_add(grace)
            .is_some_and(|due| due <= now_micros)
    }

    fn next_start(&self) -> Option<Date> {
        match self.kind {
            PeriodKind::Month => {
                let (year, month) = match self.start.month() {
                    Month::December => (self.start.year() + 1, Month::January),
                    month => (self.start.year(), month.next()),
                };
                Date::from_calendar_date(year, month, 1).ok()
            }
            PeriodKind::Week => self.start.checked_add(time::Duration::days(7)),
            PeriodKind::Day => self.start.next_day(),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

fn micros(date: Date) -> i64 {
    // Years 1000..=9999 are far inside i64 microseconds.
    (date.midnight().assume_utc().unix_timestamp_nanos() / 1000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn us(at: OffsetDateTime) -> i64 {
        (at.unix_timestamp_nanos() / 1000) as i64
    }

    #[test]
    fn labels_round_trip() {
        for (kind, label) in [
            (PeriodKind::Month, "2026-11"),
            (PeriodKind::Week, "2026-W48"),
            (PeriodKind::Week, "2026-W01"),
            (PeriodKind::Week, "2026-W53"),
            (PeriodKind::Day, "2026-11-25"),
            (PeriodKind::Day, "2028-02-29"),
        ] {
            assert_eq!(Period::parse(kind, label).unwrap().label(), label);
        }
    }

    #[test]
    fn bad_labels_are_refused() {
        for (kind, label) in [
            (PeriodKind::Month, "2026-13"),
            (PeriodKind::Month, "2026-1"),
            (PeriodKind::Month, "2026-11-01"),
            (PeriodKind::Month, "+026-11"),
            (PeriodKind::Week, "2025-W53"),
            (PeriodKind::Week, "2026-W00"),
            (PeriodKind::Week, "2026-48"),
            (PeriodKind::Day, "2026-02-29"),
            (PeriodKind::Day, "2026-11-25T00"),
            (PeriodKind::Day, ""),
            (PeriodKind::Month, "été!"),
        ] {
            assert!(Period::parse(kind, label).is_err(), "{label}");
        }
        assert_eq!(
            Period::parse(PeriodKind::Month, "0999-12"),
            Err(PeriodError::OutOfRange)
        );
        assert_eq!(
            Period::parse(PeriodKind::Month, "9999-01"),
            Err(PeriodError::OutOfRange)
        );
    }

    #[test]
    fn bounds_are_utc_and_end_exclusive() {
        let nov = Period::parse(PeriodKind::Month, "2026-11").unwrap();
        assert_eq!(nov.start_micros(), us(datetime!(2026-11-01 0:00 UTC)));
        assert_eq!(nov.end_micros(), us(datetime!(2026-12-01 0:00 UTC)));
        let last = nov.end_micros() - 1;
        assert_eq!(Period::containing(PeriodKind::Month, last).unwrap(), nov);
        assert_eq!(
            Period::containing(PeriodKind::Month, nov.end_micros())
                .unwrap()
                .label(),
            "2026-12"
        );

        let dec = Period::parse(PeriodKind::Month, "2026-12").unwrap();
        assert_eq!(dec.end(), date!(2027 - 01 - 01));
        assert_eq!(dec.next().unwrap().label(), "2027-01");
        assert_eq!(dec.next().unwrap().prev().unwrap(), dec);
    }

    #[test]
    fn weeks_follow_iso_8601_across_years() {
        // 2027-01-01 is a Friday: it belongs to 2026's week 53.
        let week =
            Period::containing(PeriodKind::Week, us(datetime!(2027-01-01 12:00 UTC))).unwrap();
        assert_eq!(week.label(), "2026-W53");
        assert_eq!(week.start(), date!(2026 - 12 - 28));
        assert_eq!(week.end(), date!(2027 - 01 - 04));
        assert_eq!(week.next().unwrap().label(), "2027-W01");
        assert_eq!(week.prev().unwrap().label(), "2026-W52");
        // 2026-11-25 is a Wednesday in week 48.
        let wednesday = Period::containing_date(PeriodKind::Week, date!(2026 - 11 - 25)).unwrap();
        assert_eq!(wednesday.label(), "2026-W48");
        assert_eq!(wednesday.start(), date!(2026 - 11 - 23));
    }

    #[test]
    fn days_and_instants_before_the_epoch() {
        let day = Period::containing(PeriodKind::Day, -1).unwrap();
        assert_eq!(day.label(), "1969-12-31");
        assert_eq!(day.end_micros(), 0);
        assert_eq!(day.end_micros() - day.start_micros(), 86_400_000_000);
        assert_eq!(
            Period::containing(PeriodKind::Day, i64::MIN),
            Err(PeriodError::OutOfRange)
        );
    }

    #[test]
    fn range_edges_have_no_neighbour_beyond() {
        let last = Period::parse(PeriodKind::Month, "9998-12").unwrap();
        assert_eq!(last.next(), None);
        assert_eq!(last.end(), date!(9999 - 01 - 01));
        let first = Period::parse(PeriodKind::Day, "1000-01-01").unwrap();
        assert_eq!(first.prev(), None);
    }

    #[test]
    fn closing_waits_for_the_grace() {
        let nov = Period::parse(PeriodKind::Month, "2026-11").unwrap();
        let hour = Duration::from_secs(3600);
        assert!(!nov.close_due(nov.end_micros() - 1, Duration::ZERO));
        assert!(nov.close_due(nov.end_micros(), Duration::ZERO));
        assert!(!nov.close_due(nov.end_micros() + 3_599_999_999, hour));
        assert!(nov.close_due(nov.end_micros() + 3_600_000_000, hour));
        assert!(!nov.close_due(i64::MAX, Duration::MAX));
    }

    #[test]
    fn kinds_are_lowercase_and_month_by_default() {
        assert_eq!(PeriodKind::default(), PeriodKind::Month);
        assert_eq!(
            serde_json::to_string(&PeriodKind::Week).unwrap(),
            "\"week\""
        );
        assert_eq!(
            serde_json::from_str::<PeriodKind>("\"day\"").unwrap(),
            PeriodKind::Day
        );
        assert_eq!("month".parse::<PeriodKind>().unwrap(), PeriodKind::Month);
        assert!("Month".parse::<PeriodKind>().is_err());
    }
}
