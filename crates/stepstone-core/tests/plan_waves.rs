//! The wave planner and the blockers report on hand-built fleets whose answers can be worked
//! out on paper.

mod plan_common;

use std::collections::BTreeSet;
use stepstone_core::capacity::Headroom;
use stepstone_core::inventory::Inventory;
use stepstone_core::plan::blockers::{self, BlockerOptions};
use stepstone_core::plan::limits::{BatchLimits, GenerationLimit, LimitSource};
use stepstone_core::plan::waves::TraceEvent;
use stepstone_core::plan::{self, Plan, PlanRequest, WaveBound, WaveKind, WorkerStrategy};
use stepstone_core::releases::ReleaseData;

use plan_common::FleetBuilder;

fn request(max_unavailable: u32, headroom: u32) -> PlanRequest {
    let mut r = PlanRequest::new("v1.33".parse().unwrap(), "2026-12-01T08:00:00Z".parse().unwrap());
    r.max_unavailable = BatchLimits::uniform(max_unavailable);
    r.headroom = Headroom::percent(headroom);
    r
}

fn plan(inv: &Inventory, req: &PlanRequest) -> Plan {
    plan::make_plan(inv, req, ReleaseData::embedded()).unwrap()
}

/// 20 workers of 10 CPU, each with sixteen 500m pods: 80% of CPU requested everywhere.
fn busy_fleet() -> Inventory {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1");
    let names: Vec<String> = (1..=20).map(|i| format!("r640-{i:02}")).collect();
    for n in &names {
        f.worker(n, "dell-r640", 10_000, 64, 2019);
    }
    for (i, n) in names.iter().enumerate() {
        let nodes: Vec<&str> = vec![n.as_str(); 16];
        f.deployment("prod", &format!("web{i:02}"), &nodes, 500, 256);
    }
    f.build()
}

#[test]
fn a_fleet_at_80_percent_cpu_drains_one_node_at_a_time_and_says_why() {
    let inv = busy_fleet();
    // Headroom 85%: every node can take one more 500m pod (8.5 of 10 CPU). One drained node's
    // sixteen pods fit on the nineteen others; two nodes' thirty-two do not fit on eighteen.
    let p = plan(&inv, &request(3, 85));
    let waves = &p.hops[0].waves;
    assert_eq!(waves[0].kind, WaveKind::Canary);
    let batches: Vec<_> = waves.iter().filter(|w| w.kind == WaveKind::Batch).collect();
    assert_eq!(batches.len(), 19, "{:#?}", batches.iter().map(|w| &w.nodes).collect::<Vec<_>>());
    for w in &batches {
        assert_eq!(w.nodes.len(), 1);
    }
    let first = &batches[0].reason;
    assert!(first.starts_with("capacity: 2 nodes at once would put r640-"), "{first}");
    assert!(first.ends_with(" at 90% CPU (headroom 85%)"), "{first}");
    assert_eq!(batches.last().unwrap().reason, "rest of dell-r640: 1 node left");
    // The canary moves its sixteen pods; the next node also carries one the canary left it.
    assert_eq!(waves[0].pods_moved, 16);
    assert_eq!(batches[0].pods_moved, 17);
    // Nothing is blocked: the fleet is slow to drain, not stuck.
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    // The lower bound pools all spare room (the control plane's too, ignoring its taint and
    // bin packing): that would just hold two nodes' pods, so it is below the plan.
    assert_eq!(p.schedule.lower_bound_batch_size, 2);
    assert!(p.schedule.lower_bound_minutes < p.schedule.makespan_minutes);

    // With a 95% headroom the same fleet takes the operator's limit.
    let p = plan(&inv, &request(3, 95));
    let batch = p.hops[0].waves.iter().find(|w| w.kind == WaveKind::Batch).unwrap();
    assert_eq!(batch.nodes.len(), 3);
    assert_eq!(batch.reason, "operator: --max-unavailable 3");
}

