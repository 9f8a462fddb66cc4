//! Kubernetes protobuf create and update bodies (`application/vnd.kubernetes.protobuf`) read into the
//! JSON object, for the kinds kubectl's typed generators send: Namespace, ConfigMap, Secret,
//! Deployment and PodDisruptionBudget.
//!
//! The wire format is the 4-byte magic `k8s\0` and a `runtime.Unknown` envelope
//! (`typeMeta=1{apiVersion=1, kind=2}`, `raw=2`, `contentEncoding=3`, `contentType=4`) whose `raw`
//! is the object message, numbered as in the `generated.proto` files of k8s.io/api and
//! k8s.io/apimachinery. Go's generated marshallers write every non-pointer field, zero or not, and
//! pointer fields only when set; the JSON here follows the Go JSON encoding of the same object
//! (`omitempty` scalars dropped when zero, pointers kept, structs kept as `{}`). A field number
//! the lab does not know is refused with a 415 naming it, never dropped, so a request either means
//! what its sender meant or tells them to send JSON or YAML.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::status::{ApiError, Details};

const MAGIC: &[u8] = b"k8s\0";

/// The kinds whose protobuf bodies the lab reads, as the 415 names them.
const KINDS: &str = "v1 Namespace, ConfigMap and Secret, apps/v1 Deployment, policy/v1 PodDisruptionBudget";

/// How one field is written in protobuf and read into JSON.
#[derive(Clone, Copy)]
enum Ty {
    /// `string` without a pointer: `omitempty`, so an empty one is left out.
    Str,
    /// `*string`: kept when set, even empty.
    OptStr,
    /// `int32`/`int64` without a pointer, left out when zero.
    Int,
    /// `*int32`/`*int64`: kept when set, even zero (`replicas: 0`).
    OptInt,
    /// `bool` without a pointer, left out when false.
    Bool,
    /// `*bool`: kept when set.
    OptBool,
    /// A nested message.
    Msg(&'static Message),
    /// `map<string, string>`: repeated entries `{key=1, value=2}`.
    StrMap,
    /// `map<string, bytes>`: base64 in JSON, as Go writes `[]byte`.
    BytesMap,
    /// `map<string, Quantity>`, a Quantity being `{string=1}`.
    QuantityMap,
    /// `IntOrString{type=1 (0 int, 1 string), intVal=2, strVal=3}`.
    IntOrString,
    /// `metav1.Time{seconds=1, nanos=2}`; the zero time is written empty and left out.
    Time,
    /// A status: the apiserver resets it on create and update of these kinds, so its content
    /// (always written, all zero, by Go clients) does not reach the object.
    Status,
}

struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

struct Message {
    name: &'static str,
    fields: &'static [Field],
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field { num, name, ty, repeated: false }
}

const fn rep(num: u64, name: &'static str, ty: Ty) -> Field {
    Field { num, name, ty, repeated: true }
}

const OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        f(1, "kind", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "uid", Ty::Str),
        f(5, "apiVersion", Ty::Str),
        f(6, "controller", Ty::OptBool),
        f(7, "blockOwnerDeletion", Ty::OptBool),
    ],
};

const OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "generateName", Ty::Str),
        f(3, "namespace", Ty::Str),
        f(4, "selfLink", Ty::Str),
        f(5, "uid", Ty::Str),
        f(6, "resourceVersion", Ty::Str),
        f(7, "generation", Ty::Int),
        f(8, "creationTimestamp", Ty::Time),
        f(9, "deletionTimestamp", Ty::Time),
        f(10, "deletionGracePeriodSeconds", Ty::OptInt),
        f(11, "labels", Ty::StrMap),
        f(12, "annotations", Ty::StrMap),
        rep(13, "ownerReferences", Ty::Msg(&OWNER_REFERENCE)),
        rep(14, "finalizers", Ty::Str),
    ],
};

