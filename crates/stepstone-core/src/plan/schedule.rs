//! The calendar of a plan: when each control-plane step, wave, soak and wait runs, given the
//! assumed step durations and the maintenance windows.
//!
//! Work (control-plane steps, canaries, batches) only starts inside a window and never runs past
//! the end of the window it started in; soaks and waits may elapse outside windows, since
//! nothing changes while they run. No clock is read here: the start is an input.

use jiff::civil::{DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::model::{Durations, Hop, HopSchedule, Schedule, ScheduleEntry, ScheduleEntryKind, Wave, WaveKind};
use super::window::{self, Fit, MaintenanceWindow};

/// Why a schedule could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("start {start}: that local time does not exist in {zone} (a daylight-saving gap); pick another --start")]
    NoSuchLocalTime { start: String, zone: String },
    #[error("the maintenance windows use different time zones ({0}); give every --window the same zone")]
    MixedZones(String),
}

/// Everything the calendar needs besides the plan.
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    pub start: Timestamp,
    pub windows: Vec<MaintenanceWindow>,
    /// Work on Saturdays and Sundays without a warning.
    pub allow_weekend: bool,
    /// Work on Friday afternoons without a warning.
    pub allow_friday: bool,
}

impl ScheduleOptions {
    pub fn new(start: Timestamp) -> Self {
        ScheduleOptions { start, windows: Vec::new(), allow_weekend: false, allow_friday: false }
    }
}

/// The zone the schedule is shown in: the windows' zone, else UTC.
pub fn time_zone(windows: &[MaintenanceWindow]) -> Result<(String, TimeZone), ScheduleError> {
    let mut names: Vec<&str> = windows.iter().map(|w| w.zone_name()).collect();
    names.sort_unstable();
    names.dedup();
    match names.as_slice() {
        [] => Ok(("UTC".to_string(), TimeZone::UTC)),
        [_] => Ok((windows[0].zone_name().to_string(), windows[0].zone().clone())),
        many => Err(ScheduleError::MixedZones(many.join(", "))),
    }
}

/// A `--start` given as local wall-clock time, read in the windows' zone (UTC without windows).
pub fn resolve_start(local: DateTime, windows: &[MaintenanceWindow]) -> Result<Timestamp, ScheduleError> {
    let (name, zone) = time_zone(windows)?;
    // Reject times skipped by a DST change rather than silently shifting them.
    zone.to_ambiguous_zoned(local)
        .later()
        .ok()
        .filter(|z| z.datetime() == local)
        .map(|z| z.timestamp())
        .ok_or_else(|| ScheduleError::NoSuchLocalTime { start: local.to_string(), zone: name })
}

/// How long a worker wave keeps its nodes out of service.
pub fn wave_minutes(wave: &Wave, d: &Durations) -> u32 {
    d.worker_minutes() + wave.pdb_wait_minutes
}

/// Working minutes of a plan with no windows: every step, soak and wait back to back.
pub fn working_minutes(hops: &[Hop], d: &Durations) -> u64 {
    let wave = |w: &Wave| u64::from(wave_minutes(w, d)) + u64::from(w.wait_after_minutes);
    hops.iter()
        .map(|h| {
            h.before_control_plane.iter().map(wave).sum::<u64>()
                + h.control_plane.len() as u64 * u64::from(d.control_plane_minutes)
                + h.waves.iter().map(wave).sum::<u64>()
        })
        .sum()
}

struct Builder<'a> {
    windows: &'a [MaintenanceWindow],
    cursor: Timestamp,
    worked: u64,
    entries: Vec<ScheduleEntry>,
    overlong: Vec<String>,
}

fn plus(t: Timestamp, minutes: u32) -> Timestamp {
    t.saturating_add(SignedDuration::from_mins(i64::from(minutes))).expect("minutes only")
}

