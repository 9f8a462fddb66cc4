//! A generated pod as the API returns it: the spec its controller (or the kubelet, for static
//! pods) writes, the scheduler's binding and the kubelet's status.

use serde_json::{Map, Value, json};
use stepstone_core::inventory::MIRROR_ANNOTATION;

use super::{cpu_text, labels_value, mem_text, object, owner, scheduling_fields, sort_keys, ts};
use crate::app::{Container, Controller, Volume, daemonset_tolerations};
use crate::placement::PlacedFleet;
use crate::rng::Rng;
use crate::{CONTROL_PLANE_LABEL, HOSTNAME_LABEL};

impl PlacedFleet<'_> {
    pub(crate) fn pod_json(&self, pod_index: usize, rv: String) -> Value {
        let p = &self.pods[pod_index];
        let app = &self.apps[p.app_index];
        let node = p.node.map(|node_index| &self.nodes[node_index]);
        let mut rng =
            Rng(self.spec.seed ^ u64::from_str_radix(&p.uid[..8], 16).unwrap_or(0) ^ (pod_index as u64) << 20);
        let mut labels = app.pod_labels();
        let mut annotations = app.pod_annotations.clone();
        let mut meta = Map::new();
        let mut containers = Vec::new();
        let image_of_node = |c: &Container| -> String {
            // kube-proxy pods run the image of their node's kubelet (updated with the node).
            if app.name == "kube-proxy" && app.controller == Controller::DaemonSet {
                node.map(|n| format!("registry.k8s.io/kube-proxy:{}", n.kubelet)).unwrap_or_else(|| c.image.clone())
            } else {
                c.image.clone()
            }
        };
        // The service-account token volume that admission adds to every pod is left out: it is
        // the same on every pod and says nothing a plan or a drain needs.
        let with_token = !matches!(app.controller, Controller::Static);
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
                Volume::EmptyDir { name, medium } => match medium {
                    Some(m) => json!({"emptyDir": {"medium": m}, "name": name}),
                    None => json!({"emptyDir": {}, "name": name}),
                },
                Volume::HostPath { name, path, kind } => {
                    json!({"hostPath": {"path": path, "type": kind}, "name": name})
                }
                Volume::ClaimTemplate { name } => {
                    json!({"name": name, "persistentVolumeClaim": {"claimName": format!("{name}-{}", p.name)}})
                }
                Volume::ConfigMap { name, config_map } => {
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
        scheduling_fields(&mut spec, app);
        let mut affinity = Map::new();
        if app.controller == Controller::DaemonSet {
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
        match app.controller {
            Controller::Static => {
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
            Controller::Deployment => {
                labels.insert("pod-template-hash".into(), app.hash.clone());
                meta.insert("generateName".into(), json!(format!("{}-", app.rs_name())));
                meta.insert("ownerReferences".into(), owner("apps/v1", "ReplicaSet", &app.rs_name(), &app.rs_uid));
            }
            Controller::StatefulSet => {
                let ordinal = p.ordinal.unwrap_or(0);
                labels.insert("apps.kubernetes.io/pod-index".into(), ordinal.to_string());
                labels.insert("controller-revision-hash".into(), format!("{}-{}", app.name, app.hash));
                labels.insert("statefulset.kubernetes.io/pod-name".into(), p.name.clone());
                meta.insert("generateName".into(), json!(format!("{}-", app.name)));
                meta.insert("ownerReferences".into(), owner("apps/v1", "StatefulSet", &app.name, &app.uid));
                spec["hostname"] = json!(p.name);
                spec["subdomain"] = json!(format!("{}-headless", app.name));
            }
            Controller::DaemonSet => {
                labels.insert("controller-revision-hash".into(), app.hash.clone());
                labels.insert("pod-template-generation".into(), app.revision.to_string());
                meta.insert("generateName".into(), json!(format!("{}-", app.name)));
                meta.insert("ownerReferences".into(), owner("apps/v1", "DaemonSet", &app.name, &app.uid));
            }
            Controller::Bare => {}
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
}
