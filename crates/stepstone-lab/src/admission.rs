//! What every write does to an object before it is stored, whichever verb wrote it (create,
//! update, patch, server-side apply): upstream's defaulting, the validation of the fields the lab
//! relies on, the DefaultTolerationSeconds admission, and the DaemonSet template generation.

use serde_json::{Value, json};

use crate::resources::{self, RESOURCES, ResId};
use crate::status::{ApiError, FieldError};
use crate::store::{self, meta, meta_mut, meta_str, name_of};

/// Default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: i64 = 30;

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

const SUBDOMAIN_HELP: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// Upstream-style validation of the fields the lab relies on.
pub fn validate(res: ResId, obj: &Value) -> Result<(), ApiError> {
    let def = &RESOURCES[res];
    let name = name_of(obj);
    let mut errors = Vec::new();
    if name.is_empty() && meta_str(obj, "generateName").is_none() {
        errors.push(FieldError::required("metadata.name", "name or generateName is required"));
    } else if !name.is_empty() && res != resources::EVENTS && !is_dns_subdomain(name) {
        errors.push(FieldError::invalid("metadata.name", format!("\"{name}\""), SUBDOMAIN_HELP));
    }
    errors.extend(crate::decode::negative_quantities(res, obj));
    let spec = obj.get("spec");
    match res {
        resources::PODS
            if spec.and_then(|s| s.get("containers")).and_then(Value::as_array).is_none_or(Vec::is_empty) =>
        {
            errors.push(FieldError::required("spec.containers", ""));
        }
        resources::DEPLOYMENTS | resources::REPLICASETS | resources::STATEFULSETS | resources::DAEMONSETS => {
            if let Some(r) = spec.and_then(|s| s.get("replicas")).and_then(Value::as_i64)
                && r < 0
            {
                errors.push(FieldError::invalid("spec.replicas", r.to_string(), "must be greater than or equal to 0"));
            }
            match spec.and_then(|s| s.get("selector")) {
                None => errors.push(FieldError::required("spec.selector", "")),
                Some(sel) => {
                    let selector = stepstone_core::selector::Selector::from_label_selector(sel);
                    let labels = store::string_map(spec.and_then(|s| s.pointer("/template/metadata/labels")));
                    match selector {
                        Ok(s) if s.is_empty() => errors.push(FieldError::invalid(
                            "spec.selector",
                            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}".into(),
                            "empty selector is invalid for deployment",
                        )),
                        Ok(s) if !s.matches(&labels) => errors.push(FieldError::invalid(
                            "spec.template.metadata.labels",
                            format!("{labels:?}"),
                            "`selector` does not match template `labels`",
                        )),
                        Ok(_) => {}
                        Err(e) => errors.push(FieldError::invalid("spec.selector", sel.to_string(), &e.to_string())),
                    }
                }
            }
        }
        resources::PDBS
            if spec.and_then(|s| s.get("minAvailable")).is_some_and(|v| !v.is_null())
                && spec.and_then(|s| s.get("maxUnavailable")).is_some_and(|v| !v.is_null()) =>
        {
            errors.push(FieldError::invalid("spec", "{}".into(), "minAvailable and maxUnavailable cannot be both set"));
        }
        _ => {}
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            def,
            if name.is_empty() { meta_str(obj, "generateName").unwrap_or("") } else { name },
            errors,
        ))
    }
}

