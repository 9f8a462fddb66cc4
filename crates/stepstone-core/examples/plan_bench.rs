//! Benchmark of the planner: full v1.32 -> v1.35 plans (3 hops, lockstep) of generated fleets of
//! 500 to 5,000 nodes, with wall time and peak RSS, and the plan's makespan next to the physical
//! lower bound and two naive strategies (one node at a time; fixed 20% batches as kubespray does).
//!
//! Run: `cargo run --release -p stepstone-core --example plan_bench [-- 500 1000 2000 5000]`,
//! or only the makespan table: `… --example plan_bench -- makespan [1000 5000]`, or per hop and
//! generation the plan's batches and budget waits against each hop's floor: `… -- detail 1000`,
//! or per wave its evictions, rounds and re-evictions: `… -- batches 5000`, or only the planner on a snapshot file, read once and planned `RUNS` times: `… -- snapshot
//! f.json [RUNS [OUT]]`.
//!
//! Each fleet is generated with `stepstone_fleet::FleetSpec::synthetic(nodes, 4, 0.65)`
//! and saved as an inventory file; a fresh child process loads it and plans, so the peak RSS
//! reported is that of loading an inventory and planning it, not of the fleet generator.

use std::io::{BufReader, BufWriter};
use std::process::Command;
use std::time::Instant;

#[path = "common/procstat.rs"]
mod procstat;
use procstat::cpu_seconds;

use stepstone_core::drain::{Classifier, DrainOptions};
use stepstone_core::inventory::Inventory;
use stepstone_core::pdb::BudgetTracker;
use stepstone_core::plan::limits::BatchLimits;
use stepstone_core::plan::schedule::working_minutes;
use stepstone_core::plan::{self, Hop, Plan, PlanRequest, Wave, WaveBound, WaveKind};
use stepstone_core::releases::ReleaseData;
use stepstone_core::snapshot::SnapshotOptions;
use stepstone_fleet::{self as fleet, FleetSpec};

// The allocator of the `stepstone` binary, so the planner's figures are the command's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Peak resident set size of this process, from /proc/self/status (Linux).
fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

fn generate(spec: &FleetSpec) -> Inventory {
    fleet::generate_inventory(spec, &SnapshotOptions::default()).expect("fleet parses")
}

fn request() -> PlanRequest {
    PlanRequest::new("v1.35".parse().expect("version"), "2026-12-01T08:00:00Z".parse().expect("timestamp"))
}

/// The child: load the inventory file, plan it, print one line of figures.
fn child(path: &str) {
    let file = std::fs::File::open(path).expect("inventory file");
    let inv: Inventory = serde_json::from_reader(BufReader::new(file)).expect("inventory parses");
    let loaded = rss_mib();
    let req = request();
    let t = Instant::now();
    let plan = plan::make_plan(&inv, &req, ReleaseData::embedded()).expect("plan");
    let plan_ms = t.elapsed().as_secs_f64() * 1000.0;
    let peak = peak_rss_mib();
    // The two passes over every pod that the planner borrows from the drain rules and the
    // disruption-budget arithmetic, timed on their own.
    let t = Instant::now();
    let budgets = BudgetTracker::new(&inv);
    let tracker_ms = t.elapsed().as_secs_f64() * 1000.0;
    drop(budgets);
    let opts = DrainOptions::default();
    let t = Instant::now();
    let classifier = Classifier::new(&inv, &opts);
    let evicted = inv.pods.iter().filter(|p| classifier.classify(p).is_evicted()).count();
    assert!(evicted > 0);
    let rules_ms = t.elapsed().as_secs_f64() * 1000.0;
    let waves: usize = plan.hops.iter().map(|h| h.waves.len()).sum();
    println!(
        "{} {} {} {waves} {plan_ms:.0} {tracker_ms:.0} {rules_ms:.0} {loaded:.0} {peak:.0}",
        inv.nodes.len(),
        inv.pods.len(),
        inv.pdbs.len()
    );
}

