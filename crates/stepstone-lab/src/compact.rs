//! Stored objects at their exact size: every map, array and string of a JSON value rebuilt with
//! the capacity it needs and no more, and a seed that parses JSON straight into that shape.
//!
//! A parser or a writer grows maps and arrays by doubling, so a value fresh from either holds on
//! average about half as much spare room as it uses; in a store of tens of thousands of objects
//! kept for hours that spare room was a quarter of the lab's memory. Order and content stay as
//! they are: only the allocations change.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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

/// Deserializes one JSON value at its exact size.
#[derive(Clone, Copy)]
pub struct Exact;

impl<'de> DeserializeSeed<'de> for Exact {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Exact {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, mut v: String) -> Result<Value, E> {
        v.shrink_to_fit();
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Exact)? {
            items.push(item);
        }
        Ok(Value::Array(items.into_boxed_slice().into_vec()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // The entries wait in a short-lived list until their number is known.
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Exact)?;
            entries.push((key, value));
        }
        let mut exact = Map::with_capacity(entries.len());
        for (mut key, value) in entries {
            key.shrink_to_fit();
            exact.insert(key, value);
        }
        Ok(Value::Object(exact))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// JSON text parsed at exact size, as [`serde_json::from_str`] parses it otherwise.
    fn parse_exact(text: &str) -> Result<Value, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let value = Exact.deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }

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

    #[test]
    fn parsing_at_exact_size_reads_what_serde_json_reads() {
        let text = r#"{"kind": "List", "items": [{"z": 1, "a": [1.5, -2, 18446744073709551615, "s\u00e9"],
            "dup": 1, "m": {}, "dup": {"n": null, "t": true}}], "e": []}"#;
        let exact = parse_exact(text).unwrap();
        let plain: Value = serde_json::from_str(text).unwrap();
        assert_eq!(exact, plain);
        assert_eq!(serde_json::to_string(&exact).unwrap(), serde_json::to_string(&plain).unwrap());
        let Value::Array(items) = &exact["items"][0]["a"] else { panic!("an array: {exact}") };
        assert_eq!(items.capacity(), 4);
        for bad in ["{\"a\": 1,}", "[1, 2", "{} x", ""] {
            let ours = parse_exact(bad).unwrap_err().to_string();
            let theirs = serde_json::from_str::<Value>(bad).unwrap_err().to_string();
            assert_eq!(ours, theirs, "the same error for {bad:?}");
        }
    }
}
