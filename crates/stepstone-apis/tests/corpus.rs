//! The manifest corpus, Helm release records built the way Helm 3 stores them, live-style objects
//! with managedFields, and apiserver metrics text, judged along real upgrade paths.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use stepstone_apis::report::render_text;
use stepstone_apis::{RemovedApis, Scan, SourceKind, evaluate};
use stepstone_core::findings::Severity;
use stepstone_core::version::Minor;

fn minor(s: &str) -> Minor {
    s.parse().unwrap()
}

fn fixtures() -> &'static Path {
    Path::new("tests/fixtures")
}

#[test]
fn the_data_file_has_every_row_sourced() {
    let data = RemovedApis::embedded();
    assert!(data.row_count() >= 70, "rows: {}", data.row_count());
    assert!(data.api.iter().all(|r| !r.source.is_empty()));
    let cronjob = data.rule_for("batch/v1beta1", "CronJob").unwrap();
    assert_eq!(cronjob.removed_in, Some(minor("1.25")));
    assert_eq!(cronjob.replacement, "batch/v1");
    let kubeadm = data.rule_for("kubeadm.k8s.io/v1beta3", "ClusterConfiguration").unwrap();
    assert_eq!(kubeadm.removed_in, Some(minor("1.37")));
    assert_eq!(data.rule_for("kubeadm.k8s.io/v1beta2", "InitConfiguration").unwrap().removed_in, Some(minor("1.27")));
    assert_eq!(data.flag_rule("--pod-infra-container-image").unwrap().removed_in, minor("1.35"));
    assert_eq!(data.flag_rule("--iptables-drop-bit").unwrap().removed_in, minor("1.31"));
    assert!(data.flag_rule("--housekeeping-interval").is_none(), "the one cAdvisor flag the kubelet keeps");
    assert!(data.rule_for("networking.k8s.io/v1", "Ingress").is_none());
}

#[test]
fn manifest_corpus_along_1_31_to_1_37() {
    let data = RemovedApis::embedded();
    let mut scan = Scan::new(data);
    scan.add_manifest_path(fixtures()).unwrap();
    let report = evaluate(scan, Some(minor("1.31")), minor("1.37"));

    // Every hop of the path is listed, in order.
    let hops: Vec<String> = report.hops.iter().map(|h| h.to.to_string()).collect();
    assert_eq!(hops, ["1.32", "1.33", "1.34", "1.35", "1.36", "1.37"]);
    let at = |to: &str| &report.hops.iter().find(|h| h.to == minor(to)).unwrap().findings;

    let flow = &at("1.32")[0];
    assert_eq!(flow.sighting.location, "tests/fixtures/deploy/platform.json:6");
    assert_eq!(flow.sighting.object.as_deref(), Some("FlowSchema batch-jobs"));
    assert_eq!(flow.replacement, "flowcontrol.apiserver.k8s.io/v1");
    assert_eq!(flow.severity, Severity::Error);

    assert!(at("1.35").iter().any(|f| f.sighting.location == "tests/fixtures/node/kubeadm-flags.env:1"
        && f.sighting.used.label() == "kubelet flag --pod-infra-container-image"));
    assert!(at("1.35").iter().any(|f| f.sighting.location == "tests/fixtures/kubeadm/kubeadm-config.yaml:6"));
    let kubeadm_1_37: Vec<&str> = at("1.37")
        .iter()
        .filter(|f| f.sighting.used.label().starts_with("kubeadm.k8s.io/v1beta3"))
        .map(|f| f.sighting.location.as_str())
        .collect();
    assert_eq!(
        kubeadm_1_37,
        ["tests/fixtures/kubeadm/kubeadm-config.yaml:1", "tests/fixtures/kubeadm/kubeadm-config.yaml:9"]
    );
    assert!(at("1.37").iter().any(|f| f.sighting.used.label() == "kubelet flag --global-housekeeping-interval"));

    // Already gone on a 1.31 cluster: the old Ingress, CronJob, PDB, HPAs, PSP, CSIStorageCapacity.
    let gone: Vec<String> = report
        .already_removed
        .iter()
        .map(|f| format!("{} @ {}", f.sighting.used.label(), f.sighting.location))
        .collect();
    for expected in [
        "extensions/v1beta1 Ingress @ tests/fixtures/deploy/ingress.yaml:2",
        "batch/v1beta1 CronJob @ tests/fixtures/deploy/jobs.yaml:1",
        "policy/v1beta1 PodDisruptionBudget @ tests/fixtures/deploy/jobs.yaml:17",
        "autoscaling/v2beta2 HorizontalPodAutoscaler @ tests/fixtures/deploy/jobs.yaml:28",
        "storage.k8s.io/v1beta1 CSIStorageCapacity @ tests/fixtures/deploy/platform.json:18",
        "policy/v1beta1 PodSecurityPolicy @ tests/fixtures/kustomize/output.yaml:28",
        "networking.k8s.io/v1beta1 Ingress @ tests/fixtures/kustomize/output.yaml:45",
        "autoscaling/v2beta1 HorizontalPodAutoscaler @ tests/fixtures/rendered/web-chart.yaml:40",
        "kubelet flag --iptables-masquerade-bit @ tests/fixtures/node/10-kubelet-extra.conf:3",
    ] {
        assert!(gone.contains(&expected.to_string()), "missing {expected} in {gone:#?}");
    }
    let helm_rendered =
        report.already_removed.iter().find(|f| f.sighting.location.ends_with("web-chart.yaml:40")).unwrap();
    assert_eq!(helm_rendered.sighting.detail, "rendered from web/templates/hpa.yaml");

    // Deprecated but served at 1.37: the DRA v1beta1 DeviceClass.
    assert_eq!(report.after_target.len(), 1);
    assert_eq!(report.after_target[0].severity, Severity::Warning);
    // The kept cAdvisor flag and current APIs are not reported at all.
    assert!(!report.findings.iter().any(|f| f.message.contains("--housekeeping-interval ")));
    assert!(report.breaks());
    // The unrendered chart source is skipped with a note, not parsed.
    assert!(report.notes.iter().any(|n| n.contains("charts/web: a Helm chart source")), "{:?}", report.notes);

    insta::assert_snapshot!("corpus_1_31_to_1_37", render_text(&report));
    insta::assert_json_snapshot!("corpus_1_31_to_1_37_json", report);
}

