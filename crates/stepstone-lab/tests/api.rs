//! The lab through a real Kubernetes client (kube-rs): pagination, watches, the three patch
//! types, optimistic concurrency, graceful deletion, evictions against budgets (the upstream
//! disruption controller's arithmetic), node operations, `/version` and injected faults.

mod common;

use std::time::Duration;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::{Eviction, PodDisruptionBudget};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use stepstone_lab::{FaultConfig, KubeletState, Lab, LabHandle, LabOptions, Package, UpgradeOptions};

async fn client(lab: &LabHandle) -> Client {
    let kc = Kubeconfig::from_yaml(&lab.kubeconfig()).unwrap();
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.unwrap();
    // Our own tests see every answer; no hidden retries.
    config.default_retry = false;
    Client::try_from(config).unwrap()
}

async fn start(fleet: Value, speed: f64) -> (LabHandle, Client) {
    let lab = Lab::start(fleet, LabOptions { speed, ..Default::default() }).await.unwrap();
    let c = client(&lab).await;
    (lab, c)
}

async fn eventually<F: Fn() -> bool>(secs: u64, what: &str, f: F) {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other}"),
    }
}

fn many_pods_fleet(n: usize) -> Value {
    let mut items = vec![node("w1", false, "v2")];
    for i in 0..n {
        items.push(running_pod(
            "default",
            &format!("p{i:03}"),
            "w1",
            json!({"app": if i % 2 == 0 {"even"} else {"odd"}}),
            None,
        ));
    }
    list(items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_paginate_and_filter() {
    let (_lab, c) = start(many_pods_fleet(25), 10.0).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = pods.list(&lp).await.unwrap();
        pages += 1;
        names.extend(page.items.iter().map(|p| p.metadata.name.clone().unwrap()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "key order");
    let even = pods.list(&ListParams::default().labels("app=even")).await.unwrap();
    assert_eq!(even.items.len(), 13);
    let on_node = Api::<Pod>::all(c.clone())
        .list(&ListParams::default().fields("spec.nodeName=w1,status.phase!=Failed"))
        .await
        .unwrap();
    assert_eq!(on_node.items.len(), 25);
    let none = Api::<Pod>::all(c.clone()).list(&ListParams::default().fields("spec.nodeName=elsewhere")).await.unwrap();
    assert!(none.items.is_empty());
    let bad = Api::<Pod>::all(c).list(&ListParams::default().fields("spec.bogus=1")).await.unwrap_err();
    assert_eq!(api_error(bad).code, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_changes_after_a_version() {
    let (_lab, c) = start(many_pods_fleet(3), 10.0).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let rv = pods.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut stream = pods.watch(&WatchParams::default().labels("app=odd").timeout(20), &rv).await.unwrap().boxed();
    // A change to a watched pod, a change to a pod outside the selector, then a forced delete.
    pods.patch("p001", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {"x": "1"}}})))
        .await
        .unwrap();
    pods.patch("p000", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {"x": "1"}}})))
        .await
        .unwrap();
    pods.delete("p001", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await.unwrap().unwrap().unwrap() {
            WatchEvent::Modified(p) => seen.push(format!("MODIFIED {}", p.metadata.name.unwrap())),
            WatchEvent::Deleted(p) => seen.push(format!("DELETED {}", p.metadata.name.unwrap())),
            WatchEvent::Added(p) => seen.push(format!("ADDED {}", p.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(seen, ["MODIFIED p001", "DELETED p001"]);
    // A watch from a version older than the history is told to list again (410).
    let mut old = pods.watch(&WatchParams::default(), "1").await.unwrap().boxed();
    match old.try_next().await {
        Ok(Some(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 410),
        other => {
            // Version 1 may still be inside the history of a tiny lab: then events flow.
            assert!(
                matches!(other, Ok(Some(WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_)))),
                "{other:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_conflicts_and_errors() {
    let (_lab, c) = start(drain_fleet(), 10.0).await;
    let nodes: Api<Node> = Api::all(c.clone());
    nodes
        .patch("w3", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"unschedulable": true}})))
        .await
        .unwrap();
    assert_eq!(nodes.get("w3").await.unwrap().spec.unwrap().unschedulable, Some(true));
    nodes.patch("w3", &PatchParams::default(), &Patch::Merge(json!({"spec": {"unschedulable": null}}))).await.unwrap();
    assert_eq!(nodes.get("w3").await.unwrap().spec.unwrap().unschedulable, None);
    let p: json_patch_ops::Ops = json_patch_ops::ops();
    nodes.patch("w3", &PatchParams::default(), &Patch::<()>::Json(p)).await.unwrap();
    assert_eq!(nodes.get("w3").await.unwrap().metadata.labels.unwrap()["rack"], "r12");

    // Optimistic concurrency: an update with a stale resourceVersion is refused.
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "shop");
    // The controllers write the Deployment's status too, so the first replace may itself race
    // one of them: retry it as a client would, with the object read again.
    let mut attempts = 0;
    let (d, stored) = loop {
        let d = deploys.get("web").await.unwrap();
        let mut newer = d.clone();
        newer.spec.as_mut().unwrap().replicas = Some(3);
        match deploys.replace("web", &PostParams::default(), &newer).await {
            Ok(stored) => break (d, stored),
            Err(kube::Error::Api(s)) if attempts < 10 && s.code == 409 => attempts += 1,
            Err(e) => panic!("replace failed: {e}"),
        }
    };
    assert_eq!(stored.metadata.generation, Some(2));
    let mut stale = d.clone();
    stale.spec.as_mut().unwrap().replicas = Some(5);
    let e = api_error(deploys.replace("web", &PostParams::default(), &stale).await.unwrap_err());
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let e = api_error(deploys.get("nope").await.unwrap_err());
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "deployments.apps \"nope\" not found")
    );
    let e = api_error(deploys.create(&PostParams::default(), &d_clean(&d)).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "deployments.apps \"web\" already exists");
    let e = api_error(
        deploys
            .patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": -1}})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let scale = deploys
        .patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}})))
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(4));
    assert_eq!(deploys.get_scale("web").await.unwrap().status.unwrap().selector.as_deref(), Some("app=web"));
}

