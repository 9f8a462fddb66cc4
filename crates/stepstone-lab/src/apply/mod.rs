//! Field ownership and server-side apply: `metadata.managedFields` in upstream's FieldsV1 format,
//! the `Update` entries every write through the API records for its field manager, and
//! `PATCH` with `application/apply-patch+yaml` (merge by structured-merge-diff's rules for the
//! shapes Kubernetes types declare, conflicts with other managers, removal of fields an applier
//! stopped applying).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::resources::{self, RESOURCES, ResId, ResourceDef};
use crate::status::{ApiError, Cause};
use crate::store::{Part, Store, meta, meta_mut, meta_str};
use crate::{admission, clock};

mod fields;

pub use self::fields::{FieldSet, path_string};
use self::fields::{compare, field_set, merge, prune};

/// The media type of apply patches (kubectl sends JSON under it; YAML is accepted too).
pub const APPLY_CONTENT_TYPE: &str = "application/apply-patch+yaml";

/// Whether a `Content-Type` names an apply patch.
pub fn is_apply(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or("").trim() == APPLY_CONTENT_TYPE
}

/// Who writes and when: the field manager of a request and the lab's clock.
#[derive(Debug, Clone)]
pub struct Writer {
    pub manager: String,
    pub now: Timestamp,
}

impl Writer {
    /// Upstream's rule: the `fieldManager` query parameter, else the User-Agent up to its first
    /// `/` (`kubectl/v1.32.4 (linux/amd64) ...` is `kubectl`).
    pub fn from_request(field_manager: Option<&str>, user_agent: Option<&str>, now: Timestamp) -> Self {
        let manager = match field_manager.filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => user_agent.unwrap_or("").split('/').next().unwrap_or("").to_string(),
        };
        Writer { manager, now }
    }
}

// ---- managedFields entries

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    fn same_owner(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.manager.is_empty() {
            m.insert("manager".into(), json!(self.manager));
        }
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        Some(Entry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation")?,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").unwrap_or_default(),
            fields: FieldSet::from_fields_v1(v.get("fieldsV1").unwrap_or(&json!({}))).ok()?,
        })
    }

    /// How upstream names a manager in a conflict.
    fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// The managedFields of an object; entries that do not parse are dropped, as upstream resets
/// managedFields it cannot decode.
pub fn entries(obj: &Value) -> Vec<Entry> {
    meta(obj)
        .get("managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

/// Write entries in upstream's order (operation, time, manager, apiVersion, subresource).
fn set_entries(obj: &mut Value, mut list: Vec<Entry>) {
    list.retain(|e| !e.fields.is_empty());
    list.sort_by(|a, b| {
        (&a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(
            &b.operation,
            &b.time,
            &b.manager,
            &b.api_version,
            &b.subresource,
        ))
    });
    let m = meta_mut(obj);
    if list.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), Value::Array(list.iter().map(Entry::to_json).collect()));
    }
}

/// The part of an object field ownership covers: no identity or bookkeeping metadata, and for a
/// resource with a status subresource only the main part or only the status.
fn tracked(def: &ResourceDef, obj: &Value, part: Part) -> Value {
    let mut v = obj.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
        match part {
            Part::Status => o.retain(|k, _| k == "status"),
            Part::Main if def.status => {
                o.remove("status");
            }
            _ => {}
        }
    }
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            m.remove(k);
        }
        if m.is_empty() {
            v.as_object_mut().map(|o| o.remove("metadata"));
        }
    }
    v
}

fn subresource_of(part: Part) -> &'static str {
    if part == Part::Status { "status" } else { "" }
}

