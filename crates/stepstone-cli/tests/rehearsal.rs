//! The rehearsal of docs/lab.md end to end: `stepstone plan`, `kubeadm upgrade plan|apply|node`
//! on the control plane, a drained and upgraded worker, `stepstone skew`, and a kubelet that never
//! comes back. The lab runs in the test process from examples/small.json; the `stepstone` binary
//! and the real `kubectl` run the guide's commands against it, so the guide's steps are checked
//! to work together and not only one by one.

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{TestLab, json, name, ok, wait_for};
use serde_json::Value;

const CONTROL_PLANE: [&str; 3] = ["cp-01", "cp-02", "cp-03"];
/// The guide's drain example, and a worker with no drain blockers in examples/small.json.
const WORKER: &str = "r650-01";
/// The worker whose kubelet is made never to return.
const WORKER2: &str = "r650-02";

/// examples/small.json: 3 control-plane nodes and 12 workers, all on v1.34.6. Speed 100 turns
/// the 50 s node grace period into half a second and the 5 minute taint eviction into 3.
struct Rehearsal(TestLab);

impl std::ops::Deref for Rehearsal {
    type Target = TestLab;
    fn deref(&self) -> &TestLab {
        &self.0
    }
}

impl Rehearsal {
    fn start() -> Self {
        Rehearsal(TestLab::small(100.0, |_| {}))
    }

    fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.kubectl(&all);
        serde_json::from_str(&ok(&out)).expect("JSON from kubectl")
    }

    fn node(&self, name: &str) -> Value {
        self.kubectl_json(&["get", "node", name])
    }

    fn pods_on(&self, node: &str) -> Vec<Value> {
        let field = format!("spec.nodeName={node}");
        let list = self.kubectl_json(&["get", "pods", "-A", "--field-selector", &field]);
        list["items"].as_array().unwrap().clone()
    }

    fn kube_proxy_image(&self) -> String {
        let ds = self.kubectl_json(&["get", "ds/kube-proxy", "-n", "kube-system"]);
        ds["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_string()
    }

    fn lab_node(&self, name: &str) -> Value {
        let doc = json(&self.run(&["lab", "nodes", name, "-o", "json"]));
        doc["nodes"][0].clone()
    }
}

fn condition<'a>(node: &'a Value, kind: &str) -> &'a Value {
    node["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == kind).unwrap()
}

fn owner_kind(pod: &Value) -> &str {
    pod["metadata"]["ownerReferences"][0]["kind"].as_str().unwrap_or("")
}

#[test]
fn the_guides_rehearsal_upgrades_the_control_plane_and_a_worker_and_loses_a_node() {
    let r = Rehearsal::start();
    plan_puts_the_control_plane_first(&r);
    rollout_without_yes_only_previews(&r);
    kubeadm_upgrade_plan_waits_for_a_new_kubeadm(&r);
    control_plane_moves_to_v1_35_0(&r);
    worker_is_drained_upgraded_and_uncordoned(&r);
    skew_reports_the_half_upgraded_cluster(&r);
    kubelet_that_never_returns_turns_the_node_not_ready(&r);
}

/// `stepstone rollout --to v1.35 --node-ops lab` without `--yes`: the plan and the first step,
/// and nothing changed (the guide's rollout section, before the by-hand walk).
fn rollout_without_yes_only_previews(r: &Rehearsal) {
    let journal = r.dir.path().join("stepstone-rollout.json");
    let journal = journal.to_str().unwrap();
    let out = r.run(&["rollout", "--to", "v1.35", "--node-ops", "lab", "--journal", journal]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("The first would be:") && text.contains("Nothing was changed"), "{text}");
    assert!(!std::path::Path::new(journal).exists(), "a preview writes no journal");
    for n in CONTROL_PLANE.iter().chain([&WORKER]) {
        assert_eq!(r.node(n)["spec"]["unschedulable"], Value::Null, "{n} untouched by the preview");
    }
}

