//! Reading the live sources `stepstone apis` judges: objects of the kinds the removed-API data
//! names (for their `managedFields` and last-applied annotations), Helm release records
//! (`owner=helm` Secrets and ConfigMaps in every namespace), the `kube-system/kubeadm-config`
//! ConfigMap and the apiserver's `/metrics` text.
//!
//! Only fetching lives here; judging is `stepstone_apis`'s. A source the credentials may not read
//! (403) or the server does not have (404) becomes a note, not a failure: the other sources still
//! say something useful. Any other failed read fails the fetch: a report that read nothing must
//! not say "nothing breaks". Reads are retried as [`crate::read`] says.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{GetParams, ListParams};
use kube::core::Request;
use serde_json::{Map, Value};

use crate::collect::{Connection, DEFAULT_PAGE_SIZE};

#[derive(Debug, thiserror::Error)]
pub enum ApisFetchError {
    #[error(
        "reading {what} from {server}: {source}; check that the server is reachable and the credentials work (`kubectl get --raw /version`)"
    )]
    Request {
        what: String,
        server: String,
        #[source]
        source: kube::Error,
    },
    /// A read the server kept failing through every retry.
    #[error("the API server kept failing")]
    Server(#[source] crate::read::ServerError),
    #[error("{url}: the response is not what the Kubernetes API sends: {reason}")]
    Unexpected { url: String, reason: String },
    #[error("{url}: the server returned the continue token '{token}' twice; stopping instead of looping forever")]
    PaginationLoop { url: String, token: String },
}

/// What to read.
#[derive(Debug, Clone)]
pub struct ApiSourceRequest {
    /// Kinds whose objects are read for managedFields (from the removed-API data).
    pub kinds: BTreeSet<String>,
    /// API groups worth discovering (the data's groups and their replacements' groups).
    pub groups: BTreeSet<String>,
    /// Read Helm release records.
    pub helm: bool,
    /// Read `/metrics`.
    pub metrics: bool,
    pub page_size: u32,
}

impl ApiSourceRequest {
    pub fn new(kinds: BTreeSet<String>, groups: BTreeSet<String>) -> ApiSourceRequest {
        ApiSourceRequest { kinds, groups, helm: false, metrics: true, page_size: DEFAULT_PAGE_SIZE }
    }
}

/// Everything read, as raw JSON / text.
#[derive(Debug, Default)]
pub struct LiveApiSources {
    /// The apiserver's `/version` `gitVersion`.
    pub server_version: Option<String>,
    /// Objects with kind and apiVersion filled in: data kinds, Helm records, kubeadm-config.
    pub objects: Vec<Value>,
    /// `/metrics` text, when readable.
    pub metrics: Option<String>,
    /// `group/version resource` of every list that was read.
    pub listed: Vec<String>,
    /// Sources that could not be read, each with the fix.
    pub notes: Vec<String>,
}

/// A listable resource chosen for a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listable {
    group_version: String,
    resource: String,
    kind: String,
}

/// Events come and go by the thousand and are posted by every component; the apiserver metric
/// already shows clients that post them through an old version, so they are not listed.
const SKIPPED_KINDS: &[&str] = &["Event"];

