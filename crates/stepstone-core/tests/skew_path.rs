//! The path and the skew checker agree: walking every path planned for the bundled fleets step by
//! step (kubelets first, control-plane nodes one at a time, the kube-proxy add-on, the workers),
//! no intermediate state breaks a skew rule. States the kubeadm procedure passes through may be
//! warnings (`upgrade.in-progress`), never errors.

use stepstone_core::findings::Severity;
use stepstone_core::inventory::Inventory;
use stepstone_core::path::{UpgradePath, upgrade_path};
use stepstone_core::plan::WorkerStrategy;
use stepstone_core::releases::ReleaseData;
use stepstone_core::skew::{Part, Topology, VersionState, check_state};
use stepstone_core::snapshot::{SnapshotOptions, load_str};

fn fleet(name: &str) -> Inventory {
    let path = format!("{}/../../examples/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    load_str(name, &text, &SnapshotOptions::default()).unwrap()
}

fn set(state: &mut VersionState, parts: &[Part], node: &str, version: &stepstone_core::version::KubeVersion) {
    for i in &mut state.instances {
        if parts.contains(&i.part) && i.node == node {
            i.version = version.clone();
        }
    }
}

fn assert_no_errors(state: &VersionState, step: &str) {
    let errors: Vec<_> = check_state(state, Topology::Kubeadm, ReleaseData::embedded())
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{step}: {errors:#?}");
}

fn walk(inv: &Inventory, path: &UpgradePath) {
    let mut state = VersionState::from_inventory(inv);
    for (i, hop) in path.hops.iter().enumerate() {
        for node in hop.kubelets_first.iter().chain(&hop.catch_up) {
            let current = state.of(Part::Kubelet).find(|k| &k.node == node).unwrap().version.clone();
            if current < hop.from {
                set(&mut state, &[Part::Kubelet], node, &hop.from);
            }
            assert_no_errors(&state, &format!("hop {} kubelet first {node}", i + 1));
        }
        for node in &hop.control_plane {
            let cp = [Part::KubeApiserver, Part::KubeControllerManager, Part::KubeScheduler];
            set(&mut state, &cp, node, &hop.to);
            assert_no_errors(&state, &format!("hop {} static pods of {node}", i + 1));
            set(&mut state, &[Part::Kubelet], node, &hop.to);
            assert_no_errors(&state, &format!("hop {} kubelet of {node}", i + 1));
        }
        // kubeadm upgrades the kube-proxy add-on once every control-plane node is done.
        for inst in state.instances.iter_mut().filter(|i| i.part == Part::KubeProxy) {
            inst.version = hop.to.clone();
        }
        assert_no_errors(&state, &format!("hop {} kube-proxy add-on", i + 1));
        for node in &hop.workers {
            set(&mut state, &[Part::Kubelet], node, &hop.to);
            assert_no_errors(&state, &format!("hop {} worker {node}", i + 1));
        }
    }
    assert!(state.of(Part::Kubelet).all(|k| k.version == path.to), "every node ends on {}", path.to);
}

#[test]
fn every_planned_path_stays_within_skew() {
    let data = ReleaseData::embedded();
    for name in ["three-generations", "small"] {
        let inv = fleet(name);
        let from = inv.control_plane_version().unwrap().minor();
        for strategy in [WorkerStrategy::Lockstep, WorkerStrategy::SkipMinors] {
            let mut to = from.next();
            while to <= data.newest() {
                let path = upgrade_path(&inv, &stepstone_core::version::VersionRequest::Minor(to), strategy, data)
                    .unwrap_or_else(|e| panic!("{name} -> {to}: {e}"));
                assert_eq!(path.hops.len() as i64, to.minus(from), "{name} -> {to}");
                walk(&inv, &path);
                to = to.next();
            }
        }
    }
}

#[test]
fn the_three_generation_fleet_is_within_skew_today() {
    let inv = fleet("three-generations");
    let state = VersionState::from_inventory(&inv);
    assert_eq!(state.of(Part::KubeApiserver).count(), 3);
    assert_eq!(state.of(Part::Kubelet).count(), inv.nodes.len());
    assert_no_errors(&state, "as shipped");
}
