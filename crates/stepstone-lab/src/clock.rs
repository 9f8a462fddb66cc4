//! The lab's one clock: timestamps are wall-clock time, as on a real cluster, so every client
//! (kubectl's ages, events it writes itself, a rollout's journal) agrees with the lab; durations
//! are compressed instead, so that at `speed` 60 a 30-second grace period ends after half a
//! second of wall time. A manual clock stands still until [`Clock::advance`] moves it, for tests
//! that step time instead of sleeping.

use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

#[derive(Debug)]
pub struct Clock {
    speed: f64,
    /// `None`: the wall clock. `Some`: a manual clock, at this time until advanced.
    manual: Option<Mutex<Timestamp>>,
}

impl Clock {
    /// The wall clock, with lab durations lasting `1 / speed` of their length.
    pub fn wall(speed: f64) -> Self {
        Clock { speed: sane(speed), manual: None }
    }

    /// A clock that reads `start` until [`advance`](Self::advance) moves it.
    pub fn manual(start: Timestamp, speed: f64) -> Self {
        Clock { speed: sane(speed), manual: Some(Mutex::new(start)) }
    }

    /// Lab seconds per wall-clock second.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    pub fn now(&self) -> Timestamp {
        match &self.manual {
            None => Timestamp::now(),
            Some(t) => *crate::sync::lock(t),
        }
    }

    /// When a lab duration of `lab_seconds` that began at `t` ends: `lab_seconds / speed` of
    /// clock time later. Every deadline in the lab goes through here.
    pub fn after(&self, t: Timestamp, lab_seconds: f64) -> Timestamp {
        plus(t, lab_seconds.max(0.0) / self.speed)
    }

    /// How long to wait in wall-clock time before `at` is reached; `None` on a manual clock,
    /// which only [`advance`](Self::advance) moves.
    pub fn real_until(&self, at: Timestamp) -> Option<Duration> {
        if self.manual.is_some() {
            return None;
        }
        let diff = at.duration_since(Timestamp::now()).as_secs_f64();
        Some(if diff <= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(diff) })
    }

    /// Move a manual clock forward by `by` of clock time (a lab duration of `by * speed`).
    /// Returns the new time; `None` on the wall clock, which nobody moves.
    pub fn advance(&self, by: Duration) -> Option<Timestamp> {
        let cell = self.manual.as_ref()?;
        let mut t = crate::sync::lock(cell);
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        *t = t.checked_add(by).unwrap_or(*t);
        Some(*t)
    }
}

fn sane(speed: f64) -> f64 {
    if speed.is_finite() && speed > 0.0 { speed } else { 1.0 }
}

/// Times the lab keeps for itself (not in an API object), with their sub-second part, so that a
/// compressed deadline of a fraction of a second survives a round trip through text.
pub fn format_precise(t: Timestamp) -> String {
    t.to_string()
}

/// Timestamps as the API writes them: RFC 3339, whole seconds, UTC.
pub fn format(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `MicroTime` as the API writes it (a Lease's `renewTime`): RFC 3339 with microseconds, UTC.
pub fn format_micro(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `t + seconds` of clock time.
pub(crate) fn plus(t: Timestamp, seconds: f64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs_f64(seconds)).unwrap_or(t)
}

pub fn parse(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// kubectl's short age: `45s`, `5m12s`, `3h`, `4d5h`, `120d` (as in `duration.HumanDuration`).
pub fn human_age(since: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(since).as_secs();
    if secs < 0 {
        return "<invalid>".to_string();
    }
    let s = secs;
    if s < 60 * 2 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        let rem = s % 60;
        return if rem == 0 { format!("{m}m") } else { format!("{m}m{rem}s") };
    }
    if m < 60 * 3 {
        return format!("{m}m");
    }
    let h = m / 60;
    if h < 8 {
        let rem = m % 60;
        return if rem == 0 { format!("{h}h") } else { format!("{h}h{rem}m") };
    }
    if h < 48 {
        return format!("{h}h");
    }
    let d = h / 24;
    if h < 24 * 8 {
        let rem = h % 24;
        return if rem == 0 { format!("{d}d") } else { format!("{d}d{rem}h") };
    }
    if h < 24 * 365 * 2 {
        return format!("{d}d");
    }
    let y = d / 365;
    if h < 24 * 365 * 8 {
        let rem = d % 365;
        return if rem == 0 { format!("{y}y") } else { format!("{y}y{rem}d") };
    }
    format!("{y}y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at = |s: i64| t.checked_add(SignedDuration::from_secs(s)).unwrap();
        assert_eq!(human_age(t, at(45)), "45s");
        assert_eq!(human_age(t, at(312)), "5m12s");
        assert_eq!(human_age(t, at(3 * 3600)), "3h");
        assert_eq!(human_age(t, at(4 * 86400 + 5 * 3600)), "4d5h");
        assert_eq!(human_age(t, at(120 * 86400)), "120d");
        assert_eq!(human_age(at(10), t), "<invalid>");
    }

    #[test]
    fn durations_are_compressed_and_timestamps_stay_on_the_wall_clock() {
        let c = Clock::wall(60.0);
        let before = Timestamp::now();
        let now = c.now();
        assert!(now.duration_since(before).as_secs() < 5, "{now} is not the wall clock ({before})");
        let grace_ends = c.after(now, 30.0);
        assert_eq!(grace_ends.duration_since(now), SignedDuration::from_millis(500));
        assert!(c.real_until(grace_ends).unwrap() <= Duration::from_millis(500));
        assert_eq!(c.advance(Duration::from_secs(1)), None, "nobody moves the wall clock");
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let c = Clock::manual(start, 1.0);
        assert_eq!(c.now(), start);
        assert_eq!(c.real_until(c.after(start, 30.0)), None);
        assert_eq!(c.advance(Duration::from_secs(29)), Some(plus(start, 29.0)));
        assert!(c.now() < c.after(start, 30.0));
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now(), c.after(start, 30.0));
    }

    #[test]
    fn precise_times_keep_their_fraction() {
        let t = plus("2026-01-01T00:00:00Z".parse().unwrap(), 0.25);
        assert_eq!(parse(&format_precise(t)), Some(t));
        assert_eq!(format(t), "2026-01-01T00:00:00Z");
        assert_eq!(format_micro(t), "2026-01-01T00:00:00.250000Z");
    }
}
