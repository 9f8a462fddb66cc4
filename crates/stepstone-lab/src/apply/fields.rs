//! The field sets of server-side apply and what decides them: structured-merge-diff's
//! `fieldpath.Set` in the FieldsV1 format, the shapes of Kubernetes types that say how a list or
//! map merges (atomic, keyed, set), the comparison of two versions of an object, and the merge
//! of an applied configuration into the live object with the pruning of fields no longer applied.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

// ---- field sets

/// A set of field paths, as structured-merge-diff's `fieldpath.Set`: `members` are the path
/// elements (`f:name`, `k:{"name":"c"}`, `v:"x"`, `i:0`) that are in the set at this node,
/// `children` the sets below them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub members: BTreeSet<String>,
    pub children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    pub(super) fn prune_empty(&mut self) {
        self.children.retain(|_, c| {
            c.prune_empty();
            !c.is_empty()
        });
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (k, c) in &other.children {
            let merged = out.children.get(k).map_or_else(|| c.clone(), |mine| mine.union(c));
            out.children.insert(k.clone(), merged);
        }
        out
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out =
            FieldSet { members: self.members.difference(&other.members).cloned().collect(), children: BTreeMap::new() };
        for (k, c) in &self.children {
            let d = other.children.get(k).map_or_else(|| c.clone(), |o| c.difference(o));
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Whether the set holds `elem` itself or anything below it.
    fn owns_at_or_below(&self, elem: &str) -> bool {
        self.members.contains(elem) || self.children.get(elem).is_some_and(|c| !c.is_empty())
    }

    /// Every named field with something below it becomes a member too, as upstream's
    /// `EnsureNamedFieldsAreMembers`: a struct field the applier stopped applying altogether
    /// goes with its contents.
    pub(super) fn with_named_fields(&self) -> FieldSet {
        let mut out = self.clone();
        for (k, c) in &self.children {
            if k.starts_with("f:") && !c.is_empty() {
                out.members.insert(k.clone());
            }
            out.children.insert(k.clone(), c.with_named_fields());
        }
        out
    }

    /// Every member path, in serialisation order.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for elem in sorted_elems(self) {
            if self.members.contains(&elem) {
                out.push(vec![elem.clone()]);
            }
            if let Some(c) = self.children.get(&elem) {
                for mut p in c.paths() {
                    p.insert(0, elem.clone());
                    out.push(p);
                }
            }
        }
        out
    }

    /// Upstream's FieldsV1 JSON: `{"f:spec": {"f:replicas": {}}, "k:{...}": {".": {}, ...}}`.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        for elem in sorted_elems(self) {
            let mut inner = match self.children.get(&elem) {
                Some(c) if !c.is_empty() => c.to_fields_v1(),
                _ => json!({}),
            };
            if self.members.contains(&elem)
                && inner.as_object().is_some_and(|o| !o.is_empty())
                && let Some(o) = inner.as_object_mut()
            {
                let mut with_dot = Map::new();
                with_dot.insert(".".into(), json!({}));
                with_dot.extend(std::mem::take(o));
                *o = with_dot;
            }
            m.insert(elem, inner);
        }
        Value::Object(m)
    }

    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let obj = v.as_object().ok_or_else(|| format!("FieldsV1 must be an object, got {v}"))?;
        let mut out = FieldSet::default();
        for (k, inner) in obj {
            if k == "." {
                continue;
            }
            if !["f:", "k:", "v:", "i:"].iter().any(|p| k.starts_with(p)) {
                return Err(format!("unknown path element {k:?} in FieldsV1"));
            }
            let inner_obj = inner.as_object().ok_or_else(|| format!("FieldsV1 entry {k} must be an object"))?;
            if inner_obj.is_empty() || inner_obj.contains_key(".") {
                out.members.insert(k.clone());
            }
            let c = FieldSet::from_fields_v1(inner)?;
            if !c.is_empty() {
                out.children.insert(k.clone(), c);
            }
        }
        Ok(out)
    }
}

/// Element order of upstream's serialisation: fields, then keys, then values, then indexes.
pub(super) fn sorted_elems(s: &FieldSet) -> Vec<String> {
    let mut all: Vec<String> = s.members.iter().chain(s.children.keys()).cloned().collect();
    all.sort_by(|a, b| elem_rank(a).cmp(&elem_rank(b)).then_with(|| a.cmp(b)));
    all.dedup();
    all
}

pub(super) fn elem_rank(e: &str) -> (u8, u64) {
    match e.get(..2) {
        Some("f:") => (0, 0),
        Some("k:") => (1, 0),
        Some("v:") => (2, 0),
        _ => (3, e[2.min(e.len())..].parse().unwrap_or(0)),
    }
}

