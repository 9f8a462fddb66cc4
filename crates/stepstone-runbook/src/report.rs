//! The HTML report: one self-contained file (inline CSS and SVG, no scripts, no fetches) with the
//! plan's summary, findings, hardware generations, blockers and a Gantt chart of the schedule.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use stepstone_core::inventory::Inventory;
use stepstone_core::plan::{Plan, ScheduleEntryKind, Wave, WaveKind};

use crate::templates::Templates;
use crate::upgrade::FindingView;
use crate::{RunbookError, time};

const LABEL_WIDTH: f64 = 250.0;
const PLOT_WIDTH: f64 = 900.0;
const ROW_HEIGHT: f64 = 22.0;
const AXIS_HEIGHT: f64 = 34.0;
const MIN_BAR: f64 = 2.0;

#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    /// CSS classes: `bar hop`, `bar cp`, `bar wave`, `bar soak`, `bar wait`.
    pub class: String,
    /// `canary` or `batch` for waves, else empty.
    pub kind: String,
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub label: String,
    pub y: String,
    pub text_y: String,
    pub hop_start: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Band {
    pub x: String,
    pub width: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub x: String,
    pub label: String,
}

/// The chart, fully laid out: the template only writes the elements.
#[derive(Debug, Clone, Serialize)]
pub struct Gantt {
    pub width: String,
    pub height: String,
    pub plot_left: String,
    pub plot_top: String,
    pub plot_bottom: String,
    pub plot_height: String,
    pub tick_top: String,
    pub tick_label_y: String,
    pub rows: Vec<Row>,
    pub bars: Vec<Bar>,
    pub outside: Vec<Band>,
    pub ticks: Vec<Tick>,
    pub waves: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct GenerationRow {
    pub generation: String,
    pub nodes: usize,
    pub control_plane: usize,
    pub workers: usize,
    pub os_images: String,
    pub kernels: String,
    pub runtimes: String,
    pub kubelets: String,
    pub cgroups: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaveSummary {
    pub number: usize,
    pub kind: String,
    pub generation: String,
    pub nodes: String,
    pub count: usize,
    pub reason: String,
    pub wait_after_minutes: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct HopSummary {
    pub number: usize,
    pub from: String,
    pub to: String,
    pub etcd: String,
    pub control_plane: String,
    pub kubelets_first: String,
    /// Waves that bring lagging kubelets to `from` before the control plane moves.
    pub catch_up: Vec<WaveSummary>,
    pub waves: Vec<WaveSummary>,
}

/// Everything `report.html` reads.
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    pub cluster: String,
    pub from: String,
    pub to: String,
    pub path: String,
    pub strategy: String,
    pub node_count: usize,
    pub control_plane_count: usize,
    pub worker_count: usize,
    pub start: String,
    pub finish: String,
    pub time_zone: String,
    pub makespan: String,
    pub lower_bound: String,
    /// Lower bound over makespan, in percent (how close the plan is to what capacity allows).
    pub efficiency_percent: u64,
    pub warnings: Vec<String>,
    pub findings: Vec<FindingView>,
    pub blockers: Vec<FindingView>,
    pub errors: usize,
    pub generations: Vec<GenerationRow>,
    pub generations_from_inventory: bool,
    pub hops: Vec<HopSummary>,
    pub gantt: Gantt,
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// Time to x: working time is linear, each stretch outside the maintenance windows is drawn as
/// a narrow band of fixed width, so nights and weekends do not squeeze the work into slivers.
struct Scale {
    start: Timestamp,
    end: Timestamp,
    breaks: Vec<(Timestamp, Timestamp)>,
    px_per_second: f64,
}

const BREAK_WIDTH: f64 = 14.0;

fn seconds(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs_f64().max(0.0)
}

impl Scale {
    fn new(start: Timestamp, end: Timestamp, outside: &[(Timestamp, Timestamp)]) -> Self {
        let mut spans: Vec<(Timestamp, Timestamp)> =
            outside.iter().map(|(a, b)| ((*a).max(start), (*b).min(end))).filter(|(a, b)| a < b).collect();
        spans.sort();
        let mut breaks: Vec<(Timestamp, Timestamp)> = Vec::new();
        for (a, b) in spans {
            match breaks.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => breaks.push((a, b)),
            }
        }
        let outside_seconds: f64 = breaks.iter().map(|(a, b)| seconds(*a, *b)).sum();
        let working = (seconds(start, end) - outside_seconds).max(60.0);
        let width = (PLOT_WIDTH - BREAK_WIDTH * breaks.len() as f64).max(PLOT_WIDTH / 2.0);
        Scale { start, end, breaks, px_per_second: width / working }
    }

    fn x(&self, t: Timestamp) -> f64 {
        let t = t.max(self.start).min(self.end);
        let mut x = LABEL_WIDTH;
        let mut cursor = self.start;
        for (a, b) in &self.breaks {
            if t <= *a {
                return x + seconds(cursor, t) * self.px_per_second;
            }
            x += seconds(cursor, *a) * self.px_per_second;
            if t < *b {
                return x + BREAK_WIDTH * seconds(*a, t) / seconds(*a, *b);
            }
            x += BREAK_WIDTH;
            cursor = *b;
        }
        x + seconds(cursor, t) * self.px_per_second
    }

    /// The stretches of working time between the breaks.
    fn working(&self) -> Vec<(Timestamp, Timestamp)> {
        let mut out = Vec::new();
        let mut cursor = self.start;
        for (a, b) in &self.breaks {
            if cursor < *a {
                out.push((cursor, *a));
            }
            cursor = *b;
        }
        if cursor < self.end {
            out.push((cursor, self.end));
        }
        out
    }
}

fn tick_step_minutes(total_minutes: f64) -> i64 {
    const STEPS: [i64; 12] = [15, 30, 60, 120, 180, 360, 720, 1440, 2880, 4320, 10080, 20160];
    STEPS.iter().copied().find(|s| total_minutes / *s as f64 <= 12.0).unwrap_or(40320)
}

fn gantt(plan: &Plan, tz: &TimeZone) -> Gantt {
    let s = &plan.schedule;
    let mut end = s.finish.max(s.start);
    for e in &s.entries {
        end = end.max(e.end);
    }
    let outside_spans: Vec<(Timestamp, Timestamp)> =
        s.entries.iter().filter(|e| e.kind == ScheduleEntryKind::OutsideWindow).map(|e| (e.start, e.end)).collect();
    let scale = Scale::new(s.start, end, &outside_spans);
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    let mut waves = 0;
    let row_y = |rows: &mut Vec<Row>, label: String, hop_start: bool| -> f64 {
        let y = AXIS_HEIGHT + rows.len() as f64 * ROW_HEIGHT;
        rows.push(Row { label, y: px(y), text_y: px(y + ROW_HEIGHT * 0.68), hop_start });
        y
    };
    let bar = |class: &str, kind: &str, y: f64, from: Timestamp, to: Timestamp, title: String| {
        let x = scale.x(from);
        let w = (scale.x(to) - x).max(MIN_BAR);
        let inset = if class.contains("hop") { 7.0 } else { 4.0 };
        Bar {
            class: class.to_string(),
            kind: kind.to_string(),
            x: px(x),
            y: px(y + inset),
            width: px(w),
            height: px(ROW_HEIGHT - 2.0 * inset),
            title: format!("{title}: {} to {}", time::minute(from, tz), time::minute(to, tz)),
        }
    };

    for (h, hop) in plan.hops.iter().enumerate() {
        let entries: Vec<_> =
            s.entries.iter().filter(|e| e.hop == h && e.kind != ScheduleEntryKind::OutsideWindow).collect();
        let hop_span = entries.iter().fold(None, |acc: Option<(Timestamp, Timestamp)>, e| {
            Some(acc.map_or((e.start, e.end), |(a, b)| (a.min(e.start), b.max(e.end))))
        });
        let y = row_y(&mut rows, format!("Hop {}: {} to {}", h + 1, hop.from, hop.to), true);
        let (hop_from, hop_to) = hop_span.unwrap_or((s.start, s.start));
        bars.push(bar("bar hop", "", y, hop_from, hop_to, format!("hop {}: {} to {}", h + 1, hop.from, hop.to)));
        let mut cursor = hop_from;

        // Soaks and waits follow their wave: by the entry's wave index, else by node list, else
        // the wave they follow in time.
        let mut wave_rows: Vec<(f64, Timestamp, BTreeSet<String>, Option<usize>)> = Vec::new();
        let wave_row = |rows: &mut Vec<Row>,
                        bars: &mut Vec<Bar>,
                        cursor: &mut Timestamp,
                        wave: &Wave,
                        index: Option<usize>,
                        label: String| {
            let kind = match wave.kind {
                WaveKind::Canary => "canary",
                WaveKind::Batch => "batch",
            };
            let entry_kind = match wave.kind {
                WaveKind::Canary => ScheduleEntryKind::Canary,
                WaveKind::Batch => ScheduleEntryKind::Batch,
            };
            let set: BTreeSet<&str> = wave.nodes.iter().map(String::as_str).collect();
            let mine: Vec<_> = entries
                .iter()
                .filter(|e| {
                    e.kind == entry_kind
                        && match (e.wave, index) {
                            (Some(a), Some(b)) => a == b,
                            _ => e.nodes.iter().map(String::as_str).collect::<BTreeSet<_>>() == set,
                        }
                })
                .collect();
            let (a, b) = span(&mine).unwrap_or((*cursor, *cursor));
            *cursor = (*cursor).max(b);
            let y = row_y(rows, label.clone(), false);
            bars.push(bar("bar wave", kind, y, a, b, format!("hop {} {}: {}", h + 1, label, wave.nodes.join(", "))));
            (y, b, wave.nodes.iter().cloned().collect::<BTreeSet<String>>(), index)
        };
        for wave in &hop.before_control_plane {
            let label = format!("kubelets to {} ({} node{})", hop.from, wave.nodes.len(), plural(wave.nodes.len()));
            let row = wave_row(&mut rows, &mut bars, &mut cursor, wave, None, label);
            wave_rows.push(row);
            waves += 1;
        }

        if !hop.control_plane.is_empty() {
            let y = row_y(&mut rows, format!("control plane ({} nodes)", hop.control_plane.len()), false);
            for step in &hop.control_plane {
                let mine: Vec<_> = entries
                    .iter()
                    .filter(|e| e.kind == ScheduleEntryKind::ControlPlane && e.nodes.contains(&step.node))
                    .collect();
                let (a, b) = span(&mine).unwrap_or((cursor, cursor));
                cursor = cursor.max(b);
                bars.push(bar("bar cp", "", y, a, b, format!("control plane {}", step.node)));
            }
        }

        for (w, wave) in hop.waves.iter().enumerate() {
            let kind = if wave.kind == WaveKind::Canary { "canary" } else { "batch" };
            let label = format!(
                "wave {}: {} {} ({} node{})",
                w + 1,
                kind,
                wave.generation,
                wave.nodes.len(),
                plural(wave.nodes.len())
            );
            let row = wave_row(&mut rows, &mut bars, &mut cursor, wave, Some(w), label);
            wave_rows.push(row);
            waves += 1;
        }
        for e in entries.iter().filter(|e| matches!(e.kind, ScheduleEntryKind::Soak | ScheduleEntryKind::Wait)) {
            let set: BTreeSet<String> = e.nodes.iter().cloned().collect();
            let row = wave_rows
                .iter()
                .find(|(_, _, _, index)| e.wave.is_some() && *index == e.wave)
                .or_else(|| wave_rows.iter().find(|(_, _, nodes, _)| !set.is_empty() && *nodes == set))
                .or_else(|| {
                    wave_rows.iter().filter(|(_, end, _, _)| *end <= e.start).max_by_key(|(_, end, _, _)| *end)
                });
            if let Some((y, _, _, _)) = row {
                let class = if e.kind == ScheduleEntryKind::Soak { "bar soak" } else { "bar wait" };
                bars.push(bar(class, "", *y, e.start, e.end, e.label.clone()));
            }
        }
    }

    let plot_bottom = AXIS_HEIGHT + rows.len() as f64 * ROW_HEIGHT;
    let outside = s
        .entries
        .iter()
        .filter(|e| e.kind == ScheduleEntryKind::OutsideWindow)
        .map(|e| {
            let x = scale.x(e.start);
            Band {
                x: px(x),
                width: px((scale.x(e.end) - x).max(0.0)),
                title: format!("outside the window: {} to {}", time::minute(e.start, tz), time::minute(e.end, tz)),
            }
        })
        .collect();

    // A dated tick where each working stretch starts, plain times inside it.
    let working = scale.working();
    let working_minutes: f64 = working.iter().map(|(a, b)| seconds(*a, *b) / 60.0).sum();
    let step = tick_step_minutes(working_minutes);
    let mut ticks = Vec::new();
    let mut last_x = f64::NEG_INFINITY;
    for (a, b) in working {
        let mut t = a;
        let mut first = true;
        while t <= b {
            let x = scale.x(t);
            // Keep labels apart (a dated label is about 90 px wide); the dated tick that opens a
            // working stretch wins over plain ones before it.
            if first {
                while ticks.last().is_some_and(|(tx, dated, _): &(f64, bool, Tick)| x - tx < 95.0 && !dated) {
                    ticks.pop();
                }
                last_x = ticks.last().map_or(f64::NEG_INFINITY, |(tx, _, _)| *tx);
            }
            if x - last_x >= if first { 95.0 } else { 45.0 } {
                ticks.push((x, first, Tick { x: px(x), label: time::short(t, tz, first || step >= 1440) }));
                last_x = x;
            }
            first = false;
            match t.checked_add(jiff::SignedDuration::from_mins(step)) {
                Ok(next) => t = next,
                Err(_) => break,
            }
        }
    }

    Gantt {
        width: px(LABEL_WIDTH + PLOT_WIDTH + 20.0),
        height: px(plot_bottom + 10.0),
        plot_left: px(LABEL_WIDTH),
        plot_top: px(AXIS_HEIGHT),
        plot_bottom: px(plot_bottom),
        plot_height: px(plot_bottom - AXIS_HEIGHT),
        tick_top: px(AXIS_HEIGHT - 6.0),
        tick_label_y: px(AXIS_HEIGHT - 10.0),
        rows,
        bars,
        outside,
        ticks: ticks.into_iter().map(|(_, _, t)| t).collect(),
        waves,
    }
}

fn span(entries: &[&&stepstone_core::plan::ScheduleEntry]) -> Option<(Timestamp, Timestamp)> {
    entries.iter().fold(None, |acc, e| {
        Some(acc.map_or((e.start, e.end), |(a, b): (Timestamp, Timestamp)| (a.min(e.start), b.max(e.end))))
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn joined(values: BTreeSet<String>) -> String {
    values.into_iter().collect::<Vec<_>>().join(", ")
}

fn generations(plan: &Plan, inventory: Option<&Inventory>) -> Vec<GenerationRow> {
    if let Some(inv) = inventory {
        return inv
            .generations()
            .into_iter()
            .map(|(g, nodes)| GenerationRow {
                generation: g.to_string(),
                nodes: nodes.len(),
                control_plane: nodes.iter().filter(|n| n.is_control_plane()).count(),
                workers: nodes.iter().filter(|n| !n.is_control_plane()).count(),
                os_images: joined(nodes.iter().map(|n| n.os_image.clone()).collect()),
                kernels: joined(nodes.iter().map(|n| n.kernel_version.clone()).collect()),
                runtimes: joined(nodes.iter().map(|n| n.container_runtime.clone()).collect()),
                kubelets: joined(nodes.iter().map(|n| n.kubelet_version.to_string()).collect()),
                cgroups: joined(
                    nodes
                        .iter()
                        .map(|n| n.cgroup.map_or("unknown".to_string(), |c| format!("{c:?}").to_lowercase()))
                        .collect(),
                ),
            })
            .collect();
    }
    // Without the inventory, the plan's first hop still names every node and its generation.
    let mut by_gen: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    if let Some(hop) = plan.hops.first() {
        for s in &hop.control_plane {
            by_gen.entry(s.generation.clone()).or_default().0.insert(s.node.clone());
        }
        for w in &hop.waves {
            by_gen.entry(w.generation.clone()).or_default().1.extend(w.nodes.iter().cloned());
        }
    }
    by_gen
        .into_iter()
        .map(|(g, (cp, workers))| GenerationRow {
            generation: g,
            nodes: cp.len() + workers.len(),
            control_plane: cp.len(),
            workers: workers.len(),
            os_images: String::new(),
            kernels: String::new(),
            runtimes: String::new(),
            kubelets: String::new(),
            cgroups: String::new(),
        })
        .collect()
}

fn summaries(waves: &[Wave]) -> Vec<WaveSummary> {
    waves
        .iter()
        .enumerate()
        .map(|(w, wave)| WaveSummary {
            number: w + 1,
            kind: if wave.kind == WaveKind::Canary { "canary" } else { "batch" }.to_string(),
            generation: wave.generation.clone(),
            nodes: wave.nodes.join(", "),
            count: wave.nodes.len(),
            reason: wave.reason.clone(),
            wait_after_minutes: wave.wait_after_minutes,
        })
        .collect()
}

pub fn report_view(plan: &Plan, inventory: Option<&Inventory>) -> Result<ReportView, RunbookError> {
    let tz = time::zone(&plan.schedule.time_zone)?;
    let s = &plan.schedule;
    let generations = generations(plan, inventory);
    let node_count = generations.iter().map(|g| g.nodes).sum();
    let control_plane_count = generations.iter().map(|g| g.control_plane).sum();
    let hops = plan
        .hops
        .iter()
        .enumerate()
        .map(|(h, hop)| HopSummary {
            number: h + 1,
            from: hop.from.to_string(),
            to: hop.to.to_string(),
            etcd: hop.etcd.clone().unwrap_or_default(),
            control_plane: hop.control_plane.iter().map(|c| c.node.clone()).collect::<Vec<_>>().join(", "),
            kubelets_first: hop.kubelets_first.join(", "),
            catch_up: summaries(&hop.before_control_plane),
            waves: summaries(&hop.waves),
        })
        .collect();
    let mut path = vec![plan.from.to_string()];
    path.extend(plan.hops.iter().map(|h| h.to.to_string()));
    let all = plan.findings.iter().chain(&plan.blockers);
    Ok(ReportView {
        cluster: plan.cluster.clone(),
        from: plan.from.to_string(),
        to: plan.to.to_string(),
        path: path.join(" → "),
        strategy: format!("{:?}", plan.policy.strategy).to_lowercase(),
        node_count,
        control_plane_count,
        worker_count: node_count - control_plane_count,
        start: time::minute(s.start, &tz),
        finish: time::minute(s.finish, &tz),
        time_zone: s.time_zone.clone(),
        makespan: time::duration(s.makespan_minutes),
        lower_bound: time::duration(s.lower_bound_minutes),
        efficiency_percent: (s.lower_bound_minutes * 100).checked_div(s.makespan_minutes).unwrap_or(100),
        warnings: s.warnings.clone(),
        findings: plan.findings.iter().map(FindingView::from).collect(),
        blockers: plan.blockers.iter().map(FindingView::from).collect(),
        errors: all.filter(|f| f.severity == stepstone_core::findings::Severity::Error).count(),
        generations_from_inventory: inventory.is_some(),
        generations,
        hops,
        gantt: gantt(plan, &tz),
    })
}

/// The self-contained HTML report.
pub fn html_report(plan: &Plan, inventory: Option<&Inventory>, templates: &Templates) -> Result<String, RunbookError> {
    templates.render("report.html", &report_view(plan, inventory)?)
}
