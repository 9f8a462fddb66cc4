//! The plan for people: each hop as a phase diagram (control plane, canaries, batches with the
//! reason for their size and when they finish), then the blockers and the calendar.

use std::collections::HashMap;
use std::fmt::Write;

use jiff::tz::TimeZone;

use crate::addons::{FoundAddon, HopSupport};

use super::model::{ControlPlaneAction, Plan, ScheduleEntryKind, Wave, WaveKind};
use super::schedule::{local, wave_labels};

/// `1h 05m`, `45m`, `3d 2h 10m`.
pub fn minutes(m: u64) -> String {
    let (d, h, min) = (m / 1440, (m % 1440) / 60, m % 60);
    match (d, h) {
        (0, 0) => format!("{min}m"),
        (0, _) => format!("{h}h {min:02}m"),
        _ => format!("{d}d {h}h {min:02}m"),
    }
}

/// At most `max` names, then "and N more".
fn names(list: &[String], max: usize) -> String {
    if list.len() <= max {
        return list.join(", ");
    }
    format!("{}, and {} more", list[..max].join(", "), list.len() - max)
}

fn wave_head(w: &Wave, label: &str) -> String {
    match w.kind {
        WaveKind::Canary => format!("Canary: {} (soak {}m)", names(&w.nodes, 6), w.wait_after_minutes),
        WaveKind::Batch => {
            let mut l = label.to_string();
            if let Some(first) = l.get(..1) {
                l = first.to_uppercase() + &l[1..];
            }
            format!("{l}: {}", names(&w.nodes, 6))
        }
    }
}

/// Render a plan as text.
pub fn render(plan: &Plan) -> String {
    let zone = TimeZone::get(&plan.schedule.time_zone).unwrap_or(TimeZone::UTC);
    let at = |t: jiff::Timestamp| local(t, &zone);
    // Wave end times from the schedule, by (hop, wave index).
    let mut wave_end: HashMap<(usize, usize), jiff::Timestamp> = HashMap::new();
    let mut cp_end: HashMap<(usize, String), jiff::Timestamp> = HashMap::new();
    for e in &plan.schedule.entries {
        match (e.kind, e.wave) {
            (ScheduleEntryKind::Canary | ScheduleEntryKind::Batch, Some(i)) => {
                wave_end.insert((e.hop, i), e.end);
            }
            (ScheduleEntryKind::ControlPlane, _) => {
                if let Some(n) = e.nodes.first() {
                    cp_end.insert((e.hop, n.clone()), e.end);
                }
            }
            _ => {}
        }
    }

    let mut out = String::new();
    let p = &plan.policy;
    let _ = writeln!(
        out,
        "Plan for {}: {} -> {} ({} hop{}, workers {})",
        plan.cluster,
        plan.from,
        plan.to,
        plan.hops.len(),
        if plan.hops.len() == 1 { "" } else { "s" },
        match p.strategy {
            super::model::WorkerStrategy::Lockstep => "lockstep",
            super::model::WorkerStrategy::SkipMinors => "skip-minors",
        }
    );
    let _ = writeln!(
        out,
        "Policy: --max-unavailable {}, headroom {}%, canary soak {}m, batch wait {}m",
        batch_limits(p),
        p.headroom_percent,
        p.canary_soak_minutes,
        p.batch_wait_minutes
    );
    if !p.generation_order.is_empty() {
        let _ = writeln!(out, "Hardware generations, oldest first: {}", p.generation_order.join(", "));
    }

    for (h, hop) in plan.hops.iter().enumerate() {
        out.push('\n');
        let etcd = hop.etcd.as_deref().map(|e| format!(" (etcd {e})")).unwrap_or_default();
        let _ = writeln!(out, "Hop {}: {} -> {}{etcd}", h + 1, hop.from, hop.to);
        if !hop.done.is_empty() {
            let _ = writeln!(out, "  Already at {} (nothing to do): {}", hop.to, names(&hop.done, 6));
        }
        if !hop.before_control_plane.is_empty() {
            for w in &hop.before_control_plane {
                let _ = writeln!(out, "  Before the control plane, kubelets to {}: {}", hop.from, names(&w.nodes, 6));
                let _ = writeln!(out, "      {}", why(w));
            }
        }
        if !hop.control_plane.is_empty() {
            let steps: Vec<String> = hop
                .control_plane
                .iter()
                .map(|s| match s.action {
                    ControlPlaneAction::Apply => format!("{} (apply)", s.node),
                    ControlPlaneAction::Node => s.node.clone(),
                })
                .collect();
            let _ = write!(out, "  Control plane: {}", steps.join(" -> "));
            if let Some(last) = hop.control_plane.last()
                && let Some(end) = cp_end.get(&(h, last.node.clone()))
            {
                let _ = write!(out, "  (until {})", at(*end));
            }
            out.push('\n');
            for s in hop.control_plane.iter().filter(|s| !s.blockers.is_empty()) {
                let _ = writeln!(out, "      {} blocked: {}", s.node, s.blockers.join("; "));
            }
        }
        for ((i, w), label) in hop.waves.iter().enumerate().zip(wave_labels(hop)) {
            let _ = write!(out, "  {}", wave_head(w, &label));
            if let Some(end) = wave_end.get(&(h, i)) {
                let _ = write!(out, "  (until {})", at(*end));
            }
            out.push('\n');
            let _ = writeln!(out, "      {}", why(w));
        }
        if let Some(hs) = plan.schedule.hops.get(h) {
            let _ = writeln!(out, "  Hop {} done: {}", h + 1, at(hs.finish));
        }
    }

    out.push('\n');
    if plan.blockers.is_empty() {
        let _ = writeln!(out, "Blockers: none");
    } else {
        let _ = writeln!(out, "Blockers ({}):", plan.blockers.len());
        for b in &plan.blockers {
            let _ = writeln!(out, "  {} {} {}: {}", b.severity, b.code, b.subject, b.message);
            if !b.hint.is_empty() {
                let _ = writeln!(out, "      fix: {}", b.hint);
            }
        }
    }
    if !plan.addons.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "Add-ons ({}), against each project's matrix (data/addons.toml):", plan.addons.len());
        for a in &plan.addons {
            let _ = writeln!(out, "  {}", addon_line(a));
        }
    }
    if !plan.findings.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "Findings:");
        for f in &plan.findings {
            let _ = writeln!(out, "  {} {} {}: {}", f.severity, f.code, f.subject, f.message);
        }
    }

    let s = &plan.schedule;
    out.push('\n');
    let _ = writeln!(out, "Schedule ({}):", s.time_zone);
    let _ = writeln!(out, "  Start:  {}", at(s.start));
    let _ = writeln!(out, "  Finish: {}", at(s.finish));
    let _ = writeln!(
        out,
        "  Working time {}; lower bound {} (every batch at its limit, no capacity stops, plus {} of budget waits no plan avoids in the first hop); efficiency {}%",
        minutes(s.makespan_minutes),
        minutes(s.lower_bound_minutes),
        minutes(s.lower_bound_budget_minutes),
        s.efficiency_percent
    );
    for w in &s.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    out
}

