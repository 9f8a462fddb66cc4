//! Judging sightings against the data and the upgrade path: which hop each one breaks at, what
//! replaces it, and how bad it is. Removed at or before the target is an error; deprecated but
//! still served at the target is a warning; history that cannot matter any more is info.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use stepstone_core::findings::{Finding, Severity};
use stepstone_core::version::Minor;

use crate::data::RemovedApis;
use crate::scan::Scan;
use crate::sighting::{Sighting, SourceKind, Suppressed, Used};

/// One sighting judged: the sighting plus what the data says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiFinding {
    pub severity: Severity,
    #[serde(flatten)]
    pub sighting: Sighting,
    /// The kind, when the sighting named only a resource (metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub removed_in: Option<Minor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecated_in: Option<Minor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_removal: Option<Minor>,
    pub replacement: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Where the data row comes from.
    pub reference: String,
}

/// The findings that break at one hop (`from` → `to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HopApis {
    /// `None` when the cluster's current version is not known.
    pub from: Option<Minor>,
    pub to: Minor,
    pub findings: Vec<ApiFinding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataInfo {
    pub rows: usize,
    pub updated: String,
}

/// The whole answer for a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiReport {
    pub current: Option<Minor>,
    pub target: Minor,
    /// Every hop of the path (only hops with findings when the current version is unknown).
    pub hops: Vec<HopApis>,
    /// Uses of APIs the current cluster already does not serve.
    pub already_removed: Vec<ApiFinding>,
    /// Deprecated APIs still served at the target (removed later, or removal not announced).
    pub after_target: Vec<ApiFinding>,
    /// Stale last-applied annotations deliberately not reported.
    pub suppressed: Vec<Suppressed>,
    pub notes: Vec<String>,
    pub sources: BTreeMap<String, usize>,
    pub data: DataInfo,
    /// The same results in the common findings shape, worst first.
    pub findings: Vec<Finding>,
}

impl ApiReport {
    /// Does anything break at or before the target?
    pub fn breaks(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// What the data says about one sighting.
struct Judgement {
    kind: Option<String>,
    removed_in: Option<Minor>,
    deprecated_in: Option<Minor>,
    planned_removal: Option<Minor>,
    replacement: String,
    note: String,
    reference: String,
}

fn judge(data: &RemovedApis, used: &Used) -> Option<Judgement> {
    match used {
        Used::Api { api_version, kind } => data.rule_for(api_version, kind).map(|r| Judgement {
            kind: None,
            removed_in: r.removed_in,
            deprecated_in: r.deprecated_in,
            planned_removal: r.planned_removal,
            replacement: r.replacement.clone(),
            note: r.note.clone(),
            reference: r.source.clone(),
        }),
        Used::Resource { group, version, resource, removed_release, .. } => {
            if let Some((r, kind)) = data.rule_for_resource(group, version, resource) {
                return Some(Judgement {
                    kind: Some(kind),
                    removed_in: r.removed_in,
                    deprecated_in: r.deprecated_in,
                    planned_removal: r.planned_removal,
                    replacement: r.replacement.clone(),
                    note: r.note.clone(),
                    reference: r.source.clone(),
                });
            }
            // Not in the data: the apiserver itself says it is deprecated, and maybe when it goes.
            let gv = if group.is_empty() { version.clone() } else { format!("{group}/{version}") };
            Some(Judgement {
                kind: None,
                removed_in: removed_release.parse().ok(),
                deprecated_in: None,
                planned_removal: None,
                replacement: if group.is_empty() {
                    "a served core version".to_string()
                } else {
                    format!("a served version of {group}")
                },
                note: format!("{gv} {resource} is not in the data file; the apiserver marks it deprecated"),
                reference: "apiserver removed_release label".to_string(),
            })
        }
        Used::KubeletFlag { flag } => data.flag_rule(flag).map(|r| Judgement {
            kind: None,
            removed_in: Some(r.removed_in),
            deprecated_in: None,
            planned_removal: None,
            replacement: r.action.clone(),
            note: String::new(),
            reference: r.source.clone(),
        }),
    }
}

enum Bucket {
    Already,
    Hop(Minor),
    After,
}

/// Judge every sighting of `scan` for the path `current` → `target` (one hop per minor).
/// Without a current version every removal up to the target is reported at its own minor.
pub fn evaluate(scan: Scan<'_>, current: Option<Minor>, target: Minor) -> ApiReport {
    let data = scan.data;
    let mut hops: BTreeMap<Minor, Vec<ApiFinding>> = BTreeMap::new();
    if let Some(c) = current {
        let mut m = c.next();
        while m <= target {
            hops.insert(m, Vec::new());
            m = m.next();
        }
    }
    let first_hop = current.map(Minor::next);
    let mut already = Vec::new();
    let mut after = Vec::new();
    let mut seen = BTreeSet::new();
    for sighting in scan.sightings {
        // The same object can sit in several files of a directory, or a Helm release can render the
        // same document twice; one finding per distinct sighting is enough.
        if !seen.insert(sighting.clone()) {
            continue;
        }
        let Some(j) = judge(data, &sighting.used) else { continue };
        let bucket = match j.removed_in {
            Some(r) if current.is_some_and(|c| r <= c) => Bucket::Already,
            Some(r) if r <= target => Bucket::Hop(r),
            _ => Bucket::After,
        };
        let severity = match (&bucket, sighting.source) {
            (Bucket::After, _) => Severity::Warning,
            // A manager that wrote a version the cluster has long stopped serving is history, not a
            // client that still calls it.
            (Bucket::Already, SourceKind::ManagedFields | SourceKind::LastApplied) => Severity::Info,
            // kubeadm rewrites the ConfigMap in its own version at every `upgrade apply`, so only
            // the first hop's kubeadm has to read what is stored now.
            (Bucket::Hop(r), SourceKind::KubeadmConfig) if first_hop.is_some_and(|f| *r > f) => Severity::Info,
            _ => Severity::Error,
        };
        let finding = ApiFinding {
            severity,
            sighting,
            kind: j.kind,
            removed_in: j.removed_in,
            deprecated_in: j.deprecated_in,
            planned_removal: j.planned_removal,
            replacement: j.replacement,
            note: j.note,
            reference: j.reference,
        };
        match bucket {
            Bucket::Already => already.push(finding),
            Bucket::Hop(r) => hops.entry(r).or_default().push(finding),
            Bucket::After => after.push(finding),
        }
    }
    let order = |a: &ApiFinding, b: &ApiFinding| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.sighting.source.cmp(&b.sighting.source))
            .then_with(|| location_key(&a.sighting.location).cmp(&location_key(&b.sighting.location)))
            .then_with(|| a.sighting.cmp(&b.sighting))
    };
    already.sort_by(order);
    after.sort_by(order);
    let hops: Vec<HopApis> = hops
        .into_iter()
        .map(|(to, mut findings)| {
            findings.sort_by(order);
            let from = current.map(|_| Minor::new(to.major, to.minor - 1));
            HopApis { from, to, findings }
        })
        .collect();