fn d_clean(d: &Deployment) -> Deployment {
    let mut d = d.clone();
    d.metadata.resource_version = None;
    d.metadata.uid = None;
    d
}

mod json_patch_ops {
    pub type Ops = json_patch::Patch;
    pub fn ops() -> Ops {
        serde_json::from_value(serde_json::json!([{"op": "add", "path": "/metadata/labels/rack", "value": "r12"}]))
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_delete_takes_the_grace_period() {
    let lab = Lab::start(drain_fleet(), LabOptions { manual_clock: true, ..Default::default() }).await.unwrap();
    let c = client(&lab).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "shop");
    let gone = pods
        .delete("web-5d8f7c9b6-p0", &DeleteParams { grace_period_seconds: Some(20), ..Default::default() })
        .await
        .unwrap();
    let pod = gone.left().expect("a graceful delete returns the pod");
    assert!(pod.metadata.deletion_timestamp.is_some());
    assert_eq!(pod.metadata.deletion_grace_period_seconds, Some(20));
    assert!(lab.get("pods", "shop", "web-5d8f7c9b6-p0").is_some(), "still terminating");
    lab.advance(Duration::from_secs(19)).await.unwrap();
    assert!(lab.get("pods", "shop", "web-5d8f7c9b6-p0").is_some(), "gone before its 20 s grace period ended");
    lab.advance(Duration::from_secs(1)).await.unwrap();
    assert!(lab.get("pods", "shop", "web-5d8f7c9b6-p0").is_none(), "still there when its grace period ended");
    // The ReplicaSet replaces it.
    eventually(10, "a replacement", || {
        lab.list("pods", Some("shop")).iter().filter(|p| p["metadata"]["labels"]["app"] == "web").count() == 2
    })
    .await;
    // A UID precondition that does not match is a conflict.
    let e = api_error(
        pods.delete(
            "web-5d8f7c9b6-p1",
            &DeleteParams {
                preconditions: Some(kube::api::Preconditions { uid: Some("other".into()), resource_version: None }),
                ..Default::default()
            },
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 409);
}

fn eviction(name: &str, uid: Option<&str>) -> Eviction {
    serde_json::from_value(json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name},
        "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}}))
    .unwrap()
}

async fn evict(c: &Client, ns: &str, name: &str) -> Result<(), kube::core::Status> {
    let pods: Api<Pod> = Api::namespaced(c.clone(), ns);
    pods.create_subresource::<Eviction, kube::core::Status>(
        "eviction",
        name,
        &PostParams::default(),
        &eviction(name, None),
    )
    .await
    .map(|_| ())
    .map_err(api_error)
}

/// A fleet with `replicas` pods of `app` (the first `unready` of them not Ready) and one budget.
fn budget_fleet(replicas: usize, unready: usize, spec: Value) -> Value {
    let placement: Vec<&str> = std::iter::repeat_n("w1", replicas).collect();
    let mut items = vec![node("w1", false, "v2"), node("w2", false, "v2")];
    let mut objs = deployment("ns", "app", &placement);
    for p in objs.iter_mut().filter(|o| o["kind"] == "Pod").take(unready) {
        p["status"]["conditions"][0]["status"] = json!("False");
        p["status"]["containerStatuses"][0]["ready"] = json!(false);
        // Crash-looping, so the simulated kubelet leaves it unready.
        p["status"]["containerStatuses"][0]["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
    }
    items.extend(objs);
    items.push(pdb("ns", "budget", "app", spec));
    list(items)
}

async fn status_of(c: &Client) -> k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus {
    let api: Api<PodDisruptionBudget> = Api::namespaced(c.clone(), "ns");
    for _ in 0..200 {
        let p = api.get("budget").await.unwrap();
        if let Some(s) = p.status.filter(|s| s.observed_generation == Some(1)) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no PDB status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_arithmetic_matches_the_disruption_controller() {
    // (replicas, unready, spec) -> (expected, desired, current, allowed)
    let cases = [
        (5, 0, json!({"minAvailable": "50%"}), (5, 3, 5, 2)),
        (5, 0, json!({"maxUnavailable": "30%"}), (5, 3, 5, 2)),
        (4, 1, json!({"maxUnavailable": 1}), (4, 3, 3, 0)),
        (3, 0, json!({"minAvailable": 3}), (3, 3, 3, 0)),
        (10, 2, json!({"minAvailable": "75%"}), (10, 8, 8, 0)),
    ];
    for (replicas, unready, spec, (expected, desired, current, allowed)) in cases {
        let (_lab, c) = start(budget_fleet(replicas, unready, spec.clone()), 1.0).await;
        let s = status_of(&c).await;
        assert_eq!(
            (s.expected_pods, s.desired_healthy, s.current_healthy, s.disruptions_allowed),
            (expected, desired, current, allowed),
            "{spec}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_follow_the_budget() {
    // minAvailable 2 of 3 Ready: one eviction passes, the next is refused with the cause.
    let (_lab, c) = start(budget_fleet(3, 0, json!({"minAvailable": 2})), 1.0).await;
    status_of(&c).await;
    evict(&c, "ns", "app-5d8f7c9b6-p0").await.unwrap();
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(c.clone(), "ns");
    for _ in 0..200 {
        if budgets.get("budget").await.unwrap().status.unwrap().current_healthy == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let e = evict(&c, "ns", "app-5d8f7c9b6-p1").await.unwrap_err();
    assert_eq!((e.code, e.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(e.message, "Cannot evict pod as it would violate the pod's disruption budget.");
    let cause = &e.details.unwrap().causes[0];
    assert_eq!(cause.reason, "DisruptionBudget");
    assert_eq!(cause.message, "The disruption budget budget needs 2 healthy pods and has 2 currently");
    let e = evict(&c, "ns", "missing").await.unwrap_err();
    assert_eq!(e.code, 404);

    // An unready pod may go while the budget is met, without consuming it.
    let (_lab, c) = start(budget_fleet(4, 1, json!({"minAvailable": 2})), 1.0).await;
    status_of(&c).await;
    evict(&c, "ns", "app-5d8f7c9b6-p0").await.unwrap();

    // A UID precondition that does not match: 409.
    let pods: Api<Pod> = Api::namespaced(c.clone(), "ns");
    let e = pods
        .create_subresource::<Eviction, kube::core::Status>(
            "eviction",
            "app-5d8f7c9b6-p1",
            &PostParams::default(),
            &eviction("app-5d8f7c9b6-p1", Some("wrong")),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(e).code, 409);

    // Two budgets over one pod: 500, whatever they allow.
    let mut fleet = budget_fleet(3, 0, json!({"maxUnavailable": 2}));
    let mut second = pdb("ns", "second", "app", json!({"maxUnavailable": 2}));
    second["metadata"]["uid"] = json!("uid-second");
    fleet["items"].as_array_mut().unwrap().push(second);
    let (_lab, c) = start(fleet, 1.0).await;
    status_of(&c).await;
    let e = evict(&c, "ns", "app-5d8f7c9b6-p0").await.unwrap_err();
    assert_eq!(e.code, 500);
    assert_eq!(
        e.message,
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_restart_brings_the_new_version_or_fails_on_cgroup_v1() {
    let (lab, c) = start(drain_fleet(), 100.0).await;
    let ops = lab.nodes();
    let nodes: Api<Node> = Api::all(c.clone());
    ops.configure_repository("w2", "v1.35").unwrap();
    ops.install_package("w2", Package::Kubelet, "1.35.1-1.1").unwrap();
    assert_eq!(ops.facts("w2").unwrap().packages["kubelet"], "1.35.1-1.1");
    // Installing does not change the running kubelet.
    assert_eq!(nodes.get("w2").await.unwrap().status.unwrap().node_info.unwrap().kubelet_version, "v1.34.2");
    ops.restart_kubelet("w2").unwrap();
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(ready(&nodes.get("w2").await.unwrap()), "False");
    for _ in 0..200 {
        if ready(&nodes.get("w2").await.unwrap()) == "True" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let n = nodes.get("w2").await.unwrap();
    assert_eq!(ready(&n), "True");
    assert_eq!(n.status.unwrap().node_info.unwrap().kubelet_version, "v1.35.1");

    // w1 runs cgroup v1: a 1.35 kubelet refuses to start, the node stays NotReady.
    ops.configure_repository("w1", "v1.35").unwrap();
    ops.install_package("w1", Package::Kubelet, "1.35.1-1.1").unwrap();
    ops.restart_kubelet("w1").unwrap();
    eventually(5, "the kubelet on w1 to fail", || {
        matches!(ops.facts("w1").unwrap().kubelet, KubeletState::Failed { .. })
    })
    .await;
    let n = nodes.get("w1").await.unwrap();
    assert_eq!(ready(&n), "Unknown");
    assert_eq!(n.status.unwrap().node_info.unwrap().kubelet_version, "v1.34.2");
    let events = lab.list("events", None);
    assert!(
        events.iter().any(|e| e["involvedObject"]["name"] == "w1"
            && e["type"] == "Warning"
            && e["message"].as_str().unwrap().contains("cgroup v1")),
        "an error event names the cgroup v1 refusal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeadm_upgrade_apply_moves_static_pods_and_version() {
    let (lab, c) = start(drain_fleet(), 100.0).await;
    let ops = lab.nodes();
    assert_eq!(c.apiserver_version().await.unwrap().git_version, "v1.34.2");
    let e = ops.kubeadm_upgrade_apply("cp1", "v1.35.0", &UpgradeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("Upgrade kubeadm first"), "{e}");
    let e = ops.kubeadm_upgrade_apply("w2", "v1.35.0", &UpgradeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("control-plane"), "{e}");
    ops.configure_repository("cp1", "v1.35").unwrap();
    ops.install_package("cp1", Package::Kubeadm, "1.35.0-1.1").unwrap();
    let e = ops.kubeadm_upgrade_apply("cp1", "v1.36.0", &UpgradeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("higher than the kubeadm version"), "{e}");
    let report = ops.kubeadm_upgrade_apply("cp1", "v1.35.0", &UpgradeOptions::default()).unwrap();
    assert!(report.changed.iter().any(|c| c == "kube-apiserver: v1.34.2 -> v1.35.0"), "{report:?}");
    assert_eq!(c.apiserver_version().await.unwrap().git_version, "v1.35.0");
    let facts = ops.facts("cp1").unwrap();
    assert_eq!(facts.static_pods["kube-scheduler"], "v1.35.0");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "kube-system");
    let api_pod = pods.get("kube-apiserver-cp1").await.unwrap();
    assert!(api_pod.spec.unwrap().containers[0].image.as_deref().unwrap().ends_with(":v1.35.0"));
    // Static pods restart and come back Ready.
    eventually(10, "the apiserver pod to be Ready", || {
        lab.get("pods", "kube-system", "kube-apiserver-cp1").unwrap()["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
    .await;
    // Workers take `upgrade node`; w1 (cgroup v1) is refused by preflight once kubeadm is 1.35.
    ops.configure_repository("w1", "v1.35").unwrap();
    ops.install_package("w1", Package::Kubeadm, "1.35.0-1.1").unwrap();
    let e = ops.kubeadm_upgrade_node("w1", &UpgradeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("SystemVerification"), "{e}");
    ops.configure_repository("w2", "v1.35").unwrap();
    ops.install_package("w2", Package::Kubeadm, "1.35.0-1.1").unwrap();
    ops.kubeadm_upgrade_node("w2", &UpgradeOptions::default()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_answer_errors_and_throttling() {
    let (lab, c) = start(drain_fleet(), 10.0).await;
    let nodes: Api<Node> = Api::all(c.clone());
    lab.set_faults(FaultConfig { error_rate: 1.0, ..Default::default() }).unwrap();
    let e = api_error(nodes.get("w1").await.unwrap_err());
    assert_eq!(e.code, 500);
    lab.set_faults(FaultConfig { throttle_rate: 1.0, ..Default::default() }).unwrap();
    let e = api_error(nodes.get("w1").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (429, "TooManyRequests"));
    assert!(e.details.is_none_or(|d| d.causes.is_empty()), "throttling carries no DisruptionBudget cause");
    lab.set_faults(FaultConfig { latency_ms: 150, ..Default::default() }).unwrap();
    let t = std::time::Instant::now();
    nodes.get("w1").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    // A node that never returns from a kubelet restart.
    let mut never = FaultConfig::default();
    never.never_return.insert("w3".into());
    lab.set_faults(never).unwrap();
    lab.nodes().restart_kubelet("w3").unwrap();
    lab.settle().await;
    assert!(!lab.nodes().facts("w3").unwrap().ready);
    let counts = lab.requests();
    assert!(counts.by_verb["get"] >= 3, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_read_back_matches_the_fleet() {
    let fleet = drain_fleet();
    let (_lab, c) = start(fleet.clone(), 1.0).await;
    let opts = stepstone_core::snapshot::SnapshotOptions::default();
    let mut from_file = stepstone_core::snapshot::ObjectSet::default();
    from_file.add_document("fleet", fleet).unwrap();
    let expected = from_file.into_inventory("fleet", &opts).unwrap();
    let mut from_lab = stepstone_core::snapshot::ObjectSet::default();
    for path in [
        "/api/v1/nodes",
        "/api/v1/pods",
        "/apis/policy/v1/poddisruptionbudgets",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/replicasets",
        "/apis/apps/v1/statefulsets",
        "/apis/apps/v1/daemonsets",
    ] {
        let req = http::Request::get(path).body(Vec::new()).unwrap();
        let list: Value = c.request(req).await.unwrap();
        from_lab.add_document(path, list).unwrap();
    }
    let got = from_lab.into_inventory("lab", &opts).unwrap();
    let names = |inv: &stepstone_core::inventory::Inventory| -> Vec<String> {
        inv.nodes
            .iter()
            .map(|n| format!("{} {} {}", n.name, n.kubelet_version, n.generation))
            .chain(inv.pods.iter().map(|p| format!("{}/{} {:?}", p.namespace, p.name, p.node_name)))
            .collect()
    };
    assert_eq!(names(&got), names(&expected));
    assert_eq!(got.pdbs.len(), expected.pdbs.len());
    assert_eq!(got.workloads.len(), expected.workloads.len());
}

/// The raw bytes of a watch of the pods, read until the lab closes the connection.
fn raw_watch(addr: std::net::SocketAddr, timeout_seconds: u32) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        conn,
        "GET /api/v1/namespaces/default/pods?watch=true&timeoutSeconds={timeout_seconds} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut bytes = Vec::new();
    // A cut connection may end in a reset rather than an orderly close: keep what came.
    let _ = conn.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The drop-watch fault cuts a watch's connection mid-stream, within a second: the chunked body
/// never gets its last chunk, as when an apiserver restarts. Without it, the same watch streams
/// until its timeout and ends with the last chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_end_with_a_cut_connection() {
    let (lab, _c) = start(many_pods_fleet(3), 10.0).await;
    let addr = lab.addr;
    let cut = |rate: f64| lab.set_faults(FaultConfig { drop_watch_rate: rate, ..Default::default() });
    cut(1.0).unwrap();
    let began = std::time::Instant::now();
    let body = tokio::task::spawn_blocking(move || raw_watch(addr, 60)).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"type\":\"ADDED\""), "the initial events came first: {body}");
    assert!(!body.ends_with("0\r\n\r\n"), "no last chunk: the stream was cut: {body}");
    assert!(began.elapsed() < Duration::from_secs(50), "cut long before its 60 s timeout");

    cut(0.0).unwrap();
    let body = tokio::task::spawn_blocking(move || raw_watch(addr, 2)).await.unwrap();
    assert!(body.contains("\"type\":\"ADDED\""), "{body}");
    assert!(body.ends_with("0\r\n\r\n"), "without the fault the watch ends at its timeout, whole: {body}");
}