/// `calico v3.29.3 (15 pods, supports 1.29-1.32): hop 1 not supported, upgrade to v3.30.0 or newer before it`.
pub fn addon_line(a: &FoundAddon) -> String {
    let supports = a.supports.as_deref().map(|s| format!(", supports {s}")).unwrap_or_default();
    let head = format!("{} {} ({} pod{}{supports})", a.name, a.version, a.pods, if a.pods == 1 { "" } else { "s" });
    let blocked: Vec<String> = a
        .blocked()
        .map(|h| match &h.upgrade_to {
            Some(v) => {
                format!("hop {} ({} -> {}) not supported, upgrade to {v} or newer before it", h.hop, h.from, h.to)
            }
            None => format!("hop {} ({} -> {}) not supported by any release in the table", h.hop, h.from, h.to),
        })
        .collect();
    if !blocked.is_empty() {
        return format!("{head}: {}", blocked.join("; "));
    }
    if a.hops.iter().any(|h| h.support == HopSupport::Unknown) {
        return format!("{head}: unknown ({})", a.source);
    }
    format!("{head}: every hop supported")
}

/// `why: …`: the reason starts with what decided the wave's size (`WaveBound`).
fn why(w: &super::model::Wave) -> String {
    format!("why: {}", w.reason)
}

/// The batch limits as the policy line shows them: the operator's single number as given,
/// otherwise each generation's limit (oldest first) and what set it.
fn batch_limits(p: &super::model::PlanPolicy) -> String {
    let limits = &p.batch_limits;
    let first = limits.values().next();
    let uniform = first.is_some_and(|f| limits.values().all(|l| l.source.is_operator() && l.limit == f.limit));
    if limits.is_empty() || uniform {
        return p.max_unavailable.to_string();
    }
    let mut names: Vec<&String> = p.generation_order.iter().filter(|g| limits.contains_key(*g)).collect();
    names.extend(limits.keys().filter(|g| !p.generation_order.contains(g)));
    let parts: Vec<String> =
        names.iter().map(|g| format!("{g}={} ({})", limits[*g].limit, limits[*g].source.describe())).collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_read_like_a_clock() {
        assert_eq!(minutes(45), "45m");
        assert_eq!(minutes(65), "1h 05m");
        assert_eq!(minutes(1440 * 2 + 130), "2d 2h 10m");
    }

    #[test]
    fn long_node_lists_are_shortened() {
        let l: Vec<String> = (1..=9).map(|i| format!("n{i}")).collect();
        assert_eq!(names(&l, 3), "n1, n2, n3, and 6 more");
        assert_eq!(names(&l[..2], 3), "n1, n2");
    }
}
