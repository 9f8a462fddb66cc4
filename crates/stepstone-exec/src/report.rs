//! The final report of a rollout, in Markdown and as a self-contained HTML page (no scripts, no
//! network): what ran and when, the nodes rolled back with their reasons and kubelet log lines,
//! the nodes still held, the steps found already done, and the before/after diff of component
//! versions. Everything is rendered from the journal's typed records, never from message text.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::journal::{Journal, Phase, Record, StepOutcome};

/// One changed version: component key, before, after.
pub type Change = (String, String, String);

/// `key: before -> after` for every version that changed or appeared.
pub fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<Change> {
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

/// One line for a rollback: the failed move, why, and where the node was left (the caller adds
/// that it stays cordoned, once).
pub fn rollback_summary(outcome: &StepOutcome) -> String {
    let StepOutcome::RolledBack { node, target, previous, ready, reason, .. } = outcome else {
        return String::new();
    };
    let back = match (previous, ready) {
        (Some(p), true) => format!("rolled back to {}, Ready", p.canonical()),
        (Some(p), false) => format!("rolled back to {}, but not Ready", p.canonical()),
        (None, _) => "no earlier version known to roll back to".to_string(),
    };
    format!("{} on {node}: {reason}; {back}", target.canonical())
}

/// The diff of every hop that has both its before and after versions.
fn hop_diffs(journal: &Journal) -> Vec<(String, Vec<Change>)> {
    let mut out = Vec::new();
    for (hop, before) in &journal.versions_before {
        let (Some(after), Some(h)) = (journal.versions_after.get(hop), journal.plan.hops.get(*hop)) else { continue };
        out.push((format!("Hop {}: {} -> {}", hop + 1, h.from, h.to), diff(before, after)));
    }
    out
}

fn phase(p: Phase) -> &'static str {
    match p {
        Phase::Started => "started",
        Phase::Done => "done",
        Phase::Skipped => "skipped",
        Phase::Failed => "failed",
        Phase::Info => "info",
    }
}

fn skipped(journal: &Journal) -> Vec<&Record> {
    journal.records.iter().filter(|r| matches!(r.outcome, Some(StepOutcome::Skipped))).collect()
}

