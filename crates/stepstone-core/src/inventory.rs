//! The inventory: a plain, serialisable picture of a cluster that every planner reads.
//!
//! It is built from `kubectl get … -o json` output or from a live API server (both go through
//! [`crate::snapshot`]), so nothing here knows where the data came from.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::object_key::ObjectKey;
use crate::quantity::Resources;
use crate::selector::Selector;
use crate::version::KubeVersion;

/// Label keys read, in order, to find a node's hardware generation.
pub const DEFAULT_GENERATION_LABELS: &[&str] =
    &["node.kubernetes.io/instance-type", "stepstone.io/hardware-generation"];

/// Optional node label carrying the cgroup version (`v1` or `v2`) when something outside the
/// API (pre-flight, provisioning, the lab) has recorded it. The kubelet does not report it.
pub const CGROUP_LABEL: &str = "stepstone.io/cgroup-version";

pub const UNKNOWN_GENERATION: &str = "unknown";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Where the data came from (`snapshot examples/small.json`, `cluster ctx`).
    pub source: String,
    /// The apiserver's `/version`, when known.
    pub server_version: Option<KubeVersion>,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub pdbs: Vec<Pdb>,
    pub workloads: Vec<Workload>,
    /// Control-plane components (from static pods) and kube-proxy (per node).
    pub components: Vec<ComponentInstance>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<PersistentVolume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<VolumeClaim>,
    /// Claim -> the nodes that reach its bound volume, for claims bound to volumes
    /// with node affinity ([`crate::volumes::claim_nodes`], derived when the inventory is read).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claim_nodes: BTreeMap<ObjectKey, BTreeSet<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    ControlPlane,
    Worker,
}

impl std::fmt::Display for NodeRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeRole::ControlPlane => "control-plane",
            NodeRole::Worker => "worker",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    V1,
    V2,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub name: String,
    pub role: NodeRole,
    pub generation: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub kubelet_version: KubeVersion,
    /// From the kube-proxy pod on this node (nodeInfo.kubeProxyVersion is deprecated).
    pub kube_proxy_version: Option<KubeVersion>,
    pub os_image: String,
    pub kernel_version: String,
    /// As the kubelet reports it, e.g. `containerd://1.7.22`.
    pub container_runtime: String,
    pub architecture: String,
    pub cgroup: Option<CgroupVersion>,
    pub allocatable: Resources,
    pub capacity: Resources,
    pub ready: bool,
    pub conditions: Vec<Condition>,
    pub created: Option<Timestamp>,
    pub internal_ip: Option<String>,
}

impl Node {
    /// A Ready, schedulable amd64 worker called `name` with kubelet `version` offering
    /// `allocatable` (its capacity too), no labels, taints or host facts: what hand-built
    /// inventories (tests, fixtures) start from and adjust.
    pub fn worker(name: &str, version: KubeVersion, allocatable: Resources) -> Node {
        Node {
            name: name.to_string(),
            role: NodeRole::Worker,
            generation: String::new(),
            labels: BTreeMap::new(),
            taints: vec![],
            unschedulable: false,
            kubelet_version: version,
            kube_proxy_version: None,
            os_image: String::new(),
            kernel_version: String::new(),
            container_runtime: String::new(),
            architecture: "amd64".to_string(),
            cgroup: None,
            allocatable,
            capacity: allocatable,
            ready: true,
            conditions: vec![],
            created: None,
            internal_ip: None,
        }
    }

    pub fn is_control_plane(&self) -> bool {
        self.role == NodeRole::ControlPlane
    }

