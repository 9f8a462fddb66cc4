//! [`LabClient`]: a running lab's node-operation API (`/lab/v1/`) from another process, what the
//! rollout's lab backend and `stepstone lab node ...` use instead of SSH. Every request and
//! answer is a type of this crate ([`crate::nodes::wire`], [`NodeFacts`], [`UpgradeReport`], ...),
//! the same the server reads and writes, so client and server cannot drift apart.
//!
//! The requests go through a `kube::Client`, the HTTP stack every stepstone command already
//! uses. A lab serves plain HTTP on loopback only, so anything else is refused before a
//! request is sent: these operations change node state and only make sense against a lab.
//!
//! ```no_run
//! # async fn demo() -> Result<(), stepstone_lab::LabClientError> {
//! use stepstone_lab::{LabClient, Package, UpgradeOptions};
//! let lab = LabClient::from_kubeconfig("lab.kubeconfig".as_ref(), None).await?;
//! lab.install_package("cp-01", Package::Kubeadm, "1.35.0-1.1").await?;
//! let report = lab.kubeadm_upgrade_apply("cp-01", "v1.35.0", &UpgradeOptions::default()).await?;
//! println!("{}", report.message);
//! lab.restart_kubelet("cp-01").await?;
//! # Ok(()) }
//! ```

mod error;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::error::LabClientError;
use crate::faults::{FaultConfig, FaultsChange};
use crate::nodes::wire::{
    ClockInfo, ErrorBody, EtcdSnapshotRequest, InstallRequest, RepositoryRequest, UpgradeApplyRequest,
};
use crate::nodes::{
    EtcdSnapshotReport, KubeadmVersion, KubeletLogs, NodeFacts, OsRefresh, Package, UpgradeOptions, UpgradePlan,
    UpgradeReport,
};
use crate::state::RequestCounts;

/// How long one request may take before the client gives up.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A running lab's node-operation API. Cheap to clone; every method is one request.
#[derive(Clone)]
pub struct LabClient {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    url: String,
    client: kube::Client,
    timeout: Duration,
}

impl std::fmt::Debug for LabClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabClient").field("url", &self.url).finish_non_exhaustive()
    }
}

