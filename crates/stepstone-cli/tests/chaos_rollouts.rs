//! Chaos on the lab: `stepstone rollout --node-ops lab --yes` on fresh small labs under random
//! API faults (5xx, 429, latency, dropped watches) and node faults (a kubelet that never returns
//! from its restart, a node rebooted in the middle of its drain). After each run, from the lab's
//! state and a sampler: no budget below its desired healthy pods through the rollout's doing, no
//! node left cordoned that the report does not name, and an exit code that agrees with the
//! journal (0 and complete on the target, or 1 (or 3, the API server kept failing) and halted
//! with a reason and a report).
//!
//! Each run prints one line: its number and seed, how it ended and, for a halt, the category of
//! the journal's reason; the totals follow, by category and by the faults of the run.
//!
//! The test suite runs `STEPSTONE_CHAOS_RUNS` runs (default 2), `STEPSTONE_CHAOS_JOBS` at once
//! (default 2), from run `STEPSTONE_CHAOS_FROM` (default 0, so a stopped campaign continues
//! where it ended), on a generated fleet of the shape of `examples/small.json` with
//! `STEPSTONE_CHAOS_WORKERS` workers (default 6, half the example's; 0 for the example itself),
//! at lab speed `STEPSTONE_CHAOS_SPEED` (default 300);
//! `scripts/chaos-rollouts N` runs a campaign.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{CONSENT, SMALL, TestLab, budgets_below, control_plane, cordoned, kubelet, name, ready, text};
use serde_json::Value;
use stepstone_core::dice::Dice;
use stepstone_fleet::FleetSpec;
use stepstone_lab::{FaultConfig, Lab, LabHandle, LabOptions};

const TARGET: &str = "v1.35.8";
/// A run that has not ended after this long (real time) is stopped and counted as hung.
const HUNG_AFTER: Duration = Duration::from_secs(900);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What each run of a campaign rolls out on, and how fast the lab's clock runs.
#[derive(Debug, Clone)]
struct Setup {
    fleet: Value,
    speed: f64,
}

impl Setup {
    fn from_env() -> Setup {
        let fleet = match env_u64("STEPSTONE_CHAOS_WORKERS", 6) {
            0 => serde_json::from_str(SMALL).unwrap(),
            n => small_fleet_with(n as usize),
        };
        let speed = std::env::var("STEPSTONE_CHAOS_SPEED").ok().and_then(|v| v.parse().ok()).unwrap_or(300.0);
        Setup { fleet, speed }
    }
}

/// The generator's `small` fleet (what `examples/small.json` was made from) with `workers`
/// workers split over its two generations, and fewer generic services to keep the same share
/// of CPU requested: a cheaper rollout with the same add-ons, showcase workloads and budgets.
fn small_fleet_with(workers: usize) -> Value {
    assert!(workers >= 4, "STEPSTONE_CHAOS_WORKERS={workers}: at least 4 (the showcase workloads spread over 3)");
    let mut spec = FleetSpec::small();
    let total: usize = spec.generations.iter().map(|g| g.count).sum();
    spec.generations[0].count = workers / 2;
    spec.generations[1].count = workers - workers / 2;
    spec.apps.services = (spec.apps.services * workers).div_ceil(total).max(1);
    stepstone_fleet::generate(&spec)
}

/// The faults of one run.
#[derive(Debug, Clone)]
struct Chaos {
    api: FaultConfig,
    /// A worker whose kubelet never returns from its restart.
    never_return: Option<String>,
    /// A worker rebooted as soon as the rollout cordons it.
    reboot_mid_drain: Option<String>,
    max_unavailable: u32,
}

impl Chaos {
    fn roll(seed: u64, workers: &[String]) -> Chaos {
        // Each run's dice come from its seed alone, so a run can be repeated.
        let mut d = Dice::new(seed);
        let api = FaultConfig {
            error_rate: *d.pick(&[0.0, 0.02, 0.05, 0.1]),
            throttle_rate: *d.pick(&[0.0, 0.02, 0.05]),
            latency_ms: *d.pick(&[0, 0, 5, 20]),
            drop_watch_rate: *d.pick(&[0.0, 0.2, 0.5]),
            ..FaultConfig::default()
        };
        let never_return = d.chance(0.25).then(|| d.pick(workers).clone());
        let reboot_mid_drain = d.chance(0.35).then(|| d.pick(workers).clone());
        Chaos { api, never_return, reboot_mid_drain, max_unavailable: *d.pick(&[1, 2, 3]) }
    }