pub async fn fetch(conn: &Connection, req: &ApiSourceRequest) -> Result<LiveApiSources, ApisFetchError> {
    let mut out = LiveApiSources::default();
    let version = crate::collect::server_version_info(conn).await.map_err(|e| match e {
        crate::collect::CollectError::Server(e) => ApisFetchError::Server(e),
        crate::collect::CollectError::Version { source, .. } => {
            ApisFetchError::Request { what: "/version".into(), server: conn.server.clone(), source }
        }
        other => ApisFetchError::Unexpected { url: format!("{}/version", conn.server), reason: other.to_string() },
    })?;
    out.server_version = Some(version.git_version);

    for target in discover(conn, req, &mut out.notes).await? {
        let path = format!("/apis/{}/{}", target.group_version, target.resource);
        match list_all(conn, &path, &ListParams::default(), req.page_size).await? {
            Ok(items) => {
                out.listed.push(format!("{} {}", target.group_version, target.resource));
                out.objects.extend(items.iter().map(|i| with_type(i, &target.group_version, &target.kind)));
            }
            Err(Skip(note)) => out.notes.push(format!("{} {}: {note}", target.group_version, target.resource)),
        }
    }

    let kubeadm_path = "/api/v1/namespaces/kube-system/configmaps";
    match get_text(conn, kubeadm_path, "kubeadm-config").await? {
        Ok(text) => {
            let obj = parse_json(&format!("{kubeadm_path}/kubeadm-config"), &text)?;
            out.objects.push(with_type(&obj, "v1", "ConfigMap"));
        }
        Err(Skip(note)) => out.notes.push(format!("ConfigMap kube-system/kubeadm-config: {note}")),
    }

    if req.helm {
        let helm = ListParams::default().labels("owner=helm");
        for (path, kind) in [("/api/v1/secrets", "Secret"), ("/api/v1/configmaps", "ConfigMap")] {
            match list_all(conn, path, &helm, req.page_size).await? {
                Ok(items) => {
                    out.listed.push(format!("v1 {} (owner=helm)", path.trim_start_matches("/api/v1/")));
                    out.objects.extend(items.iter().map(|i| with_type(i, "v1", kind)));
                }
                Err(Skip(note)) => out.notes.push(format!("Helm release records ({path}): {note}")),
            }
        }
    }

    if req.metrics {
        match get_text(conn, "", "metrics").await? {
            Ok(text) => out.metrics = Some(text),
            Err(Skip(note)) => out.notes.push(format!("apiserver /metrics: {note}")),
        }
    }
    Ok(out)
}

/// A source that could not be read, with the reason and the fix.
struct Skip(String);

/// A read's outcome: the text, a source to skip with a note, or a failure of the whole fetch.
type Read<T> = Result<Result<T, Skip>, ApisFetchError>;

/// The note for a source these credentials may not read or this server does not have.
fn skip_reason(e: &kube::Error, what: &str) -> Option<String> {
    match e {
        kube::Error::Api(status) if status.code == 403 => {
            Some(format!("forbidden for these credentials; grant {what} (check with `kubectl auth can-i {what}`)"))
        }
        kube::Error::Api(status) if status.code == 404 => Some("not found on this server".to_string()),
        _ => None,
    }
}

fn verb_for(what: &str) -> String {
    if what.ends_with("/metrics") {
        "get /metrics (nonResourceURLs)".to_string()
    } else if what.starts_with("list ") {
        what.to_string()
    } else {
        format!("get {what}")
    }
}

/// GET `{parent}/{name}` as text.
async fn get_text(conn: &Connection, parent: &str, name: &str) -> Read<String> {
    let what = format!("{parent}/{name}");
    let request = Request::new(parent).get(name, &GetParams::default()).map_err(|e| ApisFetchError::Request {
        what: what.clone(),
        server: conn.server.clone(),
        source: kube::Error::BuildRequest(e),
    })?;
    read(conn, request, &what).await
}

/// One page of a list as text.
async fn list_text(conn: &Connection, path: &str, params: &ListParams) -> Read<String> {
    let what = format!("list {path}");
    let request = Request::new(path).list(params).map_err(|e| ApisFetchError::Request {
        what: what.clone(),
        server: conn.server.clone(),
        source: kube::Error::BuildRequest(e),
    })?;
    read(conn, request, &what).await
}

async fn read(conn: &Connection, request: http::Request<Vec<u8>>, what: &str) -> Read<String> {
    match crate::read::get_text(&conn.unretried, &conn.server, request, &conn.retry).await {
        Ok(text) => Ok(Ok(text)),
        Err(crate::read::ReadError::Server(e)) => Err(ApisFetchError::Server(e)),
        Err(crate::read::ReadError::Refused(e)) => match skip_reason(&e, &verb_for(what)) {
            Some(note) => Ok(Err(Skip(note))),
            None => Err(ApisFetchError::Request { what: what.to_string(), server: conn.server.clone(), source: e }),
        },
    }
}

