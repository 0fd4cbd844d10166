//! Budget periods: which minute, day or month a moment falls in, as a key
//! segment, and how long until it ends.

use crate::time::{civil_from_days, days_from_civil};

/// A budget period: a clock minute, a UTC day or a calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The clock minute (UTC).
    Minute,
    /// The UTC day.
    Day,
    /// The UTC calendar month.
    Month,
}

impl Period {
    /// The period containing `now_ms` (Unix milliseconds), as a key
    /// segment, and the seconds left until it ends.
    pub fn at(self, now_ms: u64) -> (String, u64) {
        let now_s = now_ms / 1000;
        let days = now_s / 86_400;
        let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX));
        match self {
            Period::Minute => (
                format!(
                    "{year:04}-{month:02}-{day:02}T{:02}:{:02}",
                    now_s % 86_400 / 3_600,
                    now_s % 3_600 / 60
                ),
                60 - now_s % 60,
            ),
            Period::Day => (
                format!("{year:04}-{month:02}-{day:02}"),
                (days + 1) * 86_400 - now_s,
            ),
            Period::Month => {
                let (next_year, next_month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                let end = days_from_civil(next_year, next_month, 1) * 86_400;
                let end = u64::try_from(end).unwrap_or(u64::MAX);
                (format!("{year:04}-{month:02}"), end - now_s)
            }
        }
    }
}
