//! A minimal OpenAPI v3 document per served group/version: enough for kubectl to learn that every
//! resource's PATCH accepts `fieldValidation`, so `kubectl create/apply` validate on the server
//! instead of downloading full schemas. No schemas are served. The deprecated group/versions the
//! cluster's version still serves ([`Alias`]) get documents too, as discovery lists them: kubectl
//! looks a manifest's group/version up here before it sends it.

use serde_json::{Map, Value, json};

use crate::resources::{Alias, RESOURCES, ResourceDef};

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

fn document(group: &str, version: &str, aliases: &[&Alias]) -> Option<Value> {
    let mut defs: Vec<&ResourceDef> = RESOURCES.iter().filter(|r| r.group == group && r.version == version).collect();
    defs.extend(aliases.iter().filter(|a| a.group == group && a.version == version).map(|a| a.def()));
    if defs.is_empty() {
        return None;
    }
    let prefix = format!("/{}", gv_path(group, version));
    let mut paths = Map::new();
    for r in defs {
        let item = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        // The group/version asked for, which for an alias is not the resource's own.
        let gvk = json!({"group": group, "version": version, "kind": r.kind});
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        ]);
        let op = |verb: &str| {
            json!({"operationId": format!("{verb}{}", r.kind), "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk, "parameters": params,
                "responses": {"200": {"description": "OK"}}})
        };
        paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "stepstone-lab"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use stepstone_core::version::Minor;

    use super::*;
    use crate::resources::aliases_at;

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
}