impl LabClient {
    /// The lab a kubeconfig points at (the one `stepstone lab up --kubeconfig` wrote), with its
    /// current context or `context`.
    pub async fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Self, LabClientError> {
        let (kubeconfig, context, server) = read_kubeconfig(path, context)?;
        check_lab_url(&server)?;
        let options = KubeConfigOptions { context: Some(context), ..Default::default() };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| LabClientError::KubeconfigInvalid { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::with_config(server, config)
    }

    /// The lab at `url` (`http://127.0.0.1:PORT`, as [`crate::LabHandle::url`] gives it).
    /// Async only because the HTTP client starts a task on the current runtime.
    pub async fn from_url(url: &str) -> Result<Self, LabClientError> {
        let url = url.trim_end_matches('/').to_string();
        check_lab_url(&url)?;
        let uri: http::Uri =
            url.parse().map_err(|_| LabClientError::NotALab { url: url.clone(), why: "is not a URL" })?;
        Self::with_config(url, kube::Config::new(uri))
    }

    fn with_config(url: String, config: kube::Config) -> Result<Self, LabClientError> {
        let client = kube::Client::try_from(config)
            .map_err(|source| LabClientError::Unreachable { url: url.clone(), source })?;
        Ok(LabClient { url, client, timeout: DEFAULT_TIMEOUT })
    }

    /// The same client with another per-request time limit (default 120 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every node's facts, in the lab's order.
    pub async fn list_nodes(&self) -> Result<Vec<NodeFacts>, LabClientError> {
        self.get("/lab/v1/nodes").await
    }

    /// One node's facts.
    pub async fn facts(&self, node: &str) -> Result<NodeFacts, LabClientError> {
        self.get(&node_path(node, "")).await
    }

    /// `apt-get install PACKAGE=VERSION` on `node`. Installing the kubelet does not restart the
    /// running kubelet: [`restart_kubelet`](Self::restart_kubelet) does.
    pub async fn install_package(
        &self,
        node: &str,
        package: Package,
        version: &str,
    ) -> Result<NodeFacts, LabClientError> {
        self.post(&node_path(node, "/packages"), Some(&InstallRequest::new(package, version))).await
    }

    /// Point `node`'s Kubernetes package repository at `repository` (`v1.35`), as editing
    /// `/etc/apt/sources.list.d/kubernetes.list` does; installs then see that minor's packages.
    pub async fn configure_repository(&self, node: &str, repository: &str) -> Result<NodeFacts, LabClientError> {
        let body = RepositoryRequest { repository: repository.to_string() };
        self.post(&node_path(node, "/repository"), Some(&body)).await
    }

    /// `kubeadm upgrade plan [VERSION]` on a control-plane node. Changes nothing.
    pub async fn kubeadm_upgrade_plan(&self, node: &str, version: Option<&str>) -> Result<UpgradePlan, LabClientError> {
        let path = match version {
            Some(v) => node_path(node, &format!("/kubeadm/upgrade-plan?version={}", escape(v))),
            None => node_path(node, "/kubeadm/upgrade-plan"),
        };
        self.get(&path).await
    }

    /// `kubeadm version` on a node: the installed kubeadm.
    pub async fn kubeadm_version(&self, node: &str) -> Result<KubeadmVersion, LabClientError> {
        self.get(&node_path(node, "/kubeadm/version")).await
    }

    /// `kubeadm upgrade apply VERSION` on the first control-plane node.
    pub async fn kubeadm_upgrade_apply(
        &self,
        node: &str,
        version: &str,
        opts: &UpgradeOptions,
    ) -> Result<UpgradeReport, LabClientError> {
        let body = UpgradeApplyRequest::new(version, opts);
        self.post(&node_path(node, "/kubeadm/upgrade-apply"), Some(&body)).await
    }

    /// `kubeadm upgrade node` on the other control-plane nodes and on workers.
    pub async fn kubeadm_upgrade_node(
        &self,
        node: &str,
        opts: &UpgradeOptions,
    ) -> Result<UpgradeReport, LabClientError> {
        self.post(&node_path(node, "/kubeadm/upgrade-node"), Some(opts)).await
    }

    /// `systemctl restart kubelet`: the node is NotReady until the kubelet is back (or stays
    /// down when it refuses to start). Returns the facts right after the restart began.
    pub async fn restart_kubelet(&self, node: &str) -> Result<NodeFacts, LabClientError> {
        self.post::<(), _>(&node_path(node, "/kubelet/restart"), None).await
    }

    /// `etcdctl snapshot save` on a control-plane node: the snapshot and its metadata (the
    /// format `stepstone etcd backup` writes) in `dir`, an absolute directory the lab can write,
    /// created 0700 when missing; both files 0600.
    pub async fn etcd_snapshot(&self, node: &str, dir: &Path) -> Result<EtcdSnapshotReport, LabClientError> {
        self.etcd_snapshot_labelled(node, dir, None).await
    }

    /// [`etcd_snapshot`](Self::etcd_snapshot) with a label (`etcd backup --label`, e.g. the
    /// rollout's `before-hop1`) in the file name and the metadata.
    pub async fn etcd_snapshot_labelled(
        &self,
        node: &str,
        dir: &Path,
        label: Option<&str>,
    ) -> Result<EtcdSnapshotReport, LabClientError> {
        let body = EtcdSnapshotRequest { dir: dir.to_path_buf(), label: label.map(str::to_string) };
        self.post(&node_path(node, "/etcd/snapshot"), Some(&body)).await
    }

    /// `systemctl reboot`: the kubelet is silent for the reboot time, then starts again (with the
    /// installed package's version). Returns the facts right after the reboot began.
    pub async fn reboot(&self, node: &str) -> Result<NodeFacts, LabClientError> {
        self.post::<(), _>(&node_path(node, "/reboot"), None).await
    }

    /// An OS refresh (a new OS image, kernel or cgroup version; unset fields keep theirs), then a
    /// reboot. A 1.35+ kubelet that refused a cgroup v1 host starts after a refresh to `v2`.
    pub async fn os_refresh(&self, node: &str, refresh: &OsRefresh) -> Result<NodeFacts, LabClientError> {
        self.post(&node_path(node, "/os/refresh"), Some(refresh)).await
    }

    /// `journalctl -u kubelet [-n tail]`: the simulated kubelet's and systemd's lines, oldest first.
    pub async fn kubelet_logs(&self, node: &str, tail: Option<usize>) -> Result<KubeletLogs, LabClientError> {
        let path = match tail {
            Some(n) => node_path(node, &format!("/logs/kubelet?tail={n}")),
            None => node_path(node, "/logs/kubelet"),
        };
        self.get(&path).await
    }

    /// The faults the lab injects now.
    pub async fn faults(&self) -> Result<FaultConfig, LabClientError> {
        self.get("/lab/v1/faults").await
    }

    /// Change some faults, leaving the others (and anyone else's additions) as they are.
    /// Returns the faults after the change.
    pub async fn change_faults(&self, change: &FaultsChange) -> Result<FaultConfig, LabClientError> {
        let (content_type, patch) = change.to_patch();
        let body = serde_json::to_vec(&patch).unwrap_or_default();
        self.call("PATCH", "/lab/v1/faults", Some((content_type, body))).await
    }

    /// Replace every fault setting.
    pub async fn set_faults(&self, faults: &FaultConfig) -> Result<FaultConfig, LabClientError> {
        let body = serde_json::to_vec(faults).unwrap_or_default();
        self.call("PUT", "/lab/v1/faults", Some(("application/json", body))).await
    }

    /// Kubernetes API requests the lab served so far, by verb.
    pub async fn stats(&self) -> Result<RequestCounts, LabClientError> {
        self.get("/lab/v1/stats").await
    }

    /// The lab's time and speed.
    pub async fn clock(&self) -> Result<ClockInfo, LabClientError> {
        self.get("/lab/v1/clock").await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, LabClientError> {
        self.call("GET", path, None).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: Option<&B>) -> Result<T, LabClientError> {
        let body = body.map(|b| ("application/json", serde_json::to_vec(b).unwrap_or_default()));
        self.call("POST", path, body).await
    }

    /// One request: a 2xx answer as `T`, a refusal as the error its status means.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<T, LabClientError> {
        let (status, bytes) = self.send(method, path, body).await?;
        let refusal = serde_json::from_slice::<ErrorBody>(&bytes).ok();
        match (status, refusal) {
            (200..=299, _) => serde_json::from_slice(&bytes).map_err(|source| LabClientError::Decode {
                method: method.to_string(),
                url: self.url.clone(),
                path: path.to_string(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
                source,
            }),
            (400 | 404, Some(e)) => Err(LabClientError::BadRequest { status, message: e.error, faults: e.faults }),
            (409, Some(e)) => Err(LabClientError::Refused { message: e.error }),
            (404, None) => Err(LabClientError::NotServed { url: self.url.clone(), path: path.to_string() }),
            (status, refusal) => Err(LabClientError::Unexpected {
                method: method.to_string(),
                url: self.url.clone(),
                path: path.to_string(),
                status,
                message: refusal.map(|e| e.error).unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string()),
            }),
        }
    }

    /// The status code and body of one request, whatever the status.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(u16, Vec<u8>), LabClientError> {
        let unreachable = |source: kube::Error| LabClientError::Unreachable { url: self.url.clone(), source };
        let mut request = http::Request::builder().method(method).uri(path).header("Accept", "application/json");
        if let Some((content_type, _)) = &body {
            request = request.header("Content-Type", *content_type);
        }
        let payload = body.map(|(_, b)| b).unwrap_or_default();
        // The method is one of this module's and the path is escaped: the request is well formed.
        let request = request.body(kube::client::Body::from(payload)).map_err(|e| LabClientError::Unexpected {
            method: method.to_string(),
            url: self.url.clone(),
            path: path.to_string(),
            status: 0,
            message: e.to_string(),
        })?;
        let timed_out = || LabClientError::Timeout {
            method: method.to_string(),
            url: self.url.clone(),
            path: path.to_string(),
            seconds: self.timeout.as_secs(),
        };
        let response = tokio::time::timeout(self.timeout, self.client.send(request))
            .await
            .map_err(|_| timed_out())?
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect_bytes().await.map_err(unreachable)?;
        Ok((status, bytes.to_vec()))
    }
}

