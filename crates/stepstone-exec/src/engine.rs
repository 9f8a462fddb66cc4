//! The rollout loop: take the lock, then again and again read the cluster, pick the first step
//! whose postcondition does not hold ([`crate::observe::next_step`]) and run it, writing the
//! journal before and after, until the plan is done, a trigger halts it, or a person pauses or
//! aborts it. Everything outside goes through the traits: [`ClusterApi`], [`NodeBackend`],
//! [`Clock`], [`Notifier`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stepstone_core::inventory::Inventory;
use stepstone_core::plan::ControlPlaneAction;
use stepstone_kube::drain::DrainConfig;

use crate::backend::{KubeadmStep, NodeBackend};
use crate::cluster::{CONTROL_KEY, ClusterApi, JOURNAL_KEY};
use crate::events::{Clock, Notifier, RolloutEvent, Sink};
use crate::journal::{Journal, JournalError, JournalFile, Phase, RolloutState, StepOutcome};
use crate::lease::Identity;
use crate::observe::{ClusterState, Decision, Observation, next_step};
use crate::steps::{Step, StepKind, WaitReason, remaining_minutes, sequence};
use crate::triggers::{Baseline, Trigger, TriggerOptions};
use moves::node_ref;

/// How the engine runs. Durations are cluster time unless said otherwise.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The etcd snapshot must be younger than this before a control-plane step.
    pub max_snapshot_age: Duration,
    pub snapshot_dir: PathBuf,
    /// The drain's settings (`timeout` in cluster time).
    pub drain: DrainConfig,
    pub triggers: TriggerOptions,
    /// Shell commands run after each hop; a non-zero exit halts.
    pub smoke: Vec<String>,
    /// Real time a Lease lives without renewal.
    pub lease_duration: Duration,
    /// How often to look again while waiting.
    pub poll: Duration,
    /// How long evicted pods may take to be scheduled again after a wave.
    pub pods_back_timeout: Duration,
    /// Where the Markdown report goes (the HTML report beside it, `.html`), at the end and at a halt.
    pub report: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_snapshot_age: Duration::from_secs(3600),
            snapshot_dir: PathBuf::from("etcd-snapshots"),
            drain: DrainConfig {
                timeout: Duration::from_secs(1800),
                wait_replacements: false,
                ..DrainConfig::default()
            },
            triggers: TriggerOptions::default(),
            smoke: Vec::new(),
            lease_duration: Duration::from_secs(60),
            poll: Duration::from_secs(5),
            pods_back_timeout: Duration::from_secs(600),
            report: None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    /// A trigger fired or a step failed: a person must look, then resume.
    Halted(String),
    Paused,
    Aborted,
}

/// Halting is not an error: it is the engine doing its job.
pub(crate) enum Flow {
    Continue,
    Halt { reason: String, next: String },
}

pub use crate::error::ExecError;
pub use crate::lease::{acquire_lock, release_lock};

mod moves;

pub struct Engine {
    pub cluster: Arc<dyn ClusterApi>,
    pub backend: Arc<dyn NodeBackend>,
    pub clock: Arc<dyn Clock>,
    pub notifier: Option<Arc<dyn Notifier>>,
    pub sink: Sink,
    pub file: JournalFile,
    pub config: EngineConfig,
    pub identity: Identity,
}

impl Engine {
    pub(crate) fn emit(&self, e: RolloutEvent) {
        (self.sink)(&e);
    }

    async fn notify(&self, text: &str) {
        if let Some(n) = &self.notifier
            && let Err(e) = n.notify(text).await
        {
            self.emit(RolloutEvent::Node { node: "webhook".into(), message: format!("not delivered: {e}") });
        }
    }

    /// Write the journal to disk and mirror it to the cluster.
    pub(crate) async fn save(&self, journal: &Journal) -> Result<(), ExecError> {
        self.file.save(journal)?;
        let data = BTreeMap::from([(JOURNAL_KEY.to_string(), Some(journal.to_json()))]);
        if let Err(e) = self.cluster.write_mirror(data).await {
            tracing::warn!("mirroring the journal to the cluster: {e}");
        }
        Ok(())
    }

