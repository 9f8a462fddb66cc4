//! How the engine moves nodes: cordon and drain, upgrade through the backend, wait Ready on the
//! target, uncordon and let the pods come back; a worker that fails is rolled back and held, a
//! control-plane node that fails halts for a person. Also the rollback triggers' reading of the
//! cluster, which decides after each move whether the rollout may go on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use stepstone_core::inventory::Inventory;
use stepstone_core::version::KubeVersion;
use stepstone_kube::drain::DrainEvent;

use crate::backend::{KubeadmStep, NodeRef};
use crate::engine::{Engine, ExecError, Flow};
use crate::events::RolloutEvent;
use crate::journal::{Journal, Phase, StepOutcome};
use crate::observe::{ClusterState, control_plane_done, nodes_to_drain, worker_upgraded};
use crate::steps::Step;
use crate::triggers::{Trigger, TriggerOptions, evaluate};

impl Engine {
    /// The nodes this rollout has moved so far (for the node and pod triggers).
    pub(crate) fn upgraded(&self, journal: &Journal) -> BTreeMap<String, bool> {
        let cps: BTreeSet<&str> =
            journal.plan.hops.iter().flat_map(|h| h.control_plane.iter().map(|c| c.node.as_str())).collect();
        journal
            .drained
            .iter()
            .filter_map(|k| k.rsplit_once('@').map(|(n, _)| n))
            .filter(|n| !journal.holds.contains_key(*n))
            .map(|n| (n.to_string(), cps.contains(n)))
            .collect()
    }

    /// Read the cluster and check the rollback triggers (while waiting).
    pub(crate) async fn check_triggers(&self, journal: &Journal) -> Result<Vec<Trigger>, ExecError> {
        let pods = self.cluster.pod_health().await?;
        let inv = self.cluster.inventory().await?;
        Ok(self.triggers(journal, &inv, &pods))
    }

    /// The rollback triggers that fire on this reading of the cluster (each one also an event).
    pub(crate) fn triggers(
        &self,
        journal: &Journal,
        inv: &Inventory,
        pods: &[crate::triggers::PodHealth],
    ) -> Vec<Trigger> {
        let not_ready: BTreeSet<String> = inv.nodes.iter().filter(|n| !n.ready).map(|n| n.name.clone()).collect();
        let baseline = journal.baseline.clone().unwrap_or_default();
        let upgraded = self.upgraded(journal);
        // Pods say since when they wait, on the wall clock like every cluster's timestamps; the
        // grace is cluster time, so against a faster lab it lasts its share of wall time.
        let opts = TriggerOptions {
            creating_grace: self.clock.real(self.config.triggers.creating_grace),
            ..self.config.triggers.clone()
        };
        let since: BTreeMap<String, jiff::Timestamp> = BTreeMap::new();
        let triggers = evaluate(&baseline, pods, &not_ready, &upgraded, &since, self.clock.now(), &opts);
        for t in &triggers {
            self.emit(RolloutEvent::Trigger { message: t.message() });
        }
        triggers
    }

