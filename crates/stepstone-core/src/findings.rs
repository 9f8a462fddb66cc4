//! Findings: the one shape in which every check speaks (skew, blockers, preflight, APIs, drift).

use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered so that `max()` gives the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One thing a check noticed, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable machine-readable identifier, e.g. `skew.kubelet-too-old`.
    pub code: String,
    /// What the finding is about: a node, a component instance, a PDB, a file.
    pub subject: String,
    pub message: String,
    /// The concrete next step for the operator.
    pub hint: String,
}

impl Finding {
    pub fn new(
        severity: Severity,
        code: impl Into<String>,
        subject: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Finding { severity, code: code.into(), subject: subject.into(), message: message.into(), hint: hint.into() }
    }
}

/// The worst severity among `findings`, if any.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

/// Sort findings for stable output: worst first, then by code and subject.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.subject.cmp(&b.subject))
            .then_with(|| a.message.cmp(&b.message))
    });
}
