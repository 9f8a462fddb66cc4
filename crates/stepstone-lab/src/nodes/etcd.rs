//! `etcdctl snapshot save` on a control-plane node: the lab's whole object store at one moment,
//! written to a file (0600, in a 0700 directory the caller names) with a metadata file beside
//! it in the format `stepstone etcd backup` writes (`stepstone_core::etcd_backup::SnapshotMetadata`),
//! so the rollout's snapshot gate reads a lab snapshot as it reads a real one.
//!
//! The snapshot holds the lab's objects as JSON ([`SNAPSHOT_KIND`]), not a bbolt database:
//! `etcdctl snapshot status` cannot read it, but everything a restore would bring back is in
//! it, so a test can check what a restore would hold.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{LabNodes, NodeOpError, image_tag, is_control_plane, record_event, static_pod};
use crate::clock;
use crate::resources::{CONFIGMAPS, ResId};
use crate::store::Store;

/// The `kind` of a lab snapshot file.
pub const SNAPSHOT_KIND: &str = "LabEtcdSnapshot";
pub use stepstone_core::etcd_backup::{METADATA_KIND, SnapshotMetadata};

/// What a snapshot on a node produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdSnapshotReport {
    pub node: String,
    /// The snapshot file.
    pub path: PathBuf,
    /// The metadata file beside it.
    pub metadata_path: PathBuf,
    pub metadata: SnapshotMetadata,
    /// etcdctl's output.
    pub message: String,
}

/// The cluster name kubeadm-config records (`clusterName`, default `kubernetes`).
fn cluster_name(store: &Store) -> String {
    store
        .get(CONFIGMAPS, "kube-system", "kubeadm-config")
        .and_then(|cm| cm.pointer("/data/ClusterConfiguration").and_then(Value::as_str).map(str::to_string))
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix("clusterName:").map(|v| v.trim().trim_matches('"').to_string()))
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "kubernetes".to_string())
}

/// CRC-32C (Castagnoli), the checksum `etcdctl snapshot status` reports as the hash.
fn crc32c(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0x82F6_3B78 ^ (c >> 1) } else { c >> 1 };
        }
        *entry = c;
    }
    !data.iter().fold(!0u32, |c, b| table[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8))
}

/// The directory snapshots go to: absolute, created 0700 when missing, and refused when others
/// can read it (a snapshot holds every Secret).
fn prepare_dir(node: &str, dir: &Path) -> Result<(), NodeOpError> {
    let refuse = |detail: String| NodeOpError::SnapshotDir { node: node.to_string(), dir: dir.to_path_buf(), detail };
    if !dir.is_absolute() {
        return Err(refuse(
            "is not an absolute path; the lab writes where it runs, so name the directory in full".into(),
        ));
    }
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| refuse(format!("cannot be created ({e}); name a directory you can write")))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| refuse(format!("cannot be read ({e})")))?;
    if !meta.is_dir() {
        return Err(refuse("exists and is not a directory".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "has mode {mode:03o}: others could read the snapshot, which holds every Secret; `chmod 700` it or name another"
        )));
    }
    Ok(())
}

/// Write `contents` to `path` with mode 0600 whatever the umask: into `<path>.partial` first,
/// then renamed, so a reader never sees half a file and a second snapshot in the same second
/// (a rollout resumed right after it was killed mid-snapshot) replaces the first, as
/// `etcdctl snapshot save` does.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_os_string();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&partial)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&partial, path)
}

impl LabNodes {
    /// `etcdctl snapshot save` on a control-plane node into `dir`: the snapshot file and its
    /// metadata, both 0600, with `label` in both when given (`stepstone etcd backup --label`).
    /// Returns where they are and what the metadata says.
    pub fn etcd_snapshot(
        &self,
        node: &str,
        dir: &Path,
        label: Option<&str>,
    ) -> Result<EtcdSnapshotReport, NodeOpError> {
        if let Some(l) = label {
            stepstone_core::etcd_backup::check_label(l).map_err(NodeOpError::BadLabel)?;
        }
        let now = self.shared.now();
        let taken_at = Timestamp::now();
        let mut store = self.shared.store();
        let n = self.node(&store, node)?;
        if !is_control_plane(&n) {
            return Err(NodeOpError::NoEtcdMember { node: node.to_string() });
        }
        prepare_dir(node, dir)?;
        let cluster = cluster_name(&store);
        let revision = store.resource_version();
        let mut items = Vec::new();
        for res in ResId::all() {
            let def = res.def();
            items.extend(store.iter(res, None, None).map(|o| {
                let mut o = Arc::unwrap_or_clone(o);
                o["apiVersion"] = json!(if def.group.is_empty() {
                    def.version.to_string()
                } else {
                    format!("{}/{}", def.group, def.version)
                });
                o["kind"] = json!(def.kind);
                o
            }));
        }
        let total_keys = items.len() as u64;
        let etcd_version = static_pod(&store, "etcd", node).and_then(|p| image_tag(&p));
        let body = json!({
            "apiVersion": stepstone_core::API_VERSION, "kind": SNAPSHOT_KIND, "cluster": cluster, "node": node,
            "revision": revision, "takenAt": clock::format(taken_at), "simulatedTime": clock::format(now),
            "items": items,
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let file = stepstone_core::etcd_backup::snapshot_file_name(&cluster, label, taken_at);
        let path = dir.join(&file);
        let metadata_path = dir.join(format!("{file}.json"));
        let io = |path: &Path, e: std::io::Error| NodeOpError::SnapshotWrite {
            node: node.to_string(),
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        write_private(&path, &bytes).map_err(|e| io(&path, e))?;
        let metadata = SnapshotMetadata {
            api_version: stepstone_core::API_VERSION.to_string(),
            kind: METADATA_KIND.to_string(),
            file: file.clone(),
            cluster,
            sha256: Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect(),
            size_bytes: bytes.len() as u64,
            revision: revision as i64,
            total_keys,
            hash: crc32c(&bytes),
            etcd_version: etcd_version.clone(),
            endpoint: format!("lab://{node} https://127.0.0.1:2379"),
            method: "lab-etcdctl".to_string(),
            taken_at,
            label: label.map(str::to_string),
        };
        let meta_bytes = serde_json::to_vec_pretty(&metadata).unwrap_or_default();
        write_private(&metadata_path, &meta_bytes).map_err(|e| io(&metadata_path, e))?;
        record_event(
            &mut store,
            now,
            &n,
            "Normal",
            "EtcdSnapshotSaved",
            &format!("etcd snapshot of revision {revision} saved to {}", path.display()),
            "etcdctl",
        );
        let message = format!(
            "{{\"level\":\"info\",\"msg\":\"created temporary db file\",\"path\":\"{p}.part\"}}\n\
             {{\"level\":\"info\",\"msg\":\"fetched snapshot\",\"endpoint\":\"https://127.0.0.1:2379\",\"size\":\"{size}\"}}\n\
             {{\"level\":\"info\",\"msg\":\"saved\",\"path\":\"{p}\"}}\nSnapshot saved at {p}",
            p = path.display(),
            size = bytes.len()
        );
        Ok(EtcdSnapshotReport { node: node.to_string(), path, metadata_path, metadata, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_castagnoli_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }
}
