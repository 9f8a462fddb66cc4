//! The application catalogue: what runs on a generated fleet. Cluster add-ons (static
//! control-plane pods, kube-proxy, the CNI and CSI DaemonSets, CoreDNS), the showcase
//! workloads that exercise every drain rule and budget shape, and the generic services sized to
//! reach the spec's CPU utilisation.

use std::collections::BTreeMap;

use serde_json::json;

use crate::app::*;
use crate::placement::{NodeModel, Placer};
use crate::{CONTROL_PLANE_LABEL, GIB, INSTANCE_TYPE_LABEL, MIB, NAME_LABEL};

impl Placer<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn app(
        &mut self,
        controller: Controller,
        namespace: &str,
        name: &str,
        selector: (&'static str, &str),
        replicas: usize,
        containers: Vec<Container>,
        created: i64,
    ) -> App {
        let hash = match controller {
            Controller::Deployment | Controller::StatefulSet | Controller::DaemonSet => self.rng.suffix(10),
            _ => String::new(),
        };
        App {
            controller,
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

    pub(crate) fn add_system_apps(&mut self) {
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
            let mut a =
                self.app(Controller::Static, "kube-system", component, ("component", component), 0, vec![c], born);
            a.extra_labels.insert("tier".into(), "control-plane".into());
            a.priority_class = Some(("system-node-critical", 2_000_001_000));
            a.host_network = true;
            a.tolerations = vec![json!({"effect": "NoExecute", "operator": "Exists"})];
            a.volumes = match component {
                "etcd" => vec![
                    Volume::HostPath {
                        name: "etcd-certs",
                        path: "/etc/kubernetes/pki/etcd",
                        kind: "DirectoryOrCreate",
                    },
                    Volume::HostPath { name: "etcd-data", path: "/var/lib/etcd", kind: "DirectoryOrCreate" },
                ],
                "kube-scheduler" => vec![Volume::HostPath {
                    name: "kubeconfig",
                    path: "/etc/kubernetes/scheduler.conf",
                    kind: "FileOrCreate",
                }],
                _ => {
                    vec![Volume::HostPath { name: "k8s-certs", path: "/etc/kubernetes/pki", kind: "DirectoryOrCreate" }]
                }
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
        let mut a =
            self.app(Controller::DaemonSet, "kube-system", "kube-proxy", ("k8s-app", "kube-proxy"), 0, vec![c], born);
        a.priority_class = Some(("system-node-critical", 2_000_001_000));
        a.host_network = true;
        a.tolerations = everything.clone();
        a.service_account = "kube-proxy".into();
        a.volumes = vec![
            Volume::ConfigMap { name: "kube-proxy", config_map: "kube-proxy".into() },
            Volume::HostPath { name: "lib-modules", path: "/lib/modules", kind: "" },
        ];
        self.apps.push(a);

        let mut c = Container::new("calico-node", "quay.io/calico/node:v3.29.3", 250, 0);
        c.mounts = vec![("var-run-calico", "/var/run/calico"), ("cni-net-dir", "/host/etc/cni/net.d")];
        let mut a = self.app(
            Controller::DaemonSet,
            "calico-system",
            "calico-node",
            ("k8s-app", "calico-node"),
            0,
            vec![c],
            born,
        );
        a.priority_class = Some(("system-node-critical", 2_000_001_000));
        a.host_network = true;
        a.tolerations = everything.clone();
        a.service_account = "calico-node".into();
        a.volumes = vec![
            Volume::HostPath { name: "var-run-calico", path: "/var/run/calico", kind: "DirectoryOrCreate" },
            Volume::HostPath { name: "cni-net-dir", path: "/etc/cni/net.d", kind: "" },
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
            Controller::DaemonSet,
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
            Volume::HostPath {
                name: "plugin-dir",
                path: "/var/lib/kubelet/plugins/lvm-localpv/",
                kind: "DirectoryOrCreate",
            },
            Volume::HostPath { name: "device-dir", path: "/dev", kind: "Directory" },
        ];
        self.apps.push(a);

        let mut c = Container::new("node-exporter", "quay.io/prometheus/node-exporter:v1.9.1", 102, 180 * MIB);
        c.ports = vec![("metrics", 9100)];
        c.mounts = vec![("proc", "/host/proc"), ("sys", "/host/sys"), ("root", "/host/root")];
        let mut a = self.app(
            Controller::DaemonSet,
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
            Volume::HostPath { name: "proc", path: "/proc", kind: "" },
            Volume::HostPath { name: "sys", path: "/sys", kind: "" },
            Volume::HostPath { name: "root", path: "/", kind: "" },
        ];
        self.apps.push(a);

        let mut c =
            Container::new("coredns", &format!("registry.k8s.io/coredns/coredns:{}", spec.coredns_tag), 100, 70 * MIB);
        c.args = vec!["-conf".into(), "/etc/coredns/Corefile".into()];
        c.ports = vec![("dns", 53), ("dns-tcp", 53), ("metrics", 9153)];
        c.mounts = vec![("config-volume", "/etc/coredns")];
        let mut a =
            self.app(Controller::Deployment, "kube-system", "coredns", ("k8s-app", "kube-dns"), 2, vec![c], born);
        a.priority_class = Some(("system-cluster-critical", 2_000_000_000));
        a.service_account = "coredns".into();
        a.tolerations = vec![
            json!({"key": "CriticalAddonsOnly", "operator": "Exists"}),
            json!({"effect": "NoSchedule", "key": CONTROL_PLANE_LABEL}),
            json!({"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300}),
            json!({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}),
        ];
        a.volumes = vec![Volume::ConfigMap { name: "config-volume", config_map: "coredns".into() }];
        a.pdb = Some(BudgetDef {
            name: "coredns".into(),
            min_available: Some(json!(1)),
            max_unavailable: None,
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("controller", "registry.k8s.io/ingress-nginx/controller:v1.12.1", 500, 512 * MIB);
        c.ports = vec![("http", 80), ("https", 443)];
        let mut a = self.app(
            Controller::Deployment,
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
        a.pdb = Some(BudgetDef {
            name: "ingress-nginx-controller".into(),
            min_available: Some(json!(2)),
            max_unavailable: None,
            always_allow: false,
        });
        self.apps.push(a);
    }

    /// Named workloads that exercise every drain rule and PDB shape.
    pub(crate) fn add_showcase_apps(&mut self) {
        let born = self.cluster_created();
        let newest = self.spec.generations.last().map(|g| g.name.clone()).unwrap_or_default();
        let day = 86_400;

        let mut c = Container::new("web", "harbor.example.internal/shop/web:4.12.0", 500, GIB);
        c.ports = vec![("http", 8080)];
        let mut a = self.app(Controller::Deployment, "prod", "web", (NAME_LABEL, "web"), 6, vec![c], born + 30 * day);
        a.pdb = Some(BudgetDef {
            name: "web".into(),
            min_available: Some(json!("50%")),
            max_unavailable: None,
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("api", "harbor.example.internal/shop/api:2.31.4", 1000, 2 * GIB);
        c.ports = vec![("http", 8080)];
        c.mounts = vec![("cache", "/var/cache/api")];
        let mut a = self.app(Controller::Deployment, "prod", "api", (NAME_LABEL, "api"), 4, vec![c], born + 31 * day);
        a.volumes = vec![Volume::EmptyDir { name: "cache", medium: None }];
        a.pdb = Some(BudgetDef {
            name: "api".into(),
            min_available: None,
            max_unavailable: Some(json!(1)),
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("worker", "harbor.example.internal/shop/worker:2.31.4", 1500, 3 * GIB);
        c.mounts = vec![("scratch", "/scratch")];
        let mut a =
            self.app(Controller::Deployment, "prod", "worker", (NAME_LABEL, "worker"), 8, vec![c], born + 31 * day);
        a.volumes = vec![Volume::EmptyDir { name: "scratch", medium: None }];
        // Scratch data is disposable: the owners say so explicitly.
        a.pod_annotations.insert("cluster-autoscaler.kubernetes.io/safe-to-evict".into(), "true".into());
        a.pdb = Some(BudgetDef {
            name: "worker".into(),
            min_available: None,
            max_unavailable: Some(json!("25%")),
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("checkout", "harbor.example.internal/shop/checkout:1.8.2", 750, 1536 * MIB);
        c.ports = vec![("http", 8080)];
        let mut a =
            self.app(Controller::Deployment, "prod", "checkout", (NAME_LABEL, "checkout"), 3, vec![c], born + 40 * day);
        a.pdb = Some(BudgetDef {
            name: "checkout".into(),
            min_available: None,
            max_unavailable: Some(json!(1)),
            always_allow: true,
        });
        self.apps.push(a);

        let mut c = Container::new("redis", "docker.io/library/redis:7.4.2", 500, 4 * GIB);
        c.ports = vec![("redis", 6379)];
        let mut a =
            self.app(Controller::Deployment, "prod", "redis", (NAME_LABEL, "redis"), 2, vec![c], born + 32 * day);
        a.pdb = Some(BudgetDef {
            name: "redis-pdb".into(),
            min_available: Some(json!(2)),
            max_unavailable: None,
            always_allow: false,
        });
        self.apps.push(a);

        let mut c = Container::new("kafka", "docker.io/bitnami/kafka:3.9.0", 2000, 8 * GIB);
        c.ports = vec![("client", 9092), ("controller", 9093)];
        c.mounts = vec![("data", "/bitnami/kafka")];
        let mut a =
            self.app(Controller::StatefulSet, "data", "kafka", (NAME_LABEL, "kafka"), 3, vec![c], born + 60 * day);
        a.volumes = vec![Volume::ClaimTemplate { name: "data" }];
        a.pin_to_node = true;
        a.anti_affinity = true;
        a.grace = 60;
        a.pdb = Some(BudgetDef {
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
            self.app(Controller::StatefulSet, "monitoring", "loki", (NAME_LABEL, "loki"), 1, vec![c], born + 90 * day);
        a.volumes = vec![Volume::HostPath { name: "storage", path: "/srv/loki", kind: "DirectoryOrCreate" }];
        self.apps.push(a);

        let mut c = Container::new("inference", "harbor.example.internal/ml/inference:0.9.3", 4000, 16 * GIB);
        c.ports = vec![("grpc", 9000)];
        let mut a = self.app(
            Controller::Deployment,
            "ml",
            "inference",
            (NAME_LABEL, "inference"),
            2,
            vec![c],
            born + 120 * day,
        );
        a.node_selector.insert(INSTANCE_TYPE_LABEL.into(), newest);
        self.apps.push(a);

        if self.spec.apps.unmanaged_pod {
            let c = Container::new("shell", "docker.io/nicolaka/netshoot:v0.13", 100, 128 * MIB);
            let a = self.app(
                Controller::Bare,
                "default",
                "debug-shell",
                ("run", "debug-shell"),
                1,
                vec![c],
                self.now - 3 * day,
            );
            self.apps.push(a);
        }
    }

    /// Generic services sized so that worker CPU requests reach the target utilisation.
    pub(crate) fn add_services(&mut self) {
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
        let workers: Vec<&NodeModel> = self.nodes.iter().filter(|n| !n.control_plane).collect();
        let worker_cpu: u64 = workers.iter().map(|n| n.allocatable_cpu()).sum();
        let worker_mem: u64 = workers.iter().map(|n| n.allocatable_memory()).sum();
        let per_worker_ds_cpu: u64 =
            self.apps.iter().filter(|a| a.controller == Controller::DaemonSet).map(App::cpu).sum();
        let fixed_cpu: u64 = per_worker_ds_cpu * workers.len() as u64
            + self
                .apps
                .iter()
                .filter(|a| matches!(a.controller, Controller::Deployment | Controller::StatefulSet | Controller::Bare))
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
            let mut a = self.app(Controller::Deployment, team, &name, (NAME_LABEL, &name), replicas, vec![c], created);
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
                a.pdb = Some(BudgetDef { name: name.clone(), min_available, max_unavailable, always_allow: false });
            }
            self.apps.push(a);
        }
    }
}