/// `stepstone plan --to v1.35`: one hop, the three control-plane nodes first (`apply` on the first,
/// `node` on the others), then every worker once in waves.
fn plan_puts_the_control_plane_first(r: &Rehearsal) {
    let out = r.run(&["plan", "--to", "v1.35", "-o", "json"]);
    // small.json has drain blockers (a PDB that allows no disruption, emptyDir, local volumes):
    // exit 1 is "plan made but blockers of severity error stop some drains".
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("the plan as JSON");
    assert_eq!(plan["kind"], "Plan");
    assert_eq!(plan["from"], "v1.34.6");
    let hops = plan["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "one minor, one hop: {hops:?}");
    assert!(hops[0]["to"].as_str().unwrap().starts_with("v1.35."), "{}", hops[0]["to"]);
    let cp: Vec<(&str, &str)> = hops[0]["controlPlane"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["node"].as_str().unwrap(), s["action"].as_str().unwrap()))
        .collect();
    assert_eq!(cp, [("cp-01", "apply"), ("cp-02", "node"), ("cp-03", "node")]);
    let mut workers: Vec<&str> = hops[0]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["nodes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()))
        .collect();
    workers.sort_unstable();
    assert_eq!(workers.len(), 12, "every worker once: {workers:?}");
    workers.dedup();
    assert_eq!(workers.len(), 12, "no worker twice: {workers:?}");
    assert!(
        plan["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["code"] == "blocker.budget" && b["subject"] == "prod/redis-pdb" && b["severity"] == "error"),
        "{}",
        plan["blockers"]
    );

    // The schedule: the control plane, in order, ends before the first worker wave starts.
    let entries = plan["schedule"]["entries"].as_array().unwrap();
    let (cp_entries, rest): (Vec<&Value>, Vec<&Value>) = entries.iter().partition(|e| e["kind"] == "control-plane");
    let cp_nodes: Vec<&str> = cp_entries.iter().map(|e| e["nodes"][0].as_str().unwrap()).collect();
    assert_eq!(cp_nodes, CONTROL_PLANE);
    let cp_end = cp_entries.iter().map(|e| e["end"].as_str().unwrap()).max().unwrap();
    let first_worker = rest.iter().map(|e| e["start"].as_str().unwrap()).min().unwrap();
    assert!(cp_end <= first_worker, "control plane ends {cp_end}, workers start {first_worker}");
    assert!(
        entries.iter().take(3).all(|e| e["kind"] == "control-plane"),
        "{:?}",
        entries.iter().map(|e| &e["kind"]).collect::<Vec<_>>()
    );
}

/// `kubeadm upgrade plan` on cp-01 before and after the kubeadm package moves to 1.35.0.
fn kubeadm_upgrade_plan_waits_for_a_new_kubeadm(r: &Rehearsal) {
    let before = ok(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "plan"]));
    assert!(before.contains("[upgrade/versions] kubeadm version: v1.34.6"), "{before}");
    assert!(before.contains("Upgrade kubeadm first"), "{before}");
    assert!(!before.contains("kubeadm upgrade apply"), "nothing to apply with kubeadm 1.34: {before}");

    ok(&r.run(&["lab", "node", "cp-01", "repo", "v1.35"]));
    let installed = ok(&r.run(&["lab", "node", "cp-01", "install", "kubeadm=1.35.0-1.1"]));
    assert_eq!(installed.trim(), "cp-01: kubeadm 1.34.6-1.1 -> 1.35.0-1.1");

    let after = ok(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "plan"]));
    assert!(after.contains("[upgrade/versions] kubeadm version: v1.35.0"), "{after}");
    assert!(after.contains("[upgrade/versions] Target version: v1.35.0"), "{after}");
    assert!(after.contains("\tkubeadm upgrade apply v1.35.0\n"), "{after}");
    for cp in CONTROL_PLANE {
        let line = after
            .lines()
            .find(|l| l.starts_with("kube-apiserver ") && l.contains(cp))
            .unwrap_or_else(|| panic!("no kube-apiserver line for {cp}:\n{after}"));
        assert!(line.ends_with("v1.34.6   v1.35.0"), "{line}");
    }
}

