//! `stepstone addons` through the built binary: goldens on the bundled fleets, the JSON
//! document, exit codes, and an add-on created with the real `kubectl` on `stepstone lab`.

mod common;

use common::{TestLab, document, run_in_workspace, stdout};
use serde_json::Value;

fn addon<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["addons"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap_or_else(|| panic!("{name}: {doc}"))
}

#[test]
fn addons_small_golden() {
    let o = run_in_workspace(&["addons", "--example", "small", "--to", "v1.35"]);
    assert_eq!(o.status.code(), Some(1), "calico and ingress-nginx block the hop");
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn addons_three_generations_golden() {
    let o = run_in_workspace(&["addons", "--example", "three-generations", "--to", "v1.35"]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn the_json_document_names_each_hop_and_the_release_that_supports_it() {
    let o = run_in_workspace(&["addons", "--example", "three-generations", "--to", "v1.35", "-o", "json"]);
    let doc = document(&o);
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
    let o = run_in_workspace(&["addons", "--example", "small", "--to", "v1.33"]);
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    let o = run_in_workspace(&["addons", "--example", "small"]);
    assert_eq!(o.status.code(), Some(2), "--to is required");
}

#[test]
fn help_teaches_with_examples() {
    let o = run_in_workspace(&["addons", "--help"]);
    let help = stdout(&o);
    for want in ["stepstone addons --example small --to v1.35", "data/addons.toml", "Exit codes"] {
        assert!(help.contains(want), "{want}: {help}");
    }
}

#[test]
fn an_add_on_started_with_kubectl_on_the_lab_is_judged() {
    let lab = TestLab::small(100.0, |_| {});
    for args in [
        &["create", "namespace", "cert-manager"][..],
        &[
            "run",
            "cert-manager",
            "-n",
            "cert-manager",
            "--restart=Never",
            "--image=quay.io/jetstack/cert-manager-controller:v1.16.2",
        ],
    ] {
        let out = lab.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", common::stderr(&out));
    }
    let o = lab.run(&["addons", "--to", "v1.35", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    let doc = document(&o);
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
