//! The HTTP face of the lab: URL routing for the core and group APIs, discovery, lists with
//! selectors and pagination, watches as newline-delimited JSON streams, Tables, and the
//! verbs of [`crate::api`], with injected faults applied first.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use serde_json::{Value, json};

use crate::api::{self, DeleteOptions};
use crate::apply::{self, ApplyOptions, Writer};
use crate::faults;
use crate::metrics::{self, Metrics, RequestLabels};
use crate::patch::PatchType;
use crate::query::{parse_query, query_bool, query_int, query_resource_version};
use crate::resources::{self, Alias, RESOURCES, ResId};
use crate::select::Filter;
use crate::state::{Shared, lock};
use crate::status::ApiError;
use crate::store::{self, Key, Part};
use crate::table;
use crate::watch_stream::watch_response;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(health))
        .route("/readyz", get(health))
        .route("/livez", get(health))
        .route("/metrics", get(metrics_text))
        .route("/openapi/v2", get(crate::openapi::serve_v2))
        .merge(crate::nodes::router())
        .merge(crate::faults_router())
        .fallback(dispatch)
        .layer(Extension(shared.metrics.clone()))
        .with_state(shared)
}

async fn health(Extension(metrics): Extension<Arc<Metrics>>, uri: Uri) -> &'static str {
    metrics.record(RequestLabels::non_resource(uri.path()), 200);
    "ok"
}

async fn metrics_text(Extension(metrics): Extension<Arc<Metrics>>) -> Response {
    let mut r = Response::new(Body::from(metrics.render()));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE));
    r
}

async fn version(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(crate::nodes::version_info(&shared))
}

pub fn json_response(code: u16, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON values serialise");
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON body already serialised (a stored object's text).
pub fn json_bytes_response(code: u16, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.details.retry_after_seconds.filter(|s| *s > 0) {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

#[derive(Debug)]
enum Route {
    Discovery(Value),
    Collection { res: ResId, ns: Option<String> },
    Item { res: ResId, ns: String, name: String, sub: Option<String> },
}

/// Route a path; `aliases` are the deprecated group/versions served at the cluster's version.
fn route(path: &str, aliases: &[&Alias]) -> Result<(Route, bool), ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || ApiError::no_route(path);
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => {
            return Ok((
                Route::Discovery(json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
                false,
            ));
        }
        ["apis"] => return Ok((Route::Discovery(resources::group_list(aliases)), false)),
        ["apis", g] => {
            return resources::group(g, aliases).map(|v| (Route::Discovery(v), false)).ok_or_else(not_found);
        }
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found()),
    };
    if rest.is_empty() {
        return resources::resource_list(group, version, aliases)
            .map(|v| (Route::Discovery(v), false))
            .ok_or_else(not_found);
    }
    let (rest, watch) = match rest {
        ["watch", r @ ..] => (r, true),
        r => (r, false),
    };
    let find = |p: &str| resources::find(group, version, p);
    let r = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if find(plural).is_some() && !(group.is_empty() && *plural == "status") =>
        {
            let res = find(plural).ok_or_else(not_found)?;
            if !RESOURCES[res].namespaced {
                return Err(not_found());
            }
            match tail {
                [] => Route::Collection { res, ns: Some(ns.to_string()) },
                [name] => Route::Item { res, ns: ns.to_string(), name: name.to_string(), sub: None },
                [name, sub] => {
                    Route::Item { res, ns: ns.to_string(), name: name.to_string(), sub: Some(sub.to_string()) }
                }
                _ => return Err(not_found()),
            }
        }
        [plural, tail @ ..] => {
            let res = find(plural).ok_or_else(not_found)?;
            match tail {
                [] => Route::Collection { res, ns: None },
                [name] if !RESOURCES[res].namespaced => {
                    Route::Item { res, ns: String::new(), name: name.to_string(), sub: None }
                }
                [name, sub] if !RESOURCES[res].namespaced => {
                    Route::Item { res, ns: String::new(), name: name.to_string(), sub: Some(sub.to_string()) }
                }
                _ => return Err(not_found()),
            }
        }
        [] => return Err(not_found()),
    };
    Ok((r, watch))
}

fn verb(method: &Method, route: &Route, watch: bool) -> &'static str {
    match (method, route) {
        (_, Route::Discovery(_)) => "discovery",
        (&Method::GET, Route::Collection { .. }) if watch => "watch",
        (&Method::GET, Route::Collection { .. }) => "list",
        (&Method::GET, Route::Item { .. }) => "get",
        (&Method::POST, Route::Item { sub: Some(s), .. }) if s == "eviction" => "eviction",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, Route::Collection { .. }) => "deletecollection",
        (&Method::DELETE, _) => "delete",
        _ => "other",
    }
}

