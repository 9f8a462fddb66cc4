//! Reading single fields of a Kubernetes object held as a [`Value`]: paths, strings, maps of
//! strings, quantities, timestamps and owners, each refusing a value of the wrong type with a
//! message that names the field.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use crate::inventory::OwnerRef;
use crate::quantity::{Resources, parse_bytes, parse_cpu_millis};

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

/// The elements of the array at `path`; none when the field is missing or not an array.
pub(super) fn array_at<'a>(v: &'a Value, path: &[&str]) -> impl Iterator<Item = &'a Value> {
    at(v, path).and_then(Value::as_array).into_iter().flatten()
}

pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

/// A map of strings (labels, annotations, a node selector); `field` names it in errors.
pub(super) fn string_map(v: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>, String> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(format!("{field}.{k} is {} {other}, not a string", article(other))),
            })
            .collect(),
        Some(other) => Err(format!("{field} is {} {other}, not a map of strings", article(other))),
    }
}

/// A list of strings (`metadata.finalizers`); each entry is a name read from the cluster, so
/// anything but a plain string is refused.
pub(super) fn string_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("{field}[{i}] is {} {other}, not a string", article(other))),
            })
            .collect(),
        Some(other) => Err(format!("{field} is {} {other}, not a list of strings", article(other))),
    }
}

pub(super) fn article(v: &Value) -> String {
    match type_name(v) {
        t @ ("array" | "object") => format!("an {t}"),
        t => format!("a {t}"),
    }
}

/// Kubernetes object names of nodes are DNS-1123 subdomains: lowercase letters, digits, `-`
/// and `.`, starting and ending with a letter or digit, at most 253 characters. A name that is
/// not one never came from an apiserver; refusing it here keeps it out of every shell line a
/// runbook writes.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.starts_with(ok_char)
                && label.ends_with(ok_char)
                && label.chars().all(|c| ok_char(c) || c == '-')
        })
}

pub(super) fn timestamp(v: Option<&Value>) -> Result<Option<Timestamp>, String> {
    match v.and_then(Value::as_str) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|e| format!("timestamp '{s}': {e}")),
    }
}

pub(super) fn resources(v: Option<&Value>) -> Result<Resources, String> {
    let mut r = Resources::default();
    let Some(map) = v.and_then(Value::as_object) else { return Ok(r) };
    for (k, q) in map {
        let text = match q {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(format!("resource {k} is not a quantity")),
        };
        add_quantity(&mut r, k, &text)?;
    }
    Ok(r)
}

/// Set the resource `key` of `r` to the quantity `text`; resources the planner does not count
/// (GPUs, hugepages) are left out.
pub(super) fn add_quantity(r: &mut Resources, key: &str, text: &str) -> Result<(), String> {
    match key {
        "cpu" => r.cpu_millis = parse_cpu_millis(text).map_err(|e| e.to_string())?,
        "memory" => r.memory_bytes = parse_bytes(text).map_err(|e| e.to_string())?,
        "pods" => r.pods = parse_bytes(text).map_err(|e| e.to_string())?,
        "ephemeral-storage" => r.ephemeral_storage_bytes = parse_bytes(text).map_err(|e| e.to_string())?,
        _ => {}
    }
    Ok(())
}

pub(super) fn controller_owner(meta: &Value) -> Option<OwnerRef> {
    let refs = meta.get("ownerReferences")?.as_array()?;
    let r = refs.iter().find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?;
    Some(OwnerRef {
        kind: r.get("kind")?.as_str()?.to_string(),
        name: r.get("name")?.as_str()?.to_string(),
        uid: r.get("uid").and_then(Value::as_str).unwrap_or("").to_string(),
    })
}
