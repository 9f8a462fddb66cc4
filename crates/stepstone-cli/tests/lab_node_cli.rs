//! `stepstone lab nodes|node|faults` as an SRE runs them against a running lab: node facts,
//! package installs, `kubeadm upgrade plan|apply|node` and their refusals, kubelet restarts, faults, and the
//! refusal to touch anything that is not a lab. The lab runs in the test process; the
//! `stepstone` binary and the real `kubectl` talk to it over HTTP.

use std::io::{Read, Write};

use serde_json::Value;
use stepstone_core::inventory::CGROUP_LABEL;
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::Minor;
use stepstone_lab::LabHandle;

mod common;
use common::{TestLab, failed, json, ok, stepstone};

fn package(lab: &LabHandle, node: &str, pkg: &str) -> String {
    let n = lab.get("nodes", "", node).expect("node exists");
    n["metadata"]["annotations"][format!("stepstone.io/{pkg}-version")].as_str().unwrap_or("").to_string()
}

#[test]
fn nodes_lists_every_node_with_its_versions() {
    let r = TestLab::small(100.0, |_| {});
    let doc = json(&r.run(&["lab", "nodes", "-o", "json"]));
    assert_eq!(doc["kind"], "LabNodeList");
    let nodes = doc["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 15);
    for n in nodes {
        assert_eq!(n["kubeletVersion"], "v1.34.6", "{n}");
        for pkg in ["kubeadm", "kubelet", "kubectl"] {
            assert_eq!(n["packages"][pkg], "1.34.6-1.1", "{pkg} on {}", n["name"]);
        }
        assert_eq!(n["cgroupVersion"], "v2");
        assert!(n["generation"].as_str().is_some_and(|g| g.starts_with("dell-")), "{n}");
    }
    // Control-plane nodes first, as an operator upgrades them.
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(&names[..4], ["cp-01", "cp-02", "cp-03", "r650-01"]);

    let table = ok(&r.run(&["lab", "nodes"]));
    let header = table.lines().next().unwrap();
    for col in ["NAME", "ROLE", "GENERATION", "STATUS", "KUBELET", "KUBEADM-PKG", "CGROUP", "KERNEL", "RUNTIME"] {
        assert!(header.contains(col), "{header}");
    }
    let cp = table.lines().find(|l| l.starts_with("cp-01 ")).unwrap();
    assert!(cp.contains("control-plane") && cp.contains(" Ready ") && cp.contains("1.34.6-1.1"), "{cp}");

    let one = json(&r.run(&["lab", "nodes", "r660-02", "-o", "json"]));
    assert_eq!(one["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(one["nodes"][0]["controlPlane"], false);

    let (code, err) = failed(&r.run(&["lab", "nodes", "cp-01", "cp-99"]));
    assert_eq!(code, 2);
    assert!(err.contains("node \"cp-99\" not found"), "{err}");
}

#[test]
fn packages_come_from_the_minor_repository_the_node_is_configured_with() {
    let r = TestLab::small(100.0, |_| {});
    let repo = |node: &str| {
        let n = r.lab.get("nodes", "", node).unwrap();
        n["metadata"]["annotations"]["stepstone.io/kubernetes-repository"].as_str().unwrap_or("").to_string()
    };
    assert_eq!(repo("cp-01"), "v1.34", "a node starts with the repository of the minor it runs");
    assert!(ok(&r.run(&["lab", "node", "cp-01", "repo"])).contains("repository v1.34"));

    // A patch that was never released is not in the repository, as apt says.
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "install", "kubeadm=1.34.99-1.1"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("E: Version '1.34.99-1.1' for 'kubeadm' was not found"), "{err}");
    assert_eq!(package(&r.lab, "cp-01", "kubeadm"), "1.34.6-1.1");

    // The next minor's packages are in the next minor's repository only.
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "install", "kubeadm=1.35.0-1.1"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("E: Version '1.35.0-1.1' for 'kubeadm' was not found"), "{err}");
    assert!(err.contains("stepstone lab node cp-01 repo v1.35"), "the fix is named: {err}");
    let moved = ok(&r.run(&["lab", "node", "cp-01", "repo", "v1.35"]));
    assert_eq!(moved.trim(), "cp-01: Kubernetes package repository v1.34 -> v1.35 (pkgs.k8s.io/core:/stable:/v1.35)");
    assert_eq!(repo("cp-01"), "v1.35");

    // apt's glob, as the runbook pins versions, resolves to the package the repository holds.
    let latest = ReleaseData::embedded().latest_patch(Minor::new(1, 35)).unwrap().bare();
    let glob = format!("kubeadm={latest}-*");
    let out = ok(&r.run(&["lab", "node", "cp-01", "install", &glob]));
    assert_eq!(out.trim(), format!("cp-01: kubeadm 1.34.6-1.1 -> {latest}-1.1"));
    assert_eq!(package(&r.lab, "cp-01", "kubeadm"), format!("{latest}-1.1"));
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "install", "kubeadm=1.34.6-*"]));
    assert_eq!(code, 2, "the v1.34 packages left with the v1.34 repository: {err}");

    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "repo", "v1.99"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"v1.99\" does not exist") && err.contains("v1.24 to"), "{err}");
}

