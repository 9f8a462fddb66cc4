//! The staging cluster to build before a production upgrade, derived from the production
//! inventory: control-plane hardware, one worker per hardware generation, the same add-on
//! versions, and the test matrix with a command for each test.

use std::collections::BTreeMap;

use serde::Serialize;
use stepstone_core::addons::{self, AddonData, ROLES, role_of};
use stepstone_core::inventory::{DEFAULT_GENERATION_LABELS, Inventory, Node, WorkloadKind};
use stepstone_core::path;
use stepstone_core::plan::WorkerStrategy;
use stepstone_core::plan::table::addon_line;
use stepstone_core::releases::ReleaseData;
use stepstone_core::snapshot::{image_name, image_tag};
use stepstone_core::version::{KubeVersion, VersionRequest};

use crate::RunbookError;
use crate::templates::Templates;

/// Control-plane nodes a staging cluster needs to rehearse a stacked-etcd upgrade with quorum.
pub const STAGING_CONTROL_PLANE_NODES: u32 = 3;

/// What the staging nodes of one kind must look like.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StagingNode {
    /// Suggested node name: generation, kernel and runtime, so the matrix output reads on its own.
    pub name: String,
    pub generation: String,
    /// How many production nodes this one stands for.
    pub production_nodes: usize,
    /// A production node to copy (hardware, BIOS, OS image).
    pub like: String,
    pub os_image: String,
    pub kernel: String,
    pub runtime: String,
    pub cgroup: String,
    pub kubelet: String,
    /// Other kernels/runtimes seen in this generation in production (drift to reproduce or fix).
    pub variants: Vec<String>,
    /// The node label that carries the generation, so workloads can target it.
    pub generation_label: Option<String>,
}

/// A cluster add-on (CNI, CSI, ingress, ...) to install at the production version.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Addon {
    pub role: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestCase {
    pub id: String,
    pub name: String,
    pub pass_when: String,
    /// Shell commands, run from a workstation with the staging kubeconfig unless marked.
    pub command: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StagingDesign {
    pub source: String,
    pub production_version: Option<String>,
    pub target: String,
    pub control_plane: StagingControlPlane,
    pub workers: Vec<StagingNode>,
    pub addons: Vec<Addon>,
    /// The add-ons stepstone's table knows, judged for every hop to the target: one line each.
    pub compatibility: Vec<String>,
    pub tests: Vec<TestCase>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StagingControlPlane {
    pub count: u32,
    pub names: Vec<String>,
    pub node: StagingNode,
}

/// Where a role sorts: as [`ROLES`] lists them, unknown system add-ons (`other`) last.
fn role_rank(role: &str) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap_or(ROLES.len())
}

fn is_system_namespace(ns: &str) -> bool {
    ns == "kube-system"
        || ns.ends_with("-system")
        || ns.starts_with("ingress")
        || matches!(ns, "monitoring" | "tigera-operator" | "rook-ceph" | "metallb-system" | "cert-manager")
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_ascii_lowercase().chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches(['-', '.']).to_string()
}

/// `5.15.0-105-generic` -> `5.15`.
fn kernel_short(kernel: &str) -> String {
    kernel.split(['.', '-']).take(2).collect::<Vec<_>>().join(".")
}

/// `containerd://1.7.22` -> `containerd-1.7`.
fn runtime_short(node: &Node) -> String {
    let (name, version) = node.runtime();
    let name = if name.is_empty() { "runtime" } else { name };
    format!("{}-{}", name, version.split('.').take(2).collect::<Vec<_>>().join("."))
}

fn most_common<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    // Highest count wins; ties go to the smallest value so the choice is stable.
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(v, _)| v.to_string())
        .unwrap_or_default()
}

fn generation_label(nodes: &[&Node]) -> Option<String> {
    let node = nodes.first()?;
    DEFAULT_GENERATION_LABELS
        .iter()
        .map(|k| k.to_string())
        .chain(node.labels.keys().cloned())
        .find(|k| nodes.iter().all(|n| n.labels.get(k) == Some(&n.generation)))
}

