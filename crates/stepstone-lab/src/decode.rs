//! What the apiserver's decoder refuses before validation runs: a number that does not fit the
//! typed field (`replicas: 2147483648` in an int32), and a resource quantity that does not
//! parse. Upstream answers a create or update with 400 (`Deployment in version "v1" cannot be
//! handled as a Deployment: json: ...`) and a patch whose result does not decode with 422
//! (`"" is invalid: patch: Invalid value: ...`); the lab answers with the same codes and texts.

use serde_json::Value;

use crate::resources::{self, RESOURCES, ResId, ResourceDef};
use crate::status::{ApiError, FieldError};

/// Go's `ErrFormatWrong` for a quantity.
pub const QUANTITY_FORMAT: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// Go's `ErrSuffix` for a quantity.
pub const QUANTITY_SUFFIX: &str = "unable to parse quantity's suffix";

/// The int32 fields of a kind's spec the lab reads, as `(JSON pointer, Go struct)`; the rest of
/// an object is kept as sent.
fn int32_fields(res: ResId) -> &'static [(&'static str, &'static str)] {
    match res {
        resources::DEPLOYMENTS => &[
            ("/spec/replicas", "DeploymentSpec"),
            ("/spec/minReadySeconds", "DeploymentSpec"),
            ("/spec/revisionHistoryLimit", "DeploymentSpec"),
            ("/spec/progressDeadlineSeconds", "DeploymentSpec"),
        ],
        resources::REPLICASETS => &[("/spec/replicas", "ReplicaSetSpec"), ("/spec/minReadySeconds", "ReplicaSetSpec")],
        resources::STATEFULSETS => &[
            ("/spec/replicas", "StatefulSetSpec"),
            ("/spec/minReadySeconds", "StatefulSetSpec"),
            ("/spec/revisionHistoryLimit", "StatefulSetSpec"),
        ],
        resources::DAEMONSETS => {
            &[("/spec/minReadySeconds", "DaemonSetSpec"), ("/spec/revisionHistoryLimit", "DaemonSetSpec")]
        }
        _ => &[],
    }
}

/// The JSON decoder's complaint about an int32 field, if the value does not fit one.
fn int32_error(value: &Value, pointer: &str, go_struct: &str) -> Option<String> {
    let shown = match value {
        Value::Null => return None,
        Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => return None,
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "string".to_string(),
        Value::Bool(_) => "bool".to_string(),
        Value::Array(_) => "array".to_string(),
        Value::Object(_) => "object".to_string(),
    };
    let field = pointer.trim_start_matches('/').replace('/', ".");
    Some(format!("json: cannot unmarshal {shown} into Go struct field {go_struct}.{field} of type int32"))
}

/// The scale subresource's `spec.replicas` as the decoder reads it.
pub fn check_scale(scale: &Value) -> Result<(), String> {
    match scale.pointer("/spec/replicas").and_then(|v| int32_error(v, "/spec/replicas", "ScaleSpec")) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The containers of a pod spec at `spec_pointer` (`/spec` or `/spec/template/spec`), with the
/// field path validation names them by.
fn containers<'a>(obj: &'a Value, spec_pointer: &str) -> Vec<(String, &'a Value)> {
    let base = spec_pointer.trim_start_matches('/').replace('/', ".");
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        let items = obj.pointer(&format!("{spec_pointer}/{list}")).and_then(Value::as_array);
        for (i, c) in items.into_iter().flatten().enumerate() {
            out.push((format!("{base}.{list}[{i}]"), c));
        }
    }
    out
}

fn pod_spec_pointer(res: ResId) -> Option<&'static str> {
    match res {
        resources::PODS => Some("/spec"),
        resources::DEPLOYMENTS | resources::REPLICASETS | resources::STATEFULSETS | resources::DAEMONSETS => {
            Some("/spec/template/spec")
        }
        _ => None,
    }
}

/// Every resource quantity in the containers' requests and limits, with its field path
/// (`spec.containers[0].resources.requests[cpu]`).
fn quantities(res: ResId, obj: &Value) -> Vec<(String, &Value)> {
    let Some(spec) = pod_spec_pointer(res) else { return Vec::new() };
    let mut out = Vec::new();
    for (path, c) in containers(obj, spec) {
        for kind in ["requests", "limits"] {
            let map = c.get("resources").and_then(|r| r.get(kind)).and_then(Value::as_object);
            for (name, q) in map.into_iter().flatten() {
                out.push((format!("{path}.resources.{kind}[{name}]"), q));
            }
        }
    }
    out
}

