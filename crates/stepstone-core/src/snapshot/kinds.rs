//! The parser of each kind the inventory reads (nodes, pods, budgets, workloads): one object
//! as a [`Value`] in, the inventory's type out, or a reason naming the field that is wrong.

use serde_json::Value;

use super::SnapshotOptions;
use super::fields::*;
use crate::inventory::*;
use crate::quantity::Resources;
use crate::selector::{Operator, Requirement, Selector};
use crate::version::KubeVersion;

/// Parse a Node object. A node without `status.nodeInfo` is refused: every version decision
/// depends on it.
pub fn parse_node(obj: &Value, opts: &SnapshotOptions) -> Result<Node, String> {
    let meta = obj.get("metadata").ok_or("no metadata")?;
    let name = meta.get("name").and_then(Value::as_str).ok_or("no metadata.name")?.to_string();
    if !is_dns1123_subdomain(&name) {
        return Err(format!(
            "metadata.name {name:?} is not a valid node name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.')"
        ));
    }
    let labels = string_map(meta.get("labels"), "metadata.labels")?;
    let info = at(obj, &["status", "nodeInfo"]).ok_or(
        "has no status.nodeInfo (kubelet, kernel and runtime versions); take the snapshot with `kubectl get nodes -o json`, not a trimmed or custom output",
    )?;
    let kubelet =
        info.get("kubeletVersion").and_then(Value::as_str).ok_or("status.nodeInfo.kubeletVersion is missing")?;
    let kubelet_version: KubeVersion = kubelet.parse().map_err(|e| format!("status.nodeInfo.kubeletVersion: {e}"))?;
    let s = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let role = if labels.contains_key("node-role.kubernetes.io/control-plane")
        || labels.contains_key("node-role.kubernetes.io/master")
    {
        NodeRole::ControlPlane
    } else {
        NodeRole::Worker
    };
    let generation = opts
        .generation_labels
        .iter()
        .find_map(|k| labels.get(k).filter(|v| !v.is_empty()).cloned())
        .unwrap_or_else(|| UNKNOWN_GENERATION.to_string());
    let cgroup = match labels.get(CGROUP_LABEL).map(String::as_str) {
        Some("v1") => Some(CgroupVersion::V1),
        Some("v2") => Some(CgroupVersion::V2),
        _ => None,
    };
    let taints = array_at(obj, &["spec", "taints"])
        .filter_map(|t| {
            Some(Taint {
                key: t.get("key")?.as_str()?.to_string(),
                value: t.get("value").and_then(Value::as_str).map(String::from),
                effect: t.get("effect").and_then(Value::as_str).unwrap_or("").to_string(),
            })
        })
        .collect();
    let conditions: Vec<Condition> = array_at(obj, &["status", "conditions"])
        .filter_map(|c| {
            Some(Condition {
                kind: c.get("type")?.as_str()?.to_string(),
                status: c.get("status")?.as_str()?.to_string(),
                reason: c.get("reason").and_then(Value::as_str).map(String::from),
            })
        })
        .collect();
    let ready = conditions.iter().any(|c| c.kind == "Ready" && c.status == "True");
    let internal_ip = at(obj, &["status", "addresses"])
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|x| x.get("type").and_then(Value::as_str) == Some("InternalIP")))
        .and_then(|x| x.get("address").and_then(Value::as_str))
        .map(|ip| match ip.parse::<std::net::IpAddr>() {
            Ok(_) => Ok(ip.to_string()),
            Err(_) => Err(format!("status.addresses InternalIP {ip:?} is not an IP address")),
        })
        .transpose()?;
    Ok(Node {
        name,
        role,
        generation,
        taints,
        unschedulable: at(obj, &["spec", "unschedulable"]).and_then(Value::as_bool).unwrap_or(false),
        kubelet_version,
        kube_proxy_version: None,
        os_image: s("osImage"),
        kernel_version: s("kernelVersion"),
        container_runtime: s("containerRuntimeVersion"),
        architecture: s("architecture"),
        cgroup,
        allocatable: resources(at(obj, &["status", "allocatable"]))?,
        capacity: resources(at(obj, &["status", "capacity"]))?,
        ready,
        conditions,
        created: timestamp(meta.get("creationTimestamp"))?,
        internal_ip,
        labels,
    })
}

fn container_requests(c: &Value) -> Result<Resources, String> {
    resources(at(c, &["resources", "requests"]))
}

