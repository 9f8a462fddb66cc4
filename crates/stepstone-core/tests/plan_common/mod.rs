//! Small hand-built fleets for the planner's tests: control-plane nodes with their apiserver,
//! workers of several hardware generations, Deployments with ReplicaSets, DaemonSets and budgets.

#![allow(dead_code)]

use std::collections::BTreeMap;

use stepstone_core::inventory::{
    Component, ComponentInstance, IntOrPercent, Inventory, Node, NodeRole, OwnerRef, Pdb, Pod, Taint, Toleration,
    Workload, WorkloadKind,
};
use stepstone_core::quantity::Resources;
use stepstone_core::selector::Selector;
use stepstone_core::version::KubeVersion;

pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

pub struct FleetBuilder {
    pub inv: Inventory,
    version: KubeVersion,
}

impl FleetBuilder {
    pub fn new(version: &str) -> Self {
        let version: KubeVersion = version.parse().unwrap();
        FleetBuilder {
            inv: Inventory {
                source: "test fleet".to_string(),
                server_version: Some(version.clone()),
                ..Default::default()
            },
            version,
        }
    }

    fn node(
        &self,
        name: &str,
        role: NodeRole,
        generation: &str,
        cpu_millis: u64,
        mem_gi: u64,
        created_year: i16,
    ) -> Node {
        let alloc = Resources { cpu_millis, memory_bytes: mem_gi << 30, pods: 110, ephemeral_storage_bytes: 200 << 30 };
        let mut labels = BTreeMap::new();
        labels.insert("kubernetes.io/hostname".to_string(), name.to_string());
        labels.insert("node.kubernetes.io/instance-type".to_string(), generation.to_string());
        let mut taints = vec![];
        if role == NodeRole::ControlPlane {
            labels.insert(CONTROL_PLANE_TAINT.to_string(), String::new());
            taints.push(Taint { key: CONTROL_PLANE_TAINT.to_string(), value: None, effect: "NoSchedule".to_string() });
        }
        Node {
            role,
            generation: generation.to_string(),
            labels,
            taints,
            kube_proxy_version: Some(self.version.clone()),
            os_image: "Ubuntu 22.04.4 LTS".to_string(),
            kernel_version: "5.15.0-100-generic".to_string(),
            container_runtime: "containerd://1.7.22".to_string(),
            created: Some(format!("{created_year}-01-01T00:00:00Z").parse().unwrap()),
            ..Node::worker(name, self.version.clone(), alloc)
        }
    }

    pub fn control_plane(&mut self, name: &str) -> &mut Self {
        let n = self.node(name, NodeRole::ControlPlane, "cp", 8000, 32, 2020);
        self.inv.nodes.push(n);
        let tag = format!("v{}.{}.{}", self.version.major, self.version.minor, self.version.patch);
        self.inv.components.push(ComponentInstance {
            component: Component::KubeApiserver,
            node: name.to_string(),
            image: format!("registry.k8s.io/kube-apiserver:{tag}"),
            tag: tag.clone(),
        });
        let mut p = self.pod("kube-system", &format!("kube-apiserver-{name}"), Some(name), 250, 512);
        p.annotations.insert("kubernetes.io/config.mirror".to_string(), "x".to_string());
        p.owner = Some(OwnerRef { kind: "Node".to_string(), name: name.to_string(), uid: String::new() });
        self.inv.pods.push(p);
        self
    }

    pub fn worker(
        &mut self,
        name: &str,
        generation: &str,
        cpu_millis: u64,
        mem_gi: u64,
        created_year: i16,
    ) -> &mut Self {
        let n = self.node(name, NodeRole::Worker, generation, cpu_millis, mem_gi, created_year);
        self.inv.nodes.push(n);
        self
    }

    pub fn pod(&self, ns: &str, name: &str, node: Option<&str>, cpu_millis: u64, mem_mi: u64) -> Pod {
        Pod {
            uid: format!("uid-{ns}-{name}"),
            node_name: node.map(String::from),
            requests: Resources { cpu_millis, memory_bytes: mem_mi << 20, pods: 1, ephemeral_storage_bytes: 0 },
            termination_grace_seconds: Some(30),
            created: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            ..Pod::running(ns, name)
        }
    }