#[test]
fn an_old_cluster_sees_each_removal_at_its_own_hop() {
    let data = RemovedApis::embedded();
    let mut scan = Scan::new(data);
    scan.add_manifest_path(&fixtures().join("deploy")).unwrap();
    let report = evaluate(scan, Some(minor("1.24")), minor("1.27"));
    let labels = |to: &str| -> Vec<String> {
        report
            .hops
            .iter()
            .find(|h| h.to == minor(to))
            .unwrap()
            .findings
            .iter()
            .map(|f| f.sighting.used.label())
            .collect()
    };
    assert_eq!(labels("1.25"), ["batch/v1beta1 CronJob", "policy/v1beta1 PodDisruptionBudget"]);
    assert_eq!(labels("1.26"), ["autoscaling/v2beta2 HorizontalPodAutoscaler"]);
    assert_eq!(labels("1.27"), ["storage.k8s.io/v1beta1 CSIStorageCapacity"]);
    // FlowSchema v1beta3 stops in 1.32, after this target: a warning.
    assert!(report.after_target.iter().any(|f| f.sighting.used.label().contains("FlowSchema")));
}

#[test]
fn a_path_that_stops_before_every_removal_passes() {
    let data = RemovedApis::embedded();
    let mut scan = Scan::new(data);
    scan.add_manifest_text(
        "ok.yaml",
        "apiVersion: flowcontrol.apiserver.k8s.io/v1beta3\nkind: FlowSchema\nmetadata: {name: a}\n",
    );
    let report = evaluate(scan, Some(minor("1.29")), minor("1.31"));
    assert!(!report.breaks());
    assert_eq!(report.after_target.len(), 1);
}

/// A Helm 3 release record exactly as Helm's Secret driver writes it: the release JSON, gzipped,
/// base64-encoded, stored under `data.release` of a `helm.sh/release.v1` Secret (whose data values
/// the API returns base64-encoded once more).
fn helm_secret(name: &str, namespace: &str, revision: u64, status: &str, manifest: &str) -> Value {
    let release = json!({
        "name": name,
        "namespace": namespace,
        "version": revision,
        "info": {"status": status, "description": "Upgrade complete"},
        "chart": {"metadata": {"name": name, "version": format!("1.{revision}.0")}},
        "config": {"password": "hunter2"},
        "manifest": manifest,
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(serde_json::to_string(&release).unwrap().as_bytes()).unwrap();
    let stored = STANDARD.encode(gz.finish().unwrap());
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": format!("sh.helm.release.v1.{name}.v{revision}"),
            "namespace": namespace,
            "labels": {"owner": "helm", "name": name, "status": status, "version": revision.to_string()},
        },
        "data": {"release": STANDARD.encode(stored)},
    })
}

