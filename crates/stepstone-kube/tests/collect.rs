//! Live collection against a loopback server that answers like a kube-apiserver
//! (see `support/recorded_api.rs`): pagination, kubectl-shaped output, errors.

#[path = "support/recorded_api.rs"]
mod recorded_api;

use recorded_api::{kubeconfig, recorded_api, start};
use stepstone_core::snapshot::{ObjectSet, SnapshotOptions};
use stepstone_kube::ConnectError;
use stepstone_kube::collect::{self, CollectError, CollectOptions, RESOURCES};

#[tokio::test]
async fn paginates_every_list_with_continue_tokens() {
    let (addr, api) = start(recorded_api()).await;
    let config = kubeconfig(addr, "pages");
    let conn = stepstone_kube::connect(Some(&config), None).await.unwrap();
    let set = collect::collect_with(&conn, &CollectOptions { page_size: 2 }).await.unwrap();

    let log = api.log.lock().unwrap().clone();
    let node_requests: Vec<&String> = log.iter().filter(|l| l.starts_with("/api/v1/nodes?")).collect();
    // 5 nodes in pages of 2: three requests, the second and third carrying the token of the one before.
    assert_eq!(node_requests.len(), 3, "{log:?}");
    assert!(node_requests[0].contains("limit=2") && !node_requests[0].contains("continue="), "{log:?}");
    assert!(node_requests[1].contains("continue=%2Fapi%2Fv1%2Fnodes%7C2"), "{log:?}");
    assert!(node_requests[2].contains("continue=%2Fapi%2Fv1%2Fnodes%7C4"), "{log:?}");
    let pod_pages = log.iter().filter(|l| l.starts_with("/api/v1/pods?")).count();
    assert_eq!(pod_pages, 10, "20 pods in pages of 2: {log:?}");
    for r in RESOURCES {
        assert!(log.iter().any(|l| l.starts_with(&format!("{}?", r.path))), "{} never listed", r.path);
    }

    // Every item carries kind and apiVersion, as kubectl prints them.
    assert_eq!(set.objects.len(), 5 + 20 + 1 + 1 + 1 + 1 + 1 + 1 + 1);
    for (_, o) in &set.objects {
        assert!(o["kind"].is_string() && o["apiVersion"].is_string(), "{o}");
    }
    assert_eq!(set.server_version.as_deref(), Some("v1.33.4"));

    let inv = set.into_inventory("cluster lab", &SnapshotOptions::default()).unwrap();
    // The inventory path reads the same pages pruned, on a parser thread: same result, same requests.
    let before = api.log.lock().unwrap().len();
    let streamed =
        collect::collect_inventory_with(&conn, &CollectOptions { page_size: 2 }, &SnapshotOptions::default())
            .await
            .unwrap();
    assert_eq!(api.log.lock().unwrap().len() - before, log.len(), "one request per page, as before");
    let mut streamed_value = serde_json::to_value(&streamed).unwrap();
    streamed_value["source"] = "cluster lab".into();
    assert_eq!(streamed_value, serde_json::to_value(&inv).unwrap());
    assert_eq!(inv.nodes.len(), 5);
    assert_eq!(inv.server_version.as_ref().unwrap().to_string(), "v1.33.4");
    assert_eq!(inv.control_plane_version().unwrap().to_string(), "v1.33.4");
    let r640 = inv.node("r640-01").unwrap();
    assert_eq!(r640.generation, "dell-r640");
    assert_eq!(r640.kubelet_version.to_string(), "v1.32.9");
    // nodeInfo.kubeProxyVersion is empty on recent kubelets: the version comes from the pod.
    assert_eq!(r640.kube_proxy_version.as_ref().unwrap().to_string(), "v1.33.4");
    assert_eq!(inv.pdbs.len(), 1);
    assert_eq!(inv.workloads.len(), 4);
    // db-0's claim is bound to a local-path volume on r740-01: only that node reaches its data.
    assert_eq!(
        inv.claim_nodes
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(String::as_str).collect()))
            .collect::<Vec<_>>(),
        [("shop/data-db-0".to_string(), vec!["r740-01"])]
    );
    let web = inv.pods.iter().find(|p| p.name.starts_with("web-")).unwrap();
    assert_eq!(inv.top_controller(web).unwrap().name, "web");
}

#[tokio::test]
async fn live_inventory_equals_the_snapshot_written_from_it() {
    let (addr, _api) = start(recorded_api()).await;
    let config = kubeconfig(addr, "agree");
    let opts = SnapshotOptions::default();
    let live = collect::collect_inventory(Some(&config), Some("lab"), &opts).await.unwrap();
    assert!(live.source.contains(&format!("http://{addr}")) && live.source.contains("context lab"), "{}", live.source);

    let set = collect::collect_objects(Some(&config), None).await.unwrap();
    let list = collect::to_kubectl_list(&set);
    assert_eq!(list["kind"], "List");
    assert_eq!(list["apiVersion"], "v1");
    // Written and read back like a file from `kubectl get … -o json`.
    let mut from_file = ObjectSet::default();
    from_file.add_json_text("cluster.json", &serde_json::to_string_pretty(&list).unwrap()).unwrap();
    from_file.server_version = set.server_version.clone();
    let snap = from_file.into_inventory(&live.source, &opts).unwrap();
    assert_eq!(serde_json::to_value(&snap).unwrap(), serde_json::to_value(&live).unwrap());
}

#[tokio::test]
async fn errors_name_the_context_the_resource_and_the_fix() {
    let mut api = recorded_api();
    api.forbidden.push("/apis/policy/v1/poddisruptionbudgets".into());
    let (addr, _api) = start(api).await;
    let config = kubeconfig(addr, "errors");
    let opts = SnapshotOptions::default();

    let e = collect::collect_inventory(Some(&config), Some("prod"), &opts).await.unwrap_err();
    assert!(matches!(e, CollectError::Connect(ConnectError::Context { .. })), "{e}");
    assert!(e.to_string().contains("prod") && e.to_string().contains("get-contexts"), "{e}");

    let e = collect::collect_inventory(Some(&config), None, &opts).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("listing poddisruptionbudgets") && text.contains("kubectl auth can-i"), "{text}");

    // A server that refuses connections is retried, then reported as a server failure.
    let e = collect::collect_inventory(Some(&config), Some("dead"), &opts).await.unwrap_err();
    let CollectError::Server(failure) = &e else { panic!("not a server failure: {e}") };
    assert!(failure.to_string().contains("GET http://127.0.0.1:1/api/v1/nodes"), "{failure}");
    assert!(failure.to_string().contains("failed 8 times"), "{failure}");

    let missing = std::env::temp_dir().join("stepstone-no-such.kubeconfig");
    let e = collect::collect_inventory(Some(&missing), None, &opts).await.unwrap_err();
    assert!(e.to_string().contains("stepstone-no-such.kubeconfig"), "{e}");
}
