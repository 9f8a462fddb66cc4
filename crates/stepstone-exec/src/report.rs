//! The final report of a rollout in Markdown: what ran and when (from the journal), the nodes
//! rolled back and held with their reasons, and the before/after diff of component versions.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::journal::{Journal, Phase};

/// `key: before -> after` for every version that changed or appeared.
pub fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (k, a) in after {
        match before.get(k) {
            Some(b) if b == a => {}
            Some(b) => out.push((k.clone(), b.clone(), a.clone())),
            None => out.push((k.clone(), "-".into(), a.clone())),
        }
    }
    out
}

/// The whole report.
pub fn markdown(journal: &Journal) -> String {
    let plan = &journal.plan;
    let mut s = String::new();
    let _ = writeln!(s, "# Rollout {} of {}: {} -> {}\n", journal.id, journal.cluster, plan.from, plan.to);
    let _ = writeln!(s, "- node operations: `{}`", journal.node_ops);
    let _ = writeln!(s, "- started: {}", journal.started_at);
    let _ = writeln!(s, "- state: {:?}", journal.state);
    let drains = journal.drains_per_node();
    let _ = writeln!(s, "- nodes drained: {} ({} drains)\n", drains.len(), drains.values().sum::<usize>());
    if !journal.holds.is_empty() {
        let _ = writeln!(s, "## Nodes rolled back and held\n");
        for (node, reason) in &journal.holds {
            let _ = writeln!(s, "- **{node}**: {reason}");
        }
        s.push('\n');
    }
    let rolled_back: Vec<_> =
        journal.records.iter().filter(|r| r.phase == Phase::Info && r.message.contains("left cordoned")).collect();
    if !rolled_back.is_empty() {
        let _ = writeln!(s, "## Rollbacks\n");
        for r in rolled_back {
            let _ = writeln!(s, "- {} {} ({}):", r.at, r.node.as_deref().unwrap_or(""), r.step);
            for line in r.message.lines() {
                let _ = writeln!(s, "    {line}");
            }
        }
        s.push('\n');
    }
    let _ = writeln!(s, "## Steps\n\n| time | step | phase | node | message |\n|---|---|---|---|---|");
    for r in &journal.records {
        let message = r.message.lines().next().unwrap_or("").replace('|', "\\|");
        let _ = writeln!(
            s,
            "| {} | {} | {:?} | {} | {} |",
            r.at,
            r.step,
            r.phase,
            r.node.as_deref().unwrap_or(""),
            message
        );
    }
    for (hop, before) in &journal.versions_before {
        let Some(after) = journal.versions_after.get(hop) else { continue };
        let h = &plan.hops[*hop];
        let _ = writeln!(s, "\n## Hop {}: {} -> {}: versions before and after\n", hop + 1, h.from, h.to);
        let _ = writeln!(s, "| component | before | after |\n|---|---|---|");
        for (k, b, a) in diff(before, after) {
            let _ = writeln!(s, "| {k} | {b} | {a} |");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_lists_what_moved_and_what_appeared() {
        let before: BTreeMap<String, String> =
            [("kubelet/w-1".into(), "v1.34.6".into()), ("kubelet/w-2".into(), "v1.35.0".into())].into();
        let after: BTreeMap<String, String> = [
            ("kubelet/w-1".into(), "v1.35.0".into()),
            ("kubelet/w-2".into(), "v1.35.0".into()),
            ("etcd/cp-1".into(), "3.6.4-0".into()),
        ]
        .into();
        assert_eq!(
            diff(&before, &after),
            vec![
                ("etcd/cp-1".to_string(), "-".to_string(), "3.6.4-0".to_string()),
                ("kubelet/w-1".to_string(), "v1.34.6".to_string(), "v1.35.0".to_string())
            ]
        );
    }
}