fn describe(nodes: &[&Node], name_prefix: &str) -> StagingNode {
    let generation = nodes.first().map(|n| n.generation.clone()).unwrap_or_default();
    let kernel = most_common(nodes.iter().map(|n| n.kernel_version.as_str()));
    let runtime = most_common(nodes.iter().map(|n| n.container_runtime.as_str()));
    let like = nodes
        .iter()
        .find(|n| n.kernel_version == kernel && n.container_runtime == runtime)
        .or(nodes.first())
        .copied()
        .expect("a generation has nodes");
    let mut variants: Vec<String> = nodes
        .iter()
        .filter(|n| n.kernel_version != kernel || n.container_runtime != runtime)
        .map(|n| format!("{}: kernel {}, {}", n.name, n.kernel_version, n.container_runtime))
        .collect();
    variants.sort();
    let mut name = slug(&format!("{name_prefix}-{generation}-k{}-{}", kernel_short(&kernel), runtime_short(like)));
    name.truncate(63);
    StagingNode {
        name: name.trim_end_matches(['-', '.']).to_string(),
        generation,
        production_nodes: nodes.len(),
        like: like.name.clone(),
        os_image: like.os_image.clone(),
        kernel,
        runtime,
        cgroup: like.cgroup.map(|c| format!("{c:?}").to_lowercase()).unwrap_or_else(|| "unknown".to_string()),
        kubelet: like.kubelet_version.to_string(),
        variants,
        generation_label: generation_label(nodes),
    }
}

fn addons(inventory: &Inventory) -> Vec<Addon> {
    let mut out = Vec::new();
    for w in &inventory.workloads {
        if !matches!(w.kind, WorkloadKind::Deployment | WorkloadKind::DaemonSet | WorkloadKind::StatefulSet) {
            continue;
        }
        for image in &w.images {
            let name = image_name(image);
            if name.ends_with("/kube-proxy") || name == "kube-proxy" {
                continue; // moves with the cluster version
            }
            let role = match role_of(image) {
                Some(r) => r,
                None if is_system_namespace(&w.namespace) => "other",
                None => continue,
            };
            out.push(Addon {
                role: role.to_string(),
                kind: w.kind.as_str().to_string(),
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                image: image.clone(),
                version: image_tag(image).to_string(),
            });
        }
    }
    out.sort_by(|a, b| {
        role_rank(&a.role)
            .cmp(&role_rank(&b.role))
            .then_with(|| a.namespace.cmp(&b.namespace))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.image.cmp(&b.image))
    });
    out.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name && a.image == b.image);
    out
}

const PROBE_IMAGE: &str = "busybox:1.36";

