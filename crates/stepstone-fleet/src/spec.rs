//! What determines a generated fleet: the [`FleetSpec`] with its hardware generations and
//! application mix, and the presets (the two example clusters and the synthetic benchmark
//! fleets).

use jiff::Timestamp;
use jiff::civil::Date;
use stepstone_core::inventory::CgroupVersion;

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

pub(crate) fn date(y: i16, m: i8, d: i8) -> Date {
    Date::new(y, m, d).expect("valid calendar date")
}

pub(crate) fn snapshot_time() -> Timestamp {
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