    let mut findings = Vec::new();
    for f in &already {
        findings.push(to_finding(f, None, current));
    }
    for hop in &hops {
        for f in &hop.findings {
            findings.push(to_finding(f, Some(hop), current));
        }
    }
    for f in &after {
        findings.push(to_finding(f, None, current));
    }
    stepstone_core::findings::sort(&mut findings);
    let mut suppressed = scan.suppressed;
    suppressed.sort();
    suppressed.dedup();
    let mut notes = scan.notes;
    notes.sort();
    notes.dedup();
    ApiReport {
        current,
        target,
        hops,
        already_removed: already,
        after_target: after,
        suppressed,
        notes,
        sources: scan.counts,
        data: DataInfo { rows: data.row_count(), updated: data.updated.clone() },
        findings,
    }
}

/// Sort `file:10` after `file:9`: the file, then the line as a number.
fn location_key(location: &str) -> (&str, u64) {
    match location.rsplit_once(':') {
        Some((file, line)) if line.chars().all(|c| c.is_ascii_digit()) && !line.is_empty() => {
            (file, line.parse().unwrap_or(0))
        }
        _ => (location, 0),
    }
}

/// `Ingress shop/web` at `deploy/ing.yaml:3`, with the manager when there is one.
fn subject(s: &Sighting) -> String {
    let mut out = s.location.clone();
    if let Some(o) = &s.object {
        out.push_str(&format!(" {o}"));
    }
    if let Some(m) = &s.manager {
        out.push_str(&format!(" (manager {m})"));
    }
    out
}

fn what(f: &ApiFinding) -> String {
    match (&f.sighting.used, &f.kind) {
        (Used::Resource { group, version, .. }, Some(kind)) => {
            let gv = if group.is_empty() { version.clone() } else { format!("{group}/{version}") };
            format!("{gv} {kind}")
        }
        (used, _) => used.label(),
    }
}

fn to_finding(f: &ApiFinding, hop: Option<&HopApis>, current: Option<Minor>) -> Finding {
    let s = &f.sighting;
    let used = what(f);
    let is_flag = matches!(s.used, Used::KubeletFlag { .. });
    let (code, message) = match (f.severity, f.removed_in, hop) {
        (Severity::Info, Some(r), _) if s.source == SourceKind::KubeadmConfig => (
            "apis.kubeadm-config-rewritten",
            format!(
                "{used} is stored now; it is removed in {r}, but kubeadm rewrites the ConfigMap at each earlier hop"
            ),
        ),
        (Severity::Info, Some(r), _) => (
            "apis.historical",
            format!(
                "{used} was last written here before {r}, which the current cluster{} no longer serves",
                current.map(|c| format!(" ({c})")).unwrap_or_default()
            ),
        ),
        (_, Some(r), Some(h)) => {
            let step = match h.from {
                Some(from) => format!("the hop {from} -> {}", h.to),
                None => format!("{}", h.to),
            };
            let verb = if is_flag { "is refused by the kubelet" } else { "is no longer served" };
            (
                if is_flag { "apis.kubelet-flag-removed" } else { "apis.removed" },
                format!("{used} {verb} from {r}: breaks at {step}"),
            )
        }
        (_, Some(r), None) if current.is_some_and(|c| r <= c) => {
            ("apis.already-removed", format!("{used} is not served by the current cluster (removed in {r})"))
        }
        (_, Some(r), None) => ("apis.deprecated", format!("{used} is deprecated and removed in {r}, after the target")),
        (_, None, _) => (
            "apis.deprecated",
            match f.planned_removal {
                Some(p) => format!("{used} is deprecated; removal planned for {p} (not confirmed)"),
                None => format!("{used} is deprecated (no removal release announced)"),
            },
        ),
    };
    let mut message = message;
    if !s.detail.is_empty() {
        message.push_str(&format!(" ({})", s.detail));
    }
    Finding::new(f.severity, code, subject(s), message, hint(f))
}

