//! `kubeadm upgrade apply` upgrading the kube-proxy and CoreDNS addons, and the controllers
//! rolling their pods: a RollingUpdate DaemonSet one node at a time within `maxUnavailable`,
//! an OnDelete DaemonSet not at all until pods are deleted, the Deployment within its surge
//! and unavailability budget, and `kubectl rollout status` following both. The rollouts run on
//! a manual clock, stepped one lab second at a time, so every state between steps is seen.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use stepstone_lab::{Lab, LabHandle, LabOptions, Package, UpgradeOptions};

const WORKERS: [&str; 4] = ["w1", "w2", "w3", "w4"];
const OLD_PROXY: &str = "registry.k8s.io/kube-proxy:v1.34.2";
const NEW_PROXY: &str = "registry.k8s.io/kube-proxy:v1.35.0";
const OLD_DNS: &str = "registry.k8s.io/coredns/coredns:v1.12.1";
const NEW_DNS: &str = "registry.k8s.io/coredns/coredns:v1.13.1";

/// Control-plane nodes `cps` (static pods at v1.34.2) and four workers; kube-proxy on every
/// node with the given update strategy; CoreDNS with two replicas on w1 and w2.
fn fleet(cps: &[&str], strategy: Value) -> Value {
    let mut items: Vec<Value> = cps.iter().map(|n| node(n, true, "v2")).collect();
    items.extend(WORKERS.iter().map(|n| node(n, false, "v2")));
    for cp in cps {
        for c in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
            items.push(static_pod(c, cp, "v1.34.2"));
        }
        items.push(static_pod("etcd", cp, "3.6.4-0"));
    }
    let all: Vec<&str> = cps.iter().chain(WORKERS.iter()).copied().collect();
    let mut proxy = daemonset("kube-system", "kube-proxy", &all);
    proxy[0]["spec"]["updateStrategy"] = strategy;
    for obj in &mut proxy {
        let containers =
            if obj["kind"] == "DaemonSet" { &mut obj["spec"]["template"]["spec"] } else { &mut obj["spec"] };
        containers["containers"][0]["name"] = json!("kube-proxy");
        containers["containers"][0]["image"] = json!(OLD_PROXY);
        if obj["kind"] == "Pod" {
            obj["status"]["containerStatuses"][0]["image"] = json!(OLD_PROXY);
        }
    }
    items.extend(proxy);
    let mut dns = deployment("kube-system", "coredns", &["w1", "w2"]);
    for obj in &mut dns {
        let spec = match obj["kind"].as_str() {
            Some("Pod") => &mut obj["spec"],
            _ => &mut obj["spec"]["template"]["spec"],
        };
        spec["containers"][0]["name"] = json!("coredns");
        spec["containers"][0]["image"] = json!(OLD_DNS);
    }
    dns[0]["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    items.extend(dns);
    list(items)
}

fn rolling(max_unavailable: Value) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": 0}})
}

fn start(fleet: Value, speed: f64, kubeconfig: Option<std::path::PathBuf>) -> LabHandle {
    Lab::start_blocking(fleet, LabOptions { speed, kubeconfig, ..Default::default() }).expect("lab starts")
}

/// A lab on a manual clock at speed 1: nothing that takes time happens until a test steps it.
fn start_manual(fleet: Value, kubeconfig: Option<std::path::PathBuf>) -> LabHandle {
    let lab = Lab::start_blocking(fleet, LabOptions { manual_clock: true, kubeconfig, ..Default::default() })
        .expect("lab starts");
    lab.settle_blocking();
    lab
}

/// Most lab seconds a rollout of five nodes may take: each waits for a 30 s grace period and a
/// 7 s start-up.
const ROLLOUT_STEPS: u64 = 600;

/// kubectl's own test for a finished DaemonSet rollout (`DaemonSetStatusViewer`): the spec
/// observed, and every scheduled pod updated and available.
fn daemonset_rolled_out(ds: &Value) -> bool {
    let s = &ds["status"];
    let count = |field: &str| s[field].as_i64().unwrap_or(0);
    ds["metadata"]["generation"].as_i64() <= s["observedGeneration"].as_i64()
        && count("updatedNumberScheduled") >= count("desiredNumberScheduled")
        && count("numberAvailable") >= count("desiredNumberScheduled")
}

