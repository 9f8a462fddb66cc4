//! The lab's OpenAPI v3 documents follow discovery, driven by the real `kubectl`: on a 1.24
//! cluster `/openapi/v3` lists `policy/v1beta1`, so `kubectl create -f` of a v1beta1
//! PodDisruptionBudget passes kubectl's default validation (server-side field validation, which
//! kubectl only uses for a group/version/kind it finds there); after `kubeadm upgrade apply` to
//! 1.25 the document is gone and kubectl refuses the manifest as a 1.25 apiserver makes it do.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};
use stepstone_lab::{Package, UpgradeOptions};

fn openapi_paths(kubeconfig: &Path) -> Vec<String> {
    let index: Value = serde_json::from_str(&kubectl_ok(kubeconfig, &["get", "--raw", "/openapi/v3"])).unwrap();
    index["paths"].as_object().expect("an index of documents").keys().cloned().collect()
}

#[test]
fn kubectl_creates_a_deprecated_version_with_default_validation_until_it_is_removed() {
    let (lab, dir, kc) = start_lab(fleet_1_24(), 20.0);
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

    let out = kubectl_fresh(&kc, &dir.path().join("cache-1.24"), &["create", "-f", manifest], None);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "poddisruptionbudget.policy/legacy created");
    assert!(stderr.lines().any(|l| l == PDB_WARNING), "{stderr}");
    assert_eq!(lab.get("poddisruptionbudgets", "shop", "legacy").expect("stored")["spec"]["maxUnavailable"], 1);

    // Strict field validation reaches the lab for the deprecated version as for any other.
    let out = kubectl_fresh(&kc, &dir.path().join("cache-1.24"), &["create", "--dry-run=server", "-f", manifest], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the budget exists already");
    assert!(stderr.contains("poddisruptionbudgets.policy \"legacy\" already exists"), "{stderr}");

    let ops = lab.nodes();
    ops.configure_repository("cp1", "v1.25").unwrap();
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
    let out = kubectl_fresh(&kc, &cache, &["create", "-f", manifest], None);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = kubectl_fresh(&kc, &cache, &["create", "--validate=false", "-f", manifest], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"no matches for kind "PodDisruptionBudget" in version "policy/v1beta1""#),
        "kubectl finds no mapping, as against a real 1.25 apiserver: {stderr}"
    );
    assert!(lab.get("poddisruptionbudgets", "shop", "legacy").is_none());
}
