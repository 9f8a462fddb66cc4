//! The lab's OpenAPI v3 documents follow discovery, driven by the real `kubectl`: on a 1.24
//! cluster `/openapi/v3` lists `policy/v1beta1`, so `kubectl create -f` of a v1beta1
//! PodDisruptionBudget passes kubectl's default validation (server-side field validation, which
//! kubectl only uses for a group/version/kind it finds there); after `kubeadm upgrade apply` to
//! 1.25 the document is gone and kubectl refuses the manifest as a 1.25 apiserver makes it do.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::{Value, json};
use stepstone_lab::{Lab, LabHandle, LabOptions, Package, UpgradeOptions};

const PDB_V1BETA1: &str = "apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata:
  name: legacy
  namespace: shop
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app: web
";

const PDB_WARNING: &str = "Warning: policy/v1beta1 PodDisruptionBudget is deprecated in v1.21+, unavailable in v1.25+; use policy/v1 PodDisruptionBudget";

/// The drain fleet at Kubernetes 1.24, where `policy/v1beta1` is still served.
fn start_1_24() -> (LabHandle, tempfile::TempDir, PathBuf) {
    let mut fleet = drain_fleet();
    for item in fleet["items"].as_array_mut().unwrap() {
        if item["kind"] == "Node" {
            item["status"]["nodeInfo"]["kubeletVersion"] = json!("v1.24.17");
        }
        if let Some(image) = item.pointer("/spec/containers/0/image").and_then(Value::as_str)
            && image.ends_with(":v1.34.2")
        {
            item["spec"]["containers"][0]["image"] = json!(image.replace(":v1.34.2", ":v1.24.17"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let lab = Lab::start_blocking(
        fleet,
        LabOptions { speed: 20.0, kubeconfig: Some(kubeconfig.clone()), ..Default::default() },
    )
    .expect("lab starts");
    (lab, dir, kubeconfig)
}

/// kubectl with its own cache directory, so no cached discovery or OpenAPI document hides
/// what the lab serves now.
fn kubectl_cached(kubeconfig: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("kubectl runs")
}

fn openapi_paths(kubeconfig: &Path) -> Vec<String> {
    let index: Value = serde_json::from_str(&kubectl_ok(kubeconfig, &["get", "--raw", "/openapi/v3"])).unwrap();
    index["paths"].as_object().expect("an index of documents").keys().cloned().collect()
}

#[test]
fn kubectl_creates_a_deprecated_version_with_default_validation_until_it_is_removed() {
    let (lab, dir, kc) = start_1_24();
    let manifest = dir.path().join("pdb-v1beta1.yaml");
    std::fs::write(&manifest, PDB_V1BETA1).unwrap();
    let manifest = manifest.to_str().unwrap();

    let paths = openapi_paths(&kc);
    assert!(paths.iter().any(|p| p == "apis/policy/v1beta1"), "{paths:?}");
    assert!(paths.iter().any(|p| p == "apis/policy/v1"), "{paths:?}");
    let doc: Value =
        serde_json::from_str(&kubectl_ok(&kc, &["get", "--raw", "/openapi/v3/apis/policy/v1beta1"])).unwrap();
    let item = &doc["paths"]["/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets/{name}"];
    assert_eq!(
        item["patch"]["x-kubernetes-group-version-kind"],
        json!({"group": "policy", "version": "v1beta1", "kind": "PodDisruptionBudget"}),
        "{doc}"
    );

    let out = kubectl_cached(&kc, &dir.path().join("cache-1.24"), &["create", "-f", manifest]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "poddisruptionbudget.policy/legacy created");
    assert!(stderr.lines().any(|l| l == PDB_WARNING), "{stderr}");
    assert_eq!(lab.get("poddisruptionbudgets", "shop", "legacy").expect("stored")["spec"]["maxUnavailable"], 1);

    // Strict field validation reaches the lab for the deprecated version as for any other.
    let out = kubectl_cached(&kc, &dir.path().join("cache-1.24"), &["create", "--dry-run=server", "-f", manifest]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the budget exists already");
    assert!(stderr.contains("poddisruptionbudgets.policy \"legacy\" already exists"), "{stderr}");

    let ops = lab.nodes();
    ops.install_package("cp1", Package::Kubeadm, "1.25.16-1.1").unwrap();
    ops.kubeadm_upgrade_apply("cp1", "v1.25.16", &UpgradeOptions::default()).unwrap();

    let paths = openapi_paths(&kc);
    assert!(!paths.iter().any(|p| p == "apis/policy/v1beta1"), "{paths:?}");
    assert!(paths.iter().any(|p| p == "apis/policy/v1"), "{paths:?}");
    let gone = kubectl(&kc, &["get", "--raw", "/openapi/v3/apis/policy/v1beta1"]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr)
            .contains("Error from server (NotFound): the server could not find the requested resource"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    kubectl_ok(&kc, &["delete", "pdb", "legacy", "-n", "shop"]);
    let cache = dir.path().join("cache-1.25");
    let out = kubectl_cached(&kc, &cache, &["create", "-f", manifest]);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = kubectl_cached(&kc, &cache, &["create", "--validate=false", "-f", manifest]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"no matches for kind "PodDisruptionBudget" in version "policy/v1beta1""#),
        "kubectl finds no mapping, as against a real 1.25 apiserver: {stderr}"
    );
    assert!(lab.get("poddisruptionbudgets", "shop", "legacy").is_none());
}
