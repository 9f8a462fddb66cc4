//! `stepstone rollout` end to end on the lab, through the binary: the three-generation fleet
//! to v1.35 with the cgroup v1 canary rolled back, fixed and resumed, while a sampler watches
//! every node and budget; the lock refusing a second rollout and taking over an expired one;
//! a half-upgraded control plane continued from where it is; and `kill -9` at random moments
//! followed by `rollout resume`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    CONSENT, Harness, SMALL, THREE_GENERATIONS, TestLab, budgets_below, control_plane, cordoned, kubelet, name, ready,
    text,
};
use serde_json::Value;
use stepstone_lab::LabHandle;

impl Harness {
    fn start(fleet: &str, speed: f64) -> Self {
        Harness(TestLab::start(serde_json::from_str(fleet).unwrap(), speed))
    }

    /// `stepstone rollout ...` with this lab's kubeconfig and files in the test's directory.
    fn rollout(&self, args: &[&str]) -> Command {
        let mut cmd = common::stepstone();
        cmd.arg("rollout").args(args).arg("--kubeconfig").arg(&self.kubeconfig);
        cmd.args(["--journal", &self.path("journal.json")]);
        if !matches!(args.first(), Some(&"status" | &"pause" | &"abort")) {
            cmd.args(["--snapshot-dir", &self.path("snapshots"), "--report", &self.path("report.md")]);
        }
        cmd
    }

    /// `rollout --to v1.35.0` on the lab with every consent and no soaks, which must complete;
    /// the journal it leaves.
    fn rollout_to_v1_35_0_completes(&self) -> Value {
        let mut args = vec!["--to", "v1.35.0", "--node-ops", "lab", "--yes", "--canary-soak", "0", "--batch-wait", "0"];
        args.extend(CONSENT);
        let out = self.rollout(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        self.journal()
    }

    fn assert_every_node_on_v1_35_0_and_uncordoned(&self) {
        for n in self.nodes() {
            assert_eq!(kubelet(&n), "v1.35.0", "{}", name(&n));
            assert!(!cordoned(&n), "{}", name(&n));
        }
    }
}

/// What the sampler saw.
#[derive(Debug, Default)]
struct Seen {
    /// Most workers cordoned or NotReady at one moment.
    max_workers_unavailable: usize,
    max_control_plane_unavailable: usize,
    /// Budgets seen below their desired healthy count (that were not below at the start).
    pdb_violations: BTreeSet<String>,
    /// How often each node went from schedulable to cordoned.
    cordons: BTreeMap<String, usize>,
    samples: usize,
}

/// Samples the lab's nodes and budgets in-process until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Seen {
    /// What two sampled periods saw together.
    fn merge(&mut self, other: Seen) {
        self.max_workers_unavailable = self.max_workers_unavailable.max(other.max_workers_unavailable);
        self.max_control_plane_unavailable =
            self.max_control_plane_unavailable.max(other.max_control_plane_unavailable);
        self.pdb_violations.extend(other.pdb_violations);
        for (node, count) in other.cordons {
            *self.cordons.entry(node).or_insert(0) += count;
        }
        self.samples += other.samples;
    }
}

