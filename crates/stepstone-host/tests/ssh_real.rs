//! NodeOps and pre-flight against Debian's real sshd on loopback: this machine is the node.
//! Host keys are checked, a changed key is refused, unreachable nodes fail alone and clearly,
//! and an etcd snapshot is taken with etcdctl over SSH.

mod common;

use std::time::Duration;

use common::{Etcd, Sshd, require};
use stepstone_core::findings::Severity;
use stepstone_core::releases::ReleaseData;
use stepstone_host::etcd::{self, RemoteEtcdctl};
use stepstone_host::node::{NodeError, NodeOps, NodeTarget, RemoteCommand};
use stepstone_host::preflight::{self, CheckContext, Collected, PreflightNode, Thresholds};
use stepstone_host::ssh::{SshNodeOps, SshOptions};

fn ops(sshd: &Sshd, known_hosts: &std::path::Path) -> SshNodeOps {
    ops_with(sshd, known_hosts, "")
}

fn ops_with(sshd: &Sshd, known_hosts: &std::path::Path, extra_config: &str) -> SshNodeOps {
    SshNodeOps::new(SshOptions {
        config_file: Some(sshd.client_config_with(known_hosts, extra_config)),
        connect_timeout: Duration::from_secs(2),
        log_dir: Some(sshd.path("logs")),
        ..SshOptions::default()
    })
}

fn node(name: &str, address: &str, generation: &str) -> PreflightNode {
    PreflightNode { target: NodeTarget::new(name, address), generation: generation.into(), control_plane: false }
}

