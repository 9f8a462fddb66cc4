//! `ObjectKey`: the namespace and name that identify a namespaced object (a pod, a budget, a
//! claim), written `namespace/name` wherever it is printed or serialised.
//!
//! Keys used to be built with `format!("{}/{}")` at each use; one type keeps the two parts apart
//! where code compares or looks them up, and keeps the text form the same everywhere.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey { namespace: namespace.into(), name: name.into() }
    }

    /// Reads `namespace/name`; `None` when there is no `/` (a namespace never contains one, so
    /// the first `/` is the separator).
    pub fn parse(text: &str) -> Option<Self> {
        text.split_once('/').map(|(namespace, name)| ObjectKey::new(namespace, name))
    }

    /// The bytes of the text form, without building it.
    fn text_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.namespace.bytes().chain(std::iter::once(b'/')).chain(self.name.bytes())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `keys` in their text form, separated by `sep` (`prod/a, prod/b`).
pub fn join(keys: &[ObjectKey], sep: &str) -> String {
    keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(sep)
}

/// Ordered as the `namespace/name` text, not field by field: maps and sorted lists keyed by
/// `ObjectKey` keep the order they had when the keys were strings (`a-b/x` sorts before `a/x`,
/// because `-` sorts before `/`), so printed output does not move.
impl Ord for ObjectKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.text_bytes().cmp(other.text_bytes())
    }
}

impl PartialOrd for ObjectKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for ObjectKey {
    fn eq(&self, other: &str) -> bool {
        self.text_bytes().eq(other.bytes())
    }
}

impl PartialEq<&str> for ObjectKey {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

/// For text-keyed places (finding subjects) that take `impl Into<String>`.
impl From<ObjectKey> for String {
    fn from(key: ObjectKey) -> String {
        key.to_string()
    }
}

impl Serialize for ObjectKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ObjectKey::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not `namespace/name`: add the namespace")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_and_reads_namespace_slash_name() {
        let key = ObjectKey::new("prod", "redis-0");
        assert_eq!(key.to_string(), "prod/redis-0");
        assert_eq!(ObjectKey::parse("prod/redis-0"), Some(key.clone()));
        assert_eq!(serde_json::to_string(&key).unwrap(), "\"prod/redis-0\"");
        assert_eq!(serde_json::from_str::<ObjectKey>("\"prod/redis-0\"").unwrap(), key);
        assert!(key == "prod/redis-0");
        assert!(key != "prod/redis");
        assert_eq!(join(&[key, ObjectKey::new("data", "kafka-0")], ", "), "prod/redis-0, data/kafka-0");
    }

    #[test]
    fn a_key_without_namespace_is_refused_with_the_fix() {
        assert_eq!(ObjectKey::parse("redis-0"), None);
        let err = serde_json::from_str::<ObjectKey>("\"redis-0\"").unwrap_err().to_string();
        assert!(err.contains("`redis-0` is not `namespace/name`"), "{err}");
    }

    #[test]
    fn orders_like_the_text_form() {
        let names = [("a", "x"), ("a-b", "x"), ("a", "x-y"), ("ab", "c"), ("a", "")];
        let mut keys: Vec<ObjectKey> = names.iter().map(|(ns, n)| ObjectKey::new(*ns, *n)).collect();
        let mut texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
        keys.sort();
        texts.sort();
        assert_eq!(keys.iter().map(ToString::to_string).collect::<Vec<_>>(), texts);
        assert_eq!(ObjectKey::new("a-b", "x").cmp(&ObjectKey::new("a", "x")), Ordering::Less);
    }
}