/// A lab serves plain HTTP on 127.0.0.1 (or localhost): kind and minikube clusters also listen
/// on loopback, but over TLS, and a remote server is never a lab.
fn check_lab_url(url: &str) -> Result<(), LabClientError> {
    let refuse = |why: &'static str| LabClientError::NotALab { url: url.to_string(), why };
    let uri: http::Uri = url.parse().map_err(|_| refuse("is not a URL"))?;
    let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(refuse("is not on 127.0.0.1 or localhost"));
    }
    match uri.scheme_str() {
        Some("http") => Ok(()),
        Some("https") => Err(refuse("uses https, so it is a real API server on loopback (kind, minikube), not a lab")),
        _ => Err(refuse("is not an http:// URL")),
    }
}

/// The kubeconfig read for its current (or given) context, that context's name and its
/// server URL.
fn read_kubeconfig(path: &Path, context: Option<&str>) -> Result<(Kubeconfig, String, String), LabClientError> {
    let path_buf = path.to_path_buf();
    if !path.exists() {
        return Err(LabClientError::KubeconfigMissing { path: path_buf });
    }
    let kc = Kubeconfig::read_from(path)
        .map_err(|e| LabClientError::KubeconfigInvalid { path: path_buf.clone(), reason: e.to_string() })?;
    let name = match context.map(str::to_string).or(kc.current_context.clone()) {
        Some(n) if !n.is_empty() => n,
        _ => return Err(LabClientError::NoCurrentContext { path: path_buf }),
    };
    let Some(ctx) = kc.contexts.iter().find(|c| c.name == name) else {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(LabClientError::UnknownContext { path: path_buf, context: name, known: known.join(", ") });
    };
    let cluster = ctx.context.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
    let server = kc
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or_else(|| LabClientError::NoServer { path: path_buf.clone(), context: name.clone(), cluster })?;
    Ok((kc, name, server.trim_end_matches('/').to_string()))
}