/// Record a write through the API (create, update, patch, status, scale) as upstream does: the
/// fields it added or changed move to the writer's `Update` entry, fields it removed leave every
/// entry. Managed fields the client sent itself replace the stored ones first (how clients reset
/// them); a single empty entry clears them.
pub fn track_update(
    def: &ResourceDef,
    old: Option<&Value>,
    new: &mut Value,
    writer: &Writer,
    part: Part,
    subresource: Option<&str>,
) {
    let sent = meta(new).get("managedFields").cloned();
    let mut list = match (&sent, old) {
        (Some(Value::Array(a)), _) if a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty) => Vec::new(),
        (Some(Value::Array(a)), _) if !a.is_empty() && subresource.is_none() && part != Part::Status => {
            a.iter().filter_map(Entry::from_json).collect()
        }
        (_, Some(o)) => entries(o),
        _ => Vec::new(),
    };
    let empty = json!({});
    let before = old.map_or_else(|| empty.clone(), |o| tracked(def, o, part));
    let after = tracked(def, new, part);
    let c = compare(def.kind, &before, &after);
    let changed = c.added.union(&c.modified);
    let sub = subresource.unwrap_or(subresource_of(part));
    for e in &mut list {
        e.fields = e.fields.difference(&changed).difference(&c.removed);
    }
    if !changed.is_empty() {
        let api_version = def.api_version();
        match list.iter_mut().find(|e| e.same_owner(&writer.manager, "Update", sub)) {
            Some(e) => {
                e.fields = e.fields.union(&changed);
                e.api_version = api_version;
                e.time = Some(clock::format(writer.now));
            }
            None => list.push(Entry {
                manager: writer.manager.clone(),
                operation: "Update".into(),
                api_version,
                time: Some(clock::format(writer.now)),
                subresource: sub.to_string(),
                fields: changed,
            }),
        }
    }
    set_entries(new, list);
    keep_old_times(old, new);
}

/// Upstream ignores a change of managedFields timestamps alone, so a write that changes nothing
/// stays a no-op (no new resourceVersion).
fn keep_old_times(old: Option<&Value>, new: &mut Value) {
    let Some(old) = old else { return };
    let strip = |v: &Value| {
        let mut v = v.clone();
        meta_mut(&mut v).remove("managedFields");
        meta_mut(&mut v).remove("resourceVersion");
        v
    };
    let untimed = |v: &Value| {
        entries(v)
            .into_iter()
            .map(|mut e| {
                e.time = None;
                e
            })
            .collect::<Vec<_>>()
    };
    if strip(old) == strip(new) && untimed(old) == untimed(new) {
        match meta(old).get("managedFields") {
            Some(mf) => meta_mut(new).insert("managedFields".into(), mf.clone()),
            None => meta_mut(new).remove("managedFields"),
        };
    }
}

/// A status write: the stored object with only its status replaced, so the status entry of
/// managedFields can be recorded on it.
pub fn with_status_of(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    match new.get("status") {
        Some(s) => out["status"] = s.clone(),
        None => {
            if let Some(o) = out.as_object_mut() {
                o.remove("status");
            }
        }
    }
    for k in ["resourceVersion", "uid"] {
        match meta_str(new, k) {
            Some(v) => meta_mut(&mut out).insert(k.into(), json!(v)),
            None => meta_mut(&mut out).remove(k),
        };
    }
    out
}

// ---- apply

/// The query options of an apply request.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub writer: Writer,
    pub force: bool,
    pub dry_run: bool,
}

/// Upstream's `PatchOptions` validation: `fieldManager` is required for apply, `force` is only
/// for apply.
pub fn validate_options(apply: bool, field_manager: Option<&str>, force: Option<&str>) -> Result<(), ApiError> {
    let (field, why, detail) = if apply && field_manager.is_none_or(str::is_empty) {
        ("fieldManager", "FieldValueRequired", "Required value: is required for apply patch")
    } else if !apply && force.is_some() {
        ("force", "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch")
    } else if field_manager.is_some_and(|m| m.chars().count() > 128) {
        ("fieldManager", "FieldValueTooLong", "Too long: may not be more than 128 bytes")
    } else {
        return Ok(());
    };
    let mut e = ApiError::bad_request(format!("PatchOptions.meta.k8s.io \"\" is invalid: {field}: {detail}"));
    e.code = 422;
    e.reason = "Invalid".into();
    e.details.group = Some("meta.k8s.io".into());
    e.details.kind = Some("PatchOptions".into());
    e.details.causes = vec![Cause { reason: why.into(), message: detail.into(), field: Some(field.into()) }];
    Err(e)
}

/// Decode an apply body: JSON (what kubectl sends) or YAML.
pub fn decode_body(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the apply patch is neither JSON nor UTF-8 YAML"))?;
            serde_saphyr::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        }
    };
    if !v.is_object() {
        return Err(ApiError::bad_request("the apply patch must be an object (a full or partial manifest)"));
    }
    Ok(v)
}

