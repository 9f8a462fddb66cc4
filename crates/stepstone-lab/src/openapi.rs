//! The lab's OpenAPI documents. v3: one document per served group/version, with the paths that
//! tell kubectl every resource's PATCH accepts `fieldValidation` (so `kubectl create/apply`
//! validate on the server) and the schemas of the kinds ([`crate::schemas`]) that `kubectl
//! explain` reads. The PATCH operations declare no request body: kubectl then computes
//! client-side apply patches from its built-in types, as before, not from these schemas. v2 (`/openapi/v2`,
//! JSON or gnostic protobuf): the same paths in one document plus a definition per served kind with
//! its `x-kubernetes-group-version-kind`, which kubectl reads when the v3 index lacks a manifest's
//! group/version (it then validates on the client, skips kinds the document does not define, and
//! reports `no matches for kind` as against a real apiserver). No schemas are served: definitions
//! accept any object. The deprecated group/versions the cluster's version still serves ([`Alias`])
//! get documents too, as discovery lists them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::resources::{Alias, RESOURCES, ResourceDef, aliases_at};
use crate::state::Shared;

/// The media type client-go asks `/openapi/v2` for (and the only one it decodes).
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The spelling of the same media type the apiserver answers with: `@` is no token character, so
/// clients that parse `Content-Type` (client-go does) reject the other.
pub const V2_PROTOBUF_DOTTED: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// Every served group/version, in discovery order: the lab's own, then the served aliases.
fn group_versions(aliases: &[&Alias]) -> Vec<(&'static str, &'static str)> {
    let mut gvs: Vec<(&str, &str)> = Vec::new();
    for gv in RESOURCES.iter().map(|r| (r.group, r.version)).chain(aliases.iter().map(|a| (a.group, a.version))) {
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    gvs
}

/// FNV-1a of the document: the `hash` query parameter changes whenever the document does, as the
/// apiserver's content hash does, so a client cache keyed by URL never serves a stale document.
fn content_hash(doc: &Value) -> String {
    let bytes = serde_json::to_vec(doc).expect("JSON values serialise");
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016X}")
}