#[test]
fn kubeadm_upgrade_apply_moves_the_control_plane_one_minor_at_a_time() {
    let r = TestLab::small(100.0, |_| {});

    // kubeadm 1.34 cannot upgrade to 1.35.
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "apply", "v1.35.0"]));
    assert_eq!(code, 1);
    assert!(err.contains("higher than the kubeadm version \"v1.34.6\""), "{err}");

    // Skipping a minor is refused even with a new enough kubeadm.
    ok(&r.run(&["lab", "node", "cp-01", "repo", "v1.36"]));
    ok(&r.run(&["lab", "node", "cp-01", "install", "kubeadm=1.36.0-1.1"]));
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "apply", "v1.36.0", "-y"]));
    assert_eq!(code, 1);
    assert!(err.contains("kubeadm can upgrade only 1 minor version at a time (cluster is at v1.34.6)"), "{err}");

    // `apply` belongs on a control-plane node.
    ok(&r.run(&["lab", "node", "r650-01", "repo", "v1.35"]));
    ok(&r.run(&["lab", "node", "r650-01", "install", "kubeadm=1.35.0-1.1"]));
    let (code, err) = failed(&r.run(&["lab", "node", "r650-01", "kubeadm", "upgrade", "apply", "v1.35.0"]));
    assert_eq!(code, 1);
    assert!(err.contains("r650-01: `kubeadm upgrade apply` runs on a control-plane node"), "{err}");

    ok(&r.run(&["lab", "node", "cp-01", "repo", "v1.35"]));
    let installed = ok(&r.run(&["lab", "node", "cp-01", "install", "kubeadm=1.35.0-1.1"]));
    assert_eq!(installed.trim(), "cp-01: kubeadm 1.36.0-1.1 -> 1.35.0-1.1");
    let out = ok(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "apply", "v1.35.0", "--yes"]));
    assert!(out.contains("[upgrade/successful] SUCCESS! Your cluster was upgraded to \"v1.35.0\". Enjoy!"), "{out}");
    assert!(out.contains("kube-apiserver: v1.34.6 -> v1.35.0"), "{out}");
    assert!(out.contains("control plane instances [cp-02 cp-03] have not been upgraded"), "{out}");
    // kubeadm's phases, in its order, with the static pods it moved.
    let phases = [
        "[upgrade/preflight] Running preflight checks",
        "[upgrade/versions] Cluster version: v1.34.6",
        "[upgrade/versions] kubeadm version: v1.35.0",
        "[upgrade/control-plane] Upgrading your static Pod-hosted control plane to version \"v1.35.0\"",
        "[upgrade/staticpods] Component \"kube-apiserver\" upgraded successfully!",
        "[upgrade/control-plane] The control plane instance for this node was successfully upgraded!",
        "[upgrade/kubelet-config] The kubelet configuration for this node was successfully upgraded!",
        "[upgrade/addons] skip upgrade addons",
        "[upgrade/successful] SUCCESS!",
    ];
    let at: Vec<usize> = phases.iter().map(|p| out.find(p).unwrap_or_else(|| panic!("no {p:?} in {out}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "phases out of order: {out}");

    let kubectl = r.kubectl(&["version", "-o", "json"]);
    let version: Value = serde_json::from_slice(&kubectl.stdout).expect("kubectl version -o json");
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.35.0");

    // The second control-plane node follows with `upgrade node`.
    let (code, err) = failed(&r.run(&["lab", "node", "cp-02", "kubeadm", "upgrade", "node"]));
    assert_eq!(code, 1);
    assert!(err.contains("cp-02: [upgrade/version] FATAL"), "{err}");
    ok(&r.run(&["lab", "node", "cp-02", "repo", "v1.35"]));
    ok(&r.run(&["lab", "node", "cp-02", "install", "kubeadm=1.35.0-1.1"]));
    let report = json(&r.run(&["lab", "node", "cp-02", "kubeadm", "upgrade", "node", "-o", "json"]));
    assert_eq!(report["kind"], "KubeadmUpgrade");
    assert_eq!(report["version"], "v1.35.0");
    assert!(
        report["changed"].as_array().unwrap().iter().any(|c| c == "kube-apiserver: v1.34.6 -> v1.35.0"),
        "{report}"
    );
}

/// The line of a kubeadm table that starts with `component` and names `node`.
fn table_line<'a>(out: &'a str, component: &str, node: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(component) && (node.is_empty() || l.contains(node)))
        .unwrap_or_else(|| panic!("no {component} {node} line in:\n{out}"))
}