/// `PATCH` with an apply patch: create the object (201) or merge into it (200).
pub fn serve(
    store: &mut Store,
    res: ResId,
    ns: &str,
    name: &str,
    part: Part,
    body: &[u8],
    opts: &ApplyOptions,
) -> Result<(u16, Arc<Value>), ApiError> {
    let res = resources::storage_of(res);
    let def = &RESOURCES[res];
    let config = decode_body(body)?;
    let live = store.get(res, ns, name);
    if live.is_none() && part == Part::Status {
        return Err(ApiError::not_found(def, name));
    }
    let Applied { mut object, created } = apply(res, ns, name, live.as_deref(), &config, opts, part)?;
    if created {
        // Defaults are filled in after ownership is recorded: nobody owns them.
        admission::prepare_for_create(res, &mut object);
        admission::admit(res, &mut object);
        admission::validate(res, &object)?;
        if opts.dry_run {
            if def.namespaced && store.get(resources::NAMESPACES, "", ns).is_none() {
                return Err(ApiError::not_found(&RESOURCES[resources::NAMESPACES], ns));
            }
            return Ok((201, Arc::new(object)));
        }
        return Ok((201, store.create(res, object, opts.writer.now, false)?));
    }
    if part != Part::Status {
        admission::validate(res, &object)?;
        if res == resources::DAEMONSETS
            && let Some(old) = &live
        {
            admission::set_template_generation(&mut object, Some(old));
        }
    }
    if opts.dry_run {
        return Ok((200, Arc::new(object)));
    }
    let part = if part == Part::Status { Part::All } else { part };
    Ok((200, store.update(res, object, part, false)?))
}

/// The outcome of an apply: the object to store and whether it is new.
#[derive(Debug)]
pub struct Applied {
    pub object: Value,
    pub created: bool,
}

fn conflict_error(conflicts: &[(String, Vec<String>)]) -> ApiError {
    let n = conflicts.len();
    let message = if n == 1 {
        format!("Apply failed with 1 conflict: conflict with {}: {}", conflicts[0].0, path_string(&conflicts[0].1))
    } else {
        let mut by_manager: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (m, p) in conflicts {
            by_manager.entry(m).or_default().push(path_string(p));
        }
        let mut lines = Vec::new();
        for (m, paths) in by_manager {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
    };
    let mut e = ApiError::bad_request(message);
    e.code = 409;
    e.reason = "Conflict".into();
    e.details.causes = conflicts
        .iter()
        .map(|(m, p)| Cause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {m}"),
            field: Some(path_string(p)),
        })
        .collect();
    e
}

