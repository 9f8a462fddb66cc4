//! Maintenance windows: `Tue,Wed 09:00-13:00 Europe/Berlin`, and where work fits inside them.
//!
//! A window is a set of weekdays, a local start and end time and an IANA time zone. Work placed
//! by [`fit`] starts inside a window occurrence and ends before that occurrence closes: a wave
//! never straddles a window end, it moves to the next occurrence instead.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// Why a `--window` value could not be read. Each message shows the accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error(
        "window '{input}': {reason} (expected e.g. 'Tue,Wed 09:00-13:00 Europe/Berlin' or 'Mon-Fri 22:00-02:00 UTC')"
    )]
    Syntax { input: String, reason: String },
    #[error(
        "window '{input}': unknown time zone '{zone}'; use an IANA name such as Europe/Berlin, America/New_York or UTC"
    )]
    UnknownZone { input: String, zone: String },
}

/// One weekly maintenance window.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceWindow {
    /// Monday = 0 … Sunday = 6.
    days: [bool; 7],
    start: Time,
    end: Time,
    zone_name: String,
    zone: TimeZone,
    text: String,
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn day_index(s: &str) -> Option<usize> {
    let lower = s.trim().to_ascii_lowercase();
    if lower.len() < 3 {
        return None;
    }
    const FULL: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    FULL.iter().position(|full| full.starts_with(&lower))
}

fn parse_time(s: &str) -> Option<Time> {
    let (h, m) = s.trim().split_once(':')?;
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    if h == 24 && m == 0 {
        // 24:00 is the end of the day; the last representable minute stands in for it.
        return Time::new(23, 59, 59, 999_999_999).ok();
    }
    Time::new(h, m, 0, 0).ok()
}

impl MaintenanceWindow {
    /// Parse `DAYS HH:MM-HH:MM [ZONE]`. Days: `Mon`, `Tue,Wed`, `Mon-Fri`, `daily`. The zone is
    /// an IANA name and defaults to UTC. An end at or before the start crosses midnight.
    pub fn parse(input: &str) -> Result<Self, WindowError> {
        let syntax = |reason: &str| WindowError::Syntax { input: input.to_string(), reason: reason.to_string() };
        let parts: Vec<&str> = input.split_whitespace().collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(syntax("give days, a time range and optionally a time zone"));
        }
        let mut days = [false; 7];
        for item in parts[0].split(',') {
            let item = item.trim();
            if item.eq_ignore_ascii_case("daily") || item == "*" {
                days = [true; 7];
                continue;
            }
            if let Some((a, b)) = item.split_once('-') {
                let a = day_index(a).ok_or_else(|| syntax(&format!("'{a}' is not a weekday")))?;
                let b = day_index(b).ok_or_else(|| syntax(&format!("'{b}' is not a weekday")))?;
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            } else {
                let d = day_index(item).ok_or_else(|| syntax(&format!("'{item}' is not a weekday")))?;
                days[d] = true;
            }
        }
        let (start, end) = parts[1].split_once('-').ok_or_else(|| syntax("the time range needs a '-'"))?;
        let start = parse_time(start).ok_or_else(|| syntax(&format!("'{start}' is not a time of day (HH:MM)")))?;
        let end = parse_time(end).ok_or_else(|| syntax(&format!("'{end}' is not a time of day (HH:MM)")))?;
        if start == end {
            return Err(syntax("the window is empty (start equals end)"));
        }
        let zone_name = parts.get(2).copied().unwrap_or("UTC").to_string();
        let zone = TimeZone::get(&zone_name)
            .map_err(|_| WindowError::UnknownZone { input: input.to_string(), zone: zone_name.clone() })?;
        Ok(MaintenanceWindow { days, start, end, zone_name, zone, text: input.trim().to_string() })
    }

    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The window as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The window's length in minutes.
    pub fn length_minutes(&self) -> i64 {
        let day = 24 * 60;
        let s = i64::from(self.start.hour()) * 60 + i64::from(self.start.minute());
        let e = i64::from(self.end.hour()) * 60 + i64::from(self.end.minute()) + i64::from(self.end.second() == 59);
        if e > s { e - s } else { e + day - s }
    }

    /// The weekday names the window opens on.
    pub fn days(&self) -> Vec<&'static str> {
        (0..7).filter(|&d| self.days[d]).map(|d| DAY_NAMES[d]).collect()
    }

    /// Occurrences `[open, close)` opening on `date` (local), if the window opens that day.
    fn occurrence(&self, date: Date) -> Option<(Timestamp, Timestamp)> {
        let weekday = date.weekday().to_monday_zero_offset() as usize;
        if !self.days[weekday] {
            return None;
        }
        let open = date.to_datetime(self.start).to_zoned(self.zone.clone()).ok()?.timestamp();
        let end_date = if self.end > self.start { date } else { date.tomorrow().ok()? };
        let close = end_date.to_datetime(self.end).to_zoned(self.zone.clone()).ok()?.timestamp();
        Some((open, close))
    }

    /// The earliest `[start, start + minutes]` at or after `at` that lies inside one occurrence.
    fn earliest_fit(&self, at: Timestamp, minutes: i64) -> Option<Timestamp> {
        let need = SignedDuration::from_mins(minutes);
        // Start one day early so that an occurrence that crossed midnight into `at`'s day counts.
        let mut date = at.to_zoned(self.zone.clone()).date().yesterday().ok()?;
        for _ in 0..16 {
            if let Some((open, close)) = self.occurrence(date) {
                let start = open.max(at);
                if start < close && start.checked_add(need).ok()? <= close {
                    return Some(start);
                }
            }
            date = date.checked_add(1.day()).ok()?;
        }
        None
    }
}