fn tests(cp: &StagingControlPlane, workers: &[StagingNode], addons: &[Addon], target: &str) -> Vec<TestCase> {
    let cp1 = cp.names.first().cloned().unwrap_or_default();
    let first = workers.first().map(|w| w.name.clone()).unwrap_or_else(|| cp1.clone());
    let second = workers.get(1).map(|w| w.name.clone()).unwrap_or_else(|| cp1.clone());
    let mut t = Vec::new();

    t.push(TestCase {
        id: "upgrade".into(),
        name: "kubeadm upgrade runs clean and every node is Ready".into(),
        pass_when: format!("kubeadm reports success; every node Ready with kubelet {target}"),
        command: format!(
            "# on {cp1}, as root: the same package steps as the production runbook, then\n\
             kubeadm upgrade plan {target}\n\
             kubeadm upgrade apply {target}\n\
             # after every node has been upgraded with the runbook's steps:\n\
             kubectl wait --for=condition=Ready nodes --all --timeout=10m\n\
             kubectl get nodes -o jsonpath='{{range .items[*]}}{{.metadata.name}} {{.status.nodeInfo.kubeletVersion}}{{\"\\n\"}}{{end}}' | awk '$2 != \"{target}\" {{ print \"FAIL: \" $1 \" runs \" $2 }}'"
        ),
    });

    let mut sched = String::new();
    for w in workers {
        let pod = slug(&format!("stepstone-sched-{}", w.generation));
        let (key, value) = match &w.generation_label {
            Some(k) => (k.clone(), w.generation.clone()),
            None => ("kubernetes.io/hostname".to_string(), w.name.clone()),
        };
        // The label value comes from the cluster: JSON-encoded, then quoted as one shell word.
        let mut selector = serde_json::Map::new();
        selector.insert(key, serde_json::Value::String(value));
        let overrides = serde_json::json!({"apiVersion": "v1", "spec": {"nodeSelector": selector}}).to_string();
        let overrides = crate::shell::quote(&overrides);
        sched.push_str(&format!(
            "kubectl run {pod} --image={PROBE_IMAGE} --restart=Never --overrides={overrides} -- sleep 300\n\
             kubectl wait --for=condition=Ready pod/{pod} --timeout=2m\n"
        ));
    }
    let pods: Vec<String> = workers.iter().map(|w| slug(&format!("stepstone-sched-{}", w.generation))).collect();
    sched.push_str(&format!(
        "kubectl get pods -o wide | grep stepstone-sched-\nkubectl delete pod {} --ignore-not-found --wait=false",
        pods.join(" ")
    ));
    t.push(TestCase {
        id: "scheduling".into(),
        name: "pods schedule on every hardware generation".into(),
        pass_when: "one pod Running on each generation's node".into(),
        command: sched,
    });

    t.push(TestCase {
        id: "network".into(),
        name: "pod-to-pod traffic across nodes".into(),
        pass_when: format!("the pod on {first} fetches a file from the pod on {second}"),
        command: format!(
            "kubectl run stepstone-net-srv --image={PROBE_IMAGE} --restart=Never --overrides='{{\"apiVersion\":\"v1\",\"spec\":{{\"nodeName\":\"{second}\"}}}}' -- httpd -f -p 8080 -h /etc\n\
             kubectl run stepstone-net-cli --image={PROBE_IMAGE} --restart=Never --overrides='{{\"apiVersion\":\"v1\",\"spec\":{{\"nodeName\":\"{first}\"}}}}' -- sleep 600\n\
             kubectl wait --for=condition=Ready pod/stepstone-net-srv pod/stepstone-net-cli --timeout=2m\n\
             kubectl exec stepstone-net-cli -- wget -qO- -T 5 \"http://$(kubectl get pod stepstone-net-srv -o jsonpath='{{.status.podIP}}'):8080/hostname\"\n\
             kubectl delete pod stepstone-net-srv stepstone-net-cli --ignore-not-found --wait=false"
        ),
    });

    let pvc_pod = |name: &str, script: &str| {
        format!(
            "kubectl apply -f - <<'EOF'\n\
             apiVersion: v1\n\
             kind: Pod\n\
             metadata:\n  name: {name}\n\
             spec:\n  restartPolicy: Never\n  nodeSelector:\n    kubernetes.io/hostname: {first}\n  \
             containers:\n  - name: c\n    image: {PROBE_IMAGE}\n    command: [\"sh\", \"-c\", \"{script}\"]\n    \
             volumeMounts:\n    - name: data\n      mountPath: /data\n  \
             volumes:\n  - name: data\n    persistentVolumeClaim:\n      claimName: stepstone-pvc\n\
             EOF\n"
        )
    };
    t.push(TestCase {
        id: "storage".into(),
        name: "PVCs bind and data persists across the upgrade".into(),
        pass_when: "the claim is Bound and the reader prints the line written before the upgrade".into(),
        command: format!(
            "# before the upgrade\n\
             kubectl apply -f - <<'EOF'\n\
             apiVersion: v1\n\
             kind: PersistentVolumeClaim\n\
             metadata:\n  name: stepstone-pvc\n\
             spec:\n  accessModes: [\"ReadWriteOnce\"]\n  resources:\n    requests:\n      storage: 1Gi\n\
             EOF\n\
             {}\
             kubectl wait --for=jsonpath='{{.status.phase}}'=Succeeded pod/stepstone-pvc-writer --timeout=3m\n\
             kubectl get pvc stepstone-pvc -o jsonpath='{{.status.phase}}{{\"\\n\"}}'\n\
             # after the upgrade\n\
             {}\
             kubectl wait --for=jsonpath='{{.status.phase}}'=Succeeded pod/stepstone-pvc-reader --timeout=3m\n\
             kubectl logs stepstone-pvc-reader",
            pvc_pod("stepstone-pvc-writer", "date > /data/proof && cat /data/proof"),
            pvc_pod("stepstone-pvc-reader", "cat /data/proof"),
        ),
    });

    let ingress = addons.iter().find(|a| a.role == "ingress");
    let class = match ingress {
        Some(a) if a.image.contains("traefik") => "traefik",
        Some(a) if a.image.contains("haproxy") => "haproxy",
        Some(a) if a.image.contains("contour") || a.image.contains("envoy") => "contour",
        _ => "nginx",
    };
    t.push(TestCase {
        id: "ingress".into(),
        name: "external traffic routes through the ingress controller".into(),
        pass_when: "curl through the ingress address returns the backend's hostname file".into(),
        command: format!(
            "kubectl create deployment stepstone-echo --image={PROBE_IMAGE} -- httpd -f -p 8080 -h /etc\n\
             kubectl expose deployment stepstone-echo --port=80 --target-port=8080\n\
             kubectl create ingress stepstone-echo --class={class} --rule='stepstone-echo.staging.test/hostname=stepstone-echo:80'\n\
             kubectl rollout status deployment/stepstone-echo --timeout=2m\n\
             sleep 20\n\
             INGRESS_IP=$(kubectl get ingress stepstone-echo -o jsonpath='{{.status.loadBalancer.ingress[0].ip}}')\n\
             curl -fsS --resolve \"stepstone-echo.staging.test:80:$INGRESS_IP\" http://stepstone-echo.staging.test/hostname\n\
             kubectl delete ingress/stepstone-echo service/stepstone-echo deployment/stepstone-echo --wait=false"
        ),
    });

    t.push(TestCase {
        id: "dns".into(),
        name: "CoreDNS resolves internal names".into(),
        pass_when: "nslookup answers for kubernetes.default and kube-dns.kube-system".into(),
        command: format!(
            "kubectl run stepstone-dns --image={PROBE_IMAGE} --restart=Never --overrides='{{\"apiVersion\":\"v1\",\"spec\":{{\"nodeName\":\"{first}\"}}}}' -- sleep 300\n\
             kubectl wait --for=condition=Ready pod/stepstone-dns --timeout=2m\n\
             kubectl exec stepstone-dns -- nslookup kubernetes.default\n\
             kubectl exec stepstone-dns -- nslookup kube-dns.kube-system\n\
             kubectl delete pod stepstone-dns --wait=false"
        ),
    });

    let plugins: Vec<&Addon> = addons.iter().filter(|a| a.role == "device-plugin").collect();
    let mut dev = String::new();
    for p in &plugins {
        dev.push_str(&format!(
            "kubectl -n {} rollout status {}/{} --timeout=2m\n",
            p.namespace,
            short_kind(&p.kind),
            p.name
        ));
    }
    dev.push_str(
        "kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{\"\\t\"}{.status.allocatable}{\"\\n\"}{end}' | grep -E '[a-z0-9.-]+\\.[a-z]+/[a-z0-9_.-]+'",
    );
    t.push(TestCase {
        id: "devices".into(),
        name: "device plugins register their devices".into(),
        pass_when: if plugins.is_empty() {
            "production runs no device plugin: nothing should be listed".into()
        } else {
            format!(
                "{} ready, and each node of their generation lists its extended resources",
                plugins.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect::<Vec<_>>().join(", ")
            )
        },
        command: dev,
    });

    let prom = addons
        .iter()
        .find(|a| a.role == "monitoring" && image_name(&a.image).ends_with("prometheus") && a.kind != "DaemonSet");
    t.push(TestCase {
        id: "monitoring".into(),
        name: "monitoring scrapes every target".into(),
        pass_when: "every active target reports health up".into(),
        command: match prom {
            Some(p) => format!(
                "kubectl -n {ns} port-forward {kind}/{name} 9090:9090 >/dev/null &\n\
                 sleep 3\n\
                 curl -s http://127.0.0.1:9090/api/v1/targets | grep -o '\"health\":\"[a-z]*\"' | sort | uniq -c\n\
                 kill %1",
                ns = p.namespace,
                kind = short_kind(&p.kind),
                name = p.name
            ),
            None => "# no Prometheus found in production: use your monitoring's own target list, e.g.\n\
                     kubectl get --raw /metrics | head -n 5"
                .to_string(),
        },
    });
    t
}