#[test]
fn kubeadm_upgrade_plan_offers_what_the_installed_kubeadm_can_apply_and_changes_nothing() {
    let r = TestLab::small(100.0, |_| {});
    let latest = |minor| ReleaseData::embedded().latest_patch(Minor::new(1, minor)).unwrap().canonical();
    let nodes = || ok(&r.run(&["lab", "nodes", "-o", "json"]));

    // kubeadm 1.34.6 on a v1.34.6 cluster: nothing it can apply; kubeadm must be upgraded first.
    let before = nodes();
    let out = ok(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "plan"]));
    assert_eq!(nodes(), before, "a plan changes nothing");
    assert!(out.contains("[upgrade/versions] Cluster version: v1.34.6"), "{out}");
    assert!(out.contains("[upgrade/versions] kubeadm version: v1.34.6"), "{out}");
    assert!(out.contains(&format!("Latest version in the v1.34 series: {}", latest(34))), "{out}");
    assert!(out.contains("Upgrade kubeadm first"), "{out}");
    assert!(out.contains(&format!("kubeadm {} for the upgrade to {}", &latest(35)[1..], latest(35))), "{out}");
    assert!(out.contains(&format!("stepstone lab node cp-01 install kubeadm={}-1.1", &latest(35)[1..])), "{out}");
    assert!(!out.contains("kubeadm upgrade apply"), "nothing to apply yet: {out}");

    ok(&r.run(&["lab", "node", "cp-01", "repo", "v1.35"]));
    ok(&r.run(&["lab", "node", "cp-01", "install", "kubeadm=1.35.0-1.1"]));
    let before = nodes();
    let out = ok(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "plan"]));
    assert!(out.contains("[upgrade/versions] Target version: v1.35.0"), "{out}");
    assert!(out.contains("does not look versions up online"), "the lab says where the target comes from: {out}");
    assert!(
        out.contains(
            "Components that must be upgraded manually after you have upgraded the control plane with 'kubeadm upgrade apply':"
        ),
        "{out}"
    );
    assert!(out.contains("Upgrade to the latest stable version:"), "{out}");
    assert!(
        out.contains(
            "You can now apply the upgrade by executing the following command:\n\n\tkubeadm upgrade apply v1.35.0\n"
        ),
        "{out}"
    );
    assert!(out.contains(&format!("update kubeadm to {} first", latest(35))), "{out}");
    for cp in ["cp-01", "cp-02", "cp-03"] {
        for component in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
            let line = table_line(&out, component, cp);
            assert!(line.ends_with("v1.34.6   v1.35.0"), "{line}");
        }
        let etcd = table_line(&out, "etcd", cp);
        assert!(etcd.contains("3.6.4-0"), "{etcd}");
    }
    assert!(table_line(&out, "kube-proxy", "").ends_with("v1.34.6   v1.35.0"), "{out}");
    assert!(table_line(&out, "CoreDNS", "").ends_with("v1.12.1   v1.13.1"), "{out}");
    let kubelets: Vec<&str> = out.lines().filter(|l| l.starts_with("kubelet ")).collect();
    assert_eq!(kubelets.len(), 15, "every node's kubelet: {out}");
    assert!(kubelets.iter().all(|l| l.ends_with("v1.34.6   v1.35.0")), "{kubelets:?}");
    assert!(out.contains("kubelet.config.k8s.io     v1beta1"), "{out}");

    let plan = json(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "plan", "-o", "json"]));
    assert_eq!(plan["kind"], "KubeadmUpgradePlan");
    assert_eq!((plan["clusterVersion"].as_str(), plan["kubeadmVersion"].as_str()), (Some("v1.34.6"), Some("v1.35.0")));
    assert_eq!(plan["target"], "v1.35.0");
    assert_eq!(plan["kubelets"].as_array().unwrap().len(), 15);
    let components = plan["components"].as_array().unwrap();
    assert_eq!(components.len(), 3 * 3 + 2 + 3, "{plan}");
    assert!(components.iter().any(|c| c["component"] == "kube-proxy" && c["node"] == "" && c["target"] == "v1.35.0"));
    let yaml = ok(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "plan", "v1.35.0", "-o", "yaml"]));
    assert!(yaml.contains("kind: KubeadmUpgradePlan") && yaml.contains("requested: v1.35.0"), "{yaml}");
    assert_eq!(nodes(), before, "a plan changes nothing");
    assert_eq!(
        r.lab.get("pods", "kube-system", "kube-apiserver-cp-01").unwrap()["spec"]["containers"][0]["image"],
        "registry.k8s.io/kube-apiserver:v1.34.6"
    );

    // kubeadm's refusals, as `apply` gives them.
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "plan", &latest(35)]));
    assert_eq!(code, 1);
    assert!(err.contains("higher than the kubeadm version \"v1.35.0\""), "{err}");
    ok(&r.run(&["lab", "node", "cp-01", "repo", "v1.36"]));
    ok(&r.run(&["lab", "node", "cp-01", "install", "kubeadm=1.36.0-1.1"]));
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "plan", "v1.36.0"]));
    assert_eq!(code, 1);
    assert!(err.contains("kubeadm can upgrade only 1 minor version at a time (cluster is at v1.34.6)"), "{err}");
    let (code, err) = failed(&r.run(&["lab", "node", "r650-01", "kubeadm", "upgrade", "plan"]));
    assert_eq!(code, 1);
    assert!(err.contains("r650-01: `kubeadm upgrade plan` runs on a control-plane node"), "{err}");
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "plan", "latest"]));
    assert_eq!(code, 2);
    assert!(err.contains("kubeadm upgrade plan latest") && err.contains("v1.35.0"), "{err}");
}

