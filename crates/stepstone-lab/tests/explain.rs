//! `kubectl explain` against the lab, with the real kubectl: it reads the kinds' schemas from the
//! lab's OpenAPI v3 documents, walks nested fields through their references, and finds a kind by
//! its short name (`pdb`), as against an apiserver.

mod common;

use common::*;

fn explain(kc: &std::path::Path, cache: &std::path::Path, what: &str) -> String {
    let out = kubectl_fresh(kc, cache, &["explain", what], None);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "kubectl explain {what}: {stderr}");
    stdout
}

/// The lines of the FIELDS section, each trimmed.
fn fields(out: &str) -> Vec<String> {
    out.lines().skip_while(|l| !l.starts_with("FIELDS:")).skip(1).map(|l| l.trim().to_string()).collect()
}

#[test]
fn kubectl_explains_the_kinds_the_lab_serves() {
    let (_lab, dir, kc) = start_lab(drain_fleet(), 20.0);
    let cache = dir.path().join("cache");

    let out = explain(&kc, &cache, "pods.spec.containers");
    assert!(out.lines().any(|l| l.trim() == "KIND:       Pod" || l.trim() == "KIND:     Pod"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("FIELD:") && l.contains("containers <[]Container>")), "{out}");
    let f = fields(&out);
    assert!(f.iter().any(|l| l.starts_with("name\t<string> -required-")), "{out}");
    assert!(f.iter().any(|l| l.starts_with("resources\t<ResourceRequirements>")), "{out}");
    assert!(f.iter().any(|l| l.starts_with("env\t<[]EnvVar>")), "{out}");

    let out = explain(&kc, &cache, "pdb.spec");
    assert!(out.lines().any(|l| l.contains("PodDisruptionBudget")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("VERSION:") && l.contains("policy/v1") || l.contains("v1")), "{out}");
    let f = fields(&out);
    for field in ["maxUnavailable\t<IntOrString>", "minAvailable\t<IntOrString>", "selector\t<LabelSelector>"] {
        assert!(f.iter().any(|l| l.starts_with(field)), "{field} missing: {out}");
    }

    // Deeper paths, cluster-scoped kinds and the other groups.
    let out = explain(&kc, &cache, "pv.spec.nodeAffinity.required.nodeSelectorTerms");
    assert!(fields(&out).iter().any(|l| l.starts_with("matchExpressions\t<[]NodeSelectorRequirement>")), "{out}");
    for kind in
        ["nodes", "deployments", "replicasets", "statefulsets", "daemonsets", "namespaces", "events", "leases", "pvc"]
    {
        let out = explain(&kc, &cache, kind);
        assert!(fields(&out).iter().any(|l| l.starts_with("metadata\t<ObjectMeta>")), "{kind}: {out}");
    }

    // A field that does not exist is refused as an apiserver-backed kubectl refuses it.
    let out = kubectl_fresh(&kc, &cache, &["explain", "pods.spec.nosuchfield"], None);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("nosuchfield"), "{stderr}");
}