    /// The runtime's name and version, split from `containerd://1.7.22`.
    pub fn runtime(&self) -> (&str, &str) {
        self.container_runtime.split_once("://").unwrap_or(("", &self.container_runtime))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl PodPhase {
    pub fn is_finished(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

/// The controller owner reference of an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub uid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum VolumeSource {
    EmptyDir {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        medium: Option<String>,
    },
    HostPath {
        path: String,
    },
    PersistentVolumeClaim {
        claim: String,
    },
    /// ConfigMap, Secret, projected, downward API and the like: nothing node-local to lose.
    Other {
        kind: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub source: VolumeSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    /// Empty with operator `Exists` tolerates every taint.
    #[serde(default)]
    pub key: String,
    /// `Equal` (default) or `Exists`.
    pub operator: String,
    #[serde(default)]
    pub value: String,
    /// Empty matches every effect.
    #[serde(default)]
    pub effect: String,
}

impl Toleration {
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != taint.effect {
            return false;
        }
        if self.operator == "Exists" {
            return self.key.is_empty() || self.key == taint.key;
        }
        self.key == taint.key && self.value == taint.value.clone().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node_name: Option<String>,
    pub phase: PodPhase,
    pub ready: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owner: Option<OwnerRef>,
    /// Scheduling requests: sum of app containers, at least the largest init container,
    /// plus pod overhead; `pods` is always 1.
    pub requests: Resources,
    pub volumes: Vec<Volume>,
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity: the pod fits a node when any one term matches (terms are ORed).
    /// The pseudo-label `metadata.name` stands for `matchFields` on the node name.
    pub node_affinity: Vec<Selector>,
    pub tolerations: Vec<Toleration>,
    /// Required pod anti-affinity terms with topology key `kubernetes.io/hostname`:
    /// the pod may not share a node with a pod of its namespace matched by any of these.
    pub anti_affinity_hostname: Vec<Selector>,
    pub priority: i32,
    pub termination_grace_seconds: Option<i64>,
    /// When the pod was marked for deletion, its grace period included: the kubelet kills it
    /// then, and the API object goes once `finalizers` is empty too.
    pub deletion_timestamp: Option<Timestamp>,
    /// `metadata.finalizers`: the API keeps a deleted pod until each is removed by the
    /// controller that set it.
    #[serde(default)]
    pub finalizers: Vec<String>,
    pub created: Option<Timestamp>,
    pub images: Vec<String>,
}

/// Annotation the kubelet puts on the API mirror of a static pod.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

impl Pod {
    /// A Running, Ready pod named `namespace/name` (uid `uid-<name>`) with nothing else set:
    /// the starting point for pods built by hand (tests, generators), overridden field by field.
    pub fn running(namespace: &str, name: &str) -> Pod {
        Pod {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: format!("uid-{name}"),
            node_name: None,
            phase: PodPhase::Running,
            ready: true,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            owner: None,
            requests: Resources::default(),
            volumes: Vec::new(),
            node_selector: BTreeMap::new(),
            node_affinity: Vec::new(),
            tolerations: Vec::new(),
            anti_affinity_hostname: Vec::new(),
            priority: 0,
            termination_grace_seconds: None,
            deletion_timestamp: None,
            finalizers: Vec::new(),
            created: None,
            images: Vec::new(),
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(&self.namespace, &self.name)
    }

    pub fn is_mirror(&self) -> bool {
        self.annotations.contains_key(MIRROR_ANNOTATION)
    }

    pub fn is_terminating(&self) -> bool {
        self.deletion_timestamp.is_some()
    }

    /// Deleted, done on its node, and kept only by its finalizers: the API will not remove it
    /// until the controllers that own the finalizers do their part, so a drain waits on it
    /// forever. Since Kubernetes 1.27 the kubelet gives a deleted pod its final phase (Failed or
    /// Succeeded) once its containers are stopped, at the latest when the grace period ends
    /// (kubernetes/kubernetes#115331, #116324); that phase on a deleted pod is the evidence,
    /// read from the object itself and no clock.
    pub fn stuck_on_finalizers(&self) -> bool {
        self.is_terminating() && !self.finalizers.is_empty() && self.phase.is_finished()
    }
}

/// `minAvailable` / `maxUnavailable`: an integer or a percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IntOrPercent {
    Int(i64),
    Percent(i64),
}

impl IntOrPercent {
    pub fn parse(value: &serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::Number(n) => n.as_i64().map(IntOrPercent::Int),
            serde_json::Value::String(s) => match s.strip_suffix('%') {
                Some(p) => p.trim().parse().ok().map(IntOrPercent::Percent),
                None => s.trim().parse().ok().map(IntOrPercent::Int),
            },
            _ => None,
        }
    }
}

impl std::fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrPercent::Int(i) => write!(f, "{i}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PdbStatus {
    pub current_healthy: i64,
    pub desired_healthy: i64,
    pub expected_pods: i64,
    pub disruptions_allowed: i64,
    pub observed_generation: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pdb {
    pub namespace: String,
    pub name: String,
    pub selector: Selector,
    pub min_available: Option<IntOrPercent>,
    pub max_unavailable: Option<IntOrPercent>,
    /// `IfHealthyBudget` (default when unset) or `AlwaysAllow`.
    pub unhealthy_pod_eviction_policy: Option<String>,
    pub generation: i64,
    pub status: Option<PdbStatus>,
}

impl Pdb {
    /// `namespace/name`.
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(&self.namespace, &self.name)
    }

    pub fn selects(&self, pod: &Pod) -> bool {
        pod.namespace == self.namespace && self.selector.matches(&pod.labels)
    }

    pub fn always_allow_unhealthy(&self) -> bool {
        self.unhealthy_pod_eviction_policy.as_deref() == Some("AlwaysAllow")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ReplicationController,
}

impl WorkloadKind {
    pub fn from_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "Deployment" => WorkloadKind::Deployment,
            "ReplicaSet" => WorkloadKind::ReplicaSet,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            "ReplicationController" => WorkloadKind::ReplicationController,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::ReplicationController => "ReplicationController",
        }
    }

    /// The short name kubectl accepts (`deploy/redis`).
    pub fn short(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deploy",
            WorkloadKind::ReplicaSet => "rs",
            WorkloadKind::StatefulSet => "sts",
            WorkloadKind::DaemonSet => "ds",
            WorkloadKind::ReplicationController => "rc",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.replicas` (DaemonSets: the desired number scheduled).
    pub replicas: i64,
    pub ready_replicas: i64,
    pub owner: Option<OwnerRef>,
    pub selector: Selector,
    pub labels: BTreeMap<String, String>,
    pub images: Vec<String>,
}

impl Workload {
    /// A `kind` called `namespace/name` with `replicas`, all ready, selecting `selector`; no uid,
    /// owner, labels or images: what hand-built inventories start from and adjust.
    pub fn ready(kind: WorkloadKind, namespace: &str, name: &str, replicas: i64, selector: Selector) -> Workload {
        Workload {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: String::new(),
            replicas,
            ready_replicas: replicas,
            owner: None,
            selector,
            labels: BTreeMap::new(),
            images: vec![],
        }
    }

    /// `deploy/namespace/name`.
    pub fn key(&self) -> WorkloadKey {
        WorkloadKey { kind: self.kind, object: ObjectKey::new(&self.namespace, &self.name) }
    }
}

/// A workload's identity, written `<kind>/<namespace>/<name>` with the kind's short name
/// (`deploy/prod/web`), as findings name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadKey {
    pub kind: WorkloadKind,
    pub object: ObjectKey,
}

impl std::fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.short(), self.object)
    }
}

/// For text-keyed places (finding subjects) that take `impl Into<String>`.
impl From<WorkloadKey> for String {
    fn from(key: WorkloadKey) -> String {
        key.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    KubeApiserver,
    KubeControllerManager,
    KubeScheduler,
    Etcd,
    KubeProxy,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::KubeApiserver => "kube-apiserver",
            Component::KubeControllerManager => "kube-controller-manager",
            Component::KubeScheduler => "kube-scheduler",
            Component::Etcd => "etcd",
            Component::KubeProxy => "kube-proxy",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "kube-apiserver" => Component::KubeApiserver,
            "kube-controller-manager" => Component::KubeControllerManager,
            "kube-scheduler" => Component::KubeScheduler,
            "etcd" => Component::Etcd,
            "kube-proxy" => Component::KubeProxy,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One running instance of a component, with the version read from its image tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentInstance {
    pub component: Component,
    pub node: String,
    pub image: String,
    /// The image tag (`v1.34.2`, `3.5.16-0`).
    pub tag: String,
}

impl ComponentInstance {
    /// The Kubernetes version of the instance; `None` for etcd or an unparseable tag.
    pub fn version(&self) -> Option<KubeVersion> {
        if self.component == Component::Etcd {
            return None;
        }
        self.tag.parse().ok()
    }
}

impl Inventory {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn pods_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
        self.pods.iter().filter(move |p| p.node_name.as_deref() == Some(node))
    }

    pub fn control_plane_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_control_plane())
    }

    pub fn workers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| !n.is_control_plane())
    }

    pub fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Option<&Workload> {
        // Parsed inventories keep workloads sorted by (kind, namespace, name), so the per-pod
        // owner lookups of the planner stay logarithmic; a hand-built, unsorted list still
        // answers correctly through the linear scan.
        let key = (kind, namespace, name);
        match self.workloads.binary_search_by(|w| (w.kind, w.namespace.as_str(), w.name.as_str()).cmp(&key)) {
            Ok(i) => Some(&self.workloads[i]),
            Err(_) => self.workloads.iter().find(|w| w.kind == kind && w.namespace == namespace && w.name == name),
        }
    }

    /// The workload a pod's controller reference points at, following a ReplicaSet up to its
    /// Deployment (the object a user scales).
    pub fn top_controller(&self, pod: &Pod) -> Option<&Workload> {
        let owner = pod.owner.as_ref()?;
        let kind = WorkloadKind::from_kind(&owner.kind)?;
        let direct = self.workload(kind, &pod.namespace, &owner.name)?;
        match &direct.owner {
            Some(up) => WorkloadKind::from_kind(&up.kind)
                .and_then(|k| self.workload(k, &pod.namespace, &up.name))
                .or(Some(direct)),
            None => Some(direct),
        }
    }

    pub fn pdbs_for<'a>(&'a self, pod: &'a Pod) -> impl Iterator<Item = &'a Pdb> + 'a {
        self.pdbs.iter().filter(move |b| b.selects(pod))
    }

    /// Nodes grouped by hardware generation, names sorted inside each group.
    pub fn generations(&self) -> BTreeMap<&str, Vec<&Node>> {
        let mut out: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
        for n in &self.nodes {
            out.entry(n.generation.as_str()).or_default().push(n);
        }
        out
    }

    pub fn components_of(&self, c: Component) -> impl Iterator<Item = &ComponentInstance> {
        self.components.iter().filter(move |i| i.component == c)
    }

    /// The oldest apiserver version in the cluster: the static pods when known, else `/version`.
    pub fn apiserver_versions(&self) -> Vec<(String, KubeVersion)> {
        let mut out: Vec<(String, KubeVersion)> = self
            .components_of(Component::KubeApiserver)
            .filter_map(|c| c.version().map(|v| (c.node.clone(), v)))
            .collect();
        if out.is_empty()
            && let Some(v) = &self.server_version
        {
            out.push(("(apiserver)".to_string(), v.clone()));
        }
        out.sort();
        out
    }

    /// The control-plane version the cluster runs: the oldest apiserver.
    pub fn control_plane_version(&self) -> Option<KubeVersion> {
        self.apiserver_versions().into_iter().map(|(_, v)| v).min()
    }
}

/// A PersistentVolume, as far as placement is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolume {
    pub name: String,
    /// The claim in `spec.claimRef`, when reserved or bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<ObjectKey>,
    /// `spec.nodeAffinity.required` terms (ORed); empty when any node reaches the volume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_affinity: Vec<Selector>,
}

/// A PersistentVolumeClaim and the volume it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeClaim {
    pub namespace: String,
    pub name: String,
    /// `spec.volumeName` once bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    pub bound: bool,
}

impl VolumeClaim {
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(&self.namespace, &self.name)
    }
}