/// `kubeadm upgrade apply` on cp-01, `kubeadm upgrade node` on cp-02 and cp-03: the apiserver
/// reports v1.35.0 after the first, kube-proxy moves with the last and rolls out.
fn control_plane_moves_to_v1_35_0(r: &Rehearsal) {
    let apply = ok(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "apply", "v1.35.0", "-y"]));
    assert!(
        apply.contains("[upgrade/successful] SUCCESS! Your cluster was upgraded to \"v1.35.0\". Enjoy!"),
        "{apply}"
    );
    assert!(apply.contains("control plane instances [cp-02 cp-03] have not been upgraded"), "{apply}");

    let version = r.kubectl_json(&["version"]);
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.35.0", "{version}");
    let old_proxy = r.kube_proxy_image();
    assert_eq!(old_proxy, "registry.k8s.io/kube-proxy:v1.34.6", "kube-proxy waits for the last control-plane node");

    for cp in ["cp-02", "cp-03"] {
        // kubeadm refuses `upgrade node` to a version newer than itself, so its package goes first.
        ok(&r.run(&["lab", "node", cp, "repo", "v1.35"]));
        ok(&r.run(&["lab", "node", cp, "install", "kubeadm=1.35.0-1.1"]));
        let out = ok(&r.run(&["lab", "node", cp, "kubeadm", "upgrade", "node"]));
        assert!(out.contains("[upgrade] The configuration for this node was successfully upgraded!"), "{out}");
        assert!(out.contains("kube-apiserver: v1.34.6 -> v1.35.0"), "{out}");
        if cp == "cp-02" {
            assert_eq!(r.kube_proxy_image(), old_proxy, "cp-03 is not upgraded yet");
        } else {
            assert!(out.contains("kube-proxy: v1.34.6 -> v1.35.0"), "{out}");
        }
    }
    assert_eq!(r.kube_proxy_image(), "registry.k8s.io/kube-proxy:v1.35.0");
    let version = r.kubectl_json(&["version"]);
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.35.0");

    // docs/lab.md: "The kube-proxy DaemonSet then rolls one node at a time (`maxUnavailable`)
    // [...] `kubectl rollout status` [...] follow[s] along."
    // kubeadm's own kube-proxy DaemonSet rolls, whatever strategy the fleet had.
    let rollout = r.kubectl(&["rollout", "status", "ds/kube-proxy", "-n", "kube-system", "--timeout=60s"]);
    assert!(rollout.status.success(), "rollout status: {}", String::from_utf8_lossy(&rollout.stderr));
    {
        let pods = r.kubectl_json(&["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-proxy"]);
        // Replaced pods may still be terminating when the rollout reports done.
        let items: Vec<&Value> =
            pods["items"].as_array().unwrap().iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect();
        assert_eq!(items.len(), 15, "one kube-proxy per node");
        for p in items {
            assert_eq!(p["spec"]["containers"][0]["image"], "registry.k8s.io/kube-proxy:v1.35.0", "{}", name(p));
        }
    }
}

/// `stepstone drain`, packages, `kubeadm upgrade node`, a kubelet restart and `kubectl uncordon`
/// on one worker.
fn worker_is_drained_upgraded_and_uncordoned(r: &Rehearsal) {
    let before = r.pods_on(WORKER);
    assert!(before.iter().any(|p| owner_kind(p) != "DaemonSet"), "the worker runs workloads to move");

    // The worker's `prod/worker` pods keep scratch data in emptyDir: the drain needs that consent,
    // as `kubectl drain` does.
    let drain = ok(&r.run(&["drain", WORKER, "--delete-emptydir-data"]));
    assert!(drain.contains(&format!("node/{WORKER}: drained")), "{drain}");
    assert_eq!(r.node(WORKER)["spec"]["unschedulable"], true, "the drain cordons");
    let left = r.pods_on(WORKER);
    let stray: Vec<&str> = left.iter().filter(|p| owner_kind(p) != "DaemonSet").map(name).collect();
    assert!(stray.is_empty(), "only DaemonSet pods stay on a drained node: {stray:?}");
    assert!(!left.is_empty(), "DaemonSet pods stay");

    ok(&r.run(&["lab", "node", WORKER, "repo", "v1.35"]));
    let out = ok(&r.run(&["lab", "node", WORKER, "install", "kubeadm=1.35.0-1.1", "kubelet=1.35.0-1.1"]));
    assert!(out.contains(&format!("{WORKER}: kubelet 1.34.6-1.1 -> 1.35.0-1.1")), "{out}");
    let out = ok(&r.run(&["lab", "node", WORKER, "kubeadm", "upgrade", "node"]));
    assert!(out.contains("[upgrade] The configuration for this node was successfully upgraded!"), "{out}");
    let out = ok(&r.run(&["lab", "node", WORKER, "restart-kubelet", "--wait"]));
    assert!(out.contains(&format!("{WORKER}: kubelet v1.35.0 running, node Ready")), "{out}");
    let out = ok(&r.kubectl(&["uncordon", WORKER]));
    assert_eq!(out.trim(), format!("node/{WORKER} uncordoned"));

    let facts = r.lab_node(WORKER);
    assert_eq!(facts["kubeletVersion"], "v1.35.0", "{facts}");
    assert_eq!(facts["ready"], true, "{facts}");
    assert_eq!(facts["packages"]["kubelet"], "1.35.0-1.1", "{facts}");
    let node = r.node(WORKER);
    assert_eq!(node["status"]["nodeInfo"]["kubeletVersion"], "v1.35.0");
    assert_eq!(condition(&node, "Ready")["status"], "True");
    assert!(node["spec"]["unschedulable"].is_null() || node["spec"]["unschedulable"] == false, "{}", node["spec"]);
}