fn state(journal: &Journal) -> String {
    match &journal.state {
        crate::journal::RolloutState::Halted { reason } => format!("halted: {reason}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The whole report in Markdown.
pub fn markdown(journal: &Journal) -> String {
    let plan = &journal.plan;
    let mut s = String::new();
    let _ = writeln!(s, "# Rollout {} of {}: {} -> {}\n", journal.id, journal.cluster, plan.from, plan.to);
    let _ = writeln!(s, "- node operations: `{}`", journal.node_ops);
    let _ = writeln!(s, "- started: {}", journal.started_at);
    let _ = writeln!(s, "- state: {}", state(journal).lines().next().unwrap_or(""));
    let drains = journal.drains_per_node();
    let _ = writeln!(s, "- nodes drained: {} ({} drains)\n", drains.len(), drains.values().sum::<usize>());
    if !journal.holds.is_empty() {
        let _ = writeln!(s, "## Nodes held (cordoned until `stepstone rollout resume`)\n");
        for (node, reason) in &journal.holds {
            let _ = writeln!(s, "- **{node}**: {reason}");
        }
        s.push('\n');
    }
    let rollbacks: Vec<_> = journal.rollbacks().collect();
    if !rollbacks.is_empty() {
        let _ = writeln!(s, "## Rollbacks\n");
        for (r, outcome) in rollbacks {
            let StepOutcome::RolledBack { kubelet_log, .. } = outcome else { continue };
            let _ = writeln!(s, "- {} ({}): {}; left cordoned", r.at, r.step, rollback_summary(outcome));
            if !kubelet_log.is_empty() {
                let _ = writeln!(s, "\n  ```text");
                for line in kubelet_log {
                    let _ = writeln!(s, "  {line}");
                }
                let _ = writeln!(s, "  ```");
            }
        }
        s.push('\n');
    }
    let skipped = skipped(journal);
    if !skipped.is_empty() {
        let _ = writeln!(s, "## Steps already done in the cluster (skipped)\n");
        for r in skipped {
            let _ = writeln!(s, "- {} {}", r.at, r.step);
        }
        s.push('\n');
    }
    let _ = writeln!(s, "## Steps\n\n| time | step | phase | node | message |\n|---|---|---|---|---|");
    for r in &journal.records {
        let message = r.message.lines().next().unwrap_or("").replace('|', "\\|");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.at,
            r.step,
            phase(r.phase),
            r.node.as_deref().unwrap_or(""),
            message
        );
    }
    for (title, rows) in hop_diffs(journal) {
        let _ = writeln!(s, "\n## {title}: versions before and after\n");
        let _ = writeln!(s, "| component | before | after |\n|---|---|---|");
        for (k, b, a) in rows {
            let _ = writeln!(s, "| {k} | {b} | {a} |");
        }
    }
    s
}

/// Text made safe for HTML element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}tr.failed td,tr.skipped td{background:#fff4e5}td.num{white-space:nowrap}\
.rollback{border-left:4px solid #c62828;padding:.2em 1em;margin:1em 0;background:#fdecea}\
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:12px}.changed{font-weight:600}";

/// The whole report as one HTML page that needs nothing but itself.
pub fn html(journal: &Journal) -> String {
    let plan = &journal.plan;
    let title = format!("Rollout {} of {}: {} -> {}", journal.id, journal.cluster, plan.from, plan.to);
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(s, "<h1>{}</h1>", esc(&title));
    let drains = journal.drains_per_node();
    let _ = writeln!(
        s,
        "<table class=\"summary\"><tr><th>node operations</th><td>{}</td></tr><tr><th>started</th><td>{}</td></tr>\
         <tr><th>state</th><td id=\"state\">{}</td></tr><tr><th>nodes drained</th><td>{} ({} drains)</td></tr></table>",
        esc(&journal.node_ops),
        journal.started_at,
        esc(&state(journal)),
        drains.len(),
        drains.values().sum::<usize>()
    );
    let rollbacks: Vec<_> = journal.rollbacks().collect();
    let _ = writeln!(s, "<h2 id=\"rollbacks\">Rollbacks ({})</h2>", rollbacks.len());
    if rollbacks.is_empty() {
        s.push_str("<p>No node was rolled back.</p>\n");
    }
    for (r, outcome) in rollbacks {
        let StepOutcome::RolledBack { node, kubelet_log, .. } = outcome else { continue };
        let _ = writeln!(
            s,
            "<div class=\"rollback\"><p><strong>{}</strong> at {} in step <code>{}</code>: {}; left cordoned</p>",
            esc(node),
            r.at,
            esc(&r.step),
            esc(&rollback_summary(outcome))
        );
        if !kubelet_log.is_empty() {
            let lines: Vec<String> = kubelet_log.iter().map(|l| esc(l)).collect();
            let _ = writeln!(s, "<p>kubelet log:</p><pre>{}</pre>", lines.join("\n"));
        }
        s.push_str("</div>\n");
    }
    if !journal.holds.is_empty() {
        s.push_str("<h2 id=\"held\">Nodes held (cordoned until <code>stepstone rollout resume</code>)</h2><ul>\n");
        for (node, reason) in &journal.holds {
            let _ = writeln!(s, "<li><strong>{}</strong>: {}</li>", esc(node), esc(reason));
        }
        s.push_str("</ul>\n");
    }
    for (title, rows) in hop_diffs(journal) {
        let _ = writeln!(s, "<h2>{}: versions before and after</h2>", esc(&title));
        s.push_str("<table class=\"diff\"><tr><th>component</th><th>before</th><th>after</th></tr>\n");
        for (k, b, a) in rows {
            let _ =
                writeln!(s, "<tr><td>{}</td><td>{}</td><td class=\"changed\">{}</td></tr>", esc(&k), esc(&b), esc(&a));
        }
        s.push_str("</table>\n");
    }
    s.push_str("<h2 id=\"steps\">What ran, when</h2>\n");
    s.push_str(
        "<table class=\"steps\"><tr><th>time</th><th>step</th><th>phase</th><th>node</th><th>message</th></tr>\n",
    );
    for r in &journal.records {
        let _ = writeln!(
            s,
            "<tr class=\"{p}\"><td class=\"num\">{}</td><td>{}</td><td>{p}</td><td>{}</td><td>{}</td></tr>",
            r.at,
            esc(&r.step),
            esc(r.node.as_deref().unwrap_or("")),
            esc(r.message.lines().next().unwrap_or("")),
            p = phase(r.phase)
        );
    }
    s.push_str("</table>\n</body></html>\n");
    s
}

/// Write the Markdown report to `path` and the HTML beside it (`.html`); returns both paths.
pub fn write(journal: &Journal, path: &std::path::Path) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    crate::journal::write_atomic(path, markdown(journal).as_bytes())?;
    let html_path = path.with_extension("html");
    crate::journal::write_atomic(&html_path, html(journal).as_bytes())?;
    Ok((path.to_path_buf(), html_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::empty_plan;

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

    fn journal_with_a_rollback() -> Journal {
        let now: jiff::Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
        let mut j = Journal::new("r1".into(), "lab".into(), "lab".into(), empty_plan(), now);
        j.record_outcome(now, "h1/cp/cp-01", "postcondition holds in the cluster", StepOutcome::Skipped);
        let outcome = StepOutcome::RolledBack {
            node: "w-<1>".into(),
            target: "v1.35.0".parse().unwrap(),
            previous: Some("v1.34.6".parse().unwrap()),
            ready: true,
            reason: "did not come back Ready".into(),
            kubelet_log: vec!["E1201 run.go:72] \"command failed\" err=\"cgroup v1\"".into()],
        };
        let summary = rollback_summary(&outcome);
        j.holds.insert("w-<1>".into(), summary.clone());
        j.record_outcome(now, "h1/wave/1", summary, outcome);
        j
    }

    #[test]
    fn a_rollback_is_reported_from_its_record_once() {
        let j = journal_with_a_rollback();
        let md = markdown(&j);
        assert_eq!(md.matches("left cordoned").count(), 1, "{md}");
        assert!(md.contains("v1.35.0 on w-<1>: did not come back Ready; rolled back to v1.34.6, Ready"), "{md}");
        assert!(md.contains("err=\"cgroup v1\""), "the kubelet log line: {md}");
        assert!(md.contains("- 2026-12-01T09:00:00Z h1/cp/cp-01"), "the skipped step: {md}");
        // A message that merely mentions the words is not a rollback.
        let mut plain = Journal::new("r2".into(), "lab".into(), "lab".into(), empty_plan(), j.started_at);
        plain.record(j.started_at, "h1/wave/1", Phase::Info, Some("w-2"), "left cordoned by someone else");
        assert!(!markdown(&plain).contains("## Rollbacks"));
    }

    #[test]
    fn the_html_report_escapes_what_it_shows() {
        let page = html(&journal_with_a_rollback());
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert!(page.contains("<strong>w-&lt;1&gt;</strong>"), "{page}");
        assert!(!page.contains("w-<1>"), "names are escaped: {page}");
        assert!(!page.contains("<script") && !page.contains("http"), "self-contained: {page}");
        assert!(page.contains("err=&quot;cgroup v1&quot;"));
    }
}