/// `kubectl rollout status ds/<daemonset>` while the clock stands still until kubectl has
/// reported the rollout in progress, then steps a second at a time until the lab's DaemonSet
/// is rolled out by kubectl's own test; then, without moving the clock, waits for kubectl to
/// see it and return. Its output.
///
/// The clock stops once the rollout is done rather than when kubectl exits: kubectl is another
/// process, and on a loaded machine it may take seconds to read the last watch event while the
/// steps go on, so a bound on steps taken until it exits would measure the machine, not the
/// rollout.
fn rollout_status_stepping(lab: &LabHandle, kc: &std::path::Path, daemonset: &str) -> String {
    let what = format!("ds/{daemonset}");
    let mut child = Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kc)
        .args(["rollout", "status", &what, "-n", "kube-system", "--timeout=300s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = std::thread::spawn({
        let (stdout, lines) = (child.stdout.take().unwrap(), lines.clone());
        move || BufReader::new(stdout).lines().map_while(Result::ok).for_each(|l| lines.lock().unwrap().push(l))
    });
    wait_for(60, &format!("kubectl rollout status {what} to report the rollout in progress"), || {
        lines.lock().unwrap().iter().any(|l| l.starts_with("Waiting for"))
    });
    let mut steps = 0;
    while !lab.get("daemonsets", "kube-system", daemonset).is_some_and(|ds| daemonset_rolled_out(&ds)) {
        assert!(steps < ROLLOUT_STEPS, "{what} still rolling after {steps} lab seconds: {:?}", lines.lock().unwrap());
        advance(lab, 1);
        steps += 1;
    }
    let mut status = None;
    wait_for(120, &format!("kubectl rollout status {what} to return once the rollout is done"), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    reader.join().unwrap();
    let out = lines.lock().unwrap().join("\n");
    assert!(status.unwrap().success(), "kubectl rollout status {what} failed: {out}");
    out
}

fn owned_by<'a>(pods: &'a [Value], owner: &str) -> impl Iterator<Item = &'a Value> {
    pods.iter().filter(move |p| p["metadata"]["ownerReferences"][0]["name"] == owner)
}