    pub(crate) async fn record(
        &self,
        journal: &mut Journal,
        step: &str,
        phase: Phase,
        node: Option<&str>,
        message: &str,
    ) -> Result<(), ExecError> {
        journal.record(self.clock.now(), step, phase, node, message);
        self.save(journal).await
    }

    /// Run (or continue) the rollout in `journal` until it completes, halts, or is paused or
    /// aborted.
    pub async fn run(&self, journal: &mut Journal, resumed: bool) -> Result<Outcome, ExecError> {
        acquire_lock(&*self.cluster, &self.identity, self.config.lease_duration, &*self.clock, &self.sink).await?;
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = crate::lease::spawn_renewal(
            self.cluster.clone(),
            self.clock.clone(),
            self.identity.clone(),
            self.config.lease_duration,
            lost.clone(),
        );
        let outcome = match self.run_locked(journal, resumed, &lost).await {
            // The API server failed through every retry: stop as a halt does (the journal says
            // why, the report says what ran), so nobody finds nodes cordoned and no word why.
            Err(ExecError::Cluster(e)) => {
                let reason = format!("stopped on an API error: {e}");
                self.halt(journal, &reason, "when the API server is healthy again, `stepstone rollout resume`").await?;
                Err(ExecError::Cluster(e))
            }
            other => other,
        };
        renewer.abort();
        if !lost.load(Ordering::SeqCst) {
            release_lock(&*self.cluster, &self.identity, &*self.clock).await?;
        }
        outcome
    }

    async fn run_locked(&self, journal: &mut Journal, resumed: bool, lost: &AtomicBool) -> Result<Outcome, ExecError> {
        let steps = sequence(&journal.plan);
        journal.state = RolloutState::Running;
        self.cluster.write_mirror(BTreeMap::from([(CONTROL_KEY.to_string(), None)])).await.ok();
        self.emit(RolloutEvent::Started {
            rollout: journal.id.clone(),
            target: journal.plan.to.canonical(),
            node_ops: self.backend.name().into(),
            steps: steps.len(),
            resumed,
        });
        // The first observation also gives the baseline of what was wrong before the rollout.
        let mut observed = None;
        if journal.baseline.is_none() {
            let obs = self.observe(true).await?;
            let not_ready = obs.inv.nodes.iter().filter(|n| !n.ready).map(|n| n.name.clone());
            journal.baseline = Some(Baseline::take(obs.pods.as_deref().unwrap_or_default(), not_ready));
            observed = Some(obs);
        }
        self.record(journal, "rollout", Phase::Started, None, if resumed { "resumed" } else { "started" }).await?;
        if !resumed {
            self.notify(&format!("stepstone: rollout {} to {} started", journal.id, journal.plan.to.canonical())).await;
        }
        let mut last_run: Option<usize> = None;
        // Whether the step that just finished moved nodes: the next observation is then also
        // the rollback triggers' check of that move.
        let mut after_move = false;
        loop {
            if lost.load(Ordering::SeqCst) {
                let holder = self.cluster.read_lease().await?.and_then(|l| l.view.holder).unwrap_or_default();
                return Err(ExecError::LockLost { holder });
            }
            if let Some(outcome) = self.control_request(journal).await? {
                return Ok(outcome);
            }
            // One read of the cluster per step: the previous step's postcondition, the trigger
            // check after a move, and this step's precondition.
            let obs = match observed.take() {
                Some(obs) => obs,
                None => self.observe(after_move).await?,
            };
            if std::mem::take(&mut after_move)
                && let Some(pods) = &obs.pods
                && let Some(t) = self.triggers(journal, &obs.inv, pods).into_iter().next()
            {
                let reason = t.message();
                if let Some(previous) = last_run.map(|i| &steps[i]) {
                    self.roll_back_blamed(journal, previous, &t).await?;
                    journal.record(self.clock.now(), &previous.id, Phase::Failed, None, &reason);
                }
                return self.halt(journal, &reason, "look, then `stepstone rollout resume`").await;
            }
            let state = &obs.state;
            let now = self.clock.now();
            let Some((index, decision)) = next_step(&steps, state, journal, now, self.config.max_snapshot_age) else {
                journal.state = RolloutState::Complete;
                self.save(journal).await?;
                return Ok(Outcome::Complete);
            };
            let step = &steps[index];
            let skipped: Vec<&Step> = steps
                .iter()
                .take(index)
                .filter(|s| !journal.finished(&s.id))
                .filter(|s| {
                    matches!(
                        s.kind,
                        StepKind::Wave { .. } | StepKind::ControlPlane { .. } | StepKind::EtcdSnapshot { .. }
                    )
                })
                .collect();
            for s in skipped {
                journal.record_outcome(now, &s.id, "postcondition holds in the cluster", StepOutcome::Skipped);
                self.emit(RolloutEvent::Skipped { step: s.id.clone(), description: s.describe() });
            }
            if let Decision::Held { nodes } = decision {
                let held: BTreeMap<String, String> =
                    nodes.iter().map(|n| (n.clone(), journal.holds.get(n).cloned().unwrap_or_default())).collect();
                let reasons: Vec<String> = held.iter().map(|(n, why)| format!("{n}: {why}")).collect();
                let reason = format!("{} is held after a rollback ({})", step.describe(), reasons.join("; "));
                journal.record_outcome(now, &step.id, reason.clone(), StepOutcome::Held { nodes: held });
                return self.halt(journal, &reason, "fix the node, then `stepstone rollout resume`").await;
            }
            if last_run == Some(index) {
                let reason = format!(
                    "{} ran, but the cluster does not show its result (nodes on the target version, Ready, uncordoned)",
                    step.describe()
                );
                return self
                    .halt(journal, &reason, "look at the nodes of this step, then `stepstone rollout resume`")
                    .await;
            }
            last_run = Some(index);
            let eta = remaining_minutes(&steps, index);
            self.emit(RolloutEvent::Step {
                step: step.id.clone(),
                description: step.describe(),
                index,
                total: steps.len(),
                eta_minutes: eta,
                eta_wall_seconds: (eta as f64 * 60.0 / self.clock.speed()) as u64,
            });
            self.record(journal, &step.id, Phase::Started, None, &step.describe()).await?;
            match self.run_step(journal, step, &obs).await? {
                Flow::Continue => {
                    after_move = matches!(step.kind, StepKind::Wave { .. } | StepKind::ControlPlane { .. });
                    self.record(journal, &step.id, Phase::Done, None, "").await?;
                    self.emit(RolloutEvent::StepDone { step: step.id.clone() });
                }
                Flow::Halt { reason, next } => {
                    journal.record(self.clock.now(), &step.id, Phase::Failed, None, &reason);
                    return self.halt(journal, &reason, &next).await;
                }
            }
        }
    }

