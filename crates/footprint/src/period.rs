//! Months: the periods of footprint reports (`2026-11`).

use time::{Date, Month as TMonth};

/// A calendar month, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid period {0:?}: expected YYYY-MM (2000-01 to 2199-12)")]
pub struct PeriodError(pub String);

impl Month {
    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Month, PeriodError> {
        let bad = || PeriodError(s.chars().take(32).collect());
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        if !(2000..=2199).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    pub fn label(&self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// First day.
    pub fn start(&self) -> Date {
        let m = TMonth::try_from(self.month).expect("validated month");
        Date::from_calendar_date(self.year, m, 1).expect("validated date")
    }

    /// First day of the next month.
    pub fn end(&self) -> Date {
        self.next().start()
    }

    pub fn next(&self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(&self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// Hours in the month (672 to 744).
    pub fn hours(&self) -> f64 {
        f64::from(time::util::days_in_month(
            TMonth::try_from(self.month).expect("validated month"),
            self.year,
        )) * 24.0
    }

    /// Start and end as Unix seconds.
    pub fn bounds_unix(&self) -> (i64, i64) {
        let ts = |d: Date| d.midnight().assume_utc().unix_timestamp();
        (ts(self.start()), ts(self.end()))
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        let m = Month::parse("2026-11").unwrap();
        assert_eq!(m.hours(), 720.0);
        assert_eq!(Month::parse("2028-02").unwrap().hours(), 696.0);
        assert_eq!(m.next().label(), "2026-12");
        assert_eq!(
            Month::parse("2027-01").unwrap().previous().label(),
            "2026-12"
        );
        let (s, e) = m.bounds_unix();
        assert_eq!(e - s, 720 * 3600);
        for bad in [
            "2026-13",
            "26-11",
            "2026-1",
            "2026/11",
            "x",
            "1999-12",
            "2026-11-01",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }
}