/// The same hops with the workers re-cut into waves of a fixed size (no canaries), the way a
/// naive tool runs them, ignoring capacity, budgets and hardware generations.
fn naive(plan: &Plan, size: impl Fn(usize) -> usize) -> Vec<Hop> {
    plan.hops
        .iter()
        .map(|h| {
            let mut h = h.clone();
            let workers: Vec<String> = h.waves.iter().flat_map(|w| w.nodes.clone()).collect();
            let n = size(workers.len()).max(1);
            h.waves = workers
                .chunks(n)
                .map(|c| Wave {
                    kind: WaveKind::Batch,
                    generation: String::new(),
                    nodes: c.to_vec(),
                    reason: String::new(),
                    wait_after_minutes: plan.policy.batch_wait_minutes,
                    pods_moved: 0,
                    pdb_wait_minutes: 0,
                    blockers: vec![],
                    bound: None,
                })
                .collect();
            h
        })
        .collect()
}

/// Working minutes as days, hours and minutes.
fn clock(minutes: u64) -> String {
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    if d > 0 { format!("{d}d {h}h {m:02}m") } else { format!("{h}h {m:02}m") }
}

/// One row of the makespan table: the plan at `req`'s limits against its lower bound and the
/// naive strategies.
fn compare(name: &str, inv: &Inventory, req: &PlanRequest) -> Option<String> {
    let t = Instant::now();
    let plan = plan::make_plan(inv, req, ReleaseData::embedded()).expect("plan");
    let secs = t.elapsed().as_secs_f64();
    let d = &plan.policy.durations;
    let s = &plan.schedule;
    let makespan = s.makespan_minutes as f64;
    let lower = s.lower_bound_minutes as f64;
    let workers = inv.workers().count();
    let one = working_minutes(&naive(&plan, |_| 1), d) as f64;
    let kubespray = working_minutes(&naive(&plan, |n| n.div_ceil(5)), d) as f64;
    let limits: Vec<String> = plan
        .policy
        .generation_order
        .iter()
        .filter_map(|g| plan.policy.batch_limits.get(g).map(|l| l.limit.to_string()))
        .collect();
    let waves: usize = plan.hops.iter().map(|h| h.before_control_plane.len() + h.waves.len()).sum();
    let pdb_wait: u64 = plan
        .hops
        .iter()
        .flat_map(|h| h.before_control_plane.iter().chain(&h.waves))
        .map(|w| u64::from(w.pdb_wait_minutes))
        .sum();
    let violations = budget_violations(inv, req);
    // The planner's bound counts the first hop's budget floor; the earlier tables' bound did not.
    let floor = s.lower_bound_budget_minutes;
    let batches_only = s.lower_bound_minutes - floor;
    println!(
        "| {name} ({workers} workers, {} hops) | {} | {} | {waves} | {} ({:.0} min) | {} ({:.0} min) | {floor} min | {:.2} | {batches_only} min | {:.2} | {pdb_wait} min | {} | {:.2} | {:.2} | {violations} | {secs:.2} s |",
        plan.hops.len(),
        req.max_unavailable,
        limits.join("/"),
        clock(s.makespan_minutes),
        makespan,
        clock(s.lower_bound_minutes),
        lower,
        makespan / lower,
        makespan / batches_only as f64,
        s.lower_bound_batch_size,
        one / makespan,
        kubespray / makespan,
    );
    let crowding = plan.findings.iter().find(|f| f.code == "plan.crowded-budgets")?;
    Some(format!("{name}: {}. Hint: {}", crowding.message, crowding.hint))
}

/// Per generation of `hop` (index `h` of the plan), the budget waits no plan avoids if the hop
/// starts with the pods where `placement` puts them: the planner's own
/// [`plan::waves::hop_budget_floor`], fed from the inventory's budgets and drain rules.
fn generation_floors(inv: &Inventory, plan: &Plan, h: usize, placement: &[Option<&str>]) -> Vec<(String, u64)> {
    let tracker = BudgetTracker::new(inv);
    let classifier = Classifier::new(inv, &plan.policy.drain);
    let cap = plan.schedule.lower_bound_batch_size as usize;
    let size = |g: &str| plan.policy.batch_limits.get(g).map_or(cap, |l| (l.limit as usize).min(cap));
    let relaxed = plan::waves::relaxed(&plan.hops, size, plan.policy.batch_wait_minutes);
    let allowed: Vec<i64> = (0..tracker.budgets().len()).map(|b| tracker.allowed_at(b)).collect();
    // Nodes holding a pod the drain refuses count for nothing, as in the planner.
    let held: std::collections::HashSet<&str> = inv
        .pods
        .iter()
        .filter(|p| classifier.classify(p).blocker().is_some())
        .filter_map(|p| p.node_name.as_deref())
        .collect();
    let index: std::collections::HashMap<&str, usize> =
        inv.nodes.iter().enumerate().map(|(i, n)| (n.name.as_str(), i)).collect();
    let consuming = inv.pods.iter().zip(placement).filter_map(|(pod, node)| {
        let budget = tracker.consuming_budget(pod)?;
        let node = (*node).filter(|n| !held.contains(n))?;
        classifier.classify(pod).is_evicted().then(|| (index[node], budget))
    });
    plan::waves::hop_budget_floor(
        &plan.hops[h],
        &relaxed[h],
        |name| index.get(name).copied(),
        consuming,
        &allowed,
        &plan.policy.durations,
        plan.policy.batch_wait_minutes,
    )
}

