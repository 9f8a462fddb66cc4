//! DaemonSets as a real apiserver stores them, driven by the real `kubectl`: a hand-written
//! DaemonSet loaded from a fleet file gets the API defaults (RollingUpdate, maxUnavailable 1) so
//! `kubectl rollout status` accepts it, while a snapshot's DaemonSet is loaded unchanged; and the
//! template generation: a template change bumps `metadata.generation` and the
//! `deprecated.daemonset.template.generation` annotation, which the DaemonSet controller copies
//! into its pods' `pod-template-generation` label.

mod common;

use common::*;
use serde_json::{Value, json};
use stepstone_lab::LabHandle;

const ANNOTATION: &str = "deprecated.daemonset.template.generation";

fn get_json(kc: &std::path::Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(kc, &all)).expect("kubectl prints JSON")
}

/// The `pod-template-generation` labels of the live pods of DaemonSet `ds`, by node.
fn generations_by_node(lab: &LabHandle, ds: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = lab
        .list("pods", Some("kube-system"))
        .iter()
        .filter(|p| {
            p["metadata"]["ownerReferences"][0]["name"] == ds && p["metadata"].get("deletionTimestamp").is_none()
        })
        .map(|p| {
            let node = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
            let label = p["metadata"]["labels"]["pod-template-generation"].as_str().unwrap_or("none").to_string();
            (node, label)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_hand_written_daemonset_gets_the_api_defaults_and_rollout_status_accepts_it() {
    // common::daemonset writes no updateStrategy, as a hand-written manifest often does.
    let fleet = drain_fleet();
    let written = fleet["items"].as_array().unwrap().iter().find(|i| i["kind"] == "DaemonSet").unwrap().clone();
    assert!(written["spec"].get("updateStrategy").is_none());
    let (_lab, _dir, kc) = start_lab(fleet, 20.0);

    let ds = get_json(&kc, &["get", "ds", "kube-proxy", "-n", "kube-system"]);
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
        "{ds}"
    );
    assert_eq!(ds["metadata"]["annotations"][ANNOTATION], "1", "{ds}");
    assert_eq!(ds["metadata"]["generation"], 1, "loading is not an update: {ds}");
    let out = kubectl_ok(&kc, &["rollout", "status", "ds/kube-proxy", "-n", "kube-system", "--timeout=30s"]);
    assert!(out.contains("daemon set \"kube-proxy\" successfully rolled out"), "{out}");
}

#[test]
fn a_snapshot_daemonset_is_loaded_unchanged() {
    let mut fleet = drain_fleet();
    let strategy = json!({"type": "OnDelete"});
    for item in fleet["items"].as_array_mut().unwrap() {
        if item["kind"] == "DaemonSet" {
            item["metadata"]["generation"] = json!(4);
            item["metadata"]["annotations"] = json!({ANNOTATION: "3"});
            item["metadata"]["resourceVersion"] = json!("912");
            item["spec"]["updateStrategy"] = strategy.clone();
            item["spec"]["revisionHistoryLimit"] = json!(10);
        }
    }
    let original = fleet["items"].as_array().unwrap().iter().find(|i| i["kind"] == "DaemonSet").unwrap().clone();
    let (lab, _dir, _kc) = start_lab(fleet, 20.0);
    let stored = lab.get("daemonsets", "kube-system", "kube-proxy").unwrap();
    assert_eq!(stored["metadata"]["generation"], 4);
    assert_eq!(stored["metadata"]["annotations"], original["metadata"]["annotations"]);
    assert_eq!(stored["metadata"]["uid"], original["metadata"]["uid"]);
    assert_eq!(stored["metadata"]["creationTimestamp"], original["metadata"]["creationTimestamp"]);
    assert_eq!(stored["spec"], original["spec"], "no default overrides what the snapshot has");
}

#[test]
fn a_template_change_bumps_the_template_generation_and_the_pods_carry_it() {
    let (lab, _dir, kc) = start_lab(drain_fleet(), 20.0);
    let nodes = ["cp1", "w1", "w2", "w3"];

    // A change outside the template moves metadata.generation only.
    kubectl_ok(&kc, &["patch", "ds/kube-proxy", "-n", "kube-system", "-p", r#"{"spec":{"minReadySeconds":0}}"#]);
    let ds = get_json(&kc, &["get", "ds", "kube-proxy", "-n", "kube-system"]);
    assert_eq!(ds["metadata"]["generation"], 2, "{ds}");
    assert_eq!(ds["metadata"]["annotations"][ANNOTATION], "1", "{ds}");

    kubectl_ok(&kc, &["set", "image", "ds/kube-proxy", "-n", "kube-system", "app=registry.example/app:2.0"]);
    let ds = get_json(&kc, &["get", "ds", "kube-proxy", "-n", "kube-system"]);
    assert_eq!(ds["metadata"]["generation"], 3, "{ds}");
    assert_eq!(ds["metadata"]["annotations"][ANNOTATION], "2", "the template's own count: {ds}");

    let out = kubectl_ok(&kc, &["rollout", "status", "ds/kube-proxy", "-n", "kube-system", "--timeout=60s"]);
    assert!(out.contains("daemon set \"kube-proxy\" successfully rolled out"), "{out}");
    let want: Vec<(String, String)> = nodes.iter().map(|n| (n.to_string(), "2".to_string())).collect();
    wait_for(30, "every kube-proxy pod at template generation 2", || generations_by_node(&lab, "kube-proxy") == want);
    let selected = kubectl_ok(
        &kc,
        &["get", "pods", "-n", "kube-system", "-l", "app=kube-proxy,pod-template-generation=2", "--no-headers"],
    );
    assert_eq!(selected.lines().count(), nodes.len(), "{selected}");

    // The annotation is the apiserver's: a client cannot set it.
    kubectl_ok(&kc, &["annotate", "--overwrite", "ds/kube-proxy", "-n", "kube-system", &format!("{ANNOTATION}=7")]);
    let ds = get_json(&kc, &["get", "ds", "kube-proxy", "-n", "kube-system"]);
    assert_eq!(ds["metadata"]["annotations"][ANNOTATION], "2", "{ds}");
    assert_eq!(ds["metadata"]["generation"], 3, "{ds}");
}
