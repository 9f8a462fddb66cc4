//! Nodes and pod placement. Nodes are laid out generation by generation; static pods go to the
//! control-plane nodes, DaemonSet pods to every node, and every other pod to the feasible worker
//! whose busiest resource (CPU or memory share requested) is lowest, ties broken by node order,
//! as a scheduler that spreads load would. A pod that fits nowhere stays `Pending`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use jiff::civil::Date;

use crate::app::{App, Controller};
use crate::rng::Rng;
use crate::spec::FleetSpec;
use crate::{GIB, HOSTNAME_LABEL, INSTANCE_TYPE_LABEL, MAX_PODS, RESERVED_CPU_MILLIS, RESERVED_MEMORY};

#[derive(Debug, Clone)]
pub(crate) struct NodeModel {
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) generation: usize,
    pub(crate) control_plane: bool,
    pub(crate) kubelet: String,
    pub(crate) created: i64,
    pub(crate) index: usize,
    pub(crate) cpu: u64,
    pub(crate) memory: u64,
    pub(crate) cpu_used: u64,
    pub(crate) memory_used: u64,
    pub(crate) pods_used: u64,
    pub(crate) pod_seq: u32,
}

impl NodeModel {
    pub(crate) fn ip(&self) -> String {
        format!("10.20.{}.{}", self.index / 250, self.index % 250 + 4)
    }

    pub(crate) fn pod_cidr(&self) -> String {
        format!("10.{}.{}.0/24", 64 + self.index / 256, self.index % 256)
    }

    pub(crate) fn next_pod_ip(&mut self) -> String {
        self.pod_seq += 1;
        format!("10.{}.{}.{}", 64 + self.index / 256, self.index % 256, self.pod_seq + 1)
    }

    pub(crate) fn allocatable_cpu(&self) -> u64 {
        self.cpu * 1000 - RESERVED_CPU_MILLIS
    }

    pub(crate) fn allocatable_memory(&self) -> u64 {
        self.memory - RESERVED_MEMORY
    }

    pub(crate) fn fits(&self, cpu: u64, memory: u64) -> bool {
        self.cpu_used + cpu <= self.allocatable_cpu()
            && self.memory_used + memory <= self.allocatable_memory()
            && self.pods_used < MAX_PODS
    }

    /// The share of the busiest resource requested, in parts per million (the placement key).
    pub(crate) fn load_ppm(&self) -> u64 {
        let c = self.cpu_used * 1_000_000 / self.allocatable_cpu().max(1);
        let m = (u128::from(self.memory_used) * 1_000_000 / u128::from(self.allocatable_memory().max(1))) as u64;
        c.max(m)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PodModel {
    pub(crate) app_index: usize,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) node: Option<usize>,
    pub(crate) ip: Option<String>,
    pub(crate) created: i64,
    pub(crate) ordinal: Option<usize>,
}

pub(crate) struct PlacedFleet<'a> {
    pub(crate) spec: &'a FleetSpec,
    pub(crate) nodes: Vec<NodeModel>,
    pub(crate) apps: Vec<App>,
    pub(crate) pods: Vec<PodModel>,
    pub(crate) rng: Rng,
}

pub(crate) struct Placer<'a> {
    pub(crate) spec: &'a FleetSpec,
    pub(crate) rng: Rng,
    pub(crate) nodes: Vec<NodeModel>,
    pub(crate) apps: Vec<App>,
    pub(crate) pods: Vec<PodModel>,
    pub(crate) now: i64,
    pub(crate) used_names: HashSet<String>,
}

fn day_start(d: Date) -> i64 {
    d.at(9, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC).expect("date in range").timestamp().as_second()
}

impl<'a> Placer<'a> {
    pub(crate) fn new(spec: &'a FleetSpec) -> Self {
        Placer {
            spec,
            rng: Rng(spec.seed),
            nodes: Vec::new(),
            apps: Vec::new(),
            pods: Vec::new(),
            now: spec.snapshot_time.as_second(),
            used_names: HashSet::new(),
        }
    }

