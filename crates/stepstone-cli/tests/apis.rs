//! `stepstone apis` end to end through the built binary: manifests and metrics files, a snapshot,
//! and a live cluster answered by a loopback server in the kube-apiserver's shapes (discovery,
//! typed lists without item kinds, `Status` errors, Helm release Secrets as Helm writes them).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

const TOKEN: &str = "apis-test-token";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stepstone-apis/tests/fixtures")
}

fn run(args: &[&str]) -> Output {
    common::stepstone()
        .args(args)
        .current_dir(fixtures())
        .env("RUST_LOG", "off")
        .output()
        .expect("the stepstone binary runs")
}

fn all_findings(report: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = report["alreadyRemoved"].as_array().unwrap().clone();
    for hop in report["hops"].as_array().unwrap() {
        out.extend(hop["findings"].as_array().unwrap().iter().cloned());
    }
    out.extend(report["afterTarget"].as_array().unwrap().iter().cloned());
    out
}

#[test]
fn manifests_that_break_before_the_target_exit_1() {
    let o = run(&["apis", "--to", "v1.35.3", "--from", "v1.24", "--manifests", "deploy", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let report = common::document(&o);
    assert_eq!(report["kind"], "ApiReport");
    let hop = report["hops"].as_array().unwrap().iter().find(|h| h["to"] == "1.25").unwrap();
    let locations: Vec<&str> =
        hop["findings"].as_array().unwrap().iter().map(|f| f["location"].as_str().unwrap()).collect();
    assert_eq!(locations, ["deploy/jobs.yaml:1", "deploy/jobs.yaml:17"]);
}

#[test]
fn deprecations_alone_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dra.yaml");
    std::fs::write(&file, "apiVersion: resource.k8s.io/v1beta1\nkind: DeviceClass\nmetadata:\n  name: gpu\n").unwrap();
    let o = run(&["apis", "--to", "v1.35", "--from", "v1.34", "--manifests", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 break at or before 1.35, 1 deprecated."));
}

#[test]
fn bad_input_exits_2_naming_the_input() {
    let o = run(&["apis", "--to", "v1.35", "--manifests", "no-such-dir"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-dir"));
    let o = run(&["apis", "--to", "1.x", "--manifests", "deploy"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--to"));
    let o = run(&["apis", "--to", "v1.35", "--helm", "--manifests", "deploy"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--kubeconfig"));
}

// ---- recorded cluster ---------------------------------------------------------------------

fn helm_secret(name: &str, namespace: &str, revision: u64, status: &str, manifest: &str) -> Value {
    let release = json!({"name": name, "namespace": namespace, "version": revision,
        "info": {"status": status}, "chart": {"metadata": {"name": name, "version": "2.0.0"}},
        "manifest": manifest});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(release.to_string().as_bytes()).unwrap();
    let stored = STANDARD.encode(gz.finish().unwrap());
    // As the API returns it: no kind/apiVersion on list items, data base64-encoded again.
    json!({"type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.{name}.v{revision}"), "namespace": namespace,
                     "labels": {"owner": "helm", "name": name, "status": status, "version": revision.to_string()}},
        "data": {"release": STANDARD.encode(stored)}})
}

fn entry(manager: &str, api_version: &str, time: &str) -> Value {
    json!({"manager": manager, "operation": "Update", "apiVersion": api_version, "time": time,
           "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}})
}

fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    json!({"kind": format!("{kind}List"), "apiVersion": api_version, "metadata": {"resourceVersion": "4711"}, "items": items})
}

fn resources(group_version: &str, rs: &[(&str, &str)]) -> Value {
    let resources: Vec<Value> = rs
        .iter()
        .map(|(name, kind)| {
            let verbs = if name.contains('/') {
                json!(["get", "patch", "update"])
            } else {
                json!(["create", "delete", "get", "list", "patch", "update", "watch"])
            };
            json!({"name": name, "singularName": "", "namespaced": true, "kind": kind, "verbs": verbs})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn group(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0].clone()})
}

/// What a 1.31 cluster answers.
fn recorded_cluster(metrics_forbidden: bool) -> BTreeMap<String, (StatusCode, String)> {
    let ok = |v: Value| (StatusCode::OK, v.to_string());
    let mut r = BTreeMap::new();
    r.insert(
        "/version".into(),
        ok(json!({"major": "1", "minor": "31", "gitVersion": "v1.31.9", "platform": "linux/amd64"})),
    );
    r.insert(
        "/apis".into(),
        ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            group("apps", &["v1"]),
            group("autoscaling", &["v2", "v1"]),
            group("policy", &["v1"]),
            group("networking.k8s.io", &["v1"]),
            group("flowcontrol.apiserver.k8s.io", &["v1", "v1beta3"]),
            group("example.io", &["v1"]),
        ]})),
    );
    r.insert(
        "/apis/apps/v1".into(),
        ok(resources(
            "apps/v1",
            &[
                ("deployments", "Deployment"),
                ("deployments/status", "Deployment"),
                ("controllerrevisions", "ControllerRevision"),
            ],
        )),
    );
    r.insert(
        "/apis/autoscaling/v2".into(),
        ok(resources("autoscaling/v2", &[("horizontalpodautoscalers", "HorizontalPodAutoscaler")])),
    );
    r.insert(
        "/apis/autoscaling/v1".into(),
        ok(resources("autoscaling/v1", &[("horizontalpodautoscalers", "HorizontalPodAutoscaler")])),
    );
    r.insert(
        "/apis/policy/v1".into(),
        ok(resources(
            "policy/v1",
            &[("poddisruptionbudgets", "PodDisruptionBudget"), ("poddisruptionbudgets/status", "PodDisruptionBudget")],
        )),
    );
    r.insert(
        "/apis/networking.k8s.io/v1".into(),
        ok(resources("networking.k8s.io/v1", &[("ingresses", "Ingress"), ("ingressclasses", "IngressClass")])),
    );
    for v in ["v1", "v1beta3"] {
        r.insert(
            format!("/apis/flowcontrol.apiserver.k8s.io/{v}"),
            ok(resources(
                &format!("flowcontrol.apiserver.k8s.io/{v}"),
                &[
                    ("flowschemas", "FlowSchema"),
                    ("flowschemas/status", "FlowSchema"),
                    ("prioritylevelconfigurations", "PriorityLevelConfiguration"),
                ],
            )),
        );
    }
    r.insert("/apis/apps/v1/deployments".into(), ok(list("Deployment", "apps/v1", vec![])));
    r.insert(
        "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas".into(),
        ok(list("FlowSchema", "flowcontrol.apiserver.k8s.io/v1", vec![
            json!({"metadata": {"name": "batch-jobs", "managedFields": [
                entry("kubectl-client-side-apply", "flowcontrol.apiserver.k8s.io/v1", "2026-03-01T10:00:00Z"),
                entry("fairness-tuner", "flowcontrol.apiserver.k8s.io/v1beta3", "2026-08-20T04:12:00Z")]}}),
            json!({"metadata": {"name": "exempt", "managedFields": [
                entry("api-priority-and-fairness-config-producer-v1", "flowcontrol.apiserver.k8s.io/v1", "2026-08-01T00:00:00Z")]}}),
        ])),
    );
    r.insert(
        "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations".into(),
        ok(list("PriorityLevelConfiguration", "flowcontrol.apiserver.k8s.io/v1", vec![])),
    );
    let stale = json!({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "db", "namespace": "shop"}}).to_string();
    r.insert(
        "/apis/policy/v1/poddisruptionbudgets".into(),
        ok(list(
            "PodDisruptionBudget",
            "policy/v1",
            vec![json!({"metadata": {"name": "db", "namespace": "shop",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": stale},
            "managedFields": [entry("kubectl-client-side-apply", "policy/v1", "2024-02-02T00:00:00Z")]}})],
        )),
    );
    r.insert(
        "/apis/autoscaling/v2/horizontalpodautoscalers".into(),
        ok(list("HorizontalPodAutoscaler", "autoscaling/v2", vec![])),
    );
    r.insert("/apis/networking.k8s.io/v1/ingresses".into(), ok(list("Ingress", "networking.k8s.io/v1", vec![])));
    r.insert(
        "/apis/networking.k8s.io/v1/ingressclasses".into(),
        (StatusCode::FORBIDDEN, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": "ingressclasses.networking.k8s.io is forbidden: User \"viewer\" cannot list resource \"ingressclasses\""}).to_string()),
    );
    let old =
        "---\n# Source: shop/templates/cron.yaml\napiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: shop\n";
    let current = "---\n# Source: shop/templates/hpa.yaml\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: shop\n---\n# Source: shop/templates/flow.yaml\napiVersion: flowcontrol.apiserver.k8s.io/v1beta3\nkind: FlowSchema\nmetadata:\n  name: shop\n";
    r.insert(
        "/api/v1/secrets?owner=helm".into(),
        ok(list(
            "Secret",
            "v1",
            vec![helm_secret("shop", "web", 1, "superseded", old), helm_secret("shop", "web", 2, "deployed", current)],
        )),
    );
    r.insert("/api/v1/configmaps?owner=helm".into(), ok(list("ConfigMap", "v1", vec![])));
    r.insert(
        "/api/v1/namespaces/kube-system/configmaps/kubeadm-config".into(),
        ok(json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.31.9\n"}})),
    );
    if metrics_forbidden {
        r.insert("/metrics".into(), (StatusCode::FORBIDDEN, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403, "message": "forbidden: User \"viewer\" cannot get path \"/metrics\""}).to_string()));
    } else {
        r.insert("/metrics".into(), (StatusCode::OK, std::fs::read_to_string(fixtures().join("metrics.txt")).unwrap()));
    }
    r
}