/// A path as upstream prints it in conflicts: `.spec.template.spec.containers[name="app"].image`.
pub fn path_string(path: &[String]) -> String {
    let mut out = String::new();
    for e in path {
        let (kind, rest) = e.split_at(2.min(e.len()));
        match kind {
            "f:" => {
                out.push('.');
                out.push_str(rest);
            }
            "k:" => {
                let fields: Map<String, Value> = serde_json::from_str(rest).unwrap_or_default();
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            "v:" => out.push_str(&format!("[={rest}]")),
            _ => out.push_str(&format!("[{rest}]")),
        }
    }
    out
}

// ---- the shapes of Kubernetes types that matter for merging

pub(super) enum Shape {
    /// A list of objects merged by these key fields.
    Associative(&'static [&'static str]),
    /// A list of scalars merged as a set.
    Set,
    Atomic,
}

pub(super) fn list_shape(field: Option<&str>, items: &[Value]) -> Shape {
    match field.unwrap_or("") {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" => {
            Shape::Associative(&["name"])
        }
        "volumeMounts" => Shape::Associative(&["mountPath"]),
        "volumeDevices" => Shape::Associative(&["devicePath"]),
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => {
            Shape::Associative(&["containerPort", "protocol"])
        }
        "ports" => Shape::Associative(&["port", "protocol"]),
        "conditions" => Shape::Associative(&["type"]),
        "ownerReferences" => Shape::Associative(&["uid"]),
        "hostAliases" => Shape::Associative(&["ip"]),
        "topologySpreadConstraints" => Shape::Associative(&["topologyKey", "whenUnsatisfiable"]),
        "taints" => Shape::Associative(&["key", "effect"]),
        "finalizers" => Shape::Set,
        _ => Shape::Atomic,
    }
}

/// Maps replaced as a whole: label selectors (`+structType=atomic`), except a Service's selector,
/// which is a plain string map.
pub(super) fn map_atomic(kind: &str, field: Option<&str>) -> bool {
    match field {
        Some("selector") => kind != "Service",
        Some("labelSelector" | "namespaceSelector") => true,
        _ => false,
    }
}

/// Maps keyed by user data (not Go structs): their own path is a member when they appear, as the
/// `.` under `f:labels` in an Update entry shows.
pub(super) fn plain_map(kind: &str, field: Option<&str>) -> bool {
    matches!(
        field,
        Some(
            "labels"
                | "annotations"
                | "nodeSelector"
                | "data"
                | "binaryData"
                | "stringData"
                | "limits"
                | "requests"
                | "capacity"
                | "allocatable"
                | "matchLabels"
        )
    ) || (field == Some("selector") && kind == "Service")
}

/// `k:{"containerPort":80,"protocol":"TCP"}` for an item of an associative list; a missing
/// `protocol` is its default, TCP.
pub(super) fn item_key(keys: &[&str], item: &Value) -> Result<String, String> {
    let mut fields = Map::new();
    for k in keys {
        match item.get(*k) {
            Some(v) if !v.is_null() => {
                fields.insert(k.to_string(), v.clone());
            }
            _ if *k == "protocol" => {
                fields.insert(k.to_string(), json!("TCP"));
            }
            _ => return Err(format!("associative list with keys has an element that omits key field {k:?}")),
        }
    }
    Ok(format!("k:{}", Value::Object(fields)))
}

pub(super) fn list_keys(field: Option<&str>, items: &[Value]) -> Option<(&'static [&'static str], Vec<String>)> {
    let Shape::Associative(keys) = list_shape(field, items) else { return None };
    let ks: Result<Vec<String>, String> = items.iter().map(|i| item_key(keys, i)).collect();
    ks.ok().map(|k| (keys, k))
}

pub(super) fn is_granular_map(kind: &str, field: Option<&str>, v: &Value) -> bool {
    v.as_object().is_some_and(|o| !o.is_empty()) && !map_atomic(kind, field)
}