#[test]
fn control_plane_first_then_canaries_oldest_generation_first() {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1").control_plane("cp-2").control_plane("cp-3");
    for i in 1..=4 {
        f.worker(&format!("dl380-{i:02}"), "hp-dl380", 32_000, 128, 2023);
        f.worker(&format!("r640-{i:02}"), "dell-r640", 16_000, 64, 2019);
        f.worker(&format!("r740-{i:02}"), "dell-r740", 24_000, 96, 2021);
    }
    f.deployment("prod", "web", &["r640-01", "r740-02", "dl380-03", "r640-04"], 1000, 512);
    let inv = f.build();
    let p = plan(&inv, &request(2, 85));
    let hop = &p.hops[0];
    let cp: Vec<(&str, plan::ControlPlaneAction)> =
        hop.control_plane.iter().map(|s| (s.node.as_str(), s.action)).collect();
    assert_eq!(
        cp,
        vec![
            ("cp-1", plan::ControlPlaneAction::Apply),
            ("cp-2", plan::ControlPlaneAction::Node),
            ("cp-3", plan::ControlPlaneAction::Node)
        ]
    );
    let shape: Vec<(WaveKind, &str, usize)> =
        hop.waves.iter().map(|w| (w.kind, w.generation.as_str(), w.nodes.len())).collect();
    assert_eq!(
        shape,
        vec![
            (WaveKind::Canary, "dell-r640", 1),
            (WaveKind::Canary, "dell-r740", 1),
            (WaveKind::Canary, "hp-dl380", 1),
            (WaveKind::Batch, "dell-r640", 2),
            (WaveKind::Batch, "dell-r640", 1),
            (WaveKind::Batch, "dell-r740", 2),
            (WaveKind::Batch, "dell-r740", 1),
            (WaveKind::Batch, "hp-dl380", 2),
            (WaveKind::Batch, "hp-dl380", 1),
        ]
    );
    assert_eq!(hop.waves[0].wait_after_minutes, 30);
    assert_eq!(hop.waves[3].wait_after_minutes, 5);
    assert_eq!(hop.waves.last().unwrap().wait_after_minutes, 0);
    assert_eq!(p.policy.generation_order, vec!["dell-r640", "dell-r740", "hp-dl380"]);

    // An explicit order wins.
    let mut req = request(2, 85);
    req.generation_order = vec!["hp-dl380".into()];
    let p = plan(&inv, &req);
    assert_eq!(p.hops[0].waves[0].generation, "hp-dl380");
    assert_eq!(p.policy.generation_order, vec!["hp-dl380", "dell-r640", "dell-r740"]);
    req.generation_order = vec!["r650".into()];
    let e = plan::make_plan(&inv, &req, ReleaseData::embedded()).unwrap_err();
    assert!(e.to_string().contains("--generation-order names 'r650'"), "{e}");
}

#[test]
fn a_budget_with_one_disruption_serialises_evictions_in_time_not_in_failure() {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1");
    for i in 1..=6 {
        f.worker(&format!("w-{i}"), "gen", 16_000, 64, 2020);
    }
    // Four replicas on w-2 and w-5, two each; the budget lets one go at a time. Batches take
    // every k-th node of the generation (after the canary w-1: w-2, w-5, then w-3, w-6, ...).
    f.deployment("prod", "api", &["w-2", "w-2", "w-5", "w-5"], 500, 256);
    f.pdb_max_unavailable("prod", "api", 1);
    let inv = f.build();
    let mut req = request(2, 85);
    req.durations.pod_start_minutes = 3;
    let p = plan(&inv, &req);
    let batch = p.hops[0].waves.iter().find(|w| w.nodes.contains(&"w-2".to_string())).unwrap();
    assert_eq!(batch.nodes, vec!["w-2", "w-5"]);
    // Four evictions, one per pod start: three extra rounds of 3 minutes.
    assert_eq!(batch.pdb_wait_minutes, 9);
    assert!(batch.reason.contains("evictions wait on prod/api-pdb (4 rounds, +9m)"), "{}", batch.reason);
}