fn hint(f: &ApiFinding) -> String {
    let s = &f.sighting;
    let replacement = &f.replacement;
    let mut hint = match s.source {
        SourceKind::Manifest => format!("change the manifest to {replacement}"),
        SourceKind::Helm => format!("upgrade the release to a chart version that renders {replacement}"),
        SourceKind::ManagedFields => format!(
            "upgrade or reconfigure the client '{}' to write {replacement}",
            s.manager.as_deref().unwrap_or("(unnamed manager)")
        ),
        SourceKind::LastApplied => {
            format!("check the source manifest of this object and move it to {replacement} before the next apply")
        }
        SourceKind::Metrics => format!(
            "find the caller in the apiserver audit log (events annotated k8s.io/deprecated=true) and move it to {replacement}"
        ),
        SourceKind::KubeadmConfig => format!("migrate kubeadm configuration files to {replacement}"),
        SourceKind::KubeletFlag => replacement.clone(),
    };
    if !f.note.is_empty() {
        if !hint.is_empty() {
            hint.push_str("; ");
        }
        hint.push_str(&f.note);
    }
    hint
}

/// The table view: a line per hop with what breaks there, then what is already gone, then what is
/// deprecated beyond the target, then the notes.
pub fn render_text(report: &ApiReport) -> String {
    let mut out = String::new();
    let path = match report.current {
        Some(c) => format!("{c} -> {}", report.target),
        None => format!("(current version unknown) -> {}", report.target),
    };
    let _ = writeln!(out, "Removed and deprecated APIs on the path {path}");
    let sources: Vec<String> = report.sources.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let _ = writeln!(
        out,
        "Read: {}. Data: {} rows (updated {}).",
        if sources.is_empty() { "nothing".to_string() } else { sources.join(", ") },
        report.data.rows,
        report.data.updated
    );
    let section = |out: &mut String, title: &str, findings: &[ApiFinding]| {
        let _ = writeln!(out, "\n{title}");
        if findings.is_empty() {
            let _ = writeln!(out, "  nothing");
            return;
        }
        let rows: Vec<[String; 5]> = findings
            .iter()
            .map(|f| {
                let mut who = f.sighting.object.clone().unwrap_or_default();
                if let Some(m) = &f.sighting.manager {
                    who = if who.is_empty() { format!("manager {m}") } else { format!("{who}, manager {m}") };
                }
                [f.severity.to_string(), f.sighting.source.to_string(), what(f), f.sighting.location.clone(), who]
            })
            .collect();
        let mut width = [0usize; 5];
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                width[i] = width[i].max(c.chars().count());
            }
        }
        for (r, f) in rows.iter().zip(findings) {
            let mut line = String::from("  ");
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i + 1 < r.len() {
                    line.push_str(&" ".repeat(width[i] - c.chars().count() + 2));
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
            if f.note.is_empty() {
                let _ = writeln!(out, "      -> {}", f.replacement);
            } else {
                let _ = writeln!(out, "      -> {}; {}", f.replacement, f.note);
            }
        }
    };
    if !report.already_removed.is_empty() {
        section(&mut out, "Already not served by the current cluster:", &report.already_removed);
    }
    for hop in &report.hops {
        let title = match hop.from {
            Some(from) => format!("Hop {from} -> {}:", hop.to),
            None => format!("Removed in {}:", hop.to),
        };
        section(&mut out, &title, &hop.findings);
    }
    if report.hops.is_empty() {
        let _ = writeln!(out, "\nNo hops: the cluster is already at or past the target.");
    }
    if !report.after_target.is_empty() {
        section(&mut out, "Deprecated, still served at the target:", &report.after_target);
    }
    if !report.suppressed.is_empty() {
        let _ = writeln!(out, "\nNot reported (stale last-applied annotation, managedFields are current):");
        for s in &report.suppressed {
            let _ = writeln!(out, "  {} ({}): annotation says {}", s.object, s.location, s.annotation_api_version);
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "\nNotes:");
        for n in &report.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    let errors = report.findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = report.findings.iter().filter(|f| f.severity == Severity::Warning).count();
    let _ = writeln!(out, "\n{errors} break at or before {}, {warnings} deprecated.", report.target);
    out
}
