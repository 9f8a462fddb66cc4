//! The watches that feed the drain loop, each as messages on one channel: PodDisruptionBudgets
//! cluster-wide and the pods of each namespace the drained nodes run, parsed by the same code
//! as snapshot files, plus the answers of the eviction tasks.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod as ApiPod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde_json::Value;
use stepstone_core::inventory::{Pod, PodPhase};
use stepstone_core::object_key::ObjectKey;
use stepstone_core::snapshot::{parse_pdb, parse_pod};
use tokio::sync::mpsc;

use super::budget::LiveBudget;
use super::eviction::EvictionOutcome;
use super::fetch::typed_item;
use super::watch::PodObservation;

/// What the watches and eviction tasks tell the loop.
pub(super) enum Msg {
    BudgetsListed(Vec<WatchedBudget>),
    Budget(LiveBudget),
    BudgetGone(ObjectKey),
    PodsListed(String, Vec<PodObservation>),
    PodApplied(PodObservation),
    PodDeleted(String),
    Answer { target: usize, outcome: EvictionOutcome },
    WatchFailed(String),
}

/// A budget as the watch delivers it: the raw object (for the inventory) and the live numbers.
pub(super) struct WatchedBudget {
    pub(super) raw: Value,
    pub(super) live: LiveBudget,
}

fn watched_budget(pdb: &PodDisruptionBudget) -> Option<WatchedBudget> {
    let raw = typed_item(serde_json::to_value(pdb).ok()?, "policy/v1", "PodDisruptionBudget");
    let parsed = parse_pdb(&raw).ok()?;
    let status = parsed.status.unwrap_or(stepstone_core::inventory::PdbStatus {
        current_healthy: 0,
        desired_healthy: 0,
        expected_pods: 0,
        disruptions_allowed: 0,
        observed_generation: 0,
    });
    let live = LiveBudget {
        namespace: parsed.namespace.clone(),
        name: parsed.name.clone(),
        min_available: parsed.min_available,
        max_unavailable: parsed.max_unavailable,
        always_allow_unhealthy: parsed.always_allow_unhealthy(),
        current_healthy: status.current_healthy,
        desired_healthy: status.desired_healthy,
        expected_pods: status.expected_pods,
        disruptions_allowed: status.disruptions_allowed,
        observed: status.observed_generation >= parsed.generation,
    };
    Some(WatchedBudget { raw, live })
}

/// One watch, until the loop stops listening: the first listing, and every relisting after the
/// watch restarts, arrives whole (`listed`); after it, each change on its own.
async fn watch<K, T>(
    api: Api<K>,
    tx: mpsc::UnboundedSender<Msg>,
    observe: impl Fn(&K) -> Option<T>,
    listed: impl Fn(Vec<T>) -> Msg,
    applied: impl Fn(T) -> Msg,
    deleted: impl Fn(K) -> Msg,
    failed: impl Fn(watcher::Error) -> Msg,
) where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    let mut stream = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut listing: Vec<T> = Vec::new();
    while let Some(event) = stream.next().await {
        let msg = match event {
            Ok(WatchEvent::Init) => {
                listing.clear();
                continue;
            }
            Ok(WatchEvent::InitApply(o)) => {
                listing.extend(observe(&o));
                continue;
            }
            Ok(WatchEvent::InitDone) => listed(std::mem::take(&mut listing)),
            Ok(WatchEvent::Apply(o)) => match observe(&o) {
                Some(seen) => applied(seen),
                None => continue,
            },
            Ok(WatchEvent::Delete(o)) => deleted(o),
            Err(e) => failed(e),
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

/// Every PodDisruptionBudget in the cluster. The first listing also feeds the inventory, so
/// listings carry the raw objects.
pub(super) async fn watch_budgets(client: Client, tx: mpsc::UnboundedSender<Msg>) {
    watch(
        Api::<PodDisruptionBudget>::all(client),
        tx,
        watched_budget,
        Msg::BudgetsListed,
        |b| Msg::Budget(b.live),
        |p| {
            Msg::BudgetGone(ObjectKey::new(
                p.metadata.namespace.unwrap_or_default(),
                p.metadata.name.unwrap_or_default(),
            ))
        },
        |e| Msg::WatchFailed(format!("PodDisruptionBudgets: {e}")),
    )
    .await;
}

/// The pods of one namespace.
pub(super) async fn watch_pods(client: Client, namespace: String, tx: mpsc::UnboundedSender<Msg>) {
    watch(
        Api::<ApiPod>::namespaced(client, &namespace),
        tx,
        pod_observation,
        |pods| Msg::PodsListed(namespace.clone(), pods),
        Msg::PodApplied,
        |p| Msg::PodDeleted(p.metadata.uid.unwrap_or_default()),
        |e| Msg::WatchFailed(format!("pods in {namespace}: {e}")),
    )
    .await;
}

pub(super) fn pod_observation(pod: &ApiPod) -> Option<PodObservation> {
    let raw = typed_item(serde_json::to_value(pod).ok()?, "v1", "Pod");
    parse_pod(&raw).ok().map(|p| observation(&p))
}

pub(super) fn observation(pod: &Pod) -> PodObservation {
    PodObservation {
        uid: pod.uid.clone(),
        namespace: pod.namespace.clone(),
        name: pod.name.clone(),
        node: pod.node_name.clone(),
        owner_uid: pod.owner.as_ref().map(|o| o.uid.clone()).filter(|u| !u.is_empty()),
        ready: pod.ready && pod.phase == PodPhase::Running,
        terminating: pod.is_terminating(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_follow_the_pod() {
        let raw = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "prod", "uid": "u1",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs1", "controller": true}]},
            "spec": {"nodeName": "w1", "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        });
        let pod: ApiPod = serde_json::from_value(raw).unwrap();
        let o = pod_observation(&pod).unwrap();
        assert_eq!(o.owner_uid.as_deref(), Some("rs1"));
        assert!(o.ready && !o.terminating);
        assert_eq!(o.node.as_deref(), Some("w1"));
    }
}
