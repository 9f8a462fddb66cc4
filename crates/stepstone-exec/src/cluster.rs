//! The Kubernetes API as the rollout uses it, behind [`ClusterApi`]: read the cluster's state
//! (the same inventory collection as every command), drain (the existing drain engine, never
//! `--force`) and uncordon, Events on nodes, the health gate's reads, the journal's ConfigMap
//! mirror with its control field (pause/abort), and the Lease lock.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use stepstone_core::inventory::Inventory;
use stepstone_core::snapshot::SnapshotOptions;
use stepstone_host::node::BoxFuture;
use stepstone_kube::collect::{CollectOptions, Connection, collect_inventory_with};
use stepstone_kube::drain::{DrainConfig, DrainEvent, DrainReport};

use crate::lease::{LEASE_NAME, LEASE_NAMESPACE, LeaseView};
use crate::triggers::PodHealth;

/// The ConfigMap in kube-system the journal is mirrored to.
pub const JOURNAL_CONFIGMAP: &str = "stepstone-rollout";
/// Key of the journal JSON in the ConfigMap.
pub const JOURNAL_KEY: &str = "journal.json";
/// Key of the operator's request (`pause`, `abort`) in the ConfigMap.
pub const CONTROL_KEY: &str = "control";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{action}: {source}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Collect(String),
    #[error("{0}")]
    Drain(String),
    /// Someone else wrote the Lease between our read and our write.
    #[error("the rollout Lease kube-system/{LEASE_NAME} changed while it was being taken; try again")]
    LeaseConflict,
}

fn api_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ClusterError {
    let action = action.into();
    move |source| ClusterError::Api { action, source }
}

/// A control-plane static pod as the health gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentPod {
    pub node: String,
    pub ready: bool,
    pub tag: String,
}

/// What polling a node returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub kubelet: String,
    pub ready: bool,
    pub unschedulable: bool,
}

/// A Lease as read, with the version to write it back against.
#[derive(Debug, Clone)]
pub struct LeaseRead {
    pub view: LeaseView,
    pub resource_version: Option<String>,
}

/// One outside system: the cluster's API server.
pub trait ClusterApi: Send + Sync {
    fn inventory(&self) -> BoxFuture<'_, Result<Inventory, ClusterError>>;
    fn pod_health(&self) -> BoxFuture<'_, Result<Vec<PodHealth>, ClusterError>>;
    fn drain<'a>(
        &'a self,
        nodes: &'a [String],
        config: &'a DrainConfig,
        sink: &'a (dyn Fn(&DrainEvent) + Send + Sync),
    ) -> BoxFuture<'a, Result<DrainReport, ClusterError>>;
    fn uncordon<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>>;
    fn cordon<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>>;
    fn node_event<'a>(
        &'a self,
        node: &'a str,
        warning: bool,
        reason: &'a str,
        message: &'a str,
    ) -> BoxFuture<'a, Result<(), ClusterError>>;
    /// `GET /readyz`: `Err` with the body when not ready.
    fn readyz(&self) -> BoxFuture<'_, Result<(), String>>;
    /// kube-system pods of `component` (label `component=`): node, readiness, image tag.
    fn component_pods<'a>(&'a self, component: &'a str) -> BoxFuture<'a, Result<Vec<ComponentPod>, ClusterError>>;
    /// One node's kubelet version, readiness and cordon, read directly (cheap, for polling).
    fn node_status<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<NodeStatus, ClusterError>>;
    /// The ConfigMap's data (journal and control), if it exists.
    fn read_mirror(&self) -> BoxFuture<'_, Result<Option<BTreeMap<String, String>>, ClusterError>>;
    /// Merge the given keys into the ConfigMap (creating it), leaving the others as they are.
    fn write_mirror<'a>(&'a self, data: BTreeMap<String, Option<String>>) -> BoxFuture<'a, Result<(), ClusterError>>;
    fn read_lease(&self) -> BoxFuture<'_, Result<Option<LeaseRead>, ClusterError>>;
    /// Write the Lease as held by `holder` (empty: released), against `resource_version` when
    /// it was read (a conflict means someone else was faster).
    fn write_lease<'a>(
        &'a self,
        holder: &'a str,
        duration: Duration,
        now: Timestamp,
        previous: Option<&'a LeaseRead>,
    ) -> BoxFuture<'a, Result<(), ClusterError>>;
}

