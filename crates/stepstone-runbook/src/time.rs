//! Timestamps as the documents show them: in the plan's time zone, to the minute.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::RunbookError;

/// The plan's time zone, refused with the field named when it is not an IANA name.
pub fn zone(name: &str) -> Result<TimeZone, RunbookError> {
    TimeZone::get(name).map_err(|_| RunbookError::TimeZone { name: name.to_string() })
}

/// `2026-12-01 09:00 CET`.
pub fn minute(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string()
}

/// `Tue 09:00`, for tight places such as chart ticks.
pub fn short(ts: Timestamp, tz: &TimeZone, with_date: bool) -> String {
    let z = ts.to_zoned(tz.clone());
    if with_date { z.strftime("%a %m-%d %H:%M").to_string() } else { z.strftime("%H:%M").to_string() }
}

/// `2 h 30 min`, `45 min`, `3 d 4 h`.
pub fn duration(minutes: u64) -> String {
    let (d, h, m) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    match (d, h, m) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(45), "45 min");
        assert_eq!(duration(120), "2 h");
        assert_eq!(duration(150), "2 h 30 min");
        assert_eq!(duration(1440 * 3 + 250), "3 d 4 h");
    }

    #[test]
    fn bad_zone_names_the_field() {
        let err = zone("Mars/Olympus").unwrap_err();
        assert!(err.to_string().contains("schedule.timeZone"), "{err}");
        let tz = zone("Europe/Berlin").unwrap();
        let ts: Timestamp = "2026-12-01T08:00:00Z".parse().unwrap();
        assert_eq!(minute(ts, &tz), "2026-12-01 09:00 CET");
    }
}