/// `/openapi/v3`: the index of group/version documents; `aliases` are the deprecated
/// group/versions served at the cluster's version.
pub fn root(aliases: &[&Alias]) -> Value {
    let mut paths = Map::new();
    for (g, v) in group_versions(aliases) {
        let p = gv_path(g, v);
        let Some(doc) = document(g, v, aliases) else { continue };
        let url = format!("/openapi/v3/{p}?hash={}", content_hash(&doc));
        paths.insert(p, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/apps/v1`, `/openapi/v3/apis/policy/v1beta1` (while
/// served), ...
pub fn group_version(path: &str, aliases: &[&Alias]) -> Option<Value> {
    let rest = path.strip_prefix("/openapi/v3/")?;
    let (group, version) = match rest.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    document(group, version, aliases)
}

/// The served resources of one group/version: the lab's own, or the alias's view of them.
fn defs_of(group: &str, version: &str, aliases: &[&Alias]) -> Vec<&'static ResourceDef> {
    let mut defs: Vec<&ResourceDef> = RESOURCES.iter().filter(|r| r.group == group && r.version == version).collect();
    defs.extend(aliases.iter().filter(|a| a.group == group && a.version == version).map(|a| a.def()));
    defs
}

/// `/api/v1/namespaces/{namespace}/pods/{name}`: the path of one object.
fn item_path(group: &str, version: &str, r: &ResourceDef) -> String {
    let prefix = format!("/{}", gv_path(group, version));
    if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
    } else {
        format!("{prefix}/{}/{{name}}", r.plural)
    }
}

/// The query parameters of a write, as each OpenAPI version spells a parameter.
fn write_params(v2: bool) -> Value {
    let names = ["dryRun", "fieldManager", "fieldValidation"];
    let params: Vec<Value> = names
        .iter()
        .map(|n| {
            if v2 {
                json!({"name": n, "in": "query", "type": "string", "uniqueItems": true})
            } else {
                json!({"name": n, "in": "query", "schema": {"type": "string"}})
            }
        })
        .collect();
    Value::Array(params)
}

/// The get, put, patch and delete operations of one object's path. `group`/`version` are the ones
/// asked for, which for an alias are not the resource's own.
fn item_operations(group: &str, version: &str, r: &ResourceDef, v2: bool) -> Value {
    let gvk = json!({"group": group, "version": version, "kind": r.kind});
    let params = write_params(v2);
    let op = |verb: &str| {
        json!({"operationId": format!("{verb}{}", r.kind), "x-kubernetes-action": verb,
            "x-kubernetes-group-version-kind": gvk, "parameters": params,
            "responses": {"200": {"description": "OK"}}})
    };
    json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")})
}

fn document(group: &str, version: &str, aliases: &[&Alias]) -> Option<Value> {
    let defs = defs_of(group, version, aliases);
    if defs.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for r in &defs {
        paths.insert(item_path(group, version, r), item_operations(group, version, r, false));
    }
    let kinds: Vec<(&str, &str, &str, &str, &str)> =
        defs.iter().map(|r| (r.group, r.version, group, version, r.kind)).collect();
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "stepstone-lab"},
        "paths": paths,
        "components": {"schemas": crate::schemas::for_kinds(&kinds)},
    }))
}

/// `io.k8s.api.apps.v1.DaemonSet`: the definition name upstream gives a built-in kind.
fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let package = if group.is_empty() { "core" } else { group.split('.').next().unwrap_or(group) };
    format!("io.k8s.api.{package}.{version}.{kind}")
}

/// `/openapi/v2`: every served group/version's paths (as in the v3 documents) and one definition
/// per served kind. A definition is an object without properties, which kubectl's client-side
/// validation accepts whatever the object holds.
pub fn v2(aliases: &[&Alias]) -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for (g, v) in group_versions(aliases) {
        for r in defs_of(g, v, aliases) {
            paths.insert(item_path(g, v, r), item_operations(g, v, r, true));
            let api_version = if g.is_empty() { v.to_string() } else { format!("{g}/{v}") };
            definitions.insert(
                definition_name(g, v, r.kind),
                json!({
                    "description": format!("{} {}: any object; the lab serves no schemas.", api_version, r.kind),
                    "type": "object",
                    "x-kubernetes-group-version-kind": [{"group": g, "kind": r.kind, "version": v}],
                }),
            );
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "stepstone-lab"},
        "paths": paths,
        "definitions": definitions,
    })
}

/// The media type `/openapi/v2` answers an `Accept` header with, as the apiserver's OpenAPI
/// handler negotiates it: clauses by descending quality, the first one JSON or one of the
/// protobuf types matches (a missing header is `*/*`, so JSON), protobuf always answered in its
/// dotted spelling; `None` is a 406.
pub fn negotiate_v2(accept: &str) -> Option<&'static str> {
    let accept = if accept.trim().is_empty() { "*/*" } else { accept };
    let mut clauses: Vec<(f32, usize, &str)> = accept
        .split(',')
        .enumerate()
        .filter_map(|(i, clause)| {
            let mut parts = clause.split(';').map(str::trim);
            let media = parts.next().filter(|m| !m.is_empty())?;
            let q = parts.filter_map(|p| p.strip_prefix("q=")).find_map(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
            (q > 0.0).then_some((q, i, media))
        })
        .collect();
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let offered = ["application/json", V2_PROTOBUF, V2_PROTOBUF_DOTTED];
    clauses
        .iter()
        .find_map(|(_, _, media)| {
            let (ty, sub) = media.split_once('/').unwrap_or((media, ""));
            offered.into_iter().find(|o| {
                let (oty, osub) = o.split_once('/').expect("a media type");
                (ty == "*" || ty.eq_ignore_ascii_case(oty)) && (sub == "*" || sub.eq_ignore_ascii_case(osub))
            })
        })
        .map(|media| if media == V2_PROTOBUF { V2_PROTOBUF_DOTTED } else { media })
}

/// The aliases served at the cluster's version, as discovery computes them.
fn served_aliases(shared: &Shared) -> Vec<&'static Alias> {
    let stored = crate::nodes::cluster_version(&shared.store());
    let version = stored.or_else(|| crate::nodes::version_info(shared)["gitVersion"].as_str()?.parse().ok());
    version.map(|v| aliases_at(v.minor())).unwrap_or_default()
}

/// `GET /openapi/v2`, negotiated like the apiserver: JSON or protobuf with `Vary: Accept` and a
/// quoted `ETag` (a matching `If-None-Match` gets 304), or an empty 406.
pub async fn serve_v2(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    shared.stats.count("openapi");
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut response = Response::new(Body::empty());
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    let Some(media) = negotiate_v2(accept) else {
        *response.status_mut() = StatusCode::NOT_ACCEPTABLE;
        return response;
    };
    let doc = v2(&served_aliases(&shared));
    let body = if media == "application/json" {
        serde_json::to_vec(&doc).expect("JSON values serialise")
    } else {
        v2_protobuf(&doc)
    };
    let etag = format!("\"{}\"", content_hash(&doc));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v == etag) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    *response.body_mut() = Body::from(body);
    response
}

/// A protocol buffers writer for the few gnostic `openapi.v2` messages the v2 document uses.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.varint(u64::from(field) << 3 | 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    /// A proto3 string: left out when empty.
    fn string(&mut self, field: u32, s: Option<&str>) {
        if let Some(s) = s.filter(|s| !s.is_empty()) {
            self.bytes(field, s.as_bytes());
        }
    }

    /// A proto3 bool: left out when false.
    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.varint(u64::from(field) << 3);
            self.varint(1);
        }
    }

    fn message(&mut self, field: u32, build: impl FnOnce(&mut Pb)) {
        let mut m = Pb::default();
        build(&mut m);
        self.bytes(field, &m.0);
    }

    /// `repeated NamedAny vendor_extension`: every `x-` key, its value as YAML (JSON is YAML).
    fn vendor_extensions(&mut self, field: u32, v: &Value) {
        for (k, value) in v.as_object().into_iter().flatten().filter(|(k, _)| k.starts_with("x-")) {
            let yaml = format!("{value}\n");
            self.message(field, |named| {
                named.string(1, Some(k));
                named.message(2, |any| any.string(2, Some(&yaml)));
            });
        }
    }
}

