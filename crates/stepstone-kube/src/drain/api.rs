//! The few API calls the drain makes, each one request: cordon, list a node's pods, read one
//! controller, evict or delete one pod with a UID precondition, post a node Event.

use k8s_openapi::api::core::v1::{Event, Node, ObjectReference, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions, Time};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::DrainError;
use super::event::NodeEvent;
use super::eviction::EvictionOutcome;

/// Set or clear `spec.unschedulable` (the merge patch `kubectl cordon` sends).
pub async fn set_unschedulable(client: &Client, node: &str, unschedulable: bool) -> Result<Node, DrainError> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = json!({"spec": {"unschedulable": unschedulable}});
    api.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| node_error(node, e))
}

pub async fn get_node(client: &Client, node: &str) -> Result<Node, DrainError> {
    let api: Api<Node> = Api::all(client.clone());
    api.get(node).await.map_err(|e| node_error(node, e))
}

fn node_error(node: &str, e: kube::Error) -> DrainError {
    match &e {
        kube::Error::Api(s) if s.code == 404 => DrainError::NodeNotFound { node: node.to_string() },
        _ => DrainError::Api { action: format!("updating node {node}"), source: e },
    }
}

/// Every pod bound to `node` (optionally narrowed by a label selector), page by page.
pub async fn pods_on(client: &Client, node: &str, selector: Option<&str>) -> Result<Vec<Pod>, DrainError> {
    let api: Api<Pod> = Api::all(client.clone());
    let mut params = ListParams::default().fields(&format!("spec.nodeName={node}")).limit(500);
    if let Some(s) = selector {
        params = params.labels(s);
    }
    let mut pods = Vec::new();
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| DrainError::Api { action: format!("listing the pods on node {node}"), source: e })?;
        let next = page.metadata.continue_.clone().filter(|t| !t.is_empty());
        pods.extend(page.items);
        match next {
            Some(token) => params = params.continue_token(token.as_str()),
            None => break,
        }
    }
    Ok(pods)
}

/// Where a controller kind lives: (group-version path, plural, apiVersion).
fn controller_path(kind: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match kind {
        "ReplicaSet" => ("/apis/apps/v1", "replicasets", "apps/v1"),
        "Deployment" => ("/apis/apps/v1", "deployments", "apps/v1"),
        "StatefulSet" => ("/apis/apps/v1", "statefulsets", "apps/v1"),
        "DaemonSet" => ("/apis/apps/v1", "daemonsets", "apps/v1"),
        "ReplicationController" => ("/api/v1", "replicationcontrollers", "v1"),
        _ => return None,
    })
}

pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
}

/// Every controller of `kind` in `namespace`, as raw JSON with kind and apiVersion set.
pub async fn list_controllers(client: &Client, kind: &str, namespace: &str) -> Result<Vec<Value>, DrainError> {
    let Some((group_path, plural, api_version)) = controller_path(kind) else { return Ok(Vec::new()) };
    let request = kube::core::Request::new(format!("{group_path}/namespaces/{namespace}/{plural}"));
    let action = || format!("listing {plural} in {namespace}");
    let mut params = ListParams::default().limit(500);
    let mut out = Vec::new();
    loop {
        let http = request
            .list(&params)
            .map_err(|e| DrainError::Api { action: action(), source: kube::Error::BuildRequest(e) })?;
        let page: Value = client.request(http).await.map_err(|e| DrainError::Api { action: action(), source: e })?;
        for item in page.get("items").and_then(Value::as_array).into_iter().flatten() {
            let mut item = item.clone();
            item["kind"] = json!(kind);
            item["apiVersion"] = json!(api_version);
            out.push(item);
        }
        match page.pointer("/metadata/continue").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(token),
            None => break,
        }
    }
    Ok(out)
}

/// One controller object as raw JSON (for the snapshot parser), `None` when it does not exist.
pub async fn get_controller(
    client: &Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, DrainError> {
    let Some((group_path, plural, _)) = controller_path(kind) else { return Ok(None) };
    let request = kube::core::Request::new(format!("{group_path}/namespaces/{namespace}/{plural}"))
        .get(name, &kube::api::GetParams::default())
        .map_err(|e| DrainError::Api {
            action: format!("reading {kind} {namespace}/{name}"),
            source: kube::Error::BuildRequest(e),
        })?;
    match client.request::<Value>(request).await {
        Ok(mut v) => {
            // GET answers carry kind/apiVersion already; make sure, for the parser.
            if v.get("kind").is_none() {
                v["kind"] = json!(kind);
            }
            Ok(Some(v))
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(DrainError::Api { action: format!("reading {kind} {namespace}/{name}"), source: e }),
    }
}

/// `POST …/pods/{name}/eviction` with a typed `policy/v1` body: `deleteOptions` carries the grace
/// period and a UID precondition, so a new pod that took the same name is never evicted.
pub async fn evict(client: &Client, namespace: &str, name: &str, uid: &str, grace: Option<i64>) -> EvictionOutcome {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let body = Eviction {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        delete_options: Some(DeleteOptions {
            grace_period_seconds: grace,
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..Default::default()
        }),
    };
    match api.create_subresource::<Eviction, Value>("eviction", name, &PostParams::default(), &body).await {
        Ok(_) => EvictionOutcome::Accepted,
        Err(e) => EvictionOutcome::from_error(&e),
    }
}

/// Plain DELETE with the same precondition: budgets are not consulted.
pub async fn delete(client: &Client, namespace: &str, name: &str, uid: &str, grace: Option<i64>) -> EvictionOutcome {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        grace_period_seconds: grace.map(|g| g.max(0) as u32),
        preconditions: Some(kube::api::Preconditions { uid: Some(uid.to_string()), resource_version: None }),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => EvictionOutcome::Accepted,
        Err(e) => EvictionOutcome::from_error(&e),
    }
}

/// Post a core/v1 Event about the node in `default`, where the kubelet posts node events.
pub async fn post_node_event(client: &Client, event: &NodeEvent, node_uid: Option<&str>) -> Result<(), kube::Error> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let e = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.stepstone-", event.node)),
            namespace: Some("default".into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(event.node.clone()),
            uid: node_uid.map(str::to_string),
            ..Default::default()
        },
        reason: Some(event.reason.to_string()),
        message: Some(event.message.clone()),
        type_: Some(event.event_type.to_string()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(k8s_openapi::api::core::v1::EventSource { component: Some("stepstone".into()), host: None }),
        reporting_component: Some("stepstone".into()),
        ..Default::default()
    };
    api.create(&PostParams::default(), &e).await.map(|_| ())
}
