//! The JSON encoding of stored objects, kept between list responses.
//!
//! Stored objects are immutable `Arc`s (an update stores a new one), so an encoding stays valid
//! for as long as the same `Arc` is in the store. A 30,000-pod list then costs a copy of bytes
//! instead of serialising every object again for every page and every client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use serde_json::Value;

use crate::sync::lock;

/// Which JSON of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The whole object, as list items are.
    Whole,
    /// Only its `metadata`, as Table rows carry it (`includeObject=Metadata`).
    Metadata,
}

/// An object's address and which of its encodings.
type EntryKey = (usize, Encoding);

/// Encodings by object identity. Each entry holds its `Arc`, so the address cannot be reused by
/// another object while the entry exists.
#[derive(Debug, Default)]
pub struct EncodedObjects {
    entries: Mutex<HashMap<EntryKey, (Arc<Value>, Bytes)>>,
}

/// Above this many entries, those whose object nothing else holds any more are dropped.
const SWEEP_ABOVE: usize = 4096;

impl EncodedObjects {
    /// The JSON of each object (or of the part `encoding` names), in order, encoding only those
    /// not seen before.
    pub fn encode(&self, objects: &[Arc<Value>], encoding: Encoding) -> Vec<Bytes> {
        let mut entries = lock(&self.entries);
        let out = objects
            .iter()
            .map(|obj| {
                let entry = entries.entry((Arc::as_ptr(obj) as usize, encoding)).or_insert_with(|| {
                    let part = match encoding {
                        Encoding::Whole => &**obj,
                        Encoding::Metadata => obj.get("metadata").unwrap_or(&Value::Null),
                    };
                    let bytes = serde_json::to_vec(part).expect("a JSON value serialises");
                    (obj.clone(), Bytes::from(bytes))
                });
                entry.1.clone()
            })
            .collect();
        if entries.len() > SWEEP_ABOVE.max(objects.len() * 4) {
            // Objects replaced or deleted since they were encoded: only this cache holds them.
            entries.retain(|_, (obj, _)| Arc::strong_count(obj) > 1);
        }
        out
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_object_is_encoded_once_and_a_replacement_gets_its_own_bytes() {
        let cache = EncodedObjects::default();
        let a = Arc::new(json!({"metadata": {"name": "a", "resourceVersion": "1"}}));
        let first = cache.encode(std::slice::from_ref(&a), Encoding::Whole);
        let again = cache.encode(std::slice::from_ref(&a), Encoding::Whole);
        assert_eq!(first[0].as_ptr(), again[0].as_ptr(), "reused, not encoded again");
        assert_eq!(serde_json::from_slice::<Value>(&first[0]).unwrap(), *a);
        let updated = Arc::new(json!({"metadata": {"name": "a", "resourceVersion": "2"}}));
        let out = cache.encode(std::slice::from_ref(&updated), Encoding::Whole);
        assert_eq!(serde_json::from_slice::<Value>(&out[0]).unwrap()["metadata"]["resourceVersion"], "2");
        let meta = cache.encode(std::slice::from_ref(&updated), Encoding::Metadata);
        assert_eq!(serde_json::from_slice::<Value>(&meta[0]).unwrap(), updated["metadata"], "its own entry");
    }

    #[test]
    fn objects_nobody_holds_are_swept_and_held_ones_stay() {
        let cache = EncodedObjects::default();
        let kept = Arc::new(json!({"kept": true}));
        let first = cache.encode(std::slice::from_ref(&kept), Encoding::Whole);
        for i in 0..(SWEEP_ABOVE + 10) {
            cache.encode(&[Arc::new(json!({"i": i}))], Encoding::Whole);
        }
        assert!(cache.len() <= SWEEP_ABOVE + 1, "dropped objects do not pile up: {}", cache.len());
        let again = cache.encode(std::slice::from_ref(&kept), Encoding::Whole);
        assert_eq!(first[0].as_ptr(), again[0].as_ptr(), "an object still stored keeps its encoding");
    }
}