fn ready_alive(p: &Value) -> bool {
    p["metadata"].get("deletionTimestamp").is_none()
        && p["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn image(p: &Value) -> &str {
    p["spec"]["containers"][0]["image"].as_str().unwrap_or("")
}

/// kube-proxy pods per node (live ones only).
fn proxy_pods(lab: &LabHandle) -> BTreeMap<String, Vec<Value>> {
    let pods = lab.list("pods", Some("kube-system"));
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in owned_by(&pods, "kube-proxy").filter(|p| p["metadata"].get("deletionTimestamp").is_none()) {
        out.entry(p["spec"]["nodeName"].as_str().unwrap_or("").to_string()).or_default().push(p.clone());
    }
    out
}

fn upgrade_cp1(lab: &LabHandle) -> stepstone_lab::UpgradeReport {
    lab.nodes().configure_repository("cp1", "v1.35").unwrap();
    lab.nodes().install_package("cp1", Package::Kubeadm, "1.35.0-1.1").unwrap();
    lab.nodes().kubeadm_upgrade_apply("cp1", "v1.35.0", &UpgradeOptions::default()).expect("upgrade apply")
}

fn wait_for_status(lab: &LabHandle, plural: &str, name: &str, what: &str, f: impl Fn(&Value) -> bool) {
    wait_for(20, what, || lab.get(plural, "kube-system", name).is_some_and(|o| f(&o)));
}

#[test]
fn kube_proxy_rolls_one_node_at_a_time_and_coredns_follows() {
    let lab = start_manual(fleet(&["cp1"], rolling(json!(1))), None);
    let nodes: BTreeSet<String> = ["cp1"].iter().chain(WORKERS.iter()).map(|n| n.to_string()).collect();
    wait_for_status(&lab, "daemonsets", "kube-proxy", "kube-proxy status", |ds| {
        ds["status"]["numberAvailable"] == 5 && ds["status"]["updatedNumberScheduled"] == 5
    });
    // The loaded pods run the template's image: the lab adopts them instead of replacing them.
    let before: BTreeSet<String> =
        proxy_pods(&lab).values().flatten().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(before.len(), 5);
    assert!(before.iter().all(|n| n.starts_with("kube-proxy-") && nodes.contains(&n["kube-proxy-".len()..])));

    let report = upgrade_cp1(&lab);
    assert!(report.changed.contains(&"kube-proxy: v1.34.2 -> v1.35.0".to_string()), "{:?}", report.changed);
    // etcd follows kubeadm's etcd for 1.35, as the image tag kubeadm writes (with its `-0`).
    assert!(report.changed.contains(&"etcd: 3.6.4-0 -> 3.6.6-0".to_string()), "{:?}", report.changed);
    assert!(report.changed.contains(&"coredns: v1.12.1 -> v1.13.1".to_string()), "{:?}", report.changed);
    assert!(report.message.contains("[addons] Applied essential addon: CoreDNS"), "{}", report.message);
    assert!(report.message.contains("[addons] Applied essential addon: kube-proxy"), "{}", report.message);
    let ds = lab.get("daemonsets", "kube-system", "kube-proxy").unwrap();
    assert_eq!(ds["spec"]["template"]["spec"]["containers"][0]["image"], NEW_PROXY);
    assert_eq!(ds["metadata"]["generation"], 2);
    let deploy = lab.get("deployments", "kube-system", "coredns").unwrap();
    assert_eq!(deploy["spec"]["template"]["spec"]["containers"][0]["image"], NEW_DNS);

    // Sample after every lab second until every node runs a Ready new kube-proxy and CoreDNS is
    // on the new image.
    let (mut worst_proxy, mut fewest_dns, mut samples) = (0, usize::MAX, 0);
    let mut replaced_order: Vec<String> = Vec::new();
    loop {
        let by_node = proxy_pods(&lab);
        let lacking = nodes.iter().filter(|n| !by_node.get(*n).is_some_and(|ps| ps.iter().any(ready_alive))).count();
        worst_proxy = worst_proxy.max(lacking);
        for (node, ps) in &by_node {
            if ps.iter().any(|p| image(p) == NEW_PROXY) && !replaced_order.contains(node) {
                replaced_order.push(node.clone());
            }
        }
        let pods = lab.list("pods", Some("kube-system"));
        let dns: Vec<&Value> = pods.iter().filter(|p| p["metadata"]["labels"]["app"] == "coredns").collect();
        fewest_dns = fewest_dns.min(dns.iter().filter(|p| ready_alive(p)).count());
        samples += 1;
        let proxy_done = nodes.iter().all(|n| {
            by_node.get(n).is_some_and(|ps| ps.len() == 1 && image(&ps[0]) == NEW_PROXY && ready_alive(&ps[0]))
        });
        let live_dns: Vec<&&Value> = dns.iter().filter(|p| p["metadata"].get("deletionTimestamp").is_none()).collect();
        let dns_done = live_dns.len() == 2 && live_dns.iter().all(|p| image(p) == NEW_DNS && ready_alive(p));
        if proxy_done && dns_done {
            break;
        }
        assert!(samples < ROLLOUT_STEPS, "rollout did not finish: proxy {by_node:#?}\ndns {live_dns:#?}");
        advance(&lab, 1);
    }
    assert!(samples > 20, "too few samples ({samples}) to see the rollout");
    assert_eq!(worst_proxy, 1, "maxUnavailable 1: exactly one node at a time was without a Ready kube-proxy");
    assert_eq!(replaced_order.len(), 5, "{replaced_order:?}");
    assert!(fewest_dns >= 2, "CoreDNS (2 replicas, maxUnavailable 25% = 0) never dropped below 2 Ready pods");
    for p in proxy_pods(&lab).values().flatten() {
        assert!(!before.contains(p["metadata"]["name"].as_str().unwrap()), "every old pod was replaced");
        let hash = p["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap_or("");
        assert_eq!(hash.len(), 10, "{p}");
    }
    wait_for_status(&lab, "daemonsets", "kube-proxy", "kube-proxy status after the rollout", |ds| {
        let s = &ds["status"];
        s["desiredNumberScheduled"] == 5
            && s["currentNumberScheduled"] == 5
            && s["updatedNumberScheduled"] == 5
            && s["numberReady"] == 5
            && s["numberAvailable"] == 5
            && s["observedGeneration"] == 2
    });
    // The template changed through kubeadm's write: the template generation moved with it.
    let ds = lab.get("daemonsets", "kube-system", "kube-proxy").unwrap();
    assert_eq!(ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"], "2", "{}", ds["metadata"]);
    for p in proxy_pods(&lab).values().flatten() {
        assert_eq!(p["metadata"]["labels"]["pod-template-generation"], "2", "{}", p["metadata"]);
    }
    let events = lab.list("events", Some("kube-system"));
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e["involvedObject"]["name"] == "kube-proxy")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    for reason in ["KubeadmAddonUpgrade", "SuccessfulDelete", "SuccessfulCreate"] {
        assert!(reasons.contains(&reason), "{reason} missing from {reasons:?}");
    }
    assert!(
        events.iter().any(|e| e["involvedObject"]["name"] == "coredns" && e["reason"] == "KubeadmAddonUpgrade"),
        "coredns addon event"
    );
    // CoreDNS went through a second ReplicaSet; the first is scaled to zero.
    let sets: Vec<Value> = lab
        .list("replicasets", Some("kube-system"))
        .into_iter()
        .filter(|rs| rs["metadata"]["ownerReferences"][0]["name"] == "coredns")
        .collect();
    assert_eq!(sets.len(), 2);
    let sizes: BTreeSet<i64> = sets.iter().map(|rs| rs["spec"]["replicas"].as_i64().unwrap()).collect();
    assert_eq!(sizes, BTreeSet::from([0, 2]));
}

#[test]
fn percent_max_unavailable_replaces_several_nodes_at_once() {
    // 40% of 5 nodes, rounded up: 2.
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("lab.kubeconfig");
    let lab = start_manual(fleet(&["cp1"], rolling(json!("40%"))), Some(kc.clone()));
    wait_for_status(&lab, "daemonsets", "kube-proxy", "kube-proxy status", |ds| ds["status"]["numberAvailable"] == 5);
    // Through the API: kubeadm would reset the strategy to its own (see below).
    kubectl_ok(&kc, &["set", "image", "ds/kube-proxy", &format!("kube-proxy={NEW_PROXY}"), "-n", "kube-system"]);
    let (mut worst, mut steps) = (0, 0);
    loop {
        let by_node = proxy_pods(&lab);
        let lacking = 5 - by_node.values().filter(|ps| ps.iter().any(ready_alive)).count();
        worst = worst.max(lacking);
        if by_node.values().flatten().all(|p| image(p) == NEW_PROXY && ready_alive(p)) && by_node.len() == 5 {
            break;
        }
        assert!(steps < ROLLOUT_STEPS, "rollout did not finish: {by_node:#?}");
        advance(&lab, 1);
        steps += 1;
    }
    assert_eq!(worst, 2, "two nodes at a time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_leaves_old_pods_until_they_are_deleted() {
    let lab = Lab::start(
        fleet(&["cp1"], json!({"type": "OnDelete"})),
        LabOptions { manual_clock: true, ..Default::default() },
    )
    .await
    .unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&lab.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let daemonsets: kube::Api<k8s_openapi::api::apps::v1::DaemonSet> =
        kube::Api::namespaced(client.clone(), "kube-system");
    let image_patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "kube-proxy", "image": NEW_PROXY}]}}}});
    daemonsets
        .patch("kube-proxy", &kube::api::PatchParams::default(), &kube::api::Patch::Strategic(image_patch))
        .await
        .unwrap();
    // A minute: a RollingUpdate DaemonSet would have replaced a pod by now.
    lab.advance(Duration::from_secs(60)).await.expect("a manual clock");
    let by_node = proxy_pods(&lab);
    assert_eq!(by_node.len(), 5);
    assert!(by_node.values().flatten().all(|p| image(p) == OLD_PROXY), "{by_node:#?}");
    let ds = lab.get("daemonsets", "kube-system", "kube-proxy").unwrap();
    assert_eq!(ds["status"]["updatedNumberScheduled"], 0, "{}", ds["status"]);
    assert_eq!(ds["status"]["observedGeneration"], 2);

    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "kube-system");
    pods.delete("kube-proxy-w2", &kube::api::DeleteParams::default()).await.unwrap();
    let mut steps = 0;
    loop {
        let by_node = proxy_pods(&lab);
        let w2 = by_node.get("w2").cloned().unwrap_or_default();
        if w2.len() == 1 && image(&w2[0]) == NEW_PROXY && ready_alive(&w2[0]) {
            let others_old =
                by_node.iter().filter(|(n, _)| n.as_str() != "w2").all(|(_, ps)| image(&ps[0]) == OLD_PROXY);
            assert!(others_old, "{by_node:#?}");
            break;
        }
        assert!(steps < ROLLOUT_STEPS, "no new pod on w2: {by_node:#?}");
        lab.advance(Duration::from_secs(1)).await;
        steps += 1;
    }
    // The pass that made it Ready also counted it.
    let ds = lab.get("daemonsets", "kube-system", "kube-proxy").unwrap();
    assert_eq!(ds["status"]["updatedNumberScheduled"], 1, "{}", ds["status"]);
}

