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
use serde::{Deserialize, Serialize};
use serde_json::json;
use stepstone_core::inventory::Inventory;
use stepstone_core::snapshot::SnapshotOptions;
use stepstone_host::node::BoxFuture;
use stepstone_kube::collect::{CollectOptions, Connection, collect_inventory_with};
use stepstone_kube::drain::{DrainConfig, DrainEvent, DrainReport};

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
    /// The API server kept failing a request (5xx, 429, dropped connections) through every retry.
    #[error(
        "{action}: failed {attempts} times in a row, last with {}; the API server is unhealthy or overloaded: check `kubectl get --raw '/readyz?verbose'`, then `stepstone rollout resume`",
        stepstone_kube::read::summary(last)
    )]
    Unavailable { action: String, attempts: u32, last: kube::Error },
    /// Someone else wrote the Lease between our read and our write.
    #[error("the rollout Lease kube-system/{LEASE_NAME} changed while it was being taken; try again")]
    LeaseConflict,
}

fn api_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ClusterError {
    let action = action.into();
    move |source| ClusterError::Api { action, source }
}

/// Run one request, again while the server answers 5xx or 429 or the connection drops (as the
/// read commands do, with the connection's [`stepstone_kube::read::Retry`]): a rollout must not
/// stop halfway over a transient error. Every request sent this way is safe to repeat (gets,
/// lists, merge patches, Lease writes against a resourceVersion; an Event may be posted twice).
async fn retrying_with<T, F, Fut>(
    retry: &stepstone_kube::read::Retry,
    action: impl Into<String>,
    mut request: F,
) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Ok(v) => return Ok(v),
            Err(e) if !stepstone_kube::read::is_transient(&e) => return Err(api_err(action)(e)),
            Err(last) if attempt >= retry.attempts => {
                return Err(ClusterError::Unavailable { action: action.into(), attempts: attempt, last });
            }
            Err(e) => {
                let factor = 1u32 << (attempt - 1).min(16);
                let wait = retry.first_wait.saturating_mul(factor).min(retry.max_wait);
                tracing::debug!(attempt, ?wait, error = %e, "request failed; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
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
            let params = ListParams::default();
            let list = retrying_with(&self.conn.retry, "listing pods", || api.list(&params)).await?;
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
            let patch = Patch::Merge(json!({"spec": {"unschedulable": true}}));
            let params = PatchParams::default();
            retrying_with(&self.conn.retry, format!("cordoning {node}"), || api.patch(node, &params, &patch)).await?;
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
            let params = PostParams::default();
            retrying_with(&self.conn.retry, format!("posting an event on {node}"), || api.create(&params, &e)).await?;
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
            let n = retrying_with(&self.conn.retry, format!("reading node {node}"), || api.get(node)).await?;
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
            let params = ListParams::default().labels(&format!("component={component}"));
            let list =
                retrying_with(&self.conn.retry, format!("listing {component} pods"), || api.list(&params)).await?;
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
            let cm =
                retrying_with(&self.conn.retry, "reading the rollout ConfigMap", || api.get_opt(JOURNAL_CONFIGMAP))
                    .await?;
            Ok(cm.map(|c| c.data.unwrap_or_default()))
        })
    }

    fn write_mirror<'a>(&'a self, data: BTreeMap<String, Option<String>>) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let api: Api<ConfigMap> = Api::namespaced(self.client(), LEASE_NAMESPACE);
            let patch = Patch::Merge(json!({"data": data}));
            let params = PatchParams::default();
            let patched = retrying_with(&self.conn.retry, "writing the rollout ConfigMap", || {
                api.patch(JOURNAL_CONFIGMAP, &params, &patch)
            })
            .await;
            match patched {
                Ok(_) => Ok(()),
                Err(ClusterError::Api { source: kube::Error::Api(s), .. }) if s.code == 404 => {
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
                    let params = PostParams::default();
                    retrying_with(&self.conn.retry, "creating the rollout ConfigMap", || api.create(&params, &cm))
                        .await?;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })
    }

    fn read_lease(&self) -> BoxFuture<'_, Result<Option<LeaseRead>, ClusterError>> {
        Box::pin(async move {
            let api: Api<Lease> = Api::namespaced(self.client(), LEASE_NAMESPACE);
            let lease =
                retrying_with(&self.conn.retry, "reading the rollout Lease", || api.get_opt(LEASE_NAME)).await?;
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
            let mut lease = lease;
            if previous.is_some()
                && same_holder
                && let Some(spec) = lease.spec.as_mut()
            {
                // Keep the original acquire time on renewals.
                spec.acquire_time = None;
            }
            let result = retrying_with(&self.conn.retry, "writing the rollout Lease", || async {
                match previous {
                    None => api.create(&PostParams::default(), &lease).await.map(|_| ()),
                    Some(_) => api.replace(LEASE_NAME, &PostParams::default(), &lease).await.map(|_| ()),
                }
            })
            .await;
            match result {
                Err(ClusterError::Api { source: kube::Error::Api(s), .. }) if s.code == 409 => {
                    Err(ClusterError::LeaseConflict)
                }
                other => other,
            }
        })
    }
}

pub const LEASE_NAME: &str = "stepstone-rollout";
pub const LEASE_NAMESPACE: &str = "kube-system";

/// The fields of the Lease the lock reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseView {
    pub holder: Option<String>,
    pub renewed: Option<Timestamp>,
    pub duration: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status::failure("injected", "InternalError").with_code(code)))
    }

    fn quick() -> stepstone_kube::read::Retry {
        stepstone_kube::read::Retry { first_wait: Duration::from_millis(1), ..Default::default() }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_an_answer() {
        let mut calls = 0;
        let got = retrying_with(&quick(), "reading node w1", || {
            calls += 1;
            let n = calls;
            async move { if n < 4 { Err(answer(if n % 2 == 0 { 429 } else { 500 })) } else { Ok(n) } }
        })
        .await
        .unwrap();
        assert_eq!(got, 4);
    }

    #[tokio::test]
    async fn answers_are_not_retried_and_a_server_down_for_good_is_unavailable() {
        /// Every call answered `code`: the error in the end and the number of calls made.
        async fn always(code: u16) -> (ClusterError, usize) {
            let mut calls = 0;
            let err = retrying_with(&quick(), "reading node w1", || {
                calls += 1;
                async move { Err::<(), _>(answer(code)) }
            })
            .await
            .unwrap_err();
            (err, calls)
        }

        let (err, calls) = always(404).await;
        assert_eq!(calls, 1);
        assert!(matches!(err, ClusterError::Api { source: kube::Error::Api(ref s), .. } if s.code == 404), "{err}");

        let (err, calls) = always(503).await;
        assert_eq!(calls, 8);
        let text = err.to_string();
        assert!(matches!(err, ClusterError::Unavailable { attempts: 8, .. }), "{text}");
        assert!(text.starts_with("reading node w1: failed 8 times in a row, last with 503"), "{text}");
        assert!(text.contains("stepstone rollout resume"), "{text}");
    }
}