/// Percent-encode everything but unreserved URL characters.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `/lab/v1/nodes/NODE` + `rest`. Node names are DNS subdomains; anything else cannot name a node
/// and must not reshape the path.
fn node_path(node: &str, rest: &str) -> String {
    format!("/lab/v1/nodes/{}{rest}", escape(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_cannot_reshape_the_path() {
        assert_eq!(node_path("cp-01", "/packages"), "/lab/v1/nodes/cp-01/packages");
        assert_eq!(node_path("../faults", ""), "/lab/v1/nodes/..%2Ffaults");
        assert_eq!(node_path("a?b=c", ""), "/lab/v1/nodes/a%3Fb%3Dc");
    }

    #[test]
    fn only_plain_http_on_loopback_is_a_lab() {
        assert!(check_lab_url("http://127.0.0.1:8080").is_ok());
        assert!(check_lab_url("http://localhost:8080").is_ok());
        assert!(check_lab_url("http://[::1]:8080").is_ok());
        let why = |url: &str| match check_lab_url(url) {
            Err(LabClientError::NotALab { why, .. }) => why,
            other => panic!("{url}: {other:?}"),
        };
        assert_eq!(why("https://10.0.0.1:6443"), "is not on 127.0.0.1 or localhost");
        assert!(why("https://127.0.0.1:6443").contains("not a lab"));
        assert_eq!(why("ftp://127.0.0.1"), "is not an http:// URL");
    }
}