#[test]
fn kubelet_install_and_restart_bring_the_node_back_on_the_new_version() {
    let r = TestLab::small(100.0, |_| {});
    ok(&r.run(&["lab", "node", "r650-02", "repo", "v1.35"]));
    let out = ok(&r.run(&["lab", "node", "r650-02", "install", "kubelet=1.35.0-1.1", "kubectl-1.35.0-150500.1.1"]));
    assert!(out.contains("r650-02: kubelet 1.34.6-1.1 -> 1.35.0-1.1"), "{out}");
    assert!(out.contains("r650-02: kubectl 1.34.6-1.1 -> 1.35.0-150500.1.1"), "{out}");
    assert!(out.contains("the running kubelet is still v1.34.6"), "{out}");

    let out = ok(&r.run(&["lab", "node", "r650-02", "restart-kubelet"]));
    assert!(out.contains("r650-02: kubelet restarting (NotReady) to run v1.35.0"), "{out}");
    let doc = json(&r.run(&["lab", "node", "r650-02", "restart-kubelet", "--wait", "-o", "json"]));
    assert_eq!(doc["facts"]["kubeletVersion"], "v1.35.0");
    assert_eq!(doc["facts"]["ready"], true);
    let node = r.lab.get("nodes", "", "r650-02").unwrap();
    assert_eq!(node["status"]["nodeInfo"]["kubeletVersion"], "v1.35.0");
}

