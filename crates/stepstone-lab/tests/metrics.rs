//! The lab's `/metrics` and its deprecated API versions, driven by the real `kubectl`: request
//! counters that move, the `Warning:` line and deprecated-API gauge of a request to
//! `policy/v1beta1` on a 1.24 cluster, and that version gone (404, not in `kubectl api-versions`)
//! once `kubeadm upgrade apply` reaches 1.25.

mod common;

use common::*;
use serde_json::{Value, json};
use stepstone_lab::{Package, UpgradeOptions};

#[test]
fn request_counters_move_with_kubectl_requests() {
    let (_lab, _dir, kc) = start_lab(drain_fleet(), 20.0);
    let list_pods = [
        ("code", "200"),
        ("component", "apiserver"),
        ("dry_run", ""),
        ("group", ""),
        ("resource", "pods"),
        ("scope", "namespace"),
        ("subresource", ""),
        ("verb", "LIST"),
        ("version", "v1"),
    ];
    let before = series(&metrics(&kc), "apiserver_request_total", &list_pods);
    kubectl_ok(&kc, &["get", "pods", "-n", "shop"]);
    kubectl_ok(&kc, &["get", "pods", "-n", "shop"]);
    let text = metrics(&kc);
    assert!(
        text.contains("# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n# TYPE apiserver_request_total counter\n"),
        "{text}"
    );
    assert_eq!(series(&text, "apiserver_request_total", &list_pods), before + 2.0, "{text}");

    let missing = kubectl(&kc, &["get", "pod", "no-such-pod", "-n", "shop"]);
    assert!(!missing.status.success());
    kubectl_ok(&kc, &["get", "deploy", "-A"]);
    kubectl_ok(&kc, &["scale", "deploy/web", "-n", "shop", "--replicas=3"]);
    let text = metrics(&kc);
    let get_404 = [("code", "404"), ("resource", "pods"), ("scope", "resource"), ("verb", "GET")];
    assert_eq!(series(&text, "apiserver_request_total", &get_404), 1.0, "{text}");
    let list_all = [("group", "apps"), ("resource", "deployments"), ("scope", "cluster"), ("verb", "LIST")];
    assert!(series(&text, "apiserver_request_total", &list_all) >= 1.0, "{text}");
    let scale = [("resource", "deployments"), ("subresource", "scale"), ("verb", "PATCH"), ("code", "200")];
    assert_eq!(series(&text, "apiserver_request_total", &scale), 1.0, "{text}");
    assert!(!text.contains("apiserver_requested_deprecated_apis"), "nothing deprecated was requested: {text}");
}

