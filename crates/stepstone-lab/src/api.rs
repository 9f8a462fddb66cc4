//! The verbs of the API, independent of HTTP: create (with the defaulting, validation and
//! admission of [`crate::admission`]), update, patch, graceful delete, the scale subresource
//! and pod eviction (decided by `stepstone_core::pdb`, the same rules the planner uses).

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use stepstone_core::pdb::{self, EvictionEffect};
use stepstone_core::snapshot::{parse_pdb, parse_pod};

pub use crate::admission::{
    DEFAULT_GRACE_SECONDS, TAINT_NOT_READY, TAINT_UNREACHABLE, admit, apply_defaults, prepare_for_create,
    set_template_generation, template_generation, validate,
};
use crate::apply::{self, Writer};
use crate::clock;
use crate::patch::{self, PatchType};
use crate::resources::{self, RESOURCES, ResId};
use crate::status::{ApiError, FieldError};
use crate::store::{self, Part, Store, meta, meta_mut, meta_str, name_of};

/// What `DeleteOptions` (body or query) asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn from_json(v: &Value) -> Self {
        DeleteOptions {
            grace_period_seconds: v.get("gracePeriodSeconds").and_then(Value::as_i64),
            uid: v.pointer("/preconditions/uid").and_then(Value::as_str).map(String::from),
            resource_version: v.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(String::from),
            propagation: v.get("propagationPolicy").and_then(Value::as_str).map(String::from),
            dry_run: v.get("dryRun").and_then(Value::as_array).is_some_and(|a| !a.is_empty()),
        }
    }
}

/// The outcome of a delete: the object as it now is, and whether it is gone.
#[derive(Debug)]
pub struct Deleted {
    pub object: Arc<Value>,
    pub gone: bool,
}

/// POST to a collection.
pub fn create(
    store: &mut Store,
    res: ResId,
    mut obj: Value,
    ns: Option<&str>,
    now: Timestamp,
    dry_run: bool,
    writer: &Writer,
) -> Result<Arc<Value>, ApiError> {
    let res = resources::storage_of(res);
    let def = &RESOURCES[res];
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    if def.namespaced {
        let url_ns = ns.unwrap_or("default");
        match meta_str(&obj, "namespace") {
            Some(n) if !n.is_empty() && n != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta_mut(&mut obj).insert("namespace".into(), json!(url_ns));
            }
        }
    } else {
        meta_mut(&mut obj).remove("namespace");
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && kind != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            obj.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
            def.api_version()
        )));
    }
    crate::decode::check_body(res, &obj)?;
    prepare_for_create(res, &mut obj);
    validate(res, &obj)?;
    apply::track_update(def, None, &mut obj, writer, if def.status { Part::Main } else { Part::All }, None);
    // Mutating admission runs after the field manager recorded the request, as upstream's create
    // handler orders them, so the client does not own what admission added.
    admit(res, &mut obj);
    if dry_run {
        if store.get(res, if def.namespaced { store::namespace_of(&obj) } else { "" }, name_of(&obj)).is_some() {
            return Err(ApiError::already_exists(def, name_of(&obj)));
        }
        return Ok(Arc::new(obj));
    }
    store.create(res, obj, now, false)
}

/// PUT of the main resource or its status.
#[allow(clippy::too_many_arguments)]
pub fn update(
    store: &mut Store,
    res: ResId,
    obj: Value,
    ns: &str,
    name: &str,
    part: Part,
    writer: &Writer,
    dry_run: bool,
) -> Result<Arc<Value>, ApiError> {
    let res = resources::storage_of(res);
    let def = &RESOURCES[res];
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    let body_name = name_of(&obj);
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    crate::decode::check_body(res, &obj)?;
    let mut obj = obj;
    if def.namespaced {
        meta_mut(&mut obj).insert("namespace".into(), json!(ns));
    }
    if part != Part::Status {
        validate(res, &obj)?;
        if res == resources::DAEMONSETS
            && let Some(old) = store.get(res, ns, name)
        {
            set_template_generation(&mut obj, Some(&old));
        }
    }
    store_tracked(store, res, obj, part, writer, dry_run)
}