const OLD_INGRESS: &str = "---\n# Source: shop/templates/ingress.yaml\napiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: shop\n";
const V3_MANIFEST: &str = "---\n# Source: shop/templates/service.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: shop\n---\n# Source: shop/templates/hpa.yaml\napiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: shop\n---\n# Source: shop/templates/pdb.yaml\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: shop\n";
const FAILED_MANIFEST: &str =
    "---\n# Source: shop/templates/cron.yaml\napiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: shop\n";

#[test]
fn helm_reads_only_the_newest_deployed_revision() {
    let objects = vec![
        helm_secret("shop", "web", 1, "superseded", OLD_INGRESS),
        helm_secret("shop", "web", 2, "superseded", OLD_INGRESS),
        helm_secret("shop", "web", 3, "deployed", V3_MANIFEST),
        helm_secret("shop", "web", 4, "failed", FAILED_MANIFEST),
        helm_secret("broken", "web", 1, "failed", FAILED_MANIFEST),
    ];
    let data = RemovedApis::embedded();
    let mut scan = Scan::new(data);
    scan.add_objects("cluster", &objects);
    let report = evaluate(scan, Some(minor("1.25")), minor("1.26"));
    let hop = &report.hops[0];
    assert_eq!(hop.findings.len(), 1, "{:#?}", hop.findings);
    let f = &hop.findings[0];
    assert_eq!(f.sighting.source, SourceKind::Helm);
    assert_eq!(f.sighting.location, "helm release web/shop revision 3");
    assert_eq!(f.sighting.object.as_deref(), Some("HorizontalPodAutoscaler shop"));
    assert_eq!(f.sighting.detail, "chart shop-1.3.0, template shop/templates/hpa.yaml, line 9 of the stored manifest");
    assert!(report.already_removed.is_empty(), "superseded and failed revisions are not read");
    assert_eq!(
        report.notes,
        ["helm release web/broken has no deployed revision (revision 1 is failed); nothing read from it"]
    );
    assert_eq!(report.sources.get("helm release records"), Some(&5));
    let text = render_text(&report);
    assert!(!text.contains("hunter2"), "release values must never be printed");
    insta::assert_snapshot!("helm_newest_deployed", text);
}

fn managed_entry(manager: &str, api_version: &str, operation: &str, time: &str) -> Value {
    json!({"manager": manager, "operation": operation, "apiVersion": api_version, "time": time,
           "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}})
}

/// Objects as a live 1.31 cluster returns them (listed through the served version).
fn cluster_objects() -> Vec<Value> {
    let last_applied_pdb = json!({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "db", "namespace": "shop"}, "spec": {"minAvailable": 1}})
    .to_string();
    let last_applied_hpa = json!({"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api", "namespace": "shop"}})
    .to_string();
    vec![
        // Written today with the served version, but a tuning operator still patches it through v1beta3.
        json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": "batch-jobs", "managedFields": [
            managed_entry("kubectl-client-side-apply", "flowcontrol.apiserver.k8s.io/v1", "Update", "2026-03-01T10:00:00Z"),
            managed_entry("fairness-tuner", "flowcontrol.apiserver.k8s.io/v1beta3", "Update", "2026-08-20T04:12:00Z"),
        ]}}),
        // Migrated long ago: the annotation still says v1beta1, every manager writes policy/v1.
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "db", "namespace": "shop",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied_pdb},
            "managedFields": [
                managed_entry("kubectl-client-side-apply", "policy/v1", "Update", "2025-01-10T09:00:00Z"),
                managed_entry("argocd-controller", "policy/v1", "Apply", "2026-08-01T09:00:00Z"),
            ]}}),
        // From a snapshot without managedFields: the annotation is all there is.
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "api", "namespace": "shop",
                   "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied_hpa}}}),
        // A manager entry from a version the cluster stopped serving long ago: history.
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop", "managedFields": [
            managed_entry("ingress-sync", "extensions/v1beta1", "Update", "2021-05-01T00:00:00Z"),
        ]}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
               "data": {"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.31.9\n"}}),
    ]
}