impl Sampler {
    fn start(lab: Arc<LabHandle>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let already_below = budgets_below(&lab);
        let was_cordoned: BTreeMap<String, bool> =
            lab.list("nodes", None).iter().map(|n| (name(n).to_string(), cordoned(n))).collect();
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let mut last = was_cordoned;
            while !stop2.load(Ordering::SeqCst) {
                let nodes = lab.list("nodes", None);
                let mut s = seen2.lock().unwrap();
                let unavailable =
                    |cp: bool| nodes.iter().filter(|n| control_plane(n) == cp && (cordoned(n) || !ready(n))).count();
                s.max_workers_unavailable = s.max_workers_unavailable.max(unavailable(false));
                s.max_control_plane_unavailable = s.max_control_plane_unavailable.max(unavailable(true));
                for n in &nodes {
                    let now = cordoned(n);
                    if now && !last.get(name(n)).copied().unwrap_or(false) {
                        *s.cordons.entry(name(n).to_string()).or_insert(0) += 1;
                    }
                    last.insert(name(n).to_string(), now);
                }
                for b in budgets_below(&lab).difference(&already_below) {
                    s.pdb_violations.insert(b.clone());
                }
                s.samples += 1;
                drop(s);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Sampler { stop, seen, thread: Some(thread) }
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// How many times the plan in the journal moves each node.
fn planned_moves(journal: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for hop in journal["plan"]["hops"].as_array().unwrap() {
        let waves = hop["beforeControlPlane"].as_array().into_iter().flatten().chain(hop["waves"].as_array().unwrap());
        for w in waves {
            for n in w["nodes"].as_array().unwrap() {
                *out.entry(n.as_str().unwrap().to_string()).or_insert(0) += 1;
            }
        }
        for c in hop["controlPlane"].as_array().unwrap() {
            *out.entry(c["node"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn three_generations_reach_v1_35_with_the_cgroup_v1_canary_rolled_back_fixed_and_resumed() {
    let h = Harness::start(THREE_GENERATIONS, 1000.0);
    h.scale_redis();

    let sampler = Sampler::start(h.lab.clone());
    let mut args = vec![
        "--to",
        "v1.35",
        "--node-ops",
        "lab",
        "--yes",
        "--max-unavailable",
        "3",
        "--canary-soak",
        "1m",
        "--batch-wait",
        "0",
    ];
    args.extend(CONSENT);
    let first = h.rollout(&args).output().unwrap();
    let first_text = text(&first);
    assert_eq!(first.status.code(), Some(1), "the canary halts the rollout: {first_text}");
    assert!(first_text.contains("ROLLED BACK r640-01"), "{first_text}");
    assert!(first_text.contains("cgroup v1"), "the reason names cgroup v1: {first_text}");

    // The halt came before any other dell-r640 node was touched at this hop.
    let journal = h.journal();
    let hop1_moves: BTreeMap<String, usize> = {
        let mut j = journal.clone();
        j["plan"]["hops"] = Value::Array(vec![journal["plan"]["hops"][0].clone()]);
        planned_moves(&j)
    };
    let seen_at_halt = {
        let s = sampler.seen.lock().unwrap();
        s.cordons.clone()
    };
    for n in h.nodes() {
        let node = name(&n);
        if node.starts_with("r640-") && node != "r640-01" {
            assert!(kubelet(&n).starts_with("v1.34."), "{node} was not touched at the 1.35 hop: {}", kubelet(&n));
            assert!(!cordoned(&n), "{node} is not cordoned");
            assert_eq!(seen_at_halt.get(node), hop1_moves.get(node), "{node} cordoned only for hop 1's moves");
        }
    }
    let canary = h.nodes().into_iter().find(|n| name(n) == "r640-01").unwrap();
    assert!(cordoned(&canary) && ready(&canary), "the canary is left cordoned, Ready");
    assert!(kubelet(&canary).starts_with("v1.34."), "and back on 1.34: {}", kubelet(&canary));
    let events = h.kubectl(&[
        "get",
        "events",
        "-A",
        "--field-selector",
        "involvedObject.name=r640-01,reason=RolloutRolledBack",
        "-o",
        "json",
    ]);
    let events: Value = serde_json::from_slice(&events.stdout).expect("kubectl get events");
    assert_eq!(events["items"].as_array().map(Vec::len), Some(1), "one RolloutRolledBack event on r640-01");
    let status = h.rollout(&["status"]).output().unwrap();
    assert!(text(&status).contains("held: r640-01"), "{}", text(&status));

    let before_fix = sampler.finish();

    // The operator's fix: the dell-r640 servers move to cgroup v2, one reboot at a time (outside
    // the rollout, so outside the sampler's watch).
    let r640: Vec<String> = h.nodes().iter().map(|n| name(n).to_string()).filter(|n| n.starts_with("r640-")).collect();
    for n in &r640 {
        let out = h.run(&["lab", "node", n, "os", "refresh", "--cgroup", "v2", "--wait"]);
        assert!(out.status.success(), "{}", text(&out));
    }

    let sampler = Sampler::start(h.lab.clone());
    let resumed = h.rollout(&["resume"]).output().unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    let mut seen = sampler.finish();
    seen.merge(before_fix);

    for n in h.nodes() {
        assert_eq!(kubelet(&n), "v1.35.8", "{} reached the target", name(&n));
        assert!(!cordoned(&n), "{} is not left cordoned", name(&n));
    }
    assert!(seen.samples > 100, "the sampler ran ({} samples)", seen.samples);
    assert!(seen.pdb_violations.is_empty(), "no budget went below its desired healthy pods: {:?}", seen.pdb_violations);
    assert!(
        seen.max_workers_unavailable <= 3,
        "at most --max-unavailable workers at once: {}",
        seen.max_workers_unavailable
    );
    assert!(seen.max_control_plane_unavailable <= 1, "one control-plane node at a time");
    let moves = planned_moves(&h.journal());
    for (node, count) in &seen.cordons {
        assert!(count <= moves.get(node).unwrap_or(&0), "{node} cordoned {count} times, planned {:?}", moves.get(node));
    }
    let report = std::fs::read_to_string(h.path("report.md")).expect("the report");
    assert!(report.contains("r640-01") && report.contains("v1.35.8"), "{report}");
    assert!(report.contains("\"Kubelet version\""), "the canary's kubelet log lines are in the report: {report}");
    assert!(report.contains("cgroup v1"), "with the reason: {report}");
    assert_eq!(report.matches("left cordoned").count(), 1, "the rollback is reported once: {report}");
    html_report_renders(&PathBuf::from(h.path("report.html")));
    // Each hop's snapshot is the lab control-plane node's own, labelled for its hop, 0600.
    let journal = h.journal();
    for (hop, snap) in journal["snapshots"].as_object().expect("snapshots") {
        let label = format!("before-hop{}", hop.parse::<usize>().unwrap() + 1);
        assert_eq!(snap["metadata"]["label"], label, "{snap}");
        assert_eq!(snap["metadata"]["method"], "lab-etcdctl", "{snap}");
        let path = snap["path"].as_str().unwrap();
        assert!(path.contains(&label), "{path}");
        let mode = std::fs::metadata(path).expect("the snapshot file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}");
    }
}

/// Headless Chromium opens the HTML report: no console errors, the rollback with its reason
/// and kubelet log, the version diff.
fn html_report_renders(page: &std::path::Path) {
    let run = common::chromium(&["--dump-dom"], &format!("file://{}", page.display()));
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "chromium failed: {log}");
    let errors = common::console_errors(&log);
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let dom = String::from_utf8_lossy(&run.stdout);
    assert!(dom.contains("Rollbacks (1)") && dom.contains("<strong>r640-01</strong>"), "{dom}");
    assert!(dom.contains("cgroup v1") && dom.contains("Kubelet version"), "reason and kubelet log: {dom}");
    assert!(dom.contains("versions before and after") && dom.contains("v1.35.8"), "{dom}");
    assert!(dom.contains("<td id=\"state\">complete</td>"), "{dom}");
}

#[test]
fn a_second_rollout_is_refused_naming_the_holder_and_an_expired_lease_is_taken_over() {
    let h = Harness::start(SMALL, 300.0);
    h.scale_redis();
    let lease = |renewed: &str| {
        serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "stepstone-rollout", "namespace": "kube-system"},
            "spec": {"holderIdentity": "alice@jump-7/pid-4242", "leaseDurationSeconds": 60, "renewTime": renewed}})
    };
    let apply = |v: &Value| {
        let file = h.path("lease.json");
        std::fs::write(&file, v.to_string()).unwrap();
        let out = h.kubectl(&["apply", "-f", &file]);
        assert!(out.status.success(), "{}", text(&out));
    };
    let args = [
        "--to",
        "v1.35",
        "--node-ops",
        "lab",
        "--yes",
        "--canary-soak",
        "0",
        "--batch-wait",
        "0",
        CONSENT[0],
        CONSENT[1],
        CONSENT[2],
    ];
    let now = jiff::Timestamp::now();
    apply(&lease(&now.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string()));
    let refused = h.rollout(&args).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("alice@jump-7/pid-4242"), "the refusal names the holder: {}", text(&refused));
    assert!(h.nodes().iter().all(|n| !cordoned(n) && kubelet(n) == "v1.34.6"), "nothing was touched");

    let old = now.checked_sub(jiff::SignedDuration::from_secs(300)).unwrap();
    apply(&lease(&old.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string()));
    let taken = h.rollout(&args).output().unwrap();
    assert_eq!(taken.status.code(), Some(0), "{}", text(&taken));
    assert!(text(&taken).contains("took over the rollout lock from alice@jump-7/pid-4242"), "{}", text(&taken));
    let out =
        h.kubectl(&["get", "lease", "-n", "kube-system", "stepstone-rollout", "-o", "jsonpath={.spec.holderIdentity}"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "the lock is released at the end");
}

#[test]
fn a_half_upgraded_control_plane_is_continued_not_redone() {
    let h = Harness::start(SMALL, 300.0);
    h.scale_redis();
    // Someone upgraded cp-01 to v1.35.0 by hand and stopped: cp-02/03 are still on v1.34.6.
    lab_node(
        &h,
        &[
            vec!["cp-01", "repo", "v1.35"],
            vec!["cp-01", "install", "kubeadm=1.35.0-1.1"],
            vec!["cp-01", "kubeadm", "upgrade", "apply", "v1.35.0", "-y"],
            vec!["cp-01", "install", "kubelet=1.35.0-1.1", "kubectl=1.35.0-1.1"],
            vec!["cp-01", "restart-kubelet", "--wait"],
        ],
    );
    let journal = h.rollout_to_v1_35_0_completes();
    let records = journal["records"].as_array().unwrap();
    let phase_of = |step: &str| {
        records
            .iter()
            .filter(|r| r["step"] == step)
            .map(|r| r["phase"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let cp_steps: Vec<String> = journal["plan"]["hops"][0]["controlPlane"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c["node"], c["action"]))
        .collect();
    // The plan continues at cp-02 (`kubeadm upgrade node`); were cp-01 in it, its step is skipped.
    assert!(cp_steps.first().is_some_and(|s| s.contains("cp-02") && s.contains("node")), "{cp_steps:?}");
    assert!(phase_of("h1/cp/cp-01").iter().all(|p| p == "skipped"), "cp-01 is not upgraded again");
    assert!(phase_of("h1/cp/cp-02").contains(&"done".to_string()));
    h.assert_every_node_on_v1_35_0_and_uncordoned();
}

/// `stepstone lab node NODE ARGS...` on the harness's lab; each must succeed.
fn lab_node(h: &Harness, commands: &[Vec<&str>]) {
    for args in commands {
        let mut full = vec!["lab", "node"];
        full.extend(args);
        let out = h.run(&full);
        assert!(out.status.success(), "lab node {args:?}: {}", text(&out));
    }
}

#[test]
fn a_control_plane_already_on_the_target_moves_only_the_kubelets_behind_it() {
    let h = Harness::start(SMALL, 300.0);
    h.scale_redis();
    // The upgrade stopped after the control plane: all three on v1.35.0, cp-03's kubelet not yet.
    let mut commands = Vec::new();
    for (node, kubeadm) in [("cp-01", vec!["apply", "v1.35.0", "-y"]), ("cp-02", vec!["node"]), ("cp-03", vec!["node"])]
    {
        commands.push(vec![node, "repo", "v1.35"]);
        commands.push(vec![node, "install", "kubeadm=1.35.0-1.1"]);
        let mut upgrade = vec![node, "kubeadm", "upgrade"];
        upgrade.extend(kubeadm);
        commands.push(upgrade);
        if node != "cp-03" {
            commands.push(vec![node, "install", "kubelet=1.35.0-1.1", "kubectl=1.35.0-1.1"]);
            commands.push(vec![node, "restart-kubelet", "--wait"]);
        }
    }
    lab_node(&h, &commands);
    // `plan`, `path` and `runbook` plan the kubelets' catch-up instead of "nothing to upgrade".
    let out = h.run(&["plan", "--to", "v1.35.0", "-o", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!((doc["from"].as_str(), doc["to"].as_str()), (Some("v1.35.0"), Some("v1.35.0")), "{doc}");
    let hop = &doc["hops"][0];
    assert_eq!(hop["done"], serde_json::json!(["cp-01", "cp-02"]), "{hop}");
    let cp: Vec<(&str, &str)> = hop["controlPlane"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["node"].as_str().unwrap(), s["action"].as_str().unwrap()))
        .collect();
    assert_eq!(cp, vec![("cp-03", "node")], "only cp-03's kubelet is left on the control plane");
    let workers = h.nodes().iter().filter(|n| !control_plane(n)).count();
    let moved: usize = hop["waves"].as_array().unwrap().iter().map(|w| w["nodes"].as_array().unwrap().len()).sum();
    assert_eq!(moved, workers, "{hop}");
    for cmd in ["path", "runbook"] {
        let out = h.run(&[cmd, "--to", "v1.35.0"]);
        assert!(out.status.code().is_some_and(|c| c <= 1), "{cmd}: {}", text(&out));
        assert!(!text(&out).contains("nothing to upgrade"), "{cmd}: {}", text(&out));
    }

    let journal = h.rollout_to_v1_35_0_completes();
    let steps: BTreeSet<&str> =
        journal["records"].as_array().unwrap().iter().filter_map(|r| r["step"].as_str()).collect();
    assert!(!steps.iter().any(|s| s.contains("cp-01") || s.contains("cp-02")), "{steps:?}");
    assert!(!steps.contains("h1/etcd-snapshot") || steps.contains("h1/cp/cp-03"), "{steps:?}");
    let drained: Vec<&str> = journal["drained"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!drained.iter().any(|d| d.starts_with("cp-01@") || d.starts_with("cp-02@")), "{drained:?}");
    h.assert_every_node_on_v1_35_0_and_uncordoned();
}

#[test]
fn kill_9_at_random_moments_then_resume_completes_without_a_second_drain() {
    let trials: u64 = std::env::var("STEPSTONE_KILL_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    // A campaign picks its own kill moments from its seed; the smoke's are fixed.
    let seed: u64 = std::env::var("STEPSTONE_KILL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let mut moments = Vec::new();
    // Invariant violations of every trial by kind, and each resume's wall time.
    let mut violations: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut resume_secs = Vec::new();
    let mut completed = 0;
    for trial in 0..trials {
        let h = Harness::start(SMALL, 300.0);
        h.scale_redis();
        let sampler = Sampler::start(h.lab.clone());
        let mut child = h
            .rollout(&[
                "--to",
                "v1.35",
                "--node-ops",
                "lab",
                "--yes",
                "--canary-soak",
                "0",
                "--batch-wait",
                "0",
                "--lease-seconds",
                "5",
                CONSENT[0],
                CONSENT[1],
                CONSENT[2],
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // A different moment each trial, spread over the whole run: right after the journal
        // holds N records, N drawn from 1 to the records a full run writes (about).
        let journal = std::path::Path::new(&h.path("journal.json")).to_path_buf();
        let estimate = wait_for_journal(&journal, &mut child).map_or(FULL_RUN_RECORDS, |j| full_run_records(&j));
        let kill_at = 1 + (mix(seed ^ trial) % estimate as u64) as usize;
        let moment = kill_at_records(&journal, &mut child, kill_at);
        // A rollout that ended before its kill moment (the estimate was high) has nothing to
        // resume: its end state is still checked.
        let ended = child.try_wait().unwrap();
        child.kill().unwrap();
        let _ = child.wait();
        // Killed after the journal said complete (releasing the lock, printing the report):
        // nothing is left to resume either.
        let complete = wait_for_journal(&journal, &mut child).is_some_and(|j| j["state"]["state"] == "complete");
        let ended = ended.or_else(|| complete.then(std::process::ExitStatus::default));
        moments.push(moment.clone());
        let began = std::time::Instant::now();
        let resumed = match ended {
            Some(status) => Err(status),
            None => Ok(h.rollout(&["resume"]).output().unwrap()),
        };
        let took = began.elapsed().as_secs_f64();
        let seen = sampler.finish();
        let mut found = |kind: &'static str, what: String| {
            violations.entry(kind).or_default().push(format!("trial {trial}: {what}"));
        };
        match &resumed {
            Ok(out) if out.status.code() != Some(0) => found("not completed", text(out)),
            Ok(_) => {
                completed += 1;
                resume_secs.push(took);
            }
            Err(status) if status.code() == Some(0) => completed += 1,
            Err(status) => found("not completed", format!("the rollout ended with {status} before its kill moment")),
        }
        for n in h.nodes() {
            if kubelet(&n) != "v1.35.8" {
                found("not on the target", format!("{} on {}", name(&n), kubelet(&n)));
            }
            if cordoned(&n) {
                found("left cordoned", name(&n).to_string());
            }
        }
        for b in &seen.pdb_violations {
            found("PDB violated", b.clone());
        }
        if seen.max_workers_unavailable > 2 {
            found("over-unavailable", format!("{} workers down at once", seen.max_workers_unavailable));
        }
        for (node, count) in &seen.cordons {
            if *count != 1 {
                found("drained twice", format!("{node} cordoned (drained) {count} times"));
            }
        }
        println!("trial {trial}: killed at {moment}, resume took {took:.1} s");
    }
    let mean = resume_secs.iter().sum::<f64>() / resume_secs.len().max(1) as f64;
    let max = resume_secs.iter().copied().fold(0.0, f64::max);
    let counts: Vec<String> = violations.iter().map(|(k, v)| format!("{k}: {}", v.len())).collect();
    println!(
        "kill -9 trials: {trials}, completed: {completed}, violations: {}, resume mean {mean:.1} s, max {max:.1} s",
        if counts.is_empty() { "none".to_string() } else { counts.join(", ") }
    );
    println!("kill moments (seed {seed}): {}", moments.join(" | "));
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Records a full run of the small fleet writes when the plan is not readable yet.
const FULL_RUN_RECORDS: usize = 60;

/// About how many records a full run of the journal's plan writes: each step started and done,
/// each node's move drained, upgrading and uncordoned, the rollout's start.
fn full_run_records(journal: &Value) -> usize {
    let plan: stepstone_core::plan::Plan = match serde_json::from_value(journal["plan"].clone()) {
        Ok(plan) => plan,
        Err(_) => return FULL_RUN_RECORDS,
    };
    let steps = stepstone_exec::steps::sequence(&plan).len();
    let moves: usize = planned_moves(journal).values().sum();
    1 + 2 * steps + 3 * moves
}

/// splitmix64: a spread of kill moments from a seed, the same on every machine.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The journal once it exists and parses (it is replaced atomically), or `None` when the
/// rollout ended first.
fn wait_for_journal(path: &std::path::Path, child: &mut std::process::Child) -> Option<Value> {
    loop {
        if let Some(j) = std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()) {
            return Some(j);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait until the journal holds `n` records (or the rollout ends by itself) and say where it
/// was: `record count/n at step (phase)`.
fn kill_at_records(path: &std::path::Path, child: &mut std::process::Child, n: usize) -> String {
    let mut last = String::from("no journal");
    loop {
        if let Some(j) = std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
            let records = j["records"].as_array().cloned().unwrap_or_default();
            if let Some(r) = records.last() {
                last = format!(
                    "{}/{n} records at {} ({})",
                    records.len(),
                    r["step"].as_str().unwrap_or(""),
                    r["phase"].as_str().unwrap_or("")
                );
            }
            if records.len() >= n {
                return last;
            }
        }
        if child.try_wait().unwrap().is_some() {
            return format!("ended by itself before {n} records: {last}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
