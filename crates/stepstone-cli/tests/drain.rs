//! `stepstone drain` and `stepstone uncordon` as a user runs them, against the lab: exit codes,
//! the timeout report, JSON events, dry runs and bad input.

mod common;

use std::time::Duration;

use common::{TestLab, wait_for};
use serde_json::{Value, json};

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
    let t = TestLab::start(fleet, 200.0);
    wait_for(Duration::from_secs(20), "the workloads to become Ready", || {
        ready(&t, "redis").len() >= 2 && ready(&t, "web").len() >= 3
    });
    std::thread::sleep(Duration::from_millis(100));
    t
}

/// Nodes of the Ready, non-terminating pods of `app`.
fn ready(t: &TestLab, app: &str) -> Vec<String> {
    t.lab
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

fn unschedulable(t: &TestLab, node: &str) -> bool {
    t.lab.get("nodes", "", node).and_then(|n| n["spec"]["unschedulable"].as_bool()).unwrap_or(false)
}

#[test]
fn a_timeout_prints_the_report_exits_1_and_leaves_the_node_cordoned() {
    let t = start();
    let node = ready(&t, "redis").into_iter().min().unwrap();
    let out = t.run(&["drain", &node, "--timeout", "1500ms", "--retry-interval", "100ms"]);
    let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
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
    assert!(unschedulable(&t, &node));
    assert_eq!(ready(&t, "redis").len(), 2, "no redis pod was evicted");

    let out = t.run(&["uncordon", &node]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains(&format!("node/{node}: uncordoned")));
    assert!(!unschedulable(&t, &node));
}

#[test]
fn json_events_one_per_line_then_the_report() {
    let t = start();
    // A node with web pods but no redis pod drains without waiting on the budget.
    let redis_nodes = ready(&t, "redis");
    let node = ready(&t, "web").into_iter().filter(|n| !redis_nodes.contains(n)).min().expect("a web-only node");
    let out = t.run(&["drain", &node, "-o", "json", "--retry-interval", "100ms"]);
    let stdout = common::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", common::stderr(&out));
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
    assert!(unschedulable(&t, &node));
    assert_eq!(ready(&t, "web").len(), 3, "the replacement is Ready before the drain returns");
}

#[test]
fn dry_run_changes_nothing_and_names_what_would_wait() {
    let t = start();
    let node = ready(&t, "redis").into_iter().min().unwrap();
    let out = t.run(&["drain", &node, "--dry-run"]);
    let stdout = common::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", common::stderr(&out));
    assert!(stdout.contains(&format!("node/{node}: dry run: would drain")), "{stdout}");
    assert!(
        stdout.contains("would wait for PodDisruptionBudget prod/redis: needs 2 healthy pods and has 2"),
        "{stdout}"
    );
    assert!(!unschedulable(&t, &node), "a dry run does not cordon");
}

#[test]
fn bad_input_exits_2_and_names_the_fix() {
    let t = start();
    let out = t.run(&["drain", "no-such-node"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("node no-such-node not found"), "{}", common::stderr(&out));
    let out = t.run(&["drain", "w1", "--timeout", "5 minutes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("unknown unit"), "{}", common::stderr(&out));
    let out = t.run(&["drain", "w1", "--pod-selector", "app in (a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("--pod-selector"), "{}", common::stderr(&out));
    assert!(!unschedulable(&t, "w1"), "nothing was cordoned");
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
    for (name, node, grace) in [("stuck", "w1", 5), ("held", "w2", 36_000)] {
        let out = common::kubectl(&t.kubeconfig, &["apply", "-f", "-"], Some(&finalized_pod(name, node, grace)));
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    let phase = |name: &str| {
        let out =
            common::kubectl(&t.kubeconfig, &["get", "pod", "-n", "prod", name, "-o", "jsonpath={.status.phase}"], None);
        (out.status.success(), common::stdout(&out))
    };
    wait_for(Duration::from_secs(20), "the pods to run", || {
        phase("stuck").1 == "Running" && phase("held").1 == "Running"
    });
    for name in ["stuck", "held"] {
        let out = common::kubectl(&t.kubeconfig, &["delete", "pod", "-n", "prod", name, "--wait=false"], None);
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    // Past its 5 s grace period the kubelet has stopped it, but the API keeps it for its finalizer.
    wait_for(Duration::from_secs(20), "the kubelet to stop the pod", || phase("stuck").1 == "Failed");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(phase("stuck"), (true, "Failed".to_string()), "the pod stays while its finalizer does");
    let listed = common::kubectl(&t.kubeconfig, &["get", "pods", "-n", "prod", "stuck"], None);
    assert!(common::stdout(&listed).contains("Terminating"), "{}", common::stdout(&listed));

    let out = t.run(&["blockers"]);
    let stdout = common::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", common::stderr(&out));
    assert!(stdout.contains("blocker.stuck-finalizers") && stdout.contains("prod/stuck"), "{stdout}");
    assert!(stdout.contains("kept only by its finalizers: example.com/cleanup"), "{stdout}");
    assert!(stdout.contains("the controller or operator of example.com"), "{stdout}");
    assert!(!stdout.contains("prod/held"), "a pod in its grace period is not stuck yet: {stdout}");

    // The drain stops before evicting anything and says why.
    let out = t.run(&["drain", "w1", "--timeout", "20s", "--retry-interval", "100ms"]);
    let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(format!("{stdout}{stderr}").contains("example.com/cleanup"), "{stdout}\n{stderr}");
    let out = t.run(&["uncordon", "w1"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    // A drain that waits on a terminating pod with finalizers says so.
    let out = t.run(&["drain", "w2", "--dry-run"]);
    let all = format!("{}{}", common::stdout(&out), common::stderr(&out));
    assert!(all.contains("waiting for prod/held to go") && all.contains("example.com/cleanup"), "{all}");

    // Once its finalizer is removed the pod goes, as on an apiserver.
    let out = common::kubectl(
        &t.kubeconfig,
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
    assert!(out.status.success(), "{}", common::stderr(&out));
    wait_for(Duration::from_secs(20), "the pod to go once its finalizer went", || !phase("stuck").0);
    let out = t.run(&["blockers"]);
    assert!(!common::stdout(&out).contains("prod/stuck"), "{}", common::stdout(&out));
}
