//! Planning an upgrade: [`make_plan`] turns an inventory and a request into a [`Plan`]: the
//! path's hops, each with control-plane steps and waves of workers sized by the capacity and
//! disruption-budget simulator, the blockers with their fixes, and a calendar.
//!
//! Submodules: [`model`] (the Plan JSON contract), [`waves`] (the wave planner, on
//! [`crate::capacity`]), [`blockers`], [`generations`] (age order of hardware), [`schedule`] and [`window`]
//! (the calendar), [`table`] (the text rendering).

pub mod blockers;
pub mod generations;
pub mod limits;
pub mod model;
pub mod schedule;
pub mod table;
pub mod waves;
pub mod window;

pub use model::*;

use std::collections::BTreeMap;

use crate::addons::{self, AddonData};
use crate::capacity::{CapacityModel, Headroom};
use crate::drain::DrainOptions;
use crate::findings::{self, Finding};
use crate::inventory::Inventory;
use crate::path::{self, PathError, UpgradePath};
use crate::pdb::BudgetTracker;
use crate::releases::ReleaseData;
use crate::version::VersionRequest;

use self::blockers::{BlockerOptions, analyse_rules};
use self::schedule::{ScheduleError, ScheduleOptions};
use self::waves::{HopNodes, Planner, WavePolicy};

/// What the operator asks for.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub target: VersionRequest,
    /// Most workers drained at once, per generation; where it gives none, the fleet's default
    /// (see [`limits`]).
    pub max_unavailable: limits::BatchLimits,
    pub headroom: Headroom,
    pub canary_soak_minutes: u32,
    pub batch_wait_minutes: u32,
    pub strategy: WorkerStrategy,
    /// Hardware generations oldest first; empty: inferred.
    pub generation_order: Vec<String>,
    pub durations: Durations,
    /// The drain's overrides (`--delete-emptydir-data` and the like): what they accept is
    /// evicted and moved instead of blocking.
    pub drain: DrainOptions,
    pub schedule: ScheduleOptions,
}

impl PlanRequest {
    /// The defaults of `stepstone plan`, starting at `start`.
    pub fn new(target: VersionRequest, start: jiff::Timestamp) -> Self {
        PlanRequest {
            target,
            max_unavailable: limits::BatchLimits::from_fleet(),
            headroom: Headroom::default(),
            canary_soak_minutes: 30,
            batch_wait_minutes: 5,
            strategy: WorkerStrategy::Lockstep,
            generation_order: Vec::new(),
            durations: Durations::default(),
            drain: DrainOptions::default(),
            schedule: ScheduleOptions::new(start),
        }
    }
}

/// Why no plan could be made. Each message names the input and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Generation(#[from] generations::UnknownGeneration),
    #[error("{0}: the inventory has no nodes; check the snapshot includes `kubectl get nodes -o json` output")]
    NoNodes(String),
    #[error(
        "--max-unavailable names '{name}', which is no generation of this cluster's workers; they are: {known} (or use default=N)"
    )]
    UnknownBatchGeneration { name: String, known: String },
}

fn hop_nodes(inv: &Inventory, path: &UpgradePath) -> Vec<HopNodes> {
    let is_worker = |n: &String| inv.node(n).is_some_and(|x| !x.is_control_plane());
    path.hops
        .iter()
        .map(|h| {
            let mut before: Vec<String> =
                h.kubelets_first.iter().chain(&h.catch_up).filter(|n| is_worker(n)).cloned().collect();
            before.sort();
            before.dedup();
            HopNodes {
                from: h.from.clone(),
                to: h.to.clone(),
                etcd: h.etcd.clone(),
                control_plane: h.control_plane.clone(),
                apply_done: h.apply_done,
                done: h.done.clone(),
                kubelets_first: h.kubelets_first.clone(),
                before_control_plane: before,
                workers: h.workers.clone(),
            }
        })
        .collect()
}

/// The result of a scoped thread; its panic, if it panicked, goes on in the caller.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Plan the upgrade of `inv` as `req` asks. Pure and deterministic: the same inputs give the
/// same plan, byte for byte.
pub fn make_plan(inv: &Inventory, req: &PlanRequest, releases: &ReleaseData) -> Result<Plan, PlanError> {
    make(inv, req, releases, false).map(|(plan, _)| plan)
}

/// [`make_plan`], plus every simulated move and eviction round of the plan, for checking the
/// plan against independent arithmetic.
pub fn make_plan_traced(
    inv: &Inventory,
    req: &PlanRequest,
    releases: &ReleaseData,
) -> Result<(Plan, Vec<waves::TraceEvent>), PlanError> {
    make(inv, req, releases, true)
}