#[test]
fn addons_wait_for_the_last_control_plane_node() {
    let lab = start(fleet(&["cp1", "cp2"], rolling(json!(1))), 20.0, None);
    let report = upgrade_cp1(&lab);
    assert!(report.changed.iter().all(|c| !c.starts_with("kube-proxy") && !c.starts_with("coredns")), "{report:?}");
    assert!(
        report.message.contains(
            "[upgrade/addons] skip upgrade addons because control plane instances [cp2] have not been upgraded"
        ),
        "{}",
        report.message
    );
    let ds = lab.get("daemonsets", "kube-system", "kube-proxy").unwrap();
    assert_eq!(ds["spec"]["template"]["spec"]["containers"][0]["image"], OLD_PROXY);

    lab.nodes().configure_repository("cp2", "v1.35").unwrap();
    lab.nodes().install_package("cp2", Package::Kubeadm, "1.35.0-1.1").unwrap();
    let report = lab.nodes().kubeadm_upgrade_node("cp2", &UpgradeOptions::default()).unwrap();
    assert!(report.changed.contains(&"kube-apiserver: v1.34.2 -> v1.35.0".to_string()), "{report:?}");
    assert!(report.changed.contains(&"kube-proxy: v1.34.2 -> v1.35.0".to_string()), "{report:?}");
    assert!(report.changed.contains(&"coredns: v1.12.1 -> v1.13.1".to_string()), "{report:?}");
    // A worker's `kubeadm upgrade node` has no addon phase.
    lab.nodes().configure_repository("w1", "v1.35").unwrap();
    lab.nodes().install_package("w1", Package::Kubeadm, "1.35.0-1.1").unwrap();
    let worker = lab.nodes().kubeadm_upgrade_node("w1", &UpgradeOptions::default()).unwrap();
    assert!(worker.changed.is_empty(), "{worker:?}");
}

