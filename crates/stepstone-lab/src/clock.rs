//! Simulated time: the lab's clock runs `speed` times faster than the wall clock, so start
//! delays, grace periods and kubelet restarts of a whole rehearsal fit in minutes.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone)]
pub struct SimClock {
    real_start: Instant,
    sim_start: Timestamp,
    speed: f64,
}

impl SimClock {
    /// A clock that reads `sim_start` now and advances `speed` simulated seconds per real second.
    pub fn new(sim_start: Timestamp, speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
        SimClock { real_start: Instant::now(), sim_start, speed }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    pub fn now(&self) -> Timestamp {
        let real = self.real_start.elapsed().as_secs_f64();
        let sim = SignedDuration::from_secs_f64(real * self.speed);
        self.sim_start.checked_add(sim).unwrap_or(self.sim_start)
    }

    /// The wall-clock time until the simulated moment `at` (zero if it has passed).
    pub fn real_until(&self, at: Timestamp) -> Duration {
        let diff = at.duration_since(self.now()).as_secs_f64();
        if diff <= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(diff / self.speed) }
    }

    /// A simulated span as wall-clock time.
    #[cfg(test)]
    pub fn real(&self, sim_seconds: f64) -> Duration {
        Duration::from_secs_f64((sim_seconds / self.speed).max(0.0))
    }
}

/// Timestamps as the API writes them: RFC 3339, whole seconds, UTC.
pub fn format(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `now + seconds`, for deadlines.
pub fn plus(t: Timestamp, seconds: f64) -> Timestamp {
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
    fn fast_clock_advances_faster() {
        let c = SimClock::new("2026-01-01T00:00:00Z".parse().unwrap(), 1000.0);
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.now().duration_since("2026-01-01T00:00:00Z".parse().unwrap()).as_secs() >= 19);
        assert_eq!(c.real(60.0), Duration::from_millis(60));
    }
}