fn entries(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
    v.as_object().into_iter().flatten()
}

/// `openapi.v2.Document` of the v2 JSON document [`v2`] builds.
pub fn v2_protobuf(doc: &Value) -> Vec<u8> {
    let mut pb = Pb::default();
    pb.string(1, doc["swagger"].as_str());
    pb.message(2, |info| {
        info.string(1, doc["info"]["title"].as_str());
        info.string(2, doc["info"]["version"].as_str());
    });
    pb.message(8, |paths| {
        for (path, item) in entries(&doc["paths"]) {
            paths.message(2, |named| {
                named.string(1, Some(path));
                named.message(2, |pi| {
                    for (verb, field) in [("get", 2), ("put", 3), ("post", 4), ("delete", 5), ("patch", 8)] {
                        if let Some(op) = item.get(verb) {
                            pi.message(field, |o| operation(o, op));
                        }
                    }
                });
            });
        }
    });
    pb.message(9, |defs| {
        for (name, schema) in entries(&doc["definitions"]) {
            defs.message(1, |named| {
                named.string(1, Some(name));
                named.message(2, |s| {
                    s.string(4, schema["description"].as_str());
                    if let Some(t) = schema["type"].as_str() {
                        s.message(22, |ty| ty.string(1, Some(t)));
                    }
                    s.vendor_extensions(31, schema);
                });
            });
        }
    });
    pb.0
}

