//! The age order of hardware generations: oldest first, because the oldest hardware is the most
//! likely to surface a kernel or firmware problem, and the newest has the most spare capacity.
//!
//! An explicit order from the operator wins (generations it does not name follow, inferred);
//! otherwise a generation's age is its earliest node `creationTimestamp`, then its oldest kernel,
//! then its name.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::inventory::Inventory;

/// An explicit order named a generation no node has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--generation-order names '{name}', which no node has; the generations in this cluster are: {known} (set the label with --generation-label if they are named elsewhere)"
)]
pub struct UnknownGeneration {
    pub name: String,
    pub known: String,
}

/// Numeric parts of a kernel release (`5.4.0-150-generic` -> [5, 4, 0, 150]), for comparison.
pub fn kernel_key(kernel: &str) -> Vec<u64> {
    kernel
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(4)
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

struct Age {
    created: Option<Timestamp>,
    kernel: Option<Vec<u64>>,
}

fn older(a: &(&str, Age), b: &(&str, Age)) -> Ordering {
    // Known creation times first (earliest first); unknown ones after.
    let created = match (a.1.created, b.1.created) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    let kernel = match (&a.1.kernel, &b.1.kernel) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    created.then(kernel).then_with(|| a.0.cmp(b.0))
}

/// Generations of the workers (of every node when there are no workers), oldest first.
pub fn order(inv: &Inventory, explicit: &[String]) -> Result<Vec<String>, UnknownGeneration> {
    let mut ages: BTreeMap<&str, Age> = BTreeMap::new();
    let has_workers = inv.workers().next().is_some();
    for n in inv.nodes.iter().filter(|n| !has_workers || !n.is_control_plane()) {
        let age = ages.entry(n.generation.as_str()).or_insert(Age { created: None, kernel: None });
        if let Some(c) = n.created
            && age.created.is_none_or(|x| c < x)
        {
            age.created = Some(c);
        }
        if !n.kernel_version.is_empty() {
            let k = kernel_key(&n.kernel_version);
            if age.kernel.as_ref().is_none_or(|x| k < *x) {
                age.kernel = Some(k);
            }
        }
    }
    let all_generations: Vec<&str> = inv.nodes.iter().map(|n| n.generation.as_str()).collect();
    for name in explicit {
        if !all_generations.contains(&name.as_str()) {
            let mut known: Vec<&str> = all_generations.clone();
            known.sort_unstable();
            known.dedup();
            return Err(UnknownGeneration { name: name.clone(), known: known.join(", ") });
        }
    }
    let mut inferred: Vec<(&str, Age)> = ages.into_iter().collect();
    inferred.sort_by(older);
    let mut out: Vec<String> = explicit.iter().filter(|g| inferred.iter().any(|(n, _)| n == g)).cloned().collect();
    out.dedup();
    for (g, _) in inferred {
        if !out.iter().any(|x| x == g) {
            out.push(g.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Node;

    fn inv(nodes: &[(&str, &str, Option<&str>, &str)]) -> Inventory {
        let template: Node = serde_json::from_value(serde_json::json!({
            "name": "x", "role": "worker", "generation": "g", "labels": {}, "taints": [], "unschedulable": false,
            "kubeletVersion": "v1.32.0", "kubeProxyVersion": null, "osImage": "", "kernelVersion": "",
            "containerRuntime": "", "architecture": "amd64", "cgroup": null,
            "allocatable": {"cpuMillis": 0, "memoryBytes": 0, "pods": 0, "ephemeralStorageBytes": 0},
            "capacity": {"cpuMillis": 0, "memoryBytes": 0, "pods": 0, "ephemeralStorageBytes": 0},
            "ready": true, "conditions": [], "created": null, "internalIp": null
        }))
        .unwrap();
        Inventory {
            nodes: nodes
                .iter()
                .map(|(name, generation, created, kernel)| {
                    let mut n = template.clone();
                    n.name = name.to_string();
                    n.generation = generation.to_string();
                    n.created = created.map(|c| c.parse().unwrap());
                    n.kernel_version = kernel.to_string();
                    n
                })
                .collect(),
            ..Inventory::default()
        }
    }

    #[test]
    fn earliest_creation_then_oldest_kernel_then_name() {
        let i = inv(&[
            ("a1", "hp-dl380", Some("2023-01-01T00:00:00Z"), "6.8.0-40-generic"),
            ("b1", "dell-r640", Some("2019-05-01T00:00:00Z"), "5.4.0-150-generic"),
            ("b2", "dell-r640", Some("2024-05-01T00:00:00Z"), "5.4.0-150-generic"),
            ("c1", "dell-r740", Some("2021-03-01T00:00:00Z"), "5.15.0-90-generic"),
            ("d1", "zeta", None, "4.18.0"),
            ("e1", "alpha", None, "5.10.0"),
            ("f1", "beta", None, "5.10.0"),
        ]);
        assert_eq!(order(&i, &[]).unwrap(), vec!["dell-r640", "dell-r740", "hp-dl380", "zeta", "alpha", "beta"]);
        assert_eq!(kernel_key("5.15.0-90-generic"), vec![5, 15, 0, 90]);
    }

    #[test]
    fn explicit_order_wins_and_unknown_names_are_refused() {
        let i = inv(&[("a", "old", Some("2019-01-01T00:00:00Z"), ""), ("b", "new", Some("2024-01-01T00:00:00Z"), "")]);
        assert_eq!(order(&i, &["new".to_string()]).unwrap(), vec!["new", "old"]);
        let e = order(&i, &["r640".to_string()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--generation-order names 'r640', which no node has; the generations in this cluster are: new, old (set the label with --generation-label if they are named elsewhere)"
        );
    }
}
