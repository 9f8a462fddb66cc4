//! The requests and answers of the lab's HTTP API under `/lab/v1/` that are not node facts or
//! reports themselves: written once here, read by the server ([`super::http`],
//! [`crate::faults`]) and sent by [`crate::LabClient`].

use serde::{Deserialize, Serialize};

use super::{Package, UpgradeOptions};
use crate::faults::FaultsError;

/// `POST /lab/v1/nodes/{name}/packages`: install one package version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallRequest {
    /// `kubeadm`, `kubelet` or `kubectl`; the lab names any other in its refusal.
    pub package: String,
    /// The deb form (1.35.0-1.1), the rpm form (1.35.0-150500.1.1) or the release (1.35.0).
    pub version: String,
}

impl InstallRequest {
    pub fn new(package: Package, version: impl Into<String>) -> Self {
        InstallRequest { package: package.name().to_string(), version: version.into() }
    }
}

/// `POST /lab/v1/nodes/{name}/repository`: point the node's Kubernetes package repository at
/// a minor (`v1.35`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryRequest {
    pub repository: String,
}

/// `POST /lab/v1/nodes/{name}/kubeadm/upgrade-apply`: `kubeadm upgrade apply VERSION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeApplyRequest {
    pub version: String,
    /// Preflight checks to downgrade to warnings (`SystemVerification`, `all`).
    #[serde(default)]
    pub ignore_preflight_errors: Vec<String>,
    /// `--dry-run`: every check, no change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl UpgradeApplyRequest {
    pub fn new(version: impl Into<String>, opts: &UpgradeOptions) -> Self {
        UpgradeApplyRequest {
            version: version.into(),
            ignore_preflight_errors: opts.ignore_preflight_errors.clone(),
            dry_run: opts.dry_run,
        }
    }

    pub fn options(&self) -> UpgradeOptions {
        UpgradeOptions { ignore_preflight_errors: self.ignore_preflight_errors.clone(), dry_run: self.dry_run }
    }
}

/// `GET|POST /lab/v1/nodes/{name}/kubeadm/upgrade-plan`: the VERSION of `kubeadm upgrade plan
/// [VERSION]`, as a query parameter or a POST body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradePlanQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `POST /lab/v1/nodes/{name}/etcd/snapshot`: `etcdctl snapshot save` into a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdSnapshotRequest {
    /// An absolute directory; created 0700 when missing, refused when others can read it.
    pub dir: std::path::PathBuf,
    /// What the snapshot is for (`before-hop1`), in its file name and metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `GET /lab/v1/nodes/{name}/logs/kubelet?tail=N`: the newest N journal lines (all without).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<usize>,
}

/// `GET /lab/v1/clock`: the lab's time (the wall clock, unless it is a manual clock) and how
/// much faster than the wall clock its durations pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockInfo {
    /// RFC 3339, as the lab stamps objects.
    pub now: String,
    /// Lab seconds per wall-clock second: a duration of `d` lab seconds lasts `d / speed`.
    pub speed: f64,
}

/// Every refusal of the `/lab/v1/` API: the message, and for a refused fault change what was
/// wrong with it, so a client can name its own flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultsError>,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>) -> Self {
        ErrorBody { error: error.into(), faults: None }
    }
}
