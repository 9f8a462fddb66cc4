//! Reading a live cluster: paginated lists of nodes, pods, PDBs, workload controllers and
//! PersistentVolumes with their claims (where a pod's data lives) across all namespaces, plus
//! `/version`.
//!
//! The objects are kept as the raw JSON the API server sent and handed to
//! [`stepstone_core::snapshot::ObjectSet`], the parser that also reads snapshot files, so a live
//! cluster and a `kubectl get … -o json` snapshot of it give the same inventory.
//! [`to_kubectl_list`] turns a collected set into the `v1 List` that kubectl prints.

use std::path::Path;

use kube::api::ListParams;
use serde_json::{Map, Value};
use stepstone_core::inventory::Inventory;
use stepstone_core::snapshot::{InventoryBuilder, ObjectSet, SnapshotError, SnapshotOptions};
use stepstone_core::wire::{self, Keep};

pub use crate::connect::Connection;

/// Items per list request, as `kubectl get --chunk-size` defaults to.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// A resource the inventory needs, listed cluster-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub kind: &'static str,
    pub api_version: &'static str,
    /// The cluster-wide list path.
    pub path: &'static str,
    /// What the plan cannot check when the credentials may not list this resource; `None` when
    /// the inventory cannot be built without it (a 403 on it is an error).
    pub without: Option<&'static str>,
}

/// What PersistentVolumes and their claims tell the plan.
const LOCAL_STORAGE_PINS: &str = "local-storage pins (pods whose claims are bound to a volume only one node reaches, \
     which stay Pending while that node is drained)";

/// What `stepstone snapshot` and the inventory read, in the order kubectl prints
/// `kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json`.
pub const RESOURCES: &[Resource] = &[
    Resource { kind: "Node", api_version: "v1", path: "/api/v1/nodes", without: None },
    Resource { kind: "Pod", api_version: "v1", path: "/api/v1/pods", without: None },
    Resource {
        kind: "PodDisruptionBudget",
        api_version: "policy/v1",
        path: "/apis/policy/v1/poddisruptionbudgets",
        without: None,
    },
    Resource { kind: "Deployment", api_version: "apps/v1", path: "/apis/apps/v1/deployments", without: None },
    Resource { kind: "ReplicaSet", api_version: "apps/v1", path: "/apis/apps/v1/replicasets", without: None },
    Resource { kind: "StatefulSet", api_version: "apps/v1", path: "/apis/apps/v1/statefulsets", without: None },
    Resource { kind: "DaemonSet", api_version: "apps/v1", path: "/apis/apps/v1/daemonsets", without: None },
    Resource {
        kind: "PersistentVolume",
        api_version: "v1",
        path: "/api/v1/persistentvolumes",
        without: Some(LOCAL_STORAGE_PINS),
    },
    Resource {
        kind: "PersistentVolumeClaim",
        api_version: "v1",
        path: "/api/v1/persistentvolumeclaims",
        without: Some(LOCAL_STORAGE_PINS),
    },
];

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Connect(#[from] crate::connect::ConnectError),
    #[error(
        "listing {what} from {server}: {source}; check that the server is reachable and the credentials may list {what} in all namespaces (`kubectl auth can-i list {what} -A`)"
    )]
    List {
        what: String,
        server: String,
        #[source]
        source: kube::Error,
    },
    /// A read the server kept failing (5xx, 429, dropped connections) through every retry.
    #[error("the API server kept failing")]
    Server(#[source] crate::read::ServerError),
    #[error("reading /version from {server}: {source}")]
    Version {
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error("{url}: the response is not a Kubernetes list: {reason}")]
    NotAList { url: String, reason: String },
    #[error("{url}: the server returned the continue token '{token}' twice; stopping instead of looping forever")]
    PaginationLoop { url: String, token: String },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("the page parser stopped unexpectedly: {0}")]
    Parser(String),
}

/// How to collect.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Items per list request (`limit`); the server hands out `continue` tokens for the rest.
    pub page_size: u32,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions { page_size: DEFAULT_PAGE_SIZE }
    }
}

