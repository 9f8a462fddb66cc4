//! The `lab` node backend: the node operations of `stepstone lab` through its `/lab/v1/` API
//! (packages, `kubeadm upgrade`, kubelet restarts), reached with the same client as the
//! Kubernetes API of the lab.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use stepstone_core::version::KubeVersion;
use stepstone_host::etcd::{METADATA_KIND, SnapshotMetadata};
use stepstone_host::node::BoxFuture;

use crate::backend::{BackendError, KubeadmStep, NodeBackend, NodeRef};
use crate::journal::HopSnapshot;

/// The lab's node API.
#[derive(Clone)]
pub struct LabBackend {
    client: kube::Client,
    /// The lab's simulated seconds per real second, read from `/lab/v1/clock`.
    pub speed: f64,
}

impl LabBackend {
    /// Connect through the lab's Kubernetes client and read its clock.
    pub async fn new(client: kube::Client) -> Result<Self, BackendError> {
        let mut lab = LabBackend { client, speed: 1.0 };
        let clock = lab.call("lab", "GET", "/lab/v1/clock", None).await?;
        lab.speed = clock.get("speed").and_then(Value::as_f64).filter(|s| *s > 0.0).unwrap_or(1.0);
        Ok(lab)
    }

    async fn call(&self, node: &str, method: &str, path: &str, body: Option<Value>) -> Result<Value, BackendError> {
        let unreachable = |detail: String| BackendError::Unreachable { node: node.to_string(), detail };
        let mut request = http::Request::builder().method(method).uri(path).header("Accept", "application/json");
        if body.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        let payload = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let request = request.body(kube::client::Body::from(payload)).map_err(|e| unreachable(e.to_string()))?;
        let response = tokio::time::timeout(Duration::from_secs(120), self.client.send(request))
            .await
            .map_err(|_| unreachable(format!("{method} {path}: no answer from the lab within 120 s")))?
            .map_err(|e| unreachable(format!("{method} {path}: {e}; is the lab still running?")))?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect_bytes().await.map_err(|e| unreachable(e.to_string()))?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let detail = value
            .get("error")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes).trim()));
        Err(BackendError::Failed { node: node.to_string(), operation: format!("{method} {path}"), detail })
    }

    fn node_path(node: &str, rest: &str) -> String {
        // Names come from the cluster: keep them from reshaping the path.
        let safe: String = node
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("/lab/v1/nodes/{safe}{rest}")
    }

    async fn install(&self, node: &str, package: &str, version: &KubeVersion) -> Result<String, BackendError> {
        let spec = format!("{}-1.1", version.bare());
        self.call(
            node,
            "POST",
            &Self::node_path(node, "/packages"),
            Some(json!({"package": package, "version": spec})),
        )
        .await?;
        Ok(format!("install {package}={spec}"))
    }

    /// Point the node's package repository at `version`'s minor, as the runbook's repository
    /// switch does; the lab offers a minor's packages only from its own repository.
    async fn repository(&self, node: &str, version: &KubeVersion) -> Result<String, BackendError> {
        let repo = format!("v{}", version.minor());
        self.call(node, "POST", &Self::node_path(node, "/repository"), Some(json!({"repository": repo}))).await?;
        Ok(format!("point the Kubernetes package repository at pkgs.k8s.io/core:/stable:/{repo}"))
    }

    async fn restart(&self, node: &str) -> Result<String, BackendError> {
        self.call(node, "POST", &Self::node_path(node, "/kubelet/restart"), None).await?;
        Ok("systemctl restart kubelet".into())
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
            let mut ran = vec![self.repository(n, target).await?, self.install(n, "kubeadm", target).await?];
            match step {
                KubeadmStep::Apply => {
                    let body = json!({"version": target.canonical()});
                    self.call(n, "POST", &Self::node_path(n, "/kubeadm/upgrade-apply"), Some(body)).await?;
                    ran.push(format!("kubeadm upgrade apply -y {}", target.canonical()));
                }
                KubeadmStep::Node => {
                    self.call(n, "POST", &Self::node_path(n, "/kubeadm/upgrade-node"), Some(json!({}))).await?;
                    ran.push("kubeadm upgrade node".into());
                }
            }
            ran.push(self.install(n, "kubelet", target).await?);
            ran.push(self.install(n, "kubectl", target).await?);
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
            for p in ["kubeadm", "kubelet", "kubectl"] {
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
        cluster: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<HopSnapshot, BackendError>> {
        Box::pin(async move {
            // The lab's store is its etcd: the snapshot holds every object as the lab serves it
            // at this moment, so a restore could be checked against it.
            let mut items = Vec::new();
            for path in [
                "/api/v1/nodes",
                "/api/v1/pods",
                "/apis/apps/v1/deployments",
                "/apis/apps/v1/statefulsets",
                "/apis/apps/v1/daemonsets",
                "/apis/policy/v1/poddisruptionbudgets",
                "/api/v1/configmaps",
            ] {
                let list = self.call(&node.name, "GET", path, None).await?;
                items.extend(list.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
            }
            let body = serde_json::to_vec(&json!({"kind": "List", "apiVersion": "v1", "items": items}))
                .map_err(|e| BackendError::Etcd(e.to_string()))?;
            let name = stepstone_host::etcd::snapshot_file_name(cluster, now);
            let path = dir.join(&name);
            write_private(dir, &path, &body).map_err(|e| BackendError::Etcd(format!("{}: {e}", path.display())))?;
            let sha = stepstone_host::etcd::sha256_file(&path).map_err(|e| BackendError::Etcd(e.to_string()))?;
            let metadata = SnapshotMetadata {
                api_version: crate::journal::API_VERSION.into(),
                kind: METADATA_KIND.into(),
                file: name,
                cluster: cluster.to_string(),
                sha256: sha,
                size_bytes: body.len() as u64,
                revision: 0,
                total_keys: items.len() as u64,
                hash: 0,
                etcd_version: None,
                endpoint: format!("lab://{}", node.name),
                method: "lab".into(),
                taken_at: now,
                label: None,
            };
            let meta_path = SnapshotMetadata::path_for(&path);
            let meta_text = serde_json::to_vec_pretty(&metadata).map_err(|e| BackendError::Etcd(e.to_string()))?;
            write_private(dir, &meta_path, &meta_text)
                .map_err(|e| BackendError::Etcd(format!("{}: {e}", meta_path.display())))?;
            Ok(HopSnapshot { path: path.display().to_string(), metadata })
        })
    }

    fn kubelet_logs<'a>(&'a self, node: &'a NodeRef) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            // The simulated kubelet reports what stops it as events on its node.
            let path = format!(
                "/api/v1/events?fieldSelector=involvedObject.kind%3DNode,involvedObject.name%3D{}",
                LabBackend::node_path(&node.name, "").trim_start_matches("/lab/v1/nodes/")
            );
            let list = self.call(&node.name, "GET", &path, None).await?;
            Ok(list
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|e| e.pointer("/source/component").and_then(Value::as_str) == Some("kubelet"))
                .map(|e| {
                    format!(
                        "{} kubelet: {}",
                        e.get("lastTimestamp").and_then(Value::as_str).unwrap_or(""),
                        e.get("message").and_then(Value::as_str).unwrap_or("")
                    )
                })
                .collect())
        })
    }

    fn ready_timeout(&self) -> Duration {
        // Ten simulated minutes.
        Duration::from_secs_f64((600.0 / self.speed).max(5.0))
    }
}

/// Write a file 0600 inside a 0700 directory (snapshots hold every secret of the cluster),
/// through a temporary file that is never readable by others, renamed into place.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let tmp = path.with_extension("partial");
    {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
