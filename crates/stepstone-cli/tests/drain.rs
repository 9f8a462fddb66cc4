//! `stepstone drain` and `stepstone uncordon` as a user runs them, against the lab: exit codes,
//! the timeout report, JSON events, dry runs and bad input.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepstone_lab::{Lab, LabHandle, LabOptions};

struct TestLab {
    lab: LabHandle,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

fn node(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "creationTimestamp": "2026-01-05T09:00:00Z",
            "labels": {"kubernetes.io/hostname": name, "node.kubernetes.io/instance-type": "dell-r650"}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "15500m", "memory": "64000Mi", "pods": "110"},
            "capacity": {"cpu": "16", "memory": "65536Mi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"architecture": "amd64", "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "6.8.0-45-generic", "kubeProxyVersion": "", "kubeletVersion": "v1.34.6",
                "operatingSystem": "linux", "osImage": "Ubuntu 24.04.1 LTS"}
        }
    })
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "prod", "uid": format!("uid-{name}"), "generation": 1,
            "creationTimestamp": "2026-01-05T09:00:00Z"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 30,
                    "containers": [{"name": name, "image": format!("registry.local/{name}:1"),
                        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}]}}}
    })
}

/// Three workers; redis (2 replicas) under `minAvailable: 2`, web (3 replicas) unguarded.
fn start() -> TestLab {
    let fleet = json!({"apiVersion": "v1", "kind": "List", "items": [
        node("w1"), node("w2"), node("w3"),
        deployment("redis", 2), deployment("web", 3),
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "redis", "namespace": "prod", "uid": "uid-pdb", "generation": 1},
         "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "redis"}}}}
    ]});
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let opts = LabOptions { speed: 200.0, kubeconfig: Some(kubeconfig.clone()), ..Default::default() };
    let lab = Lab::start_blocking(fleet, opts).expect("lab starts");
    let t = TestLab { lab, kubeconfig, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.ready("redis").len() < 2 || t.ready("web").len() < 3 {
        assert!(Instant::now() < deadline, "workloads never became Ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    t
}

impl TestLab {
    /// Nodes of the Ready, non-terminating pods of `app`.
    fn ready(&self, app: &str) -> Vec<String> {
        self.lab
            .list("pods", Some("prod"))
            .into_iter()
            .filter(|p| p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app))
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .filter(|p| {
                p.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            })
            .filter_map(|p| p.pointer("/spec/nodeName").and_then(Value::as_str).map(String::from))
            .collect()
    }

    fn unschedulable(&self, node: &str) -> bool {
        self.lab.get("nodes", "", node).and_then(|n| n["spec"]["unschedulable"].as_bool()).unwrap_or(false)
    }

    fn stepstone(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_stepstone"))
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env_remove("KUBECONFIG")
            .output()
            .expect("stepstone runs")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_timeout_prints_the_report_exits_1_and_leaves_the_node_cordoned() {
    let t = start();
    let node = t.ready("redis").into_iter().min().unwrap();
    let out = t.stepstone(&["drain", &node, "--timeout", "1500ms", "--retry-interval", "100ms"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(&format!("node/{node}: not drained: timed out after")), "{stdout}");
    assert!(
        stdout.contains(
            "PodDisruptionBudget prod/redis (minAvailable 2): 2 healthy of 2 expected, needs 2, allows 0 disruption(s)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("fix: kubectl scale deploy/redis -n prod --replicas=3"), "{stdout}");
    assert!(stdout.contains(&format!("`stepstone uncordon {node}` undoes it")), "{stdout}");
    // Not a TTY: plain progress lines on stderr, naming the budget and its numbers.
    assert!(
        stderr.contains("blocked by PodDisruptionBudget prod/redis: needs 2 healthy pods and has 2 currently"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("error: not drained: {node} (timed-out)")), "{stderr}");
    assert!(t.unschedulable(&node));
    assert_eq!(t.ready("redis").len(), 2, "no redis pod was evicted");

    let out = t.stepstone(&["uncordon", &node]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("node/{node}: uncordoned")));
    assert!(!t.unschedulable(&node));
}

#[test]
fn json_events_one_per_line_then_the_report() {
    let t = start();
    // A node with web pods but no redis pod drains without waiting on the budget.
    let redis_nodes = t.ready("redis");
    let node = t.ready("web").into_iter().filter(|n| !redis_nodes.contains(n)).min().expect("a web-only node");
    let out = t.stepstone(&["drain", &node, "-o", "json", "--retry-interval", "100ms"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    let lines: Vec<Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    for want in ["cordoned", "classified", "evicting", "evicted", "gone", "replacement-ready", "drained"] {
        assert!(kinds.contains(&want), "no {want} event in {kinds:?}");
    }
    assert!(
        lines.iter().filter(|l| l.get("event").is_some()).all(|l| l["time"].is_string() && l["node"] == node.as_str())
    );
    let report = lines.last().unwrap();
    assert_eq!(report["apiVersion"], "stepstone/v1alpha1");
    assert_eq!(report["kind"], "DrainReport");
    assert_eq!(report["nodes"][0]["outcome"], "drained");
    assert!(report["nodes"][0]["evicted"].as_array().is_some_and(|e| !e.is_empty()));
    assert!(t.unschedulable(&node));
    assert_eq!(t.ready("web").len(), 3, "the replacement is Ready before the drain returns");
}

#[test]
fn dry_run_changes_nothing_and_names_what_would_wait() {
    let t = start();
    let node = t.ready("redis").into_iter().min().unwrap();
    let out = t.stepstone(&["drain", &node, "--dry-run"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains(&format!("node/{node}: dry run: would drain")), "{stdout}");
    assert!(
        stdout.contains("would wait for PodDisruptionBudget prod/redis: needs 2 healthy pods and has 2"),
        "{stdout}"
    );
    assert!(!t.unschedulable(&node), "a dry run does not cordon");
}

#[test]
fn bad_input_exits_2_and_names_the_fix() {
    let t = start();
    let out = t.stepstone(&["drain", "no-such-node"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("node no-such-node not found"), "{}", text(&out.stderr));
    let out = t.stepstone(&["drain", "w1", "--timeout", "5 minutes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown unit"), "{}", text(&out.stderr));
    let out = t.stepstone(&["drain", "w1", "--pod-selector", "app in (a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--pod-selector"), "{}", text(&out.stderr));
    assert!(!t.unschedulable("w1"), "nothing was cordoned");
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs (install the kubectl package)");
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn finalized_pod(name: &str, node: &str, grace: i64) -> String {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "prod", "finalizers": ["example.com/cleanup"]},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": grace,
            "containers": [{"name": "c", "image": "registry.local/agent:1"}]}
    })
    .to_string()
}

#[test]
fn a_pod_kept_by_its_finalizers_is_reported_by_blockers_and_drain_until_they_are_removed() {
    let t = start();
    let kc = t.kubeconfig.clone();
    for (name, node, grace) in [("stuck", "w1", 5), ("held", "w2", 36_000)] {
        let out = kubectl(&kc, &["apply", "-f", "-"], Some(&finalized_pod(name, node, grace)));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let phase = |name: &str| {
        let out = kubectl(&kc, &["get", "pod", "-n", "prod", name, "-o", "jsonpath={.status.phase}"], None);
        (out.status.success(), text(&out.stdout))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while phase("stuck").1 != "Running" || phase("held").1 != "Running" {
        assert!(Instant::now() < deadline, "the pods never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    for name in ["stuck", "held"] {
        let out = kubectl(&kc, &["delete", "pod", "-n", "prod", name, "--wait=false"], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Past its 5 s grace period the kubelet has stopped it, but the API keeps it for its finalizer.
    while phase("stuck").1 != "Failed" {
        assert!(Instant::now() < deadline, "the kubelet never stopped the pod: {:?}", phase("stuck"));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(phase("stuck"), (true, "Failed".to_string()), "the pod stays while its finalizer does");
    let listed = kubectl(&kc, &["get", "pods", "-n", "prod", "stuck"], None);
    assert!(text(&listed.stdout).contains("Terminating"), "{}", text(&listed.stdout));

    let out = t.stepstone(&["blockers"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("blocker.stuck-finalizers") && stdout.contains("prod/stuck"), "{stdout}");
    assert!(stdout.contains("kept only by its finalizers: example.com/cleanup"), "{stdout}");
    assert!(stdout.contains("the controller or operator of example.com"), "{stdout}");
    assert!(!stdout.contains("prod/held"), "a pod in its grace period is not stuck yet: {stdout}");

    // The drain stops before evicting anything and says why.
    let out = t.stepstone(&["drain", "w1", "--timeout", "20s", "--retry-interval", "100ms"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(format!("{stdout}{stderr}").contains("example.com/cleanup"), "{stdout}\n{stderr}");
    let out = t.stepstone(&["uncordon", "w1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A drain that waits on a terminating pod with finalizers says so.
    let out = t.stepstone(&["drain", "w2", "--dry-run"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("waiting for prod/held to go") && all.contains("example.com/cleanup"), "{all}");

    // Once its finalizer is removed the pod goes, as on an apiserver.
    let out = kubectl(
        &kc,
        &[
            "patch",
            "pod",
            "-n",
            "prod",
            "stuck",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers/0"}]"#,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    while phase("stuck").0 {
        assert!(Instant::now() < deadline + Duration::from_secs(10), "the pod stayed after its finalizer went");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = t.stepstone(&["blockers"]);
    assert!(!text(&out.stdout).contains("prod/stuck"), "{}", text(&out.stdout));
}
