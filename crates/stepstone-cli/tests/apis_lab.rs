//! `stepstone apis` against `stepstone lab`: objects written through the real `kubectl` with a
//! current API version, one of them still carrying a `managedFields` entry from an old client and
//! one carrying only a stale `last-applied` annotation from before its migration.

mod common;

use common::TestLab;
use serde_json::{Value, json};

/// `kubectl create -f -` of `manifest` on the lab.
fn create(lab: &TestLab, manifest: &str) {
    let out = lab.kubectl_stdin(&["create", "-f", "-"], manifest);
    assert!(out.status.success(), "kubectl create: {}", common::stderr(&out));
}

fn deployment(name: &str, managed: Value, annotations: Value) -> String {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations, "managedFields": managed},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "registry.example/app:1"}]}}}
    })
    .to_string()
}

fn entry(manager: &str, api_version: &str) -> Value {
    json!({"manager": manager, "operation": "Update", "apiVersion": api_version, "time": "2024-01-01T00:00:00Z",
           "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}})
}

#[test]
fn lab_objects_name_the_old_manager_and_ignore_migrated_annotations() {
    let lab = TestLab::small(100.0, |_| {});

    // Written today with apps/v1, but a deploy tool still updates it through extensions/v1beta1.
    create(
        &lab,
        &deployment(
            "legacy-tool",
            json!([entry("old-deployer", "extensions/v1beta1"), entry("kubectl-create", "apps/v1")]),
            json!({}),
        ),
    );
    // Migrated long ago: the last-applied annotation still says extensions/v1beta1, but every
    // manager has written apps/v1 since.
    let stale = json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment",
                       "metadata": {"name": "migrated", "namespace": "default"}})
    .to_string();
    create(
        &lab,
        &deployment(
            "migrated",
            json!([entry("kubectl-client-side-apply", "apps/v1")]),
            json!({"kubectl.kubernetes.io/last-applied-configuration": stale}),
        ),
    );

    let out = lab.stepstone(&["apis", "--to", "v1.35", "-o", "json"]).env("RUST_LOG", "off").output().unwrap();
    let report = common::document(&out);
    let mut findings: Vec<Value> = report["alreadyRemoved"].as_array().cloned().unwrap_or_default();
    for hop in report["hops"].as_array().into_iter().flatten() {
        findings.extend(hop["findings"].as_array().cloned().unwrap_or_default());
    }
    let text = serde_json::to_string_pretty(&report).unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["manager"] == "old-deployer" && f["object"].as_str().unwrap_or("").contains("legacy-tool")),
        "the old client's manager is named: {text}"
    );
    assert!(
        !findings.iter().any(|f| f["object"].as_str().unwrap_or("").contains("migrated")),
        "no finding from a stale last-applied annotation: {text}"
    );
    drop(lab);
}