const LABEL_SELECTOR_REQUIREMENT: Message = Message {
    name: "LabelSelectorRequirement",
    fields: &[f(1, "key", Ty::Str), f(2, "operator", Ty::Str), rep(3, "values", Ty::Str)],
};

const LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[f(1, "matchLabels", Ty::StrMap), rep(2, "matchExpressions", Ty::Msg(&LABEL_SELECTOR_REQUIREMENT))],
};

const NAMESPACE_SPEC: Message = Message { name: "NamespaceSpec", fields: &[rep(1, "finalizers", Ty::Str)] };

const NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&NAMESPACE_SPEC)),
        f(3, "status", Ty::Status),
    ],
};

const CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "data", Ty::StrMap),
        f(3, "binaryData", Ty::BytesMap),
        f(4, "immutable", Ty::OptBool),
    ],
};

const SECRET: Message = Message {
    name: "Secret",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "data", Ty::BytesMap),
        f(3, "type", Ty::Str),
        f(4, "stringData", Ty::StrMap),
        f(5, "immutable", Ty::OptBool),
    ],
};

const PDB_SPEC: Message = Message {
    name: "PodDisruptionBudgetSpec",
    fields: &[
        f(1, "minAvailable", Ty::IntOrString),
        f(2, "selector", Ty::Msg(&LABEL_SELECTOR)),
        f(3, "maxUnavailable", Ty::IntOrString),
        f(4, "unhealthyPodEvictionPolicy", Ty::OptStr),
    ],
};

const PDB: Message = Message {
    name: "PodDisruptionBudget",
    fields: &[f(1, "metadata", Ty::Msg(&OBJECT_META)), f(2, "spec", Ty::Msg(&PDB_SPEC)), f(3, "status", Ty::Status)],
};

const CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "hostPort", Ty::Int),
        f(3, "containerPort", Ty::Int),
        f(4, "protocol", Ty::Str),
        f(5, "hostIP", Ty::Str),
    ],
};

/// `valueFrom` (3) is not read: it needs the selectors of ConfigMaps, Secrets and fields.
const ENV_VAR: Message = Message { name: "EnvVar", fields: &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)] };

const RESOURCE_REQUIREMENTS: Message = Message {
    name: "ResourceRequirements",
    fields: &[f(1, "limits", Ty::QuantityMap), f(2, "requests", Ty::QuantityMap)],
};

/// What `kubectl create deployment` fills in, and the plain scalars next to it; probes, volume
/// mounts, lifecycle hooks and security contexts are not read.
const CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "image", Ty::Str),
        rep(3, "command", Ty::Str),
        rep(4, "args", Ty::Str),
        f(5, "workingDir", Ty::Str),
        rep(6, "ports", Ty::Msg(&CONTAINER_PORT)),
        rep(7, "env", Ty::Msg(&ENV_VAR)),
        f(8, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
        f(13, "terminationMessagePath", Ty::Str),
        f(14, "imagePullPolicy", Ty::Str),
        f(16, "stdin", Ty::Bool),
        f(17, "stdinOnce", Ty::Bool),
        f(18, "tty", Ty::Bool),
        f(20, "terminationMessagePolicy", Ty::Str),
    ],
};

const LOCAL_OBJECT_REFERENCE: Message = Message { name: "LocalObjectReference", fields: &[f(1, "name", Ty::Str)] };

const TOLERATION: Message = Message {
    name: "Toleration",
    fields: &[
        f(1, "key", Ty::Str),
        f(2, "operator", Ty::Str),
        f(3, "value", Ty::Str),
        f(4, "effect", Ty::Str),
        f(5, "tolerationSeconds", Ty::OptInt),
    ],
};

