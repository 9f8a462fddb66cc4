//! Node operations behind one trait, [`NodeBackend`]: what the rollout does on a server (package
//! installs, `kubeadm upgrade`, kubelet restarts, the etcd snapshot, kubelet logs). Three
//! backends: the lab's node API ([`crate::lab::LabBackend`]), SSH through
//! `stepstone_host`'s `NodeOps` ([`SshBackend`]), and [`ManualBackend`], which prints a node's
//! commands for the operator's configuration management and lets the engine wait for the node
//! to report its new version. SSH and manual share one command list, made from the same package
//! data as the runbook.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use stepstone_core::snapshot::is_dns1123_subdomain;
use stepstone_core::version::KubeVersion;
use stepstone_host::etcd::{RemoteEtcdctl, snapshot_via_ssh};
use stepstone_host::node::BoxFuture;
use stepstone_host::{NodeOps, NodeTarget, RemoteCommand};
use stepstone_runbook::PackageIndex;
use stepstone_runbook::packages::{Distro, PackageCommands};

use crate::journal::HopSnapshot;

/// A node the backend acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    pub name: String,
    /// Where SSH dials (InternalIP or name).
    pub address: String,
    pub os_image: String,
    pub control_plane: bool,
}

/// Which `kubeadm upgrade` a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeadmStep {
    /// `kubeadm upgrade apply vX`: the first control-plane node of a hop.
    Apply,
    /// `kubeadm upgrade node`: every other node.
    Node,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The node refused or failed an operation (a package missing, kubeadm's preflight).
    #[error("{node}: {operation} failed: {detail}")]
    Failed { node: String, operation: String, detail: String },
    /// The backend could not reach the node or the lab.
    #[error("{node}: {detail}")]
    Unreachable { node: String, detail: String },
    #[error("{0}")]
    Etcd(String),
}

/// One outside system: the servers' own operations.
pub trait NodeBackend: Send + Sync {
    /// `lab`, `ssh` or `manual`.
    fn name(&self) -> &'static str;

    /// Packages to `target`, `kubeadm upgrade apply|node`, kubelet restart. Returns what ran.
    fn upgrade<'a>(
        &'a self,
        node: &'a NodeRef,
        target: &'a KubeVersion,
        step: KubeadmStep,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>>;

    /// Packages back to `previous`, kubelet restart (workers only: the control plane is never
    /// rolled back automatically).
    fn rollback<'a>(
        &'a self,
        node: &'a NodeRef,
        previous: &'a KubeVersion,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>>;

    /// A verified etcd snapshot taken on control-plane node `node`, written under `dir`, its
    /// file name and metadata carrying `label` (the hop's, e.g. `before-hop1`).
    fn etcd_snapshot<'a>(
        &'a self,
        node: &'a NodeRef,
        dir: &'a Path,
        cluster: &'a str,
        label: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<HopSnapshot, BackendError>>;

    /// The kubelet's recent log lines on `node` (empty when the backend cannot read them).
    fn kubelet_logs<'a>(&'a self, node: &'a NodeRef) -> BoxFuture<'a, Result<Vec<String>, BackendError>>;

    /// How long the engine waits for a node to report its new version after [`upgrade`](Self::upgrade).
    fn ready_timeout(&self) -> Duration;
}

/// The commands that upgrade one node, in order, one shell line (or here-document) each: the
/// runbook's, pinning the build `index` lists for `target` (else `'1.x.y-*'`).
pub fn upgrade_commands(distro: Distro, target: &KubeVersion, step: KubeadmStep, index: &PackageIndex) -> Vec<String> {
    let c = PackageCommands::indexed(distro, target, index);
    let mut out = vec![c.repo_switch.clone()];
    out.extend([c.unhold_kubeadm.clone(), c.install_kubeadm.clone(), c.hold_kubeadm.clone()]);
    out.push(match step {
        KubeadmStep::Apply => format!("kubeadm upgrade apply -y {}", target.canonical()),
        KubeadmStep::Node => "kubeadm upgrade node".into(),
    });
    out.extend([c.unhold_kubelet.clone(), c.install_kubelet.clone(), c.hold_kubelet.clone()]);
    out.extend(["systemctl daemon-reload".to_string(), "systemctl restart kubelet".to_string()]);
    out.retain(|l| !l.trim().is_empty());
    out
}

