//! Host operations an operator's fix needs: a reboot, and an OS refresh (a new OS image, a new
//! kernel, a move to cgroup v2) that ends in one. During the reboot the kubelet is silent, so
//! the node lifecycle controller marks the node as it would; when the machine is back, the
//! kubelet starts with the installed package's version, checked against the node's new cgroup
//! version, and every container on the node starts again.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stepstone_core::inventory::CGROUP_LABEL;

use super::kubelet::starting_version;
use super::{KubeletState, LabNodes, NodeFacts, NodeOpError, journal, record_event};
use crate::clock;
use crate::resources::NODES;
use crate::store::{Part, meta_mut};
use crate::sync::lock;

/// `POST /lab/v1/nodes/{name}/os/refresh`: what changes before the reboot. Unset fields keep
/// their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OsRefresh {
    /// The new `/etc/os-release` PRETTY_NAME, e.g. `Ubuntu 24.04.1 LTS`.
    pub os_image: Option<String>,
    /// The kernel the machine boots, e.g. `6.8.0-49-generic`.
    pub kernel_version: Option<String>,
    /// `v2` (the unified hierarchy, `systemd.unified_cgroup_hierarchy=1`) or `v1`.
    pub cgroup_version: Option<String>,
}

impl LabNodes {
    /// `systemctl reboot`: the kubelet goes silent for the reboot time, then starts again.
    pub fn reboot(&self, node: &str) -> Result<NodeFacts, NodeOpError> {
        self.refresh_and_reboot(node, &OsRefresh::default())
    }

    /// An OS refresh: the OS image, kernel or cgroup version the request names, then a reboot.
    pub fn os_refresh(&self, node: &str, refresh: &OsRefresh) -> Result<NodeFacts, NodeOpError> {
        if let Some(c) = &refresh.cgroup_version
            && c != "v1"
            && c != "v2"
        {
            return Err(NodeOpError::BadCgroupVersion(c.clone()));
        }
        for (what, value) in [("OS image", &refresh.os_image), ("kernel version", &refresh.kernel_version)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty() || v.chars().any(char::is_control)) {
                return Err(NodeOpError::BadHostValue { what, value: value.clone().unwrap_or_default() });
            }
        }
        self.refresh_and_reboot(node, refresh)
    }

    fn refresh_and_reboot(&self, node: &str, refresh: &OsRefresh) -> Result<NodeFacts, NodeOpError> {
        let now = self.shared.now();
        let mut store = self.shared.store();
        let n = self.node(&store, node)?;
        let version = starting_version(&n)?;
        let mut next = (*n).clone();
        let mut changes = Vec::new();
        for (field, value) in [("osImage", &refresh.os_image), ("kernelVersion", &refresh.kernel_version)] {
            if let Some(v) = value {
                if !next.get("status").is_some_and(Value::is_object) {
                    next["status"] = json!({});
                }
                let old = next
                    .pointer(&format!("/status/nodeInfo/{field}"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                next["status"]["nodeInfo"][field] = json!(v.trim());
                changes.push(format!("{field} {old} -> {}", v.trim()));
            }
        }
        if let Some(c) = &refresh.cgroup_version {
            let labels = meta_mut(&mut next).entry("labels").or_insert_with(|| json!({}));
            let old = labels.get(CGROUP_LABEL).and_then(Value::as_str).unwrap_or("").to_string();
            labels[CGROUP_LABEL] = json!(c);
            changes.push(format!("cgroup {old} -> {c}"));
        }
        let updated = store.update(NODES, next, Part::All, false).expect("node exists");
        let message = if changes.is_empty() {
            "Node is rebooting".to_string()
        } else {
            format!("OS refresh ({}); node is rebooting", changes.join(", "))
        };
        record_event(&mut store, now, &updated, "Normal", "Rebooting", &message, "stepstone-lab");
        drop(store);
        let never = lock(&self.shared.faults).never_return.contains(node);
        let until = (!never).then(|| clock::format_precise(self.shared.after(now, self.shared.timing.reboot_seconds)));
        if lock(&self.shared.kubelets).get(node).is_none_or(|s| *s == KubeletState::Running) {
            journal::kubelet_stopping(&self.shared, node, now);
        }
        lock(&self.shared.kubelets).insert(node.to_string(), KubeletState::Rebooting { until, version });
        self.shared.wake.notify_one();
        self.facts(node)
    }
}
