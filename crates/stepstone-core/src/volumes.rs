//! Where a claim's data lives: PersistentVolumes with node affinity (local volumes, LVM or ZFS
//! local provisioners) and the claims bound to them, read from a snapshot or a live cluster.
//!
//! A volume's `spec.nodeAffinity` is matched against every node's labels (and `metadata.name`,
//! as the scheduler's `matchFields` does), not against a fixed hostname key: OpenEBS LVM
//! volumes select `openebs.io/nodename`, local-path and `local` volumes
//! `kubernetes.io/hostname`. A pod whose claim is bound to a volume that admits no node but its
//! own cannot come back anywhere else once evicted; the scheduler keeps it Pending with
//! `volume node affinity conflict`, and the drain rules treat it as pinned.

use std::collections::{BTreeMap, BTreeSet};

use crate::inventory::{Inventory, Node, PersistentVolume};
use crate::object_key::ObjectKey;
use crate::selector::{NODE_NAME_FIELD, Operator, Selector};

/// Claim -> the nodes that reach its bound volume, for every bound claim whose volume has node
/// affinity. Claims bound to volumes any node reaches are left out.
pub fn claim_nodes(inv: &Inventory) -> BTreeMap<ObjectKey, BTreeSet<String>> {
    if !inv.volumes.iter().any(|v| !v.node_affinity.is_empty()) {
        return BTreeMap::new();
    }
    let nodes = NodeIndex::new(&inv.nodes);
    let volumes: BTreeMap<&str, &PersistentVolume> = inv.volumes.iter().map(|v| (v.name.as_str(), v)).collect();
    let reserved: BTreeMap<&ObjectKey, &PersistentVolume> =
        inv.volumes.iter().filter_map(|v| v.claim.as_ref().map(|c| (c, v))).collect();
    let mut out = BTreeMap::new();
    for claim in inv.claims.iter().filter(|c| c.bound) {
        let key = claim.key();
        let volume = match &claim.volume {
            Some(name) => volumes.get(name.as_str()).copied(),
            None => reserved.get(&key).copied(),
        };
        let Some(volume) = volume.filter(|v| !v.node_affinity.is_empty()) else { continue };
        out.insert(key, nodes.admitted(&volume.node_affinity));
    }
    out
}

/// Node labels (plus `metadata.name`) with an index of `key=value` to nodes, so a volume's
/// affinity on one hostname looks at one node, not at every node of a 5,000-node fleet.
struct NodeIndex<'a> {
    labels: Vec<(&'a str, BTreeMap<String, String>)>,
    by_label: BTreeMap<(&'a str, &'a str), Vec<usize>>,
}

impl<'a> NodeIndex<'a> {
    fn new(nodes: &'a [Node]) -> Self {
        let mut by_label: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
        let mut labels = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            by_label.entry((NODE_NAME_FIELD, n.name.as_str())).or_default().push(i);
            for (k, v) in &n.labels {
                by_label.entry((k.as_str(), v.as_str())).or_default().push(i);
            }
            let mut l = n.labels.clone();
            l.insert(NODE_NAME_FIELD.to_string(), n.name.clone());
            labels.push((n.name.as_str(), l));
        }
        NodeIndex { labels, by_label }
    }

    /// The nodes any of `terms` matches.
    fn admitted(&self, terms: &[Selector]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for term in terms {
            // An `In` requirement narrows the candidates to the nodes carrying one of its values.
            let candidates: Vec<usize> = match term.requirements.iter().find(|r| r.operator == Operator::In) {
                Some(r) => {
                    let mut c: Vec<usize> = r
                        .values
                        .iter()
                        .filter_map(|v| self.by_label.get(&(r.key.as_str(), v.as_str())))
                        .flatten()
                        .copied()
                        .collect();
                    c.sort_unstable();
                    c.dedup();
                    c
                }
                None => (0..self.labels.len()).collect(),
            };
            for i in candidates {
                let (name, labels) = &self.labels[i];
                if term.matches(labels) {
                    out.insert((*name).to_string());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::inventory::VolumeClaim;
    use crate::selector::Requirement;

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        crate::snapshot::parse_node(
            &json!({"kind": "Node", "metadata": {"name": name, "labels": labels},
                "status": {"nodeInfo": {"kubeletVersion": "v1.34.1"}}}),
            &Default::default(),
        )
        .unwrap()
    }

    fn term(key: &str, op: Operator, values: &[&str]) -> Selector {
        Selector {
            requirements: vec![Requirement {
                key: key.into(),
                operator: op,
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
        }
    }

    fn claim(name: &str, volume: Option<&str>, bound: bool) -> VolumeClaim {
        VolumeClaim { namespace: "data".into(), name: name.into(), volume: volume.map(String::from), bound }
    }

    fn volume(name: &str, claim: Option<&str>, affinity: Vec<Selector>) -> PersistentVolume {
        PersistentVolume { name: name.into(), claim: claim.and_then(ObjectKey::parse), node_affinity: affinity }
    }

    #[test]
    fn a_volume_admits_the_nodes_its_affinity_selects_by_any_label() {
        let inv = Inventory {
            nodes: vec![
                node("w1", &[("kubernetes.io/hostname", "w1"), ("openebs.io/nodename", "w1"), ("zone", "a")]),
                node("w2", &[("kubernetes.io/hostname", "w2"), ("openebs.io/nodename", "w2"), ("zone", "a")]),
                node("w3", &[("kubernetes.io/hostname", "w3"), ("zone", "b")]),
            ],
            volumes: vec![
                volume("lvm", None, vec![term("openebs.io/nodename", Operator::In, &["w2"])]),
                volume("local", None, vec![term("kubernetes.io/hostname", Operator::In, &["w1"])]),
                volume("zonal", None, vec![term("zone", Operator::In, &["a"])]),
                volume("by-name", None, vec![term(NODE_NAME_FIELD, Operator::In, &["w3"])]),
                volume("not-b", None, vec![term("zone", Operator::NotIn, &["b"])]),
                volume("nfs", None, vec![]),
                volume("pre-bound", Some("data/pre"), vec![term("kubernetes.io/hostname", Operator::In, &["w3"])]),
            ],
            claims: vec![
                claim("a", Some("lvm"), true),
                claim("b", Some("local"), true),
                claim("c", Some("zonal"), true),
                claim("d", Some("by-name"), true),
                claim("e", Some("not-b"), true),
                claim("f", Some("nfs"), true),
                claim("g", Some("lvm"), false),
                claim("pre", None, true),
                claim("missing", Some("gone"), true),
            ],
            ..Default::default()
        };
        let got: BTreeMap<String, Vec<String>> =
            claim_nodes(&inv).into_iter().map(|(k, v)| (k.to_string(), v.into_iter().collect())).collect();
        let want: BTreeMap<String, Vec<String>> = [
            ("data/a", vec!["w2"]),
            ("data/b", vec!["w1"]),
            ("data/c", vec!["w1", "w2"]),
            ("data/d", vec!["w3"]),
            ("data/e", vec!["w1", "w2"]),
            ("data/pre", vec!["w3"]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        assert_eq!(got, want);
    }
}