/// Every API request: resolves a deprecated alias to the resource it views, serves it, and
/// then rewrites the alias's `apiVersion`, adds the apiserver's deprecation warning and counts
/// the request in `/metrics`.
async fn dispatch(
    State(shared): State<Arc<Shared>>,
    Extension(metrics): Extension<Arc<Metrics>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cluster = alias_cluster_version(&shared, uri.path());
    let aliases = cluster.map(resources::aliases_at).unwrap_or_default();
    let alias = alias_of(uri.path(), &aliases);
    let uri = alias.and_then(|a| replacement_uri(&uri, a)).unwrap_or(uri);
    let mut info = None;
    let mut response = handle(shared, method, uri, headers, body, &aliases, &mut info).await;
    if let Some(a) = alias {
        let watch = info.as_ref().is_some_and(|l| l.verb == "WATCH");
        response = alias_response(response, a, watch).await;
        if let Some(l) = info.as_mut() {
            a.group.clone_into(&mut l.group);
            a.version.clone_into(&mut l.version);
        }
        if cluster.is_some_and(|c| a.deprecated_at(c)) {
            let warning = format!("299 - \"{}\"", a.warning());
            if let Ok(v) = HeaderValue::from_str(&warning) {
                response.headers_mut().append(header::WARNING, v);
            }
            if let Some(l) = &info {
                metrics.mark_deprecated(a.group, a.version, &l.resource, &l.subresource, &a.removed_release());
            }
        }
    }
    if let Some(labels) = info {
        metrics.record(labels, response.status().as_u16());
    }
    response
}

/// The cluster's minor when `path` may touch a deprecated alias (`/apis`, or a group or
/// group/version that has one, or the OpenAPI index or document of one), so other requests skip
/// the look-up.
fn alias_cluster_version(shared: &Shared, path: &str) -> Option<stepstone_core::version::Minor> {
    let path = match path.strip_prefix("/openapi/v3") {
        Some("") | Some("/") => "/apis",
        Some(document) => document,
        None => path,
    };
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    if segs.next() != Some("apis") || segs.next().is_some_and(|g| !resources::may_alias(g, segs.next())) {
        return None;
    }
    let stored = crate::nodes::cluster_version(&shared.store());
    let version = stored.or_else(|| crate::nodes::version_info(shared)["gitVersion"].as_str()?.parse().ok())?;
    Some(version.minor())
}