/// The defaults a real API server fills in on create.
pub fn apply_defaults(res: ResId, obj: &mut Value) {
    let ensure = |v: &mut Value, ptr: &str, default: Value| {
        if v.pointer(ptr).is_none() {
            let (parent, key) = ptr.rsplit_once('/').expect("pointer has a parent");
            if let Some(p) = v.pointer_mut(if parent.is_empty() { "" } else { parent })
                && let Some(m) = p.as_object_mut()
            {
                m.insert(key.to_string(), default);
            }
        }
    };
    let ensure_obj = |v: &mut Value, key: &str| {
        if !v.get(key).is_some_and(Value::is_object) {
            v[key] = json!({});
        }
    };
    match res {
        resources::PODS => {
            ensure_obj(obj, "spec");
            ensure(obj, "/spec/terminationGracePeriodSeconds", json!(DEFAULT_GRACE_SECONDS));
            ensure(obj, "/spec/schedulerName", json!("default-scheduler"));
            ensure(obj, "/spec/restartPolicy", json!("Always"));
            ensure(obj, "/spec/dnsPolicy", json!("ClusterFirst"));
            ensure(obj, "/spec/priority", json!(0));
            ensure_obj(obj, "status");
            ensure(obj, "/status/phase", json!("Pending"));
        }
        resources::DEPLOYMENTS => {
            ensure_obj(obj, "spec");
            ensure(obj, "/spec/replicas", json!(1));
            ensure(obj, "/spec/revisionHistoryLimit", json!(10));
            ensure(obj, "/spec/progressDeadlineSeconds", json!(600));
            ensure(
                obj,
                "/spec/strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
        }
        resources::REPLICASETS => {
            ensure_obj(obj, "spec");
            ensure(obj, "/spec/replicas", json!(1));
        }
        resources::STATEFULSETS => {
            ensure_obj(obj, "spec");
            ensure(obj, "/spec/replicas", json!(1));
            ensure(obj, "/spec/podManagementPolicy", json!("OrderedReady"));
            ensure(obj, "/spec/updateStrategy", json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
        }
        resources::DAEMONSETS => {
            ensure_obj(obj, "spec");
            ensure(
                obj,
                "/spec/updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
        }
        resources::NAMESPACES => {
            let name = name_of(obj).to_string();
            let m = meta_mut(obj);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            ensure_obj(obj, "status");
            ensure(obj, "/status/phase", json!("Active"));
        }
        resources::PERSISTENT_VOLUMES => {
            ensure_obj(obj, "spec");
            ensure(obj, "/spec/persistentVolumeReclaimPolicy", json!("Retain"));
            ensure(obj, "/spec/volumeMode", json!("Filesystem"));
            ensure_obj(obj, "status");
            ensure(obj, "/status/phase", json!("Pending"));
        }
        resources::PERSISTENT_VOLUME_CLAIMS => {
            ensure_obj(obj, "spec");
            ensure(obj, "/spec/volumeMode", json!("Filesystem"));
            ensure_obj(obj, "status");
            ensure(obj, "/status/phase", json!("Pending"));
        }
        resources::SECRETS if obj.get("type").is_none() => {
            obj["type"] = json!("Opaque");
        }
        _ => {}
    }
}

/// The annotation through which apps/v1 carries a DaemonSet's template generation (the internal
/// `spec.templateGeneration`); the DaemonSet controller copies it into its pods'
/// `pod-template-generation` label.
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// What the apiserver stores on create beyond the object the client sent: the defaults and, for
/// a DaemonSet, its template generation.
pub fn prepare_for_create(res: ResId, obj: &mut Value) {
    apply_defaults(res, obj);
    if res == resources::DAEMONSETS {
        set_template_generation(obj, None);
    }
}

/// `node.kubernetes.io/not-ready`: the node lifecycle controller's taint for a node whose kubelet
/// reports NotReady.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// `node.kubernetes.io/unreachable`: the node lifecycle controller's taint for a node whose kubelet
/// stopped posting status.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The DefaultTolerationSeconds admission plugin's `--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds` defaults.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// The mutating admission the lab's apiserver runs on a new object, after the defaults. Only for
/// objects created through the API (or by a controller through it), never for a loaded fleet,
/// whose objects were admitted by the cluster they were taken from.
///
/// DefaultTolerationSeconds: a pod that does not tolerate `not-ready:NoExecute` or
/// `unreachable:NoExecute` (a toleration with an empty key, or an empty effect, counts) gets
/// `{key, operator: Exists, effect: NoExecute, tolerationSeconds: 300}` for each one it lacks,
/// so its pods leave a dead node five minutes after the taint.
pub fn admit(res: ResId, obj: &mut Value) {
    if res != resources::PODS {
        return;
    }
    let tolerations: Vec<Value> =
        obj.pointer("/spec/tolerations").and_then(Value::as_array).cloned().unwrap_or_default();
    let tolerates = |key: &str| {
        tolerations.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        })
    };
    let missing: Vec<&str> = [TAINT_NOT_READY, TAINT_UNREACHABLE].into_iter().filter(|k| !tolerates(k)).collect();
    if missing.is_empty() {
        return;
    }
    let mut next = tolerations.clone();
    for key in missing {
        next.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}));
    }
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    obj["spec"]["tolerations"] = Value::Array(next);
}

/// A DaemonSet's template generation as its annotation states it.
pub fn template_generation(ds: &Value) -> Option<i64> {
    meta(ds).get("annotations")?.get(TEMPLATE_GENERATION)?.as_str()?.parse().ok()
}

/// Upstream's DaemonSet strategy and apps/v1 conversion: on create (`old` is `None`) the template
/// generation is the one the client sent, at least 1; on update the client cannot change it and
/// it goes up by one when `spec.template` changes (the store bumps `metadata.generation` for the
/// same change). apps/v1 always writes it back into the annotation, whatever the client sent.
pub fn set_template_generation(ds: &mut Value, old: Option<&Value>) {
    let generation = match old {
        None => template_generation(ds).unwrap_or(0).max(1),
        Some(old) => {
            let before = template_generation(old).unwrap_or(0);
            if old.pointer("/spec/template") == ds.pointer("/spec/template") { before } else { before + 1 }
        }
    };
    let annotations = meta_mut(ds).entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[TEMPLATE_GENERATION] = json!(generation.to_string());
}