/// Record the write in managedFields, then store it (or, for a dry run, answer what would be
/// stored). A status write is recorded on the stored object with its new status (the store would
/// otherwise keep the old metadata).
fn store_tracked(
    store: &mut Store,
    res: ResId,
    obj: Value,
    part: Part,
    writer: &Writer,
    dry_run: bool,
) -> Result<Arc<Value>, ApiError> {
    let def = &RESOURCES[res];
    let Some(old) = store.get(res, store::namespace_of(&obj), name_of(&obj)) else {
        return store.update(res, obj, part, true);
    };
    let (mut obj, store_part) = match part {
        Part::Status => (apply::with_status_of(&old, &obj), Part::All),
        p => (obj, p),
    };
    apply::track_update(def, Some(&old), &mut obj, writer, part, None);
    if dry_run {
        return store.preview_update(res, obj, store_part, true);
    }
    store.update(res, obj, store_part, true)
}

/// PATCH of the main resource or its status.
#[allow(clippy::too_many_arguments)]
pub fn patch(
    store: &mut Store,
    res: ResId,
    ns: &str,
    name: &str,
    kind: PatchType,
    body: &[u8],
    part: Part,
    writer: &Writer,
    dry_run: bool,
) -> Result<Arc<Value>, ApiError> {
    let res = resources::storage_of(res);
    let def = &RESOURCES[res];
    let current = store.get(res, ns, name).ok_or_else(|| ApiError::not_found(def, name))?;
    let mut patched = patch::apply(kind, &current, body)?;
    crate::decode::check_patched(res, &patched)?;
    if name_of(&patched) != name {
        return Err(ApiError::bad_request("metadata.name cannot be changed by a patch"));
    }
    if part != Part::Status {
        validate(res, &patched)?;
        if res == resources::DAEMONSETS {
            set_template_generation(&mut patched, Some(&current));
        }
    }
    // A patch that names a resourceVersion is conditional on it; otherwise it applies to the latest.
    store_tracked(store, res, patched, part, writer, dry_run)
}

