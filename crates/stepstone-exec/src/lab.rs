//! The `lab` node backend: the node operations of `stepstone lab` (packages, `kubeadm upgrade`,
//! kubelet restarts, the control-plane node's own etcd snapshot, `journalctl -u kubelet`)
//! through the lab's typed client, [`LabClient`].

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use stepstone_core::version::KubeVersion;
use stepstone_host::node::BoxFuture;
use stepstone_lab::{LabClient, LabClientError, Package, UpgradeOptions};

use crate::backend::{BackendError, KubeadmStep, NodeBackend, NodeRef};
use crate::journal::HopSnapshot;

/// How many kubelet log lines a rollback report carries.
const KUBELET_LOG_LINES: usize = 20;

/// The lab's node API.
#[derive(Clone, Debug)]
pub struct LabBackend {
    client: LabClient,
    /// The lab's seconds per wall-clock second, read from its clock.
    pub speed: f64,
}

impl LabBackend {
    /// Connect to the lab serving `server` (the kubeconfig's server URL) and read its clock.
    pub async fn new(server: &str) -> Result<Self, BackendError> {
        let unreachable = |e: LabClientError| BackendError::Unreachable { node: "lab".into(), detail: e.to_string() };
        let client = LabClient::from_url(server).await.map_err(unreachable)?;
        let clock = client.clock().await.map_err(unreachable)?;
        let speed = if clock.speed.is_finite() && clock.speed > 0.0 { clock.speed } else { 1.0 };
        Ok(LabBackend { client, speed })
    }

    /// The typed client this backend drives.
    pub fn client(&self) -> &LabClient {
        &self.client
    }

    async fn install(&self, node: &str, package: Package, version: &KubeVersion) -> Result<String, BackendError> {
        // The runbook's pin: whatever revision the repository has of this version, as apt
        // resolves `kubeadm='1.35.8-*'`.
        let spec = format!("{}-*", version.bare());
        self.client.install_package(node, package, &spec).await.map_err(failed(node, "package install"))?;
        Ok(format!("install {}='{spec}'", package.name()))
    }

    /// Point the node's package repository at `version`'s minor, as the runbook's repository
    /// switch does; the lab offers a minor's packages only from its own repository.
    async fn repository(&self, node: &str, version: &KubeVersion) -> Result<String, BackendError> {
        let repo = format!("v{}", version.minor());
        self.client.configure_repository(node, &repo).await.map_err(failed(node, "package repository switch"))?;
        Ok(format!("point the Kubernetes package repository at pkgs.k8s.io/core:/stable:/{repo}"))
    }

    async fn restart(&self, node: &str) -> Result<String, BackendError> {
        self.client.restart_kubelet(node).await.map_err(failed(node, "kubelet restart"))?;
        Ok("systemctl restart kubelet".into())
    }
}

/// The lab refusing an operation (as the real tool would) is a failed step on that node;
/// anything else means the lab could not be asked.
fn failed<'a>(node: &'a str, operation: &'a str) -> impl Fn(LabClientError) -> BackendError + 'a {
    move |e| match e {
        LabClientError::Refused { .. } | LabClientError::BadRequest { .. } => {
            BackendError::Failed { node: node.to_string(), operation: operation.to_string(), detail: e.to_string() }
        }
        other => BackendError::Unreachable { node: node.to_string(), detail: other.to_string() },
    }
}

impl NodeBackend for LabBackend {
    fn name(&self) -> &'static str {
        "lab"
    }

    fn upgrade<'a>(
        &'a self,
        node: &'a NodeRef,
        target: &'a KubeVersion,
        step: KubeadmStep,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            let n = node.name.as_str();
            let mut ran = vec![self.repository(n, target).await?, self.install(n, Package::Kubeadm, target).await?];
            let options = UpgradeOptions::default();
            match step {
                KubeadmStep::Apply => {
                    let v = target.canonical();
                    self.client
                        .kubeadm_upgrade_apply(n, &v, &options)
                        .await
                        .map_err(failed(n, "kubeadm upgrade apply"))?;
                    ran.push(format!("kubeadm upgrade apply -y {v}"));
                }
                KubeadmStep::Node => {
                    self.client.kubeadm_upgrade_node(n, &options).await.map_err(failed(n, "kubeadm upgrade node"))?;
                    ran.push("kubeadm upgrade node".into());
                }
            }
            ran.push(self.install(n, Package::Kubelet, target).await?);
            ran.push(self.install(n, Package::Kubectl, target).await?);
            ran.push(self.restart(n).await?);
            Ok(ran)
        })
    }

    fn rollback<'a>(
        &'a self,
        node: &'a NodeRef,
        previous: &'a KubeVersion,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            let n = node.name.as_str();
            let mut ran = vec![self.repository(n, previous).await?];
            for p in Package::ALL {
                ran.push(self.install(n, p, previous).await?);
            }
            ran.push(self.restart(n).await?);
            Ok(ran)
        })
    }

    fn etcd_snapshot<'a>(
        &'a self,
        node: &'a NodeRef,
        dir: &'a Path,
        _cluster: &'a str,
        label: &'a str,
        _now: Timestamp,
    ) -> BoxFuture<'a, Result<HopSnapshot, BackendError>> {
        Box::pin(async move {
            // The lab writes the files itself, so it needs the directory in full; it creates it
            // 0700 and refuses one that others can read.
            let dir = std::path::absolute(dir).map_err(|e| BackendError::Etcd(format!("{}: {e}", dir.display())))?;
            let report = self
                .client
                .etcd_snapshot_labelled(&node.name, &dir, Some(label))
                .await
                .map_err(|e| BackendError::Etcd(format!("etcdctl snapshot save on {}: {e}", node.name)))?;
            Ok(HopSnapshot { path: report.path.display().to_string(), metadata: report.metadata })
        })
    }

    fn kubelet_logs<'a>(&'a self, node: &'a NodeRef) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            let logs = self
                .client
                .kubelet_logs(&node.name, Some(KUBELET_LOG_LINES))
                .await
                .map_err(failed(&node.name, "journalctl -u kubelet"))?;
            Ok(logs.lines)
        })
    }

    fn ready_timeout(&self) -> Duration {
        // Ten simulated minutes.
        Duration::from_secs_f64((600.0 / self.speed).max(5.0))
    }
}