/// The served alias a resource path under `/apis/{group}/{version}/` names.
fn alias_of(path: &str, aliases: &[&'static Alias]) -> Option<&'static Alias> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let ["apis", g, v, rest @ ..] = segs.as_slice() else { return None };
    let rest = match rest {
        ["watch", r @ ..] => r,
        r => r,
    };
    let plural = match rest {
        ["namespaces", _, plural, ..] => *plural,
        [plural, ..] => *plural,
        [] => return None,
    };
    aliases.iter().copied().find(|a| a.group == *g && a.version == *v && a.def().plural == plural)
}

/// The same request against the resource the alias views.
fn replacement_uri(uri: &Uri, alias: &Alias) -> Option<Uri> {
    let def = alias.def();
    let rest = uri.path().strip_prefix(&format!("/apis/{}/{}", alias.group, alias.version))?;
    let base =
        if def.group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{}/{}", def.group, def.version) };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("{base}{rest}{query}").parse().ok()
}

/// Give objects of the alias's kind (and its lists and watch events) the alias's `apiVersion`.
fn to_alias_version(v: &mut Value, alias: &Alias) {
    let def = alias.def();
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind == def.kind {
        v["apiVersion"] = json!(alias.api_version());
    } else if kind == def.list_kind() {
        v["apiVersion"] = json!(alias.api_version());
        for item in v.get_mut("items").and_then(Value::as_array_mut).into_iter().flatten() {
            to_alias_version(item, alias);
        }
    } else if v.get("type").is_some()
        && let Some(object) = v.get_mut("object")
    {
        to_alias_version(object, alias);
    }
}

/// Rewrite a response to an alias request. Watch streams are rewritten event by event: the lab
/// writes one event per chunk; anything that does not parse passes through unchanged.
async fn alias_response(response: Response, alias: &'static Alias, watch: bool) -> Response {
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let rewrite = move |bytes: &[u8]| -> Option<Vec<u8>> {
        let mut v: Value = serde_json::from_slice(bytes).ok()?;
        to_alias_version(&mut v, alias);
        serde_json::to_vec(&v).ok()
    };
    if watch {
        use futures::StreamExt;
        let events = body.into_data_stream().map(move |chunk| {
            chunk.map(|b| {
                let mut out = Vec::with_capacity(b.len() + 16);
                for line in b.split_inclusive(|c| *c == b'\n') {
                    let (text, newline) = line.strip_suffix(b"\n").map_or((line, false), |t| (t, true));
                    out.extend(rewrite(text).unwrap_or_else(|| text.to_vec()));
                    if newline {
                        out.push(b'\n');
                    }
                }
                Bytes::from(out)
            })
        });
        return Response::from_parts(parts, Body::from_stream(events));
    }
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let out = rewrite(&bytes).map_or(bytes, Bytes::from);
    Response::from_parts(parts, Body::from(out))
}

/// The `apiserver_request_total` labels of a resource request (discovery is not counted).
fn request_labels(
    method: &Method,
    route: &Route,
    watch: bool,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Option<RequestLabels> {
    let (res, scope, sub) = match route {
        Route::Discovery(_) => return None,
        Route::Collection { res, .. } if method == Method::POST => (*res, "resource", ""),
        Route::Collection { res, ns: Some(_) } => (*res, "namespace", ""),
        Route::Collection { res, ns: None } => (*res, "cluster", ""),
        Route::Item { res, sub, .. } => (*res, "resource", sub.as_deref().unwrap_or("")),
    };
    let apply = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/apply-patch"));
    let verb = match *method {
        Method::GET | Method::HEAD if watch => "WATCH",
        Method::GET | Method::HEAD if scope == "resource" => "GET",
        Method::GET | Method::HEAD => "LIST",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH if apply => "APPLY",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "other",
    };
    let def = &RESOURCES[res];
    Some(RequestLabels {
        component: "apiserver",
        dry_run: metrics::dry_run_label(query.get("dryRun").map(String::as_str)),
        group: def.group.to_string(),
        resource: def.plural.to_string(),
        scope,
        subresource: sub.to_string(),
        verb,
        version: def.version.to_string(),
    })
}

async fn handle(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    aliases: &[&Alias],
    info: &mut Option<RequestLabels>,
) -> Response {
    let path = uri.path().to_string();
    if path.starts_with("/openapi/") {
        // get, cordon, drain, scale and delete never ask; create and apply read the v3 index to
        // learn that the server validates fields itself, and fall back to v2 for kinds v3 lacks.
        shared.stats.count("openapi");
        let doc = if path == "/openapi/v3" {
            Some(crate::openapi::root(aliases))
        } else {
            crate::openapi::group_version(&path, aliases)
        };
        return match doc {
            Some(d) => json_response(200, &d),
            None => error_response(&ApiError::no_route(&path)),
        };
    }
    if method == Method::POST
        && let Some(answer) = crate::access::review(&path, &body)
    {
        shared.stats.count("create");
        return answer.map_or_else(|e| error_response(&e), |v| json_response(201, &v));
    }
    let query = parse_query(uri.query());
    let (route, path_watch) = match route(&path, aliases) {
        Ok(r) => r,
        Err(e) => {
            shared.stats.count("other");
            return error_response(&e);
        }
    };
    let watch = path_watch || query.get("watch").is_some_and(|w| query_bool(w));
    shared.stats.count(verb(&method, &route, watch));
    *info = request_labels(&method, &route, watch, &query, &headers);
    // Faults hit resource requests, not discovery, so clients can still start.
    if !matches!(route, Route::Discovery(_)) {
        let (fault, latency) = {
            let cfg = lock(&shared.faults);
            let roll = lock(&shared.fault_rng).unit();
            (faults::injected(&cfg, roll), cfg.latency())
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if let Some(e) = fault {
            return error_response(&e);
        }
        let (res, ns) = match &route {
            Route::Collection { res, ns } => (Some(*res), ns.as_deref()),
            Route::Item { res, ns, .. } => (Some(*res), Some(ns.as_str()).filter(|n| !n.is_empty())),
            Route::Discovery(_) => (None, None),
        };
        let forbidden = res.and_then(|res| {
            crate::faults_forbid::refused(&lock(&shared.faults).forbidden, res, verb(&method, &route, watch), ns)
        });
        if let Some(e) = forbidden {
            return error_response(&e);
        }
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = match object_body(&method, &content_type, body) {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let writer = Writer::from_request(query.get("fieldManager").map(String::as_str), user_agent, shared.now());
    let result = match (method, route) {
        (Method::GET, Route::Discovery(v)) => Ok(json_response(200, &v)),
        (_, Route::Discovery(_)) => {
            Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource"))
        }
        (Method::GET, Route::Collection { res, ns }) if watch => watch_response(&shared, res, ns, &query, &accept),
        (Method::GET, Route::Collection { res, ns }) => list(&shared, res, ns, &query, &accept),
        (Method::POST, Route::Collection { res, ns }) => {
            let dry = is_dry_run(&query);
            parse_body(&body).and_then(|obj| {
                let now = shared.now();
                let created = api::create(&mut shared.store(), res, obj, ns.as_deref(), now, dry, &writer)?;
                Ok(json_response(201, &created))
            })
        }
        (Method::DELETE, Route::Collection { res, ns }) => delete_collection(&shared, res, ns, &query, &body),
        (method, Route::Item { res, ns, name, sub }) => {
            item(&shared, method, res, &ns, &name, sub.as_deref(), &query, &accept, &content_type, &body, &writer)
        }
        _ => Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource")),
    };
    shared.wake.notify_one();
    result.unwrap_or_else(|e| error_response(&e))
}

/// The JSON of a create or update body. YAML is read as the apiserver reads it; protobuf (what
/// kubectl's typed generators such as `kubectl create deployment` send) for the kinds
/// [`crate::protobuf`] knows; other media types get the apiserver's 415, naming what the lab
/// accepts. PATCH bodies are left to the patch types.
fn object_body(method: &Method, content_type: &str, body: Bytes) -> Result<Bytes, ApiError> {
    if !matches!(*method, Method::POST | Method::PUT) || body.is_empty() {
        return Ok(body);
    }
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "" | "*/*" | "application/json" => Ok(body),
        "application/yaml" => {
            let text = std::str::from_utf8(&body).map_err(|_| {
                ApiError::bad_request("the body of the request could not be decoded as YAML: not UTF-8")
            })?;
            let value: Value = serde_saphyr::from_str(text).map_err(|e| {
                ApiError::bad_request(format!("the body of the request could not be decoded as YAML: {e}"))
            })?;
            Ok(Bytes::from(serde_json::to_vec(&value).expect("a JSON value serialises")))
        }
        "application/vnd.kubernetes.protobuf" => {
            let value = crate::protobuf::to_json(&body)?;
            Ok(Bytes::from(serde_json::to_vec(&value).expect("a JSON value serialises")))
        }
        _ => Err(ApiError::unsupported_body()),
    }
}

/// `dryRun=All`: answer what the write would store and change nothing. The value is checked in
/// [`handle`] before any verb runs.
fn is_dry_run(query: &HashMap<String, String>) -> bool {
    query.get("dryRun").is_some_and(|d| d == "All")
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded as JSON: {e}")))
}

fn delete_options(query: &HashMap<String, String>, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let mut opts = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        DeleteOptions::from_json(&parse_body(body)?)
    };
    if let Some(g) = query_int(query, "gracePeriodSeconds")? {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(p) = query.get("propagationPolicy") {
        opts.propagation = Some(p.clone());
    }
    if is_dry_run(query) {
        opts.dry_run = true;
    }
    Ok(opts)
}

#[allow(clippy::too_many_arguments)]
fn item(
    shared: &Shared,
    method: Method,
    res: ResId,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    query: &HashMap<String, String>,
    accept: &str,
    content_type: &str,
    body: &[u8],
    writer: &Writer,
) -> Result<Response, ApiError> {
    let def = &RESOURCES[res];
    let now = shared.now();
    let is_apply = apply::is_apply(content_type);
    let dry_run = is_dry_run(query);
    if method == Method::PATCH {
        apply::validate_options(
            is_apply,
            query.get("fieldManager").map(String::as_str),
            query.get("force").map(String::as_str),
        )?;
    }
    match (method, sub) {
        (Method::GET, None | Some("status")) => {
            let obj =
                shared.store().get_stored(res, ns, name).cloned().ok_or_else(|| ApiError::not_found(def, name))?;
            if table::wants_table(accept) {
                let rv = shared.store().resource_version();
                let include = query.get("includeObject").map(String::as_str).unwrap_or("Metadata");
                return Ok(json_response(200, &table::table(res, &[obj], now, rv, None, include)));
            }
            Ok(json_bytes_response(200, obj.json().clone()))
        }
        (Method::PATCH, None | Some("status")) if is_apply && (sub.is_none() || def.status) => {
            let part = match sub {
                Some(_) => Part::Status,
                None if def.status => Part::Main,
                None => Part::All,
            };
            let opts = ApplyOptions {
                writer: writer.clone(),
                force: query.get("force").is_some_and(|f| f == "true"),
                dry_run,
            };
            let (code, obj) = apply::serve(&mut shared.store(), res, ns, name, part, body, &opts)?;
            Ok(json_response(code, &obj))
        }
        (Method::PUT, None) => {
            let obj = api::update(&mut shared.store(), res, parse_body(body)?, ns, name, Part::Main, writer, dry_run)?;
            Ok(json_response(200, &obj))
        }
        (Method::PUT, Some("status")) if def.status => {
            let obj =
                api::update(&mut shared.store(), res, parse_body(body)?, ns, name, Part::Status, writer, dry_run)?;
            Ok(json_response(200, &obj))
        }
        (Method::PATCH, None) => {
            let kind = PatchType::from_content_type(content_type)?;
            let part = if def.status { Part::Main } else { Part::All };
            let obj = api::patch(&mut shared.store(), res, ns, name, kind, body, part, writer, dry_run)?;
            Ok(json_response(200, &obj))
        }
        (Method::PATCH, Some("status")) if def.status => {
            let kind = PatchType::from_content_type(content_type)?;
            let obj = api::patch(&mut shared.store(), res, ns, name, kind, body, Part::Status, writer, dry_run)?;
            Ok(json_response(200, &obj))
        }
        (Method::DELETE, None) => {
            let opts = delete_options(query, body)?;
            let d = api::delete(&mut shared.store(), res, ns, name, &opts, now)?;
            if res == resources::PODS || !d.gone {
                return Ok(json_response(200, &d.object));
            }
            let mut details = json!({"name": name, "kind": def.plural, "uid": store::uid_of(&d.object)});
            if !def.group.is_empty() {
                details["group"] = json!(def.group);
            }
            Ok(json_response(200, &crate::status::success(200, Some(details))))
        }
        (Method::GET, Some("scale")) if def.scale => {
            let obj = shared.store().get(res, ns, name).ok_or_else(|| ApiError::not_found(def, name))?;
            Ok(json_response(200, &api::scale_of(res, &obj)))
        }
        (Method::PUT, Some("scale")) if def.scale => {
            let scale = parse_body(body)?;
            let scale_def = resources::ResourceDef { kind: "Scale", group: "autoscaling", version: "v1", ..*def };
            crate::decode::check_scale(&scale).map_err(|why| crate::decode::body_error(&scale_def, &why))?;
            let out = api::set_scale(&mut shared.store(), res, ns, name, &scale, writer, dry_run)?;
            Ok(json_response(200, &out))
        }
        (Method::PATCH, Some("scale")) if def.scale => {
            let kind = PatchType::from_content_type(content_type)?;
            let mut store = shared.store();
            let obj = store.get(res, ns, name).ok_or_else(|| ApiError::not_found(def, name))?;
            let patched = crate::patch::apply(kind, &api::scale_of(res, &obj), body)?;
            crate::decode::check_scale(&patched).map_err(|why| ApiError::invalid_patch(&patched, &why))?;
            let out = api::set_scale(&mut store, res, ns, name, &patched, writer, dry_run)?;
            Ok(json_response(200, &out))
        }
        (Method::POST, Some("eviction")) if res == resources::PODS => {
            let mut eviction = if body.is_empty() { json!({}) } else { parse_body(body)? };
            if dry_run && let Some(fields) = eviction.as_object_mut() {
                // The query's dryRun is the eviction's CreateOptions; it covers the delete too.
                let options = fields.entry("deleteOptions").or_insert_with(|| json!({}));
                if let Some(options) = options.as_object_mut() {
                    options.insert("dryRun".into(), json!(["All"]));
                }
            }
            let out = api::evict(&mut shared.store(), ns, name, &eviction, now)?;
            Ok(json_response(201, &out))
        }
        (_, Some(s @ ("log" | "exec" | "attach" | "portforward"))) if res == resources::PODS => {
            shared.store().get(res, ns, name).ok_or_else(|| ApiError::not_found(def, name))?;
            Err(crate::access::no_containers(ns, name, s))
        }
        (_, Some(s)) if !matches!(s, "status" | "scale" | "eviction") => {
            Err(ApiError::no_route(&format!("{}/{name}/{s}", def.plural)))
        }
        _ => Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource")),
    }
}

fn encode_continue(key: &Key) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}\u{0}{}", key.0, key.1))
}

fn decode_continue(token: &str) -> Result<Key, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: the continue token could not be decoded; restart the list without it",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let s = String::from_utf8(bytes).map_err(|_| bad())?;
    let (ns, name) = s.split_once('\u{0}').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

fn list(
    shared: &Shared,
    res: ResId,
    ns: Option<String>,
    query: &HashMap<String, String>,
    accept: &str,
) -> Result<Response, ApiError> {
    let filter = Filter::from_query(res, query)?;
    // Upstream ignores a limit of zero or below.
    let limit = match query_int(query, "limit")? {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    query_resource_version(query)?;
    // Read (and refused when not a number) like every list option, though a list ignores it.
    query_int(query, "timeoutSeconds")?;
    let after = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_continue(c)?),
        None => None,
    };
    let (items, rv, cont) = {
        let store = shared.store();
        let mut items = Vec::new();
        let mut last: Option<Key> = None;
        let mut more = false;
        for (key, obj) in store.iter_stored(res, ns.as_deref(), after.as_ref()) {
            if !filter.matches_stored(obj) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(obj.clone());
            last = Some(key.clone());
        }
        let cont = if more { last.as_ref().map(encode_continue) } else { None };
        (items, store.resource_version(), cont)
    };
    let now = shared.now();
    if table::wants_table(accept) {
        let include = query.get("includeObject").map(String::as_str).unwrap_or("Metadata");
        let mut r = Response::new(Body::from(table::table_bytes(res, &items, now, rv, cont, include)));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(r);
    }
    let def = &RESOURCES[res];
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = &cont {
        metadata["continue"] = json!(c);
    }
    // Written piece by piece: large lists are serialised without copying the objects.
    let mut out = Vec::with_capacity(items.len() * 1024 + 256);
    out.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut out, &def.list_kind()).expect("string");
    out.extend_from_slice(b",\"apiVersion\":");
    serde_json::to_writer(&mut out, &def.api_version()).expect("string");
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut out, &metadata).expect("object");
    out.extend_from_slice(b",\"items\":[");
    for (i, obj) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(obj.json());
    }
    out.extend_from_slice(b"]}");
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

