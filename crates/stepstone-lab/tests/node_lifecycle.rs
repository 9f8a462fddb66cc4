//! Node lifecycle as a real cluster shows it when a kubelet stops, driven with the real `kubectl`:
//! DefaultTolerationSeconds admission, the node lifecycle controller's `Unknown` status and
//! `unreachable` taints after the grace period, and taint-based eviction after 300 s. The lab
//! runs on a manual clock: the tests step time and read the cluster with kubectl in between.

mod common;

use common::*;
use jiff::Timestamp;
use serde_json::Value;
use stepstone_lab::{FaultConfig, LabHandle, Timing};

/// The drain fleet is on v1.34, where `--node-monitor-grace-period` defaults to 50s.
const GRACE: i64 = 50;

fn json_of(kubeconfig: &std::path::Path, args: &[&str]) -> Value {
    serde_json::from_str(&kubectl_ok(kubeconfig, args)).expect("kubectl prints JSON")
}

fn ts(v: &Value) -> Timestamp {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

fn ready_condition(node: &Value) -> Value {
    node["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").cloned().unwrap()
}

fn taint(node: &Value, key: &str, effect: &str) -> Option<Value> {
    node["spec"]["taints"].as_array()?.iter().find(|t| t["key"] == key && t["effect"] == effect).cloned()
}

fn pods_of(lab: &LabHandle, ns: &str, prefix: &str) -> Vec<Value> {
    lab.list("pods", Some(ns))
        .into_iter()
        .filter(|p| p["metadata"]["name"].as_str().unwrap().starts_with(prefix))
        .collect()
}

fn node_of(p: &Value) -> &str {
    p["spec"]["nodeName"].as_str().unwrap_or("")
}

fn terminating(p: &Value) -> bool {
    p["metadata"].get("deletionTimestamp").is_some()
}

fn ready(p: &Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

const API_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  replicas: 3
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
      - name: api
        image: registry.example/api:1.0
";

/// Deployment `api` (three replicas, no tolerations of its own) created with kubectl and Ready on
/// the workers; returns a worker that runs one of its pods.
fn deploy_api(lab: &LabHandle, kc: &std::path::Path) -> String {
    let cache = kc.with_file_name("cache");
    let out = kubectl_fresh(kc, &cache, &["create", "-f", "-"], Some(API_DEPLOYMENT));
    assert!(out.status.success(), "{}", text(&out).1);
    step_until(lab, 1, 60, "three Ready api pods", || {
        let pods = pods_of(lab, "shop", "api-");
        pods.len() == 3 && pods.iter().all(ready)
    });
    node_of(&pods_of(lab, "shop", "api-")[0]).to_string()
}

/// The drain fleet with its kube-proxy pods carrying the tolerations a real DaemonSet's pods have
/// (the template's `Exists` and the controller's `not-ready`/`unreachable` NoExecute ones).
fn fleet_with_daemon_tolerations() -> Value {
    let mut fleet = drain_fleet();
    for item in fleet["items"].as_array_mut().unwrap() {
        if item["kind"] == "Pod" && item["metadata"]["name"].as_str().unwrap().starts_with("kube-proxy-") {
            item["spec"]["tolerations"] = serde_json::json!([
                {"operator": "Exists"},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
            ]);
        }
    }
    fleet
}

#[test]
fn a_node_that_never_returns_is_unreachable_after_the_grace_period_and_its_pods_move_after_300s() {
    let (lab, _dir, kc) = start_manual_lab(fleet_with_daemon_tolerations(), Timing::default());
    let victim = deploy_api(&lab, &kc);
    let on_victim = |prefix: &str| -> Vec<Value> {
        pods_of(&lab, if prefix == "kube-proxy" { "kube-system" } else { "shop" }, prefix)
            .into_iter()
            .filter(|p| node_of(p) == victim)
            .collect()
    };
    let api_before: Vec<String> =
        on_victim("api-").iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();
    assert!(!api_before.is_empty());

    lab.set_faults(FaultConfig { never_return: [victim.clone()].into(), ..Default::default() }).unwrap();
    let restarted = lab.now();
    lab.nodes().restart_kubelet(&victim).unwrap();

    step_until(&lab, 1, 120, "the unreachable NoExecute taint", || {
        taint(&lab.get("nodes", "", &victim).unwrap(), "node.kubernetes.io/unreachable", "NoExecute").is_some()
    });
    let node = json_of(&kc, &["get", "node", &victim, "-o", "json"]);
    let ready_cond = ready_condition(&node);
    assert_eq!(ready_cond["status"], "Unknown", "{ready_cond}");
    assert_eq!(ready_cond["reason"], "NodeStatusUnknown");
    assert_eq!(ready_cond["message"], "Kubelet stopped posting node status.");
    // kubectl prints any Ready status but True as NotReady.
    let row = kubectl_ok(&kc, &["get", "node", &victim, "--no-headers"]);
    assert_eq!(row.split_whitespace().nth(1), Some("NotReady"), "{row}");
    let no_execute = taint(&node, "node.kubernetes.io/unreachable", "NoExecute").unwrap();
    assert!(taint(&node, "node.kubernetes.io/unreachable", "NoSchedule").is_some(), "{}", node["spec"]);
    assert!(taint(&node, "node.kubernetes.io/not-ready", "NoSchedule").is_none(), "{}", node["spec"]);
    let tainted_at = ts(&no_execute["timeAdded"]);
    assert_eq!(tainted_at, lab.now(), "tainted at the step that ended the grace period");
    // The grace period counts from the last Lease renewal (every 10 s) before the kubelet stopped.
    let silent = tainted_at.duration_since(restarted).as_secs();
    assert!((GRACE - 10..=GRACE).contains(&silent), "tainted {silent}s after the kubelet stopped");

    // The api pods tolerate `unreachable` for 300 s: a second short of it they are still there.
    advance(&lab, 299);
    assert!(on_victim("api-").iter().all(|p| !terminating(p)), "evicted before 300 s: {:#?}", on_victim("api-"));
    advance(&lab, 1);
    let left = on_victim("api-");
    assert!(!left.is_empty() && left.iter().all(terminating), "not evicted at 300 s: {left:#?}");
    // Replacements run Ready elsewhere; the DaemonSet pod, tolerating forever, stays.
    step_until(&lab, 1, 60, "three Ready api pods on other nodes", || {
        let active: Vec<Value> = pods_of(&lab, "shop", "api-").into_iter().filter(|p| !terminating(p)).collect();
        active.len() == 3 && active.iter().all(|p| ready(p) && node_of(p) != victim)
    });
    let proxy = on_victim("kube-proxy");
    assert_eq!(proxy.len(), 1, "the DaemonSet pod stays on its node: {proxy:#?}");
    assert!(!terminating(&proxy[0]) && proxy[0]["metadata"]["name"] == format!("kube-proxy-{victim}"));

    let events = json_of(&kc, &["get", "events", "-n", "shop", "-o", "json"]);
    let events = events["items"].as_array().unwrap();
    for name in &api_before {
        let e = events
            .iter()
            .find(|e| e["reason"] == "TaintManagerEviction" && e["involvedObject"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no TaintManagerEviction event for {name}"));
        assert_eq!(e["message"], format!("Marking for deletion Pod shop/{name}"));
        assert_eq!(e["type"], "Normal");
        let after = ts(&e["firstTimestamp"]).duration_since(tainted_at).as_secs();
        assert_eq!(after, 300, "{name} evicted {after}s after the taint");
        let pod = json_of(&kc, &["get", "pod", "-n", "shop", name, "-o", "json"]);
        let target = pod["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "DisruptionTarget");
        let target = target.unwrap_or_else(|| panic!("{name} has no DisruptionTarget condition"));
        assert_eq!(target["status"], "True");
        assert_eq!(target["reason"], "DeletionByTaintManager");
    }
    // A pod loaded from the fleet carries no tolerations: it goes as soon as the taint is there.
    for web in on_victim("web-") {
        let name = web["metadata"]["name"].as_str().unwrap();
        let e = events
            .iter()
            .find(|e| e["reason"] == "TaintManagerEviction" && e["involvedObject"]["name"] == name)
            .unwrap_or_else(|| panic!("no TaintManagerEviction event for {name}"));
        assert_eq!(ts(&e["firstTimestamp"]), tainted_at, "{e}");
    }
}

#[test]
fn a_node_back_before_300s_keeps_its_pods_and_loses_the_taints() {
    // A kubelet restart of 120 s outlasts the grace period but not the pods' tolerations.
    let timing = Timing { kubelet_restart_seconds: 120.0, ..Default::default() };
    let (lab, _dir, kc) = start_manual_lab(drain_fleet(), timing);
    let victim = deploy_api(&lab, &kc);
    let before: Vec<Value> = pods_of(&lab, "shop", "api-").into_iter().filter(|p| node_of(p) == victim).collect();
    lab.nodes().restart_kubelet(&victim).unwrap();
    step_until(&lab, 1, 60, "the node to turn Unknown", || {
        let node = lab.get("nodes", "", &victim).unwrap();
        ready_condition(&node)["status"] == "Unknown"
            && taint(&node, "node.kubernetes.io/unreachable", "NoExecute").is_some()
    });
    // Its pods are marked not Ready while nobody hears from the node.
    for p in &before {
        let now = lab.get("pods", "shop", p["metadata"]["name"].as_str().unwrap()).unwrap();
        assert!(!ready(&now), "{}", now["status"]);
    }
    step_until(&lab, 1, 120, "the node to be Ready again", || {
        ready_condition(&lab.get("nodes", "", &victim).unwrap())["status"] == "True"
    });
    let node = json_of(&kc, &["get", "node", &victim, "-o", "json"]);
    let taints = node["spec"]["taints"].as_array().cloned().unwrap_or_default();
    assert!(
        !taints
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable" || t["key"] == "node.kubernetes.io/not-ready"),
        "{taints:?}"
    );
    // Well past the 300 s the pods would have tolerated: they stayed, and run Ready again.
    advance(&lab, 301);
    for p in &before {
        let name = p["metadata"]["name"].as_str().unwrap();
        let now = lab.get("pods", "shop", name).unwrap_or_else(|| panic!("{name} is gone"));
        assert!(!terminating(&now) && node_of(&now) == victim && ready(&now), "{now}");
    }
    // (The fleet's own pods tolerate nothing and went at once; the api pods were never marked.)
    let events = json_of(&kc, &["get", "events", "-n", "shop", "-o", "json"]);
    assert!(
        !events["items"].as_array().unwrap().iter().any(|e| e["reason"] == "TaintManagerEviction"
            && e["involvedObject"]["name"].as_str().unwrap().starts_with("api-"))
    );
}

#[test]
fn a_quick_kubelet_restart_taints_nothing_for_eviction() {
    let (lab, _dir, kc) = start_manual_lab(drain_fleet(), Timing::default());
    lab.nodes().restart_kubelet("w2").unwrap();
    let node = lab.get("nodes", "", "w2").unwrap();
    assert!(taint(&node, "node.kubernetes.io/not-ready", "NoSchedule").is_some(), "{}", node["spec"]);
    step_until(&lab, 1, 60, "w2 Ready again", || {
        ready_condition(&lab.get("nodes", "", "w2").unwrap())["status"] == "True"
    });
    advance(&lab, 101);
    let events = json_of(&kc, &["get", "events", "-A", "-o", "json"]);
    let events = events["items"].as_array().unwrap();
    assert!(!events.iter().any(|e| e["reason"] == "TaintManagerEviction" || e["reason"] == "NodeNotReady"));
    // The fleet's pods on w2, which tolerate nothing, are still there.
    assert!(pods_of(&lab, "shop", "web-").iter().any(|p| node_of(p) == "w2" && !terminating(p)));
}

#[test]
fn new_pods_get_the_default_not_ready_and_unreachable_tolerations() {
    let (_lab, dir, kc) = start_lab(drain_fleet(), 20.0);
    kubectl_ok(&kc, &["run", "plain", "-n", "shop", "--image=registry.example/app:1.0"]);
    let pod = json_of(&kc, &["get", "pod", "plain", "-n", "shop", "-o", "json"]);
    let tolerations = pod["spec"]["tolerations"].as_array().unwrap();
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        let t = tolerations.iter().find(|t| t["key"] == key).unwrap_or_else(|| panic!("no {key} toleration"));
        assert_eq!(t["operator"], "Exists");
        assert_eq!(t["effect"], "NoExecute");
        assert_eq!(t["tolerationSeconds"], 300);
    }
    assert_eq!(tolerations.len(), 2);

    let own = "apiVersion: v1
kind: Pod
metadata:
  name: patient
  namespace: shop
spec:
  tolerations:
  - key: node.kubernetes.io/unreachable
    operator: Exists
    effect: NoExecute
    tolerationSeconds: 900
  containers:
  - name: app
    image: registry.example/app:1.0
";
    let cache = dir.path().join("cache");
    let out = kubectl_fresh(&kc, &cache, &["create", "-f", "-"], Some(own));
    assert!(out.status.success(), "{}", text(&out).1);
    let pod = json_of(&kc, &["get", "pod", "patient", "-n", "shop", "-o", "json"]);
    let tolerations = pod["spec"]["tolerations"].as_array().unwrap();
    let unreachable: Vec<&Value> =
        tolerations.iter().filter(|t| t["key"] == "node.kubernetes.io/unreachable").collect();
    assert_eq!(unreachable.len(), 1, "{tolerations:?}");
    assert_eq!(unreachable[0]["tolerationSeconds"], 900);
    let not_ready = tolerations.iter().find(|t| t["key"] == "node.kubernetes.io/not-ready").unwrap();
    assert_eq!(not_ready["tolerationSeconds"], 300);

    // A pod that tolerates every taint needs nothing added; pods loaded from the fleet are left as
    // their cluster admitted them.
    let everything = own.replace("name: patient", "name: tough").replace(
        "  - key: node.kubernetes.io/unreachable\n    operator: Exists\n    effect: NoExecute\n    tolerationSeconds: 900\n",
        "  - operator: Exists\n",
    );
    let out = kubectl_fresh(&kc, &cache, &["create", "-f", "-"], Some(&everything));
    assert!(out.status.success(), "{}", text(&out).1);
    let pod = json_of(&kc, &["get", "pod", "tough", "-n", "shop", "-o", "json"]);
    assert_eq!(pod["spec"]["tolerations"], serde_json::json!([{"operator": "Exists"}]));
    let fleet_pod = json_of(&kc, &["get", "pod", "web-5d8f7c9b6-p0", "-n", "shop", "-o", "json"]);
    assert!(fleet_pod["spec"].get("tolerations").is_none(), "{}", fleet_pod["spec"]);
}