    /// The Markdown and HTML reports of the journal as it stands, when a report path is set.
    fn write_report(&self, journal: &Journal) -> Result<Option<String>, ExecError> {
        let Some(path) = &self.config.report else { return Ok(None) };
        let (md, html) = crate::report::write(journal, path)
            .map_err(|e| JournalError::Io { path: path.display().to_string(), detail: e.to_string() })?;
        Ok(Some(format!("{} and {}", md.display(), html.display())))
    }

    pub(crate) async fn halt(&self, journal: &mut Journal, reason: &str, next: &str) -> Result<Outcome, ExecError> {
        journal.state = RolloutState::Halted { reason: reason.to_string() };
        self.save(journal).await?;
        // A person reads the report next: it says what ran and what was rolled back so far.
        if let Err(e) = self.write_report(journal) {
            tracing::warn!("writing the report at the halt: {e}");
        }
        self.emit(RolloutEvent::Halted { reason: reason.to_string(), next: next.to_string() });
        self.notify(&format!("stepstone: rollout {} HALTED: {reason}", journal.id)).await;
        Ok(Outcome::Halted(reason.to_string()))
    }

    /// A `rollout pause|abort` written into the ConfigMap.
    async fn control_request(&self, journal: &mut Journal) -> Result<Option<Outcome>, ExecError> {
        let control = self.cluster.read_mirror().await?.and_then(|d| d.get(CONTROL_KEY).cloned());
        let (state, outcome, event) = match control.as_deref().map(str::trim) {
            Some("pause") => (RolloutState::Paused, Outcome::Paused, RolloutEvent::Paused),
            Some("abort") => (RolloutState::Aborted, Outcome::Aborted, RolloutEvent::Aborted),
            _ => return Ok(None),
        };
        journal.state = state;
        journal.record(self.clock.now(), "rollout", Phase::Info, None, format!("{outcome:?} on request"));
        self.save(journal).await?;
        self.emit(event);
        Ok(Some(outcome))
    }

