//! A builder of small hand-picked fleets for tests: a few workers, Deployments, DaemonSets,
//! StatefulSets on local volumes, budgets and mirror pods, with fixed names and UIDs derived from them.

use serde_json::{Value, json};

/// A small fleet built object by object for tests: worker nodes, then workloads that the lab's
/// controllers create pods for and its scheduler places (the builder writes no pods of
/// controllers itself), budgets, and static-pod mirrors.
#[derive(Debug, Default, Clone)]
pub struct FleetBuilder {
    items: Vec<Value>,
}

/// Entry point of the test-fleet builder: `Fleet::builder().worker("w1").deployment(…).build()`.
pub struct Fleet;

impl Fleet {
    pub fn builder() -> FleetBuilder {
        FleetBuilder::default()
    }
}

impl FleetBuilder {
    /// A Ready worker with 16 CPUs and 64 GiB.
    pub fn worker(mut self, name: &str) -> Self {
        self.items.push(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": name, "uid": format!("uid-node-{name}"), "creationTimestamp": "2026-01-05T09:00:00Z",
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": "dell-r650", "stepstone.io/cgroup-version": "v2"}
            },
            "spec": {},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": name}],
                "allocatable": {"cpu": "15500m", "memory": "64000Mi", "pods": "110", "ephemeral-storage": "100Gi"},
                "capacity": {"cpu": "16", "memory": "65536Mi", "pods": "110", "ephemeral-storage": "100Gi"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "lastHeartbeatTime": "2026-01-05T09:00:00Z", "lastTransitionTime": "2026-01-05T09:00:00Z"}],
                "nodeInfo": {"architecture": "amd64", "containerRuntimeVersion": "containerd://1.7.27",
                    "kernelVersion": "6.8.0-45-generic", "kubeProxyVersion": "", "kubeletVersion": "v1.34.6",
                    "operatingSystem": "linux", "osImage": "Ubuntu 24.04.1 LTS"}
            }
        }));
        self
    }

    /// A Deployment of `replicas` pods labelled `app=<name>`; `volumes` go into the pod template.
    pub fn deployment(mut self, ns: &str, name: &str, replicas: i64, volumes: Value) -> Self {
        self.items.push(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-deploy-{name}"),
                "creationTimestamp": "2026-01-05T09:00:00Z", "generation": 1, "labels": {"app": name}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": app_template(name, app_container(name, "500m", "512Mi"), Some(volumes))
            }
        }));
        self
    }

    /// A DaemonSet `name` in kube-system (one pod per node).
    pub fn daemonset(mut self, name: &str) -> Self {
        self.items.push(json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "kube-system", "uid": format!("uid-ds-{name}"),
                "creationTimestamp": "2026-01-05T09:00:00Z", "generation": 1},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [app_container(name, "100m", "128Mi")]}
                }
            }
        }));
        self
    }

    /// A StatefulSet of one pod per entry of `nodes`, each with a claim `data-<name>-<i>` from
    /// its `volumeClaimTemplates`, and for each a local PersistentVolume on `nodes[i]` reserved
    /// for that claim: the lab's controller creates the claims, its binder binds them, and its
    /// scheduler keeps each pod on its volume's node.
    pub fn local_volume_statefulset(self, ns: &str, name: &str, nodes: &[&str]) -> Self {
        self.local_volume_statefulset_on(ns, name, nodes, "kubernetes.io/hostname")
    }

    /// As [`FleetBuilder::local_volume_statefulset`], with volume `i`'s node affinity on `key In
    /// (nodes[i])` (`openebs.io/nodename` for OpenEBS LVM volumes; the node must carry that label,
    /// see [`FleetBuilder::label`]).
    pub fn local_volume_statefulset_on(mut self, ns: &str, name: &str, nodes: &[&str], key: &str) -> Self {
        let mut data_container = app_container(name, "500m", "512Mi");
        data_container["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
        self.items.push(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-sts-{name}"),
                "creationTimestamp": "2026-01-05T09:00:00Z", "generation": 1, "labels": {"app": name}},
            "spec": {
                "replicas": nodes.len(),
                "serviceName": name,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": name}},
                "template": app_template(name, data_container, None),
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-storage",
                        "resources": {"requests": {"storage": "10Gi"}}}
                }]
            }
        }));
        for (i, node) in nodes.iter().enumerate() {
            self.items.push(json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": format!("local-{name}-{i}"), "uid": format!("uid-pv-{name}-{i}"),
                    "creationTimestamp": "2026-01-05T09:00:00Z"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"},
                    "storageClassName": "local-storage", "persistentVolumeReclaimPolicy": "Retain",
                    "local": {"path": format!("/mnt/disks/{name}-{i}")},
                    "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns,
                        "name": format!("data-{name}-{i}")},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": key, "operator": "In", "values": [node]}]}]}}
                }
            }));
        }
        self
    }

    /// Label the node `node` added before (as the kubelet does with a CSI driver's topology key).
    pub fn label(mut self, node: &str, key: &str, value: &str) -> Self {
        for item in &mut self.items {
            if item["kind"] == "Node" && item["metadata"]["name"] == node {
                item["metadata"]["labels"][key] = json!(value);
            }
        }
        self
    }

    /// A static pod's API mirror on `node`.
    pub fn mirror_pod(mut self, name: &str, node: &str) -> Self {
        self.items.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{name}-{node}"), "namespace": "kube-system", "uid": format!("uid-mirror-{name}-{node}"),
                "creationTimestamp": "2026-01-05T09:00:00Z",
                "annotations": {"kubernetes.io/config.mirror": "abc", "kubernetes.io/config.source": "file"},
                "labels": {"component": name, "tier": "control-plane"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": format!("uid-node-{node}"), "controller": true}]},
            "spec": {"nodeName": node, "priority": 2000001000,
                "containers": [{"name": name, "image": format!("registry.k8s.io/{name}:v1.34.6")}]},
            "status": {"phase": "Running", "startTime": "2026-01-05T09:00:00Z",
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}
        }));
        self
    }

    /// A PodDisruptionBudget over `app=<app>`.
    pub fn pdb(self, ns: &str, name: &str, app: &str, min_available: i64) -> Self {
        self.budget(ns, name, app, "minAvailable", min_available)
    }

    /// A PodDisruptionBudget over `app=<app>` with `maxUnavailable`.
    pub fn pdb_max_unavailable(self, ns: &str, name: &str, app: &str, max_unavailable: i64) -> Self {
        self.budget(ns, name, app, "maxUnavailable", max_unavailable)
    }

    /// A PodDisruptionBudget over `app=<app>` whose `limit` (`minAvailable` or `maxUnavailable`)
    /// is `value`.
    fn budget(mut self, ns: &str, name: &str, app: &str, limit: &str, value: i64) -> Self {
        self.items.push(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-pdb-{name}"), "generation": 1,
                "creationTimestamp": "2026-01-05T09:00:00Z"},
            "spec": {(limit): value, "selector": {"matchLabels": {"app": app}}}
        }));
        self
    }

    /// Add any object as it is (an unusual shape a test needs).
    pub fn object(mut self, item: Value) -> Self {
        self.items.push(item);
        self
    }

    /// The fleet as a `v1 List`.
    pub fn build(self) -> Value {
        json!({"apiVersion": "v1", "kind": "List", "items": self.items})
    }
}

/// The one container of an app's pods: `registry.local/<name>:1.0` with its requests.
fn app_container(name: &str, cpu: &str, memory: &str) -> Value {
    json!({"name": name, "image": format!("registry.local/{name}:1.0"),
        "resources": {"requests": {"cpu": cpu, "memory": memory}}})
}

/// The pod template of a Deployment or StatefulSet of `app=<name>`: `container`, 30 s to stop,
/// and `volumes` when given.
fn app_template(name: &str, container: Value, volumes: Option<Value>) -> Value {
    let mut template = json!({
        "metadata": {"labels": {"app": name}},
        "spec": {"terminationGracePeriodSeconds": 30, "containers": [container]}
    });
    if let Some(volumes) = volumes {
        template["spec"]["volumes"] = volumes;
    }
    template
}