/// DELETE of one object. Pods are deleted gracefully (deletionTimestamp now + grace period,
/// removed later by the simulated kubelet); everything else goes at once unless it has finalizers.
pub fn delete(
    store: &mut Store,
    res: ResId,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
    now: Timestamp,
) -> Result<Deleted, ApiError> {
    let res = resources::storage_of(res);
    let def = &RESOURCES[res];
    let current = store.get(res, ns, name).ok_or_else(|| ApiError::not_found(def, name))?;
    if let Some(uid) = &opts.uid
        && uid != store::uid_of(&current)
    {
        return Err(ApiError::uid_precondition(def, name, uid, store::uid_of(&current)));
    }
    if let Some(rv) = &opts.resource_version
        && Some(rv.as_str()) != meta_str(&current, "resourceVersion")
    {
        return Err(ApiError::conflict(
            def,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta_str(&current, "resourceVersion").unwrap_or("")
            ),
        ));
    }
    if opts.dry_run {
        return Ok(Deleted { object: current, gone: false });
    }
    if opts.propagation.as_deref() == Some("Orphan") {
        orphan_dependents(store, store::uid_of(&current).to_string());
    }
    if res == resources::PODS {
        let phase = current.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
        let unscheduled = current.pointer("/spec/nodeName").and_then(Value::as_str).is_none_or(str::is_empty);
        let mut grace = opts
            .grace_period_seconds
            .or_else(|| current.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
            .unwrap_or(DEFAULT_GRACE_SECONDS)
            .max(0);
        if unscheduled || phase == "Succeeded" || phase == "Failed" {
            grace = 0;
        }
        let has_finalizers = meta(&current).get("finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
        if grace == 0 && !has_finalizers {
            let gone = store.remove(res, ns, name).expect("present");
            return Ok(Deleted { object: gone, gone: true });
        }
        let deadline = clock::plus(now, grace as f64);
        if let Some(existing) = meta_str(&current, "deletionTimestamp").and_then(clock::parse)
            && existing <= deadline
        {
            // Already terminating with an earlier or equal deadline: nothing to shorten.
            return Ok(Deleted { object: current, gone: false });
        }
        let mut next = (*current).clone();
        let m = meta_mut(&mut next);
        m.insert("deletionTimestamp".into(), json!(clock::format(deadline)));
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        let obj = store.update(res, next, Part::All, false)?;
        return Ok(Deleted { object: obj, gone: false });
    }
    let has_finalizers = meta(&current).get("finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
    if has_finalizers {
        if meta(&current).get("deletionTimestamp").is_some() {
            return Ok(Deleted { object: current, gone: false });
        }
        let mut next = (*current).clone();
        let m = meta_mut(&mut next);
        m.insert("deletionTimestamp".into(), json!(clock::format(now)));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        let obj = store.update(res, next, Part::All, false)?;
        return Ok(Deleted { object: obj, gone: false });
    }
    if res == resources::NAMESPACES {
        // Namespace deletion takes its contents with it.
        for r in resources::ResId::all() {
            if r.def().namespaced && resources::storage_of(r) == r {
                let keys: Vec<String> = store.iter(r, Some(name), None).map(|o| name_of(&o).to_string()).collect();
                for k in keys {
                    store.remove(r, name, &k);
                }
            }
        }
    }
    let gone = store.remove(res, ns, name).expect("present");
    Ok(Deleted { object: gone, gone: true })
}

fn orphan_dependents(store: &mut Store, uid: String) {
    for r in resources::ResId::all() {
        if resources::storage_of(r) != r {
            continue;
        }
        let dependents: Vec<Value> = store
            .iter(r, None, None)
            .filter(|o| {
                meta(o)
                    .get("ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|x| x.get("uid").and_then(Value::as_str) == Some(&uid)))
            })
            .map(Arc::unwrap_or_clone)
            .collect();
        for mut d in dependents {
            if let Some(refs) = meta_mut(&mut d).get_mut("ownerReferences").and_then(Value::as_array_mut) {
                refs.retain(|x| x.get("uid").and_then(Value::as_str) != Some(&uid));
            }
            let _ = store.update(r, d, Part::All, false);
        }
    }
}

/// The `autoscaling/v1` Scale of a Deployment, ReplicaSet or StatefulSet.
pub fn scale_of(res: ResId, obj: &Value) -> Value {
    let m = meta(obj);
    let mut metadata = json!({
        "name": m.get("name"),
        "namespace": m.get("namespace"),
        "uid": m.get("uid"),
        "resourceVersion": m.get("resourceVersion"),
        "creationTimestamp": m.get("creationTimestamp"),
    });
    if let Some(o) = metadata.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    let selector = crate::table::selector_string(obj.pointer("/spec/selector"));
    let _ = res;
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": if selector == "<none>" { String::new() } else { selector },
        },
    })
}