/// `stepstone skew` agrees with what kubectl shows: control plane and the upgraded worker on
/// 1.35, every other kubelet on 1.34 (allowed), and kube-proxy as its pods run.
fn skew_reports_the_half_upgraded_cluster(r: &Rehearsal) {
    let report = json(&r.run(&["skew", "-o", "json"]));
    assert_eq!(report["kind"], "SkewReport");
    assert_eq!(report["controlPlane"], "v1.35.0");
    let instances = report["instances"].as_array().unwrap();
    let version = |part: &str, node: &str| -> String {
        let i = instances.iter().find(|i| i["part"] == part && i["node"] == node);
        i.unwrap_or_else(|| panic!("no {part} on {node} in {report}"))["version"].as_str().unwrap().to_string()
    };
    for cp in CONTROL_PLANE {
        for part in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
            assert_eq!(version(part, cp), "v1.35.0", "{part} on {cp}");
        }
    }
    let nodes = r.kubectl_json(&["get", "nodes"]);
    for node in nodes["items"].as_array().unwrap() {
        let n = name(node);
        let expected = if n == WORKER { "v1.35.0" } else { "v1.34.6" };
        assert_eq!(version("kubelet", n), expected, "kubelet on {n}");
        assert_eq!(node["status"]["nodeInfo"]["kubeletVersion"], expected, "kubectl's kubelet on {n}");
    }
    let proxies = r.kubectl_json(&["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-proxy"]);
    for p in proxies["items"].as_array().unwrap().iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()) {
        let image = p["spec"]["containers"][0]["image"].as_str().unwrap();
        let tag = image.rsplit_once(':').unwrap().1;
        let n = p["spec"]["nodeName"].as_str().unwrap();
        assert_eq!(version("kube-proxy", n), tag, "kube-proxy on {n} runs {image}");
    }

    // Kubelets one minor behind the apiserver are within the policy: no errors. The control-plane
    // kubelets still on 1.34 are kubeadm's next step, a warning naming them.
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["severity"] != "error"), "{findings:?}");
    let progress = findings
        .iter()
        .find(|f| f["code"] == "upgrade.in-progress")
        .unwrap_or_else(|| panic!("no upgrade.in-progress: {findings:?}"));
    assert_eq!(progress["severity"], "warning");
    let message = progress["message"].as_str().unwrap();
    assert!(message.contains("cp-01, cp-02, cp-03") && message.contains("v1.34"), "{message}");
    assert!(!message.contains(WORKER), "{message}");
}

/// `stepstone lab faults --never-return` keeps a restarted kubelet down: `restart-kubelet --wait`
/// gives up with exit 1, the node turns NotReady (Ready Unknown) with the unreachable taints, and
/// five simulated minutes later its workload pods are evicted.
fn kubelet_that_never_returns_turns_the_node_not_ready(r: &Rehearsal) {
    let out = ok(&r.run(&["lab", "faults", "--never-return", WORKER2]));
    assert!(out.lines().any(|l| l.starts_with("never-return") && l.trim_end().ends_with(WORKER2)), "{out}");

    let restart: Child = r
        .stepstone(&["lab", "node", WORKER2, "restart-kubelet", "--wait", "--timeout", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While it waits: kubectl sees the node go NotReady after the grace period (0.5 s at x100).
    wait_for(Duration::from_secs(10), &format!("kubectl get node {WORKER2} to say NotReady"), || {
        let out = ok(&r.kubectl(&["get", "node", WORKER2, "--no-headers"]));
        out.split_whitespace().nth(1) == Some("NotReady")
    });

    let out = restart.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stdout: {} stderr: {stderr}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains(&format!("{WORKER2}: not Ready 5s after the kubelet restart")), "{stderr}");

    let node = r.node(WORKER2);
    let ready = condition(&node, "Ready");
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("Unknown"), Some("NodeStatusUnknown")));
    let taints = node["spec"]["taints"].as_array().cloned().unwrap_or_default();
    for effect in ["NoSchedule", "NoExecute"] {
        assert!(
            taints.iter().any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == effect),
            "{effect} unreachable taint: {taints:?}"
        );
    }
    // 5 real seconds are over 8 lab minutes at x100: past the 50 s grace period and the
    // default 300 s toleration, every
    // workload pod is being evicted; DaemonSet pods tolerate the taint and stay.
    let pods = r.pods_on(WORKER2);
    assert!(pods.iter().any(|p| owner_kind(p) != "DaemonSet"), "the node had workloads");
    for p in &pods {
        let evicted = !p["metadata"]["deletionTimestamp"].is_null();
        assert_eq!(evicted, owner_kind(p) != "DaemonSet", "{} ({})", name(p), owner_kind(p));
    }

    ok(&r.run(&["lab", "faults", "--clear"]));
    let faults = json(&r.run(&["lab", "faults", "-o", "json"]));
    assert_eq!(faults["neverReturn"], serde_json::json!([]), "{faults}");
}