/// Volumes, affinity, security context, DNS config and spread constraints are not read.
const POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        rep(2, "containers", Ty::Msg(&CONTAINER)),
        f(3, "restartPolicy", Ty::Str),
        f(4, "terminationGracePeriodSeconds", Ty::OptInt),
        f(5, "activeDeadlineSeconds", Ty::OptInt),
        f(6, "dnsPolicy", Ty::Str),
        f(7, "nodeSelector", Ty::StrMap),
        f(8, "serviceAccountName", Ty::Str),
        f(9, "serviceAccount", Ty::Str),
        f(10, "nodeName", Ty::Str),
        f(11, "hostNetwork", Ty::Bool),
        f(12, "hostPID", Ty::Bool),
        f(13, "hostIPC", Ty::Bool),
        rep(15, "imagePullSecrets", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        f(16, "hostname", Ty::Str),
        f(17, "subdomain", Ty::Str),
        f(19, "schedulerName", Ty::Str),
        rep(20, "initContainers", Ty::Msg(&CONTAINER)),
        f(21, "automountServiceAccountToken", Ty::OptBool),
        rep(22, "tolerations", Ty::Msg(&TOLERATION)),
        f(24, "priorityClassName", Ty::Str),
        f(25, "priority", Ty::OptInt),
        f(27, "shareProcessNamespace", Ty::OptBool),
        f(29, "runtimeClassName", Ty::OptStr),
        f(30, "enableServiceLinks", Ty::OptBool),
        f(31, "preemptionPolicy", Ty::OptStr),
        f(35, "setHostnameAsFQDN", Ty::OptBool),
    ],
};

const POD_TEMPLATE_SPEC: Message = Message {
    name: "PodTemplateSpec",
    fields: &[f(1, "metadata", Ty::Msg(&OBJECT_META)), f(2, "spec", Ty::Msg(&POD_SPEC))],
};

const ROLLING_UPDATE_DEPLOYMENT: Message = Message {
    name: "RollingUpdateDeployment",
    fields: &[f(1, "maxUnavailable", Ty::IntOrString), f(2, "maxSurge", Ty::IntOrString)],
};

const DEPLOYMENT_STRATEGY: Message = Message {
    name: "DeploymentStrategy",
    fields: &[f(1, "type", Ty::Str), f(2, "rollingUpdate", Ty::Msg(&ROLLING_UPDATE_DEPLOYMENT))],
};

const DEPLOYMENT_SPEC: Message = Message {
    name: "DeploymentSpec",
    fields: &[
        f(1, "replicas", Ty::OptInt),
        f(2, "selector", Ty::Msg(&LABEL_SELECTOR)),
        f(3, "template", Ty::Msg(&POD_TEMPLATE_SPEC)),
        f(4, "strategy", Ty::Msg(&DEPLOYMENT_STRATEGY)),
        f(5, "minReadySeconds", Ty::Int),
        f(6, "revisionHistoryLimit", Ty::OptInt),
        f(7, "paused", Ty::Bool),
        f(9, "progressDeadlineSeconds", Ty::OptInt),
    ],
};

const DEPLOYMENT: Message = Message {
    name: "Deployment",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&DEPLOYMENT_SPEC)),
        f(3, "status", Ty::Status),
    ],
};

/// The object messages by `(apiVersion, kind)` of the envelope.
const OBJECTS: &[(&str, &str, &Message)] = &[
    ("v1", "Namespace", &NAMESPACE),
    ("v1", "ConfigMap", &CONFIG_MAP),
    ("v1", "Secret", &SECRET),
    ("apps/v1", "Deployment", &DEPLOYMENT),
    ("policy/v1", "PodDisruptionBudget", &PDB),
];

/// The apiserver's 415 for a body it cannot read, with what the lab reads and what to send instead.
fn unsupported(why: &str) -> ApiError {
    ApiError {
        code: 415,
        reason: "UnsupportedMediaType".to_string(),
        message: format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, \
             application/yaml, application/vnd.kubernetes.protobuf (protobuf for {KINDS} only: {why}; send the \
             object as JSON or YAML instead, e.g. `kubectl create -f FILE`)"
        ),
        details: Box::<Details>::default(),
    }
}

fn malformed(why: &str) -> ApiError {
    ApiError::bad_request(format!("the body of the request could not be decoded as protobuf: {why}"))
}