/// `openapi.v2.Operation` with query parameters and plain responses.
fn operation(o: &mut Pb, op: &Value) {
    o.string(5, op["operationId"].as_str());
    for p in op["parameters"].as_array().into_iter().flatten() {
        // ParametersItem.parameter -> Parameter.non_body_parameter -> query_parameter_sub_schema
        o.message(8, |item| {
            item.message(1, |param| {
                param.message(2, |non_body| {
                    non_body.message(3, |q| {
                        q.boolean(1, p["required"].as_bool().unwrap_or(false));
                        q.string(2, p["in"].as_str());
                        q.string(3, p["description"].as_str());
                        q.string(4, p["name"].as_str());
                        q.string(6, p["type"].as_str());
                        q.boolean(20, p["uniqueItems"].as_bool().unwrap_or(false));
                    });
                });
            });
        });
    }
    o.message(9, |responses| {
        for (code, r) in entries(&op["responses"]) {
            responses.message(1, |named| {
                named.string(1, Some(code));
                named.message(2, |value| value.message(1, |resp| resp.string(1, r["description"].as_str())));
            });
        }
    });
    o.vendor_extensions(13, op);
}

#[cfg(test)]
mod tests {
    use stepstone_core::version::Minor;

    use super::*;

    #[test]
    fn every_group_version_has_a_document_with_field_validation() {
        let aliases = aliases_at(Minor::new(1, 24));
        let root = root(&aliases);
        for (p, entry) in root["paths"].as_object().unwrap() {
            let url = entry["serverRelativeURL"].as_str().unwrap();
            let doc = group_version(url.split('?').next().unwrap(), &aliases).unwrap_or_else(|| panic!("{p}"));
            let any = doc["paths"].as_object().unwrap().values().next().unwrap();
            assert_eq!(any["patch"]["parameters"][2]["name"], "fieldValidation");
        }
    }

    #[test]
    fn served_aliases_have_documents_with_their_own_group_version() {
        let at_24 = aliases_at(Minor::new(1, 24));
        let root_24 = root(&at_24);
        assert!(root_24["paths"].get("apis/policy/v1beta1").is_some(), "{root_24}");
        let doc = group_version("/openapi/v3/apis/policy/v1beta1", &at_24).unwrap();
        let item = &doc["paths"]["/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets/{name}"];
        assert_eq!(
            item["patch"]["x-kubernetes-group-version-kind"],
            json!({"group": "policy", "version": "v1beta1", "kind": "PodDisruptionBudget"})
        );
        // The current version's document is the same whatever aliases are served.
        let at_25 = aliases_at(Minor::new(1, 25));
        let root_25 = root(&at_25);
        assert!(root_25["paths"].get("apis/policy/v1beta1").is_none(), "{root_25}");
        assert!(group_version("/openapi/v3/apis/policy/v1beta1", &at_25).is_none());
        assert_eq!(root_24["paths"]["apis/policy/v1"], root_25["paths"]["apis/policy/v1"]);
    }

