//! `stepstone apis --kubeconfig` reads the lab's `/metrics`: a client that still calls
//! `policy/v1beta1` on a 1.24 cluster shows up as a finding of the 1.24 → 1.25 hop, with the
//! metric as its source.

mod common;

use common::TestLab;
use serde_json::{Value, json};

/// One control-plane node at 1.24 with its apiserver, one PodDisruptionBudget.
fn fleet_1_24() -> Value {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "cp1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "nodeInfo": {"kubeletVersion": "v1.24.17"}}});
    let apiserver = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "kube-apiserver-cp1", "namespace": "kube-system", "labels": {"component": "kube-apiserver"}},
        "spec": {"nodeName": "cp1", "containers": [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.24.17"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
    json!({"apiVersion": "v1", "kind": "List", "items": [node, apiserver, pdb]})
}

/// `stepstone apis --to v1.25 -o json` against the lab: the report and the exit code.
fn apis(lab: &TestLab) -> (Value, Option<i32>) {
    let out = lab.stepstone(&["apis", "--to", "v1.25", "-o", "json"]).env("RUST_LOG", "off").output().unwrap();
    (common::document(&out), out.status.code())
}

#[test]
fn a_client_calling_a_removed_version_is_found_in_the_lab_metrics() {
    let lab = TestLab::start(fleet_1_24(), 10.0);

    let metric_findings = |report: &Value| -> Vec<Value> {
        let hops = report["hops"].as_array().into_iter().flatten();
        hops.flat_map(|h| h["findings"].as_array().cloned().unwrap_or_default())
            .filter(|f| f["source"] == "metrics")
            .collect()
    };
    let (before, _) = apis(&lab);
    assert_eq!(metric_findings(&before), Vec::<Value>::new(), "nothing deprecated requested yet");

    // An old client reads the budget through policy/v1beta1 (served until 1.25).
    let out = lab.kubectl(&["get", "--raw", "/apis/policy/v1beta1/namespaces/shop/poddisruptionbudgets/web"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (report, code) = apis(&lab);
    let text = serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(code, Some(1), "a removal at the target is an error: {text}");
    assert_eq!(metric_findings(&report).len(), 1, "{text}");
    assert_eq!(report["current"], "1.24", "{text}");
    let hop = report["hops"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["to"] == "1.25")
        .unwrap_or_else(|| panic!("a 1.25 hop: {text}"));
    let finding = hop["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["source"] == "metrics")
        .unwrap_or_else(|| panic!("a finding from the metric: {text}"));
    let finding_text = finding.to_string();
    assert!(finding_text.contains("poddisruptionbudgets") && finding_text.contains("v1beta1"), "{text}");
    assert_eq!(finding["removedIn"], "1.25", "{text}");
    assert_eq!(finding["severity"], "error", "{text}");
    drop(lab);
}