/// The JSON object of a protobuf create or update body.
pub(crate) fn to_json(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| malformed("it does not start with the magic k8s\\0"))?;
    let (mut api_version, mut kind, mut raw, mut encoding, mut content_type) = ("", "", &[][..], "", "");
    for field in Reader(envelope) {
        let (num, value) = field?;
        match (num, value) {
            (1, Wire::Len(type_meta)) => {
                for tm in Reader(type_meta) {
                    match tm? {
                        (1, Wire::Len(v)) => api_version = utf8(v, "typeMeta.apiVersion")?,
                        (2, Wire::Len(v)) => kind = utf8(v, "typeMeta.kind")?,
                        (n, _) => return Err(unsupported(&format!("field {n} of TypeMeta is not read"))),
                    }
                }
            }
            (2, Wire::Len(v)) => raw = v,
            (3, Wire::Len(v)) => encoding = utf8(v, "contentEncoding")?,
            (4, Wire::Len(v)) => content_type = utf8(v, "contentType")?,
            (n, _) => return Err(unsupported(&format!("field {n} of the runtime.Unknown envelope is not read"))),
        }
    }
    if !encoding.is_empty() {
        return Err(unsupported(&format!("contentEncoding {encoding:?} is not read")));
    }
    if !content_type.is_empty() && content_type != "application/vnd.kubernetes.protobuf" {
        return Err(unsupported(&format!("raw content type {content_type:?} is not read")));
    }
    let Some((_, _, message)) = OBJECTS.iter().find(|(v, k, _)| *v == api_version && *k == kind) else {
        let named = if kind.is_empty() {
            "the envelope names no kind".to_string()
        } else {
            format!("{api_version} {kind} is not among them")
        };
        return Err(unsupported(&named));
    };
    let mut object = Map::new();
    object.insert("apiVersion".to_string(), json!(api_version));
    object.insert("kind".to_string(), json!(kind));
    object.extend(decode(message, raw, "")?);
    Ok(Value::Object(object))
}

/// One field off the wire: varints, 64- and 32-bit fixed values, and length-delimited bytes.
enum Wire<'a> {
    Varint(u64),
    Fixed,
    Len(&'a [u8]),
}

/// The fields of a message in wire order, as `(field number, value)`.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first().ok_or_else(|| malformed("a varint runs past the end"))?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed("a varint is longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ApiError> {
        if self.0.len() < n {
            return Err(malformed("a field runs past the end of its message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u64, Wire<'a>), ApiError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = (|| {
            let tag = self.varint()?;
            let value = match tag & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => {
                    self.take(8)?;
                    Wire::Fixed
                }
                2 => {
                    let n = usize::try_from(self.varint()?).map_err(|_| malformed("a length does not fit"))?;
                    let bytes: &'a [u8] = {
                        if self.0.len() < n {
                            return Err(malformed("a field runs past the end of its message"));
                        }
                        let (head, rest) = self.0.split_at(n);
                        self.0 = rest;
                        head
                    };
                    Wire::Len(bytes)
                }
                5 => {
                    self.take(4)?;
                    Wire::Fixed
                }
                w => return Err(malformed(&format!("wire type {w} is not one protobuf 2 writes"))),
            };
            Ok((tag >> 3, value))
        })();
        if field.is_err() {
            // A malformed field leaves no reliable position to go on from.
            self.0 = &[];
        }
        Some(field)
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, ApiError> {
    std::str::from_utf8(bytes).map_err(|_| malformed(&format!("{what} is not UTF-8")))
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// The JSON fields of one message.
fn decode(message: &Message, bytes: &[u8], path: &str) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for field in Reader(bytes) {
        let (num, wire) = field?;
        let Some(def) = message.fields.iter().find(|d| d.num == num) else {
            let at = if path.is_empty() { String::new() } else { format!(" (at {path})") };
            return Err(unsupported(&format!("field {num} of {}{at} is not read", message.name)));
        };
        let here = child(path, def.name);
        // The items of a repeated string are kept when empty: they are not `omitempty` fields.
        let ty = if def.repeated && matches!(def.ty, Ty::Str) { Ty::OptStr } else { def.ty };
        let Some(value) = value_of(ty, wire, &here)? else { continue };
        if def.repeated {
            if let Some(Value::Array(items)) = out.get_mut(def.name) {
                items.push(value);
            } else {
                out.insert(def.name.to_string(), json!([value]));
            }
        } else if let (Some(Value::Object(seen)), Value::Object(more)) = (out.get_mut(def.name), &value) {
            // Maps arrive one entry per field, and protobuf merges a message field seen twice.
            seen.extend(more.clone());
        } else {
            out.insert(def.name.to_string(), value);
        }
    }
    Ok(out)
}