    /// Cordon and drain, upgrade, wait Ready on the target, uncordon; workers that fail are
    /// rolled back and held, a control-plane node that fails halts for a person.
    pub(crate) async fn move_nodes(
        &self,
        journal: &mut Journal,
        step: &Step,
        (state, inv): (&ClusterState, &Inventory),
        nodes: &[String],
        target: &KubeVersion,
        control_plane: Option<KubeadmStep>,
    ) -> Result<Flow, ExecError> {
        for n in nodes {
            if inv.node(n).is_none() {
                return Ok(Flow::Halt {
                    reason: format!("node {n} of the plan is not in the cluster"),
                    next: "make a new plan with `stepstone plan`".into(),
                });
            }
        }
        let todo: Vec<String> = nodes
            .iter()
            .filter(|n| match control_plane {
                Some(_) => !control_plane_done(state, n, target),
                None => !crate::observe::worker_done(state, n, target),
            })
            .cloned()
            .collect();
        // Drain what still needs it (once per move, even across crashes).
        let to_drain = nodes_to_drain(state, journal, &todo, target);
        if !to_drain.is_empty() {
            let mut config = self.config.drain.clone();
            config.timeout = self.clock.real(config.timeout).max(Duration::from_secs(30));
            let sink = self.sink.clone();
            let drain_sink = move |e: &DrainEvent| {
                if matches!(e, DrainEvent::Cordoned { .. } | DrainEvent::Stopped { .. } | DrainEvent::Drained { .. }) {
                    sink(&RolloutEvent::Node { node: e.node().unwrap_or("").to_string(), message: e.message() });
                }
            };
            let report = self.cluster.drain(&to_drain, &config, &drain_sink).await?;
            if !report.succeeded() {
                return Ok(Flow::Halt {
                    reason: format!("drain of {} stopped short:\n{}", to_drain.join(", "), report.render()),
                    next: "apply the fix named above (the nodes stay cordoned), then `stepstone rollout resume`".into(),
                });
            }
            for n in &to_drain {
                journal.drained.insert(Journal::drain_key(n, &target.canonical()));
                journal.record(self.clock.now(), &step.id, Phase::Info, Some(n), "drained");
            }
            self.save(journal).await?;
        }
        // Upgrade every node not yet on the target, the nodes of a batch at once.
        let upgrades: Vec<&String> = todo.iter().filter(|n| !worker_upgraded(state, n, target)).collect();
        for n in &upgrades {
            if let Some(node) = state.node(n) {
                journal.previous.insert(n.to_string(), node.kubelet.clone());
            }
            journal.record(
                self.clock.now(),
                &step.id,
                Phase::Info,
                Some(n),
                format!("upgrading to {}", target.canonical()),
            );
        }
        self.save(journal).await?;
        let kubeadm = control_plane.unwrap_or(KubeadmStep::Node);
        let results = futures::future::join_all(upgrades.iter().map(|n| {
            let node = node_ref(inv.node(n).expect("checked above"));
            async move {
                let ran = self.backend.upgrade(&node, target, kubeadm).await;
                let ready = match &ran {
                    Ok(_) => {
                        self.wait_node(&node.name, target, control_plane.is_some(), self.backend.ready_timeout())
                            .await?
                    }
                    Err(_) => false,
                };
                Ok::<_, ExecError>((node, ran, ready))
            }
        }))
        .await;
        let mut failed = Vec::new();
        for r in results {
            let (node, ran, ready) = r?;
            match ran {
                Ok(lines) if ready => {
                    self.emit(RolloutEvent::Node {
                        node: node.name.clone(),
                        message: format!("{} ({})", target.canonical(), lines.join("; ")),
                    });
                }
                Ok(_) => failed.push((node, format!("did not come back Ready on {} in time", target.canonical()))),
                Err(e) => failed.push((node, e.to_string())),
            }
        }
        if let Some((node, why)) = failed.first().filter(|_| control_plane.is_some()) {
            let t = Trigger::ControlPlaneNotRejoined { node: node.name.clone() };
            self.emit(RolloutEvent::Trigger { message: t.message() });
            self.cluster.node_event(&node.name, true, "RolloutHalted", why).await.ok();
            return Ok(Flow::Halt {
                reason: format!("control-plane node {}: {why}", node.name),
                next: "the control plane and etcd are never rolled back automatically: follow this hop's phase of the rollback runbook (`stepstone runbook --rollback`), then `stepstone rollout resume`".into(),
            });
        }
        let failed_names: BTreeSet<String> = failed.iter().map(|(n, _)| n.name.clone()).collect();
        for (node, why) in &failed {
            self.roll_back(journal, step, node, target, why).await?;
        }
        // Uncordon the nodes that made it and let their pods come back.
        for n in todo.iter().filter(|n| !failed_names.contains(*n)) {
            self.cluster.uncordon(n).await?;
            let msg = format!("upgraded to {} by stepstone rollout", target.canonical());
            self.cluster.node_event(n, false, "RolloutNodeUpgraded", &msg).await.ok();
            journal.record(self.clock.now(), &step.id, Phase::Info, Some(n), "uncordoned");
        }
        self.save(journal).await?;
        if !failed.is_empty() {
            let (node, why) = &failed[0];
            return Ok(Flow::Halt {
                reason: format!("{} failed on {}: {why}", step.describe(), node.name),
                next: "fix the node (the reason is an Event on it and in the report), then `stepstone rollout resume`"
                    .into(),
            });
        }
        // The rollback triggers look at the next step's observation of the cluster.
        self.wait_pods_back(journal.baseline.as_ref().map_or(0, |b| b.unscheduled)).await?;
        Ok(Flow::Continue)
    }