fn parse_json(url: &str, text: &str) -> Result<Value, ApisFetchError> {
    serde_json::from_str(text)
        .map_err(|e| ApisFetchError::Unexpected { url: url.to_string(), reason: format!("invalid JSON: {e}") })
}

/// Pick one listable resource per wanted kind: the group's preferred version first, so objects
/// are read through the version the server stores and serves best.
async fn discover(
    conn: &Connection,
    req: &ApiSourceRequest,
    notes: &mut Vec<String>,
) -> Result<Vec<Listable>, ApisFetchError> {
    let text = match get_text(conn, "", "apis").await? {
        Ok(t) => t,
        Err(Skip(note)) => {
            notes.push(format!("API discovery (/apis): {note}; objects were not read for managedFields"));
            return Ok(Vec::new());
        }
    };
    let groups = parse_json("/apis", &text)?;
    let mut chosen: BTreeMap<String, Listable> = BTreeMap::new();
    for group in groups.get("groups").and_then(Value::as_array).into_iter().flatten() {
        let name = group.get("name").and_then(Value::as_str).unwrap_or("");
        if !req.groups.contains(name) {
            continue;
        }
        let preferred = group.pointer("/preferredVersion/groupVersion").and_then(Value::as_str);
        let mut versions: Vec<&str> = group
            .get("versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.get("groupVersion").and_then(Value::as_str))
            .collect();
        versions.sort_by_key(|gv| Some(*gv) != preferred);
        for gv in versions {
            let (group_name, version) = gv.split_once('/').unwrap_or(("", gv));
            let text = match get_text(conn, &format!("/apis/{group_name}"), version).await? {
                Ok(t) => t,
                Err(Skip(note)) => {
                    notes.push(format!("API discovery ({gv}): {note}"));
                    continue;
                }
            };
            let list = parse_json(&format!("/apis/{gv}"), &text)?;
            for r in list.get("resources").and_then(Value::as_array).into_iter().flatten() {
                let resource = r.get("name").and_then(Value::as_str).unwrap_or("");
                let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
                let listable = r.get("verbs").and_then(Value::as_array).is_some_and(|v| v.iter().any(|x| x == "list"));
                if resource.contains('/') || !listable || !req.kinds.contains(kind) || SKIPPED_KINDS.contains(&kind) {
                    continue;
                }
                chosen.entry(kind.to_string()).or_insert_with(|| Listable {
                    group_version: gv.to_string(),
                    resource: resource.to_string(),
                    kind: kind.to_string(),
                });
            }
        }
    }
    Ok(chosen.into_values().collect())
}

/// List a path across all namespaces, page by page.
async fn list_all(conn: &Connection, path: &str, params: &ListParams, page_size: u32) -> Read<Vec<Value>> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    let mut seen = BTreeSet::new();
    loop {
        let mut p = params.clone();
        if page_size > 0 {
            p = p.limit(page_size);
        }
        if let Some(t) = &token {
            p = p.continue_token(t);
        }
        let text = match list_text(conn, path, &p).await? {
            Ok(text) => text,
            Err(skip) => return Ok(Err(skip)),
        };
        let url = format!("{}{path}", conn.server);
        let page = parse_json(&url, &text)?;
        let page_items = page
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| ApisFetchError::Unexpected { url: url.clone(), reason: "no \"items\" array".into() })?;
        items.extend(page_items.iter().cloned());
        match page.pointer("/metadata/continue").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            Some(next) if seen.insert(next.to_string()) => token = Some(next.to_string()),
            Some(next) => return Err(ApisFetchError::PaginationLoop { url, token: next.to_string() }),
            None => break,
        }
    }
    Ok(Ok(items))
}

/// The item with `apiVersion` and `kind` first (list items come without them).
fn with_type(item: &Value, api_version: &str, kind: &str) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version.to_string()));
    out.insert("kind".into(), Value::String(kind.to_string()));
    if let Some(obj) = item.as_object() {
        for (k, v) in obj {
            if k != "apiVersion" && k != "kind" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}