/// The required node-affinity terms of an `affinity` object (ORed), `matchFields` on
/// `metadata.name` as requirements on that pseudo-label.
pub fn node_selector_terms(affinity: &Value) -> Vec<Selector> {
    let Some(terms) =
        at(affinity, &["nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"])
            .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    terms
        .iter()
        .map(|t| {
            let mut sel = Selector::from_label_selector(&serde_json::json!({
                "matchExpressions": t.get("matchExpressions").cloned().unwrap_or(Value::Array(vec![]))
            }))
            .unwrap_or_default();
            if let Some(fields) = t.get("matchFields").and_then(Value::as_array) {
                for f in fields {
                    if let Ok(s) = Selector::from_label_selector(&serde_json::json!({"matchExpressions": [f]})) {
                        sel.requirements.extend(s.requirements);
                    }
                }
            }
            sel
        })
        .collect()
}

pub(super) fn anti_affinity_terms(affinity: &Value) -> Vec<Selector> {
    let Some(terms) =
        at(affinity, &["podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"]).and_then(Value::as_array)
    else {
        return Vec::new();
    };
    terms
        .iter()
        .filter(|t| t.get("topologyKey").and_then(Value::as_str) == Some("kubernetes.io/hostname"))
        .filter_map(|t| t.get("labelSelector").and_then(|s| Selector::from_label_selector(s).ok()))
        .collect()
}

pub fn parse_pod(obj: &Value) -> Result<Pod, String> {
    let meta = obj.get("metadata").ok_or("no metadata")?;
    let spec = match obj.get("spec") {
        Some(spec @ Value::Object(_)) => spec,
        Some(other) => return Err(format!("spec is {} {other}, not an object", article(other))),
        None => return Err("has no spec; take the snapshot with `kubectl get pods -A -o json`".into()),
    };
    let status = obj.get("status").unwrap_or(&Value::Null);
    let phase = match status.get("phase").and_then(Value::as_str) {
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        Some("Unknown") => PodPhase::Unknown,
        _ => PodPhase::Pending,
    };
    let ready = array_at(status, &["conditions"]).any(|c| {
        c.get("type").and_then(Value::as_str) == Some("Ready")
            && c.get("status").and_then(Value::as_str) == Some("True")
    });
    let mut requests = Resources::default();
    let mut images = Vec::new();
    for c in array_at(spec, &["containers"]) {
        requests = requests.saturating_add(container_requests(c)?);
        if let Some(i) = c.get("image").and_then(Value::as_str) {
            images.push(i.to_string());
        }
    }
    for c in array_at(spec, &["initContainers"]) {
        requests = requests.max(container_requests(c)?);
    }
    requests = requests.saturating_add(resources(spec.get("overhead"))?);
    requests.pods = 1;
    let volumes = array_at(spec, &["volumes"])
        .map(|v| {
            let name = v.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            let source = if let Some(e) = v.get("emptyDir") {
                VolumeSource::EmptyDir {
                    medium: e.get("medium").and_then(Value::as_str).filter(|m| !m.is_empty()).map(String::from),
                }
            } else if let Some(h) = v.get("hostPath") {
                VolumeSource::HostPath { path: h.get("path").and_then(Value::as_str).unwrap_or("").to_string() }
            } else if let Some(c) = v.get("persistentVolumeClaim") {
                VolumeSource::PersistentVolumeClaim {
                    claim: c.get("claimName").and_then(Value::as_str).unwrap_or("").to_string(),
                }
            } else {
                let kind = v.as_object().and_then(|m| m.keys().find(|k| *k != "name").cloned()).unwrap_or_default();
                VolumeSource::Other { kind }
            };
            Volume { name, source }
        })
        .collect();
    let tolerations = array_at(spec, &["tolerations"])
        .map(|t| Toleration {
            key: t.get("key").and_then(Value::as_str).unwrap_or("").to_string(),
            operator: t.get("operator").and_then(Value::as_str).unwrap_or("Equal").to_string(),
            value: t.get("value").and_then(Value::as_str).unwrap_or("").to_string(),
            effect: t.get("effect").and_then(Value::as_str).unwrap_or("").to_string(),
        })
        .collect();
    let affinity = spec.get("affinity").unwrap_or(&Value::Null);
    Ok(Pod {
        namespace: meta.get("namespace").and_then(Value::as_str).unwrap_or("default").to_string(),
        name: meta.get("name").and_then(Value::as_str).ok_or("no metadata.name")?.to_string(),
        uid: meta.get("uid").and_then(Value::as_str).unwrap_or("").to_string(),
        node_name: spec.get("nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()).map(String::from),
        phase,
        ready,
        labels: string_map(meta.get("labels"), "metadata.labels")?,
        annotations: string_map(meta.get("annotations"), "metadata.annotations")?,
        owner: controller_owner(meta),
        requests,
        volumes,
        node_selector: string_map(spec.get("nodeSelector"), "spec.nodeSelector")?,
        node_affinity: node_selector_terms(affinity),
        tolerations,
        anti_affinity_hostname: anti_affinity_terms(affinity),
        priority: spec.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
        termination_grace_seconds: spec.get("terminationGracePeriodSeconds").and_then(Value::as_i64),
        deletion_timestamp: timestamp(meta.get("deletionTimestamp"))?,
        finalizers: string_list(meta.get("finalizers"), "metadata.finalizers")?,
        created: timestamp(meta.get("creationTimestamp"))?,
        images,
    })
}

pub fn parse_pdb(obj: &Value) -> Result<Pdb, String> {
    let meta = obj.get("metadata").ok_or("no metadata")?;
    let spec = obj.get("spec").ok_or("no spec")?;
    let selector = match spec.get("selector") {
        Some(s) => Selector::from_label_selector(s).map_err(|e| e.to_string())?,
        // policy/v1: a missing selector selects nothing. Model that as a requirement no pod meets.
        None => Selector {
            requirements: vec![Requirement {
                key: "stepstone.io/no-selector".into(),
                operator: Operator::In,
                values: vec![],
            }],
        },
    };
    let ioi = |k: &str| -> Result<Option<IntOrPercent>, String> {
        match spec.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => IntOrPercent::parse(v)
                .map(Some)
                .ok_or_else(|| format!("spec.{k} '{v}' is neither an integer nor a percentage")),
        }
    };
    let status = obj.get("status").and_then(|s| {
        Some(PdbStatus {
            current_healthy: s.get("currentHealthy")?.as_i64()?,
            desired_healthy: s.get("desiredHealthy")?.as_i64()?,
            expected_pods: s.get("expectedPods")?.as_i64()?,
            disruptions_allowed: s.get("disruptionsAllowed")?.as_i64()?,
            observed_generation: s.get("observedGeneration").and_then(Value::as_i64).unwrap_or(0),
        })
    });
    let (min_available, max_unavailable) = (ioi("minAvailable")?, ioi("maxUnavailable")?);
    if min_available.is_some() && max_unavailable.is_some() {
        return Err("sets both spec.minAvailable and spec.maxUnavailable; the apiserver accepts only one".into());
    }
    for (field, value) in [("minAvailable", min_available), ("maxUnavailable", max_unavailable)] {
        match value {
            Some(IntOrPercent::Int(n)) if n < 0 => {
                return Err(format!("spec.{field} is {n}; it must be 0 or more"));
            }
            Some(IntOrPercent::Percent(p)) if !(0..=100).contains(&p) => {
                return Err(format!("spec.{field} is {p}%; it must be between 0% and 100%"));
            }
            _ => {}
        }
    }
    Ok(Pdb {
        namespace: meta.get("namespace").and_then(Value::as_str).unwrap_or("default").to_string(),
        name: meta.get("name").and_then(Value::as_str).ok_or("no metadata.name")?.to_string(),
        selector,
        min_available,
        max_unavailable,
        unhealthy_pod_eviction_policy: spec.get("unhealthyPodEvictionPolicy").and_then(Value::as_str).map(String::from),
        generation: meta.get("generation").and_then(Value::as_i64).unwrap_or(1),
        status,
    })
}

