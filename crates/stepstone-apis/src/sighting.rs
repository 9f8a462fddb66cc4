//! A sighting: one place where an API version (or kubelet flag) is used, before it is judged
//! against the data and the upgrade path.

use serde::Serialize;

/// Where a sighting was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SourceKind {
    /// A manifest file (YAML or JSON, Kustomize or Helm-rendered output).
    Manifest,
    /// The stored manifest of a deployed Helm release.
    Helm,
    /// A `metadata.managedFields` entry of a live object: a client that wrote with that version.
    ManagedFields,
    /// The `kubectl.kubernetes.io/last-applied-configuration` annotation.
    LastApplied,
    /// The apiserver's `apiserver_requested_deprecated_apis` metric: what clients actually call.
    Metrics,
    /// The `kube-system/kubeadm-config` ConfigMap.
    KubeadmConfig,
    /// A kubelet command-line flag in a flags file or kubeadm configuration.
    KubeletFlag,
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceKind::Manifest => "manifest",
            SourceKind::Helm => "helm",
            SourceKind::ManagedFields => "managedFields",
            SourceKind::LastApplied => "last-applied",
            SourceKind::Metrics => "metrics",
            SourceKind::KubeadmConfig => "kubeadm-config",
            SourceKind::KubeletFlag => "kubelet-flag",
        })
    }
}

/// What was used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Used {
    /// An object written as `apiVersion` + `kind`.
    #[serde(rename_all = "camelCase")]
    Api { api_version: String, kind: String },
    /// A request to a group/version/resource, as the apiserver metric reports it.
    #[serde(rename_all = "camelCase")]
    Resource {
        group: String,
        version: String,
        resource: String,
        subresource: String,
        /// The metric's own `removed_release` label (empty when the apiserver does not know).
        removed_release: String,
    },
    /// A kubelet flag.
    #[serde(rename_all = "camelCase")]
    KubeletFlag { flag: String },
}

impl Used {
    pub fn api(api_version: impl Into<String>, kind: impl Into<String>) -> Used {
        Used::Api { api_version: api_version.into(), kind: kind.into() }
    }

    /// `extensions/v1beta1 Ingress`, `flowcontrol.apiserver.k8s.io/v1beta3 flowschemas`,
    /// `kubelet flag --pod-infra-container-image`.
    pub fn label(&self) -> String {
        match self {
            Used::Api { api_version, kind } => format!("{api_version} {kind}"),
            Used::Resource { group, version, resource, subresource, .. } => {
                let gv = if group.is_empty() { version.clone() } else { format!("{group}/{version}") };
                if subresource.is_empty() {
                    format!("{gv} {resource}")
                } else {
                    format!("{gv} {resource}/{subresource}")
                }
            }
            Used::KubeletFlag { flag } => format!("kubelet flag {flag}"),
        }
    }
}

/// One use of an API version or flag, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sighting {
    pub source: SourceKind,
    pub used: Used,
    /// `deploy/ingress.yaml:3`, `helm release shop/web revision 7`, `cluster`, `metrics.txt`.
    pub location: String,
    /// The object, `Kind namespace/name` (or `Kind name` for cluster-scoped objects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The field manager (managedFields) that wrote with the old version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    /// Anything else worth knowing: the operation and time of a managedFields entry, the Helm
    /// chart template a document came from.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Sighting {
    pub fn new(source: SourceKind, used: Used, location: impl Into<String>) -> Sighting {
        Sighting { source, used, location: location.into(), object: None, manager: None, detail: String::new() }
    }

    pub fn object(mut self, object: Option<String>) -> Sighting {
        self.object = object;
        self
    }

    pub fn manager(mut self, manager: impl Into<String>) -> Sighting {
        self.manager = Some(manager.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Sighting {
        self.detail = detail.into();
        self
    }
}

/// `Ingress shop/web`, or `ClusterRole admin` for cluster-scoped objects.
pub fn object_label(kind: &str, namespace: Option<&str>, name: Option<&str>) -> Option<String> {
    let name = name.filter(|n| !n.is_empty())?;
    Some(match namespace.filter(|n| !n.is_empty()) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    })
}

/// A last-applied annotation naming an old version that was deliberately not reported because the
/// object's managedFields show it has been written with a served version since.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suppressed {
    pub object: String,
    pub location: String,
    /// The old apiVersion named by the annotation.
    pub annotation_api_version: String,
    /// The versions the managedFields entries were written with.
    pub managed_api_versions: Vec<String>,
    pub reason: String,
}
