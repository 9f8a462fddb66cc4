//! Invariants of the planner on random small fleets, checked against independent arithmetic by
//! replaying the simulator's trace: no wave breaks a disruption budget or the headroom, control-
//! plane nodes move one at a time, every worker moves once per hop, generations go oldest first,
//! and the same input gives the same plan.

mod plan_common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use stepstone_core::capacity::Headroom;
use stepstone_core::inventory::{IntOrPercent, Inventory};
use stepstone_core::plan::limits::BatchLimits;
use stepstone_core::plan::waves::TraceEvent;
use stepstone_core::plan::{self, Plan, PlanRequest, WaveKind};
use stepstone_core::releases::ReleaseData;

use plan_common::FleetBuilder;

#[derive(Debug, Clone)]
struct Spec {
    control_planes: usize,
    /// (generation index, cpu cores) per worker.
    workers: Vec<(usize, u64)>,
    /// (replicas, cpu millis, budget kind 0 none / 1 minAvailable n-1 / 2 maxUnavailable 1 /
    /// 3 minAvailable n (blocks), spread, first node offset)
    deployments: Vec<(usize, u64, u8, bool, usize)>,
    /// `--max-unavailable` for every generation; 0: none given, the fleet's default.
    max_unavailable: u32,
    headroom: u32,
    /// Share of worker CPU requested, in percent.
    utilisation: u64,
}

const GENERATIONS: [&str; 4] = ["dell-r640", "dell-r740", "hp-dl380", "hp-dl385"];

fn spec() -> impl Strategy<Value = Spec> {
    (
        1usize..=3,
        prop::collection::vec((0usize..4, 4u64..=16), 2..=27),
        prop::collection::vec((1usize..=8, 1u64..=10, 0u8..=3, any::<bool>(), 0usize..30), 1..=12),
        0u32..=4,
        70u32..=95,
        20u64..=85,
    )
        .prop_map(|(control_planes, workers, deployments, max_unavailable, headroom, utilisation)| Spec {
            control_planes,
            workers,
            deployments,
            max_unavailable,
            headroom,
            utilisation,
        })
}

fn build(spec: &Spec) -> Inventory {
    let mut f = FleetBuilder::new("v1.32.4");
    for i in 0..spec.control_planes {
        f.control_plane(&format!("cp-{}", i + 1));
    }
    let mut names = Vec::new();
    for (i, (generation, cores)) in spec.workers.iter().enumerate() {
        let g = GENERATIONS[*generation];
        let name = format!("{g}-{:02}", i + 1);
        // Older generations were bought earlier.
        f.worker(&name, g, cores * 1000, cores * 4, 2018 + *generation as i16);
        names.push(name);
    }
    f.daemonset("kube-system", "kube-proxy", 100);
    // Requests are scaled so that the deployments fill the workers to the wanted share.
    let capacity: u64 = spec.workers.iter().map(|(_, cores)| cores * 1000).sum();
    let weight: u64 = spec.deployments.iter().map(|(r, w, ..)| *r as u64 * w).sum();
    let per_weight = capacity * spec.utilisation / 100 / weight.max(1);
    let mut next = 0;
    for (d, (replicas, w, budget, spread, offset)) in spec.deployments.iter().enumerate() {
        let app = format!("app{d}");
        let nodes: Vec<&str> = (0..*replicas).map(|r| names[(next + offset + r) % names.len()].as_str()).collect();
        next += replicas;
        f.deployment("prod", &app, &nodes, (w * per_weight).max(10), 256);
        if *spread {
            f.spread("prod", &app);
        }
        match budget {
            1 => {
                f.pdb_min_available("prod", &app, *replicas as i64 - 1);
            }
            2 => {
                f.pdb_max_unavailable("prod", &app, 1);
            }
            3 => {
                f.pdb_min_available("prod", &app, *replicas as i64);
            }
            _ => {}
        }
    }
    f.build()
}

fn request(spec: &Spec) -> PlanRequest {
    let mut r = PlanRequest::new("v1.35".parse().unwrap(), "2026-12-01T08:00:00Z".parse().unwrap());
    if spec.max_unavailable > 0 {
        r.max_unavailable = BatchLimits::uniform(spec.max_unavailable);
    }
    r.headroom = Headroom::percent(spec.headroom);
    r
}