/// Where every pod is at the start of each hop, replayed from the plan's trace.
fn placement_per_hop<'a>(
    inv: &'a Inventory,
    trace: &'a [plan::waves::TraceEvent],
    hops: usize,
) -> Vec<Vec<Option<&'a str>>> {
    let mut now: Vec<Option<&str>> = inv.pods.iter().map(|p| p.node_name.as_deref()).collect();
    let mut out = vec![now.clone()];
    for event in trace {
        match event {
            plan::waves::TraceEvent::WaveStart { hop, .. } => {
                while out.len() <= *hop {
                    out.push(now.clone());
                }
            }
            plan::waves::TraceEvent::Move { pod, to, .. } => now[*pod] = Some(to.as_str()),
            _ => {}
        }
    }
    while out.len() < hops {
        out.push(now.clone());
    }
    out
}

/// Per hop and generation: the plan's batches and budget waits against the floor from the
/// placement the plan predicts at the hop's start, and the busiest budget's pods per generation.
fn makespan_detail(name: &str, inv: &Inventory, req: &PlanRequest) {
    let (plan, trace) = plan::make_plan_traced(inv, req, ReleaseData::embedded()).expect("plan");
    let placements = placement_per_hop(inv, &trace, plan.hops.len());
    println!(
        "{name}: per hop and generation: plan batches / fewest batches the limit allows [each batch's bound: {}], budget waits / floor from the placement the plan predicts at the hop's start",
        WAVE_BOUND_LETTERS.iter().map(|(b, l)| format!("{l} {}", b.label())).collect::<Vec<_>>().join(", ")
    );
    for (h, hop) in plan.hops.iter().enumerate() {
        let mut line = format!("  hop {} {}->{}:", h + 1, hop.from, hop.to);
        let (mut waits, mut floors) = (0u64, 0u64);
        let hop_floors = generation_floors(inv, &plan, h, &placements[h]);
        for g in &plan.policy.generation_order {
            let batches: Vec<&Wave> =
                hop.waves.iter().filter(|w| w.kind == WaveKind::Batch && &w.generation == g).collect();
            let wait: u64 =
                hop.waves.iter().filter(|w| &w.generation == g).map(|w| u64::from(w.pdb_wait_minutes)).sum();
            let workers: usize = batches.iter().map(|w| w.nodes.len()).sum();
            let limit = plan.policy.batch_limits.get(g).map_or(1, |l| l.limit.max(1) as usize);
            let floor = hop_floors.iter().find(|(x, _)| x == g).map_or(0, |(_, m)| *m);
            let stops: Vec<String> = batches.iter().filter_map(|w| w.bound).map(bound_letter).collect();
            line.push_str(&format!(
                " | {g}: {}/{} batches [{}], {wait}/{floor} min",
                batches.len(),
                workers.div_ceil(limit),
                stops.concat()
            ));
            waits += wait;
            floors += floor;
        }
        println!("{line} | hop: {waits}/{floors} min");
    }
}

/// One letter per wave bound in the `detail` lines, spelled out in their header.
const WAVE_BOUND_LETTERS: &[(WaveBound, &str)] = &[
    (WaveBound::Operator, "o"),
    (WaveBound::GenerationShare, "g"),
    (WaveBound::Capacity, "c"),
    (WaveBound::Budget, "B"),
    (WaveBound::RestOfGeneration, "r"),
    (WaveBound::Blocked, "x"),
    (WaveBound::Canary, "k"),
];