/// Server-side apply of `config` (the decoded body) to `live` (None: the object does not exist
/// yet). Returns the object to store with its managedFields, or the upstream error.
pub fn apply(
    res: ResId,
    ns: &str,
    name: &str,
    live: Option<&Value>,
    config: &Value,
    opts: &ApplyOptions,
    part: Part,
) -> Result<Applied, ApiError> {
    let def = &RESOURCES[res];
    if meta(config).get("managedFields").is_some_and(|m| !m.is_null()) {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() || config.get("apiVersion").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(format!(
            "the apply patch for {} {name:?} must set apiVersion and kind (apiVersion: {}, kind: {})",
            def.qualified(),
            def.api_version(),
            def.kind
        )));
    }
    if kind != def.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the apply patch ({kind}) does not match the resource on the URL ({})",
            def.kind
        )));
    }
    let body_name = meta_str(config, "name").unwrap_or("");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if def.namespaced && meta_str(config, "namespace").is_some_and(|n| !n.is_empty() && n != ns) {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let (Some(live), Some(rv)) = (live, meta_str(config, "resourceVersion").filter(|r| !r.is_empty()))
        && Some(rv) != meta_str(live, "resourceVersion")
    {
        return Err(ApiError::modified(def, name));
    }
    let applied_view = tracked(def, config, part);
    let applied_set = field_set(def.kind, None, &applied_view, false).map_err(|e| {
        ApiError::bad_request(format!(
            "failed to create typed patch object ({}/{name}; {}): {e}",
            def.api_version(),
            def.kind
        ))
    })?;
    let sub = subresource_of(part);
    let mut list = live.map(entries).unwrap_or_default();
    let live_view = live.map_or_else(|| json!({}), |l| tracked(def, l, part));
    let merged_view = merge(def.kind, None, &live_view, &applied_view);
    let c = compare(def.kind, &live_view, &merged_view);
    let changed = c.added.union(&c.modified);
    let mut conflicts: Vec<(String, Vec<String>)> = Vec::new();
    for e in list.iter().filter(|e| !e.same_owner(&opts.writer.manager, "Apply", sub)) {
        for p in e.fields.intersection(&changed).paths() {
            conflicts.push((e.describe(), p));
        }
    }
    if !conflicts.is_empty() && !opts.force {
        conflicts.sort();
        return Err(conflict_error(&conflicts));
    }
    let last = list.iter().find(|e| e.same_owner(&opts.writer.manager, "Apply", sub)).map(|e| e.fields.clone());
    let mut others = FieldSet::default();
    for e in &mut list {
        if e.same_owner(&opts.writer.manager, "Apply", sub) {
            e.fields = applied_set.clone();
            e.api_version = def.api_version();
            e.time = Some(clock::format(opts.writer.now));
        } else {
            e.fields = e.fields.difference(&changed);
            others = others.union(&e.fields);
        }
    }
    if last.is_none() {
        list.push(Entry {
            manager: opts.writer.manager.clone(),
            operation: "Apply".into(),
            api_version: def.api_version(),
            time: Some(clock::format(opts.writer.now)),
            subresource: sub.to_string(),
            fields: applied_set.clone(),
        });
    }
    // Start from the live object (or the applied identity) and lay the merged view over it.
    let mut object = match live {
        Some(l) => l.clone(),
        None => {
            let mut o = json!({"apiVersion": def.api_version(), "kind": def.kind, "metadata": {"name": name}});
            if def.namespaced {
                o["metadata"]["namespace"] = json!(ns);
            }
            o
        }
    };
    let mut merged = merged_view;
    if let Some(last) = last {
        let mut gone = last.with_named_fields().difference(&applied_set.with_named_fields());
        gone.prune_empty();
        prune(None, &mut merged, &gone, &others);
    }
    overlay(&mut object, merged, def, part);
    set_entries(&mut object, list);
    keep_old_times(live, &mut object);
    Ok(Applied { object, created: live.is_none() })
}

