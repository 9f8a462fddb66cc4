//! Reading PersistentVolumes and PersistentVolumeClaims from their API objects: the claim a
//! volume is reserved for, its required node affinity, and the volume a claim is bound to.

use serde_json::{Value, json};

use super::node_selector_terms;
use crate::inventory::{PersistentVolume, VolumeClaim};
use crate::object_key::ObjectKey;

/// A `PersistentVolume` object.
pub fn parse_volume(obj: &Value) -> Result<PersistentVolume, String> {
    let meta = obj.get("metadata").ok_or("no metadata")?;
    let name = meta.get("name").and_then(Value::as_str).ok_or("no metadata.name")?;
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let claim = spec.get("claimRef").and_then(|c| {
        let name = c.get("name").and_then(Value::as_str).filter(|n| !n.is_empty())?;
        Some(ObjectKey::new(c.get("namespace").and_then(Value::as_str).unwrap_or("default"), name))
    });
    let node_affinity = match spec.pointer("/nodeAffinity/required") {
        Some(required) if !required.is_null() => {
            node_selector_terms(&json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}))
        }
        _ => Vec::new(),
    };
    Ok(PersistentVolume { name: name.to_string(), claim, node_affinity })
}

/// A `PersistentVolumeClaim` object.
pub fn parse_claim(obj: &Value) -> Result<VolumeClaim, String> {
    let meta = obj.get("metadata").ok_or("no metadata")?;
    Ok(VolumeClaim {
        namespace: meta.get("namespace").and_then(Value::as_str).unwrap_or("default").to_string(),
        name: meta.get("name").and_then(Value::as_str).ok_or("no metadata.name")?.to_string(),
        volume: obj.pointer("/spec/volumeName").and_then(Value::as_str).filter(|v| !v.is_empty()).map(String::from),
        bound: obj.pointer("/status/phase").and_then(Value::as_str) == Some("Bound"),
    })
}