#[test]
fn kubectl_rollout_status_follows_the_addon_rollouts() {
    kubectl_path();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("lab.kubeconfig");
    let lab = start_manual(fleet(&["cp1"], rolling(json!(1))), Some(kc.clone()));
    wait_for_status(&lab, "daemonsets", "kube-proxy", "kube-proxy status", |ds| ds["status"]["numberAvailable"] == 5);
    let settled = kubectl_ok(&kc, &["rollout", "status", "ds/kube-proxy", "-n", "kube-system", "--timeout=120s"]);
    assert!(settled.contains("daemon set \"kube-proxy\" successfully rolled out"), "{settled}");
    upgrade_cp1(&lab);
    let template_image = kubectl_ok(
        &kc,
        &["get", "ds", "kube-proxy", "-n", "kube-system", "-o", "jsonpath={.spec.template.spec.containers[0].image}"],
    );
    assert_eq!(template_image, NEW_PROXY);
    let out = rollout_status_stepping(&lab, &kc, "kube-proxy");
    assert!(out.contains("daemon set \"kube-proxy\" successfully rolled out"), "{out}");
    assert!(
        out.contains("Waiting for daemon set \"kube-proxy\" rollout to finish"),
        "kubectl saw the rollout in progress: {out}"
    );
    let pods = lab.list("pods", Some("kube-system"));
    let proxies: Vec<&Value> =
        owned_by(&pods, "kube-proxy").filter(|p| p["metadata"].get("deletionTimestamp").is_none()).collect();
    assert_eq!(proxies.len(), 5);
    assert!(proxies.iter().all(|p| image(p) == NEW_PROXY && ready_alive(p)));
    let out = kubectl_ok(&kc, &["rollout", "status", "deployment/coredns", "-n", "kube-system", "--timeout=120s"]);
    assert!(out.contains("deployment \"coredns\" successfully rolled out"), "{out}");
    // Old pods may still be terminating (their grace period); the live ones all run the new image.
    let pods = lab.list("pods", Some("kube-system"));
    let dns: Vec<&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "coredns" && p["metadata"].get("deletionTimestamp").is_none())
        .collect();
    assert_eq!(dns.len(), 2);
    assert!(dns.iter().all(|p| image(p) == NEW_DNS && ready_alive(p)), "{dns:#?}");
}

#[test]
fn kubeadm_replaces_a_custom_kube_proxy_strategy_with_its_own() {
    // kubeadm writes its own kube-proxy DaemonSet: OnDelete becomes RollingUpdate, one node at a
    // time, so the upgrade rolls kube-proxy whatever the site had set.
    let lab = start(fleet(&["cp1"], json!({"type": "OnDelete"})), 50.0, None);
    upgrade_cp1(&lab);
    let ds = lab.get("daemonsets", "kube-system", "kube-proxy").unwrap();
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    wait_for(20, "every kube-proxy pod on the new image", || {
        let by_node = proxy_pods(&lab);
        by_node.len() == 5 && by_node.values().flatten().all(|p| image(p) == NEW_PROXY && ready_alive(p))
    });
}