type Log = Arc<Mutex<Vec<String>>>;

async fn start(answers: BTreeMap<String, (StatusCode, String)>) -> (SocketAddr, Log) {
    let log: Log = Arc::default();
    let answers = Arc::new(answers);
    let seen = log.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let answers = answers.clone();
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(uri.to_string());
            if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some(&format!("Bearer {TOKEN}")) {
                return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
            }
            let mut key = uri.path().to_string();
            if uri.query().is_some_and(|q| q.contains("labelSelector=owner%3Dhelm")) {
                key.push_str("?owner=helm");
            }
            let Some((code, body)) = answers.get(&key) else {
                let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                                  "message": "the server could not find the requested resource"});
                return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
            };
            let content_type = if key == "/metrics" { "text/plain; version=0.0.4" } else { "application/json" };
            let response: Response = (*code, [("content-type", content_type)], body.clone()).into_response();
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, log)
}

fn kubeconfig(dir: &Path, addr: SocketAddr) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: {TOKEN}\n"
        ),
    )
    .unwrap();
    path
}

async fn run_live(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_cluster_names_the_old_client_and_ignores_stale_annotations() {
    let (addr, log) = start(recorded_cluster(false)).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), addr);
    let o = run_live(
        ["apis", "--kubeconfig", kc.to_str().unwrap(), "--helm", "--to", "v1.35.3", "-o", "json"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let report = common::document(&o);
    assert_eq!(report["current"], "1.31", "from /version");
    let hop = report["hops"].as_array().unwrap().iter().find(|h| h["to"] == "1.32").unwrap();
    let found: Vec<String> = hop["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!("{} {} {}", f["source"], f["object"].as_str().unwrap_or("-"), f["manager"].as_str().unwrap_or("-"))
        })
        .collect();
    assert!(found.contains(&"\"managedFields\" FlowSchema batch-jobs fairness-tuner".to_string()), "{found:#?}");
    assert!(found.contains(&"\"helm\" FlowSchema shop -".to_string()), "{found:#?}");
    assert!(found.iter().any(|f| f.starts_with("\"metrics\"")), "{found:#?}");
    // Not the current-version manager of the same object, and not the superseded Helm revision.
    let all = all_findings(&report);
    assert!(!all.iter().any(|f| f["manager"] == "kubectl-client-side-apply"));
    assert!(!all.iter().any(|f| f["used"]["kind"] == "CronJob"), "superseded revision read");
    // The migrated PDB's annotation is suppressed, not reported.
    assert!(!all.iter().any(|f| f["object"] == "PodDisruptionBudget shop/db"));
    assert_eq!(report["suppressed"][0]["object"], "PodDisruptionBudget shop/db");
    // A forbidden list is a note with the fix, not a failure.
    let notes: Vec<&str> = report["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(notes.iter().any(|n| n.contains("ingressclasses") && n.contains("kubectl auth can-i")), "{notes:#?}");

    let log = log.lock().unwrap().clone();
    assert!(log.iter().any(|p| p.starts_with("/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas?")), "{log:#?}");
    assert!(
        !log.iter().any(|p| p.starts_with("/apis/flowcontrol.apiserver.k8s.io/v1beta3/")),
        "listed through the preferred version only"
    );
    assert!(!log.iter().any(|p| p.starts_with("/apis/example.io")), "groups the data does not name are not discovered");
    assert!(log.iter().any(|p| p.contains("labelSelector=owner%3Dhelm")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_metrics_become_a_note() {
    let (addr, _log) = start(recorded_cluster(true)).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), addr);
    let o = run_live(["apis", "--kubeconfig", kc.to_str().unwrap(), "--to", "v1.31"].map(String::from).to_vec()).await;
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("apiserver /metrics: forbidden"), "{text}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("No hops"), "{text}");
    // FlowSchema v1beta3 still served on 1.31: the old client is a warning here, not an error.
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("fairness-tuner"), "{text}");
}

#[test]
fn snapshot_objects_are_checked_for_managed_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.json");
    let snapshot = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "api", "namespace": "shop", "managedFields": [
             entry("hpa-operator", "autoscaling/v2beta2", "2025-05-05T00:00:00Z")]}}]});
    std::fs::write(&file, snapshot.to_string()).unwrap();
    let o = run(&["apis", "--snapshot", file.to_str().unwrap(), "--from", "v1.25", "--to", "v1.26", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let report = common::document(&o);
    assert_eq!(report["hops"][0]["findings"][0]["manager"], "hpa-operator");
}