    /// A Deployment (with its ReplicaSet) whose pods sit on `nodes`, one pod per entry.
    pub fn deployment(&mut self, ns: &str, name: &str, nodes: &[&str], cpu_millis: u64, mem_mi: u64) -> &mut Self {
        let rs = format!("{name}-7d9f8c");
        let labels = BTreeMap::from([("app".to_string(), name.to_string())]);
        let replicas = nodes.len() as i64;
        let selector = Selector::parse(&format!("app={name}")).unwrap();
        self.inv.workloads.push(Workload {
            uid: format!("uid-deploy-{ns}-{name}"),
            labels: labels.clone(),
            ..Workload::ready(WorkloadKind::Deployment, ns, name, replicas, selector.clone())
        });
        self.inv.workloads.push(Workload {
            uid: format!("uid-rs-{ns}-{rs}"),
            owner: Some(OwnerRef {
                kind: "Deployment".to_string(),
                name: name.to_string(),
                uid: format!("uid-deploy-{ns}-{name}"),
            }),
            labels: labels.clone(),
            ..Workload::ready(WorkloadKind::ReplicaSet, ns, &rs, replicas, selector)
        });
        for (i, node) in nodes.iter().enumerate() {
            let mut p = self.pod(ns, &format!("{rs}-{i:02}"), Some(node), cpu_millis, mem_mi);
            p.labels = labels.clone();
            p.owner =
                Some(OwnerRef { kind: "ReplicaSet".to_string(), name: rs.clone(), uid: format!("uid-rs-{ns}-{rs}") });
            self.inv.pods.push(p);
        }
        self
    }

    /// Required pod anti-affinity on the hostname between the deployment's own pods.
    pub fn spread(&mut self, ns: &str, name: &str) -> &mut Self {
        let sel = Selector::parse(&format!("app={name}")).unwrap();
        for p in
            self.inv.pods.iter_mut().filter(|p| p.namespace == ns && p.labels.get("app").is_some_and(|a| a == name))
        {
            p.anti_affinity_hostname = vec![sel.clone()];
        }
        self
    }

    /// A DaemonSet with one pod per node, tolerating every taint.
    pub fn daemonset(&mut self, ns: &str, name: &str, cpu_millis: u64) -> &mut Self {
        let names: Vec<String> = self.inv.nodes.iter().map(|n| n.name.clone()).collect();
        let selector = Selector::parse(&format!("app={name}")).unwrap();
        self.inv.workloads.push(Workload {
            uid: format!("uid-ds-{ns}-{name}"),
            ..Workload::ready(WorkloadKind::DaemonSet, ns, name, names.len() as i64, selector)
        });
        for n in names {
            let mut p = self.pod(ns, &format!("{name}-{n}"), Some(&n), cpu_millis, 64);
            p.labels.insert("app".to_string(), name.to_string());
            p.owner = Some(OwnerRef {
                kind: "DaemonSet".to_string(),
                name: name.to_string(),
                uid: format!("uid-ds-{ns}-{name}"),
            });
            p.tolerations.push(Toleration {
                key: String::new(),
                operator: "Exists".to_string(),
                value: String::new(),
                effect: String::new(),
            });
            self.inv.pods.push(p);
        }
        self
    }

    pub fn pdb_min_available(&mut self, ns: &str, app: &str, min: i64) -> &mut Self {
        self.pdb(ns, app, Some(IntOrPercent::Int(min)), None)
    }

    pub fn pdb_max_unavailable(&mut self, ns: &str, app: &str, max: i64) -> &mut Self {
        self.pdb(ns, app, None, Some(IntOrPercent::Int(max)))
    }

    fn pdb(&mut self, ns: &str, app: &str, min: Option<IntOrPercent>, max: Option<IntOrPercent>) -> &mut Self {
        self.inv.pdbs.push(Pdb {
            namespace: ns.to_string(),
            name: format!("{app}-pdb"),
            selector: Selector::parse(&format!("app={app}")).unwrap(),
            min_available: min,
            max_unavailable: max,
            unhealthy_pod_eviction_policy: None,
            generation: 1,
            status: None,
        });
        self
    }

    pub fn build(&self) -> Inventory {
        self.inv.clone()
    }
}
