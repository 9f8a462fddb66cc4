//! ControllerRevisions of DaemonSets, driven by the real `kubectl`: the DaemonSet controller keeps
//! one revision per distinct template (named `<ds>-<hash>`, the hash its pods carry in
//! `controller-revision-hash`, owned by the DaemonSet), so `kubectl rollout history ds` lists
//! them and `kubectl rollout undo ds` patches the previous template back, which then becomes the
//! newest revision.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;
use stepstone_lab::LabHandle;

/// `(revision, image)` of kube-proxy's ControllerRevisions, by revision.
fn revisions(lab: &LabHandle) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = lab
        .list("controllerrevisions", Some("kube-system"))
        .iter()
        .filter(|cr| cr["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("kube-proxy-")))
        .map(|cr| {
            let image = cr.pointer("/data/spec/template/spec/containers/0/image").and_then(Value::as_str);
            (cr["revision"].as_i64().unwrap(), image.unwrap_or("").to_string())
        })
        .collect();
    out.sort();
    out
}

fn history_revisions(kc: &Path) -> Vec<String> {
    let out = kubectl_ok(kc, &["rollout", "history", "ds/kube-proxy", "-n", "kube-system"]);
    assert!(out.starts_with("daemonset.apps/kube-proxy \nREVISION  CHANGE-CAUSE\n"), "{out}");
    out.lines().skip(2).filter(|l| !l.trim().is_empty()).map(|l| l.split_whitespace().next().unwrap().into()).collect()
}

#[test]
fn daemonset_revisions_drive_rollout_history_and_undo() {
    let (lab, _dir, kc) = start_lab(drain_fleet(), 50.0);
    wait_for(10, "the first revision", || revisions(&lab).len() == 1);
    let ds = lab.get("daemonsets", "kube-system", "kube-proxy").unwrap();
    let crs = lab.list("controllerrevisions", Some("kube-system"));
    let cr = &crs[0];
    let hash = cr["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap().to_string();
    assert_eq!(cr["metadata"]["name"], format!("kube-proxy-{hash}"));
    assert_eq!(cr["metadata"]["labels"]["app"], "kube-proxy", "the template's labels");
    assert_eq!(cr["metadata"]["ownerReferences"][0]["uid"], ds["metadata"]["uid"]);
    assert_eq!(cr["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(cr["data"]["spec"]["template"]["$patch"], "replace");
    wait_for(10, "pods labelled with the revision's hash", || {
        lab.list("pods", Some("kube-system"))
            .iter()
            .any(|p| p["metadata"]["labels"]["controller-revision-hash"] == hash)
    });

    // Served like upstream: namespaced under apps/v1, readable by kubectl.
    let resources = kubectl_ok(&kc, &["api-resources", "--api-group=apps", "--no-headers"]);
    assert!(
        resources.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["controllerrevisions", "apps/v1", "true", "ControllerRevision"]),
        "{resources}"
    );
    let listed: Value =
        serde_json::from_str(&kubectl_ok(&kc, &["get", "controllerrevisions", "-n", "kube-system", "-o", "json"]))
            .unwrap();
    assert_eq!(listed["items"][0]["kind"], "ControllerRevision");
    assert_eq!(history_revisions(&kc), ["1"]);

    kubectl_ok(&kc, &["set", "image", "ds/kube-proxy", "app=registry.example/app:2.0", "-n", "kube-system"]);
    wait_for(10, "a second revision", || revisions(&lab).len() == 2);
    assert_eq!(
        revisions(&lab),
        [(1, "registry.example/app:1.0".to_string()), (2, "registry.example/app:2.0".to_string())]
    );
    assert_eq!(history_revisions(&kc), ["1", "2"]);
    // `kubectl get` prints the apiserver's columns for revisions.
    let table = kubectl_ok(&kc, &["get", "controllerrevisions", "-n", "kube-system"]);
    let header: Vec<&str> = table.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "CONTROLLER", "REVISION", "AGE"], "{table}");
    let rows: Vec<Vec<&str>> = table.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert!(rows.iter().all(|r| r[1] == "daemonset.apps/kube-proxy"), "{table}");
    let mut numbers: Vec<&str> = rows.iter().map(|r| r[2]).collect();
    numbers.sort();
    assert_eq!(numbers, ["1", "2"], "{table}");
    let first = kubectl_ok(&kc, &["rollout", "history", "ds/kube-proxy", "-n", "kube-system", "--revision=1"]);
    assert!(first.contains("registry.example/app:1.0"), "{first}");

    let undo = kubectl_ok(&kc, &["rollout", "undo", "ds/kube-proxy", "-n", "kube-system"]);
    assert_eq!(undo.trim(), "daemonset.apps/kube-proxy rolled back");
    let image = kubectl_ok(
        &kc,
        &["get", "ds/kube-proxy", "-n", "kube-system", "-o", "jsonpath={.spec.template.spec.containers[0].image}"],
    );
    assert_eq!(image, "registry.example/app:1.0");
    let ds = lab.get("daemonsets", "kube-system", "kube-proxy").unwrap();
    assert!(ds.pointer("/spec/template/$patch").is_none(), "the directive is not stored: {ds}");
    // The old template is the newest revision again, not a third one.
    wait_for(10, "revision 1 renumbered to 3", || {
        revisions(&lab) == [(2, "registry.example/app:2.0".to_string()), (3, "registry.example/app:1.0".to_string())]
    });
    assert_eq!(history_revisions(&kc), ["2", "3"]);
    wait_for(20, "pods back on the first template", || {
        let pods = lab.list("pods", Some("kube-system"));
        let proxies: Vec<&Value> = pods.iter().filter(|p| p["metadata"]["labels"]["app"] == "kube-proxy").collect();
        proxies.len() == 4 && proxies.iter().all(|p| p["metadata"]["labels"]["controller-revision-hash"] == hash)
    });

    // Deleting the DaemonSet collects its history.
    kubectl_ok(&kc, &["delete", "ds/kube-proxy", "-n", "kube-system"]);
    wait_for(10, "the revisions collected", || revisions(&lab).is_empty());
}