    fn describe(&self) -> String {
        let a = &self.api;
        let mut s = format!(
            "5xx {} 429 {} latency {} ms drop-watch {} max-unavailable {}",
            a.error_rate, a.throttle_rate, a.latency_ms, a.drop_watch_rate, self.max_unavailable
        );
        if let Some(n) = &self.never_return {
            s.push_str(&format!(", never-return {n}"));
        }
        if let Some(n) = &self.reboot_mid_drain {
            s.push_str(&format!(", reboot {n} mid-drain"));
        }
        s
    }
}

/// Budgets that select a pod on `node` (their deficit may be the injected reboot's, not the
/// rollout's: a reboot is an involuntary disruption, which no budget can prevent).
fn budgets_with_pods_on(lab: &LabHandle, node: &str) -> BTreeSet<String> {
    let pods: Vec<Value> = lab
        .list("pods", None)
        .into_iter()
        .filter(|p| p.pointer("/spec/nodeName") == Some(&Value::from(node)))
        .collect();
    lab.list("poddisruptionbudgets", None)
        .iter()
        .filter(|b| {
            let ns = b["metadata"]["namespace"].as_str().unwrap_or("");
            let Some(want) = b.pointer("/spec/selector/matchLabels").and_then(Value::as_object) else {
                return false;
            };
            pods.iter().any(|p| {
                p["metadata"]["namespace"] == ns
                    && want.iter().all(|(k, v)| p.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
            })
        })
        .map(|b| format!("{}/{}", b["metadata"]["namespace"].as_str().unwrap_or(""), name(b)))
        .collect()
}

#[derive(Debug, Default)]
struct Seen {
    pdb_violations: BTreeSet<String>,
    /// Budgets below from the injected reboot (they selected a pod on the rebooted node while it
    /// was down, and have not been whole since): the reboot's, not counted.
    excused: BTreeSet<String>,
    rebooted: bool,
    samples: usize,
}

/// Samples the lab's nodes and budgets until stopped, and reboots the chosen node the first
/// time it is seen cordoned (its drain has begun).
fn sample(lab: Arc<LabHandle>, reboot: Option<String>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Seen> {
    let already_below = budgets_below(&lab);
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        // The rebooted node, until it is Ready and schedulable again.
        let mut disrupted: Option<String> = None;
        // Budgets that selected a pod on the rebooted node while it was down, until they are
        // whole again: a pod the reboot took down may be evicted (or may leave) before its
        // replacement is Ready elsewhere, and its budget is then still short from the reboot
        // though it has no pod on that node any more.
        let mut reboot_short: BTreeSet<String> = BTreeSet::new();
        while !stop.load(Ordering::SeqCst) {
            let nodes = lab.list("nodes", None);
            if let Some(target) = &reboot
                && !seen.rebooted
                && nodes.iter().any(|n| name(n) == target && cordoned(n))
            {
                seen.rebooted = lab.nodes().reboot(target).is_ok();
                disrupted = seen.rebooted.then(|| target.clone());
            }
            if let Some(node) = &disrupted {
                reboot_short.extend(budgets_with_pods_on(&lab, node));
            }
            let below: BTreeSet<String> = budgets_below(&lab).difference(&already_below).cloned().collect();
            if disrupted.is_none() {
                reboot_short.retain(|b| below.contains(b));
            }
            for b in below {
                if reboot_short.contains(&b) {
                    seen.excused.insert(b);
                } else {
                    seen.pdb_violations.insert(b);
                }
            }
            if let Some(node) = &disrupted
                && nodes.iter().any(|n| name(n) == node && ready(n) && !cordoned(n))
            {
                disrupted = None;
            }
            seen.samples += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    })
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ending {
    Completed,
    /// With the category of the journal's reason ([`halt_category`]).
    Halted(&'static str),
    Other,
}

impl Ending {
    fn describe(&self) -> String {
        match self {
            Ending::Completed => "completed".to_string(),
            Ending::Halted(category) => format!("halted [{category}]"),
            Ending::Other => "no clean end".to_string(),
        }
    }
}

/// The kind of reason a halted rollout gives in its journal, from the engine's wording.
fn halt_category(reason: &str) -> &'static str {
    let drain = reason.starts_with("drain of ");
    if drain && reason.contains("evictions in a row") {
        "drain: the API server failed an eviction 8 times in a row"
    } else if drain && reason.contains("timed out") {
        "drain: timed out"
    } else if drain && (reason.contains("cannot be evicted") || reason.contains("the API server answered")) {
        "drain: an eviction refused"
    } else if drain {
        "drain: other"
    } else if reason.starts_with("stopped on an API error") {
        "the API server failed a request through every retry"
    } else if reason.contains("did not come back Ready") {
        "a node did not come back Ready after its upgrade"
    } else if reason.contains("did not rejoin") || reason.starts_with("control-plane node") {
        "a control-plane node did not rejoin"
    } else if reason.starts_with("control-plane health gate") {
        "control-plane health gate"
    } else if reason.contains("is NotReady") {
        "trigger: an upgraded node NotReady"
    } else if reason.contains("CrashLoopBackOff") {
        "trigger: pods crash-looping"
    } else if reason.contains("ContainerCreating") {
        "trigger: pods stuck creating"
    } else if reason.contains("does not show its result") {
        "a step's result not seen in the cluster"
    } else if reason.contains("held after a rollback") {
        "a node held after a rollback"
    } else if reason.contains("etcd snapshot") {
        "etcd snapshot"
    } else {
        "other"
    }
}

struct RunResult {
    run: u64,
    seed: u64,
    ending: Ending,
    /// The journal's reason for a halt, first line.
    reason: String,
    violations: Vec<(&'static str, String)>,
    secs: f64,
    chaos: String,
    /// The run's faults as a row of the summary: 500s or not, and the node fault.
    group: String,
    excused: usize,
}

impl Chaos {
    fn group(&self) -> String {
        let errors = if self.api.error_rate > 0.0 { "500s" } else { "no 500s" };
        let node = match (&self.never_return, &self.reboot_mid_drain) {
            (Some(_), _) => "a kubelet that never returns",
            (None, Some(_)) => "a worker rebooted mid-drain",
            (None, None) => "no node fault",
        };
        format!("{errors}, {node}")
    }
}

/// The child's output, or `None` when it ran past `HUNG_AFTER` (then it is killed).
fn run_with_deadline(mut cmd: Command) -> Option<Output> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("stepstone starts");
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let began = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if began.elapsed() > HUNG_AFTER {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    status.map(|status| Output { status, stdout, stderr })
}

/// A run's own seed: its dice and the lab's fault dice come from it alone.
fn run_seed(base_seed: u64, run: u64) -> u64 {
    base_seed.wrapping_add(run.wrapping_mul(0x2545_f491_4f6c_dd1d))
}

fn one_run(run: u64, base_seed: u64, setup: &Setup) -> RunResult {
    let seed = run_seed(base_seed, run);
    let fleet = setup.fleet.clone();
    let workers: Vec<String> = fleet["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "Node" && !control_plane(i))
        .map(|n| name(n).to_string())
        .collect();
    let chaos = Chaos::roll(seed, &workers);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    // Each run's own fault dice in the lab too.
    let options =
        LabOptions { kubeconfig: Some(kubeconfig.clone()), speed: setup.speed, seed, ..LabOptions::default() };
    let lab = Arc::new(Lab::start_blocking(fleet, options).expect("the lab starts"));
    let t = TestLab { lab: lab.clone(), kubeconfig, dir };
    t.scale_redis();
    let mut api = chaos.api.clone();
    api.never_return.extend(chaos.never_return.clone());
    lab.set_faults(api).expect("the faults are valid");

    let path = |f: &str| t.path(f);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample(lab.clone(), chaos.reboot_mid_drain.clone(), stop.clone());
    let mut cmd = t.stepstone(&["rollout", "--to", "v1.35", "--node-ops", "lab", "--yes", "--canary-soak", "0"]);
    cmd.args(["--batch-wait", "0", "--max-unavailable", &chaos.max_unavailable.to_string()])
        .args(CONSENT)
        .arg("--journal")
        .arg(path("journal.json"))
        .arg("--snapshot-dir")
        .arg(path("snapshots"))
        .arg("--report")
        .arg(path("report.md"))
        .env("NO_COLOR", "1");
    let began = Instant::now();
    let out = run_with_deadline(cmd);
    let secs = began.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let seen = sampler.join().expect("the sampler ends");
    // The faults end with the run: what is read now is the lab's state, not a fault.
    lab.set_faults(FaultConfig::default()).unwrap();

    let mut violations = Vec::new();
    let nodes = lab.list("nodes", None);
    let journal: Option<Value> =
        std::fs::read_to_string(path("journal.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    let state = journal.as_ref().and_then(|j| j["state"]["state"].as_str()).unwrap_or("none").to_string();
    let report = std::fs::read_to_string(path("report.md")).unwrap_or_default();
    let reason = journal.as_ref().and_then(|j| j["state"]["reason"].as_str()).unwrap_or("").to_string();
    let ending = match out.as_ref().map(|o| o.status.code()) {
        None => {
            violations.push(("hung", format!("no end after {} s", HUNG_AFTER.as_secs())));
            Ending::Other
        }
        Some(Some(0)) => {
            if state != "complete" {
                violations.push(("exit code and journal disagree", format!("exit 0, journal {state}")));
            }
            for n in &nodes {
                if kubelet(n) != TARGET {
                    violations.push(("exit 0 short of the target", format!("{} on {}", name(n), kubelet(n))));
                }
            }
            Ending::Completed
        }
        // 1: halted by a trigger or a failed step; 3: the API server failed through every retry.
        Some(Some(code @ (1 | 3))) => {
            if state != "halted" || reason.is_empty() {
                violations.push(("exit code and journal disagree", format!("exit {code}, journal {state} {reason:?}")));
            }
            if report.is_empty() {
                violations.push(("halted without a report", format!("exit {code}, journal {state}")));
            }
            Ending::Halted(halt_category(&reason))
        }
        Some(code) => {
            let o = out.as_ref().unwrap();
            let last = text(o).lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").to_string();
            let tail: String = last.chars().take(300).collect();
            violations.push(("unexpected exit code", format!("exit {code:?}, journal {state}: {tail}")));
            Ending::Other
        }
    };
    for n in nodes.iter().filter(|n| cordoned(n)) {
        if !report.contains(name(n)) {
            violations.push(("left cordoned without a report entry", name(n).to_string()));
        }
    }
    for b in &seen.pdb_violations {
        violations.push(("PDB violated", b.clone()));
    }
    if chaos.reboot_mid_drain.is_some() && !seen.rebooted && ending == Ending::Completed {
        violations.push(("reboot fault never fired", chaos.describe()));
    }
    if seen.samples < 10 {
        violations.push(("sampler starved", format!("{} samples", seen.samples)));
    }
    let reason = reason.lines().next().unwrap_or("").chars().take(200).collect();
    RunResult {
        run,
        seed,
        ending,
        reason,
        violations,
        secs,
        chaos: chaos.describe(),
        group: chaos.group(),
        excused: seen.excused.len(),
    }
}

#[test]
fn rollouts_under_api_and_node_faults_complete_or_halt_with_a_report() {
    let runs = env_u64("STEPSTONE_CHAOS_RUNS", 2);
    let jobs = env_u64("STEPSTONE_CHAOS_JOBS", 2).clamp(1, 64);
    let base_seed = env_u64("STEPSTONE_CHAOS_SEED", 0x0c4a_0505);
    let from = env_u64("STEPSTONE_CHAOS_FROM", 0);
    let setup = Arc::new(Setup::from_env());
    let next = Arc::new(AtomicU64::new(from));
    let results = Arc::new(Mutex::new(Vec::new()));
    let began = Instant::now();
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let (next, results, setup) = (next.clone(), results.clone(), setup.clone());
            std::thread::spawn(move || {
                loop {
                    let run = next.fetch_add(1, Ordering::SeqCst);
                    if run >= from + runs {
                        return;
                    }
                    let r = one_run(run, base_seed, &setup);
                    println!(
                        "run {run} seed {}: {} in {:.1} s ({}){}{}",
                        r.seed,
                        r.ending.describe(),
                        r.secs,
                        r.chaos,
                        if r.reason.is_empty() { String::new() } else { format!(": {}", r.reason) },
                        if r.violations.is_empty() { String::new() } else { format!(" VIOLATIONS {:?}", r.violations) }
                    );
                    results.lock().unwrap().push(r);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a run panicked");
    }
    let results = std::mem::take(&mut *results.lock().unwrap());
    let mut endings: BTreeMap<String, usize> = BTreeMap::new();
    let mut groups: BTreeMap<(String, bool), usize> = BTreeMap::new();
    let mut by_kind: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in &results {
        *endings.entry(r.ending.describe()).or_default() += 1;
        *groups.entry((r.group.clone(), r.ending == Ending::Completed)).or_default() += 1;
        for (kind, what) in &r.violations {
            by_kind.entry(kind).or_default().push(format!("run {}: {what} [{}]", r.run, r.chaos));
        }
    }
    let excused: usize = results.iter().map(|r| r.excused).sum();
    let slowest = results.iter().map(|r| r.secs).fold(0.0, f64::max);
    let counts: Vec<String> = by_kind.iter().map(|(k, v)| format!("{k}: {}", v.len())).collect();
    let mean = results.iter().map(|r| r.secs).sum::<f64>() / results.len().max(1) as f64;
    println!("endings:");
    for (ending, n) in &endings {
        println!("  {n:5}  {ending}");
    }
    println!("by the faults of the run (completed / halted):");
    let names: BTreeSet<&String> = groups.keys().map(|(g, _)| g).collect();
    for g in names {
        let completed = groups.get(&(g.clone(), true)).copied().unwrap_or(0);
        let halted = groups.get(&(g.clone(), false)).copied().unwrap_or(0);
        println!("  {completed:5} / {halted:5}  {g}");
    }
    println!(
        "chaos rollouts: {} runs (runs {from} to {}, {jobs} at once, seed {base_seed}) in {:.0} s; violations: {}; budgets below during an injected reboot (not counted): {excused}; mean run {mean:.1} s, slowest {slowest:.1} s",
        results.len(),
        from + runs - 1,
        began.elapsed().as_secs_f64(),
        if counts.is_empty() { "none".to_string() } else { counts.join(", ") },
    );
    assert_eq!(results.len() as u64, runs);
    assert!(by_kind.is_empty(), "{by_kind:#?}");
}

#[test]
fn halt_reasons_fall_in_their_categories() {
    let cases = [
        (
            "drain of w-01 stopped short:\nnode/w-01: not drained: some pods cannot be evicted\n  - prod/web-1: the API server answered 500 to 8 evictions in a row, the last: x",
            "drain: the API server failed an eviction 8 times in a row",
        ),
        ("drain of w-01 stopped short:\nnode/w-01: not drained: timed out after 30s", "drain: timed out"),
        (
            "stopped on an API error: GET http://x failed 8 times in a row",
            "the API server failed a request through every retry",
        ),
        (
            "wave 2 failed on w-03: did not come back Ready on v1.35.8 in time",
            "a node did not come back Ready after its upgrade",
        ),
        (
            "upgraded node w-03 is NotReady: check its kubelet (journalctl -u kubelet)",
            "trigger: an upgraded node NotReady",
        ),
        ("something new", "other"),
    ];
    for (reason, category) in cases {
        assert_eq!(halt_category(reason), category, "{reason}");
    }
}

#[test]
fn a_smaller_fleet_keeps_the_showcase_and_its_budgets() {
    let fleet = small_fleet_with(6);
    let items = fleet["items"].as_array().unwrap();
    let nodes: Vec<&Value> = items.iter().filter(|i| i["kind"] == "Node").collect();
    assert_eq!(nodes.iter().filter(|n| !control_plane(n)).count(), 6);
    assert_eq!(nodes.iter().filter(|n| control_plane(n)).count(), 3);
    let small: Value = serde_json::from_str(SMALL).unwrap();
    let budgets = |f: &Value| -> BTreeSet<String> {
        f["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "PodDisruptionBudget")
            .map(|b| name(b).to_string())
            .collect()
    };
    // The showcase budgets (redis, kafka, coredns, ...) are all there; only generic services go.
    for b in ["redis-pdb", "kafka", "coredns", "web"] {
        assert!(budgets(&fleet).contains(b), "{b}");
    }
    assert!(budgets(&fleet).is_subset(&budgets(&small)));
}

#[test]
fn the_dice_are_repeatable_and_cover_every_fault() {
    let workers: Vec<String> = (1..=12).map(|i| format!("w-{i:02}")).collect();
    let rolls: Vec<Chaos> = (0..200).map(|s| Chaos::roll(s, &workers)).collect();
    assert_eq!(Chaos::roll(7, &workers).describe(), Chaos::roll(7, &workers).describe());
    assert!(rolls.iter().any(|c| c.api.error_rate > 0.0));
    assert!(rolls.iter().any(|c| c.api.throttle_rate > 0.0));
    assert!(rolls.iter().any(|c| c.api.latency_ms > 0));
    assert!(rolls.iter().any(|c| c.api.drop_watch_rate > 0.0));
    assert!(rolls.iter().any(|c| c.never_return.is_some()));
    assert!(rolls.iter().any(|c| c.reboot_mid_drain.is_some()));
    assert!(rolls.iter().any(|c| c.never_return.is_none() && c.reboot_mid_drain.is_none()));
}