fn wrong_wire(path: &str) -> ApiError {
    malformed(&format!("{path} has the wrong wire type"))
}

/// The JSON value of one field, or None where Go's JSON would leave it out.
fn value_of(ty: Ty, wire: Wire, path: &str) -> Result<Option<Value>, ApiError> {
    let value = match (ty, wire) {
        (Ty::Str, Wire::Len(b)) => Some(utf8(b, path)?).filter(|s| !s.is_empty()).map(|s| json!(s)),
        (Ty::OptStr, Wire::Len(b)) => Some(json!(utf8(b, path)?)),
        // Go writes negative int32 and int64 as 64-bit two's complement varints.
        (Ty::Int, Wire::Varint(v)) => (v != 0).then(|| json!(v as i64)),
        (Ty::OptInt, Wire::Varint(v)) => Some(json!(v as i64)),
        (Ty::Bool, Wire::Varint(v)) => (v != 0).then(|| json!(true)),
        (Ty::OptBool, Wire::Varint(v)) => Some(json!(v != 0)),
        (Ty::Msg(m), Wire::Len(b)) => Some(Value::Object(decode(m, b, path)?)),
        (Ty::StrMap | Ty::BytesMap | Ty::QuantityMap, Wire::Len(b)) => {
            let (key, value) = map_entry(ty, b, path)?;
            Some(json!({ key: value }))
        }
        (Ty::IntOrString, Wire::Len(b)) => Some(int_or_string(b, path)?),
        (Ty::Time, Wire::Len(b)) => time(b, path)?,
        (Ty::Status, Wire::Len(_)) => None,
        _ => return Err(wrong_wire(path)),
    };
    Ok(value)
}

/// One `{key=1, value=2}` entry of a map field.
fn map_entry(ty: Ty, bytes: &[u8], path: &str) -> Result<(String, Value), ApiError> {
    let (mut key, mut value) = (String::new(), None);
    for field in Reader(bytes) {
        match (field?, ty) {
            ((1, Wire::Len(k)), _) => key = utf8(k, path)?.to_string(),
            ((2, Wire::Len(v)), Ty::StrMap) => value = Some(json!(utf8(v, path)?)),
            ((2, Wire::Len(v)), Ty::BytesMap) => {
                value = Some(json!(base64::engine::general_purpose::STANDARD.encode(v)));
            }
            ((2, Wire::Len(q)), _) => {
                let mut s = "";
                for qf in Reader(q) {
                    match qf? {
                        (1, Wire::Len(v)) => s = utf8(v, path)?,
                        (n, _) => return Err(unsupported(&format!("field {n} of Quantity (at {path}) is not read"))),
                    }
                }
                value = Some(json!(s));
            }
            ((n, _), _) => return Err(unsupported(&format!("field {n} of a map entry (at {path}) is not read"))),
        }
    }
    // An entry without a value is the value's zero: "" or no bytes.
    Ok((key, value.unwrap_or_else(|| json!(""))))
}

