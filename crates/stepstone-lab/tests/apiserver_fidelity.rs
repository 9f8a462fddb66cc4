//! Where the lab must answer as a real API server does, driven by the real `kubectl`: every
//! mutating verb honours `dryRun=All` (the would-be object comes back, nothing changes), and bad
//! input gets the apiserver's status code and message.

mod common;

use common::*;
use serde_json::Value;

fn object(kc: &std::path::Path, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(kc, &full)).expect("kubectl prints JSON")
}

#[test]
fn server_side_dry_run_changes_nothing_for_any_mutating_verb() {
    let (_lab, dir, kc) = start_lab(drain_fleet(), 1.0);
    let deploy_before = object(&kc, &["get", "deploy", "web", "-n", "shop"]);
    let node_before = object(&kc, &["get", "node", "w1"]);

    // Each verb answers with the object it would store...
    let scaled = kubectl_ok(&kc, &["scale", "deploy/web", "-n", "shop", "--replicas=7", "--dry-run=server"]);
    assert!(scaled.contains("scaled (server dry run)"), "{scaled}");
    let scale = dir.path().join("scale.json");
    let body = r#"{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web","namespace":"shop"},"spec":{"replicas":7}}"#;
    std::fs::write(&scale, body).unwrap();
    let raw = "/apis/apps/v1/namespaces/shop/deployments/web/scale?dryRun=All";
    let scaled: Value =
        serde_json::from_str(&kubectl_ok(&kc, &["replace", "--raw", raw, "-f", scale.to_str().unwrap()])).unwrap();
    assert_eq!(scaled["spec"]["replicas"], 7, "{scaled}");
    let labelled = object(&kc, &["label", "deploy/web", "-n", "shop", "tier=front", "--dry-run=server"]);
    assert_eq!(labelled["metadata"]["labels"]["tier"], "front", "{labelled}");
    let annotated = object(&kc, &["annotate", "deploy/web", "-n", "shop", "note=x", "--dry-run=server"]);
    assert_eq!(annotated["metadata"]["annotations"]["note"], "x", "{annotated}");
    let patched = object(
        &kc,
        &["patch", "deploy/web", "-n", "shop", "-p", r#"{"spec":{"minReadySeconds":9}}"#, "--dry-run=server"],
    );
    assert_eq!(patched["spec"]["minReadySeconds"], 9, "{patched}");
    let mut replacement = deploy_before.clone();
    replacement["spec"]["replicas"] = 5.into();
    let file = dir.path().join("web.json");
    std::fs::write(&file, replacement.to_string()).unwrap();
    let replaced = object(&kc, &["replace", "-f", file.to_str().unwrap(), "--dry-run=server"]);
    assert_eq!(replaced["spec"]["replicas"], 5, "{replaced}");
    let cordon = kubectl_ok(&kc, &["cordon", "w1", "--dry-run=server"]);
    assert!(cordon.contains("cordoned (server dry run)"), "{cordon}");

    // `kubectl diff` is a dry-run patch: it shows the change (exit 1) and stores nothing.
    let out = kubectl(&kc, &["diff", "-f", file.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "diff found the change: {shown}{}", String::from_utf8_lossy(&out.stderr));
    assert!(shown.contains("+  replicas: 5"), "{shown}");

    // ...and nothing changed.
    let deploy_after = object(&kc, &["get", "deploy", "web", "-n", "shop"]);
    // (Controllers write status meanwhile, so the resourceVersion may move; generation may not.)
    assert_eq!(deploy_after["metadata"]["generation"], deploy_before["metadata"]["generation"]);
    assert_eq!(deploy_after["spec"], deploy_before["spec"]);
    assert_eq!(deploy_after["metadata"]["labels"], deploy_before["metadata"]["labels"]);
    assert_eq!(deploy_after["metadata"]["annotations"], deploy_before["metadata"]["annotations"]);
    let node_after = object(&kc, &["get", "node", "w1"]);
    assert_eq!(node_after["spec"].get("unschedulable"), None, "{node_after}");
    assert_eq!(node_after["spec"], node_before["spec"]);

    // The same verbs without the flag do change the object, so the checks above can fail.
    kubectl_ok(&kc, &["scale", "deploy/web", "-n", "shop", "--replicas=3"]);
    assert_eq!(object(&kc, &["get", "deploy", "web", "-n", "shop"])["spec"]["replicas"], 3);
}