fn short_kind(kind: &str) -> &'static str {
    WorkloadKind::from_kind(kind).map(WorkloadKind::short).unwrap_or("deploy")
}

/// Derive the staging design from the production inventory, for an upgrade to `target`.
pub fn staging_design(inventory: &Inventory, target: &KubeVersion) -> StagingDesign {
    let generations = inventory.generations();
    let cp_nodes: Vec<&Node> = inventory.control_plane_nodes().collect();
    let cp_generation = most_common(cp_nodes.iter().map(|n| n.generation.as_str()));
    let cp_like: Vec<&Node> = cp_nodes.iter().filter(|n| n.generation == cp_generation).copied().collect();
    let mut notes = Vec::new();
    let cp_node = if cp_like.is_empty() {
        notes.push(
            "production has no control-plane node in the inventory: use the newest hardware generation".to_string(),
        );
        let newest: Vec<&Node> = generations.values().next_back().cloned().unwrap_or_default();
        if newest.is_empty() { None } else { Some(describe(&newest, "stg-cp")) }
    } else {
        Some(describe(&cp_like, "stg-cp"))
    };
    if cp_nodes.iter().any(|n| n.generation != cp_generation) {
        notes.push(format!(
            "production control-plane nodes span several generations; staging copies {cp_generation}, the most common"
        ));
    }
    let cp_node = cp_node.unwrap_or_else(|| StagingNode {
        name: "stg-cp".into(),
        generation: String::new(),
        production_nodes: 0,
        like: String::new(),
        os_image: String::new(),
        kernel: String::new(),
        runtime: String::new(),
        cgroup: String::new(),
        kubelet: String::new(),
        variants: vec![],
        generation_label: None,
    });
    let names = (1..=STAGING_CONTROL_PLANE_NODES).map(|i| format!("stg-cp-{i}")).collect();
    let control_plane = StagingControlPlane {
        count: STAGING_CONTROL_PLANE_NODES,
        names,
        node: StagingNode { production_nodes: cp_nodes.len(), ..cp_node },
    };
    let workers: Vec<StagingNode> = generations
        .values()
        .filter_map(|nodes| {
            let ws: Vec<&Node> = nodes.iter().filter(|n| !n.is_control_plane()).copied().collect();
            if ws.is_empty() { None } else { Some(describe(&ws, "stg")) }
        })
        .collect();
    for w in &workers {
        if !w.variants.is_empty() {
            notes.push(format!(
                "generation {} is not uniform in production ({} differ from {}); reproduce the variants or fix them first (stepstone drift)",
                w.generation,
                w.variants.len(),
                w.like
            ));
        }
    }
    let addons = addons(inventory);
    let compatibility = compatibility(inventory, target);
    let target = target.to_string();
    let tests = tests(&control_plane, &workers, &addons, &target);
    StagingDesign {
        source: inventory.source.clone(),
        production_version: inventory.control_plane_version().map(|v| v.to_string()),
        target,
        control_plane,
        workers,
        addons,
        compatibility,
        tests,
        notes,
    }
}

/// Each known add-on judged for the path production takes to `target` (none when there is no
/// path, e.g. production already runs it).
fn compatibility(inventory: &Inventory, target: &KubeVersion) -> Vec<String> {
    let request = VersionRequest::Exact(target.clone());
    let Ok(path) = path::upgrade_path(inventory, &request, WorkerStrategy::Lockstep, ReleaseData::embedded()) else {
        return Vec::new();
    };
    addons::check(inventory, &addons::hops_of(&path), AddonData::embedded()).addons.iter().map(addon_line).collect()
}

/// The staging design in Markdown (`staging.md`).
pub fn staging_markdown(design: &StagingDesign, templates: &Templates) -> Result<String, RunbookError> {
    templates.render("staging.md", design)
}

/// One line saying what the design asks for.
pub fn summary_line(design: &StagingDesign) -> String {
    format!(
        "{} control-plane nodes + {} workers (one per hardware generation), {} add-ons, {} tests; rehearse {} -> {}",
        design.control_plane.count,
        design.workers.len(),
        design.addons.len(),
        design.tests.len(),
        design.production_version.as_deref().unwrap_or("?"),
        design.target
    )
}