fn this_machine_cgroup() -> String {
    let out = std::process::Command::new("stat").args(["-fc", "%T", "/sys/fs/cgroup"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_over_real_ssh_with_unreachable_nodes() {
    let sshd = Sshd::start();
    // A server that accepts TCP and never answers: ConnectTimeout (2s) ends the wait.
    let silent = common::silent_listener("127.0.0.3");
    let ssh = ops_with(&sshd, &sshd.path("known_hosts"), &format!("Host 127.0.0.3\n  Port {silent}\n"));
    let nodes = vec![
        node("self", "127.0.0.1", "gen-local"),
        // Loopback, but nothing listens there on this port: refused at once.
        node("refused", "127.0.0.2", "gen-local"),
        node("blackhole", "127.0.0.3", "gen-far"),
    ];
    let thresholds = Thresholds::embedded();
    let collected = preflight::collect(&ssh, &nodes, thresholds, Duration::from_secs(60)).await;

    let Collected::Facts(facts) = &collected[0] else { panic!("self was not reached: {:?}", collected[0]) };
    assert_eq!(facts.ok_output("cgroup").map(str::trim), Some(this_machine_cgroup().as_str()));
    match &collected[1] {
        Collected::Failed(e @ NodeError::Unreachable { .. }) => {
            assert!(e.to_string().contains("refused (127.0.0.2): unreachable"), "{e}");
            assert!(e.to_string().contains("Connection refused"), "{e}");
        }
        other => panic!("refused node: {other:?}"),
    }
    match &collected[2] {
        Collected::Failed(e @ (NodeError::Unreachable { .. } | NodeError::Timeout { .. })) => {
            assert!(e.to_string().contains("blackhole (127.0.0.3)"), "{e}");
            assert!(e.to_string().contains("timed out") && e.to_string().contains("(ConnectTimeout=2s)"), "{e}");
        }
        other => panic!("blackhole node: {other:?}"),
    }

    // Judge the facts for v1.35 (cgroup v2 required) and v1.34 (v1 still accepted).
    let at = |target: &str| CheckContext {
        target: target.parse().unwrap(),
        releases: ReleaseData::embedded(),
        thresholds,
        now: jiff::Timestamp::now(),
    };
    let report = preflight::evaluate(&nodes, &collected, &at("v1.35.3"));
    let cgroup = report.results.iter().find(|r| r.node == "self" && r.check == "cgroup").expect("cgroup result");
    if this_machine_cgroup() == "tmpfs" {
        assert_eq!(cgroup.finding.severity, Severity::Error, "{cgroup:?}");
        assert_eq!(cgroup.finding.code, "preflight.cgroup-v1");
        assert!(cgroup.finding.message.contains("cgroup v1 or hybrid (/sys/fs/cgroup is tmpfs)"));
        assert!(cgroup.finding.message.contains("will not start on cgroup v1"));
        let older = preflight::evaluate(&nodes, &collected, &at("v1.34.2"));
        let c = older.results.iter().find(|r| r.node == "self" && r.check == "cgroup").unwrap();
        assert_eq!(c.finding.severity, Severity::Warning);
    } else {
        assert_eq!(cgroup.finding.code, "preflight.cgroup-v2");
    }
    // Every check ran on the reachable node; the others report one reach failure each.
    let self_checks: Vec<&str> = report.results.iter().filter(|r| r.node == "self").map(|r| r.check.as_str()).collect();
    for check in ["cgroup", "disk", "runtime", "swap", "kernel", "packages", "repository", "time"] {
        assert!(self_checks.contains(&check), "{check} missing: {self_checks:?}");
    }
    let kernel = report.results.iter().find(|r| r.node == "self" && r.check == "kernel").unwrap();
    assert_eq!(kernel.finding.severity, Severity::Info, "{kernel:?}");
    let local = report.generations.iter().find(|g| g.generation == "gen-local").unwrap();
    assert_eq!(local.nodes, ["refused", "self"]);
    assert_eq!(local.checks["reach"].fail, 1);
    let far = report.generations.iter().find(|g| g.generation == "gen-far").unwrap();
    assert_eq!((far.failing_nodes, far.checks.len()), (1, 1));

    // The per-node log holds the command and its output.
    let log = std::fs::read_to_string(sshd.path("logs").join("self.log")).expect("self.log");
    assert!(log.contains("@@stepstone-begin cgroup") && log.contains("--- exit 0"), "{log}");
}

/// The kubelet's flag files as kubeadm and an operator leave them, seen by the SSH sessions at
/// their real paths (bind-mounted over /var/lib and /etc/default in sshd's own mount namespace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_reads_the_kubelet_flag_files_on_the_node() {
    let root = tempfile::tempdir().unwrap();
    let var_lib = root.path().join("var-lib");
    let etc_default = root.path().join("etc-default");
    std::fs::create_dir_all(var_lib.join("kubelet")).unwrap();
    std::fs::create_dir_all(&etc_default).unwrap();
    std::fs::write(
        var_lib.join("kubelet/kubeadm-flags.env"),
        "KUBELET_KUBEADM_ARGS=\"--container-runtime=remote --container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9\"\n",
    )
    .unwrap();
    std::fs::write(
        var_lib.join("kubelet/config.yaml"),
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n",
    )
    .unwrap();
    std::fs::write(etc_default.join("kubelet"), "KUBELET_EXTRA_ARGS=--cgroup-driver=cgroupfs\n").unwrap();
    let sshd = Sshd::start_with("", &[(&var_lib, "/var/lib"), (&etc_default, "/etc/default")]);
    let ssh = ops(&sshd, &sshd.path("known_hosts"));
    let nodes = vec![node("self", "127.0.0.1", "gen-local")];
    let thresholds = Thresholds::embedded();
    let collected = preflight::collect(&ssh, &nodes, thresholds, Duration::from_secs(60)).await;
    let at = |target: &str| CheckContext {
        target: target.parse().unwrap(),
        releases: ReleaseData::embedded(),
        thresholds,
        now: jiff::Timestamp::now(),
    };
    let flags = |target: &str| {
        let report = preflight::evaluate(&nodes, &collected, &at(target));
        report.results.into_iter().find(|r| r.check == "kubelet-flags").expect("kubelet-flags result").finding
    };

    // 1.26 still accepts --container-runtime: only the cgroup driver contradiction remains.
    let old = flags("v1.26.15");
    assert_eq!(
        (old.severity, old.code.as_str()),
        (Severity::Warning, "preflight.kubelet-cgroup-driver-mismatch"),
        "{old:?}"
    );
    assert!(old.message.contains("--cgroup-driver=cgroupfs (in /etc/default/kubelet) overrides cgroupDriver: systemd"));

    // 1.35 rejects it and the pause image flag: an error naming each flag and its file.
    let new = flags("v1.35.3");
    assert_eq!((new.severity, new.code.as_str()), (Severity::Error, "preflight.kubelet-flag-removed"), "{new:?}");
    for want in [
        "the v1.35.3 kubelet will not start",
        "--container-runtime (in /var/lib/kubelet/kubeadm-flags.env) is removed from 1.27",
        "--pod-infra-container-image (in /var/lib/kubelet/kubeadm-flags.env) is removed from 1.35",
    ] {
        assert!(new.message.contains(want), "{want}: {}", new.message);
    }
    assert!(new.hint.contains("keep only --container-runtime-endpoint"), "{}", new.hint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_is_refused_and_an_unknown_one_too() {
    let sshd = Sshd::start();
    let target = NodeTarget::new("self", "127.0.0.1");
    let echo = RemoteCommand::argv(["echo", "hello from the node"]);

    let out = ops(&sshd, &sshd.path("known_hosts")).run(&target, &echo, Duration::from_secs(30)).await.unwrap();
    assert_eq!((out.status, out.stdout.as_str()), (Some(0), "hello from the node\n"));

    // known_hosts with another key for this server: a possible man in the middle.
    let other = sshd.path("other_key");
    let keygen = require("ssh-keygen", "openssh-client");
    assert!(
        std::process::Command::new(keygen)
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other)
            .status()
            .unwrap()
            .success()
    );
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let wrong = sshd.path("known_hosts_wrong");
    std::fs::write(&wrong, format!("[127.0.0.1]:{} {}\n", sshd.port, key.join(" "))).unwrap();
    let err = ops(&sshd, &wrong).run(&target, &echo, Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(err, NodeError::HostKeyChanged { .. }), "{err:?}");
    assert!(err.to_string().contains("host key verification failed"), "{err}");

    // An empty known_hosts: strict checking refuses a key it has never seen.
    let empty = sshd.path("known_hosts_empty");
    std::fs::write(&empty, "").unwrap();
    let err = ops(&sshd, &empty).run(&target, &echo, Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(err, NodeError::HostKeyUnknown { .. }), "{err:?}");
    assert!(std::fs::read_to_string(&empty).unwrap().is_empty(), "nothing was learned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_snapshot_with_etcdctl_over_ssh() {
    require("etcdctl", "etcd-client");
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let etcd_node = Etcd::start("cp", &work.path().join("etcd"));
    let mut c = etcd_client::Client::connect([etcd_node.client_url.as_str()], None).await.unwrap();
    for i in 0..10 {
        c.put(format!("/registry/ssh/k{i}"), "v", None).await.unwrap();
    }
    let remote_dir = work.path().join("node-side");
    std::fs::create_dir(&remote_dir).unwrap();
    let backups = work.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let remote = RemoteEtcdctl {
        endpoint: etcd_node.client_url.clone(),
        remote_dir: remote_dir.display().to_string(),
        ..RemoteEtcdctl::default()
    };
    let ssh = ops(&sshd, &sshd.path("known_hosts"));
    let (path, meta) = etcd::snapshot_via_ssh(
        &ssh,
        &NodeTarget::new("cp-1", "127.0.0.1"),
        &remote,
        &backups,
        "lab",
        jiff::Timestamp::now(),
        Duration::from_secs(60),
    )
    .await
    .expect("snapshot over ssh")
    .expect("the ssh backend runs");
    assert_eq!(meta.method, "ssh-etcdctl");
    assert_eq!(meta.revision, 11);
    assert_eq!(meta.etcd_version.as_deref().map(|v| v.starts_with("3.")), Some(true));
    assert!(std::fs::read_dir(&remote_dir).unwrap().next().is_none(), "the node's copy is removed");
    let report = etcd::verify(
        &path,
        &etcd::VerifyOptions {
            metadata: None,
            max_age: None,
            now: jiff::Timestamp::now(),
            external_tool: true,
            label: None,
        },
    );
    assert!(report.ok, "{report:#?}");
}

/// Processes on this machine (the node) whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(marker) {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_times_out_is_killed_on_the_node_with_its_children() {
    let sshd = Sshd::start();
    let ssh = ops(&sshd, &sshd.path("known_hosts"));
    let target = NodeTarget::new("cp-1", "127.0.0.1");
    // A unique duration marks the remote children; they run as long as nothing kills them.
    let marker = format!("{}.{}", 4000 + std::process::id() % 1000, std::process::id() % 97);
    let script = format!("sleep {marker} &\nsleep {marker}\n");
    let err = ssh.run(&target, &RemoteCommand::script(script), Duration::from_secs(2)).await.unwrap_err();
    assert!(matches!(err, NodeError::Timeout { .. }), "{err:?}");
    // Remote TERM then KILL land within the grace period; wait for them, not a fixed time.
    let mut left = processes_with(&format!("sleep {marker}"));
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = processes_with(&format!("sleep {marker}"));
    }
    assert!(left.is_empty(), "the timed-out command still runs on the node: {left:?}");

    // A copy that never ends (/dev/zero) stops at the timeout and leaves no partial file.
    let local = sshd.path("copy.partial");
    let err = ssh.fetch_file(&target, "/dev/zero", &local, Duration::from_secs(2)).await.unwrap_err();
    assert!(matches!(err, NodeError::Timeout { .. }), "{err:?}");
    assert!(!local.exists(), "the half-copied file was left behind");
    let mut left = processes_with("cat -- /dev/zero");
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = processes_with("cat -- /dev/zero");
    }
    assert!(left.is_empty(), "the remote cat still runs: {left:?}");
}