/// The commands that put a worker's packages back on `previous` and restart its kubelet.
pub fn rollback_commands(distro: Distro, previous: &KubeVersion, index: &PackageIndex) -> Vec<String> {
    let c = PackageCommands::indexed(distro, previous, index);
    let mut out = vec![c.repo_switch.clone(), c.unhold_all.clone(), c.downgrade_all.clone(), c.hold_all.clone()];
    out.extend(["systemctl daemon-reload".to_string(), "systemctl restart kubelet".to_string()]);
    out.retain(|l| !l.trim().is_empty());
    out
}

fn distro_of(node: &NodeRef, fixed: Option<Distro>) -> Result<Distro, BackendError> {
    fixed.or_else(|| stepstone_runbook::packages::detect(&node.os_image)).ok_or_else(|| BackendError::Failed {
        node: node.name.clone(),
        operation: "choosing the package manager".into(),
        detail: format!("osImage '{}' is not known as apt, dnf or zypper; pass --distro", node.os_image),
    })
}

/// Node operations over SSH (`stepstone_host`'s `NodeOps`), with `sudo` as its options say.
pub struct SshBackend {
    pub ops: Arc<dyn NodeOps>,
    pub distro: Option<Distro>,
    pub command_timeout: Duration,
    /// How `etcdctl` reaches etcd on each control-plane node, by node name
    /// ([`crate::etcd_access::remote_etcdctl`]); `etcd` for a node not listed.
    pub etcd_by_node: std::collections::BTreeMap<String, RemoteEtcdctl>,
    pub etcd: RemoteEtcdctl,
    /// The repository's own package index (`--package-index`); empty pins `'1.x.y-*'`.
    pub package_index: PackageIndex,
}

/// Where SSH dials `node`, once its name and address are known to be harmless: names and
/// addresses come from the cluster, and anything that is not a DNS-1123 name or an IP address
/// (an option such as `-oProxyCommand=…`, spaces, shell syntax) never reaches `ssh`.
pub fn ssh_target(node: &NodeRef) -> Result<NodeTarget, BackendError> {
    let refuse = |what: &str, value: &str| BackendError::Failed {
        node: node.name.escape_debug().to_string(),
        operation: "choosing where to connect".into(),
        detail: format!(
            "the {what} {value:?} is not a DNS-1123 name or an IP address, so it is not passed to ssh; \
             fix the node's name or its InternalIP address in the cluster"
        ),
    };
    if !is_dns1123_subdomain(&node.name) {
        return Err(refuse("node name", &node.name));
    }
    let address_ok = node.address.parse::<std::net::IpAddr>().is_ok() || is_dns1123_subdomain(&node.address);
    if !address_ok {
        return Err(refuse("address", &node.address));
    }
    Ok(NodeTarget::new(&node.name, &node.address))
}

impl SshBackend {
    async fn run_all(&self, node: &NodeRef, commands: &[String], operation: &str) -> Result<Vec<String>, BackendError> {
        let target = ssh_target(node)?;
        let mut ran = Vec::new();
        for line in commands {
            let script = format!("set -eu\n{line}\n");
            let out = self
                .ops
                .run(&target, &RemoteCommand::script(script), self.command_timeout)
                .await
                .map_err(|e| BackendError::Unreachable { node: node.name.clone(), detail: e.to_string() })?;
            ran.push(line.clone());
            if !out.success() {
                return Err(BackendError::Failed {
                    node: node.name.clone(),
                    operation: format!("{operation}: `{}`", line.lines().next().unwrap_or("")),
                    detail: format!(
                        "exit {}: {}",
                        out.status.map_or("signal".into(), |s| s.to_string()),
                        last_lines(&format!("{}{}", out.stdout, out.stderr), 5)
                    ),
                });
            }
        }
        Ok(ran)
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

impl NodeBackend for SshBackend {
    fn name(&self) -> &'static str {
        "ssh"
    }

    fn upgrade<'a>(
        &'a self,
        node: &'a NodeRef,
        target: &'a KubeVersion,
        step: KubeadmStep,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            let commands = upgrade_commands(distro_of(node, self.distro)?, target, step, &self.package_index);
            self.run_all(node, &commands, "upgrade").await
        })
    }

    fn rollback<'a>(
        &'a self,
        node: &'a NodeRef,
        previous: &'a KubeVersion,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            let commands = rollback_commands(distro_of(node, self.distro)?, previous, &self.package_index);
            self.run_all(node, &commands, "rollback").await
        })
    }

    fn etcd_snapshot<'a>(
        &'a self,
        node: &'a NodeRef,
        dir: &'a Path,
        cluster: &'a str,
        label: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<HopSnapshot, BackendError>> {
        Box::pin(async move {
            let target = ssh_target(node)?;
            // The snapshot holds every Secret: its directory is made 0700 when missing.
            stepstone_host::private::create_dir_all(dir)
                .map_err(|e| BackendError::Etcd(format!("creating {}: {e}", dir.display())))?;
            let etcd = self.etcd_by_node.get(&node.name).unwrap_or(&self.etcd);
            let taken = snapshot_via_ssh(&*self.ops, &target, etcd, dir, cluster, now, self.command_timeout)
                .await
                .map_err(|e| BackendError::Etcd(e.to_string()))?;
            let (path, metadata) = taken.ok_or_else(|| {
                BackendError::Etcd(format!(
                    "{}: the ssh backend printed the commands instead of running them",
                    node.name
                ))
            })?;
            let (path, metadata) = stepstone_host::etcd::apply_label(&path, &metadata, label)
                .map_err(|e| BackendError::Etcd(e.to_string()))?;
            Ok(HopSnapshot { path: path.display().to_string(), metadata })
        })
    }

    fn kubelet_logs<'a>(&'a self, node: &'a NodeRef) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            let target = ssh_target(node)?;
            let cmd = RemoteCommand::argv(["journalctl", "-u", "kubelet", "-n", "20", "--no-pager", "-o", "cat"]);
            let out = self
                .ops
                .run(&target, &cmd, self.command_timeout)
                .await
                .map_err(|e| BackendError::Unreachable { node: node.name.clone(), detail: e.to_string() })?;
            Ok(out.stdout.lines().map(String::from).collect())
        })
    }

    fn ready_timeout(&self) -> Duration {
        Duration::from_secs(600)
    }
}