/// Every object of [`RESOURCES`] and the server version, as raw JSON.
pub async fn collect_objects(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<ObjectSet, CollectError> {
    let conn = crate::connect(kubeconfig, context).await?;
    collect_with(&conn, &CollectOptions::default()).await
}

/// The live inventory, parsed by the same code as snapshot files.
pub async fn collect_inventory(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    opts: &SnapshotOptions,
) -> Result<Inventory, CollectError> {
    let conn = crate::connect(kubeconfig, context).await?;
    collect_inventory_with(&conn, &CollectOptions::default(), opts).await
}

/// The live inventory through an existing connection. Each page is read keeping only what the
/// parsers use ([`stepstone_core::wire`]) and parsed on a worker thread while the next page is
/// fetched, so memory stays at a few pages of JSON plus the inventory.
pub async fn collect_inventory_with(
    conn: &Connection,
    opts: &CollectOptions,
    snapshot_opts: &SnapshotOptions,
) -> Result<Inventory, CollectError> {
    let (pages_tx, mut pages_rx) = tokio::sync::mpsc::channel::<(usize, String)>(2);
    let mut builder = InventoryBuilder::new(&conn.label, snapshot_opts);
    let server = conn.server.clone();
    let parser = tokio::task::spawn_blocking(move || -> Result<InventoryBuilder, CollectError> {
        while let Some((index, text)) = pages_rx.blocking_recv() {
            let resource = &RESOURCES[index];
            let origin = format!("{server}{}", resource.path);
            let keep = wire::keep_for(resource.kind).unwrap_or(Keep::All);
            let items = wire::read_items(&text, keep)
                .map_err(|e| CollectError::NotAList { url: origin.clone(), reason: format!("invalid list: {e}") })?;
            drop(text);
            for item in items {
                builder.add(&origin, &with_type(item, resource))?;
            }
        }
        Ok(builder)
    });
    'resources: for (index, resource) in RESOURCES.iter().enumerate() {
        let mut pages = Pages::new(conn, resource, opts.page_size);
        while let Some(text) = pages.next_or_skip().await? {
            let token = wire::continue_token(&text).map_err(|e| CollectError::NotAList {
                url: format!("{}{}", conn.server, resource.path),
                reason: format!("invalid JSON: {e}"),
            })?;
            pages.set_continue(&token)?;
            if pages_tx.send((index, text)).await.is_err() {
                // The parser stopped on an error; it is returned below.
                break 'resources;
            }
        }
    }
    drop(pages_tx);
    let mut builder = parser.await.map_err(|e| CollectError::Parser(e.to_string()))??;
    let version = server_version(conn).await?;
    builder.server_version(Some(&version));
    Ok(builder.finish()?)
}

async fn server_version(conn: &Connection) -> Result<String, CollectError> {
    let version: k8s_openapi::apimachinery::pkg::version::Info = server_version_info(conn).await?;
    Ok(version.git_version)
}

/// `/version`, retried like every read.
pub async fn server_version_info(
    conn: &Connection,
) -> Result<k8s_openapi::apimachinery::pkg::version::Info, CollectError> {
    let version_error = |source| CollectError::Version { server: conn.server.clone(), source };
    let request =
        http::Request::get("/version").body(Vec::new()).map_err(|e| version_error(kube::Error::HttpError(e)))?;
    let text =
        crate::read::get_text(&conn.unretried, &conn.server, request, &conn.retry).await.map_err(|e| match e {
            crate::read::ReadError::Server(e) => CollectError::Server(e),
            crate::read::ReadError::Refused(e) => version_error(e),
        })?;
    serde_json::from_str(&text).map_err(|e| version_error(kube::Error::SerdeError(e)))
}

/// Collect through an existing connection.
pub async fn collect_with(conn: &Connection, opts: &CollectOptions) -> Result<ObjectSet, CollectError> {
    let mut set = ObjectSet::default();
    for resource in RESOURCES {
        let origin = format!("{}{}", conn.server, resource.path);
        for item in list_all(conn, resource, opts.page_size).await? {
            set.objects.push((origin.clone(), item));
        }
    }
    set.server_version = Some(server_version(conn).await?);
    Ok(set)
}

/// List one resource across all namespaces, page by page, with kind and apiVersion set on
/// every item (the API leaves them out of list items; kubectl fills them in).
pub async fn list_all(conn: &Connection, resource: &Resource, page_size: u32) -> Result<Vec<Value>, CollectError> {
    let url = format!("{}{}", conn.server, resource.path);
    let mut items = Vec::new();
    let mut pages = Pages::new(conn, resource, page_size);
    while let Some(text) = pages.next_or_skip().await? {
        let mut page: Value = serde_json::from_str(&text)
            .map_err(|e| CollectError::NotAList { url: url.clone(), reason: format!("invalid JSON: {e}") })?;
        drop(text);
        let Some(Value::Array(page_items)) = page.get_mut("items").map(Value::take) else {
            return Err(CollectError::NotAList { url: url.clone(), reason: "no \"items\" array".to_string() });
        };
        items.extend(page_items.into_iter().map(|item| with_type(item, resource)));
        pages.set_continue(page.pointer("/metadata/continue").and_then(Value::as_str).unwrap_or(""))?;
    }
    tracing::debug!(resource = resource.kind, count = items.len(), "listed");
    Ok(items)
}