#[test]
fn blockers_name_the_fix_and_the_nodes_and_the_plan_keeps_blocked_nodes() {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1");
    for i in 1..=5 {
        f.worker(&format!("w-{i}"), "gen", 16_000, 64, 2020);
    }
    f.deployment("prod", "redis", &["w-1", "w-2"], 500, 256);
    f.pdb_min_available("prod", "redis", 2);
    f.deployment("prod", "solo", &["w-4"], 500, 256);
    let mut stray = f.pod("default", "debug-shell", Some("w-3"), 100, 64);
    stray.labels.insert("run".into(), "debug".into());
    f.inv.pods.push(stray);
    let inv = f.build();

    let report = blockers::analyse(&inv, &BlockerOptions::default()).report;
    let budget = report.blockers.iter().find(|b| b.finding.code == "blocker.budget").unwrap();
    assert_eq!(budget.finding.subject, "prod/redis-pdb");
    assert_eq!(budget.nodes, vec!["w-1", "w-2"]);
    assert!(budget.finding.hint.contains("scale deploy redis in prod to 3"), "{}", budget.finding.hint);
    let unmanaged = report.blockers.iter().find(|b| b.finding.code == "blocker.unmanaged").unwrap();
    assert_eq!(unmanaged.finding.subject, "default/debug-shell");
    assert_eq!(unmanaged.nodes, vec!["w-3"]);
    let solo = report.blockers.iter().find(|b| b.finding.code == "blocker.singleton").unwrap();
    assert_eq!(solo.finding.severity, stepstone_core::findings::Severity::Warning);
    assert!(solo.finding.hint.contains("--replicas=2"), "{}", solo.finding.hint);
    assert_eq!(report.summary.errors, 2);
    assert_eq!(report.summary.nodes_blocked, 3);

    let p = plan(&inv, &request(2, 85));
    let workers: Vec<&String> = p.hops[0].waves.iter().flat_map(|w| &w.nodes).collect();
    assert_eq!(workers.len(), 5, "every worker appears, blocked or not");
    let blocked: Vec<_> = p.hops[0].waves.iter().filter(|w| !w.blockers.is_empty()).collect();
    let blocked_nodes: Vec<&String> = blocked.iter().flat_map(|w| &w.nodes).collect();
    assert_eq!(blocked_nodes, vec!["w-1", "w-2", "w-3"]);
    assert!(blocked[0].blockers.contains(&"blocker.budget prod/redis-pdb".to_string()));
    assert!(blocked[0].reason.starts_with("blocked: cannot be drained until fixed: "));
    assert!(p.blockers.iter().any(|b| b.code == "blocker.budget"));
}

#[test]
fn a_pod_with_nowhere_to_go_is_found_before_the_plan_and_during_it() {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1");
    for i in 1..=3 {
        f.worker(&format!("w-{i}"), "gen", 4_000, 16, 2020);
    }
    // Three replicas that must not share a node, on three workers: none can move.
    f.deployment("prod", "zk", &["w-1", "w-2", "w-3"], 500, 256);
    f.spread("prod", "zk");
    let inv = f.build();
    let report = blockers::analyse(&inv, &BlockerOptions::default()).report;
    let nowhere: Vec<_> = report.blockers.iter().filter(|b| b.finding.code == "blocker.nowhere-to-go").collect();
    assert_eq!(nowhere.len(), 3);
    assert!(
        nowhere[0].finding.message.contains("didn't match pod anti-affinity rules"),
        "{}",
        nowhere[0].finding.message
    );
    let p = plan(&inv, &request(2, 85));
    let waves = &p.hops[0].waves;
    assert!(waves.iter().all(|w| w.kind == WaveKind::Batch && !w.blockers.is_empty()), "{waves:#?}");
    assert!(p.blockers.iter().any(|b| b.code == "blocker.nowhere-to-go"));
}

#[test]
fn skip_minors_moves_workers_only_in_the_hops_the_path_says() {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1");
    f.worker("w-1", "gen", 8_000, 32, 2020).worker("w-2", "gen", 8_000, 32, 2020);
    let inv = f.build();
    let mut req = request(2, 85);
    req.target = "v1.34".parse().unwrap();
    req.strategy = WorkerStrategy::SkipMinors;
    let p = plan(&inv, &req);
    assert_eq!(p.hops.len(), 2);
    assert!(p.hops[0].waves.is_empty());
    let moved: Vec<&String> = p.hops[1].waves.iter().flat_map(|w| &w.nodes).collect();
    assert_eq!(moved, vec!["w-1", "w-2"]);
    assert_eq!(p.hops[0].control_plane.len(), 1);
}

fn three_generations() -> Inventory {
    stepstone_fleet::generate_inventory(
        &stepstone_fleet::FleetSpec::three_generations(),
        &stepstone_core::snapshot::SnapshotOptions::default(),
    )
    .unwrap()
}

fn batches_of<'a>(p: &'a Plan, generation: &str) -> Vec<&'a plan::Wave> {
    p.hops
        .iter()
        .flat_map(|h| h.before_control_plane.iter().chain(&h.waves))
        .filter(|w| w.kind == WaveKind::Batch && w.generation == generation)
        .collect()
}