pub fn parse_workload(obj: &Value) -> Result<Workload, String> {
    let meta = obj.get("metadata").ok_or("no metadata")?;
    let kind = obj.get("kind").and_then(Value::as_str).and_then(WorkloadKind::from_kind).ok_or("not a workload")?;
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let status = obj.get("status").unwrap_or(&Value::Null);
    let replicas = match kind {
        WorkloadKind::DaemonSet => status.get("desiredNumberScheduled").and_then(Value::as_i64).unwrap_or(0),
        _ => spec.get("replicas").and_then(Value::as_i64).unwrap_or(1),
    };
    let ready_replicas = match kind {
        WorkloadKind::DaemonSet => status.get("numberReady").and_then(Value::as_i64).unwrap_or(0),
        _ => status.get("readyReplicas").and_then(Value::as_i64).unwrap_or(0),
    };
    let selector = match spec.get("selector") {
        Some(s) => Selector::from_label_selector(s).map_err(|e| e.to_string())?,
        None => Selector::everything(),
    };
    let images = array_at(spec, &["template", "spec", "containers"])
        .filter_map(|c| c.get("image").and_then(Value::as_str).map(String::from))
        .collect();
    Ok(Workload {
        kind,
        namespace: meta.get("namespace").and_then(Value::as_str).unwrap_or("default").to_string(),
        name: meta.get("name").and_then(Value::as_str).ok_or("no metadata.name")?.to_string(),
        uid: meta.get("uid").and_then(Value::as_str).unwrap_or("").to_string(),
        replicas,
        ready_replicas,
        owner: controller_owner(meta),
        selector,
        labels: string_map(meta.get("labels"), "metadata.labels")?,
        images,
    })
}
