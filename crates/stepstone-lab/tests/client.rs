//! [`LabClient`] against a running lab: every node operation over HTTP, found from the lab's
//! kubeconfig or its URL, with the lab's refusals kept apart (bad input, refused operation,
//! not a lab). What the rollout's lab backend relies on.

mod common;

use std::time::Duration;

use common::{node, static_pod};
use serde_json::json;
use stepstone_lab::{FaultsChange, KubeletState, Lab, LabClient, LabClientError, LabOptions, Package, UpgradeOptions};

fn fleet() -> serde_json::Value {
    json!({"kind": "List", "items": [node("cp1", true, "v2"), node("w1", false, "v2"), node("old", false, "v1"),
        static_pod("kube-apiserver", "cp1", "v1.34.2"), static_pod("etcd", "cp1", "3.5.21-0")]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_operation_goes_through_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let lab =
        Lab::start(fleet(), LabOptions { speed: 200.0, kubeconfig: Some(kubeconfig.clone()), ..Default::default() })
            .await
            .unwrap();
    let client = LabClient::from_kubeconfig(&kubeconfig, None).await.expect("the lab's kubeconfig finds it");
    assert_eq!(client.url(), lab.url());
    let by_url = LabClient::from_url(&lab.url()).await.unwrap();

    let nodes = by_url.list_nodes().await.unwrap();
    assert_eq!(nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["cp1", "old", "w1"]);
    // A version the node's repository does not hold is bad input, answered 404 as apt's "not found".
    match client.install_package("cp1", Package::Kubeadm, "1.35.0-1.1").await {
        Err(LabClientError::BadRequest { status: 404, message, .. }) => {
            assert!(message.contains("E: Version '1.35.0-1.1' for 'kubeadm' was not found"), "{message}")
        }
        other => panic!("expected apt's not found, got {other:?}"),
    }
    let facts = client.configure_repository("cp1", "v1.35").await.unwrap();
    assert_eq!(facts.repository.as_deref(), Some("v1.35"));
    let facts = client.install_package("cp1", Package::Kubeadm, "1.35.0-1.1").await.unwrap();
    assert_eq!(facts.packages["kubeadm"], "1.35.0-1.1");

    let plan = client.kubeadm_upgrade_plan("cp1", None).await.unwrap();
    assert_eq!(plan.target.as_deref(), Some("v1.35.0"));
    let plan = client.kubeadm_upgrade_plan("cp1", Some("v1.35.0")).await.unwrap();
    assert_eq!(plan.requested.as_deref(), Some("v1.35.0"));
    let report = client.kubeadm_upgrade_apply("cp1", "v1.35.0", &UpgradeOptions::default()).await.unwrap();
    assert!(report.message.contains("SUCCESS! Your cluster was upgraded to \"v1.35.0\""), "{}", report.message);

    client.configure_repository("w1", "v1.35").await.unwrap();
    client.install_package("w1", Package::Kubeadm, "1.35.0-1.1").await.unwrap();
    let report = client.kubeadm_upgrade_node("w1", &UpgradeOptions::default()).await.unwrap();
    assert_eq!(report.version, "v1.35.0");
    client.configure_repository("w1", "v1.35").await.unwrap();
    client.install_package("w1", Package::Kubelet, "1.35.0-1.1").await.unwrap();
    let restarting = client.restart_kubelet("w1").await.unwrap();
    assert!(matches!(restarting.kubelet, KubeletState::Restarting { .. }), "{restarting:?}");
    let mut facts = client.facts("w1").await.unwrap();
    for _ in 0..200 {
        if facts.ready && facts.kubelet == KubeletState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        facts = client.facts("w1").await.unwrap();
    }
    let running = facts.kubelet_version.as_ref().map(ToString::to_string);
    assert_eq!((running.as_deref(), facts.ready), (Some("v1.35.0"), true), "{facts:?}");

    let snapshot_dir = dir.path().join("etcd");
    let snapshot = client.etcd_snapshot("cp1", &snapshot_dir).await.unwrap();
    assert!(snapshot.path.starts_with(&snapshot_dir) && snapshot.metadata.total_keys > 0, "{snapshot:?}");

    let change = FaultsChange { latency_ms: Some(1), add_never_return: vec!["old".into()], ..Default::default() };
    let faults = client.change_faults(&change).await.unwrap();
    assert_eq!((faults.latency_ms, faults.never_return.len()), (1, 1));
    assert_eq!(client.faults().await.unwrap(), lab.faults());
    let cleared = client.set_faults(&Default::default()).await.unwrap();
    assert_eq!(cleared, Default::default());

    let stats = client.stats().await.unwrap();
    assert!(stats.total <= lab.requests().total);
    let clock = client.clock().await.unwrap();
    assert_eq!(clock.speed, 200.0);

    // Bad input, a refused operation and a refused fault change stay apart.
    match client.facts("nope").await {
        Err(e @ LabClientError::BadRequest { status: 404, .. }) => {
            assert!(e.is_bad_input() && e.to_string().contains("node \"nope\" not found"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    match client.kubeadm_upgrade_apply("w1", "v1.35.0", &UpgradeOptions::default()).await {
        Err(e @ LabClientError::Refused { .. }) => {
            assert!(!e.is_bad_input() && e.to_string().contains("runs on a control-plane node"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let too_much = FaultsChange { error_rate: Some(0.7), throttle_rate: Some(0.7), ..Default::default() };
    match client.change_faults(&too_much).await {
        Err(LabClientError::BadRequest { faults: Some(f), .. }) => {
            assert_eq!(f, stepstone_lab::FaultsError::RatesAboveOne);
            assert_eq!(f.message_with(|field| field.json_name()), "errorRate + throttleRate must not exceed 1.0");
        }
        other => panic!("{other:?}"),
    }
    lab.shutdown().await;
    match by_url.list_nodes().await {
        Err(e @ LabClientError::Unreachable { .. }) => assert!(e.to_string().contains("still running"), "{e}"),
        other => panic!("a stopped lab is unreachable: {other:?}"),
    }
}

#[tokio::test]
async fn anything_but_a_loopback_http_server_is_refused_before_a_request() {
    for url in ["https://127.0.0.1:6443", "http://10.0.0.1:8080"] {
        match LabClient::from_url(url).await {
            Err(e @ LabClientError::NotALab { .. }) => assert!(e.is_bad_input(), "{e}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    let missing = std::path::Path::new("/nonexistent/lab.kubeconfig");
    assert!(matches!(LabClient::from_kubeconfig(missing, None).await, Err(LabClientError::KubeconfigMissing { .. })));
}