/// Put the tracked view back into the full object: identity metadata stays, and for a resource
/// with a status subresource the untouched part stays as it was.
fn overlay(object: &mut Value, view: Value, def: &ResourceDef, part: Part) {
    let Value::Object(mut view) = view else { return };
    let keep_meta: Map<String, Value> = meta(object)
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "name"
                            | "namespace"
                            | "uid"
                            | "resourceVersion"
                            | "generation"
                            | "creationTimestamp"
                            | "managedFields"
                            | "selfLink"
                            | "deletionTimestamp"
                            | "deletionGracePeriodSeconds"
                    )
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let Some(o) = object.as_object_mut() else { return };
    let keep_status = (part == Part::Main && def.status).then(|| o.get("status").cloned()).flatten();
    let api_version = o.get("apiVersion").cloned();
    let kind = o.get("kind").cloned();
    o.clear();
    if let Some(v) = api_version {
        o.insert("apiVersion".into(), v);
    }
    if let Some(v) = kind {
        o.insert("kind".into(), v);
    }
    let mut m = keep_meta;
    if let Some(Value::Object(vm)) = view.remove("metadata") {
        m.extend(vm);
    }
    o.insert("metadata".into(), Value::Object(m));
    o.extend(view);
    if let Some(s) = keep_status {
        o.insert("status".into(), s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::DEPLOYMENTS;

    fn at() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn opts(manager: &str, force: bool) -> ApplyOptions {
        ApplyOptions { writer: Writer { manager: manager.into(), now: at() }, force, dry_run: false }
    }

    fn deploy(image: &str, replicas: Option<i64>) -> Value {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}],
                        "env": [{"name": "A", "value": "1"}]}]}}}});
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    fn apply_to(live: Option<&Value>, config: &Value, manager: &str, force: bool) -> Result<Value, ApiError> {
        apply(DEPLOYMENTS, "shop", "web", live, config, &opts(manager, force), Part::Main).map(|a| a.object)
    }

    fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> &'a Value {
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == manager && e["operation"] == operation)
            .unwrap_or_else(|| panic!("no {manager} {operation} entry in {obj:#}"))
    }

    #[test]
    fn fields_v1_encodes_fields_keys_values_and_item_membership() {
        let config = deploy("nginx:1", Some(2));
        let set = field_set("Deployment", None, &tracked(&RESOURCES[DEPLOYMENTS], &config, Part::Main), false).unwrap();
        let v1 = set.to_fields_v1();
        assert_eq!(v1["f:spec"]["f:replicas"], json!({}));
        assert_eq!(v1["f:spec"]["f:selector"], json!({}), "a label selector is atomic");
        assert_eq!(v1["f:metadata"]["f:labels"], json!({"f:app": {}}), "apply records no '.' for a map");
        let c = &v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"];
        assert_eq!(c["."], json!({}));
        assert_eq!(c["f:image"], json!({}));
        assert_eq!(
            c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"],
            json!({".": {}, "f:containerPort": {}})
        );
        assert_eq!(c["f:env"]["k:{\"name\":\"A\"}"], json!({".": {}, "f:name": {}, "f:value": {}}));
        assert_eq!(c.as_object().unwrap().keys().next().unwrap(), ".", "'.' comes first");
        assert_eq!(FieldSet::from_fields_v1(&v1).unwrap(), set, "FieldsV1 round-trips");
        let finalizers = field_set("ConfigMap", None, &json!({"metadata": {"finalizers": ["a/b"]}}), false).unwrap();
        assert_eq!(finalizers.to_fields_v1(), json!({"f:metadata": {"f:finalizers": {"v:\"a/b\"": {}}}}));
        assert_eq!(
            path_string(&[
                "f:spec".into(),
                "f:containers".into(),
                "k:{\"containerPort\":80,\"protocol\":\"TCP\"}".into(),
                "f:x".into()
            ]),
            ".spec.containers[containerPort=80,protocol=\"TCP\"].x"
        );
    }

    #[test]
    fn update_entries_own_what_they_changed_with_dot_for_new_maps() {
        let def = &RESOURCES[DEPLOYMENTS];
        let mut created = deploy("nginx:1", Some(1));
        track_update(
            def,
            None,
            &mut created,
            &Writer { manager: "kubectl-create".into(), now: at() },
            Part::Main,
            None,
        );
        let e = entry(&created, "kubectl-create", "Update");
        assert_eq!(e["fieldsV1"]["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["time"], "2026-01-01T00:00:00Z");
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(3);
        track_update(
            def,
            Some(&created),
            &mut scaled,
            &Writer { manager: "kubectl".into(), now: at() },
            Part::Main,
            Some("scale"),
        );
        let scale = entry(&scaled, "kubectl", "Update");
        assert_eq!(scale["subresource"], "scale");
        assert_eq!(scale["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
        assert!(entry(&scaled, "kubectl-create", "Update")["fieldsV1"]["f:spec"].get("f:replicas").is_none());
        // A write that changes nothing leaves managedFields (and so the object) as it was.
        let mut same = scaled.clone();
        track_update(def, Some(&scaled), &mut same, &Writer { manager: "other".into(), now: at() }, Part::Main, None);
        assert_eq!(same, scaled);
    }

    #[test]
    fn apply_creates_then_merges_keeping_other_fields() {
        let created = apply_to(None, &deploy("nginx:1", Some(2)), "kubectl", false).unwrap();
        assert_eq!(created["spec"]["replicas"], 2);
        assert_eq!(entry(&created, "kubectl", "Apply")["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
        // Another manager adds an env var and a label; a re-apply with a new image keeps both.
        let mut live = created.clone();
        live["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "B", "value": "2"}));
        live["metadata"]["labels"]["team"] = json!("x");
        track_update(
            &RESOURCES[DEPLOYMENTS],
            Some(&created),
            &mut live,
            &Writer { manager: "kubectl-edit".into(), now: at() },
            Part::Main,
            None,
        );
        let out = apply_to(Some(&live), &deploy("nginx:2", Some(2)), "kubectl", false).unwrap();
        let c = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "nginx:2");
        assert_eq!(c["env"], json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]));
        assert_eq!(out["metadata"]["labels"]["team"], "x");
        assert!(entry(&out, "kubectl-edit", "Update")["fieldsV1"].to_string().contains("k:{\\\"name\\\":\\\"B\\\"}"));
    }

    #[test]
    fn a_field_no_longer_applied_goes_unless_another_manager_owns_it() {
        let mut config = deploy("nginx:1", Some(2));
        config["metadata"]["labels"]["tier"] = json!("front");
        let live = apply_to(None, &config, "kubectl", false).unwrap();
        let out = apply_to(Some(&live), &deploy("nginx:1", None), "kubectl", false).unwrap();
        assert!(out["spec"].get("replicas").is_none(), "{out:#}");
        assert!(out["metadata"]["labels"].get("tier").is_none());
        assert_eq!(out["metadata"]["labels"]["app"], "web");
        // Dropping a whole container item removes it; an item another manager co-owns stays.
        let mut two = deploy("nginx:1", Some(2));
        two["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "image": "s:1"}));
        let live = apply_to(None, &two, "kubectl", false).unwrap();
        let mut co = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2}});
        let live = apply_to(Some(&live), &co, "hpa-tool", false).unwrap();
        let out = apply_to(Some(&live), &deploy("nginx:1", None), "kubectl", false).unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 1);
        assert_eq!(out["spec"]["replicas"], 2, "still applied by hpa-tool: {out:#}");
        co["spec"] = json!({});
        let out = apply_to(Some(&out), &co, "hpa-tool", false).unwrap();
        assert!(out["spec"].get("replicas").is_none(), "no manager applies it any more: {out:#}");
    }

    #[test]
    fn changing_a_field_another_manager_owns_conflicts_unless_forced() {
        let def = &RESOURCES[DEPLOYMENTS];
        let live = apply_to(None, &deploy("nginx:1", Some(2)), "kubectl", false).unwrap();
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(5);
        track_update(
            def,
            Some(&live),
            &mut scaled,
            &Writer { manager: "kubectl-scale".into(), now: at() },
            Part::Main,
            None,
        );
        let e = apply_to(Some(&scaled), &deploy("nginx:1", Some(3)), "kubectl", false).unwrap_err();
        assert_eq!(e.code, 409);
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
        );
        let st = e.to_status();
        assert_eq!(st["reason"], "Conflict");
        assert_eq!(
            st["details"],
            json!({"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-scale\" using apps/v1", "field": ".spec.replicas"}]})
        );
        // The same value is no conflict: both own it.
        let shared = apply_to(Some(&scaled), &deploy("nginx:1", Some(5)), "kubectl", false).unwrap();
        assert!(entry(&shared, "kubectl-scale", "Update")["fieldsV1"]["f:spec"].get("f:replicas").is_some());
        let forced = apply_to(Some(&scaled), &deploy("nginx:1", Some(3)), "kubectl", true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        assert!(
            forced["metadata"]["managedFields"].as_array().unwrap().iter().all(|e| e["manager"] != "kubectl-scale"),
            "the scaler owned nothing else: {forced:#}"
        );
        let mut two = deploy("nginx:9", Some(3));
        two["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = json!("2");
        let e = apply_to(Some(&scaled), &two, "other", false).unwrap_err();
        assert!(
            e.message.starts_with("Apply failed with 3 conflicts: conflicts with \"kubectl\":\n- "),
            "{}",
            e.message
        );
        assert!(e.message.contains("\n- .spec.template.spec.containers[name=\"app\"].image"), "{}", e.message);
    }

    #[test]
    fn apply_requires_a_field_manager_and_a_matching_name() {
        let e = validate_options(true, None, None).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
        assert_eq!(e.to_status()["details"]["causes"][0]["field"], "fieldManager");
        assert_eq!(validate_options(false, None, Some("true")).unwrap_err().code, 422);
        assert!(validate_options(true, Some("kubectl"), Some("true")).is_ok());
        let mut other = deploy("nginx:1", None);
        other["metadata"]["name"] = json!("api");
        assert_eq!(apply_to(None, &other, "kubectl", false).unwrap_err().code, 400);
        let mut with_mf = deploy("nginx:1", None);
        with_mf["metadata"]["managedFields"] = json!([]);
        assert_eq!(
            apply_to(None, &with_mf, "kubectl", false).unwrap_err().message,
            "metadata.managedFields must be nil"
        );
        assert_eq!(
            decode_body(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n").unwrap()["metadata"]["name"],
            "x"
        );
    }

    #[test]
    fn writer_falls_back_to_the_user_agent_program() {
        let w = Writer::from_request(None, Some("kubectl/v1.32.4 (linux/amd64) kubernetes/abc"), at());
        assert_eq!(w.manager, "kubectl");
        assert_eq!(Writer::from_request(Some("kubectl-edit"), Some("kubectl/v1"), at()).manager, "kubectl-edit");
    }
}
