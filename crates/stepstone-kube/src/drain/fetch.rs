//! What the drain reads before it classifies, each read retried a few times when the server
//! throttles or fails transiently: the controllers of the pods (and the Deployments above
//! ReplicaSets), and the objects turned into the JSON the snapshot parsers read.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod as ApiPod;
use kube::Client;
use serde_json::Value;

use super::retry::RetryPolicy;
use super::{DrainError, api};

/// Reads and the idempotent cordon patch, retried a few times (logged) when the server throttles
/// or fails transiently; evictions have their own loop.
pub(super) async fn with_retries<T, F, Fut>(policy: &RetryPolicy, mut call: F) -> Result<T, DrainError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DrainError>>,
{
    // Eight, as the read commands: at 15 % failing requests a read fails for good about once in
    // four million, where five attempts failed once in thirteen thousand (seen in the chaos runs).
    const ATTEMPTS: u32 = 8;
    let mut attempt = 0;
    loop {
        match call().await {
            Err(DrainError::Api { action, source }) if attempt + 1 < ATTEMPTS && transient(&source) => {
                attempt += 1;
                let delay = policy.backoff(attempt);
                tracing::warn!("{action}: {source}; retrying in {}", super::event::human_duration(delay));
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Read the controllers of the pods: ReplicaSets, StatefulSets, ReplicationControllers, and the
/// Deployments above ReplicaSets (what a user scales, what replacements are counted against).
/// DaemonSet pods stay on the node, so their controllers are not read. A kind with several
/// objects in one namespace is listed there once instead of read object by object.
pub(super) async fn read_controllers(client: &Client, pods: &[&ApiPod]) -> Result<Vec<Value>, DrainError> {
    let mut wanted: BTreeSet<(String, String, String)> = BTreeSet::new();
    for p in pods {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        for o in p.metadata.owner_references.iter().flatten().filter(|o| o.controller == Some(true)) {
            if matches!(o.kind.as_str(), "ReplicaSet" | "StatefulSet" | "ReplicationController") {
                wanted.insert((o.kind.clone(), ns.clone(), o.name.clone()));
            }
        }
    }
    let mut found = fetch_controllers(client, &wanted).await?;
    let deployments: BTreeSet<(String, String, String)> = found
        .iter()
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some("ReplicaSet"))
        .flat_map(|rs| {
            let ns = rs.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_string();
            owner_refs(rs).into_iter().filter(|(k, _)| k == "Deployment").map(move |(k, n)| (k, ns.clone(), n))
        })
        .collect();
    found.extend(fetch_controllers(client, &deployments).await?);
    Ok(found)
}

/// `(kind, namespace, name)` objects: one GET for a lone object, one list for a kind with
/// several in a namespace (filtered to the wanted names).
async fn fetch_controllers(
    client: &Client,
    wanted: &BTreeSet<(String, String, String)>,
) -> Result<Vec<Value>, DrainError> {
    let mut groups: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (kind, ns, name) in wanted {
        groups.entry((kind.clone(), ns.clone())).or_default().insert(name.clone());
    }
    // Reads, retried like the node reads: one 500 or 429 must not end a drain.
    let policy = RetryPolicy::default();
    let policy = &policy;
    let fetched = futures::stream::iter(groups.into_iter().map(|((kind, ns), names)| async move {
        if names.len() == 1 {
            let name = names.iter().next().expect("one name");
            with_retries(policy, || api::get_controller(client, &kind, &ns, name))
                .await
                .map(|v| v.into_iter().collect::<Vec<_>>())
        } else {
            with_retries(policy, || api::list_controllers(client, &kind, &ns))
                .await
                .map(|all| all.into_iter().filter(|v| names.contains(api::name_of(v))).collect())
        }
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    let mut out = Vec::new();
    for r in fetched {
        out.extend(r?);
    }
    Ok(out)
}

fn owner_refs(obj: &Value) -> Vec<(String, String)> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                .filter_map(|r| Some((r.get("kind")?.as_str()?.to_string(), r.get("name")?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn to_value<T: serde::Serialize>(obj: &T) -> Result<Value, DrainError> {
    serde_json::to_value(obj).map_err(|e| DrainError::Inventory { message: e.to_string() })
}

/// List items come without kind/apiVersion; the parser needs them.
pub(super) fn typed_item(mut v: Value, api_version: &str, kind: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.entry("apiVersion").or_insert_with(|| Value::String(api_version.into()));
        o.entry("kind").or_insert_with(|| Value::String(kind.into()));
    }
    v
}