impl Builder<'_> {
    fn work(
        &mut self,
        hop: usize,
        kind: ScheduleEntryKind,
        label: String,
        nodes: &[String],
        minutes: u32,
        wave: Option<usize>,
    ) {
        let fit = window::fit(self.windows, self.cursor, i64::from(minutes));
        let start = fit.start();
        if start > self.cursor {
            self.entries.push(ScheduleEntry {
                hop,
                kind: ScheduleEntryKind::OutsideWindow,
                label: "outside the maintenance window".to_string(),
                nodes: vec![],
                start: self.cursor,
                end: start,
                wave: None,
            });
        }
        if let Fit::Overlong(_) = fit {
            self.overlong.push(format!("{label} ({minutes} min)"));
        }
        let end = plus(start, minutes);
        self.entries.push(ScheduleEntry { hop, kind, label, nodes: nodes.to_vec(), start, end, wave });
        self.cursor = end;
        self.worked += u64::from(minutes);
    }

    fn wait(&mut self, hop: usize, kind: ScheduleEntryKind, label: String, minutes: u32, wave: Option<usize>) {
        if minutes == 0 {
            return;
        }
        let end = plus(self.cursor, minutes);
        self.entries.push(ScheduleEntry { hop, kind, label, nodes: vec![], start: self.cursor, end, wave });
        self.cursor = end;
        self.worked += u64::from(minutes);
    }

    fn wave(&mut self, hop: usize, index: Option<usize>, w: &Wave, label: String, d: &Durations) {
        let kind = match w.kind {
            WaveKind::Canary => ScheduleEntryKind::Canary,
            WaveKind::Batch => ScheduleEntryKind::Batch,
        };
        self.work(hop, kind, label.clone(), &w.nodes, wave_minutes(w, d), index);
        let (wait_kind, word) = match w.kind {
            WaveKind::Canary => (ScheduleEntryKind::Soak, "soak after"),
            WaveKind::Batch => (ScheduleEntryKind::Wait, "wait after"),
        };
        self.wait(hop, wait_kind, format!("{word} {label}"), w.wait_after_minutes, index);
    }
}

