//! Server-side apply through the real `kubectl apply --server-side`: create, update, a conflict
//! with the manager that scaled the Deployment, `--force-conflicts`, managedFields as kubectl
//! shows them, and a field dropped from the manifest leaving the object.

mod common;

use common::*;
use serde_json::Value;
use stepstone_lab::{Lab, LabOptions};

fn manifest(image: &str, replicas: i64, tier_label: bool) -> String {
    let tier = if tier_label { "\n    tier: backend" } else { "" };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
  labels:
    app: api{tier}
spec:
  replicas: {replicas}
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
        image: {image}
        ports:
        - containerPort: 8080
"
    )
}

fn get(kc: &std::path::Path) -> Value {
    let out = kubectl_ok(kc, &["get", "deploy", "api", "-n", "shop", "-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&out).expect("kubectl prints JSON")
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (e["manager"].as_str().unwrap_or("").to_string(), e["operation"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kubectl_server_side_apply_creates_updates_conflicts_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("lab.kubeconfig");
    let _lab = Lab::start_blocking(
        drain_fleet(),
        LabOptions { speed: 20.0, kubeconfig: Some(kc.clone()), ..Default::default() },
    )
    .expect("lab starts");
    let file = dir.path().join("deploy.yaml");
    let file_arg = file.to_str().unwrap();
    let apply = |args: &[&str]| {
        let mut all = vec!["apply", "--server-side", "-f", file_arg];
        all.extend_from_slice(args);
        kubectl(&kc, &all)
    };

    std::fs::write(&file, manifest("registry.example/api:1", 2, true)).unwrap();
    let out = apply(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "deployment.apps/api serverside-applied");
    let d = get(&kc);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10, "defaults are filled in on create");
    assert_eq!(managers(&d), [("kubectl".to_string(), "Apply".to_string())]);
    let fields = &d["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"api\"}"]["f:ports"]["k:{\"containerPort\":8080,\"protocol\":\"TCP\"}"]
            ["."],
        serde_json::json!({}),
        "{fields:#}"
    );
    assert!(fields["f:spec"].get("f:revisionHistoryLimit").is_none(), "nobody owns a default: {fields:#}");

    std::fs::write(&file, manifest("registry.example/api:2", 2, true)).unwrap();
    let out = apply(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d = get(&kc);
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "registry.example/api:2");
    assert_eq!(d["metadata"]["generation"], 2);

    kubectl_ok(&kc, &["scale", "deploy", "api", "-n", "shop", "--replicas=5"]);
    let scaled = get(&kc);
    let scaler = managers(&scaled)
        .into_iter()
        .find(|(m, o)| o == "Update" && m != "kubectl-client-side-apply")
        .map(|(m, _)| m)
        .unwrap_or_else(|| panic!("the scale is recorded as an Update: {:#}", scaled["metadata"]["managedFields"]));

    std::fs::write(&file, manifest("registry.example/api:2", 3, true)).unwrap();
    let out = apply(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("Apply failed with 1 conflict: conflict with \"{scaler}\""))
            && stderr.contains(".spec.replicas"),
        "{stderr}"
    );
    assert!(stderr.contains("--force-conflicts"), "kubectl explains how to resolve it: {stderr}");
    assert_eq!(get(&kc)["spec"]["replicas"], 5, "a refused apply changes nothing");

    let shown = kubectl_ok(&kc, &["get", "deploy", "api", "-n", "shop", "-o", "yaml", "--show-managed-fields"]);
    assert!(shown.contains("manager: kubectl\n") && shown.contains(&format!("manager: {scaler}\n")), "{shown}");
    assert!(shown.contains("operation: Apply") && shown.contains("operation: Update"), "{shown}");

    let out = apply(&["--force-conflicts"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d = get(&kc);
    assert_eq!(d["spec"]["replicas"], 3);
    let owners: Vec<String> = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["fieldsV1"]["f:spec"].get("f:replicas").is_some())
        .map(|e| e["manager"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(owners, ["kubectl"], "ownership moved to the applier");

    // Dropped from the manifest: the label goes, the rest stays.
    std::fs::write(&file, manifest("registry.example/api:2", 3, false)).unwrap();
    let out = apply(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d = get(&kc);
    assert!(d["metadata"]["labels"].get("tier").is_none(), "{:#}", d["metadata"]);
    assert_eq!(d["metadata"]["labels"]["app"], "api");

    // Without a field manager the apiserver refuses an apply.
    let out = kubectl(&kc, &["apply", "--server-side", "--field-manager=", "-f", file_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("fieldManager: Required value: is required for apply patch"), "{stderr}");
}

#[test]
fn client_writes_record_update_entries_by_manager() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("lab.kubeconfig");
    let _lab = Lab::start_blocking(
        drain_fleet(),
        LabOptions { speed: 20.0, kubeconfig: Some(kc.clone()), ..Default::default() },
    )
    .expect("lab starts");
    let file = dir.path().join("deploy.yaml");
    std::fs::write(&file, manifest("registry.example/api:1", 2, true)).unwrap();
    kubectl_ok(&kc, &["create", "-f", file.to_str().unwrap()]);
    let d = get(&kc);
    assert_eq!(managers(&d), [("kubectl-create".to_string(), "Update".to_string())]);
    let fields = &d["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(fields["f:metadata"]["f:labels"]["."], serde_json::json!({}), "{fields:#}");
    assert!(fields["f:spec"].get("f:revisionHistoryLimit").is_some(), "a creator owns the defaults: {fields:#}");
    kubectl_ok(&kc, &["label", "deploy", "api", "-n", "shop", "owner=team-a"]);
    let d = get(&kc);
    let label = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["fieldsV1"]["f:metadata"]["f:labels"].get("f:owner").is_some())
        .expect("the label's writer owns it");
    assert_eq!(label["operation"], "Update");
    assert_ne!(label["manager"], "kubectl-create");
}