    /// Read the cluster once: the inventory, and the pods' health when the triggers need it.
    async fn observe(&self, with_pods: bool) -> Result<Observation, ExecError> {
        let inv = self.cluster.inventory().await?;
        let pods = if with_pods { Some(self.cluster.pod_health().await?) } else { None };
        Ok(Observation::new(inv, pods))
    }

    async fn run_step(&self, journal: &mut Journal, step: &Step, obs: &Observation) -> Result<Flow, ExecError> {
        let (state, inv) = (&obs.state, &obs.inv);
        match &step.kind {
            StepKind::Notify { message } => {
                self.notify(&format!("stepstone: rollout {}: {message}", journal.id)).await;
                Ok(Flow::Continue)
            }
            StepKind::EtcdSnapshot { node } => self.etcd_snapshot(journal, step, node, inv).await,
            StepKind::RecordVersions => {
                journal.versions_before.insert(step.hop, ClusterState::versions(inv));
                Ok(Flow::Continue)
            }
            StepKind::ControlPlane { node, action, target } => {
                let kind = match action {
                    ControlPlaneAction::Apply => KubeadmStep::Apply,
                    ControlPlaneAction::Node => KubeadmStep::Node,
                };
                self.move_nodes(journal, step, (state, inv), std::slice::from_ref(node), target, Some(kind)).await
            }
            StepKind::HealthGate => self.health_gate(inv).await,
            StepKind::Wave { nodes, target, .. } => {
                self.move_nodes(journal, step, (state, inv), nodes, target, None).await
            }
            StepKind::Wait { reason, minutes } => self.wait(journal, step, *reason, *minutes).await,
            StepKind::Smoke => self.smoke(journal, step, obs).await,
            StepKind::VersionDiff => {
                let after = ClusterState::versions(inv);
                let before = journal.versions_before.get(&step.hop).cloned().unwrap_or_default();
                let changed = crate::report::diff(&before, &after);
                self.emit(RolloutEvent::Node {
                    node: "cluster".into(),
                    message: format!("{} component versions changed", changed.len()),
                });
                journal.versions_after.insert(step.hop, after);
                let hop = &journal.plan.hops[step.hop];
                self.notify(&format!("stepstone: rollout {}: hop {} -> {} done", journal.id, hop.from, hop.to)).await;
                Ok(Flow::Continue)
            }
            StepKind::Complete => {
                journal.state = RolloutState::Complete;
                let report = self.write_report(journal)?;
                self.notify(&format!("stepstone: rollout {} to {} complete", journal.id, journal.plan.to.canonical()))
                    .await;
                self.emit(RolloutEvent::Completed { report });
                Ok(Flow::Continue)
            }
        }
    }

    async fn etcd_snapshot(
        &self,
        journal: &mut Journal,
        step: &Step,
        node: &str,
        inv: &Inventory,
    ) -> Result<Flow, ExecError> {
        let Some(n) = inv.node(node) else {
            return Ok(Flow::Halt {
                reason: format!("control-plane node {node} of the plan is not in the cluster"),
                next: "make a new plan".into(),
            });
        };
        let target = node_ref(n);
        let now = self.clock.now();
        let label = stepstone_core::etcd_backup::hop_label(step.hop);
        match self.backend.etcd_snapshot(&target, &self.config.snapshot_dir, &journal.cluster, &label, now).await {
            Ok(snap) => {
                if let Err(e) =
                    stepstone_host::etcd::freshness_gate(&snap.metadata, self.clock.now(), self.config.max_snapshot_age)
                {
                    return Ok(Flow::Halt {
                        reason: e.to_string(),
                        next: "check the clocks, then `stepstone rollout resume`".into(),
                    });
                }
                self.emit(RolloutEvent::Node {
                    node: node.into(),
                    message: format!(
                        "etcd snapshot {} ({} bytes, sha256 {})",
                        snap.path,
                        snap.metadata.size_bytes,
                        &snap.metadata.sha256[..12.min(snap.metadata.sha256.len())]
                    ),
                });
                journal.snapshots.insert(step.hop, snap);
                Ok(Flow::Continue)
            }
            Err(e) => Ok(Flow::Halt {
                reason: format!("no etcd snapshot, so no control-plane step: {e}"),
                next: "fix the snapshot (stepstone etcd backup), then `stepstone rollout resume`".into(),
            }),
        }
    }

