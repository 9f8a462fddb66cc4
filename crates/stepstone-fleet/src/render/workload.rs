//! Generated PodDisruptionBudgets and controllers (Deployments, ReplicaSets, StatefulSets,
//! DaemonSets) with the statuses their controllers would report for the placed pods.

use serde_json::{Map, Value, json};
use stepstone_core::inventory::IntOrPercent;
use stepstone_core::pdb::{desired_healthy, disruptions_allowed};

use super::volume::{CLAIM_SIZE, STORAGE_CLASS};
use super::{cpu_text, labels_value, mem_text, owner, scheduling_fields, ts};
use crate::HOSTNAME_LABEL;
use crate::app::default_tolerations;
use crate::app::{Controller, Volume};
use crate::placement::PlacedFleet;

impl PlacedFleet<'_> {
    pub(crate) fn pdb_json(&self, app_index: usize, (pods, ready): (i64, i64), rv: String) -> Value {
        let app = &self.apps[app_index];
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
        let min = pdb.min_available.as_ref().and_then(IntOrPercent::parse);
        let max = pdb.max_unavailable.as_ref().and_then(IntOrPercent::parse);
        let expected = match (min, max) {
            (Some(IntOrPercent::Int(_)), None) => pods,
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
    pub(crate) fn template(&self, app_index: usize) -> Value {
        let app = &self.apps[app_index];
        let mut labels = app.pod_labels();
        if app.controller == Controller::Deployment {
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
                Volume::EmptyDir { name, .. } => Some(json!({"emptyDir": {}, "name": name})),
                Volume::HostPath { name, path, kind } => {
                    Some(json!({"hostPath": {"path": path, "type": kind}, "name": name}))
                }
                Volume::ClaimTemplate { .. } => None,
                Volume::ConfigMap { name, config_map } => {
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
        scheduling_fields(&mut spec, app);
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

    pub(crate) fn workload_meta(
        &self,
        app_index: usize,
        name: &str,
        uid: &str,
        created: i64,
        rv: String,
        generation: u32,
    ) -> Map<String, Value> {
        let app = &self.apps[app_index];
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

    pub(crate) fn selector(&self, app_index: usize) -> Value {
        let app = &self.apps[app_index];
        json!({"matchLabels": {app.selector.0: app.selector.1}})
    }

    pub(crate) fn deployment_json(&self, app_index: usize, (_, ready): (i64, i64), rv: String) -> Value {
        let app = &self.apps[app_index];
        let mut meta = self.workload_meta(app_index, &app.name, &app.uid, app.created, rv, app.revision);
        meta.insert("annotations".into(), json!({"deployment.kubernetes.io/revision": app.revision.to_string()}));
        let replicas = app.replicas as i64;
        let available_status = if ready >= replicas - replicas / 4 { "True" } else { "False" };
        let mut template = self.template(app_index);
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
                "selector": self.selector(app_index),
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
                "template": template
            },
            "status": status
        })
    }

    pub(crate) fn replicaset_json(&self, app_index: usize, (pods, ready): (i64, i64), rv: String) -> Value {
        let app = &self.apps[app_index];
        let mut meta = self.workload_meta(app_index, &app.rs_name(), &app.rs_uid, app.created + 30, rv, 1);
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
        let mut selector = self.selector(app_index);
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
            "spec": {"replicas": app.replicas, "selector": selector, "template": self.template(app_index)},
            "status": status
        })
    }

    pub(crate) fn statefulset_json(&self, app_index: usize, (pods, ready): (i64, i64), rv: String) -> Value {
        let app = &self.apps[app_index];
        let meta = self.workload_meta(app_index, &app.name, &app.uid, app.created, rv, 1);
        let revision = format!("{}-{}", app.name, app.hash);
        let claims: Vec<Value> = app
            .volumes
            .iter()
            .filter_map(|v| match v {
                Volume::ClaimTemplate { name } => Some(json!({
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": name},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": CLAIM_SIZE}},
                             "storageClassName": STORAGE_CLASS, "volumeMode": "Filesystem"},
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
            "selector": self.selector(app_index),
            "serviceName": format!("{}-headless", app.name),
            "template": self.template(app_index),
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

    pub(crate) fn daemonset_json(&self, app_index: usize, (pods, ready): (i64, i64), rv: String) -> Value {
        let app = &self.apps[app_index];
        let mut meta = self.workload_meta(app_index, &app.name, &app.uid, app.created, rv, app.revision);
        meta.insert(
            "annotations".into(),
            json!({"deprecated.daemonset.template.generation": app.revision.to_string()}),
        );
        // kube-proxy pods on older nodes still run the older image: they are not updated.
        let updated = if app.name == "kube-proxy" {
            self.pods
                .iter()
                .filter(|p| p.app_index == app_index)
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
                "selector": self.selector(app_index),
                "template": self.template(app_index),
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