fn make(
    inv: &Inventory,
    req: &PlanRequest,
    releases: &ReleaseData,
    traced: bool,
) -> Result<(Plan, Vec<waves::TraceEvent>), PlanError> {
    if inv.nodes.is_empty() {
        return Err(PlanError::NoNodes(inv.source.clone()));
    }
    let path = path::upgrade_path(inv, &req.target, req.strategy, releases)?;
    let generation_order = generations::order(inv, &req.generation_order)?;
    // Three passes over every pod that do not depend on one another, each on its own thread:
    // the add-on check, the capacity model, and the budgets with the drain rules' analysis.
    let addon_hops = addons::hops_of(&path);
    let blocker_options = BlockerOptions { drain: req.drain.clone(), headroom: req.headroom, check_placement: false };
    let (addon_check, (model, placement), budgets, analysis) = std::thread::scope(|s| {
        let addon_check = s.spawn(|| addons::check(inv, &addon_hops, AddonData::embedded()));
        let model = s.spawn(|| CapacityModel::with_placement(&inv.nodes, &inv.pods, req.headroom));
        let budgets = BudgetTracker::new(inv);
        let analysis = analyse_rules(inv, &blocker_options, &budgets);
        (joined(addon_check), joined(model), budgets, analysis)
    });
    let hops_in = hop_nodes(inv, &path);

    let mut workers: BTreeMap<String, u32> = BTreeMap::new();
    for n in inv.nodes.iter().filter(|n| !n.is_control_plane()) {
        *workers.entry(n.generation.clone()).or_default() += 1;
    }
    if let Some(name) = req.max_unavailable.by_generation.keys().find(|g| !workers.contains_key(*g)) {
        let known: Vec<&str> = workers.keys().map(String::as_str).collect();
        return Err(PlanError::UnknownBatchGeneration { name: name.clone(), known: known.join(", ") });
    }
    let pod_start = req.durations.pod_start_minutes.max(1);
    let policy = WavePolicy {
        limits: BTreeMap::new(),
        fallback_limit: 1,
        // A default batch waits on budgets beyond its fair share only while that is quicker than
        // one more batch (a worker's move and the wait after it).
        max_budget_rounds: ((req.durations.worker_minutes() + req.batch_wait_minutes) / pod_start).max(1),
        headroom: req.headroom,
        canary_soak_minutes: req.canary_soak_minutes,
        batch_wait_minutes: req.batch_wait_minutes,
        pod_start_minutes: req.durations.pod_start_minutes,
        serialise_budgets: true,
        generation_order: generation_order.clone(),
    };
    let mut planner = Planner::new(inv, &policy, &analysis, budgets, model, &placement);
    drop(placement);
    let batch_bound = planner.capacity_batch_bound();
    let capacity_bound = u32::try_from(batch_bound).unwrap_or(u32::MAX);
    let batch_limits = limits::resolve(&req.max_unavailable, &workers, &generation_order, capacity_bound);
    let fallback_limit = req.max_unavailable.default.unwrap_or(capacity_bound).max(1);
    planner.set_limits(batch_limits.clone(), fallback_limit);
    if traced {
        planner = planner.with_trace();
    }
    let hops = planner.plan(&hops_in);
    let crowding = planner.crowding_finding(&hops, req.durations.worker_minutes());

    // The lower bound under the same limits: every batch exactly its generation's limit (never
    // above what aggregate capacity allows), no capacity stops, and of the budget waits only
    // those the first hop's placement forces on every plan.
    let size = |g: &str| batch_limits.get(g).map_or(batch_bound, |l| (l.limit as usize).min(batch_bound));
    let relaxed = waves::relaxed(&hops, size, req.batch_wait_minutes);
    let budget_floor = planner.first_hop_budget_floor(&hops, &relaxed, &req.durations);
    let lower_bound = schedule::working_minutes(&relaxed, &req.durations) + budget_floor;
    drop(relaxed);

    let mut schedule = schedule::build(&hops, &req.durations, &req.schedule, lower_bound)?;
    schedule.lower_bound_batch_size = u32::try_from(batch_bound).unwrap_or(u32::MAX);
    schedule.lower_bound_budget_minutes = budget_floor;

    let mut blockers: Vec<Finding> = analysis.report.findings();
    let known: std::collections::BTreeSet<String> = blockers.iter().map(self::blockers::reference).collect();
    for b in planner.found_blockers() {
        if !known.contains(&b.reference()) {
            blockers.push(b.finding);
        }
    }
    findings::sort(&mut blockers);
    let mut plan_findings = path.findings.clone();
    plan_findings.extend(addon_check.findings);
    plan_findings.extend(crowding);
    findings::sort(&mut plan_findings);

    let trace = planner.take_trace();
    let plan = Plan {
        cluster: inv.source.clone(),
        from: path.from.clone(),
        to: path.to.clone(),
        policy: PlanPolicy {
            max_unavailable: batch_limits.values().map(|l| l.limit).max().unwrap_or(fallback_limit),
            batch_limits,
            headroom_percent: req.headroom.as_percent(),
            canary_soak_minutes: req.canary_soak_minutes,
            batch_wait_minutes: req.batch_wait_minutes,
            strategy: req.strategy,
            generation_order,
            durations: req.durations,
            drain: req.drain.clone(),
        },
        hops,
        blockers,
        findings: plan_findings,
        addons: addon_check.addons,
        schedule,
    };
    Ok((plan, trace))
}