#[test]
fn without_a_limit_the_fleet_sets_one_per_generation_as_the_domain_document_rolls() {
    let inv = three_generations();
    let mut req = PlanRequest::new("v1.35".parse().unwrap(), "2026-12-01T08:00:00Z".parse().unwrap());
    req.headroom = Headroom::percent(85);
    let p = plan(&inv, &req);
    let limits = &p.policy.batch_limits;
    // The oldest generation 2 at a time, the later ones 3: 1/8 and 1/5 of 15 workers each.
    assert_eq!(p.policy.generation_order[0], "dell-r640");
    assert_eq!(limits["dell-r640"], GenerationLimit { workers: 15, limit: 2, source: LimitSource::GenerationShare });
    assert_eq!(limits["dell-r740"].limit, 3);
    assert_eq!(limits["hp-dl380"].limit, 3);
    assert_eq!(p.policy.max_unavailable, 3);
    for (generation, most) in [("dell-r640", 2), ("dell-r740", 3), ("hp-dl380", 3)] {
        let batches = batches_of(&p, generation);
        assert!(batches.iter().all(|w| w.nodes.len() <= most), "{generation}");
        assert!(batches.iter().any(|w| w.nodes.len() == most), "{generation}");
    }
    // Every wave says what decided its size; full batches name the generation share.
    let full = batches_of(&p, "dell-r640").into_iter().find(|w| w.bound == Some(WaveBound::GenerationShare)).unwrap();
    assert!(
        full.reason
            .starts_with("generation share: 2 of the 15 dell-r640 workers at once (1/8 of the oldest generation)"),
        "{}",
        full.reason
    );
    assert!(p.hops.iter().flat_map(|h| &h.waves).all(|w| w.bound.is_some()));
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["policy"]["batchLimits"]["dell-r640"]["source"], "generation-share");
    assert!(json["hops"][0]["waves"][0]["bound"] == "canary");
    // The text plan shows the limits per generation.
    let table = plan::table::render(&p);
    assert!(
        table.contains("--max-unavailable dell-r640=2 (generation share), dell-r740=3 (generation share), hp-dl380=3 (generation share)"),
        "{table}"
    );
    // Under the same limits, the plan is within 1.3 of its lower bound.
    let s = &p.schedule;
    assert!(s.lower_bound_minutes <= s.makespan_minutes);
    assert!(
        s.makespan_minutes * 10 <= s.lower_bound_minutes * 13,
        "{} vs {}",
        s.makespan_minutes,
        s.lower_bound_minutes
    );
}

#[test]
fn the_operator_limit_per_generation_wins_and_unknown_generations_are_refused() {
    let inv = three_generations();
    let mut req = PlanRequest::new("v1.35".parse().unwrap(), "2026-12-01T08:00:00Z".parse().unwrap());
    req.max_unavailable = "dell-r640=1,default=4".parse().unwrap();
    let p = plan(&inv, &req);
    assert_eq!(p.policy.batch_limits["dell-r640"].source, LimitSource::Operator);
    assert!(batches_of(&p, "dell-r640").iter().all(|w| w.nodes.len() == 1));
    let dl380 = batches_of(&p, "hp-dl380");
    assert!(dl380.iter().all(|w| w.nodes.len() <= 4));
    let limited = dl380.iter().find(|w| w.bound == Some(WaveBound::Operator)).unwrap();
    assert_eq!(limited.nodes.len(), 4);
    assert!(limited.reason.starts_with("operator: --max-unavailable 4"), "{}", limited.reason);
    assert_eq!(p.policy.batch_limits["hp-dl380"].source, LimitSource::OperatorDefault);
    let table = plan::table::render(&p);
    assert!(table.contains("--max-unavailable dell-r640=1 (--max-unavailable), "), "{table}");
    assert!(table.contains("hp-dl380=4 (--max-unavailable default)"), "{table}");

    // Only some generations named: the others take the fleet's default.
    req.max_unavailable = "hp-dl380=5".parse().unwrap();
    let p = plan(&inv, &req);
    assert_eq!(p.policy.batch_limits["hp-dl380"].limit, 5);
    assert_eq!(p.policy.batch_limits["dell-r740"].source, LimitSource::GenerationShare);

    req.max_unavailable = "dell-r650=2".parse().unwrap();
    let e = plan::make_plan(&inv, &req, ReleaseData::embedded()).unwrap_err().to_string();
    assert!(e.contains("'dell-r650'") && e.contains("dell-r640, dell-r740, hp-dl380"), "{e}");
}

/// 20 workers of one generation (1/8: 3 at a time), each running eight replicas of one
/// Deployment whose budget lets one pod go at a time.
fn crowded_budget_fleet() -> Inventory {
    one_budget_fleet(|_| 8, 500, 256)
}