impl std::fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Where a piece of work lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Inside a window, starting here.
    At(Timestamp),
    /// Longer than every window: it starts when the next window opens and runs past its end.
    Overlong(Timestamp),
}

impl Fit {
    pub fn start(self) -> Timestamp {
        match self {
            Fit::At(t) | Fit::Overlong(t) => t,
        }
    }
}

/// The earliest start at or after `at` for work of `minutes` inside one of `windows`. With no
/// windows, work may run at any time.
pub fn fit(windows: &[MaintenanceWindow], at: Timestamp, minutes: i64) -> Fit {
    if windows.is_empty() {
        return Fit::At(at);
    }
    if let Some(t) = windows.iter().filter_map(|w| w.earliest_fit(at, minutes)).min() {
        return Fit::At(t);
    }
    // Nothing fits whole: begin at the next opening (a zero-length fit) and let it run over.
    let t = windows.iter().filter_map(|w| w.earliest_fit(at, 0)).min().unwrap_or(at);
    Fit::Overlong(t)
}

/// Monday = 0 … Sunday = 6 of `t` in `zone`, and its local hour.
pub fn local_day_hour(t: Timestamp, zone: &TimeZone) -> (Weekday, i8) {
    let z = t.to_zoned(zone.clone());
    (z.weekday(), z.hour())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_days_hours_zone() {
        let w = MaintenanceWindow::parse("Tue,Wed 09:00-13:00 Europe/Berlin").unwrap();
        assert_eq!(w.days(), vec!["Tue", "Wed"]);
        assert_eq!(w.length_minutes(), 240);
        assert_eq!(w.zone_name(), "Europe/Berlin");
        let w = MaintenanceWindow::parse("fri-mon 22:00-02:00").unwrap();
        assert_eq!(w.days(), vec!["Mon", "Fri", "Sat", "Sun"]);
        assert_eq!(w.length_minutes(), 240);
        assert_eq!(w.zone_name(), "UTC");
        assert_eq!(MaintenanceWindow::parse("daily 00:00-24:00 UTC").unwrap().length_minutes(), 1440);
    }

    #[test]
    fn rejects_bad_input_with_the_fix() {
        let e = MaintenanceWindow::parse("Tue 9-13").unwrap_err().to_string();
        assert!(e.contains("'9' is not a time of day"), "{e}");
        assert!(e.contains("Tue,Wed 09:00-13:00 Europe/Berlin"), "{e}");
        let e = MaintenanceWindow::parse("Tue 09:00-13:00 Mars/Olympus").unwrap_err().to_string();
        assert!(e.contains("unknown time zone 'Mars/Olympus'"), "{e}");
        assert!(MaintenanceWindow::parse("Funday 09:00-13:00").is_err());
        assert!(MaintenanceWindow::parse("Tue 09:00-09:00").is_err());
    }

    #[test]
    fn work_moves_to_the_next_window_instead_of_straddling_its_end() {
        let w = vec![MaintenanceWindow::parse("Tue,Wed 09:00-13:00 Europe/Berlin").unwrap()];
        // 2026-12-01 is a Tuesday; Berlin is UTC+1 in December.
        assert_eq!(fit(&w, ts("2026-12-01T07:00:00Z"), 60), Fit::At(ts("2026-12-01T08:00:00Z")));
        assert_eq!(fit(&w, ts("2026-12-01T10:30:00Z"), 30), Fit::At(ts("2026-12-01T10:30:00Z")));
        // 11:30 local + 90 min would end at 13:00 exactly: allowed.
        assert_eq!(fit(&w, ts("2026-12-01T10:30:00Z"), 90), Fit::At(ts("2026-12-01T10:30:00Z")));
        // One minute more and it waits for Wednesday.
        assert_eq!(fit(&w, ts("2026-12-01T10:30:00Z"), 91), Fit::At(ts("2026-12-02T08:00:00Z")));
        // After Wednesday's window, the next is the following Tuesday.
        assert_eq!(fit(&w, ts("2026-12-02T12:00:00Z"), 10), Fit::At(ts("2026-12-08T08:00:00Z")));
        // Longer than any window.
        assert_eq!(fit(&w, ts("2026-12-02T12:00:00Z"), 300), Fit::Overlong(ts("2026-12-08T08:00:00Z")));
        assert_eq!(fit(&[], ts("2026-12-02T12:00:00Z"), 300), Fit::At(ts("2026-12-02T12:00:00Z")));
    }

    #[test]
    fn overnight_window_from_inside_it() {
        let w = vec![MaintenanceWindow::parse("Mon 22:00-02:00 UTC").unwrap()];
        // 2026-11-30 is a Monday; Tuesday 01:00 is still inside Monday's occurrence.
        assert_eq!(fit(&w, ts("2026-12-01T01:00:00Z"), 60), Fit::At(ts("2026-12-01T01:00:00Z")));
        assert_eq!(fit(&w, ts("2026-12-01T01:30:00Z"), 60), Fit::At(ts("2026-12-07T22:00:00Z")));
    }
}
