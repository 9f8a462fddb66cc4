//! A loopback HTTP server that answers like a kube-apiserver, from list responses recorded in the
//! API's own shape: typed `XxxList` documents whose items carry no kind, `continue` tokens and
//! `remainingItemCount` honouring `limit`, `/version`, bearer-token auth and `Status` errors.
//! Shared by the collector tests and the CLI tests (`#[path]` include).

// Each including test binary uses a different subset.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const TOKEN: &str = "abcdef.0123456789abcdef";

pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../stepstone-kube/tests/fixtures")).join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[derive(Default)]
pub struct Api {
    pub lists: BTreeMap<String, Value>,
    pub version: Value,
    /// Paths answered with 403 Forbidden.
    pub forbidden: Vec<String>,
    /// Every request: path and query.
    pub log: Mutex<Vec<String>>,
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code.as_u16()});
    (code, axum::Json(body)).into_response()
}

async fn serve(
    State(api): State<Arc<Api>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let path = uri.path().to_string();
    api.log.lock().unwrap().push(format!("{path}?{}", uri.query().unwrap_or("")));
    if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some(&format!("Bearer {TOKEN}")) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized".into());
    }
    if path == "/version" {
        return axum::Json(api.version.clone()).into_response();
    }
    if api.forbidden.contains(&path) {
        let resource = path.rsplit('/').next().unwrap_or("");
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{resource} is forbidden: User \"viewer\" cannot list resource \"{resource}\" at the cluster scope"
            ),
        );
    }
    let Some(list) = api.lists.get(&path) else {
        return status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource".into());
    };
    let items = list["items"].as_array().unwrap();
    // Continue tokens are opaque to clients; this one encodes the list path and the offset.
    let start = match query.get("continue") {
        None => 0,
        Some(token) => match token.strip_prefix(&format!("{path}|")).and_then(|o| o.parse::<usize>().ok()) {
            Some(offset) => offset,
            None => {
                return status(
                    StatusCode::GONE,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result.".into(),
                );
            }
        },
    };
    let limit = query.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(items.len());
    let mut page = list.clone();
    page["items"] = Value::Array(items[start..end].to_vec());
    if end < items.len() {
        page["metadata"]["continue"] = Value::String(format!("{path}|{end}"));
        page["metadata"]["remainingItemCount"] = json!(items.len() - end);
    }
    axum::Json(page).into_response()
}

pub async fn start(api: Api) -> (SocketAddr, Arc<Api>) {
    let api = Arc::new(api);
    let app = axum::Router::new().fallback(serve).with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, api)
}

pub fn recorded_api() -> Api {
    let mut lists = BTreeMap::new();
    for (path, file) in [
        ("/api/v1/nodes", "nodes.json"),
        ("/api/v1/pods", "pods.json"),
        ("/apis/policy/v1/poddisruptionbudgets", "poddisruptionbudgets.json"),
        ("/apis/apps/v1/deployments", "deployments.json"),
        ("/apis/apps/v1/replicasets", "replicasets.json"),
        ("/apis/apps/v1/statefulsets", "statefulsets.json"),
        ("/apis/apps/v1/daemonsets", "daemonsets.json"),
        ("/api/v1/persistentvolumes", "persistentvolumes.json"),
        ("/api/v1/persistentvolumeclaims", "persistentvolumeclaims.json"),
    ] {
        lists.insert(path.to_string(), fixture(file));
    }
    Api { lists, version: fixture("version.json"), ..Default::default() }
}

/// A kubeconfig with a live context `lab` (current) and a context `dead` pointing at a closed port.
pub fn kubeconfig(addr: SocketAddr, tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("stepstone-collect-{}-{tag}.kubeconfig", std::process::id()));
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: http://{addr}
- name: dead
  cluster:
    server: http://127.0.0.1:1
contexts:
- name: lab
  context:
    cluster: lab
    user: viewer
- name: dead
  context:
    cluster: dead
    user: viewer
current-context: lab
users:
- name: viewer
  user:
    token: {TOKEN}
"
    );
    std::fs::write(&path, text).unwrap();
    path
}