/// Prints each node's commands for the operator (or their configuration management) to run;
/// the engine then waits until the node reports the new version.
pub struct ManualBackend {
    pub distro: Option<Distro>,
    /// Where the commands go (stdout in the CLI).
    pub out: Arc<dyn Fn(&str) + Send + Sync>,
    /// How long to wait for a node to come back on the new version.
    pub wait: Duration,
    /// Where snapshot files are expected (the operator takes them with `stepstone etcd backup`).
    pub snapshot: Option<PathBuf>,
    /// The repository's own package index (`--package-index`); empty pins `'1.x.y-*'`.
    pub package_index: PackageIndex,
}

impl NodeBackend for ManualBackend {
    fn name(&self) -> &'static str {
        "manual"
    }

    fn upgrade<'a>(
        &'a self,
        node: &'a NodeRef,
        target: &'a KubeVersion,
        step: KubeadmStep,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            // The name heads the printed block: a name with a line break could forge commands.
            ssh_target(&NodeRef { address: node.name.clone(), ..node.clone() })?;
            let commands = upgrade_commands(distro_of(node, self.distro)?, target, step, &self.package_index);
            (self.out)(&format!(
                "run on {} (as root), then stepstone continues once it reports {}:\n{}\n",
                node.name,
                target.canonical(),
                indent(&commands)
            ));
            Ok(commands)
        })
    }

    fn rollback<'a>(
        &'a self,
        node: &'a NodeRef,
        previous: &'a KubeVersion,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            ssh_target(&NodeRef { address: node.name.clone(), ..node.clone() })?;
            let commands = rollback_commands(distro_of(node, self.distro)?, previous, &self.package_index);
            (self.out)(&format!("roll {} back (as root):\n{}\n", node.name, indent(&commands)));
            Ok(commands)
        })
    }

    fn etcd_snapshot<'a>(
        &'a self,
        node: &'a NodeRef,
        _dir: &'a Path,
        _cluster: &'a str,
        _label: &'a str,
        _now: Timestamp,
    ) -> BoxFuture<'a, Result<HopSnapshot, BackendError>> {
        Box::pin(async move {
            let Some(path) = &self.snapshot else {
                return Err(BackendError::Etcd(format!(
                    "--node-ops manual takes no etcd snapshot itself: take one on {} with `stepstone etcd backup` and pass it with --etcd-snapshot FILE",
                    node.name
                )));
            };
            let meta_path = stepstone_host::etcd::SnapshotMetadata::path_for(path);
            let metadata =
                stepstone_host::etcd::read_metadata(&meta_path).map_err(|e| BackendError::Etcd(e.to_string()))?;
            Ok(HopSnapshot { path: path.display().to_string(), metadata })
        })
    }

    fn kubelet_logs<'a>(&'a self, _node: &'a NodeRef) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move { Ok(Vec::new()) })
    }

    fn ready_timeout(&self) -> Duration {
        self.wait
    }
}

