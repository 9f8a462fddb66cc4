//! The `forbidden` fault: resources whose reads (get, list, watch) the lab refuses with
//! `403 Forbidden`, worded as the apiserver's RBAC authorizer words it, as for credentials whose
//! role lacks those verbs (a read-only role without PersistentVolumes, say).

use std::collections::BTreeSet;

use crate::access::USER;
use crate::resources::{self, ResId};
use crate::status::{ApiError, Details};

/// Every name must be a resource the lab serves (its plural, `persistentvolumes`): a typo would
/// otherwise arm a fault that never fires. The error is the message of the faults' `Invalid`
/// answer (returned as text so this module does not depend back on `faults`).
pub fn check(forbidden: &BTreeSet<String>) -> Result<(), String> {
    match forbidden.iter().find(|name| resources::by_plural(name).is_none()) {
        Some(name) => Err(format!(
            "forbidden: \"{name}\" is not a resource the lab serves; name resources by their plural, as in \"persistentvolumes\""
        )),
        None => Ok(()),
    }
}

/// The refusal of `verb` (`get`, `list` or `watch`) on the resource `res` when the
/// fault names it; writes are not this fault's business.
pub fn refused(forbidden: &BTreeSet<String>, res: ResId, verb: &str, namespace: Option<&str>) -> Option<ApiError> {
    let def = res.def();
    if !matches!(verb, "get" | "list" | "watch") || !forbidden.contains(def.plural) {
        return None;
    }
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let message = format!(
        "{plural} is forbidden: User \"{USER}\" cannot {verb} resource \"{plural}\" in API group \"{group}\" {scope}",
        plural = def.plural,
        group = def.group,
    );
    let details = Details {
        group: (!def.group.is_empty()).then(|| def.group.to_string()),
        kind: Some(def.plural.to_string()),
        ..Details::default()
    };
    Some(ApiError { code: 403, reason: "Forbidden".to_string(), message, details: Box::new(details) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    #[test]
    fn reads_of_a_named_resource_are_refused_as_rbac_refuses_them() {
        let forbidden: BTreeSet<String> = ["persistentvolumes".to_string()].into();
        let pv = find("", "v1", "persistentvolumes").unwrap();
        let e = refused(&forbidden, pv, "list", None).unwrap();
        assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "persistentvolumes is forbidden: User \"stepstone-lab\" cannot list resource \"persistentvolumes\" in API group \"\" at the cluster scope"
        );
        assert!(refused(&forbidden, pv, "watch", None).is_some());
        assert!(refused(&forbidden, pv, "delete", None).is_none(), "only reads");
        assert!(refused(&forbidden, find("", "v1", "nodes").unwrap(), "list", None).is_none());
        assert!(check(&forbidden).is_ok());
        let err = check(&["persistentvolume".to_string()].into()).unwrap_err().to_string();
        assert!(err.contains("\"persistentvolume\"") && err.contains("plural"), "{err}");
    }
}