fn bound_letter(bound: WaveBound) -> String {
    WAVE_BOUND_LETTERS.iter().find(|(b, _)| *b == bound).map_or("?", |(_, l)| l).to_string()
}

/// Budget violations in the plan's simulation, counted from its trace with independent
/// arithmetic: an eviction round that takes more healthy pods of a budget than it allows
/// (replacements are Ready at each round's end). The property tests check headroom too.
fn budget_violations(inv: &Inventory, req: &PlanRequest) -> usize {
    let (_, trace) = plan::make_plan_traced(inv, req, ReleaseData::embedded()).expect("plan");
    let tracker = BudgetTracker::new(inv);
    // Healthy pods per budget now; each round's consumed evictions must stay within allowed.
    let mut violations = 0;
    let index: std::collections::HashMap<stepstone_core::object_key::ObjectKey, usize> =
        tracker.budgets().iter().enumerate().map(|(i, b)| (b.key(), i)).collect();
    let covering: Vec<Option<usize>> = inv
        .pods
        .iter()
        .map(|p| {
            let c = tracker.covering(p);
            (c.len() == 1 && p.ready).then(|| index[&c[0].key()])
        })
        .collect();
    for event in &trace {
        if let plan::waves::TraceEvent::Round { evicted } = event {
            let mut per: std::collections::HashMap<usize, i64> = std::collections::HashMap::new();
            for &p in evicted {
                if let Some(b) = covering[p] {
                    *per.entry(b).or_default() += 1;
                }
            }
            for (b, n) in per {
                if n > tracker.budgets()[b].disruptions_allowed() {
                    violations += 1;
                }
            }
        }
    }
    violations
}