fn indent(commands: &[String]) -> String {
    commands.iter().flat_map(|c| c.lines()).map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apt_worker_runs_the_runbooks_commands_in_order() {
        let v: KubeVersion = "v1.35.3".parse().unwrap();
        let none = PackageIndex::default();
        let c = upgrade_commands(Distro::Apt, &v, KubeadmStep::Node, &none);
        let pos =
            |needle: &str| c.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} in {c:?}"));
        assert!(pos("pkgs.k8s.io/core:/stable:/v1.35") < pos("apt-get install -y kubeadm='1.35.3-*'"));
        assert!(pos("kubeadm='1.35.3-*'") < pos("kubeadm upgrade node"));
        assert!(pos("kubeadm upgrade node") < pos("kubelet='1.35.3-*' kubectl='1.35.3-*'"));
        assert_eq!(c.last().map(String::as_str), Some("systemctl restart kubelet"));
        let apply = upgrade_commands(Distro::Apt, &v, KubeadmStep::Apply, &none);
        assert!(apply.iter().any(|l| l == "kubeadm upgrade apply -y v1.35.3"));
        let back = rollback_commands(Distro::Apt, &"v1.34.6".parse().unwrap(), &none);
        assert!(back.iter().any(|l| l.contains("--allow-downgrades kubeadm='1.34.6-*'")), "{back:?}");
    }

    #[test]
    fn a_package_index_pins_the_builds_it_lists_on_the_node_too() {
        let mut index = PackageIndex::default();
        index
            .add(
                "Packages",
                "Package: kubeadm\nVersion: 1.35.3-1.1\n\nPackage: kubelet\nVersion: 1.35.3-2.1\n\n\
                 Package: kubectl\nVersion: 1.35.3-1.1\n\nPackage: kubeadm\nVersion: 1.34.6-1.1\n",
            )
            .unwrap();
        let v: KubeVersion = "v1.35.3".parse().unwrap();
        let c = upgrade_commands(Distro::Apt, &v, KubeadmStep::Node, &index);
        assert!(c.contains(&"apt-get install -y kubeadm='1.35.3-1.1'".to_string()), "{c:?}");
        assert!(c.contains(&"apt-get install -y kubelet='1.35.3-2.1' kubectl='1.35.3-1.1'".to_string()), "{c:?}");
        let back = rollback_commands(Distro::Apt, &"v1.34.6".parse().unwrap(), &index);
        // kubelet and kubectl 1.34.6 are not in this index: they keep the wildcard.
        assert!(
            back.iter().any(|l| l.ends_with("kubeadm='1.34.6-1.1' kubelet='1.34.6-*' kubectl='1.34.6-*'")),
            "{back:?}"
        );
        // dnf nodes do not take deb revisions.
        let dnf = upgrade_commands(Distro::Dnf, &v, KubeadmStep::Node, &index);
        assert!(dnf.iter().any(|l| l.ends_with("kubeadm-'1.35.3-*'")), "{dnf:?}");
    }

    #[test]
    fn only_dns_names_and_ip_addresses_reach_ssh() {
        let node = |name: &str, address: &str| NodeRef {
            name: name.into(),
            address: address.into(),
            os_image: "Ubuntu 24.04.2 LTS".into(),
            control_plane: false,
        };
        for (name, address) in [("w-1", "10.0.0.7"), ("w-1", "fd00::7"), ("w-1.rack-2", "w-1.example.org")] {
            let t = ssh_target(&node(name, address)).unwrap_or_else(|e| panic!("{name} {address}: {e}"));
            assert_eq!((t.name.as_str(), t.address.as_str()), (name, address));
        }
        for (name, address) in [
            ("w-1", "-oProxyCommand=touch /tmp/pwned"),
            ("w-1", "10.0.0.7;reboot"),
            ("w-1", "$(reboot)"),
            ("w-1", "host name"),
            ("w-1", ""),
            ("W-1", "10.0.0.7"),
            ("w-1\nrm -rf /", "10.0.0.7"),
            ("../w-1", "10.0.0.7"),
        ] {
            let err = ssh_target(&node(name, address)).expect_err(address).to_string();
            assert!(err.contains("not a DNS-1123 name or an IP address"), "{err}");
            assert!(!err.contains('\n'), "the refusal is one line: {err}");
        }
    }
}
