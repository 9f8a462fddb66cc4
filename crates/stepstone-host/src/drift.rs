//! Configuration drift: inside each hardware generation the nodes should look alike (kernel,
//! OS image, runtime, kubelet version, kubelet config). The most common value per generation is
//! the norm; a node that differs is an outlier worth a look before its wave runs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use stepstone_core::findings::{self, Finding, Severity};
use stepstone_core::inventory::Inventory;

use crate::node::{NodeOps, NodeTarget, RemoteCommand, run_on_all};
use crate::preflight::parse::parse_kubelet_config;

/// What one field looks like across one generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldSpread {
    pub field: String,
    /// The value most nodes have; `None` when there is a tie at the top.
    pub majority: Option<String>,
    /// Value -> the nodes that have it.
    pub values: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationDrift {
    pub generation: String,
    pub nodes: usize,
    /// Only fields where the nodes disagree.
    pub drifting: Vec<FieldSpread>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    pub generations: Vec<GenerationDrift>,
    /// One warning per outlier node and field, worst first.
    pub findings: Vec<Finding>,
}

/// Inventory fields compared per generation.
pub const INVENTORY_FIELDS: &[&str] = &["kernel", "osImage", "runtime", "kubelet"];

/// Compare nodes inside each generation. `kubelet_configs` maps node name to its kubelet
/// config flattened to `key -> value` (see [`parse_kubelet_config`]); nodes absent from it
/// are left out of the config comparison.
pub fn drift(inventory: &Inventory, kubelet_configs: &BTreeMap<String, BTreeMap<String, String>>) -> DriftReport {
    let mut generations = Vec::new();
    let mut all_findings = Vec::new();
    for (generation, nodes) in inventory.generations() {
        let mut fields: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for n in &nodes {
            for (field, value) in [
                ("kernel", n.kernel_version.clone()),
                ("osImage", n.os_image.clone()),
                ("runtime", n.container_runtime.clone()),
                ("kubelet", n.kubelet_version.canonical()),
            ] {
                fields.entry(field.to_string()).or_default().entry(value).or_default().push(n.name.clone());
            }
        }
        let with_config: Vec<_> = nodes.iter().filter_map(|n| kubelet_configs.get(&n.name).map(|c| (n, c))).collect();
        let keys: std::collections::BTreeSet<&String> = with_config.iter().flat_map(|(_, c)| c.keys()).collect();
        for key in keys {
            for (n, c) in &with_config {
                let value = c.get(key).cloned().unwrap_or_else(|| "(unset)".to_string());
                fields
                    .entry(format!("kubeletConfig.{key}"))
                    .or_default()
                    .entry(value)
                    .or_default()
                    .push(n.name.clone());
            }
        }
        let mut drifting = Vec::new();
        for (field, values) in fields {
            if values.len() < 2 {
                continue;
            }
            let top = values.values().map(Vec::len).max().unwrap_or(0);
            let leaders: Vec<&String> = values.iter().filter(|(_, ns)| ns.len() == top).map(|(v, _)| v).collect();
            let majority = (leaders.len() == 1).then(|| leaders[0].clone());
            for (value, names) in &values {
                if Some(value) == majority.as_ref() {
                    continue;
                }
                for name in names {
                    let (message, hint) = match &majority {
                        Some(m) => (
                            format!(
                                "{field} is '{value}' but {top} of {} nodes in generation {generation} have '{m}'",
                                nodes.len()
                            ),
                            format!(
                                "Bring {name} in line with its generation (or give it its own generation label) before its wave."
                            ),
                        ),
                        None => (
                            format!(
                                "{field} is '{value}'; generation {generation} has no majority value ({} different values)",
                                values.len()
                            ),
                            "Decide which value is intended for this generation and converge the nodes.".to_string(),
                        ),
                    };
                    all_findings.push(Finding::new(Severity::Warning, format!("drift.{field}"), name, message, hint));
                }
            }
            drifting.push(FieldSpread { field, majority, values });
        }
        generations.push(GenerationDrift { generation: generation.to_string(), nodes: nodes.len(), drifting });
    }
    findings::sort(&mut all_findings);
    DriftReport { generations, findings: all_findings }
}