fn delete_collection(
    shared: &Shared,
    res: ResId,
    ns: Option<String>,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let filter = Filter::from_query(res, query)?;
    let opts = delete_options(query, body)?;
    let now = shared.now();
    let mut store = shared.store();
    let keys: Vec<Key> = store
        .iter(res, ns.as_deref(), None)
        .filter(|o| filter.matches(o))
        .map(|o| (store::namespace_of(&o).to_string(), store::name_of(&o).to_string()))
        .collect();
    let mut items = Vec::new();
    for (ns, name) in keys {
        if let Ok(d) = api::delete(&mut store, res, &ns, &name, &opts, now) {
            items.push(d.object);
        }
    }
    let def = &RESOURCES[res];
    let rv = store.resource_version();
    Ok(json_response(
        200,
        &json!({"kind": def.list_kind(), "apiVersion": def.api_version(),
        "metadata": {"resourceVersion": rv.to_string()}, "items": items.iter().map(|o| (**o).clone()).collect::<Vec<Value>>()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_core_and_group_paths() {
        let (r, _) = route("/api/v1/namespaces/default/pods/web-0/eviction", &[]).unwrap();
        assert!(
            matches!(r, Route::Item { res, ref name, sub: Some(ref s), .. } if res == resources::PODS && name == "web-0" && s == "eviction")
        );
        let (r, _) = route("/api/v1/nodes/n1/status", &[]).unwrap();
        assert!(matches!(r, Route::Item { res, sub: Some(_), .. } if res == resources::NODES));
        let (r, _) = route("/apis/apps/v1/namespaces/x/deployments", &[]).unwrap();
        assert!(matches!(r, Route::Collection { res, ns: Some(_) } if res == resources::DEPLOYMENTS));
        let (r, _) = route("/api/v1/namespaces/kube-system", &[]).unwrap();
        assert!(
            matches!(r, Route::Item { res, ref name, .. } if res == resources::NAMESPACES && name == "kube-system")
        );
        let (r, _) = route("/api/v1/pods", &[]).unwrap();
        assert!(matches!(r, Route::Collection { res, ns: None } if res == resources::PODS));
        let (_, w) = route("/api/v1/watch/pods", &[]).unwrap();
        assert!(w);
        assert_eq!(route("/api/v1/frobs", &[]).unwrap_err().code, 404);
    }

    #[test]
    fn query_decoding() {
        let q = parse_query(Some("fieldSelector=spec.nodeName%3Dn1&labelSelector=app+in+(a%2Cb)&limit=500"));
        assert_eq!(q["fieldSelector"], "spec.nodeName=n1");
        assert_eq!(q["labelSelector"], "app in (a,b)");
        assert_eq!(q["limit"], "500");
    }

    #[test]
    fn continue_tokens_round_trip() {
        let k = ("ns".to_string(), "pod-1".to_string());
        assert_eq!(decode_continue(&encode_continue(&k)).unwrap(), k);
        assert!(decode_continue("!!").is_err());
    }

    #[test]
    fn object_bodies_are_json_yaml_or_known_protobuf_and_an_empty_envelope_is_refused() {
        let yaml = Bytes::from_static(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: \"1\"\n");
        let json_body = object_body(&Method::POST, "application/yaml", yaml).unwrap();
        let v: Value = serde_json::from_slice(&json_body).unwrap();
        assert_eq!((v["kind"].as_str(), v["data"]["k"].as_str()), (Some("ConfigMap"), Some("1")));
        let plain = Bytes::from_static(b"{}");
        assert_eq!(object_body(&Method::PUT, "application/json; charset=utf-8", plain.clone()).unwrap(), plain);
        let e = object_body(&Method::POST, "application/vnd.kubernetes.protobuf", Bytes::from_static(b"k8s\0"))
            .unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (415, "UnsupportedMediaType"));
        // PATCH bodies are read by their patch type, not here.
        let patch = Bytes::from_static(b"[]");
        assert_eq!(object_body(&Method::PATCH, "application/json-patch+json", patch.clone()).unwrap(), patch);
        assert_eq!(object_body(&Method::POST, "application/yaml", Bytes::from_static(b"a: [")).unwrap_err().code, 400);
    }
}