    /// Poll a node until it reports `target` and Ready (and, on the control plane, its
    /// apiserver runs `target`), or `timeout` (real time) passes.
    pub(crate) async fn wait_node(
        &self,
        node: &str,
        target: &KubeVersion,
        control_plane: bool,
        timeout: Duration,
    ) -> Result<bool, ExecError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let s = self.cluster.node_status(node).await?;
            let on_target = s.kubelet.parse::<KubeVersion>().is_ok_and(|v| v >= *target);
            let apiserver_ok = !control_plane
                || self
                    .cluster
                    .component_pods("kube-apiserver")
                    .await?
                    .iter()
                    .filter(|p| p.node == node)
                    .all(|p| p.ready && p.tag.parse::<KubeVersion>().is_ok_and(|v| v >= *target));
            if on_target && s.ready && apiserver_ok {
                return Ok(true);
            }
            if tokio::time::Instant::now() > deadline {
                return Ok(false);
            }
            self.clock.sleep(self.config.poll).await;
        }
    }

    /// A worker that failed: packages back, kubelet restart, Ready on the old version, left
    /// cordoned with the reason as an Event, held in the journal.
    pub(crate) async fn roll_back(
        &self,
        journal: &mut Journal,
        step: &Step,
        node: &NodeRef,
        target: &KubeVersion,
        why: &str,
    ) -> Result<(), ExecError> {
        let kubelet_log = self.backend.kubelet_logs(node).await.unwrap_or_default();
        let previous = journal.previous.get(&node.name).cloned();
        self.emit(RolloutEvent::Trigger {
            message: Trigger::UpgradedNodeNotReady { node: node.name.clone() }.message(),
        });
        let mut ready = false;
        if let Some(previous) = &previous {
            match self.backend.rollback(node, previous).await {
                Ok(_) => ready = self.wait_node(&node.name, previous, false, self.backend.ready_timeout()).await?,
                Err(e) => {
                    self.emit(RolloutEvent::Node { node: node.name.clone(), message: format!("rollback failed: {e}") })
                }
            }
        }
        let outcome = StepOutcome::RolledBack {
            node: node.name.clone(),
            target: target.clone(),
            previous,
            ready,
            reason: why.to_string(),
            kubelet_log: kubelet_log.clone(),
        };
        let summary = crate::report::rollback_summary(&outcome);
        self.cluster.cordon(&node.name).await?;
        self.cluster.node_event(&node.name, true, "RolloutRolledBack", &format!("{summary}; left cordoned")).await.ok();
        journal.holds.insert(node.name.clone(), summary.clone());
        journal.record_outcome(self.clock.now(), &step.id, summary.clone(), outcome);
        self.save(journal).await?;
        self.emit(RolloutEvent::RolledBack { node: node.name.clone(), reason: summary, kubelet_log });
        Ok(())
    }

    /// Roll back the upgraded workers a trigger blames (its stuck pods, its crash loops, its
    /// NotReady), as a failed upgrade is: a trigger halts, and the node it names goes back.
    pub(crate) async fn roll_back_blamed(
        &self,
        journal: &mut Journal,
        step: &Step,
        t: &Trigger,
    ) -> Result<(), ExecError> {
        let upgraded = self.upgraded(journal);
        let blamed: Vec<String> = t.workers().into_iter().filter(|n| upgraded.get(n) == Some(&false)).collect();
        if blamed.is_empty() {
            return Ok(());
        }
        let inv = self.cluster.inventory().await?;
        let target = journal.plan.hops.get(step.hop).map(|h| h.to.clone());
        for name in blamed {
            let (Some(node), Some(target)) = (inv.node(&name), &target) else { continue };
            self.roll_back(journal, step, &node_ref(node), target, &t.message()).await?;
        }
        Ok(())
    }

    /// Evicted pods scheduled again (no more unscheduled pods than before the rollout), or the
    /// timeout passed (then the trigger checks decide).
    pub(crate) async fn wait_pods_back(&self, baseline_unscheduled: usize) -> Result<(), ExecError> {
        let deadline = tokio::time::Instant::now() + self.clock.real(self.config.pods_back_timeout);
        loop {
            let pods = self.cluster.pod_health().await?;
            let unscheduled = pods.iter().filter(|p| p.node.is_none()).count();
            if unscheduled <= baseline_unscheduled || tokio::time::Instant::now() > deadline {
                return Ok(());
            }
            self.clock.sleep(self.config.poll).await;
        }
    }
}

pub(crate) fn node_ref(n: &stepstone_core::inventory::Node) -> NodeRef {
    NodeRef {
        name: n.name.clone(),
        address: n.internal_ip.clone().filter(|a| !a.is_empty()).unwrap_or_else(|| n.name.clone()),
        os_image: n.os_image.clone(),
        control_plane: n.is_control_plane(),
    }
}