#[test]
fn cgroup_v1_node_is_refused_by_kubeadm_and_its_new_kubelet_does_not_start() {
    let r = TestLab::small(100.0, |fleet| {
        let items = fleet["items"].as_array_mut().unwrap();
        let node = items.iter_mut().find(|i| i["kind"] == "Node" && i["metadata"]["name"] == "r650-03").unwrap();
        node["metadata"]["labels"][CGROUP_LABEL] = "v1".into();
    });
    // The control plane moves first: a worker's `kubeadm upgrade node` follows the cluster.
    ok(&r.run(&["lab", "node", "cp-01", "repo", "v1.35"]));
    ok(&r.run(&["lab", "node", "cp-01", "install", "kubeadm=1.35.0-1.1"]));
    ok(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "apply", "v1.35.0", "-y"]));
    ok(&r.run(&["lab", "node", "r650-03", "repo", "v1.35"]));
    ok(&r.run(&["lab", "node", "r650-03", "install", "kubeadm=1.35.0-1.1", "kubelet=1.35.0-1.1"]));
    let (code, err) = failed(&r.run(&["lab", "node", "r650-03", "kubeadm", "upgrade", "node"]));
    assert_eq!(code, 1);
    assert!(err.contains("[ERROR SystemVerification]") && err.contains("cgroup v1"), "{err}");
    ok(&r.run(&[
        "lab",
        "node",
        "r650-03",
        "kubeadm",
        "upgrade",
        "node",
        "--ignore-preflight-errors=SystemVerification",
    ]));
    let (code, err) = failed(&r.run(&["lab", "node", "r650-03", "restart-kubelet", "--wait", "--timeout", "30s"]));
    assert_eq!(code, 1);
    assert!(err.contains("r650-03: the kubelet did not start") && err.contains("cgroup v1"), "{err}");
    let table = ok(&r.run(&["lab", "nodes", "r650-03"]));
    assert!(table.contains("NotReady,KubeletFailed"), "{table}");
}

#[test]
fn bad_arguments_name_the_input_and_change_nothing() {
    let r = TestLab::small(100.0, |_| {});
    ok(&r.run(&["lab", "node", "cp-01", "repo", "v1.35"]));
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "install", "kubelet=1.35.0-1.1", "kubeadm=latest"]));
    assert_eq!(code, 2);
    assert!(err.contains("install kubeadm=latest") && err.contains("1.35.0-1.1"), "{err}");
    assert_eq!(package(&r.lab, "cp-01", "kubelet"), "1.34.6-1.1", "nothing is installed when one argument is bad");
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "install", "containerd=2.0.5"]));
    assert_eq!(code, 2);
    assert!(err.contains("unknown package \"containerd\""), "{err}");
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "install", "kubeadm"]));
    assert_eq!(code, 2);
    assert!(err.contains("PACKAGE=VERSION"), "{err}");
    let (code, err) = failed(&r.run(&["lab", "node", "cp-09", "restart-kubelet"]));
    assert_eq!(code, 2);
    assert!(err.contains("node \"cp-09\" not found"), "{err}");
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "apply", "latest"]));
    assert_eq!(code, 2);
    assert!(err.contains("kubeadm upgrade apply latest") && err.contains("v1.35.0"), "{err}");
}

