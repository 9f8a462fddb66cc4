//! Stored objects at their exact size: every map, array and string of a JSON value rebuilt with
//! the capacity it needs and no more.
//!
//! A parser or a writer grows maps and arrays by doubling, so a value fresh from either holds on
//! average about half as much spare room as it uses; in a store of tens of thousands of objects
//! kept for hours that spare room was a third of the lab's memory. Order and content stay as they
//! are: only the allocations change.

use serde_json::{Map, Value};

/// `value` with every map, array and string at its exact length.
pub fn compact(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut exact = Map::with_capacity(map.len());
            for (key, item) in map {
                exact.insert(key, compact(item));
            }
            Value::Object(exact)
        }
        // Collecting into a Vec reuses the old allocation; a boxed slice is exactly as long.
        Value::Array(items) => Value::Array(items.into_iter().map(compact).collect::<Box<[Value]>>().into_vec()),
        Value::String(mut s) => {
            s.shrink_to_fit();
            Value::String(s)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_and_key_order_stay_and_spare_room_goes() {
        let mut grown = Map::new();
        for key in ["zeta", "alpha", "mid"] {
            grown.insert(key.to_string(), json!(key));
        }
        let mut items = Vec::with_capacity(64);
        items.push(Value::Object(grown));
        let mut text = String::with_capacity(100);
        text.push_str("short");
        items.push(Value::String(text));
        let value = json!({"b": Value::Array(items), "a": 1});
        let before = serde_json::to_string(&value).unwrap();

        let compacted = compact(value.clone());

        assert_eq!(compacted, value);
        assert_eq!(serde_json::to_string(&compacted).unwrap(), before, "same keys in the same order");
        let Value::Array(items) = &compacted["b"] else { panic!("an array: {compacted}") };
        assert_eq!(items.capacity(), 2);
        let Value::String(text) = &items[1] else { panic!("a string: {compacted}") };
        assert_eq!(text.capacity(), 5);
        let keys: Vec<&String> = items[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["zeta", "alpha", "mid"]);
    }
}