/// The fields a value sets, relative to the value (upstream's `ToFieldSet`). With `dots`, plain
/// maps are members themselves, as when an Update adds them (Go's nil map becomes non-nil).
pub(super) fn field_set(kind: &str, field: Option<&str>, v: &Value, dots: bool) -> Result<FieldSet, String> {
    let mut out = FieldSet::default();
    let Some(obj) = v.as_object().filter(|_| !map_atomic(kind, field)) else { return Ok(out) };
    let parent_plain = plain_map(kind, field);
    for (k, child) in obj {
        let elem = format!("f:{k}");
        let f = Some(k.as_str());
        match child {
            Value::Object(_) if is_granular_map(kind, f, child) => {
                if parent_plain || (dots && plain_map(kind, f)) {
                    out.members.insert(elem.clone());
                }
                let sub = field_set(kind, f, child, dots)?;
                if !sub.is_empty() {
                    out.children.insert(elem, sub);
                }
            }
            Value::Array(items) => match list_shape(f, items) {
                Shape::Associative(keys) => {
                    let mut sub = FieldSet::default();
                    for item in items {
                        let ke = item_key(keys, item)
                            .map_err(|e| format!("{}: {e}", path_string(std::slice::from_ref(&elem))))?;
                        if sub.members.contains(&ke) {
                            return Err(format!(
                                "{}: duplicate entries for key {ke}",
                                path_string(std::slice::from_ref(&elem))
                            ));
                        }
                        sub.members.insert(ke.clone());
                        let inner = field_set(kind, None, item, dots)?;
                        if !inner.is_empty() {
                            sub.children.insert(ke, inner);
                        }
                    }
                    if !sub.is_empty() {
                        out.children.insert(elem, sub);
                    }
                }
                Shape::Set => {
                    let sub = FieldSet {
                        members: items.iter().map(|i| format!("v:{i}")).collect(),
                        children: BTreeMap::new(),
                    };
                    if !sub.is_empty() {
                        out.children.insert(elem, sub);
                    }
                }
                Shape::Atomic => {
                    out.members.insert(elem);
                }
            },
            _ => {
                out.members.insert(elem);
            }
        }
    }
    Ok(out)
}

/// What changed between two versions of an object, as upstream's `Compare`.
#[derive(Debug, Default)]
pub(super) struct Comparison {
    pub(super) added: FieldSet,
    pub(super) modified: FieldSet,
    pub(super) removed: FieldSet,
}

impl Comparison {
    fn child(&mut self, elem: &str) -> Comparison {
        Comparison {
            added: self.added.children.remove(elem).unwrap_or_default(),
            modified: self.modified.children.remove(elem).unwrap_or_default(),
            removed: self.removed.children.remove(elem).unwrap_or_default(),
        }
    }

    fn put_child(&mut self, elem: &str, c: Comparison) {
        for (set, sub) in [(&mut self.added, c.added), (&mut self.modified, c.modified), (&mut self.removed, c.removed)]
        {
            if !sub.is_empty() {
                set.children.insert(elem.to_string(), sub);
            }
        }
    }
}

/// The paths of a whole value that appears or disappears under `elem`.
pub(super) fn whole(kind: &str, field: Option<&str>, own: bool, v: &Value, elem: &str, into: &mut FieldSet) {
    let granular = is_granular_map(kind, field, v);
    let sub = if granular {
        field_set(kind, field, v, true).unwrap_or_default()
    } else if let Value::Array(items) = v {
        let mut wrapper = Map::new();
        wrapper.insert(field.unwrap_or("").to_string(), Value::Array(items.clone()));
        let s = field_set(kind, None, &Value::Object(wrapper), true).unwrap_or_default();
        let key = format!("f:{}", field.unwrap_or(""));
        if s.members.contains(&key) {
            into.members.insert(elem.to_string());
            return;
        }
        s.children.get(&key).cloned().unwrap_or_default()
    } else {
        into.members.insert(elem.to_string());
        return;
    };
    if own || plain_map(kind, field) {
        into.members.insert(elem.to_string());
    }
    if !sub.is_empty() {
        into.children.insert(elem.to_string(), sub.union(into.children.get(elem).unwrap_or(&FieldSet::default())));
    }
}

pub(super) fn compare_value(
    kind: &str,
    field: Option<&str>,
    own: bool,
    l: Option<&Value>,
    r: Option<&Value>,
    elem: &str,
    out: &mut Comparison,
) {
    match (l, r) {
        (None, None) => {}
        (None, Some(rv)) => whole(kind, field, own, rv, elem, &mut out.added),
        (Some(lv), None) => whole(kind, field, own, lv, elem, &mut out.removed),
        (Some(lv), Some(rv)) => match (lv, rv) {
            (Value::Object(lo), Value::Object(ro)) if !(map_atomic(kind, field) || lo.is_empty() && ro.is_empty()) => {
                let mut sub = out.child(elem);
                compare_map(kind, field, lo, ro, &mut sub);
                out.put_child(elem, sub);
            }
            (Value::Array(li), Value::Array(ri)) if lv != rv => {
                let mut sub = out.child(elem);
                match (list_keys(field, li), list_keys(field, ri), list_shape(field, ri)) {
                    (Some((_, lk)), Some((_, rk)), _) => {
                        let mut seen = BTreeSet::new();
                        for (i, k) in lk.iter().enumerate() {
                            seen.insert(k.clone());
                            let ri_item = rk.iter().position(|x| x == k).map(|j| &ri[j]);
                            compare_value(kind, None, true, Some(&li[i]), ri_item, k, &mut sub);
                        }
                        for (j, k) in rk.iter().enumerate() {
                            if !seen.contains(k) {
                                compare_value(kind, None, true, None, Some(&ri[j]), k, &mut sub);
                            }
                        }
                    }
                    (_, _, Shape::Set) => {
                        for x in ri.iter().filter(|x| !li.contains(x)) {
                            sub.added.members.insert(format!("v:{x}"));
                        }
                        for x in li.iter().filter(|x| !ri.contains(x)) {
                            sub.removed.members.insert(format!("v:{x}"));
                        }
                    }
                    _ => {
                        sub.modified.members.insert(String::new());
                    }
                }
                if sub.modified.members.remove("") {
                    out.modified.members.insert(elem.to_string());
                }
                out.put_child(elem, sub);
            }
            _ if lv != rv => {
                out.modified.members.insert(elem.to_string());
            }
            _ => {}
        },
    }
}

