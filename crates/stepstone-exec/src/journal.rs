//! The rollout journal: every step is written before and after it runs, to a file (written to a
//! temporary file, fsynced, renamed over the old one, directory fsynced) and mirrored by the
//! engine to a ConfigMap in kube-system, so a rollout can be resumed after a crash or from
//! another machine. The journal records intent and history; what is done is always re-read from
//! the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use stepstone_core::etcd_backup::SnapshotMetadata;
use stepstone_core::plan::Plan;
use stepstone_core::version::KubeVersion;

pub const JOURNAL_KIND: &str = "RolloutJournal";
pub const API_VERSION: &str = "stepstone/v1alpha1";

/// Where a rollout stands, as the last run left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum RolloutState {
    Running,
    /// Stopped on request between steps; `rollout resume` continues.
    Paused,
    /// Stopped by a trigger or a failed step; a person must look, then `rollout resume`.
    Halted {
        reason: String,
    },
    /// Stopped for good on request.
    Aborted,
    Complete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Started,
    Done,
    /// The cluster already showed the step's postcondition.
    Skipped,
    Failed,
    /// Something happened inside a step (a node drained, rolled back, a trigger fired).
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub at: Timestamp,
    pub step: String,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub message: String,
    /// What the record means, as data, when it is more than a line of progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<StepOutcome>,
}

/// The outcomes the report is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", rename_all_fields = "camelCase", tag = "kind")]
pub enum StepOutcome {
    /// A worker failed its move and was put back: packages, kubelet restart, left cordoned.
    RolledBack {
        node: String,
        /// The version it failed to reach.
        target: KubeVersion,
        /// The version it was put back on, when known.
        previous: Option<KubeVersion>,
        /// Whether it came back Ready on `previous`.
        ready: bool,
        /// Why the move failed.
        reason: String,
        /// The kubelet's last log lines on the node at the failure.
        kubelet_log: Vec<String>,
    },
    /// The step could not run: nodes of it are held after a rollback until a person resumes.
    Held { nodes: BTreeMap<String, String> },
    /// The cluster already showed the step's postcondition.
    Skipped,
}

/// A snapshot taken for a hop, with where it lies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HopSnapshot {
    pub path: String,
    pub metadata: SnapshotMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    pub api_version: String,
    pub kind: String,
    /// Identifies this rollout across runs and machines.
    pub id: String,
    pub cluster: String,
    /// `lab`, `ssh` or `manual`.
    pub node_ops: String,
    pub plan: Plan,
    pub started_at: Timestamp,
    pub state: RolloutState,
    pub records: Vec<Record>,
    /// Workers rolled back and left cordoned, with the reason; cleared by `rollout resume`.
    #[serde(default)]
    pub holds: BTreeMap<String, String>,
    /// The etcd snapshot of each hop (key: hop index).
    #[serde(default)]
    pub snapshots: BTreeMap<usize, HopSnapshot>,
    /// Component versions recorded before each hop (key: hop index; `component/node` -> tag).
    #[serde(default)]
    pub versions_before: BTreeMap<usize, BTreeMap<String, String>>,
    /// Component versions at the end of each hop.
    #[serde(default)]
    pub versions_after: BTreeMap<usize, BTreeMap<String, String>>,
    /// `node@version` of every drain that completed, so a resumed run never drains a node twice
    /// for the same move.
    #[serde(default)]
    pub drained: BTreeSet<String>,
    /// The kubelet version each node had before this rollout moved it last (the rollback target).
    #[serde(default)]
    pub previous: BTreeMap<String, KubeVersion>,
    /// What was already wrong before the rollout touched anything.
    #[serde(default)]
    pub baseline: Option<crate::triggers::Baseline>,
    /// The drain's consent flags the rollout started with, used again on resume.
    #[serde(default)]
    pub drain_options: Option<stepstone_core::drain::DrainOptions>,
}

impl Journal {
    pub fn new(id: String, cluster: String, node_ops: String, plan: Plan, now: Timestamp) -> Self {
        Journal {
            api_version: API_VERSION.into(),
            kind: JOURNAL_KIND.into(),
            id,
            cluster,
            node_ops,
            plan,
            started_at: now,
            state: RolloutState::Running,
            records: Vec::new(),
            holds: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            versions_before: BTreeMap::new(),
            versions_after: BTreeMap::new(),
            drained: BTreeSet::new(),
            previous: BTreeMap::new(),
            baseline: None,
            drain_options: None,
        }
    }

    pub fn record(&mut self, at: Timestamp, step: &str, phase: Phase, node: Option<&str>, message: impl Into<String>) {
        self.records.push(Record {
            at,
            step: step.to_string(),
            phase,
            node: node.map(String::from),
            message: message.into(),
            outcome: None,
        });
    }

