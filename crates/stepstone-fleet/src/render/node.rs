//! A generated node as the kubelet registers it: labels, capacity and allocatable, conditions
//! and node info of its hardware generation.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use stepstone_core::inventory::{CGROUP_LABEL, CgroupVersion};

use super::{cpu_text, labels_value, ts};
use crate::placement::PlacedFleet;
use crate::rng::Rng;
use crate::{CONTROL_PLANE_LABEL, HOSTNAME_LABEL, INSTANCE_TYPE_LABEL, MAX_PODS, OPENEBS_NODE_LABEL, RESERVED_MEMORY};

impl PlacedFleet<'_> {
    pub(crate) fn node_json(&self, node_index: usize, rv: String) -> Value {
        let n = &self.nodes[node_index];
        let hw = &self.spec.generations[n.generation];
        let mut labels = BTreeMap::new();
        for (k, v) in [
            ("beta.kubernetes.io/arch", "amd64"),
            ("beta.kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("kubernetes.io/os", "linux"),
        ] {
            labels.insert(k.to_string(), v.to_string());
        }
        labels.insert(HOSTNAME_LABEL.into(), n.name.clone());
        // The OpenEBS LVM node plugin runs on every node (it tolerates every taint).
        labels.insert(OPENEBS_NODE_LABEL.into(), n.name.clone());
        labels.insert(INSTANCE_TYPE_LABEL.into(), hw.name.clone());
        labels.insert(
            CGROUP_LABEL.into(),
            match hw.cgroup {
                CgroupVersion::V1 => "v1".into(),
                CgroupVersion::V2 => "v2".into(),
            },
        );
        let mut spec = json!({"podCIDR": n.pod_cidr(), "podCIDRs": [n.pod_cidr()]});
        if n.control_plane {
            labels.insert(CONTROL_PLANE_LABEL.into(), String::new());
            labels.insert("node.kubernetes.io/exclude-from-external-load-balancers".into(), String::new());
            spec["taints"] = json!([{"effect": "NoSchedule", "key": CONTROL_PLANE_LABEL}]);
        }
        let memory_ki = n.memory / 1024 - 220_000 - (n.index as u64 % 7) * 1024;
        let memory_alloc_ki = memory_ki - RESERVED_MEMORY / 1024;
        let disk_ki: u64 = 936_911_832;
        let seen = self.spec.snapshot_time.as_second() - 40;
        let heartbeat = ts(seen);
        let booted = ts((self.spec.snapshot_time.as_second() - 86_400 * (20 + (n.index as i64 % 40))).max(n.created));
        let condition = |kind: &str, status: &str, reason: &str, message: &str| {
            json!({"lastHeartbeatTime": heartbeat, "lastTransitionTime": booted, "message": message,
                   "reason": reason, "status": status, "type": kind})
        };
        let mut rng = Rng(self.spec.seed ^ (n.index as u64).wrapping_mul(0x1000_0001));
        let runtime_socket = "unix:///var/run/containerd/containerd.sock";
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "annotations": {
                    "kubeadm.alpha.kubernetes.io/cri-socket": runtime_socket,
                    "node.alpha.kubernetes.io/ttl": "0",
                    "projectcalico.org/IPv4Address": format!("{}/16", n.ip()),
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true"
                },
                "creationTimestamp": ts(n.created),
                "labels": labels_value(&labels),
                "name": n.name,
                "resourceVersion": rv,
                "uid": n.uid
            },
            "spec": spec,
            "status": {
                "addresses": [
                    {"address": n.ip(), "type": "InternalIP"},
                    {"address": n.name, "type": "Hostname"}
                ],
                "allocatable": {
                    "cpu": cpu_text(n.allocatable_cpu()),
                    "ephemeral-storage": (disk_ki * 1024 / 10 * 9).to_string(),
                    "hugepages-1Gi": "0",
                    "hugepages-2Mi": "0",
                    "memory": format!("{memory_alloc_ki}Ki"),
                    "pods": MAX_PODS.to_string()
                },
                "capacity": {
                    "cpu": n.cpu.to_string(),
                    "ephemeral-storage": format!("{disk_ki}Ki"),
                    "hugepages-1Gi": "0",
                    "hugepages-2Mi": "0",
                    "memory": format!("{memory_ki}Ki"),
                    "pods": MAX_PODS.to_string()
                },
                "conditions": [
                    condition("NetworkUnavailable", "False", "CalicoIsUp", "Calico is running on this node"),
                    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": rng.uid(),
                    "containerRuntimeVersion": hw.container_runtime,
                    "kernelVersion": hw.kernel,
                    "kubeProxyVersion": "",
                    "kubeletVersion": n.kubelet,
                    "machineID": rng.hex(32),
                    "operatingSystem": "linux",
                    "osImage": hw.os_image,
                    "systemUUID": rng.uid().to_uppercase()
                }
            }
        })
    }
}