pub(super) fn compare_map(
    kind: &str,
    field: Option<&str>,
    l: &Map<String, Value>,
    r: &Map<String, Value>,
    out: &mut Comparison,
) {
    let own_children = plain_map(kind, field);
    for k in l.keys().chain(r.keys().filter(|k| !l.contains_key(*k))) {
        compare_value(kind, Some(k), own_children, l.get(k), r.get(k), &format!("f:{k}"), out);
    }
}

pub(super) fn compare(kind: &str, l: &Value, r: &Value) -> Comparison {
    let mut out = Comparison::default();
    let empty = Map::new();
    compare_map(kind, None, l.as_object().unwrap_or(&empty), r.as_object().unwrap_or(&empty), &mut out);
    out
}

// ---- merging and pruning

/// Merge an applied configuration into a live value (structured-merge-diff's `Merge`).
pub(super) fn merge(kind: &str, field: Option<&str>, live: &Value, applied: &Value) -> Value {
    match (live, applied) {
        (Value::Object(lo), Value::Object(ao)) if !map_atomic(kind, field) => {
            let mut out = lo.clone();
            for (k, av) in ao {
                if av.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match lo.get(k) {
                    Some(lv) => merge(kind, Some(k), lv, av),
                    None => av.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(li), Value::Array(ai)) => match (list_keys(field, li), list_keys(field, ai)) {
            (Some((_, lk)), Some((_, ak))) => {
                let mut out = li.clone();
                for (j, k) in ak.iter().enumerate() {
                    match lk.iter().position(|x| x == k) {
                        Some(i) => out[i] = merge(kind, None, &li[i], &ai[j]),
                        None => out.push(ai[j].clone()),
                    }
                }
                Value::Array(out)
            }
            _ if matches!(list_shape(field, ai), Shape::Set) => {
                let mut out = li.clone();
                out.extend(ai.iter().filter(|x| !li.contains(x)).cloned());
                Value::Array(out)
            }
            _ => applied.clone(),
        },
        _ => applied.clone(),
    }
}

/// Remove from `v` the paths of `gone` that no other manager owns (at or below them).
pub(super) fn prune(field: Option<&str>, v: &mut Value, gone: &FieldSet, others: &FieldSet) {
    let empty = FieldSet::default();
    for elem in sorted_elems(gone) {
        let theirs = others.children.get(&elem).unwrap_or(&empty);
        if gone.members.contains(&elem) && !others.owns_at_or_below(&elem) {
            remove_elem(field, v, &elem);
            continue;
        }
        if let Some(sub) = gone.children.get(&elem)
            && let Some((child, child_field)) = child_mut(field, v, &elem)
        {
            prune(child_field.as_deref(), child, sub, theirs);
        }
    }
}

pub(super) fn child_mut<'a>(
    field: Option<&str>,
    v: &'a mut Value,
    elem: &str,
) -> Option<(&'a mut Value, Option<String>)> {
    if let Some(name) = elem.strip_prefix("f:") {
        return v.as_object_mut()?.get_mut(name).map(|c| (c, Some(name.to_string())));
    }
    let items = v.as_array_mut()?;
    let (_, keys) = list_keys(field, items)?;
    let i = keys.iter().position(|k| k == elem)?;
    Some((&mut items[i], None))
}

pub(super) fn remove_elem(field: Option<&str>, v: &mut Value, elem: &str) {
    if let Some(name) = elem.strip_prefix("f:") {
        if let Some(o) = v.as_object_mut() {
            o.remove(name);
        }
        return;
    }
    let Some(items) = v.as_array_mut() else { return };
    if let Some(x) = elem.strip_prefix("v:") {
        items.retain(|i| serde_json::from_str::<Value>(x).ok().as_ref() != Some(i));
    } else if let Some((_, keys)) = list_keys(field, items) {
        let mut it = keys.iter();
        items.retain(|_| it.next().is_none_or(|k| k != elem));
    }
}