#[test]
fn faults_are_read_and_changed_on_a_running_lab() {
    let r = TestLab::small(100.0, |_| {});
    let doc = json(&r.run(&["lab", "faults", "-o", "json"]));
    assert_eq!((doc["kind"].as_str(), doc["errorRate"].as_f64()), (Some("LabFaults"), Some(0.0)));

    ok(&r.run(&["lab", "faults", "--error-rate", "0.25", "--latency-ms", "5", "--never-return", "r660-01"]));
    // Flags change only what they name.
    let table = ok(&r.run(&["lab", "faults", "--throttle-rate", "0.1", "--drop-watch-rate", "0.3"]));
    assert!(table.lines().any(|l| l.starts_with("error-rate") && l.ends_with("0.25")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("drop-watch-rate") && l.ends_with("0.3")), "{table}");
    let f = r.lab.faults();
    assert_eq!((f.error_rate, f.throttle_rate, f.latency_ms, f.drop_watch_rate), (0.25, 0.1, 5, 0.3));
    let (code, err) = failed(&r.run(&["lab", "faults", "--drop-watch-rate", "2"]));
    assert_eq!(code, 2);
    assert!(err.contains("--drop-watch-rate 2 must be between 0.0 and 1.0"), "{err}");
    assert!(f.never_return.contains("r660-01"));

    let (code, err) = failed(&r.run(&["lab", "faults", "--error-rate", "1.5"]));
    assert_eq!(code, 2);
    assert!(err.contains("--error-rate 1.5"), "{err}");
    let (code, err) = failed(&r.run(&["lab", "faults", "--throttle-rate", "0.9"]));
    assert_eq!(code, 2);
    assert!(err.contains("--error-rate + --throttle-rate must not exceed 1.0"), "{err}");
    assert_eq!(r.lab.faults().throttle_rate, 0.1, "a refused change leaves the lab as it was");
    // A fault on a node the lab does not have would never fire: refused, naming the node.
    let (code, err) = failed(&r.run(&["lab", "faults", "--never-return", "nope"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--never-return: node \"nope\" not found; the lab's nodes are "), "{err}");
    let (code, err) = failed(&r.run(&["lab", "faults", "--crash-loop", "node:nope"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--crash-loop: node \"nope\" not found"), "{err}");
    let (code, err) = failed(&r.run(&["lab", "faults", "--latency-ms", "18446744073709551615"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--latency-ms 18446744073709551615 must be at most 60000"), "{err}");
    assert!(!r.lab.faults().never_return.contains("nope"));

    // The never-return fault holds the kubelet down, and --wait says so.
    let (code, err) = failed(&r.run(&["lab", "node", "r660-01", "restart-kubelet", "--wait", "--timeout", "1"]));
    assert_eq!(code, 1);
    assert!(err.contains("r660-01: not Ready 1s after the kubelet restart"), "{err}");

    ok(&r.run(&["lab", "faults", "--clear"]));
    assert_eq!(r.lab.faults(), stepstone_lab::FaultConfig::default());
}

/// One HTTP/1.1 request to the lab: the status and the JSON body.
fn http(lab: &LabHandle, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let mut conn = std::net::TcpStream::connect(lab.addr).unwrap();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        lab.addr,
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (_, body) = answer.split_once("\r\n\r\n").unwrap_or(("", ""));
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn concurrent_fault_changes_of_different_fields_all_survive() {
    let r = TestLab::small(100.0, |_| {});
    ok(&r.run(&["lab", "faults", "--latency-ms", "3", "--crash-loop", "node:r650-04"]));
    // Several people at once, each changing something else (two of them adding to one list).
    let changes: [&[&str]; 4] = [
        &["lab", "faults", "--error-rate", "0.2"],
        &["lab", "faults", "--throttle-rate", "0.1"],
        &["lab", "faults", "--never-return", "r650-01"],
        &["lab", "faults", "--never-return", "r650-02", "--latency-ms", "7"],
    ];
    let lab = &r;
    std::thread::scope(|s| {
        let runs: Vec<_> = changes.iter().map(|args| s.spawn(move || lab.run(args))).collect();
        for run in runs {
            ok(&run.join().unwrap());
        }
    });
    let f = r.lab.faults();
    assert_eq!((f.error_rate, f.throttle_rate, f.latency_ms), (0.2, 0.1, 7), "{f:?}");
    assert_eq!(f.never_return.iter().map(String::as_str).collect::<Vec<_>>(), ["r650-01", "r650-02"]);
    assert!(f.crash_loop.contains("node:r650-04"), "an untouched field keeps its value: {f:?}");

    // The same through the HTTP API, with truly simultaneous merge patches.
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            http(&r.lab, "PATCH", "/lab/v1/faults", "application/merge-patch+json", r#"{"errorRate": 0.05}"#)
        });
        let b =
            s.spawn(|| http(&r.lab, "PATCH", "/lab/v1/faults", "application/merge-patch+json", r#"{"latencyMs": 1}"#));
        assert_eq!(a.join().unwrap().0, 200);
        assert_eq!(b.join().unwrap().0, 200);
    });
    let f = r.lab.faults();
    assert_eq!((f.error_rate, f.throttle_rate, f.latency_ms), (0.05, 0.1, 1));

    let (status, doc) =
        http(&r.lab, "PATCH", "/lab/v1/faults", "application/merge-patch+json", r#"{"throttleRate": 0.99}"#);
    assert_eq!(status, 400);
    assert!(doc["error"].as_str().unwrap().contains("must not exceed 1.0"), "{doc}");
    let (status, doc) = http(&r.lab, "PATCH", "/lab/v1/faults", "text/plain", "{}");
    assert_eq!(status, 415);
    assert!(doc["error"].as_str().unwrap().contains("application/merge-patch+json"), "{doc}");
    assert_eq!(r.lab.faults().throttle_rate, 0.1, "refused patches change nothing");

    // PUT still replaces the whole set.
    let (status, doc) = http(&r.lab, "PUT", "/lab/v1/faults", "application/json", r#"{"latencyMs": 2}"#);
    assert_eq!((status, doc["latencyMs"].as_u64(), doc["errorRate"].as_f64()), (200, Some(2), Some(0.0)));
    assert_eq!(r.lab.faults(), stepstone_lab::FaultConfig { latency_ms: 2, ..Default::default() });
}

#[test]
fn kubeconfigs_of_other_clusters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, server: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, stepstone_lab::kubeconfig_for(server)).unwrap();
        path
    };
    let lab_at = |kubeconfig: &std::path::Path, args: &[&str]| {
        stepstone().args(args).arg("--kubeconfig").arg(kubeconfig).output().unwrap()
    };
    let prod = write("prod", "https://10.0.0.1:6443");
    let (code, err) = failed(&lab_at(&prod, &["lab", "nodes"]));
    assert_eq!(code, 2);
    assert!(err.contains("server https://10.0.0.1:6443 is not on 127.0.0.1 or localhost"), "{err}");
    let kind = write("kind", "https://127.0.0.1:41234");
    let (code, err) = failed(&lab_at(&kind, &["lab", "node", "kind-control-plane", "restart-kubelet"]));
    assert_eq!(code, 2);
    assert!(err.contains("uses https") && err.contains("not a lab"), "{err}");
    let (code, err) = failed(&lab_at(&dir.path().join("missing"), &["lab", "faults"]));
    assert_eq!(code, 2);
    assert!(err.contains("cannot read --kubeconfig") && err.contains("stepstone lab up"), "{err}");

    // A lab that has stopped: nothing listens on the port its kubeconfig names. The port stays
    // bound (never listened on) for the whole check, so no other process can take it meanwhile.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    let gone = write("gone", &format!("http://127.0.0.1:{port}"));
    let (code, err) = failed(&lab_at(&gone, &["lab", "nodes"]));
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach the lab") && err.contains("still running"), "{err}");
}

#[test]
fn help_teaches_with_examples() {
    let help = |args: &[&str]| {
        let out = stepstone().args(args).arg("--help").output().unwrap();
        ok(&out)
    };
    let lab = help(&["lab"]);
    for cmd in ["nodes", "node", "faults"] {
        assert!(lab.lines().any(|l| l.trim_start().starts_with(cmd)), "{cmd} missing from:\n{lab}");
    }
    let node = help(&["lab", "node"]);
    assert!(
        node.contains("Examples:") && node.contains("stepstone lab node cp-01 kubeadm upgrade apply v1.35.0"),
        "{node}"
    );
    let apply = help(&["lab", "node", "cp-01", "kubeadm", "upgrade", "apply"]);
    assert!(apply.contains("--ignore-preflight-errors") && apply.contains("skips a minor"), "{apply}");
    let install = help(&["lab", "node", "cp-01", "install"]);
    assert!(install.contains("1.35.0-150500.1.1") && install.contains("restart-kubelet"), "{install}");
    assert!(help(&["lab", "faults"]).contains("stepstone lab faults --error-rate 0.05"));
}

#[test]
fn logs_piped_from_stderr_carry_no_colour_codes() {
    let r = TestLab::small(100.0, |_| {});
    let out = r.stepstone(&["inventory"]).env("RUST_LOG", "debug").env_remove("NO_COLOR").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.lines().any(|l| l.contains("DEBUG")), "RUST_LOG=debug logs something: {err}");
    assert!(!err.contains('\u{1b}'), "no ANSI escape when stderr is a pipe: {err:?}");
}

#[test]
fn completions_into_a_reader_that_stops_early_is_not_a_crash() {
    use std::io::Read;
    let mut child = stepstone()
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line's worth, as `| head -1` does, then close the pipe on a script far larger
    // than the pipe's buffer.
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(first.starts_with(b"_stepstone()"), "{first:?}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