    /// The control plane's health, first against the step's observation, then read again
    /// while waiting for it to settle.
    async fn health_gate(&self, observed: &Inventory) -> Result<Flow, ExecError> {
        let deadline = tokio::time::Instant::now() + self.clock.real(Duration::from_secs(300));
        let mut fresh = None;
        loop {
            let problems = self.health_problems(fresh.as_ref().unwrap_or(observed)).await?;
            if problems.is_empty() {
                return Ok(Flow::Continue);
            }
            if tokio::time::Instant::now() > deadline {
                return Ok(Flow::Halt {
                    reason: format!("control-plane health gate: {}", problems.join("; ")),
                    next: "the control plane is never rolled back automatically: follow this hop's phase of the rollback runbook (`stepstone runbook --rollback`) or fix it, then `stepstone rollout resume`".into(),
                });
            }
            self.clock.sleep(self.config.poll).await;
            fresh = Some(self.cluster.inventory().await?);
        }
    }

    async fn health_problems(&self, inv: &Inventory) -> Result<Vec<String>, ExecError> {
        let mut problems = Vec::new();
        if let Err(e) = self.cluster.readyz().await {
            problems.push(format!("apiserver /readyz: {}", e.trim()));
        }
        for component in ["kube-controller-manager", "kube-scheduler"] {
            for pod in self.cluster.component_pods(component).await? {
                if !pod.ready {
                    problems.push(format!("{component} on {} is not Ready", pod.node));
                }
            }
        }
        for n in inv.control_plane_nodes().filter(|n| !n.ready) {
            problems.push(format!("control-plane node {} is NotReady", n.name));
        }
        Ok(problems)
    }

    async fn wait(
        &self,
        journal: &mut Journal,
        step: &Step,
        reason: WaitReason,
        minutes: u32,
    ) -> Result<Flow, ExecError> {
        let started = journal.started_at(&step.id).unwrap_or_else(|| self.clock.now());
        let total = self.clock.real(Duration::from_secs(u64::from(minutes) * 60));
        let what = match reason {
            WaitReason::Soak => "soak",
            WaitReason::BatchWait => "batch wait",
        };
        loop {
            if let Some(t) = self.check_triggers(journal).await?.into_iter().next() {
                self.roll_back_blamed(journal, step, &t).await?;
                return Ok(Flow::Halt {
                    reason: format!("during the {what}: {}", t.message()),
                    next: "look, then `stepstone rollout resume`".into(),
                });
            }
            let elapsed = started.duration_until(self.clock.now()).unsigned_abs();
            if elapsed >= total {
                return Ok(Flow::Continue);
            }
            let left = total - elapsed;
            tokio::time::sleep(left.min(self.clock.real(self.config.poll))).await;
        }
    }

    async fn smoke(&self, journal: &mut Journal, step: &Step, obs: &Observation) -> Result<Flow, ExecError> {
        let pods = match &obs.pods {
            Some(pods) => pods.clone(),
            None => self.cluster.pod_health().await?,
        };
        if let Some(t) = self.triggers(journal, &obs.inv, &pods).into_iter().next() {
            self.roll_back_blamed(journal, step, &t).await?;
            return Ok(Flow::Halt { reason: t.message(), next: "look, then `stepstone rollout resume`".into() });
        }
        for command in &self.config.smoke {
            let out = tokio::process::Command::new("sh").arg("-c").arg(command).output().await;
            let (status, output) = match out {
                Ok(o) => (
                    o.status.code(),
                    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
                ),
                Err(e) => (None, e.to_string()),
            };
            if status != Some(0) {
                let t = Trigger::Smoke { command: command.clone(), status, output };
                self.emit(RolloutEvent::Trigger { message: t.message() });
                return Ok(Flow::Halt {
                    reason: t.message(),
                    next: "fix what the smoke command found, then `stepstone rollout resume`".into(),
                });
            }
        }
        Ok(Flow::Continue)
    }
}