/// Short labels for a hop's waves, as the schedule and the table show them:
/// `canary dell-r640-01`, `batch 2 of 7 dell-r640 (3 nodes)`.
pub fn wave_labels(hop: &Hop) -> Vec<String> {
    let mut batches: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for w in hop.waves.iter().filter(|w| w.kind == WaveKind::Batch) {
        *batches.entry(w.generation.as_str()).or_default() += 1;
    }
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    hop.waves
        .iter()
        .map(|w| match w.kind {
            WaveKind::Canary => format!("canary {}", w.nodes.join(", ")),
            WaveKind::Batch => {
                let n = seen.entry(w.generation.as_str()).or_default();
                *n += 1;
                format!(
                    "batch {n} of {} {} ({} node{})",
                    batches[w.generation.as_str()],
                    w.generation,
                    w.nodes.len(),
                    plural(w.nodes.len())
                )
            }
        })
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Lay the plan's hops out on the calendar.
pub fn build(
    hops: &[Hop],
    d: &Durations,
    opts: &ScheduleOptions,
    lower_bound_minutes: u64,
) -> Result<Schedule, ScheduleError> {
    let (zone_name, zone) = time_zone(&opts.windows)?;
    let mut b =
        Builder { windows: &opts.windows, cursor: opts.start, worked: 0, entries: Vec::new(), overlong: Vec::new() };
    let mut hop_times = Vec::new();
    for (h, hop) in hops.iter().enumerate() {
        let first = b.entries.len();
        for w in &hop.before_control_plane {
            let label = format!("kubelets to {} before the control plane: {}", hop.from, w.nodes.join(", "));
            b.wave(h, None, w, label, d);
        }
        for step in &hop.control_plane {
            let action = match step.action {
                super::model::ControlPlaneAction::Apply => format!("kubeadm upgrade apply {}", hop.to),
                super::model::ControlPlaneAction::Node => "kubeadm upgrade node".to_string(),
            };
            let label = format!("control plane {} ({action})", step.node);
            b.work(
                h,
                ScheduleEntryKind::ControlPlane,
                label,
                std::slice::from_ref(&step.node),
                d.control_plane_minutes,
                None,
            );
        }
        for ((i, w), label) in hop.waves.iter().enumerate().zip(wave_labels(hop)) {
            b.wave(h, Some(i), w, label, d);
        }
        let hop_entries = &b.entries[first..];
        let start = hop_entries
            .iter()
            .find(|e| e.kind != ScheduleEntryKind::OutsideWindow)
            .map(|e| e.start)
            .unwrap_or(b.cursor);
        hop_times.push(HopSchedule { hop: h, start, finish: b.cursor });
    }
    let mut warnings = calendar_warnings(&b.entries, &zone, &zone_name, opts);
    if !b.overlong.is_empty() {
        warnings.push(format!(
            "{} step(s) are longer than any maintenance window and will run past its end, first: {}; widen the --window or lower --max-unavailable",
            b.overlong.len(),
            b.overlong[0]
        ));
    }
    let makespan = b.worked;
    let efficiency_percent = if makespan == 0 {
        100
    } else {
        ((u128::from(lower_bound_minutes.min(makespan)) * 100) / u128::from(makespan)) as u32
    };
    Ok(Schedule {
        start: opts.start,
        finish: b.cursor,
        time_zone: zone_name,
        entries: b.entries,
        makespan_minutes: makespan,
        lower_bound_minutes,
        lower_bound_batch_size: 0,
        lower_bound_budget_minutes: 0,
        efficiency_percent,
        hops: hop_times,
        warnings,
    })
}

fn is_work(kind: ScheduleEntryKind) -> bool {
    matches!(kind, ScheduleEntryKind::ControlPlane | ScheduleEntryKind::Canary | ScheduleEntryKind::Batch)
}

/// Format a timestamp as local wall-clock time: `Tue 2026-12-01 09:00`.
pub fn local(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned(zone.clone()).strftime("%a %Y-%m-%d %H:%M").to_string()
}

/// Friday-afternoon and weekend work, unless allowed: the times with no one to handle a failure.
fn calendar_warnings(
    entries: &[ScheduleEntry],
    zone: &TimeZone,
    zone_name: &str,
    opts: &ScheduleOptions,
) -> Vec<String> {
    let mut weekend: Vec<&ScheduleEntry> = Vec::new();
    let mut friday: Vec<&ScheduleEntry> = Vec::new();
    for e in entries.iter().filter(|e| is_work(e.kind)) {
        let (mut on_weekend, mut on_friday) = (false, false);
        // Sample the entry every 15 minutes and at its end: steps are short, days are long.
        let mut t = e.start;
        loop {
            let (day, hour) = window::local_day_hour(t, zone);
            on_weekend |= matches!(day, Weekday::Saturday | Weekday::Sunday);
            on_friday |= day == Weekday::Friday && hour >= 12;
            if t >= e.end {
                break;
            }
            t = plus(t, 15).min(e.end);
        }
        if on_weekend {
            weekend.push(e);
        }
        if on_friday {
            friday.push(e);
        }
    }
    let mut out = Vec::new();
    if !opts.allow_weekend && !weekend.is_empty() {
        out.push(format!(
            "{} step(s) fall on a weekend, first {} at {} ({zone_name}); restrict --window to weekdays, or pass --allow-weekend if the team is on call",
            weekend.len(),
            weekend[0].label,
            local(weekend[0].start, zone)
        ));
    }
    if !opts.allow_friday && !friday.is_empty() {
        out.push(format!(
            "{} step(s) run on a Friday afternoon, first {} at {} ({zone_name}), leaving no time to handle a failure before the weekend; use a --window such as 'Tue,Wed 09:00-13:00 {zone_name}', or pass --allow-friday",
            friday.len(),
            friday[0].label,
            local(friday[0].start, zone)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{ControlPlaneAction, ControlPlaneStep};
    use crate::version::KubeVersion;

    fn wave(kind: WaveKind, generation: &str, nodes: &[&str], wait: u32) -> Wave {
        Wave {
            kind,
            generation: generation.to_string(),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            reason: String::new(),
            wait_after_minutes: wait,
            pods_moved: 0,
            pdb_wait_minutes: 0,
            blockers: vec![],
            bound: None,
        }
    }

    fn hop() -> Hop {
        Hop {
            from: KubeVersion::new(1, 34, 2),
            to: KubeVersion::new(1, 35, 0),
            etcd: None,
            done: vec![],
            kubelets_first: vec![],
            before_control_plane: vec![],
            control_plane: vec![ControlPlaneStep {
                node: "cp-1".into(),
                action: ControlPlaneAction::Apply,
                generation: "g".into(),
                pods_moved: 0,
                blockers: vec![],
            }],
            waves: vec![
                wave(WaveKind::Canary, "old", &["old-1"], 30),
                wave(WaveKind::Batch, "old", &["old-2", "old-3"], 5),
                wave(WaveKind::Batch, "old", &["old-4"], 0),
            ],
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn back_to_back_without_windows() {
        let d = Durations::default();
        let hops = vec![hop()];
        let s = build(&hops, &d, &ScheduleOptions::new(ts("2026-12-01T09:00:00Z")), 80).unwrap();
        // 30 cp + 20 canary + 30 soak + 20 batch + 5 wait + 20 batch.
        assert_eq!(s.makespan_minutes, 125);
        assert_eq!(working_minutes(&hops, &d), 125);
        assert_eq!(s.finish, ts("2026-12-01T11:05:00Z"));
        assert_eq!(s.efficiency_percent, 64);
        let labels: Vec<&str> = s.entries.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "control plane cp-1 (kubeadm upgrade apply v1.35.0)",
                "canary old-1",
                "soak after canary old-1",
                "batch 1 of 2 old (2 nodes)",
                "wait after batch 1 of 2 old (2 nodes)",
                "batch 2 of 2 old (1 node)",
            ]
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn windows_push_work_to_the_next_opening() {
        let d = Durations::default();
        let mut opts = ScheduleOptions::new(ts("2026-12-01T08:00:00Z"));
        // 09:00-10:00 Berlin = 08:00-09:00 UTC: cp (30) + canary (20) fit; the soak runs to 09:20,
        // then the batch waits for Wednesday.
        opts.windows = vec![MaintenanceWindow::parse("Tue,Wed 09:00-10:00 Europe/Berlin").unwrap()];
        let s = build(&[hop()], &d, &opts, 0).unwrap();
        assert_eq!(s.time_zone, "Europe/Berlin");
        let batch = s.entries.iter().find(|e| e.kind == ScheduleEntryKind::Batch).unwrap();
        assert_eq!(batch.start, ts("2026-12-02T08:00:00Z"));
        let gap = s.entries.iter().find(|e| e.kind == ScheduleEntryKind::OutsideWindow).unwrap();
        assert_eq!((gap.start, gap.end), (ts("2026-12-01T09:20:00Z"), ts("2026-12-02T08:00:00Z")));
        // No work entry crosses 10:00 Berlin.
        for e in s.entries.iter().filter(|e| is_work(e.kind)) {
            let end_local = e.end.to_zoned(TimeZone::get("Europe/Berlin").unwrap());
            assert!(end_local.hour() < 10 || (end_local.hour() == 10 && end_local.minute() == 0), "{e:?}");
        }
        assert_eq!(s.makespan_minutes, 125);
        assert_eq!(s.hops[0].finish, s.finish);
    }

    #[test]
    fn warns_about_friday_afternoon_and_weekends() {
        let d = Durations::default();
        // Friday 2026-12-04 15:00 UTC: everything lands on Friday afternoon.
        let opts = ScheduleOptions::new(ts("2026-12-04T15:00:00Z"));
        let s = build(&[hop()], &d, &opts, 0).unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("Friday afternoon"), "{}", s.warnings[0]);
        assert!(s.warnings[0].contains("--allow-friday"));
        let mut opts = ScheduleOptions::new(ts("2026-12-05T10:00:00Z"));
        let s = build(&[hop()], &d, &opts, 0).unwrap();
        assert!(s.warnings[0].starts_with("4 step(s) fall on a weekend, first control plane cp-1"), "{:?}", s.warnings);
        opts.allow_weekend = true;
        assert!(build(&[hop()], &d, &opts, 0).unwrap().warnings.is_empty());
    }

    #[test]
    fn start_is_local_to_the_window_zone() {
        let w = vec![MaintenanceWindow::parse("Tue 09:00-13:00 Europe/Berlin").unwrap()];
        let local: DateTime = "2026-12-01T09:00".parse().unwrap();
        assert_eq!(resolve_start(local, &w).unwrap(), ts("2026-12-01T08:00:00Z"));
        assert_eq!(resolve_start(local, &[]).unwrap(), ts("2026-12-01T09:00:00Z"));
        let gap: DateTime = "2026-03-29T02:30".parse().unwrap();
        assert!(resolve_start(gap, &w).is_err());
        let other = MaintenanceWindow::parse("Wed 09:00-13:00 UTC").unwrap();
        assert!(matches!(time_zone(&[w[0].clone(), other]), Err(ScheduleError::MixedZones(_))));
    }
}
