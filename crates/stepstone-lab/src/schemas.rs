//! The OpenAPI v3 schemas of the kinds the lab serves, generated from a compact field table
//! ([`TABLE`]), so `kubectl explain pods.spec.containers` answers against the lab as against an
//! apiserver. The field names, types, required fields and list merge keys follow the upstream
//! API types; the descriptions are short summaries, and fields the lab never reads nor writes
//! (probes, security contexts, projected volumes, ...) are left out.
//!
//! Table syntax (`data/openapi-fields.txt`), one line each; lines starting with `# ` before the
//! first schema are comments:
//! - `= <schema> [<group>/<version>/<Kind>]` starts a schema (`core.v1.Pod`, `meta.v1.ObjectMeta`:
//!   the package path after `io.k8s.api.` or `io.k8s.apimachinery.pkg.apis.`), with the
//!   group/version/kind for a top-level kind (`-` for the core group); the next `#` line
//!   describes it.
//! - `<field> <type> [flags] | <description>`: a field. Types are `string`, `integer`,
//!   `boolean`, `number`, `object` (any object), `[]<type>`, `map[string]<type>` or a schema of
//!   the table. Flags: `required`, `merge=<key>` (`x-kubernetes-patch-merge-key`),
//!   `strategy=<s>` (`x-kubernetes-patch-strategy`), `format=<f>`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

const TABLE: &str = include_str!("../../../data/openapi-fields.txt");

/// Upstream's full schema name: `core.v1.Pod` -> `io.k8s.api.core.v1.Pod`.
fn full_name(short: &str) -> String {
    if short.starts_with("meta.") {
        format!("io.k8s.apimachinery.pkg.apis.{short}")
    } else if short.starts_with("apimachinery.") {
        format!("io.k8s.{short}")
    } else {
        format!("io.k8s.api.{short}")
    }
}

/// Every schema of the table by full name, and the full name of each top-level kind by
/// `(group, version, kind)`.
pub struct Schemas {
    pub by_name: BTreeMap<String, Value>,
    pub kinds: BTreeMap<(String, String, String), String>,
}

/// The table, parsed once.
pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| parse(TABLE))
}

/// The schemas for one document: the kinds' own, renamed and tagged with the group/version asked
/// for when it is a deprecated alias, and every schema they refer to.
pub fn for_kinds(kinds: &[(&str, &str, &str, &str, &str)]) -> Map<String, Value> {
    let s = schemas();
    let mut out = Map::new();
    let mut todo: Vec<String> = Vec::new();
    for (own_group, own_version, group, version, kind) in kinds {
        let key = (own_group.to_string(), own_version.to_string(), kind.to_string());
        let Some(name) = s.kinds.get(&key) else { continue };
        let mut schema = s.by_name[name].clone();
        let name = if (own_group, own_version) == (group, version) {
            name.clone()
        } else {
            schema["x-kubernetes-group-version-kind"] = json!([{"group": group, "kind": kind, "version": version}]);
            name.replacen(&format!(".{own_version}."), &format!(".{version}."), 1)
        };
        refs(&schema, &mut todo);
        out.insert(name, schema);
    }
    while let Some(name) = todo.pop() {
        if out.contains_key(&name) {
            continue;
        }
        let schema = s.by_name[&name].clone();
        refs(&schema, &mut todo);
        out.insert(name, schema);
    }
    out
}

/// The schema names `v` refers to.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                out.push(r.trim_start_matches("#/components/schemas/").to_string());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