fn int_or_string(bytes: &[u8], path: &str) -> Result<Value, ApiError> {
    let (mut is_string, mut int, mut string) = (false, 0i64, "");
    for field in Reader(bytes) {
        match field? {
            (1, Wire::Varint(t)) => is_string = t == 1,
            (2, Wire::Varint(v)) => int = i64::from(v as i32),
            (3, Wire::Len(v)) => string = utf8(v, path)?,
            (n, _) => return Err(unsupported(&format!("field {n} of IntOrString (at {path}) is not read"))),
        }
    }
    Ok(if is_string { json!(string) } else { json!(int) })
}

fn time(bytes: &[u8], path: &str) -> Result<Option<Value>, ApiError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut seconds = 0i64;
    for field in Reader(bytes) {
        match field? {
            (1, Wire::Varint(v)) => seconds = v as i64,
            // metav1.Time is written to JSON in whole seconds, the fraction cut off.
            (2, Wire::Varint(_)) => {}
            (n, _) => return Err(unsupported(&format!("field {n} of Time (at {path}) is not read"))),
        }
    }
    let t = jiff::Timestamp::new(seconds, 0).map_err(|e| malformed(&format!("{path}: {e}")))?;
    Ok(Some(json!(t.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bodies captured from kubectl v1.32.4 (`kubectl create …`), byte for byte.

    /// `kubectl create namespace demo`
    const NAMESPACE_HEX: &str = "6b387300 0a0f0a02 76311209 4e616d65 73706163 65121c0a 140a0464 656d6f12 001a0022 002a0032 00380042 0012001a 020a001a 002200";

    #[test]
    fn namespace_from_kubectl_create_namespace() {
        let v = to_json(&hex(NAMESPACE_HEX)).unwrap();
        assert_eq!(v, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}, "spec": {}}));
    }

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
    }

    /// `kubectl create configmap settings -n shop --from-literal=mode=fast --from-literal=level=3`
    const CONFIGMAP_HEX: &str = "6b387300 0a0f0a02 76311209 436f6e66 69674d61 7012380a 1c0a0873 65747469
        6e677312 001a0473 686f7022 002a0032 00380042 00120a0a 056c6576 656c1201 33120c0a 046d6f64 65120466
        6173741a 002200";

    /// `kubectl create configmap bin -n shop --from-file=blob=<bytes 00 ff 10 'bin'> --from-literal=k=v`
    const CONFIGMAP_BINARY_HEX: &str = "6b387300 0a0f0a02 76311209 436f6e66 69674d61 7012310a 170a0362 696e1200
        1a047368 6f702200 2a003200 38004200 12060a01 6b120176 1a0e0a04 626c6f62 120600ff 1062696e 1a002200";

    #[test]
    fn configmaps_from_kubectl_create_configmap() {
        let v = to_json(&hex(CONFIGMAP_HEX)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"},
                "data": {"level": "3", "mode": "fast"}})
        );
        let v = to_json(&hex(CONFIGMAP_BINARY_HEX)).unwrap();
        assert_eq!(v["data"], json!({"k": "v"}));
        // Go writes []byte to JSON as standard base64.
        assert_eq!(v["binaryData"], json!({"blob": "AP8QYmlu"}));
    }

    /// `kubectl create secret generic creds -n shop --from-literal=user=admin --from-literal=password='s3cr3t!'`
    const SECRET_HEX: &str = "6b387300 0a0c0a02 76311206 53656372 65741241 0a190a05 63726564 7312001a
        0473686f 7022002a 00320038 00420012 130a0870 61737377 6f726412 07733363 72337421 120d0a04 75736572
        12056164 6d696e1a 001a0022 00";

    /// `kubectl create secret generic tls -n shop --type=kubernetes.io/basic-auth --from-literal=…`
    const SECRET_TYPED_HEX: &str = "6b387300 0a0c0a02 76311206 53656372 65741251 0a170a03 746c7312 001a0473
        686f7022 002a0032 00380042 00120d0a 08706173 73776f72 64120170 120d0a08 75736572 6e616d65 1201751a
        186b7562 65726e65 7465732e 696f2f62 61736963 2d617574 681a0022 00";

    #[test]
    fn secrets_from_kubectl_create_secret_generic() {
        let v = to_json(&hex(SECRET_HEX)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "shop"},
                "data": {"password": "czNjcjN0IQ==", "user": "YWRtaW4="}})
        );
        let v = to_json(&hex(SECRET_TYPED_HEX)).unwrap();
        assert_eq!(v["type"], "kubernetes.io/basic-auth");
        assert_eq!(v["data"], json!({"password": "cA==", "username": "dQ=="}));
    }

    /// `kubectl create deployment web --image=nginx:1.27 --replicas=3 --port=8080 -n shop`
    const DEPLOYMENT_HEX: &str = "6b387300 0a150a07 61707073 2f763112 0a446570 6c6f796d 656e7412 c2010a23
        0a037765 6212001a 0473686f 7022002a 00320038 0042005a 0a0a0361 70701203 77656212 8c010803 120c0a0a
        0a036170 70120377 65621a72 0a1c0a00 12001a00 22002a00 32003800 42005a0a 0a036170 70120377 65621252
        12340a05 6e67696e 78120a6e 67696e78 3a312e32 372a0032 0b0a0010 0018903f 22002a00 42006a00 72008001
        00880100 900100a2 01001a00 32004200 4a005200 58006000 68008201 008a0100 9a0100c2 01002202 0a002800
        38001a0c 08001000 18002000 28003800 1a002200";

    /// `kubectl create deployment multi --image=busybox:1.36 -n shop -- sleep 3600`
    const DEPLOYMENT_COMMAND_HEX: &str = "6b387300 0a150a07 61707073 2f763112 0a446570 6c6f796d 656e7412 ce010a27
        0a056d75 6c746912 001a0473 686f7022 002a0032 00380042 005a0c0a 03617070 12056d75 6c746912 94010801
        120e0a0c 0a036170 7012056d 756c7469 1a780a1e 0a001200 1a002200 2a003200 38004200 5a0c0a03 61707012
        056d756c 74691256 12380a07 62757379 626f7812 0c627573 79626f78 3a312e33 361a0573 6c656570 1a043336
        30302a00 42006a00 72008001 00880100 900100a2 01001a00 32004200 4a005200 58006000 68008201 008a0100
        9a0100c2 01002202 0a002800 38001a0c 08001000 18002000 28003800 1a002200";

    #[test]
    fn deployments_from_kubectl_create_deployment() {
        let v = to_json(&hex(DEPLOYMENT_HEX)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
                            "ports": [{"containerPort": 8080}], "resources": {}}]}},
                    "strategy": {}}})
        );
        let v = to_json(&hex(DEPLOYMENT_COMMAND_HEX)).unwrap();
        assert_eq!(v["spec"]["replicas"], 1);
        assert_eq!(v["spec"]["template"]["spec"]["containers"][0]["command"], json!(["sleep", "3600"]));
        assert_eq!(v["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1.36");
    }

    /// `kubectl create pdb web-pdb -n shop --selector=app=web --min-available=2`
    const PDB_HEX: &str = "6b387300 0a200a09 706f6c69 63792f76 31121350 6f644469 73727570 74696f6e
        42756467 65741241 0a1b0a07 7765622d 70646212 001a0473 686f7022 002a0032 00380042 0012160a 06080010
        021a0012 0c0a0a0a 03617070 12037765 621a0a08 00180020 00280030 001a0022 00";

    /// `kubectl create pdb web-pdb2 -n shop --selector=app=web --max-unavailable=25%`
    const PDB_PERCENT_HEX: &str = "6b387300 0a200a09 706f6c69 63792f76 31121350 6f644469 73727570 74696f6e
        42756467 65741245 0a1c0a08 7765622d 70646232 12001a04 73686f70 22002a00 32003800 42001219 120c0a0a
        0a036170 70120377 65621a09 08011000 1a033235 251a0a08 00180020 00280030 001a0022 00";

    #[test]
    fn pdbs_from_kubectl_create_pdb() {
        let v = to_json(&hex(PDB_HEX)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "web-pdb", "namespace": "shop"},
                "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
        );
        let v = to_json(&hex(PDB_PERCENT_HEX)).unwrap();
        assert_eq!(v["spec"], json!({"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}}}));
    }

    /// An envelope around `raw`, as client-go writes it.
    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, num: u8, bytes: &[u8]) {
            out.push(num << 3 | 2);
            out.push(u8::try_from(bytes.len()).unwrap());
            out.extend_from_slice(bytes);
        }
        let mut type_meta = Vec::new();
        field(&mut type_meta, 1, api_version.as_bytes());
        field(&mut type_meta, 2, kind.as_bytes());
        let mut out = MAGIC.to_vec();
        field(&mut out, 1, &type_meta);
        field(&mut out, 2, raw);
        out
    }

    #[test]
    fn unknown_fields_and_kinds_get_a_415_naming_them() {
        // PodSpec.affinity (18) inside a Deployment: spec(2){template(3){spec(2){affinity(18){}}}}.
        let raw = [0x12, 0x07, 0x1a, 0x05, 0x12, 0x03, 0x92, 0x01, 0x00];
        let e = to_json(&envelope("apps/v1", "Deployment", &raw)).unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (415, "UnsupportedMediaType"));
        assert!(e.message.contains("field 18 of PodSpec (at spec.template.spec) is not read"), "{}", e.message);
        assert!(e.message.contains("kubectl create -f"), "{}", e.message);
        let e = to_json(&envelope("v1", "Pod", &[])).unwrap_err();
        assert_eq!(e.code, 415);
        assert!(e.message.contains("v1 Pod is not among them"), "{}", e.message);
        // A Namespace in the wrong group is not the Namespace the table knows.
        assert_eq!(to_json(&envelope("apps/v1", "Namespace", &[])).unwrap_err().code, 415);
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        assert_eq!(to_json(b"{\"kind\":\"Namespace\"}").unwrap_err().code, 400);
        // A length running past the end of the body.
        let e = to_json(b"k8s\0\x12\x09\x0a").unwrap_err();
        assert_eq!(e.code, 400, "{}", e.message);
        // metadata (1) written as a varint.
        assert_eq!(to_json(&envelope("v1", "Namespace", &[0x08, 0x01])).unwrap_err().code, 400);
    }

    #[test]
    fn pointers_keep_their_zero_and_times_and_owners_are_read() {
        // spec(2){replicas(1)=0, revisionHistoryLimit(6)=-1}
        let mut raw = vec![0x12, 0x0d, 0x08, 0x00, 0x30];
        raw.extend_from_slice(&[0xff; 9]);
        raw.push(0x01);
        let v = to_json(&envelope("apps/v1", "Deployment", &raw)).unwrap();
        assert_eq!(v["spec"], json!({"replicas": 0, "revisionHistoryLimit": -1}));
        // metadata{creationTimestamp{seconds=1767225600}, ownerReferences[{kind=ReplicaSet, controller=true}]}
        let mut ts = vec![0x08];
        let mut s: u64 = 1_767_225_600;
        while s >= 0x80 {
            ts.push((s as u8) | 0x80);
            s >>= 7;
        }
        ts.push(s as u8);
        let owner = [0x0a, 0x0a, b'R', b'e', b'p', b'l', b'i', b'c', b'a', b'S', b'e', b't', 0x30, 0x01];
        let mut meta = vec![0x42, u8::try_from(ts.len()).unwrap()];
        meta.extend_from_slice(&ts);
        meta.extend_from_slice(&[0x6a, u8::try_from(owner.len()).unwrap()]);
        meta.extend_from_slice(&owner);
        let mut raw = vec![0x0a, u8::try_from(meta.len()).unwrap()];
        raw.extend_from_slice(&meta);
        let v = to_json(&envelope("v1", "ConfigMap", &raw)).unwrap();
        assert_eq!(v["metadata"]["creationTimestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(v["metadata"]["ownerReferences"], json!([{"kind": "ReplicaSet", "controller": true}]));
    }
}