/// Disruptions a budget allows with every pod healthy, by the integer rules the fleets use.
fn allowed(inv: &Inventory) -> HashMap<stepstone_core::object_key::ObjectKey, (i64, BTreeSet<usize>)> {
    let mut out = HashMap::new();
    for b in &inv.pdbs {
        let pods: BTreeSet<usize> = inv.pods.iter().enumerate().filter(|(_, p)| b.selects(p)).map(|(i, _)| i).collect();
        let n = pods.len() as i64;
        let allowed = match (b.min_available, b.max_unavailable) {
            (Some(IntOrPercent::Int(m)), _) => n - m,
            (None, Some(IntOrPercent::Int(u))) => u,
            _ => unreachable!("the fleets use integer budgets"),
        };
        out.insert(b.key(), (allowed.max(0), pods));
    }
    out
}

fn check_trace(inv: &Inventory, plan: &Plan, trace: &[TraceEvent]) -> Result<(), TestCaseError> {
    let headroom = u64::from(plan.policy.headroom_percent);
    let mut cpu: HashMap<String, u64> = HashMap::new();
    let mut mem: HashMap<String, u64> = HashMap::new();
    let mut pods: HashMap<String, u64> = HashMap::new();
    for p in inv.pods.iter().filter(|p| !p.phase.is_finished()) {
        if let Some(n) = &p.node_name {
            *cpu.entry(n.clone()).or_default() += p.requests.cpu_millis;
            *mem.entry(n.clone()).or_default() += p.requests.memory_bytes;
            *pods.entry(n.clone()).or_default() += 1;
        }
    }
    let nodes: HashMap<&str, &stepstone_core::inventory::Node> =
        inv.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let budgets = allowed(inv);
    let mut wave: BTreeSet<String> = BTreeSet::new();
    let mut received: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let finish_wave = |received: &BTreeMap<String, (bool, bool)>,
                       cpu: &HashMap<String, u64>,
                       mem: &HashMap<String, u64>,
                       pods: &HashMap<String, u64>|
     -> Result<(), TestCaseError> {
        for (n, (got_cpu, got_mem)) in received {
            let a = nodes[n.as_str()].allocatable;
            if *got_cpu {
                prop_assert!(
                    cpu[n] * 100 <= a.cpu_millis * headroom,
                    "{n} at {} of {} millicores",
                    cpu[n],
                    a.cpu_millis
                );
            }
            if *got_mem {
                prop_assert!(mem[n] * 100 <= a.memory_bytes * headroom, "{n} memory over the headroom");
            }
            prop_assert!(pods[n] <= a.pods, "{n} has too many pods");
        }
        Ok(())
    };
    for e in trace {
        match e {
            TraceEvent::WaveStart { nodes: n, .. } => {
                wave = n.iter().cloned().collect();
                received.clear();
            }
            TraceEvent::Move { pod, from, to } => {
                let p = &inv.pods[*pod];
                prop_assert!(!wave.contains(to), "{} moved onto {to}, which is drained in the same wave", p.key());
                prop_assert!(wave.contains(from), "{} moved off {from}, which is not in the wave", p.key());
                prop_assert!(
                    !nodes[to.as_str()].is_control_plane(),
                    "{} landed on a tainted control-plane node",
                    p.key()
                );
                *cpu.get_mut(from).unwrap() -= p.requests.cpu_millis;
                *mem.get_mut(from).unwrap() -= p.requests.memory_bytes;
                *pods.get_mut(from).unwrap() -= 1;
                *cpu.entry(to.clone()).or_default() += p.requests.cpu_millis;
                *mem.entry(to.clone()).or_default() += p.requests.memory_bytes;
                *pods.entry(to.clone()).or_default() += 1;
                let r = received.entry(to.clone()).or_default();
                r.0 |= p.requests.cpu_millis > 0;
                r.1 |= p.requests.memory_bytes > 0;
            }
            TraceEvent::Round { evicted } => {
                let evicted: BTreeSet<usize> = evicted.iter().copied().collect();
                for (name, (allow, covered)) in &budgets {
                    let hit = covered.intersection(&evicted).count() as i64;
                    prop_assert!(
                        hit <= *allow,
                        "budget {name} allows {allow} but {hit} of its pods were evicted at once"
                    );
                }
            }
            TraceEvent::WaveEnd => finish_wave(&received, &cpu, &mem, &pods)?,
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn plans_are_safe_complete_ordered_and_deterministic(spec in spec()) {
        let inv = build(&spec);
        let req = request(&spec);
        let (plan, trace) = plan::make_plan_traced(&inv, &req, ReleaseData::embedded()).unwrap();

        check_trace(&inv, &plan, &trace)?;

        let cps: Vec<String> = inv.control_plane_nodes().map(|n| n.name.clone()).collect();
        let workers: BTreeSet<String> = inv.workers().map(|n| n.name.clone()).collect();
        prop_assert_eq!(plan.hops.len(), 3);
        for hop in &plan.hops {
            // Control plane: each node once, one per step, the first with `apply`.
            let steps: Vec<String> = hop.control_plane.iter().map(|s| s.node.clone()).collect();
            prop_assert_eq!(&steps, &cps);
            prop_assert!(hop.control_plane.iter().skip(1).all(|s| s.action == plan::ControlPlaneAction::Node));
            prop_assert_eq!(hop.control_plane[0].action, plan::ControlPlaneAction::Apply);
            // Workers: each exactly once per hop (lockstep), never a control-plane node.
            let mut seen = BTreeSet::new();
            for w in &hop.waves {
                prop_assert!(!w.nodes.is_empty());
                let limit = match spec.max_unavailable {
                    0 => plan.policy.batch_limits[&w.generation].limit,
                    n => n,
                };
                prop_assert!(w.nodes.len() as u32 <= limit, "wave of {} over the limit {}", w.nodes.len(), limit);
                prop_assert!(w.bound.is_some());
                for n in &w.nodes {
                    prop_assert!(seen.insert(n.clone()), "{} twice in one hop", n);
                }
                prop_assert!(!w.reason.is_empty());
            }
            prop_assert_eq!(&seen, &workers);
            // Canaries first, one per generation, in the plan's age order; then batches by generation.
            let order = &plan.policy.generation_order;
            let rank = |g: &str| order.iter().position(|x| x == g).unwrap();
            let canaries: Vec<usize> =
                hop.waves.iter().take_while(|w| w.kind == WaveKind::Canary).map(|w| rank(&w.generation)).collect();
            prop_assert!(canaries.windows(2).all(|p| p[0] < p[1]), "canaries out of order: {:?}", canaries);
            let batches: Vec<usize> = hop.waves.iter().skip(canaries.len()).map(|w| rank(&w.generation)).collect();
            prop_assert!(hop.waves.iter().skip(canaries.len()).all(|w| w.kind == WaveKind::Batch));
            prop_assert!(batches.windows(2).all(|p| p[0] <= p[1]), "generations out of order: {:?}", batches);
        }
        // Older generations (earlier creation) come first.
        let mut by_age: Vec<&str> = GENERATIONS.iter().copied().filter(|g| inv.nodes.iter().any(|n| n.generation == *g)).collect();
        by_age.sort_by_key(|g| GENERATIONS.iter().position(|x| x == g));
        prop_assert_eq!(plan.policy.generation_order.iter().map(String::as_str).collect::<Vec<_>>(), by_age);

        // Same input, same plan.
        let again = plan::make_plan(&inv, &req, ReleaseData::embedded()).unwrap();
        prop_assert_eq!(serde_json::to_string(&plan).unwrap(), serde_json::to_string(&again).unwrap());
        prop_assert!(plan.schedule.lower_bound_minutes <= plan.schedule.makespan_minutes);
    }
}

/// The default plan of `inv` keeps to its lower bound, and so does every plan under the
/// operator's `--max-unavailable m` for m up to the default's smallest limit: those plans obey
/// the default's limits too, so the bound must hold for them. The bound's budget part is
/// returned, to see that the fleets exercise it.
fn check_bound(inv: &Inventory, mut req: PlanRequest) -> Result<u64, TestCaseError> {
    req.max_unavailable = BatchLimits::from_fleet();
    let default = plan::make_plan(inv, &req, ReleaseData::embedded()).unwrap();
    let s = &default.schedule;
    prop_assert!(s.lower_bound_budget_minutes <= s.lower_bound_minutes);
    prop_assert!(
        s.makespan_minutes >= s.lower_bound_minutes,
        "default plan {} < bound {}",
        s.makespan_minutes,
        s.lower_bound_minutes
    );
    let smallest = default.policy.batch_limits.values().map(|l| l.limit).min().unwrap_or(1);
    for m in 1..=smallest {
        req.max_unavailable = BatchLimits::uniform(m);
        let limited = plan::make_plan(inv, &req, ReleaseData::embedded()).unwrap();
        prop_assert!(
            limited.schedule.makespan_minutes >= s.lower_bound_minutes,
            "--max-unavailable {m}: {} < the default plan's bound {} ({} of budget waits)",
            limited.schedule.makespan_minutes,
            s.lower_bound_minutes,
            s.lower_bound_budget_minutes
        );
    }
    Ok(s.lower_bound_budget_minutes)
}

/// A fleet whose budgets crowd generations: per Deployment (replicas, pods per node, first
/// node, budget kind 0 none / 1 maxUnavailable / 2 minAvailable, disruptions the budget
/// allows, pods not Ready), on workers of up to three generations.
#[derive(Debug, Clone)]
struct Crowded {
    workers: Vec<usize>,
    deployments: Vec<(usize, usize, usize, u8, i64, usize)>,
    overlap: bool,
    pod_start_minutes: u32,
}

fn crowded() -> impl Strategy<Value = Crowded> {
    (
        prop::collection::vec(0usize..3, 3..=30),
        prop::collection::vec((2usize..=40, 1usize..=4, 0usize..30, 0u8..=2, 1i64..=3, 0usize..=2), 1..=6),
        any::<bool>(),
        prop::sample::select(vec![2u32, 5, 30]),
    )
        .prop_map(|(workers, deployments, overlap, pod_start_minutes)| Crowded {
            workers,
            deployments,
            overlap,
            pod_start_minutes,
        })
}

fn build_crowded(c: &Crowded) -> Inventory {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1");
    let mut names = Vec::new();
    for (i, g) in c.workers.iter().enumerate() {
        let generation = GENERATIONS[*g];
        let name = format!("{generation}-{:02}", i + 1);
        f.worker(&name, generation, 32_000, 128, 2018 + *g as i16);
        names.push(name);
    }
    for (d, (replicas, per_node, first, budget, allowed, unready)) in c.deployments.iter().enumerate() {
        let app = format!("app{d}");
        let nodes: Vec<&str> = (0..*replicas).map(|r| names[(first + r / per_node) % names.len()].as_str()).collect();
        f.deployment("prod", &app, &nodes, 100, 64);
        match budget {
            1 => {
                f.pdb_max_unavailable("prod", &app, *allowed);
            }
            2 => {
                f.pdb_min_available("prod", &app, *replicas as i64 - allowed);
            }
            _ => {}
        }
        for p in f.inv.pods.iter_mut().filter(|p| p.labels.get("app") == Some(&app)).take(*unready) {
            p.ready = false;
        }
    }
    if c.overlap
        && let Some(first) = f.inv.pdbs.first()
    {
        let mut second = first.clone();
        second.name = format!("{}-second", first.name);
        f.inv.pdbs.push(second);
    }
    f.build()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The lower bound holds on the random fleets of the plan properties (capacity, anti-
    /// affinity and blocking budgets at play), with each Deployment's replicas multiplied.
    #[test]
    fn no_plan_under_the_same_limits_beats_the_lower_bound(mut spec in spec(), crowd in 1usize..=4) {
        for d in &mut spec.deployments {
            d.0 *= crowd;
        }
        check_bound(&build(&spec), request(&spec))?;
    }

    /// The lower bound holds where it counts budget waits: budgets with several pods a node in
    /// one generation, allowing one to three disruptions, with pods not Ready, a pod start
    /// shorter and longer than a batch, and pods under two budgets.
    #[test]
    fn no_plan_beats_the_lower_bound_on_crowded_budgets(c in crowded()) {
        let mut req = PlanRequest::new("v1.35".parse().unwrap(), "2026-12-01T08:00:00Z".parse().unwrap());
        req.durations.pod_start_minutes = c.pod_start_minutes;
        check_bound(&build_crowded(&c), req)?;
    }
}