/// The makespan table of BENCHMARKS.md: every fleet at the default settings, and at the old
/// fixed `--max-unavailable 2` for comparison.
fn makespan_table(sizes: &[usize]) {
    println!(
        "| fleet | --max-unavailable | batch limit per generation, oldest first | waves | plan (working time) | lower bound | of it budget floor | plan ÷ bound | batches-only bound | plan ÷ batches-only bound | budget waits | capacity-only batch | one at a time ÷ plan | fixed 20% ÷ plan | budget violations | make_plan |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut fleets = vec![("three-generations".to_string(), generate(&FleetSpec::three_generations()))];
    for &n in sizes {
        fleets.push((format!("synthetic-{n}"), generate(&FleetSpec::synthetic(n, 4, 0.65))));
    }
    let mut notes = Vec::new();
    for (name, inv) in &fleets {
        let mut req = request();
        notes.extend(compare(name, inv, &req));
        req.max_unavailable = BatchLimits::uniform(2);
        compare(name, inv, &req);
    }
    // The same fleets with every budget's replicas spread over the generations: what the plan
    // would take if the operator spread them before the upgrade.
    for (name, inv) in fleets.iter().skip(1) {
        let mut req = request();
        req.generation_order = plan::generations::order(inv, &[]).expect("generations");
        let spread = spread_over_generations(inv);
        notes.extend(compare(&format!("{name}, replicas spread"), &spread, &req));
    }
    println!();
    for note in notes {
        println!("{note}");
    }
}

/// `inv` with the workers' generations dealt out in turn (worker i, in name order, gets the
/// generation of the i-th worker in a round-robin over the generations), so that replicas
/// placed on neighbouring nodes end up in different generations. Nodes, pods and capacities stay
/// as they are; each generation keeps its number of workers.
fn spread_over_generations(inv: &Inventory) -> Inventory {
    let mut out = inv.clone();
    let mut workers: Vec<usize> = (0..out.nodes.len()).filter(|&i| !out.nodes[i].is_control_plane()).collect();
    workers.sort_by(|&a, &b| out.nodes[a].name.cmp(&out.nodes[b].name));
    let mut by_generation: std::collections::BTreeMap<String, std::collections::VecDeque<usize>> = Default::default();
    for &i in &workers {
        by_generation.entry(out.nodes[i].generation.clone()).or_default().push_back(i);
    }
    // Deal the generations' slots in turn, then hand them to the workers in name order.
    let mut dealt: Vec<String> = Vec::with_capacity(workers.len());
    while dealt.len() < workers.len() {
        for (g, slots) in by_generation.iter_mut() {
            if slots.pop_front().is_some() {
                dealt.push(g.clone());
            }
        }
    }
    for (&i, g) in workers.iter().zip(dealt) {
        for key in stepstone_core::inventory::DEFAULT_GENERATION_LABELS {
            if let Some(v) = out.nodes[i].labels.get_mut(*key) {
                *v = g.clone();
            }
        }
        out.nodes[i].generation = g;
    }
    out
}

/// `snapshot FILE [RUNS [OUT]]`: read a snapshot file once, then plan it `RUNS` times at the
/// defaults of `stepstone plan`, timing `make_plan` and the JSON output of its plan: the
/// planner's share of the user's command, for profiling it without the reading. The first
/// plan's JSON goes to `OUT` if given.
fn plan_snapshot(args: &[String]) {
    let path = std::path::PathBuf::from(&args[0]);
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    let t = Instant::now();
    let inv = stepstone_core::snapshot::load_paths(&[path], &SnapshotOptions::default()).expect("snapshot reads");
    println!(
        "read {} nodes, {} pods, {} budgets in {:.2} s",
        inv.nodes.len(),
        inv.pods.len(),
        inv.pdbs.len(),
        t.elapsed().as_secs_f64()
    );
    // The start `stepstone plan --start 2026-12-01T09:00` gives without a window, so the JSON
    // can be compared with the command's.
    let mut req = request();
    req.schedule = plan::schedule::ScheduleOptions::new("2026-12-01T09:00:00Z".parse().expect("timestamp"));
    for run in 0..runs {
        let (t, cpu) = (Instant::now(), cpu_seconds());
        let plan = plan::make_plan(&inv, &req, ReleaseData::embedded()).expect("plan");
        let (planned, planned_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let t = Instant::now();
        let json = serde_json::to_vec_pretty(&plan).expect("plan serialises");
        let written = t.elapsed().as_secs_f64();
        let waves: usize = plan.hops.iter().map(|h| h.waves.len()).sum();
        println!(
            "make_plan {planned:.3} s wall, {planned_cpu:.2} s CPU; JSON {written:.3} s ({} bytes), {waves} waves",
            json.len()
        );
        if run == 0
            && let Some(out) = args.get(2)
        {
            std::fs::write(out, &json).expect("plan file");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("snapshot") {
        plan_snapshot(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1]);
        return;
    }
    if args.first().map(String::as_str) == Some("batches") {
        for n in args[1..].iter().map(|a| a.parse::<usize>().expect("node count")) {
            batch_detail(&format!("synthetic-{n}"), &generate(&FleetSpec::synthetic(n, 4, 0.65)), &request());
        }
        return;
    }
    if args.first().map(String::as_str) == Some("detail") {
        for &n in args.iter().filter_map(|a| a.parse::<usize>().ok()).collect::<Vec<_>>().iter() {
            makespan_detail(&format!("synthetic-{n}"), &generate(&FleetSpec::synthetic(n, 4, 0.65)), &request());
        }
        makespan_detail("three-generations", &generate(&FleetSpec::three_generations()), &request());
        return;
    }
    if args.first().map(String::as_str) == Some("makespan") {
        let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        makespan_table(if sizes.is_empty() { &[1000, 5000] } else { &sizes });
        return;
    }
    let sizes: Vec<usize> = {
        let given: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        if given.is_empty() { vec![500, 1000, 2000, 5000] } else { given }
    };
    let exe = std::env::current_exe().expect("own path");
    let dir = std::env::temp_dir().join(format!("stepstone-plan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    println!("plan_bench: make_plan v1.32 -> v1.35 (3 hops, lockstep), --max-unavailable from the fleet, headroom 85%");
    println!(
        "{:>6} {:>8} {:>6} {:>6} {:>9} {:>8} | {:>11} {:>10} | {:>13} {:>13}",
        "nodes", "pods", "pdbs", "waves", "plan ms", "ms/node", "tracker ms", "rules ms", "loaded MiB", "peak RSS MiB"
    );
    for &n in &sizes {
        let inv = generate(&FleetSpec::synthetic(n, 4, 0.65));
        let path = dir.join(format!("inventory-{n}.json"));
        serde_json::to_writer(BufWriter::new(std::fs::File::create(&path).expect("write")), &inv).expect("serialise");
        let out = Command::new(&exe).arg("--child").arg(&path).output().expect("child runs");
        assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        println!(
            "{:>6} {:>8} {:>6} {:>6} {:>9.0} {:>8.3} | {:>11.0} {:>10.0} | {:>13.0} {:>13.0}",
            f[0],
            f[1],
            f[2],
            f[3],
            f[4],
            f[4] / f[0],
            f[5],
            f[6],
            f[7],
            f[8]
        );
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir(&dir);
    println!();
    makespan_table(&sizes[sizes.len().saturating_sub(1)..]);
}

/// Per wave of every hop: its nodes, pods evicted, eviction rounds, and how many of its evicted
/// pods had already moved earlier in the same hop (re-evictions), and where its pods landed.
fn batch_detail(name: &str, inv: &Inventory, req: &PlanRequest) {
    let (plan, trace) = plan::make_plan_traced(inv, req, ReleaseData::embedded()).expect("plan");
    let tracker = BudgetTracker::new(inv);
    let mut generation_of: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for hop in &plan.hops {
        for w in &hop.waves {
            for n in &w.nodes {
                generation_of.insert(n.as_str(), w.generation.as_str());
            }
        }
    }
    let index: std::collections::HashMap<stepstone_core::object_key::ObjectKey, usize> =
        tracker.budgets().iter().enumerate().map(|(i, b)| (b.key(), i)).collect();
    let budget_of: Vec<Option<usize>> = inv
        .pods
        .iter()
        .map(|p| {
            let c = tracker.covering(p);
            (c.len() == 1).then(|| index[&c[0].key()])
        })
        .collect();
    println!(
        "{name}: per wave: hop generation nodes | evicted re-evicted | rounds | busiest budget: evicted/re-evicted | landed on same generation not yet drained"
    );
    let mut hop_moved: std::collections::HashSet<usize> = Default::default();
    let mut drained: std::collections::HashSet<&str> = Default::default();
    let mut current_hop = usize::MAX;
    let mut wave: Option<WaveTally> = None;
    for event in &trace {
        match event {
            plan::waves::TraceEvent::WaveStart { hop, nodes } => {
                if *hop != current_hop {
                    current_hop = *hop;
                    hop_moved.clear();
                    drained.clear();
                }
                wave = Some(WaveTally {
                    hop: *hop,
                    nodes: nodes.iter().map(String::as_str).collect(),
                    ..Default::default()
                });
            }
            plan::waves::TraceEvent::Move { pod, to, .. } => {
                if let Some(w) = wave.as_mut() {
                    w.pods.push(*pod);
                    let g = w.nodes.first().and_then(|n| generation_of.get(n));
                    if g.is_some() && generation_of.get(to.as_str()) == g && !drained.contains(to.as_str()) {
                        w.same_generation += 1;
                    }
                }
            }
            plan::waves::TraceEvent::Round { .. } => {
                if let Some(w) = wave.as_mut() {
                    w.rounds += 1;
                }
            }
            plan::waves::TraceEvent::WaveEnd => {
                let Some(WaveTally { hop, nodes, pods, rounds, same_generation: same }) = wave.take() else { continue };
                let again = pods.iter().filter(|p| hop_moved.contains(p)).count();
                let mut per: std::collections::BTreeMap<usize, (usize, usize)> = Default::default();
                for &p in &pods {
                    if let Some(b) = budget_of[p] {
                        let e = per.entry(b).or_default();
                        e.0 += 1;
                        if hop_moved.contains(&p) {
                            e.1 += 1;
                        }
                    }
                }
                let busiest = per.values().max().copied().unwrap_or_default();
                let g = nodes.first().and_then(|n| generation_of.get(n)).copied().unwrap_or("-");
                if !pods.is_empty() {
                    println!(
                        "  {} {g} {} | {} {again} | {rounds} | {}/{} | {same}",
                        hop + 1,
                        nodes.len(),
                        pods.len(),
                        busiest.0,
                        busiest.1
                    );
                }
                hop_moved.extend(pods);
                drained.extend(nodes);
            }
        }
    }
}

/// One wave of the trace, counted by `batch_detail`.
#[derive(Default)]
struct WaveTally<'a> {
    hop: usize,
    nodes: Vec<&'a str>,
    pods: Vec<usize>,
    rounds: usize,
    /// Its pods placed on nodes of its generation not yet drained in the hop.
    same_generation: usize,
}
