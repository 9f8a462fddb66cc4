//! What the catalogue's apps are made of: the controller that runs an app, its containers and
//! volumes, its budget, and the tolerations and static-pod commands the add-ons share; the
//! placement places these and the renderers write them out.

use std::collections::BTreeMap;

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Deployment,
    StatefulSet,
    DaemonSet,
    /// Static pods: one per control-plane node, mirrored into the API by the kubelet.
    Static,
    /// A pod created directly, without a controller.
    Bare,
}

#[derive(Debug, Clone)]
pub(crate) enum Volume {
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

impl Volume {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Volume::EmptyDir { name, .. }
            | Volume::HostPath { name, .. }
            | Volume::ClaimTemplate { name }
            | Volume::ConfigMap { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Container {
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) cpu: u64,
    pub(crate) memory: u64,
    pub(crate) args: Vec<String>,
    pub(crate) ports: Vec<(&'static str, u16)>,
    pub(crate) mounts: Vec<(&'static str, &'static str)>,
}

impl Container {
    pub(crate) fn new(name: &str, image: &str, cpu: u64, memory: u64) -> Self {
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
pub(crate) struct BudgetDef {
    pub(crate) name: String,
    pub(crate) min_available: Option<Value>,
    pub(crate) max_unavailable: Option<Value>,
    pub(crate) always_allow: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) controller: Controller,
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// The label that selects the app's pods (key, value).
    pub(crate) selector: (&'static str, String),
    pub(crate) extra_labels: BTreeMap<String, String>,
    pub(crate) pod_annotations: BTreeMap<String, String>,
    pub(crate) replicas: usize,
    pub(crate) containers: Vec<Container>,
    pub(crate) volumes: Vec<Volume>,
    pub(crate) anti_affinity: bool,
    pub(crate) node_selector: BTreeMap<String, String>,
    /// Pods get required node affinity on the hostname they were placed on (local volumes).
    pub(crate) pin_to_node: bool,
    pub(crate) tolerations: Vec<Value>,
    pub(crate) priority_class: Option<(&'static str, i64)>,
    pub(crate) host_network: bool,
    pub(crate) grace: i64,
    pub(crate) service_account: String,
    pub(crate) pdb: Option<BudgetDef>,
    pub(crate) created: i64,
    pub(crate) uid: String,
    /// ReplicaSet UID for Deployments.
    pub(crate) rs_uid: String,
    /// pod-template-hash (Deployment) or controller-revision-hash (StatefulSet, DaemonSet).
    pub(crate) hash: String,
    pub(crate) pdb_uid: String,
    /// Deployment revision / DaemonSet template generation.
    pub(crate) revision: u32,
}

impl App {
    pub(crate) fn cpu(&self) -> u64 {
        self.containers.iter().map(|c| c.cpu).sum()
    }

    pub(crate) fn memory(&self) -> u64 {
        self.containers.iter().map(|c| c.memory).sum()
    }

    pub(crate) fn rs_name(&self) -> String {
        format!("{}-{}", self.name, self.hash)
    }

    pub(crate) fn pod_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.extra_labels.clone();
        l.insert(self.selector.0.to_string(), self.selector.1.clone());
        l
    }
}

pub(crate) fn default_tolerations() -> Vec<Value> {
    vec![
        json!({"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300}),
        json!({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}),
    ]
}

/// What the DaemonSet controller adds to every pod it creates.
pub(crate) fn daemonset_tolerations(host_network: bool) -> Vec<Value> {
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

pub(crate) fn host_path_of(v: &Volume) -> &'static str {
    match v {
        Volume::HostPath { path, .. } => path,
        _ => "/",
    }
}

pub(crate) fn static_pod_command(component: &str) -> Vec<String> {
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
