//! The storage of a StatefulSet with `volumeClaimTemplates`: per pod, the claim its controller
//! created (`TEMPLATE-POD`) and, once the pod was placed, the node-local volume provisioned for it
//! on that node (`pvc-<claim uid>`, bound to the claim, with node affinity on the node's
//! `openebs.io/nodename` label, the OpenEBS LVM driver's topology key),
//! so a replacement of the pod can only start where its data is.

use serde_json::{Value, json};

use super::ts;
use crate::OPENEBS_NODE_LABEL;
use crate::app::{Controller, Volume};
use crate::placement::PlacedFleet;
use crate::rng::Rng;

/// The storage class the generated claim templates ask for, and its CSI driver.
pub(crate) const STORAGE_CLASS: &str = "openebs-lvmpv";
const CSI_DRIVER: &str = "local.csi.openebs.io";
pub(crate) const CLAIM_SIZE: &str = "500Gi";

/// One claim of one pod.
pub(crate) struct Claim {
    pub(crate) pod_index: usize,
    pub(crate) name: String,
    pub(crate) uid: String,
}

impl PlacedFleet<'_> {
    /// Every claim of the fleet's StatefulSet pods, by namespace and name.
    pub(crate) fn claims(&self) -> Vec<Claim> {
        let mut out = Vec::new();
        for (pod_index, p) in self.pods.iter().enumerate() {
            let app = &self.apps[p.app_index];
            if app.controller != Controller::StatefulSet {
                continue;
            }
            for v in &app.volumes {
                if let Volume::ClaimTemplate { name } = v {
                    // Seeded apart from the pod's own generator, so claims change no other byte.
                    let seed = u64::from_str_radix(&p.uid[..8], 16).unwrap_or(0) ^ 0x7076_636c_6169_6d00;
                    let uid = Rng(self.spec.seed ^ seed ^ (pod_index as u64) << 20).uid();
                    out.push(Claim { pod_index, name: format!("{name}-{}", p.name), uid });
                }
            }
        }
        out.sort_by(|a, b| {
            let ns = |c: &Claim| &self.apps[self.pods[c.pod_index].app_index].namespace;
            (ns(a), &a.name).cmp(&(ns(b), &b.name))
        });
        out
    }

    pub(crate) fn claim_json(&self, claim: &Claim, rv: String) -> Value {
        let p = &self.pods[claim.pod_index];
        let app = &self.apps[p.app_index];
        let mut labels = json!({});
        labels[app.selector.0] = json!(app.selector.1);
        let mut v = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "creationTimestamp": ts(p.created), "labels": labels, "name": claim.name,
                "namespace": app.namespace, "resourceVersion": rv, "uid": claim.uid
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": CLAIM_SIZE}},
                "storageClassName": STORAGE_CLASS, "volumeMode": "Filesystem"
            },
            "status": {"phase": "Pending"}
        });
        if p.node.is_some() {
            v["metadata"]["annotations"] = json!({
                "pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                "volume.beta.kubernetes.io/storage-provisioner": CSI_DRIVER,
                "volume.kubernetes.io/selected-node": self.nodes[p.node.unwrap_or_default()].name,
                "volume.kubernetes.io/storage-provisioner": CSI_DRIVER
            });
            v["spec"]["volumeName"] = json!(format!("pvc-{}", claim.uid));
            v["status"] =
                json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": CLAIM_SIZE}, "phase": "Bound"});
        }
        v.sort_all_objects();
        v
    }

    /// The volume provisioned for `claim`, if its pod was placed.
    pub(crate) fn volume_json(&self, claim: &Claim, rv: String) -> Option<Value> {
        let p = &self.pods[claim.pod_index];
        let node = &self.nodes[p.node?];
        let app = &self.apps[p.app_index];
        let name = format!("pvc-{}", claim.uid);
        let mut v = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "annotations": {"pv.kubernetes.io/provisioned-by": CSI_DRIVER},
                "creationTimestamp": ts(p.created), "finalizers": ["kubernetes.io/pv-protection"],
                "name": name, "resourceVersion": rv, "uid": claim.uid.chars().rev().collect::<String>()
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "capacity": {"storage": CLAIM_SIZE},
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": claim.name,
                    "namespace": app.namespace, "uid": claim.uid},
                "csi": {"driver": CSI_DRIVER, "fsType": "ext4", "volumeHandle": name,
                    "volumeAttributes": {"openebs.io/cas-type": "localpv-lvm", "openebs.io/volgroup": "lvmvg"}},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": OPENEBS_NODE_LABEL, "operator": "In", "values": [node.name]}]}
                ]}},
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": STORAGE_CLASS,
                "volumeMode": "Filesystem"
            },
            "status": {"phase": "Bound"}
        });
        v.sort_all_objects();
        Some(v)
    }
}