#[test]
fn a_deprecated_version_warns_marks_the_gauge_and_shares_storage() {
    let (lab, dir, kc) = start_lab(fleet_1_24(), 20.0);
    let cache = dir.path().join("cache");
    let versions = kubectl_ok(&kc, &["api-versions"]);
    assert!(
        versions.lines().any(|l| l == "policy/v1beta1") && versions.lines().any(|l| l == "policy/v1"),
        "{versions}"
    );

    let out = kubectl_fresh(&kc, &cache, &["get", "poddisruptionbudgets.v1beta1.policy", "-n", "shop"], None);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("web ")), "{stdout}");
    assert!(stderr.lines().any(|l| l == PDB_WARNING), "kubectl prints the apiserver's warning: {stderr}");

    let raw = kubectl_ok(&kc, &["get", "--raw", "/apis/policy/v1beta1/namespaces/shop/poddisruptionbudgets/web"]);
    let web: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(web["apiVersion"], "policy/v1beta1", "{raw}");
    assert_eq!(web["kind"], "PodDisruptionBudget");
    let list: Value = serde_json::from_str(&kubectl_ok(
        &kc,
        &["get", "--raw", "/apis/policy/v1beta1/namespaces/shop/poddisruptionbudgets"],
    ))
    .unwrap();
    assert_eq!(list["apiVersion"], "policy/v1beta1");
    assert_eq!(list["kind"], "PodDisruptionBudgetList");

    // Written through the old version (kubectl validates it against the lab's OpenAPI document for
    // it), stored once, read back through the current one.
    let legacy = json!({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "legacy", "namespace": "shop"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
    let out = kubectl_fresh(&kc, &cache, &["create", "-f", "-"], Some(&legacy.to_string()));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("poddisruptionbudget.policy/legacy created"), "{stdout}");
    assert!(stderr.lines().any(|l| l == PDB_WARNING), "{stderr}");
    assert_eq!(lab.get("poddisruptionbudgets", "shop", "legacy").expect("stored")["apiVersion"], "policy/v1");
    let current = kubectl_ok(&kc, &["get", "pdb", "legacy", "-n", "shop", "-o", "jsonpath={.apiVersion}"]);
    assert_eq!(current, "policy/v1");

    // Watch events carry the requested version too.
    let watched = kubectl_ok(
        &kc,
        &["get", "--raw", "/apis/policy/v1beta1/namespaces/shop/poddisruptionbudgets?watch=1&timeoutSeconds=1"],
    );
    let events: Vec<Value> = watched.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.len() >= 2, "{watched}");
    assert!(events.iter().all(|e| e["object"]["apiVersion"] == "policy/v1beta1"), "{watched}");

    let text = metrics(&kc);
    assert!(
        text.contains("# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested, broken out by API group, version, resource, subresource, and removed_release.\n# TYPE apiserver_requested_deprecated_apis gauge\n"),
        "{text}"
    );
    assert!(
        text.contains("apiserver_requested_deprecated_apis{group=\"policy\",removed_release=\"1.25\",resource=\"poddisruptionbudgets\",subresource=\"\",version=\"v1beta1\"} 1\n"),
        "{text}"
    );
    let found = stepstone_apis::metrics::parse("lab /metrics", &text).unwrap();
    assert_eq!(found.len(), 1, "only policy/v1beta1 was requested: {found:?}");
    let created =
        [("code", "201"), ("group", "policy"), ("version", "v1beta1"), ("scope", "resource"), ("verb", "POST")];
    assert_eq!(series(&text, "apiserver_request_total", &created), 1.0, "{text}");
    let watches = [("group", "policy"), ("version", "v1beta1"), ("verb", "WATCH")];
    assert_eq!(series(&text, "apiserver_request_total", &watches), 1.0, "{text}");
}

#[test]
fn the_deprecated_version_is_gone_after_the_upgrade_to_its_removal_release() {
    let (lab, dir, kc) = start_lab(fleet_1_24(), 20.0);
    let path = "/apis/policy/v1beta1/namespaces/shop/poddisruptionbudgets/web";
    kubectl_ok(&kc, &["get", "--raw", path]);

    let ops = lab.nodes();
    ops.configure_repository("cp1", "v1.25").unwrap();
    ops.install_package("cp1", Package::Kubeadm, "1.25.16-1.1").unwrap();
    ops.kubeadm_upgrade_apply("cp1", "v1.25.16", &UpgradeOptions::default()).unwrap();

    let versions = kubectl_ok(&kc, &["api-versions"]);
    assert!(!versions.lines().any(|l| l == "policy/v1beta1"), "{versions}");
    assert!(versions.lines().any(|l| l == "policy/v1"), "{versions}");
    let out = kubectl(&kc, &["get", "--raw", path]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Error from server (NotFound): the server could not find the requested resource"),
        "{stderr}"
    );
    let out = kubectl_fresh(
        &kc,
        &dir.path().join("cache-after"),
        &["get", "poddisruptionbudgets.v1beta1.policy", "-A"],
        None,
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("Warning: policy/v1beta1"), "{stderr}");
    // The objects are still there through policy/v1.
    assert!(kubectl_ok(&kc, &["get", "pdb", "web", "-n", "shop", "--no-headers"]).starts_with("web "));
}