/// Go's `resource.ParseQuantity`, as far as telling valid from invalid: an optional sign,
/// digits with at most one `.`, then a binary (`Ki`..`Ei`), decimal (`n u m k M G T P E`) or
/// exponent (`e3`, `E-2`) suffix. Returns the value's sign (`true` when below zero).
pub fn parse_quantity(s: &str) -> Result<bool, &'static str> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let number_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    let (number, suffix) = rest.split_at(number_len);
    if number.is_empty() || number.matches('.').count() > 1 || number == "." {
        return Err(QUANTITY_FORMAT);
    }
    let shape_ok = suffix.bytes().all(|b| b"eEinumkKMGTP+-0123456789".contains(&b));
    if !shape_ok {
        return Err(QUANTITY_FORMAT);
    }
    let known = matches!(
        suffix,
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    );
    let exponent = suffix.strip_prefix(['e', 'E']).is_some_and(|e| {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        !digits.is_empty() && digits.len() <= 9 && digits.bytes().all(|b| b.is_ascii_digit())
    });
    if !known && !exponent {
        return Err(QUANTITY_SUFFIX);
    }
    let nonzero = number.bytes().any(|b| (b'1'..=b'9').contains(&b));
    Ok(negative && nonzero)
}

/// The decoder's complaint about `obj`, if any: an int32 field out of range or of the wrong
/// type, or a quantity that does not parse.
pub fn check(res: ResId, obj: &Value) -> Result<(), String> {
    let res = resources::storage_of(res);
    for (pointer, go_struct) in int32_fields(res) {
        if let Some(e) = obj.pointer(pointer).and_then(|v| int32_error(v, pointer, go_struct)) {
            return Err(e);
        }
    }
    for (_, q) in quantities(res, obj) {
        match q {
            Value::String(s) => parse_quantity(s).map(|_| ())?,
            Value::Number(n) => parse_quantity(&n.to_string()).map(|_| ())?,
            _ => return Err(QUANTITY_FORMAT.to_string()),
        }
    }
    Ok(())
}

/// Validation's complaint about negative quantities (`must be greater than or equal to 0`).
pub fn negative_quantities(res: ResId, obj: &Value) -> Vec<FieldError> {
    quantities(resources::storage_of(res), obj)
        .into_iter()
        .filter_map(|(path, q)| {
            let text = match q {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parse_quantity(&text)
                .ok()
                .filter(|negative| *negative)
                .map(|_| FieldError::invalid(&path, format!("\"{text}\""), "must be greater than or equal to 0"))
        })
        .collect()
}

/// A create or update body the decoder refuses: 400, as upstream's `transformDecodeError`.
pub fn body_error(def: &ResourceDef, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {why}",
        def.kind, def.version, def.kind
    ))
}

/// Check a create or update body.
pub fn check_body(res: ResId, obj: &Value) -> Result<(), ApiError> {
    check(res, obj).map_err(|why| body_error(&RESOURCES[resources::storage_of(res)], &why))
}

/// Check the result of a patch: 422, as upstream's patcher when the patched object does not
/// decode.
pub fn check_patched(res: ResId, patched: &Value) -> Result<(), ApiError> {
    check(res, patched).map_err(|why| ApiError::invalid_patch(patched, &why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_as_go_parses_them() {
        for ok in ["1", "500m", "1.5Gi", "+2", "0", "1e3", "2E-2", "64Ki", ".5", "100M"] {
            assert_eq!(parse_quantity(ok), Ok(false), "{ok}");
        }
        assert_eq!(parse_quantity("-1"), Ok(true));
        assert_eq!(parse_quantity("-0"), Ok(false));
        for (bad, why) in [("lots", QUANTITY_FORMAT), ("1 Gi", QUANTITY_FORMAT), ("", QUANTITY_FORMAT)] {
            assert_eq!(parse_quantity(bad), Err(why), "{bad}");
        }
        assert_eq!(parse_quantity("1Kii"), Err(QUANTITY_SUFFIX));
        assert_eq!(parse_quantity("1mi"), Err(QUANTITY_SUFFIX));
        assert_eq!(parse_quantity("1.2.3"), Err(QUANTITY_FORMAT));
    }

    #[test]
    fn int32_fields_out_of_range_are_named_as_the_go_decoder_names_them() {
        let d = json!({"spec": {"replicas": 2147483648_i64}});
        assert_eq!(
            check(resources::DEPLOYMENTS, &d).unwrap_err(),
            "json: cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas of type int32"
        );
        assert!(check(resources::DEPLOYMENTS, &json!({"spec": {"replicas": 2147483647}})).is_ok());
        let s = json!({"spec": {"replicas": "3"}});
        assert_eq!(
            check_scale(&s).unwrap_err(),
            "json: cannot unmarshal string into Go struct field ScaleSpec.spec.replicas of type int32"
        );
        let pod = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "-1", "memory": "1Gi"}}}]}});
        let errors = negative_quantities(resources::PODS, &pod);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"
        );
    }
}