/// 20 workers w-01..w-20 of one generation and one Deployment `prod/api` whose budget lets one
/// pod go at a time, with `replicas_on(node)` of its pods (of `cpu` millicores and `mem_mib`) on
/// each worker.
fn one_budget_fleet(replicas_on: impl Fn(&str) -> usize, cpu: u64, mem_mib: u64) -> Inventory {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1");
    let names: Vec<String> = (1..=20).map(|i| format!("w-{i:02}")).collect();
    for n in &names {
        f.worker(n, "gen", 16_000, 64, 2020);
    }
    let nodes: Vec<&str> = names.iter().flat_map(|n| std::iter::repeat_n(n.as_str(), replicas_on(n))).collect();
    f.deployment("prod", "api", &nodes, cpu, mem_mib);
    f.pdb_max_unavailable("prod", "api", 1);
    f.build()
}

#[test]
fn a_default_batch_waits_on_its_budgets_rather_than_adding_batches() {
    let inv = crowded_budget_fleet();
    let mut req = request(1, 85);
    req.max_unavailable = BatchLimits::from_fleet();
    let p = plan(&inv, &req);
    assert_eq!(p.policy.batch_limits["gen"].limit, 3);
    let batches: Vec<_> = p.hops[0].waves.iter().filter(|w| w.kind == WaveKind::Batch).collect();
    // 19 workers after the canary hold 152 pods of one budget: 152 rounds however they are cut.
    // Batches of one node would pay 19 moves and 133 rounds, batches of three 7 moves and 145
    // rounds: one more move (20 + 5 minutes) costs more than the 12 rounds it saves.
    let sizes: Vec<usize> = batches.iter().map(|w| w.nodes.len()).collect();
    assert_eq!(sizes, [3, 3, 3, 3, 3, 3, 1], "{:?}", batches.iter().map(|w| &w.reason).collect::<Vec<_>>());
    assert!(batches.iter().all(|w| w.bound != Some(WaveBound::Budget)));
    let worker_minutes = p.policy.durations.worker_minutes();
    // Every pod is under the one budget: a round per pod, the first within the move.
    assert_eq!(batches[0].pdb_wait_minutes as u64, (batches[0].pods_moved - 1) * 2);
    assert!(batches[0].pdb_wait_minutes > worker_minutes);

    // The operator's number is taken as given too.
    let p = plan(&inv, &request(3, 85));
    let first = p.hops[0].waves.iter().find(|w| w.kind == WaveKind::Batch).unwrap();
    assert_eq!(first.nodes.len(), 3);
    assert!(first.pdb_wait_minutes > worker_minutes);
}

/// 20 workers of one generation, each with one replica of a Deployment whose budget lets one
/// pod go at a time, except w-10, which holds 30 of them.
fn one_crowded_node_fleet() -> Inventory {
    one_budget_fleet(|n| if n == "w-10" { 30 } else { 1 }, 100, 64)
}

#[test]
fn a_default_batch_leaves_out_a_node_whose_waits_outlast_one_more_batch() {
    let inv = one_crowded_node_fleet();
    let mut req = request(1, 85);
    req.max_unavailable = BatchLimits::from_fleet();
    let p = plan(&inv, &req);
    let batches: Vec<_> = p.hops[0].waves.iter().filter(|w| w.kind == WaveKind::Batch).collect();
    // The fair share is 48 pods over 7 batches, 7 rounds; w-10 alone needs 30, more than the fair
    // share plus the 12 rounds one more batch costs: it moves on its own.
    let alone = batches.iter().find(|w| w.nodes.contains(&"w-10".to_string())).unwrap();
    assert_eq!(alone.nodes, ["w-10"]);
    let stopped = batches.iter().find(|w| w.bound == Some(WaveBound::Budget)).unwrap();
    assert!(
        stopped.reason.starts_with("budget: one more node would make its evictions wait 31 rounds"),
        "{}",
        stopped.reason
    );
    assert!(stopped.reason.contains("longer than one more batch"), "{}", stopped.reason);
    // w-10 goes first in its batch (a batch always takes one node), and no other node joins it.
    assert_eq!(stopped.nodes, ["w-10"]);
    assert_eq!(stopped.pdb_wait_minutes, 29 * 2);
}