fn primitive_schema(full: &str, description: &str) -> Option<Value> {
    Some(match full.rsplit('.').next()? {
        "Quantity" => json!({"description": description, "oneOf": [{"type": "string"}, {"type": "number"}]}),
        "IntOrString" => json!({"description": description, "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}]}),
        "Time" | "MicroTime" => json!({"description": description, "type": "string", "format": "date-time"}),
        _ => return None,
    })
}

fn parse(table: &str) -> Schemas {
    // Short type names (`Container`) resolve to the full name of the schema declared with it.
    let mut short: BTreeMap<&str, String> = BTreeMap::new();
    for line in table.lines().filter_map(|l| l.strip_prefix("= ")) {
        let name = line.split_whitespace().next().expect("a schema name");
        let last = name.rsplit('.').next().expect("a dotted name");
        // Core's Event and events.k8s.io's Event: field types name core's.
        short.entry(last).or_insert_with(|| full_name(name));
    }
    let mut by_name = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    let mut current: Option<(String, Value)> = None;
    let finish = |current: &mut Option<(String, Value)>, by_name: &mut BTreeMap<String, Value>| {
        if let Some((name, schema)) = current.take() {
            by_name.insert(name, schema);
        }
    };
    for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(head) = line.strip_prefix("= ") {
            finish(&mut current, &mut by_name);
            let mut parts = head.split_whitespace();
            let name = full_name(parts.next().expect("a schema name"));
            let mut schema = json!({"type": "object"});
            if let Some(gvk) = parts.next() {
                let [group, version, kind]: [&str; 3] =
                    gvk.split('/').collect::<Vec<_>>().try_into().expect("group/version/Kind");
                let group = if group == "-" { "" } else { group };
                schema["x-kubernetes-group-version-kind"] = json!([{"group": group, "kind": kind, "version": version}]);
                kinds.insert((group.to_string(), version.to_string(), kind.to_string()), name.clone());
            }
            current = Some((name, schema));
        } else if current.is_none() && line.starts_with('#') {
            // The file's header.
        } else if let Some(description) = line.strip_prefix("# ") {
            let (name, schema) = current.as_mut().expect("a description follows a schema");
            *schema = primitive_schema(name, description).unwrap_or_else(|| {
                let mut s = schema.clone();
                s["description"] = json!(description);
                s
            });
        } else {
            let (_, schema) = current.as_mut().expect("a field follows a schema");
            let (spec, description) = line.split_once(" | ").expect("a field has a description");
            let mut words = spec.split_whitespace();
            let field = words.next().expect("a field name");
            let ty = words.next().expect("a field type");
            let mut prop = property(ty, &short);
            for flag in words {
                match flag.split_once('=') {
                    None if flag == "required" => {
                        let required = schema.as_object_mut().expect("an object").entry("required");
                        required.or_insert_with(|| json!([])).as_array_mut().expect("a list").push(json!(field));
                    }
                    Some(("merge", key)) => prop["x-kubernetes-patch-merge-key"] = json!(key),
                    Some(("strategy", s)) => prop["x-kubernetes-patch-strategy"] = json!(s),
                    Some(("format", f)) => prop["format"] = json!(f),
                    _ => panic!("unknown flag {flag} of {field}"),
                }
            }
            prop["description"] = json!(description);
            schema["properties"][field] = prop;
        }
    }
    finish(&mut current, &mut by_name);
    Schemas { by_name, kinds }
}

/// The schema of one field's type, as upstream writes it: a reference in `allOf` (so the field
/// may carry its own description), arrays with `items`, maps with `additionalProperties`.
fn property(ty: &str, short: &BTreeMap<&str, String>) -> Value {
    let element = |t: &str| -> Value {
        match t {
            "string" | "integer" | "boolean" | "number" => {
                json!({"type": t, "default": if t == "string" { json!("") } else { json!(null) }})
            }
            "object" => json!({"type": "object"}),
            named => json!({"allOf": [{"$ref": reference(named, short)}], "default": {}}),
        }
    };
    if let Some(item) = ty.strip_prefix("[]") {
        let mut items = element(item);
        if items["default"].is_null() {
            items.as_object_mut().expect("an object").remove("default");
        }
        json!({"type": "array", "items": items})
    } else if let Some(value) = ty.strip_prefix("map[string]") {
        let mut values = element(value);
        if values["default"].is_null() {
            values.as_object_mut().expect("an object").remove("default");
        }
        json!({"type": "object", "additionalProperties": values})
    } else {
        match ty {
            "string" | "integer" | "boolean" | "number" | "object" => json!({"type": ty}),
            named => json!({"allOf": [{"$ref": reference(named, short)}]}),
        }
    }
}

fn reference(short_name: &str, short: &BTreeMap<&str, String>) -> String {
    let full = short.get(short_name).unwrap_or_else(|| panic!("the table has no schema {short_name}"));
    format!("#/components/schemas/{full}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::RESOURCES;

    #[test]
    fn every_served_kind_has_a_schema_and_every_reference_resolves() {
        let s = schemas();
        for r in RESOURCES {
            let key = (r.group.to_string(), r.version.to_string(), r.kind.to_string());
            assert!(s.kinds.contains_key(&key), "no schema for {key:?}");
        }
        let mut todo = Vec::new();
        for schema in s.by_name.values() {
            refs(schema, &mut todo);
        }
        for r in todo {
            assert!(s.by_name.contains_key(&r), "{r} is referred to but not defined");
        }
        let containers = &s.by_name["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["items"]["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.core.v1.Container");
        assert_eq!(s.by_name["io.k8s.api.core.v1.PodSpec"]["required"], json!(["containers"]));
    }

    #[test]
    fn an_alias_document_carries_its_own_group_version() {
        let out = for_kinds(&[("policy", "v1", "policy", "v1beta1", "PodDisruptionBudget")]);
        let pdb = &out["io.k8s.api.policy.v1beta1.PodDisruptionBudget"];
        assert_eq!(
            pdb["x-kubernetes-group-version-kind"],
            json!([{"group": "policy", "kind": "PodDisruptionBudget", "version": "v1beta1"}])
        );
        // The referenced schemas come along.
        assert!(out.contains_key("io.k8s.api.policy.v1.PodDisruptionBudgetSpec"));
        assert!(out.contains_key("io.k8s.apimachinery.pkg.util.intstr.IntOrString"));
        assert!(out.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    }
}