/// [`ClusterApi`] through kube-rs.
pub struct KubeCluster {
    pub conn: Connection,
    /// A client with kube's built-in retries off, for the drain (it runs its own loop).
    pub drain_client: Client,
}

impl KubeCluster {
    fn client(&self) -> Client {
        self.conn.client.clone()
    }
}

fn micro(t: Timestamp) -> Option<MicroTime> {
    k8s_openapi::jiff::Timestamp::from_microsecond(t.as_microsecond()).ok().map(MicroTime)
}

fn from_micro(t: &MicroTime) -> Option<Timestamp> {
    Timestamp::from_microsecond(t.0.as_microsecond()).ok()
}

impl ClusterApi for KubeCluster {
    fn inventory(&self) -> BoxFuture<'_, Result<Inventory, ClusterError>> {
        Box::pin(async move {
            collect_inventory_with(&self.conn, &CollectOptions::default(), &SnapshotOptions::default())
                .await
                .map_err(|e| ClusterError::Collect(e.to_string()))
        })
    }

    fn pod_health(&self) -> BoxFuture<'_, Result<Vec<PodHealth>, ClusterError>> {
        Box::pin(async move {
            let api: Api<Pod> = Api::all(self.client());
            let list = api.list(&ListParams::default()).await.map_err(api_err("listing pods"))?;
            Ok(list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(|p| PodHealth::from_pod(&serde_json::to_value(p).unwrap_or_default()))
                .collect())
        })
    }

    fn drain<'a>(
        &'a self,
        nodes: &'a [String],
        config: &'a DrainConfig,
        sink: &'a (dyn Fn(&DrainEvent) + Send + Sync),
    ) -> BoxFuture<'a, Result<DrainReport, ClusterError>> {
        Box::pin(async move {
            let sink = |e: &DrainEvent| sink(e);
            stepstone_kube::drain::drain(&self.drain_client, nodes, config, &sink)
                .await
                .map_err(|e| ClusterError::Drain(e.to_string()))
        })
    }

    fn uncordon<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let nodes = [node.to_string()];
            stepstone_kube::drain::uncordon(&self.drain_client, &nodes, true, &|_: &DrainEvent| {})
                .await
                .map_err(|e| ClusterError::Drain(e.to_string()))
        })
    }

    fn cordon<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client());
            let patch = json!({"spec": {"unschedulable": true}});
            api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(api_err(format!("cordoning {node}")))?;
            Ok(())
        })
    }

    fn node_event<'a>(
        &'a self,
        node: &'a str,
        warning: bool,
        reason: &'a str,
        message: &'a str,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let api: Api<Event> = Api::namespaced(self.client(), "default");
            let now = Time(k8s_openapi::jiff::Timestamp::now());
            let e = Event {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{node}.stepstone-rollout-")),
                    namespace: Some("default".into()),
                    ..Default::default()
                },
                involved_object: ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Node".into()),
                    name: Some(node.to_string()),
                    ..Default::default()
                },
                reason: Some(reason.to_string()),
                message: Some(message.to_string()),
                type_: Some(if warning { "Warning" } else { "Normal" }.into()),
                count: Some(1),
                first_timestamp: Some(now.clone()),
                last_timestamp: Some(now),
                source: Some(EventSource { component: Some("stepstone-rollout".into()), host: None }),
                reporting_component: Some("stepstone-rollout".into()),
                ..Default::default()
            };
            api.create(&PostParams::default(), &e).await.map_err(api_err(format!("posting an event on {node}")))?;
            Ok(())
        })
    }

    fn readyz(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let request = http::Request::get("/readyz").body(Vec::new()).map_err(|e| e.to_string())?;
            match self.conn.client.request_text(request).await {
                Ok(text) if text.trim() == "ok" || text.contains("readyz check passed") => Ok(()),
                Ok(text) => Err(text),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn node_status<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<NodeStatus, ClusterError>> {
        Box::pin(async move {
            let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client());
            let n = api.get(node).await.map_err(api_err(format!("reading node {node}")))?;
            let status = n.status.unwrap_or_default();
            Ok(NodeStatus {
                kubelet: status.node_info.map(|i| i.kubelet_version).unwrap_or_default(),
                ready: status.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "True"),
                unschedulable: n.spec.and_then(|s| s.unschedulable).unwrap_or(false),
            })
        })
    }

    fn component_pods<'a>(&'a self, component: &'a str) -> BoxFuture<'a, Result<Vec<ComponentPod>, ClusterError>> {
        Box::pin(async move {
            let api: Api<Pod> = Api::namespaced(self.client(), "kube-system");
            let list = api
                .list(&ListParams::default().labels(&format!("component={component}")))
                .await
                .map_err(api_err(format!("listing {component} pods")))?;
            Ok(list
                .items
                .iter()
                .map(|p| {
                    let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
                    let ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                    let image = p
                        .spec
                        .as_ref()
                        .and_then(|s| s.containers.first())
                        .and_then(|c| c.image.clone())
                        .unwrap_or_default();
                    ComponentPod { node, ready, tag: stepstone_core::snapshot::image_tag(&image).to_string() }
                })
                .collect())
        })
    }

    fn read_mirror(&self) -> BoxFuture<'_, Result<Option<BTreeMap<String, String>>, ClusterError>> {
        Box::pin(async move {
            let api: Api<ConfigMap> = Api::namespaced(self.client(), LEASE_NAMESPACE);
            let cm = api.get_opt(JOURNAL_CONFIGMAP).await.map_err(api_err("reading the rollout ConfigMap"))?;
            Ok(cm.map(|c| c.data.unwrap_or_default()))
        })
    }

    fn write_mirror<'a>(&'a self, data: BTreeMap<String, Option<String>>) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let api: Api<ConfigMap> = Api::namespaced(self.client(), LEASE_NAMESPACE);
            let patch = json!({"data": data});
            match api.patch(JOURNAL_CONFIGMAP, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    let cm = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(JOURNAL_CONFIGMAP.into()),
                            namespace: Some(LEASE_NAMESPACE.into()),
                            labels: Some(
                                [("app.kubernetes.io/managed-by".to_string(), "stepstone".to_string())].into(),
                            ),
                            ..Default::default()
                        },
                        data: Some(data.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()),
                        ..Default::default()
                    };
                    api.create(&PostParams::default(), &cm).await.map_err(api_err("creating the rollout ConfigMap"))?;
                    Ok(())
                }
                Err(e) => Err(api_err("writing the rollout ConfigMap")(e)),
            }
        })
    }

    fn read_lease(&self) -> BoxFuture<'_, Result<Option<LeaseRead>, ClusterError>> {
        Box::pin(async move {
            let api: Api<Lease> = Api::namespaced(self.client(), LEASE_NAMESPACE);
            let lease = api.get_opt(LEASE_NAME).await.map_err(api_err("reading the rollout Lease"))?;
            Ok(lease.map(|l| {
                let spec = l.spec.unwrap_or_default();
                LeaseRead {
                    view: LeaseView {
                        holder: spec.holder_identity,
                        renewed: spec.renew_time.as_ref().and_then(from_micro),
                        duration: Duration::from_secs(
                            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
                        ),
                    },
                    resource_version: l.metadata.resource_version,
                }
            }))
        })
    }

    fn write_lease<'a>(
        &'a self,
        holder: &'a str,
        duration: Duration,
        now: Timestamp,
        previous: Option<&'a LeaseRead>,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let api: Api<Lease> = Api::namespaced(self.client(), LEASE_NAMESPACE);
            let same_holder = previous.is_some_and(|p| p.view.holder.as_deref() == Some(holder));
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAME.into()),
                    namespace: Some(LEASE_NAMESPACE.into()),
                    resource_version: previous.and_then(|p| p.resource_version.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: (!holder.is_empty()).then(|| holder.to_string()),
                    lease_duration_seconds: Some(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)),
                    renew_time: micro(now),
                    acquire_time: if same_holder { None } else { micro(now) },
                    ..Default::default()
                }),
            };
            let result = match previous {
                None => api.create(&PostParams::default(), &lease).await.map(|_| ()),
                Some(_) => {
                    let mut lease = lease;
                    if same_holder && let Some(spec) = lease.spec.as_mut() {
                        // Keep the original acquire time on renewals.
                        spec.acquire_time = None;
                    }
                    api.replace(LEASE_NAME, &PostParams::default(), &lease).await.map(|_| ())
                }
            };
            match result {
                Ok(()) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => Err(ClusterError::LeaseConflict),
                Err(e) => Err(api_err("writing the rollout Lease")(e)),
            }
        })
    }
}