    pub(crate) fn build(mut self) -> PlacedFleet<'a> {
        self.make_nodes();
        self.add_system_apps();
        self.add_showcase_apps();
        self.add_services();
        self.place_all();
        PlacedFleet { spec: self.spec, nodes: self.nodes, apps: self.apps, pods: self.pods, rng: self.rng }
    }

    pub(crate) fn make_nodes(&mut self) {
        let spec = self.spec;
        let cp_gen = spec.control_plane_generation.min(spec.generations.len().saturating_sub(1));
        for i in 0..spec.control_planes {
            let hw = &spec.generations[cp_gen];
            // Control-plane nodes moved to this hardware when it arrived, before its workers.
            let created = day_start(hw.created) - 86_400 + i as i64 * 1800;
            self.push_node(format!("cp-{:02}", i + 1), cp_gen, true, spec.version.clone(), created);
        }
        for (g, hw) in spec.generations.iter().enumerate() {
            let width = if hw.count >= 100 { hw.count.to_string().len() } else { 2 };
            for i in 0..hw.count {
                let kubelet = match &hw.older_kubelets {
                    Some(o) if i < o.nodes => o.version.clone(),
                    _ => spec.version.clone(),
                };
                // Racked over the following weeks, a few per day.
                let created = day_start(hw.created) + (i as i64 / 4) * 86_400 + (i as i64 % 4) * 3600;
                self.push_node(format!("{}-{:0width$}", hw.node_prefix, i + 1), g, false, kubelet, created);
            }
        }
    }

    /// A node of hardware generation `generation` with nothing placed on it yet, next in line
    /// (its index is its position, its uid the rng's next).
    fn push_node(&mut self, name: String, generation: usize, control_plane: bool, kubelet: String, created: i64) {
        let hw = &self.spec.generations[generation];
        let index = self.nodes.len();
        self.nodes.push(NodeModel {
            name,
            uid: self.rng.uid(),
            generation,
            control_plane,
            kubelet,
            created,
            index,
            cpu: hw.cpu_cores,
            memory: hw.memory_gib * GIB,
            cpu_used: 0,
            memory_used: 0,
            pods_used: 0,
            pod_seq: 0,
        });
    }

    pub(crate) fn cluster_created(&self) -> i64 {
        self.nodes.iter().map(|n| n.created).min().unwrap_or(self.now)
    }

    pub(crate) fn place_all(&mut self) {
        // Static pods on each control-plane node, DaemonSet pods on every node.
        for app_index in 0..self.apps.len() {
            let controller = self.apps[app_index].controller;
            match controller {
                Controller::Static => {
                    for node_index in 0..self.nodes.len() {
                        if self.nodes[node_index].control_plane {
                            let name = format!("{}-{}", self.apps[app_index].name, self.nodes[node_index].name);
                            // Recreated by the kubelet at the last control-plane upgrade.
                            let created = (self.now - 30 * 86_400 + node_index as i64 * 1800)
                                .max(self.nodes[node_index].created + 120);
                            self.bind(app_index, name, Some(node_index), created, None);
                        }
                    }
                }
                Controller::DaemonSet => {
                    for node_index in 0..self.nodes.len() {
                        let name = self.generated_name(&self.apps[app_index].name.clone());
                        let recent = self.now - 3600 - self.rng.below(60 * 86_400) as i64;
                        let created =
                            recent.max(self.apps[app_index].created.max(self.nodes[node_index].created) + 300);
                        self.bind(app_index, name, Some(node_index), created, None);
                    }
                }
                _ => {}
            }
        }
        // Everything else on the workers, least-loaded first.
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
        for (node_index, n) in self.nodes.iter().enumerate() {
            if !n.control_plane {
                heap.push(Reverse((n.load_ppm(), node_index)));
            }
        }
        for app_index in 0..self.apps.len() {
            if matches!(self.apps[app_index].controller, Controller::Static | Controller::DaemonSet) {
                continue;
            }
            let mut on_nodes: Vec<usize> = Vec::new();
            for r in 0..self.apps[app_index].replicas {
                let app = &self.apps[app_index];
                let (cpu, memory) = (app.cpu(), app.memory());
                let mut aside = Vec::new();
                let mut chosen = None;
                while let Some(Reverse((load, node_index))) = heap.pop() {
                    let n = &self.nodes[node_index];
                    let selector_ok = app.node_selector.iter().all(|(k, v)| {
                        (k == INSTANCE_TYPE_LABEL && self.spec.generations[n.generation].name == *v)
                            || (k == HOSTNAME_LABEL && n.name == *v)
                    });
                    let spread_ok = !app.anti_affinity || !on_nodes.contains(&node_index);
                    if selector_ok && spread_ok && n.fits(cpu, memory) {
                        chosen = Some(node_index);
                        break;
                    }
                    aside.push(Reverse((load, node_index)));
                }
                heap.extend(aside);
                let (name, ordinal) = match app.controller {
                    Controller::StatefulSet => (format!("{}-{r}", app.name), Some(r)),
                    Controller::Bare => (app.name.clone(), None),
                    _ => {
                        let prefix = app.rs_name();
                        (self.generated_name(&prefix), None)
                    }
                };
                // Pods come and go with rollouts: most are days or weeks old, none older than
                // their controller.
                let created =
                    (self.now - 3600 - self.rng.below(45 * 86_400) as i64).max(self.apps[app_index].created + 600);
                self.bind(app_index, name, chosen, created, ordinal);
                if let Some(node_index) = chosen {
                    on_nodes.push(node_index);
                    heap.push(Reverse((self.nodes[node_index].load_ppm(), node_index)));
                }
            }
        }
    }

    /// `<prefix>-<5 random characters>`, as controllers name pods, drawn again on a clash: a
    /// few thousand DaemonSet pods would otherwise collide now and then.
    pub(crate) fn generated_name(&mut self, prefix: &str) -> String {
        loop {
            let name = format!("{prefix}-{}", self.rng.suffix(5));
            if self.used_names.insert(name.clone()) {
                return name;
            }
        }
    }

    pub(crate) fn bind(
        &mut self,
        app_index: usize,
        name: String,
        node: Option<usize>,
        created: i64,
        ordinal: Option<usize>,
    ) {
        let (cpu, memory) = (self.apps[app_index].cpu(), self.apps[app_index].memory());
        let ip = node.map(|node_index| {
            let n = &mut self.nodes[node_index];
            n.cpu_used += cpu;
            n.memory_used += memory;
            n.pods_used += 1;
            if self.apps[app_index].host_network { n.ip() } else { n.next_pod_ip() }
        });
        let uid = self.rng.uid();
        self.pods.push(PodModel { app_index, name, uid, node, ip, created, ordinal });
    }
}
