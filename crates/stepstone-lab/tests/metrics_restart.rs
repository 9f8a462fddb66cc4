//! `/metrics` across `kubeadm upgrade`: a control-plane upgrade restarts kube-apiserver, so its
//! request counters and `apiserver_requested_deprecated_apis` gauge start again from zero (what a
//! post-upgrade deprecated-API check then reads); a worker's `kubeadm upgrade node` leaves them.

mod common;

use common::*;
use stepstone_lab::{Package, UpgradeOptions};

const LIST_PODS: [(&str, &str); 5] =
    [("code", "200"), ("resource", "pods"), ("scope", "namespace"), ("verb", "LIST"), ("version", "v1")];

#[test]
fn a_control_plane_upgrade_restarts_the_apiservers_counters() {
    let (lab, _dir, kc) = start_lab(fleet_1_24(), 20.0);
    kubectl_ok(&kc, &["get", "pods", "-n", "shop"]);
    kubectl_ok(&kc, &["get", "--raw", "/apis/policy/v1beta1/namespaces/shop/poddisruptionbudgets/web"]);
    let before = metrics(&kc);
    assert!(series(&before, "apiserver_request_total", &LIST_PODS) >= 1.0, "{before}");
    assert!(before.contains("apiserver_requested_deprecated_apis{group=\"policy\""), "{before}");

    // A worker's `kubeadm upgrade node` does not touch kube-apiserver.
    let ops = lab.nodes();
    ops.kubeadm_upgrade_node("w2", &UpgradeOptions::default()).unwrap();
    let after_worker = metrics(&kc);
    assert!(series(&after_worker, "apiserver_request_total", &LIST_PODS) >= 1.0, "{after_worker}");
    assert!(after_worker.contains("apiserver_requested_deprecated_apis{"), "{after_worker}");

    ops.configure_repository("cp1", "v1.25").unwrap();
    ops.install_package("cp1", Package::Kubeadm, "1.25.16-1.1").unwrap();
    ops.kubeadm_upgrade_apply("cp1", "v1.25.16", &UpgradeOptions::default()).unwrap();
    let restarted = metrics(&kc);
    assert_eq!(series(&restarted, "apiserver_request_total", &LIST_PODS), 0.0, "{restarted}");
    assert!(!restarted.contains("apiserver_requested_deprecated_apis"), "the gauge starts empty: {restarted}");
    let found = stepstone_apis::metrics::parse("lab /metrics", &restarted).unwrap();
    assert!(found.is_empty(), "{found:?}");

    // Counting goes on from zero.
    kubectl_ok(&kc, &["get", "pods", "-n", "shop"]);
    let text = metrics(&kc);
    assert_eq!(series(&text, "apiserver_request_total", &LIST_PODS), 1.0, "{text}");

    // `kubeadm upgrade node` on the control plane, already at the version, restarts nothing.
    ops.kubeadm_upgrade_node("cp1", &UpgradeOptions::default()).unwrap();
    let text = metrics(&kc);
    assert_eq!(series(&text, "apiserver_request_total", &LIST_PODS), 1.0, "{text}");
}
