//! Times for people: local date and time, and how long ago.

use std::sync::OnceLock;

use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// The local offset from UTC, read once at start.
static OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Reads the local offset from UTC. It must run before the process starts
/// a thread: on Unix the offset can only be read soundly while the process
/// has one (UTC otherwise).
pub fn init() {
    let _ = OFFSET.set(UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC));
}

/// `unix_ms` as local date and time, and how long before `now_ms` it was:
/// `2026-12-07 17:15:22 (2 min ago)`.
pub fn when(unix_ms: u64, now_ms: u64) -> String {
    let offset = OFFSET.get().copied().unwrap_or(UtcOffset::UTC);
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let local = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.to_offset(offset).format(&format).ok())
        .unwrap_or_default();
    format!("{local} ({})", ago(now_ms.saturating_sub(unix_ms)))
}

/// A duration in the unit that reads best: `3 s`, `2 min`, `5 h`, `2 d`.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

fn ago(ms: u64) -> String {
    if ms < 1000 {
        "just now".to_owned()
    } else {
        format!("{} ago", span(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_the_largest_unit() {
        assert_eq!(span(59_999), "59 s");
        assert_eq!(span(120_000), "2 min");
        assert_eq!(span(7_200_000), "2 h");
        assert_eq!(span(3 * 86_400_000), "3 d");
        assert_eq!(ago(400), "just now");
    }

    #[test]
    fn times_are_local_with_how_long_ago() {
        let when = when(1_764_000_000_000, 1_764_000_125_000);
        assert!(when.ends_with(" (2 min ago)"), "{when}");
        assert_eq!(when.len(), "2025-11-24 16:00:00 (2 min ago)".len());
    }
}