    /// The length-delimited fields numbered `field` of a protobuf message.
    fn fields(mut msg: &[u8], field: u64) -> Vec<&[u8]> {
        fn varint(buf: &mut &[u8]) -> u64 {
            let mut v = 0;
            for shift in (0..64).step_by(7) {
                let b = buf[0];
                *buf = &buf[1..];
                v |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    break;
                }
            }
            v
        }
        let mut out = Vec::new();
        while !msg.is_empty() {
            let tag = varint(&mut msg);
            match tag & 7 {
                0 => {
                    varint(&mut msg);
                }
                2 => {
                    let len = varint(&mut msg) as usize;
                    if tag >> 3 == field {
                        out.push(&msg[..len]);
                    }
                    msg = &msg[len..];
                }
                w => panic!("unexpected wire type {w}"),
            }
        }
        out
    }

    #[test]
    fn v2_negotiates_like_the_apiserver() {
        assert_eq!(negotiate_v2(""), Some("application/json"));
        assert_eq!(negotiate_v2("*/*"), Some("application/json"));
        assert_eq!(negotiate_v2("application/json, */*"), Some("application/json"));
        assert_eq!(negotiate_v2(V2_PROTOBUF), Some(V2_PROTOBUF_DOTTED));
        assert_eq!(negotiate_v2(V2_PROTOBUF_DOTTED), Some(V2_PROTOBUF_DOTTED));
        assert_eq!(
            negotiate_v2("application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
            Some(V2_PROTOBUF_DOTTED)
        );
        assert_eq!(negotiate_v2("text/html"), None);
        assert_eq!(negotiate_v2("application/yaml, text/*"), None);
        assert_eq!(negotiate_v2("application/json;q=0"), None);
    }

    #[test]
    fn v2_has_the_v3_paths_and_a_definition_per_served_kind() {
        let at_24 = aliases_at(Minor::new(1, 24));
        let doc = v2(&at_24);
        let v2_paths = doc["paths"].as_object().unwrap();
        let mut v3_paths = 0;
        for entry in root(&at_24)["paths"].as_object().unwrap().values() {
            let url = entry["serverRelativeURL"].as_str().unwrap();
            let v3 = group_version(url.split('?').next().unwrap(), &at_24).unwrap();
            for (path, item) in v3["paths"].as_object().unwrap() {
                v3_paths += 1;
                let v2_item = &v2_paths[path];
                assert_eq!(
                    v2_item["patch"]["x-kubernetes-group-version-kind"],
                    item["patch"]["x-kubernetes-group-version-kind"]
                );
                assert_eq!(
                    v2_item["patch"]["parameters"][2],
                    json!({"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true})
                );
            }
        }
        assert_eq!(v2_paths.len(), v3_paths);
        let pdb = &doc["definitions"]["io.k8s.api.policy.v1beta1.PodDisruptionBudget"];
        assert_eq!(
            pdb["x-kubernetes-group-version-kind"],
            json!([{"group": "policy", "kind": "PodDisruptionBudget", "version": "v1beta1"}])
        );
        assert_eq!(pdb["type"], "object");
        assert!(pdb.get("properties").is_none(), "no schema: any object validates");
        assert!(doc["definitions"].get("io.k8s.api.core.v1.Pod").is_some());
        assert!(doc["definitions"].get("io.k8s.api.events.v1.Event").is_some());
        let at_25 = v2(&aliases_at(Minor::new(1, 25)));
        assert!(at_25["definitions"].get("io.k8s.api.policy.v1beta1.PodDisruptionBudget").is_none());
        assert!(
            at_25["paths"].get("/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets/{name}").is_none()
        );
    }

    #[test]
    fn v2_protobuf_follows_the_gnostic_field_numbers() {
        let doc = v2(&aliases_at(Minor::new(1, 24)));
        let pb = v2_protobuf(&doc);
        assert_eq!(fields(&pb, 1), [b"2.0".as_slice()]);
        let paths = fields(&pb, 8)[0];
        let named = fields(paths, 2);
        assert_eq!(named.len(), doc["paths"].as_object().unwrap().len());
        let pdb = named
            .iter()
            .find(|n| fields(n, 1)[0] == b"/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets/{name}")
            .expect("the v1beta1 path");
        let patch = fields(fields(pdb, 2)[0], 8)[0];
        assert_eq!(fields(patch, 5), [b"patchPodDisruptionBudget".as_slice()]);
        let query = |item: &[u8]| fields(fields(fields(fields(item, 1)[0], 2)[0], 3)[0], 4)[0].to_vec();
        assert_eq!(query(fields(patch, 8)[2]), b"fieldValidation");
        let gvk =
            fields(patch, 13).into_iter().find(|n| fields(n, 1)[0] == b"x-kubernetes-group-version-kind").unwrap();
        let yaml = fields(fields(gvk, 2)[0], 2)[0];
        assert_eq!(yaml, b"{\"group\":\"policy\",\"version\":\"v1beta1\",\"kind\":\"PodDisruptionBudget\"}\n");
        let defs = fields(fields(&pb, 9)[0], 1);
        assert_eq!(defs.len(), doc["definitions"].as_object().unwrap().len());
        let schema = fields(defs[0], 2)[0];
        assert_eq!(fields(fields(schema, 22)[0], 1), [b"object".as_slice()]);
        assert_eq!(fields(fields(schema, 31)[0], 1), [b"x-kubernetes-group-version-kind".as_slice()]);
    }
}
