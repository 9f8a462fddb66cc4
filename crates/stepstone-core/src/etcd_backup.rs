//! The record kept beside every etcd snapshot file ([`SnapshotMetadata`]): what `stepstone etcd
//! backup` writes, what a lab's control-plane node writes, and what the rollout keeps in its
//! journal for each hop. One type for all three, so the freshness gate and the rollback runbook
//! read a snapshot the same way wherever it was taken. Pure data: reading and writing the files
//! is the host's and the lab's business.
//!
//! Files: `etcd-<cluster>[-<label>]-<UTC timestamp>.db` and the same name plus `.json`.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The `kind` of a metadata file.
pub const METADATA_KIND: &str = "EtcdSnapshot";

/// Everything known about a snapshot file, written as JSON beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMetadata {
    pub api_version: String,
    pub kind: String,
    /// The snapshot's file name (the metadata sits beside it).
    pub file: String,
    pub cluster: String,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    pub size_bytes: u64,
    /// The newest revision in the snapshot (as `etcdctl snapshot status` reports it).
    pub revision: i64,
    /// Entries across all buckets (`etcdctl snapshot status` "total keys").
    pub total_keys: u64,
    /// CRC-32C of the contents (`etcdctl snapshot status` "hash").
    pub hash: u32,
    /// The server's version, when it said.
    pub etcd_version: Option<String>,
    /// Where it came from: the client URL, `ssh://<node>` or `lab://<node>` plus the node's endpoint.
    pub endpoint: String,
    /// `grpc`, `ssh-etcdctl` or `lab-etcdctl`.
    pub method: String,
    /// Wall-clock time the snapshot was taken.
    pub taken_at: Timestamp,
    /// What the snapshot is for (the runbook and the rollout use [`hop_label`]), so the
    /// rollback restores exactly that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl SnapshotMetadata {
    /// The metadata file that belongs to `snapshot`: the same name plus `.json`.
    pub fn path_for(snapshot: &Path) -> PathBuf {
        let mut name = snapshot.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".json");
        snapshot.with_file_name(name)
    }

    /// Parse a metadata file's text; `Err` says what is wrong with it.
    pub fn from_json(text: &str) -> Result<SnapshotMetadata, String> {
        let meta: SnapshotMetadata = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if meta.kind != METADATA_KIND {
            return Err(format!("kind is '{}', expected {METADATA_KIND}", meta.kind));
        }
        Ok(meta)
    }
}

/// The label of the snapshot taken before hop `hop_index` (0-based) of a plan: `before-hop1`, ...
pub fn hop_label(hop_index: usize) -> String {
    format!("before-hop{}", hop_index + 1)
}

/// A label must stay one word of a file name: letters, digits, `.`, `_` and `-`.
pub fn check_label(label: &str) -> Result<(), String> {
    let ok = !label.is_empty()
        && label.len() <= 63
        && label.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !label.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{label}' is not a label: use up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. before-hop1"
        ))
    }
}

/// `etcd-<cluster>[-<label>]-20260822T101500Z.db`; characters of the cluster name outside
/// `[A-Za-z0-9._-]` become `-` (the label is checked with [`check_label`] first).
pub fn snapshot_file_name(cluster: &str, label: Option<&str>, taken_at: Timestamp) -> String {
    let safe: String = cluster
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .collect();
    let label = label.map(|l| format!("-{l}")).unwrap_or_default();
    format!("etcd-{safe}{label}-{}.db", taken_at.strftime("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_one_file_name() {
        let t: Timestamp = "2026-08-22T10:15:00Z".parse().unwrap();
        assert_eq!(snapshot_file_name("prod/eu 1", None, t), "etcd-prod-eu-1-20260822T101500Z.db");
        assert_eq!(snapshot_file_name("lab", Some(&hop_label(0)), t), "etcd-lab-before-hop1-20260822T101500Z.db");
        assert!(check_label("before-hop2").is_ok());
        for bad in ["", "../x", "-x", "a b", &"x".repeat(64)] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
        let meta = SnapshotMetadata::path_for(Path::new("/s/etcd-lab-20260822T101500Z.db"));
        assert_eq!(meta, Path::new("/s/etcd-lab-20260822T101500Z.db.json"));
    }

    #[test]
    fn metadata_of_another_kind_is_refused() {
        let text = r#"{"apiVersion": "stepstone/v1alpha1", "kind": "Plan", "file": "s.db", "cluster": "c",
            "sha256": "00", "sizeBytes": 1, "revision": 1, "totalKeys": 1, "hash": 0, "etcdVersion": null,
            "endpoint": "lab://cp-01", "method": "lab-etcdctl", "takenAt": "2026-12-01T09:50:00Z"}"#;
        assert_eq!(SnapshotMetadata::from_json(text).unwrap_err(), "kind is 'Plan', expected EtcdSnapshot");
        let ok = SnapshotMetadata::from_json(&text.replace("\"Plan\"", "\"EtcdSnapshot\"")).unwrap();
        assert_eq!(ok.label, None);
    }
}