    /// Record an outcome of `step` (phase [`Phase::Skipped`] for a skip, [`Phase::Info`] otherwise).
    pub fn record_outcome(&mut self, at: Timestamp, step: &str, message: impl Into<String>, outcome: StepOutcome) {
        let (phase, node) = match &outcome {
            StepOutcome::RolledBack { node, .. } => (Phase::Info, Some(node.clone())),
            StepOutcome::Held { .. } => (Phase::Info, None),
            StepOutcome::Skipped => (Phase::Skipped, None),
        };
        self.records.push(Record {
            at,
            step: step.to_string(),
            phase,
            node,
            message: message.into(),
            outcome: Some(outcome),
        });
    }

    /// Every rollback of this rollout, oldest first, with the step it happened in.
    pub fn rollbacks(&self) -> impl Iterator<Item = (&Record, &StepOutcome)> {
        self.records
            .iter()
            .filter_map(|r| r.outcome.as_ref().filter(|o| matches!(o, StepOutcome::RolledBack { .. })).map(|o| (r, o)))
    }

    /// Whether `step` finished (done or skipped) in some run.
    pub fn finished(&self, step: &str) -> bool {
        self.records.iter().any(|r| r.step == step && matches!(r.phase, Phase::Done | Phase::Skipped))
    }

    /// When `step` was first started, if it was.
    pub fn started_at(&self, step: &str) -> Option<Timestamp> {
        self.records.iter().find(|r| r.step == step && r.phase == Phase::Started).map(|r| r.at)
    }

    pub fn drain_key(node: &str, version: &str) -> String {
        format!("{node}@{version}")
    }

    /// How many drains completed per node, over the whole journal.
    pub fn drains_per_node(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for key in &self.drained {
            if let Some((node, _)) = key.rsplit_once('@') {
                *out.entry(node.to_string()).or_insert(0) += 1;
            }
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the journal serialises")
    }

    pub fn from_json(origin: &str, text: &str) -> Result<Journal, JournalError> {
        let j: Journal = serde_json::from_str(text)
            .map_err(|e| JournalError::Parse { origin: origin.to_string(), detail: e.to_string() })?;
        if j.kind != JOURNAL_KIND {
            return Err(JournalError::Parse {
                origin: origin.to_string(),
                detail: format!("kind is '{}', expected {JOURNAL_KIND}", j.kind),
            });
        }
        Ok(j)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "rollout journal {origin}: {detail}; it was not written by `stepstone rollout`, or is damaged: move it away and use the cluster's copy (ConfigMap kube-system/stepstone-rollout)"
    )]
    Parse { origin: String, detail: String },
    #[error(
        "rollout journal {path}: {detail}; check that the directory exists and is writable, or pass --journal FILE"
    )]
    Io { path: String, detail: String },
}

/// The journal file on disk.
#[derive(Debug, Clone)]
pub struct JournalFile {
    pub path: PathBuf,
}

impl JournalFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JournalFile { path: path.into() }
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    pub fn load(&self) -> Result<Journal, JournalError> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| self.io(e))?;
        Journal::from_json(&self.path.display().to_string(), &text)
    }

    /// Write atomically: a crash leaves either the old or the new journal, never half of one.
    pub fn save(&self, journal: &Journal) -> Result<(), JournalError> {
        write_atomic(&self.path, journal.to_json().as_bytes()).map_err(|e| self.io(e))
    }

    fn io(&self, e: std::io::Error) -> JournalError {
        JournalError::Io { path: self.path.display().to_string(), detail: e.to_string() }
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory: fsync the file,
/// rename it over `path`, fsync the directory (so the rename itself survives a power cut).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "journal".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn empty_plan() -> Plan {
        serde_json::from_value(serde_json::json!({
            "cluster": "test", "from": "v1.34.6", "to": "v1.35.0",
            "policy": {"maxUnavailable": 1, "headroomPercent": 85, "canarySoakMinutes": 0,
                       "batchWaitMinutes": 0, "strategy": "lockstep"},
            "hops": [], "blockers": [], "findings": [],
            "schedule": {"start": "2026-12-01T09:00:00Z", "finish": "2026-12-01T09:00:00Z", "timeZone": "UTC",
                         "entries": [], "makespanMinutes": 0, "lowerBoundMinutes": 0, "warnings": []}
        }))
        .expect("a minimal plan")
    }

    #[test]
    fn a_saved_journal_reads_back_and_replaces_the_old_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = JournalFile::new(dir.path().join("rollout.json"));
        let now: Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
        let mut j = Journal::new("r1".into(), "lab".into(), "lab".into(), empty_plan(), now);
        j.record(now, "h1/notify", Phase::Started, None, "hop 1");
        file.save(&j).unwrap();
        j.record(now, "h1/notify", Phase::Done, None, "sent");
        j.drained.insert(Journal::drain_key("w-1", "v1.35.0"));
        file.save(&j).unwrap();
        let back = file.load().unwrap();
        assert_eq!(back, j);
        assert!(back.finished("h1/notify"));
        assert!(!back.finished("h1/etcd-snapshot"));
        assert_eq!(back.drains_per_node().get("w-1"), Some(&1));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_foreign_file_is_refused_with_the_way_out() {
        let e = Journal::from_json("x.json", r#"{"kind": "Plan"}"#).unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("ConfigMap kube-system/stepstone-rollout"), "{e}");
    }
}