#[test]
fn managed_fields_name_the_client_and_stale_annotations_stay_quiet() {
    let data = RemovedApis::embedded();
    let mut scan = Scan::new(data);
    scan.add_objects("cluster", &cluster_objects());
    let report = evaluate(scan, Some(minor("1.31")), minor("1.37"));

    let hop = &report.hops.iter().find(|h| h.to == minor("1.32")).unwrap().findings;
    assert_eq!(hop.len(), 1);
    assert_eq!(hop[0].sighting.manager.as_deref(), Some("fairness-tuner"));
    assert_eq!(hop[0].sighting.object.as_deref(), Some("FlowSchema batch-jobs"));
    assert_eq!(hop[0].severity, Severity::Error);

    // The migrated PDB: not a finding, listed as suppressed with the reason.
    assert!(!report.findings.iter().any(|f| f.subject.contains("PodDisruptionBudget")), "{:#?}", report.findings);
    assert_eq!(report.suppressed.len(), 1);
    assert_eq!(report.suppressed[0].object, "PodDisruptionBudget shop/db");
    assert_eq!(report.suppressed[0].managed_api_versions, ["policy/v1"]);

    // Without managedFields the annotation is reported (already removed on 1.31: history, info).
    let hpa = report.already_removed.iter().find(|f| f.sighting.source == SourceKind::LastApplied).unwrap();
    assert_eq!(hpa.sighting.object.as_deref(), Some("HorizontalPodAutoscaler shop/api"));
    let ingress = report.already_removed.iter().find(|f| f.sighting.source == SourceKind::ManagedFields).unwrap();
    assert_eq!(ingress.severity, Severity::Info);

    // kubeadm-config in v1beta3 on 1.31: kubeadm 1.32..1.36 rewrite it before 1.37 needs v1beta4.
    let cfg = &report.hops.iter().find(|h| h.to == minor("1.37")).unwrap().findings[0];
    assert_eq!(cfg.sighting.source, SourceKind::KubeadmConfig);
    assert_eq!(cfg.severity, Severity::Info);
    insta::assert_snapshot!("managed_fields_1_31_to_1_37", render_text(&report));
}

#[test]
fn kubeadm_config_breaks_when_the_first_hop_cannot_read_it() {
    let data = RemovedApis::embedded();
    let mut scan = Scan::new(data);
    scan.add_objects("cluster", &cluster_objects()[4..]);
    let report = evaluate(scan, Some(minor("1.36")), minor("1.37"));
    assert_eq!(report.hops[0].findings[0].severity, Severity::Error);
    assert!(report.breaks());
}

#[test]
fn metrics_text_shows_what_clients_call() {
    let data = RemovedApis::embedded();
    let mut scan = Scan::new(data);
    let text = std::fs::read_to_string(fixtures().join("metrics.txt")).unwrap();
    scan.add_metrics_text("metrics.txt", &text, true).unwrap();
    let report = evaluate(scan, Some(minor("1.31")), minor("1.35"));
    let at = |to: &str| -> Vec<String> {
        report
            .hops
            .iter()
            .find(|h| h.to == minor(to))
            .unwrap()
            .findings
            .iter()
            .map(|f| format!("{} {}", f.sighting.location, f.kind.clone().unwrap_or_default()))
            .collect()
    };
    assert_eq!(at("1.32"), ["metrics.txt:3 FlowSchema", "metrics.txt:4 PriorityLevelConfiguration"]);
    // The metric's removed_release label is empty for the alpha API; the data knows it.
    assert_eq!(at("1.34"), ["metrics.txt:5 ResourceClaim"]);
    assert_eq!(report.sources.get("deprecated API series"), Some(&3));
    insta::assert_snapshot!("metrics_1_31_to_1_35", render_text(&report));
}

#[test]
fn without_a_current_version_every_removal_up_to_the_target_is_shown() {
    let data = RemovedApis::embedded();
    let mut scan = Scan::new(data);
    scan.add_manifest_path(&fixtures().join("deploy")).unwrap();
    let report = evaluate(scan, None, minor("1.35"));
    let hops: Vec<String> = report.hops.iter().map(|h| h.to.to_string()).collect();
    assert_eq!(hops, ["1.22", "1.25", "1.26", "1.27", "1.32"]);
    assert!(report.hops.iter().all(|h| h.from.is_none()));
}