#[test]
fn waits_on_independent_budgets_overlap_and_only_one_budgets_pods_serialise() {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1");
    for i in 1..=6 {
        f.worker(&format!("w-{i}"), "gen", 16_000, 64, 2020);
    }
    // Three replicas each of two Deployments on w-2, each budget letting one pod go at a time.
    f.deployment("prod", "api", &["w-2", "w-2", "w-2"], 500, 256);
    f.pdb_max_unavailable("prod", "api", 1);
    f.deployment("prod", "web", &["w-2", "w-2", "w-2"], 500, 256);
    f.pdb_max_unavailable("prod", "web", 1);
    let inv = f.build();
    let mut req = request(1, 85);
    req.durations.pod_start_minutes = 3;
    let (p, trace) = plan::make_plan_traced(&inv, &req, ReleaseData::embedded()).unwrap();
    let wave = p.hops[0].waves.iter().find(|w| w.nodes == ["w-2"]).unwrap();
    // Six evictions under two budgets: three rounds (one pod of each budget per round), not six.
    assert_eq!(wave.pdb_wait_minutes, 6, "{}", wave.reason);
    assert!(wave.reason.contains("evictions wait on prod/api-pdb, prod/web-pdb (3 rounds, +6m)"), "{}", wave.reason);
    // Each round evicts one pod of each budget: the waits overlap.
    let start =
        trace.iter().position(|e| matches!(e, TraceEvent::WaveStart { nodes, .. } if nodes == &["w-2"])).unwrap();
    let rounds: Vec<&Vec<usize>> = trace[start..]
        .iter()
        .take_while(|e| !matches!(e, TraceEvent::WaveEnd))
        .filter_map(|e| match e {
            TraceEvent::Round { evicted } => Some(evicted),
            _ => None,
        })
        .collect();
    assert_eq!(rounds.len(), 3);
    for round in rounds {
        let apps: BTreeSet<&str> = round.iter().map(|&i| inv.pods[i].labels["app"].as_str()).collect();
        assert_eq!(round.len(), 2);
        assert_eq!(apps, BTreeSet::from(["api", "web"]));
    }
}

#[test]
fn a_control_plane_already_on_the_target_plans_only_the_kubelets_behind_it() {
    // The upgrade stopped after the control plane: every control-plane static pod and
    // control-plane kubelet on v1.35.8, the workers still on their old kubelets.
    let mut inv = three_generations();
    for c in &mut inv.components {
        if stepstone_core::progress::UPGRADED_STATIC_PODS.contains(&c.component) {
            c.tag = "v1.35.8".to_string();
            c.image = format!("registry.k8s.io/{}:v1.35.8", c.component);
        }
    }
    for n in inv.nodes.iter_mut().filter(|n| n.is_control_plane()) {
        n.kubelet_version = "v1.35.8".parse().unwrap();
    }
    let mut req = PlanRequest::new("v1.35".parse().unwrap(), "2026-12-01T08:00:00Z".parse().unwrap());
    req.headroom = Headroom::percent(85);
    let p = plan(&inv, &req);
    assert_eq!((p.from.to_string(), p.to.to_string()), ("v1.35.8".to_string(), "v1.35.8".to_string()));
    assert_eq!(p.hops.len(), 1);
    let hop = &p.hops[0];
    assert!(hop.control_plane.is_empty(), "no control-plane step: {:?}", hop.control_plane);
    let cps: BTreeSet<String> = inv.control_plane_nodes().map(|n| n.name.clone()).collect();
    assert_eq!(hop.done.iter().cloned().collect::<BTreeSet<_>>(), cps);
    // Every worker moves once, to the target, canaries first.
    let moved: Vec<&String> = hop.before_control_plane.iter().chain(&hop.waves).flat_map(|w| &w.nodes).collect();
    let workers: BTreeSet<&String> = inv.nodes.iter().filter(|n| !n.is_control_plane()).map(|n| &n.name).collect();
    assert_eq!(moved.len(), workers.len());
    assert_eq!(moved.iter().copied().collect::<BTreeSet<_>>(), workers);
    assert!(hop.before_control_plane.is_empty());
    assert_eq!(hop.waves[0].kind, WaveKind::Canary);
    assert!(p.findings.iter().any(|f| f.code == "path.kubelets-behind"), "{:?}", p.findings);
}

