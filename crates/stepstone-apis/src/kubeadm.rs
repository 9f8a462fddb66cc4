//! The `kube-system/kubeadm-config` ConfigMap: the API version of the ClusterConfiguration kubeadm
//! stored when it last initialised or upgraded the cluster.

use serde_json::Value;

use crate::manifest;
use crate::sighting::{Sighting, SourceKind, Used};

pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "kubeadm-config";

pub fn is_kubeadm_config(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("ConfigMap")
        && obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(NAMESPACE)
        && obj.pointer("/metadata/name").and_then(Value::as_str) == Some(NAME)
}

/// Every configuration document stored in the ConfigMap (`ClusterConfiguration`, and
/// `ClusterStatus` on clusters last upgraded by old kubeadm versions), with its API version.
pub fn sightings(origin: &str, obj: &Value) -> Vec<Sighting> {
    let Some(data) = obj.get("data").and_then(Value::as_object) else { return Vec::new() };
    let mut out = Vec::new();
    for (key, text) in data {
        let Some(text) = text.as_str() else { continue };
        for doc in manifest::scan_text(key, text).docs {
            out.push(
                Sighting::new(SourceKind::KubeadmConfig, Used::api(&doc.api_version, &doc.kind), origin)
                    .object(Some(format!("ConfigMap {NAMESPACE}/{NAME} ({key})"))),
            );
        }
    }
    out
}