/// Write a new Scale (from PUT or after a PATCH of the current Scale) to its parent.
pub fn set_scale(
    store: &mut Store,
    res: ResId,
    ns: &str,
    name: &str,
    scale: &Value,
    writer: &Writer,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let def = &RESOURCES[res];
    let current = store.get(res, ns, name).ok_or_else(|| ApiError::not_found(def, name))?;
    let replicas = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| ApiError::bad_request("spec.replicas must be an integer"))?,
    };
    if replicas < 0 {
        let scale_def = resources::ResourceDef { kind: "Scale", group: "autoscaling", ..clone_def(def) };
        return Err(ApiError::invalid(
            &scale_def,
            name,
            vec![FieldError::invalid("spec.replicas", replicas.to_string(), "must be greater than or equal to 0")],
        ));
    }
    if let Some(rv) = meta_str(scale, "resourceVersion").filter(|r| !r.is_empty())
        && Some(rv) != meta_str(&current, "resourceVersion")
    {
        return Err(ApiError::modified(def, name));
    }
    let mut next = (*current).clone();
    next["spec"]["replicas"] = json!(replicas);
    apply::track_update(def, Some(&current), &mut next, writer, Part::Main, Some("scale"));
    let updated = if dry_run {
        store.preview_update(res, next, Part::Main, false)?
    } else {
        store.update(res, next, Part::Main, false)?
    };
    Ok(scale_of(res, &updated))
}

fn clone_def(def: &resources::ResourceDef) -> resources::ResourceDef {
    resources::ResourceDef {
        group: def.group,
        version: def.version,
        plural: def.plural,
        singular: def.singular,
        kind: def.kind,
        namespaced: def.namespaced,
        short_names: def.short_names,
        categories: def.categories,
        status: def.status,
        scale: def.scale,
    }
}