/// 20 workers each of an old and a new generation, and two Deployments of 60 replicas whose
/// budgets let one pod go at a time: `api` on the old workers and `db` on the new ones (three
/// pods a node), or, `spread`, each half on either generation.
fn two_crowded_generations(spread: bool) -> Inventory {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1");
    let old: Vec<String> = (1..=20).map(|i| format!("old-{i:02}")).collect();
    let new: Vec<String> = (1..=20).map(|i| format!("new-{i:02}")).collect();
    for n in &old {
        f.worker(n, "old", 16_000, 64, 2019);
    }
    for n in &new {
        f.worker(n, "new", 16_000, 64, 2023);
    }
    let three =
        |names: &[String]| -> Vec<String> { names.iter().flat_map(|n| [n.clone(), n.clone(), n.clone()]).collect() };
    let (api, db): (Vec<String>, Vec<String>) = if spread {
        let half = |names: &[String]| three(names).into_iter().step_by(2).collect::<Vec<_>>();
        let other = |names: &[String]| three(names).into_iter().skip(1).step_by(2).collect::<Vec<_>>();
        (half(&old).into_iter().chain(half(&new)).collect(), other(&old).into_iter().chain(other(&new)).collect())
    } else {
        (three(&old), three(&new))
    };
    let api: Vec<&str> = api.iter().map(String::as_str).collect();
    let db: Vec<&str> = db.iter().map(String::as_str).collect();
    f.deployment("prod", "api", &api, 100, 64);
    f.deployment("prod", "db", &db, 100, 64);
    f.pdb_max_unavailable("prod", "api", 1);
    f.pdb_max_unavailable("prod", "db", 1);
    f.build()
}

#[test]
fn budgets_crowding_one_generation_are_named_with_what_spreading_them_saves() {
    let mut req = request(1, 85);
    req.max_unavailable = BatchLimits::from_fleet();
    let crowded = plan(&two_crowded_generations(false), &req);
    let finding = crowded.findings.iter().find(|f| f.code == "plan.crowded-budgets").expect("a crowding finding");
    // Old: 3 at a time, a canary and 7 batches; new: 4 at a time, a canary and 5 batches. As
    // placed, each generation needs 60 rounds: (60 - 8 + 60 - 6) x 2 min. Spread, 30 rounds
    // each: (30 - 8 + 30 - 6) x 2 min.
    assert!(finding.message.contains("prod/api-pdb: 60 of its 60 pods on old"), "{}", finding.message);
    assert!(finding.message.contains("prod/db-pdb: 60 of its 60 pods on new"), "{}", finding.message);
    assert!(finding.message.contains("the first hop waits 212 min"), "{}", finding.message);
    assert!(
        finding
            .hint
            .contains("about 92 min instead of 212 in the first hop, up to 120 min less over the plan's 1 hops"),
        "{}",
        finding.hint
    );
    assert!(finding.hint.contains("topologyKey node.kubernetes.io/instance-type"), "{}", finding.hint);

    // With the replicas spread the finding is gone and the plan waits less by about what it said.
    let spread = plan(&two_crowded_generations(true), &req);
    assert!(spread.findings.iter().all(|f| f.code != "plan.crowded-budgets"));
    let waits = |p: &Plan| -> u32 { p.hops.iter().flat_map(|h| &h.waves).map(|w| w.pdb_wait_minutes).sum() };
    assert!(waits(&crowded) >= 212, "{}", waits(&crowded));
    assert!(waits(&spread) + 100 <= waits(&crowded), "{} then {}", waits(&crowded), waits(&spread));
}

/// Working minutes of the plan's budget waits in its first hop.
fn first_hop_waits(p: &Plan) -> u64 {
    let hop = &p.hops[0];
    hop.before_control_plane.iter().chain(&hop.waves).map(|w| u64::from(w.pdb_wait_minutes)).sum()
}