/// Read `/var/lib/kubelet/config.yaml` from each node. Nodes that cannot be read come back as
/// errors (with the reason) and are left out of the comparison.
pub async fn read_kubelet_configs<O: NodeOps + ?Sized>(
    ops: &O,
    nodes: &[NodeTarget],
    timeout: Duration,
) -> BTreeMap<String, Result<BTreeMap<String, String>, String>> {
    let cmd = RemoteCommand::argv(["cat", "/var/lib/kubelet/config.yaml"]);
    run_on_all(ops, nodes, &cmd, timeout)
        .await
        .into_iter()
        .filter_map(|(node, result)| {
            let parsed = match result {
                Ok(out) if !out.executed => return None,
                Ok(out) if out.success() => parse_kubelet_config(&out.stdout).map(|c| c.flattened),
                Ok(out) => Err(format!("reading /var/lib/kubelet/config.yaml failed: {}", out.stderr.trim())),
                Err(e) => Err(e.to_string()),
            };
            Some((node.name, parsed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, generation: &str, kernel: &str, kubelet: &str) -> serde_json::Value {
        json!({"kind": "Node", "apiVersion": "v1",
            "metadata": {"name": name, "labels": {"stepstone.io/hardware-generation": generation}},
            "status": {"nodeInfo": {"kubeletVersion": kubelet, "kernelVersion": kernel, "osImage": "Ubuntu 22.04.4 LTS",
                "containerRuntimeVersion": "containerd://1.7.22", "architecture": "amd64"}}})
    }

    fn inventory(nodes: Vec<serde_json::Value>) -> Inventory {
        let list = json!({"kind": "List", "apiVersion": "v1", "items": nodes});
        stepstone_core::snapshot::load_str("test.json", &list.to_string(), &Default::default()).unwrap()
    }

    #[test]
    fn one_outlier_in_a_generation_is_reported() {
        let inv = inventory(vec![
            node("a-1", "gen-a", "5.15.0-122-generic", "v1.34.2"),
            node("a-2", "gen-a", "5.15.0-122-generic", "v1.34.2"),
            node("a-3", "gen-a", "5.15.0-91-generic", "v1.34.2"),
            node("b-1", "gen-b", "6.1.0-26-amd64", "v1.33.5"),
            node("b-2", "gen-b", "6.1.0-26-amd64", "v1.33.5"),
        ]);
        let report = drift(&inv, &BTreeMap::new());
        assert_eq!(report.findings.len(), 1);
        let f = &report.findings[0];
        assert_eq!((f.code.as_str(), f.subject.as_str()), ("drift.kernel", "a-3"));
        assert!(
            f.message.contains("'5.15.0-91-generic' but 2 of 3 nodes in generation gen-a have '5.15.0-122-generic'")
        );
        assert!(report.generations.iter().find(|g| g.generation == "gen-b").unwrap().drifting.is_empty());
    }

    #[test]
    fn a_tie_has_no_majority_and_kubelet_config_keys_are_compared() {
        let inv = inventory(vec![
            node("a-1", "gen-a", "5.15.0-122-generic", "v1.34.2"),
            node("a-2", "gen-a", "5.15.0-122-generic", "v1.33.5"),
        ]);
        let cfg = |max_pods: &str| {
            BTreeMap::from([("maxPods".to_string(), max_pods.to_string()), ("cgroupDriver".into(), "systemd".into())])
        };
        let configs = BTreeMap::from([("a-1".to_string(), cfg("110")), ("a-2".to_string(), cfg("250"))]);
        let report = drift(&inv, &configs);
        let fields: Vec<&str> = report.generations[0].drifting.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["kubelet", "kubeletConfig.maxPods"]);
        assert!(report.generations[0].drifting.iter().all(|d| d.majority.is_none()));
        assert_eq!(report.findings.len(), 4);
    }
}