/// `POST .../pods/{name}/eviction`: the budget check of upstream's eviction subresource, then a
/// graceful delete with the eviction's DeleteOptions.
pub fn evict(store: &mut Store, ns: &str, name: &str, eviction: &Value, now: Timestamp) -> Result<Value, ApiError> {
    let pods_def = &RESOURCES[resources::PODS];
    if let Some(n) = eviction.pointer("/metadata/name").and_then(Value::as_str)
        && n != name
    {
        return Err(ApiError::bad_request("name in URL does not match name in Eviction object".to_string()));
    }
    let current = store.get(resources::PODS, ns, name).ok_or_else(|| ApiError::not_found(pods_def, name))?;
    let opts = eviction.get("deleteOptions").map(DeleteOptions::from_json).unwrap_or_default();
    if let Some(uid) = &opts.uid
        && uid != store::uid_of(&current)
    {
        return Err(ApiError::uid_precondition(pods_def, name, uid, store::uid_of(&current)));
    }
    let pod = parse_pod(&current).map_err(|e| ApiError::internal(format!("cannot read pod {ns}/{name}: {e}")))?;
    let stored: Vec<Arc<Value>> = store.iter(resources::PDBS, Some(ns), None).collect();
    let mut budgets = Vec::new();
    for obj in &stored {
        // Budgets with selectors that cannot be parsed are ignored, as upstream does.
        if let Ok(p) = parse_pdb(obj)
            && p.selects(&pod)
        {
            let status = p.status.unwrap_or(stepstone_core::inventory::PdbStatus {
                current_healthy: 0,
                desired_healthy: 0,
                expected_pods: 0,
                disruptions_allowed: 0,
                observed_generation: 0,
            });
            budgets.push((p, status, obj.clone()));
        }
    }
    let covering: Vec<(&stepstone_core::inventory::Pdb, &stepstone_core::inventory::PdbStatus)> =
        budgets.iter().map(|(p, s, _)| (p, s)).collect();
    let effect = pdb::check_eviction(&pod, &covering).map_err(|r| refusal(&r))?;
    if let EvictionEffect::ConsumesBudget { .. } = effect {
        let (_, _, obj) = &budgets[0];
        let disrupted = obj.pointer("/status/disruptedPods").and_then(Value::as_object).map_or(0, |m| m.len());
        if disrupted >= pdb::MAX_DISRUPTED_POD_SIZE {
            return Err(refusal(&pdb::EvictionRefusal::disrupted_map_too_big(&budgets[0].0)));
        }
        if !opts.dry_run {
            let mut next = (**obj).clone();
            let allowed = next.pointer("/status/disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0);
            next["status"]["disruptionsAllowed"] = json!(allowed - 1);
            if !next["status"].get("disruptedPods").is_some_and(Value::is_object) {
                next["status"]["disruptedPods"] = json!({});
            }
            next["status"]["disruptedPods"][name] = json!(clock::format(now));
            store.update(resources::PDBS, next, Part::Status, false)?;
        }
    }
    if !opts.dry_run {
        if let Some(conditions_pod) = with_disruption_target(&current, now) {
            store.update(resources::PODS, conditions_pod, Part::All, false)?;
        }
        delete(store, resources::PODS, ns, name, &DeleteOptions { uid: None, resource_version: None, ..opts }, now)?;
    }
    Ok(crate::status::success(201, None))
}

/// Upstream marks an evicted pod with a `DisruptionTarget` condition before deleting it.
fn with_disruption_target(pod: &Value, now: Timestamp) -> Option<Value> {
    if meta(pod).get("deletionTimestamp").is_some() {
        return None;
    }
    let mut p = pod.clone();
    let cond = json!({
        "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting", "lastTransitionTime": clock::format(now),
    });
    if !p.get("status").is_some_and(Value::is_object) {
        p["status"] = json!({});
    }
    match p["status"].get_mut("conditions").and_then(Value::as_array_mut) {
        Some(cs) => {
            cs.retain(|c| c["type"] != "DisruptionTarget");
            cs.push(cond);
        }
        None => p["status"]["conditions"] = json!([cond]),
    }
    Some(p)
}

fn refusal(r: &pdb::EvictionRefusal) -> ApiError {
    ApiError { code: r.code, reason: r.reason.clone(), message: r.message.clone(), details: Box::new(r.details()) }
}

/// Names in a budget's `status.disruptedPods` still within the 2-minute deletion timeout (two
/// lab minutes: `120 / speed` seconds of the clock).
pub fn recently_disrupted(pdb: &Value, now: Timestamp, clock: &clock::Clock) -> BTreeSet<String> {
    pdb.pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, t)| {
                    t.as_str().and_then(clock::parse).is_some_and(|t| clock.after(t, DISRUPTED_TIMEOUT_SECONDS) > now)
                })
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// How long the disruption controller waits for an evicted pod to go (`DeletionTimeout`).
pub const DISRUPTED_TIMEOUT_SECONDS: f64 = 120.0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::DEFAULT_TOLERATION_SECONDS;
    use crate::resources::{NAMESPACES, PDBS, PODS};

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn setup() -> Store {
        let mut s = Store::new(3);
        s.create(NAMESPACES, json!({"metadata": {"name": "default"}}), now(), false).unwrap();
        s
    }

    #[test]
    fn default_toleration_seconds_follows_upstream_matching() {
        let admitted = |tolerations: Value| {
            let mut pod = json!({"spec": {"tolerations": tolerations}});
            admit(PODS, &mut pod);
            pod["spec"]["tolerations"].clone()
        };
        // An empty key or an empty effect tolerates both taints: nothing is added.
        assert_eq!(admitted(json!([{"operator": "Exists"}])), json!([{"operator": "Exists"}]));
        let any_effect = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]);
        let t = admitted(any_effect);
        assert_eq!(t.as_array().unwrap().len(), 2, "{t}");
        assert_eq!(t[1]["key"], TAINT_NOT_READY);
        assert_eq!(t[1]["tolerationSeconds"], DEFAULT_TOLERATION_SECONDS);
        // A NoSchedule toleration of the same key does not count.
        let t = admitted(json!([{"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoSchedule"}]));
        assert_eq!(t.as_array().unwrap().len(), 3, "{t}");
        let mut ns = json!({"metadata": {"name": "x"}});
        admit(NAMESPACES, &mut ns);
        assert!(ns.get("spec").is_none());
    }

    fn running_pod(name: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    fn pdb(allowed: i64, current: i64, desired: i64) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default", "generation": 1},
            "spec": {"minAvailable": desired, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": allowed, "currentHealthy": current, "desiredHealthy": desired,
                "expectedPods": current, "observedGeneration": 1}})
    }

    #[test]
    fn graceful_pod_delete_sets_deadline() {
        let mut s = setup();
        s.create(PODS, running_pod("a", true), now(), true).unwrap();
        let d = delete(
            &mut s,
            PODS,
            "default",
            "a",
            &DeleteOptions { grace_period_seconds: Some(10), ..Default::default() },
            now(),
        )
        .unwrap();
        assert!(!d.gone);
        assert_eq!(meta(&d.object)["deletionTimestamp"], "2026-01-01T00:00:10Z");
        assert_eq!(meta(&d.object)["deletionGracePeriodSeconds"], 10);
        let d = delete(
            &mut s,
            PODS,
            "default",
            "a",
            &DeleteOptions { grace_period_seconds: Some(0), ..Default::default() },
            now(),
        )
        .unwrap();
        assert!(d.gone);
    }

    #[test]
    fn eviction_blocked_by_budget_is_429_with_cause() {
        let mut s = setup();
        s.create(PODS, running_pod("a", true), now(), true).unwrap();
        s.create(PDBS, pdb(0, 1, 1), now(), true).unwrap();
        let e = evict(&mut s, "default", "a", &json!({}), now()).unwrap_err();
        assert_eq!(e.code, 429);
        let st = e.to_status();
        assert_eq!(st["message"], "Cannot evict pod as it would violate the pod's disruption budget.");
        assert_eq!(st["details"]["causes"][0]["reason"], "DisruptionBudget");
        assert_eq!(
            st["details"]["causes"][0]["message"],
            "The disruption budget web needs 1 healthy pods and has 1 currently"
        );
    }

    #[test]
    fn eviction_consumes_budget_and_records_pod() {
        let mut s = setup();
        s.create(PODS, running_pod("a", true), now(), true).unwrap();
        s.create(PDBS, pdb(1, 2, 1), now(), true).unwrap();
        evict(&mut s, "default", "a", &json!({"deleteOptions": {"gracePeriodSeconds": 5}}), now()).unwrap();
        let p = s.get(PDBS, "default", "web").unwrap();
        assert_eq!(p["status"]["disruptionsAllowed"], 0);
        assert!(p["status"]["disruptedPods"]["a"].is_string());
        let pod = s.get(PODS, "default", "a").unwrap();
        assert_eq!(meta(&pod)["deletionGracePeriodSeconds"], 5);
    }

    #[test]
    fn eviction_under_two_budgets_is_500() {
        let mut s = setup();
        s.create(PODS, running_pod("a", true), now(), true).unwrap();
        s.create(PDBS, pdb(1, 2, 1), now(), true).unwrap();
        let mut other = pdb(1, 2, 1);
        other["metadata"]["name"] = json!("web2");
        s.create(PDBS, other, now(), true).unwrap();
        let e = evict(&mut s, "default", "a", &json!({}), now()).unwrap_err();
        assert_eq!(e.code, 500);
        assert_eq!(
            e.message,
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        );
        assert!(e.to_status().get("reason").is_none());
    }

    #[test]
    fn eviction_with_wrong_uid_conflicts() {
        let mut s = setup();
        s.create(PODS, running_pod("a", true), now(), true).unwrap();
        let e = evict(&mut s, "default", "a", &json!({"deleteOptions": {"preconditions": {"uid": "other"}}}), now())
            .unwrap_err();
        assert_eq!(e.code, 409);
    }

    #[test]
    fn invalid_objects_are_422() {
        let mut s = setup();
        let e = create(
            &mut s,
            PODS,
            json!({"metadata": {"name": "Bad_Name"}, "spec": {"containers": []}}),
            Some("default"),
            now(),
            false,
            &Writer { manager: "test".into(), now: now() },
        )
        .unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.starts_with("Pod \"Bad_Name\" is invalid: ["), "{}", e.message);
    }
}