#[test]
fn the_lower_bound_counts_the_budget_rounds_no_cut_of_the_first_hop_avoids() {
    // 20 workers with eight pods each of one budget allowing one disruption; one hop, the
    // fleet's default limit (3 of the generation's 20).
    let inv = crowded_budget_fleet();
    let mut req = request(1, 85);
    req.max_unavailable = BatchLimits::from_fleet();
    let p = plan(&inv, &req);
    assert_eq!(p.hops.len(), 1);
    assert_eq!(p.policy.batch_limits["gen"].limit, 3);
    // The canary takes at most one node's 8 pods; the other 152 need 152 rounds over the
    // batches, and 19 workers at 3 a time are at least 7 batches, each with its first round
    // inside the move: (152 - 7) pod starts of 2 minutes.
    let s = &p.schedule;
    assert_eq!(s.lower_bound_budget_minutes, (152 - 7) * 2);
    assert!(first_hop_waits(&p) >= s.lower_bound_budget_minutes);
    assert!(s.makespan_minutes >= s.lower_bound_minutes, "{} < {}", s.makespan_minutes, s.lower_bound_minutes);
    // Every plan under the same limit pays it too: the operator's 1, 2 and 3 at a time.
    for m in 1..=3 {
        let q = plan(&inv, &request(m, 85));
        assert!(q.schedule.makespan_minutes >= s.lower_bound_minutes, "--max-unavailable {m}");
    }
    // The bound's parts are in the JSON and the text.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["schedule"]["lowerBoundBudgetMinutes"], 290);
    assert_eq!(json["schedule"]["lowerBoundMinutes"], s.lower_bound_minutes);
    let table = plan::table::render(&p);
    assert!(table.contains("plus 4h 50m of budget waits no plan avoids in the first hop"), "{table}");

    // A budget allowing two disruptions halves the rounds: 76, less the 7 free ones.
    let mut inv2 = inv.clone();
    inv2.pdbs[0].max_unavailable = Some(stepstone_core::inventory::IntOrPercent::Int(2));
    let p2 = plan(&inv2, &req);
    assert_eq!(p2.schedule.lower_bound_budget_minutes, (76 - 7) * 2);
    assert!(p2.schedule.makespan_minutes >= p2.schedule.lower_bound_minutes);

    // Pods not Ready take no disruption: with a quarter of them unready and the budget at 41
    // unavailable (one disruption left), 6 ready pods a node count, less one node's 6 for the
    // canary: 114 rounds, 107 paid.
    let mut inv3 = inv.clone();
    for (i, pod) in inv3.pods.iter_mut().filter(|p| p.namespace == "prod").enumerate() {
        pod.ready = i % 4 != 0;
    }
    inv3.pdbs[0].max_unavailable = Some(stepstone_core::inventory::IntOrPercent::Int(41));
    let p3 = plan(&inv3, &req);
    assert_eq!(p3.schedule.lower_bound_budget_minutes, (114 - 7) * 2);
    assert!(p3.schedule.makespan_minutes >= p3.schedule.lower_bound_minutes);

    // Pods under two budgets are never evicted: a second budget over the same pods leaves
    // nothing to count.
    let mut inv4 = inv.clone();
    let mut second = inv4.pdbs[0].clone();
    second.name = "api-pdb-2".to_string();
    inv4.pdbs.push(second);
    assert_eq!(plan(&inv4, &req).schedule.lower_bound_budget_minutes, 0);
}

/// `count` workers w-01.. of one generation with a Deployment on each, and a pod no controller
/// recreates on w-05: w-05 cannot be drained until it is dealt with.
fn one_blocked_node_fleet(count: usize) -> Inventory {
    let mut f = FleetBuilder::new("v1.32.4");
    f.control_plane("cp-1");
    let names: Vec<String> = (1..=count).map(|i| format!("w-{i:02}")).collect();
    for n in &names {
        f.worker(n, "gen", 16_000, 64, 2020);
    }
    for (i, n) in names.iter().enumerate() {
        f.deployment("prod", &format!("web{i:02}"), &[n.as_str()], 500, 256);
    }
    let stray = f.pod("default", "debug-shell", Some("w-05"), 100, 64);
    f.inv.pods.push(stray);
    f.build()
}

#[test]
fn a_node_that_cannot_be_drained_joins_the_last_batch_when_it_has_room() {
    // Nine workers, 4 at a time: the canary, a batch of 4, then the last 3 with room for w-05.
    let p = plan(&one_blocked_node_fleet(9), &request(4, 85));
    let waves = &p.hops[0].waves;
    assert_eq!(waves.len(), 3, "{waves:#?}");
    let last = &waves[2];
    assert_eq!(last.nodes.len(), 4);
    assert!(last.nodes.contains(&"w-05".to_string()));
    assert_eq!(last.blockers, ["blocker.unmanaged default/debug-shell"]);
    assert!(
        last.reason.contains("; 1 of its nodes cannot be drained until fixed: blocker.unmanaged default/debug-shell"),
        "{}",
        last.reason
    );
    assert!(waves.iter().all(|w| w.bound != Some(WaveBound::Blocked)));
    // Its movable pod is simulated with the batch: the four nodes' own Deployments (and what
    // earlier waves put there) move, the stray pod waits for its fix.
    assert!(last.pods_moved >= 4, "{}", last.pods_moved);

    // Ten workers: the batches are full, so w-05 keeps a wave of its own.
    let p = plan(&one_blocked_node_fleet(10), &request(4, 85));
    let waves = &p.hops[0].waves;
    let blocked: Vec<_> = waves.iter().filter(|w| !w.blockers.is_empty()).collect();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].nodes, ["w-05"]);
    assert_eq!(blocked[0].bound, Some(WaveBound::Blocked));
}
