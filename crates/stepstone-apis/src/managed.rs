//! What live objects say about the clients that write them: each `metadata.managedFields` entry
//! records the apiVersion its manager last wrote with, so an entry on an old version names a
//! client that still speaks it. The `last-applied-configuration` annotation is only a memory of
//! the last `kubectl apply`; when managedFields show the object has been written with a served
//! version since, an old annotation is stale and is not reported (the false positive of tools that
//! read only the annotation).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::data::RemovedApis;
use crate::sighting::{Sighting, SourceKind, Suppressed, Used, object_label};

pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Sightings from one object's managedFields and last-applied annotation.
pub fn analyze_object(data: &RemovedApis, origin: &str, obj: &Value) -> (Vec<Sighting>, Vec<Suppressed>) {
    let mut sightings = Vec::new();
    let mut suppressed = Vec::new();
    let Some(kind) = obj.get("kind").and_then(Value::as_str) else { return (sightings, suppressed) };
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
    let name = obj.pointer("/metadata/name").and_then(Value::as_str);
    let object = object_label(kind, ns, name);

    let entries: Vec<&Value> = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut managed_versions = BTreeSet::new();
    for entry in &entries {
        let Some(api_version) = entry.get("apiVersion").and_then(Value::as_str) else { continue };
        managed_versions.insert(api_version.to_string());
        if data.rule_for(api_version, kind).is_none() {
            continue;
        }
        let field = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
        let manager = match field("manager") {
            "" => "(unnamed manager)",
            m => m,
        };
        let mut detail =
            format!("{} at {}", non_empty(field("operation"), "write"), non_empty(field("time"), "unknown time"));
        if !field("subresource").is_empty() {
            detail.push_str(&format!(" on subresource {}", field("subresource")));
        }
        sightings.push(
            Sighting::new(SourceKind::ManagedFields, Used::api(api_version, kind), origin)
                .object(object.clone())
                .manager(manager)
                .detail(detail),
        );
    }

    let annotation = obj.pointer("/metadata/annotations").and_then(|a| a.get(LAST_APPLIED)).and_then(Value::as_str);
    if let Some(text) = annotation
        && let Ok(applied) = serde_json::from_str::<Value>(text)
        && let Some(api_version) = applied.get("apiVersion").and_then(Value::as_str)
    {
        let applied_kind = applied.get("kind").and_then(Value::as_str).unwrap_or(kind);
        if data.rule_for(api_version, applied_kind).is_some() {
            if entries.is_empty() {
                sightings.push(
                    Sighting::new(SourceKind::LastApplied, Used::api(api_version, applied_kind), origin)
                        .object(object.clone())
                        .detail(
                            "the input has no managedFields, so it cannot show whether the object was written \
                             with a served version since (kubectl get hides them unless --show-managed-fields)",
                        ),
                );
            } else if managed_versions.contains(api_version) {
                // Already reported with the manager's name from managedFields.
            } else {
                suppressed.push(Suppressed {
                    object: object.clone().unwrap_or_else(|| kind.to_string()),
                    location: origin.to_string(),
                    annotation_api_version: api_version.to_string(),
                    managed_api_versions: managed_versions.iter().cloned().collect(),
                    reason: format!(
                        "every managedFields entry was written with {}; the annotation predates that",
                        managed_versions.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
    }
    (sightings, suppressed)
}

fn non_empty<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.is_empty() { fallback } else { s }
}
