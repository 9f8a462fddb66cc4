//! The three patch types of PATCH requests: JSON merge patch (RFC 7386), strategic merge patch
//! (merge patch plus merge-by-key for the lists the Kubernetes types mark so: containers by
//! name, conditions by type, ...), and JSON patch (RFC 6902).

use serde_json::{Map, Value};

use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Strategic,
    Json,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/json-patch+json" => Ok(PatchType::Json),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Apply `patch` (the raw body) to `target`.
pub fn apply(kind: PatchType, target: &Value, body: &[u8]) -> Result<Value, ApiError> {
    match kind {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = target.clone();
            json_patch::patch(&mut doc, &p).map_err(|e| {
                ApiError::bad_request(format!("the server rejected our request due to an error in our request: {e}"))
            })?;
            Ok(doc)
        }
        PatchType::Merge | PatchType::Strategic => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request("the patch must be a JSON object"));
            }
            let mut doc = target.clone();
            if kind == PatchType::Merge {
                merge(&mut doc, &p);
            } else {
                strategic(&mut doc, &p);
            }
            Ok(doc)
        }
    }
}

/// RFC 7386.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The merge key of lists the Kubernetes API types declare with `patchStrategy: merge`.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "readinessGates"
        | "hostAliases" => match field {
            "readinessGates" => "conditionType",
            "hostAliases" => "ip",
            _ => "name",
        },
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "conditions" => "type",
        "taints" => "key",
        "ownerReferences" => "uid",
        "addresses" => "type",
        _ => return None,
    })
}

/// Lists of scalars merged as sets.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

pub fn strategic(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut clean = p.clone();
            clean.remove("$patch");
            *target = Value::Object(clean);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) = (t.get_mut(field), v.as_array()) {
                list.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (v, merge_key(k)) {
            (Value::Array(items), Some(key)) => {
                let existing = t.entry(k.clone()).or_insert_with(|| Value::Array(Vec::new()));
                if !existing.is_array() {
                    *existing = Value::Array(Vec::new());
                }
                let list = existing.as_array_mut().expect("array");
                merge_list(list, items, key);
            }
            (Value::Array(items), None) if is_set_list(k) => {
                let existing = t.entry(k.clone()).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = existing {
                    for i in items {
                        if !list.contains(i) {
                            list.push(i.clone());
                        }
                    }
                }
            }
            (Value::Object(_), _) => {
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                strategic(slot, v);
                if slot.is_null() {
                    t.remove(k);
                }
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn merge_list(list: &mut Vec<Value>, items: &[Value], key: &str) {
    if items.iter().any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace")) {
        *list = items.iter().filter(|i| i.get("$patch").is_none()).cloned().collect();
        return;
    }
    for item in items {
        let k = item.get(key);
        let pos = k.and_then(|k| list.iter().position(|e| e.get(key) == Some(k)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic(&mut list[i], item),
            (None, false) => {
                let mut fresh = Value::Null;
                strategic(&mut fresh, item);
                list.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_removes() {
        let doc = json!({"spec": {"unschedulable": true, "podCIDR": "10.0.0.0/24"}});
        let out = apply(PatchType::Merge, &doc, br#"{"spec":{"unschedulable":null}}"#).unwrap();
        assert_eq!(out, json!({"spec": {"podCIDR": "10.0.0.0/24"}}));
    }

    #[test]
    fn strategic_patch_merges_containers_by_name() {
        let doc = json!({"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}});
        let out = apply(
            PatchType::Strategic,
            &doc,
            br#"{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"name":"b","image":"b:2"}]}}"#,
        )
        .unwrap();
        assert_eq!(out["spec"]["containers"][0]["image"], "a:1");
        assert_eq!(out["spec"]["containers"][1]["image"], "b:2");
        let out =
            apply(PatchType::Strategic, &doc, br#"{"spec":{"containers":[{"name":"a","$patch":"delete"}]}}"#).unwrap();
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn strategic_patch_replaces_plain_lists() {
        let doc = json!({"spec": {"tolerations": [{"key": "a"}]}});
        let out = apply(PatchType::Strategic, &doc, br#"{"spec":{"tolerations":[{"key":"b"}]}}"#).unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "b"}]));
    }

    #[test]
    fn json_patch_applies_operations() {
        let doc = json!({"spec": {"replicas": 1}, "metadata": {"labels": {}}});
        let out = apply(
            PatchType::Json,
            &doc,
            br#"[{"op":"replace","path":"/spec/replicas","value":3},{"op":"add","path":"/metadata/labels/x","value":"y"}]"#,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["metadata"]["labels"]["x"], "y");
        let err = apply(PatchType::Json, &doc, br#"[{"op":"test","path":"/spec/replicas","value":9}]"#).unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn unknown_content_type_is_415() {
        assert_eq!(PatchType::from_content_type("application/apply-patch+yaml").unwrap_err().code, 415);
    }
}