/// The pages of one cluster-wide list: fetches the text of each, follows `continue` tokens
/// and refuses a token it has already seen (a server bug that would otherwise loop forever).
struct Pages<'a> {
    conn: &'a Connection,
    resource: &'a Resource,
    page_size: u32,
    token: Option<String>,
    seen_tokens: std::collections::BTreeSet<String>,
    done: bool,
}

impl<'a> Pages<'a> {
    fn new(conn: &'a Connection, resource: &'a Resource, page_size: u32) -> Self {
        Pages { conn, resource, page_size, token: None, seen_tokens: Default::default(), done: false }
    }

    /// The next page's JSON text; `None` after the last page.
    async fn next_text(&mut self) -> Result<Option<String>, CollectError> {
        if self.done {
            return Ok(None);
        }
        let mut params = ListParams::default();
        if self.page_size > 0 {
            params = params.limit(self.page_size);
        }
        if let Some(t) = &self.token {
            params = params.continue_token(t);
        }
        let list_error =
            |source| CollectError::List { what: plural(self.resource.kind), server: self.conn.server.clone(), source };
        let request = kube::core::Request::new(self.resource.path)
            .list(&params)
            .map_err(|e| list_error(kube::Error::BuildRequest(e)))?;
        // Until the caller reports a continue token, this is the last page.
        self.done = true;
        match crate::read::get_text(&self.conn.unretried, &self.conn.server, request, &self.conn.retry).await {
            Ok(text) => Ok(Some(text)),
            Err(crate::read::ReadError::Server(e)) => Err(CollectError::Server(e)),
            Err(crate::read::ReadError::Refused(e)) => Err(list_error(e)),
        }
    }

    /// Like [`Pages::next_text`], but a resource the plan can do without ([`Resource::without`])
    /// that the credentials may not list (403 on its first page) ends with a warning naming the
    /// permission and what goes unchecked, instead of failing the whole collection.
    async fn next_or_skip(&mut self) -> Result<Option<String>, CollectError> {
        let first = self.token.is_none();
        match self.next_text().await {
            Err(CollectError::List { what, server, source: kube::Error::Api(status) })
                if first && status.code == 403 && self.resource.without.is_some() =>
            {
                tracing::warn!(
                    "{server}: the credentials may not list {what} ({}); continuing without them, so the plan \
                     cannot check {}. Grant get and list on persistentvolumes and persistentvolumeclaims \
                     (check with `kubectl auth can-i list {what} -A`) to have them checked",
                    crate::read::summary(&kube::Error::Api(status.clone())),
                    self.resource.without.unwrap_or_default(),
                );
                Ok(None)
            }
            other => other,
        }
    }

    /// Record the page's `metadata.continue` (empty on the last page).
    fn set_continue(&mut self, token: &str) -> Result<(), CollectError> {
        if token.is_empty() {
            return Ok(());
        }
        if !self.seen_tokens.insert(token.to_string()) {
            return Err(CollectError::PaginationLoop {
                url: format!("{}{}", self.conn.server, self.resource.path),
                token: token.to_string(),
            });
        }
        self.token = Some(token.to_string());
        self.done = false;
        Ok(())
    }
}

fn plural(kind: &str) -> String {
    match kind {
        "PodDisruptionBudget" => "poddisruptionbudgets".to_string(),
        k => format!("{}s", k.to_lowercase()),
    }
}

/// The item with `apiVersion` and `kind` first, as kubectl prints list items.
fn with_type(item: Value, resource: &Resource) -> Value {
    let Value::Object(fields) = item else { return item };
    let mut out = Map::with_capacity(fields.len() + 2);
    out.insert("apiVersion".into(), Value::String(resource.api_version.to_string()));
    out.insert("kind".into(), Value::String(resource.kind.to_string()));
    // Moved, not cloned: a pod list page is megabytes of nested maps.
    out.extend(fields.into_iter().filter(|(k, _)| k != "apiVersion" && k != "kind"));
    Value::Object(out)
}

/// The collected objects as the `v1 List` that `kubectl get … -o json` prints.
pub fn to_kubectl_list(set: &ObjectSet) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "items": set.objects.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>(),
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_get_type_first() {
        let item = serde_json::json!({"metadata": {"name": "a"}, "status": {}});
        let typed = with_type(item, &RESOURCES[2]);
        let keys: Vec<&String> = typed.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "status"]);
        assert_eq!(typed["apiVersion"], "policy/v1");
        assert_eq!(plural("PodDisruptionBudget"), "poddisruptionbudgets");
        assert_eq!(plural("Node"), "nodes");
    }
}
