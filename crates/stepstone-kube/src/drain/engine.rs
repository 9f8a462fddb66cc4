//! The drain loop: cordon, read what the rule chain needs, classify, then evict with bounded
//! concurrency under one shared budget view, waiting on watches (never polling) for pods to go
//! and replacements to turn Ready, until every node is drained or the timeout passes.
//!
//! Every decision is delegated to the pure submodules; this file only moves data between them
//! and the API server.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod as ApiPod};
use kube::Client;
use stepstone_core::inventory::{Inventory, Pod, WorkloadKind};
use stepstone_core::object_key::{self, ObjectKey};
use stepstone_core::snapshot::{ObjectSet, SnapshotOptions};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::budget::{BudgetView, Candidate, PodHealth, pick};
use super::event::{DrainEvent, EventSink, Removal};
use super::eviction::EvictionOutcome;
use super::feed::{Msg, observation, watch_budgets, watch_pods};
use super::fetch::{read_controllers, to_value, typed_item, with_retries};
use super::notify::Notifier;
use super::plan::{self, NodePlan, RuleOptions};
use super::report::{
    self, BlockingBudget, DrainReport, LeftPod, NodeOutcome, NodeReport, PendingReplacement, ScaleTarget, budget_fix,
};
use super::retry::{Next, RetryPolicy};
use super::watch::{Progress, WaitState};
use super::{DrainError, api};

/// Everything `stepstone drain` decides before talking to the cluster.
#[derive(Debug, Clone)]
pub struct DrainConfig {
    /// Stop evicting after this long; the node stays cordoned.
    pub timeout: Duration,
    /// Overrides each pod's `terminationGracePeriodSeconds` when set.
    pub grace_period: Option<i64>,
    /// Only pods matching this label selector are drained (others are left and reported).
    pub pod_selector: Option<String>,
    /// The rule chain's named overrides (emptyDir data, unmanaged pods, ...).
    pub rules: RuleOptions,
    /// DELETE instead of evicting: PodDisruptionBudgets are not consulted. Dangerous.
    pub bypass_budgets: bool,
    /// Classify and report only: no cordon, no eviction.
    pub dry_run: bool,
    /// Count a node as drained only once its evicted pods' controllers have their Ready
    /// replicas back on other nodes.
    pub wait_replacements: bool,
    /// Evictions in flight at once, for the whole batch.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Post Kubernetes Events on the nodes.
    pub node_events: bool,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            timeout: Duration::from_secs(300),
            grace_period: None,
            pod_selector: None,
            rules: RuleOptions::default(),
            bypass_budgets: false,
            dry_run: false,
            wait_replacements: true,
            concurrency: 32,
            retry: RetryPolicy::default(),
            node_events: true,
        }
    }
}

/// Cordon and drain `nodes` as one batch.
pub async fn drain(
    client: &Client,
    nodes: &[String],
    config: &DrainConfig,
    sink: &dyn EventSink,
) -> Result<DrainReport, DrainError> {
    let start = Instant::now();
    let deadline = start + config.timeout;
    let nodes: Vec<String> = nodes.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    let notifier = Notifier::new(client.clone(), config.node_events && !config.dry_run, sink);

    // Nodes first: a typo in a batch must not leave the other nodes cordoned.
    let mut node_objects: BTreeMap<String, Node> = BTreeMap::new();
    if config.dry_run || nodes.len() > 1 {
        for n in &nodes {
            node_objects.insert(n.clone(), with_retries(&config.retry, || api::get_node(client, n)).await?);
        }
    }
    if !config.dry_run {
        for n in &nodes {
            node_objects
                .insert(n.clone(), with_retries(&config.retry, || api::set_unschedulable(client, n, true)).await?);
            notifier.node_uid(n, node_objects[n].metadata.uid.clone());
            notifier.emit(&DrainEvent::Cordoned { node: n.clone() });
        }
    }

    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut watches = JoinSet::new();
    watches.spawn(watch_budgets(client.clone(), tx.clone()));

    // What the rule chain reads: the nodes, their pods, the owners of those pods, the budgets.
    let mut pods_by_node = BTreeMap::new();
    for n in &nodes {
        let pods = with_retries(&config.retry, || api::pods_on(client, n, config.pod_selector.as_deref())).await?;
        pods_by_node.insert(n.clone(), pods);
    }
    let all_pods: Vec<&ApiPod> = pods_by_node.values().flatten().collect();
    let controllers = with_retries(&config.retry, || read_controllers(client, &all_pods)).await?;
    let budgets = loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Msg::BudgetsListed(b))) => break b,
            Ok(Some(Msg::WatchFailed(e))) => tracing::warn!("listing PodDisruptionBudgets: {e}"),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return Err(DrainError::Stalled {
                    what: "the PodDisruptionBudget list never arrived before the timeout".into(),
                });
            }
        }
    };

    let mut set = ObjectSet::default();
    for n in node_objects.values() {
        set.objects.push(("api".into(), to_value(n)?));
    }
    for p in &all_pods {
        set.objects.push(("api".into(), typed_item(to_value(*p)?, "v1", "Pod")));
    }
    for c in controllers {
        set.objects.push(("api".into(), c));
    }
    let mut view = BudgetView::default();
    for b in budgets {
        set.objects.push(("api".into(), b.raw.clone()));
        view.update(b.live);
    }
    let inventory = set
        .into_inventory("cluster", &SnapshotOptions::default())
        .map_err(|e| DrainError::Inventory { message: e.to_string() })?;

    let mut plans = Vec::new();
    for n in &nodes {
        let plan = plan::plan_node(&inventory, n, &config.rules, config.bypass_budgets, &view);
        for w in &plan.warnings {
            notifier.emit(&DrainEvent::Warning { node: Some(n.clone()), message: w.clone() });
        }
        notifier.emit(&plan.classified_event());
        plans.push(plan);
    }

    if config.dry_run {
        drop(watches);
        let reports = plans.iter().map(|p| report::dry_run_report(p, &inventory, &mut view.clone())).collect();
        return Ok(DrainReport { dry_run: true, nodes: reports });
    }

    let mut reports: BTreeMap<String, NodeReport> = BTreeMap::new();
    let mut runnable = Vec::new();
    for plan in plans {
        if plan.blockers.is_empty() {
            runnable.push(plan);
        } else {
            let reason = format!("{} blocker(s) found before any eviction", plan.blockers.len());
            notifier.emit(&DrainEvent::Stopped { node: plan.node.clone(), reason });
            reports.insert(plan.node.clone(), report::blocked_report(&plan, start.elapsed()));
        }
    }

    let mut run = Run::new(client, config, &inventory, &nodes, runnable, view, tx.clone(), &notifier, start);
    for ns in run.wait.namespaces() {
        watches.spawn(watch_pods(client.clone(), ns, tx.clone()));
    }
    drop(tx);
    run.drive(&mut rx, deadline).await;
    for r in run.into_reports() {
        reports.insert(r.node.clone(), r);
    }
    drop(watches);
    notifier.flush().await;
    Ok(DrainReport { dry_run: false, nodes: reports.into_values().collect() })
}

/// Clear `spec.unschedulable` on each node.
pub async fn uncordon(
    client: &Client,
    nodes: &[String],
    node_events: bool,
    sink: &dyn EventSink,
) -> Result<(), DrainError> {
    let notifier = Notifier::new(client.clone(), node_events, sink);
    let policy = RetryPolicy::default();
    for n in nodes {
        let node = with_retries(&policy, || api::set_unschedulable(client, n, false)).await?;
        notifier.node_uid(n, node.metadata.uid.clone());
        notifier.emit(&DrainEvent::Uncordoned { node: n.clone() });
    }
    notifier.flush().await;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Waiting,
    InFlight,
    /// The server accepted the eviction (or the pod was already gone).
    Accepted,
    Failed(String),
}

/// One pod to remove.
struct Target {
    node: String,
    pod: Pod,
    removal: Removal,
    pdbs: Vec<ObjectKey>,
    health: PodHealth,
    state: State,
    due_ms: u64,
    attempts: u32,
    /// The budget holding it back and its numbers, as last seen.
    hold: Option<HeldBy>,
    hold_emitted_ms: Option<u64>,
    throttled: bool,
    /// Server errors answered to its evictions in a row, and those retried in all.
    server_errors_in_a_row: u32,
    server_errors_retried: u32,
}

/// The budget holding a pod back (`None` when the server refused without naming one and the pod
/// has no known budget), with its required and healthy counts when known.
type HeldBy = (Option<ObjectKey>, Option<i64>, Option<i64>);

fn budget_label(pdb: &Option<ObjectKey>) -> String {
    pdb.as_ref().map_or_else(|| "(unnamed)".to_string(), ToString::to_string)
}

struct Run<'a> {
    client: &'a Client,
    config: &'a DrainConfig,
    inventory: &'a Inventory,
    notifier: &'a Notifier<'a>,
    start: Instant,
    targets: Vec<Target>,
    /// Nodes being drained here, with their plans.
    plans: BTreeMap<String, NodePlan>,
    finished: BTreeMap<String, (NodeOutcome, u64)>,
    view: BudgetView,
    budgets_current: bool,
    wait: WaitState,
    tx: mpsc::UnboundedSender<Msg>,
    requests: JoinSet<()>,
}

impl<'a> Run<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        client: &'a Client,
        config: &'a DrainConfig,
        inventory: &'a Inventory,
        batch: &[String],
        plans: Vec<NodePlan>,
        view: BudgetView,
        tx: mpsc::UnboundedSender<Msg>,
        notifier: &'a Notifier<'a>,
        start: Instant,
    ) -> Self {
        // Every node of the batch is cordoned: a replacement landing on any of them does not count.
        let mut wait = WaitState::new(batch.iter().cloned());
        let mut targets = Vec::new();
        for plan in &plans {
            let terminating = plan.wait.iter().map(|p| (p, None));
            let to_remove = plan.remove.iter().map(|(p, r)| (p, Some(*r)));
            for (pod, removal) in to_remove.chain(terminating) {
                let controller = if config.wait_replacements { replacement_goal(inventory, pod) } else { None };
                wait.expect_removal(
                    &plan.node,
                    &observation(pod),
                    controller.as_ref().map(|(uid, label)| (uid.as_str(), label.as_str())),
                );
                let pdbs = match removal {
                    Some(Removal::Eviction) => inventory.pdbs_for(pod).map(|b| b.key()).collect(),
                    // DELETE does not consult budgets; terminating pods need nothing sent.
                    Some(Removal::Delete) | None => Vec::new(),
                };
                targets.push(Target {
                    node: plan.node.clone(),
                    pod: pod.clone(),
                    removal: removal.unwrap_or(Removal::Eviction),
                    pdbs,
                    health: PodHealth::of(pod),
                    // A terminating pod is on its way out already: only its going is awaited.
                    state: if removal.is_some() { State::Waiting } else { State::Accepted },
                    due_ms: 0,
                    attempts: 0,
                    hold: None,
                    hold_emitted_ms: None,
                    throttled: false,
                    server_errors_in_a_row: 0,
                    server_errors_retried: 0,
                });
            }
        }
        Run {
            client,
            config,
            inventory,
            notifier,
            start,
            targets,
            plans: plans.into_iter().map(|p| (p.node.clone(), p)).collect(),
            finished: BTreeMap::new(),
            view,
            budgets_current: true,
            wait,
            tx,
            requests: JoinSet::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    async fn drive(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>, deadline: Instant) {
        loop {
            self.dispatch();
            self.check_nodes();
            if self.finished.len() == self.plans.len() {
                break;
            }
            let wake = self.next_wake().min(deadline);
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m),
                    None => tokio::time::sleep_until(wake).await,
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        // Stop evicting; collect the answers already on their way so the report is exact.
        let grace = Instant::now() + Duration::from_secs(2);
        while self.targets.iter().any(|t| t.state == State::InFlight) {
            match tokio::time::timeout_at(grace, rx.recv()).await {
                Ok(Some(m @ Msg::Answer { .. })) => self.handle(m),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.requests.abort_all();
        let elapsed = self.now_ms();
        let unfinished: Vec<String> = self.plans.keys().filter(|n| !self.finished.contains_key(*n)).cloned().collect();
        for node in unfinished {
            let left = self.left_on(&node).len();
            self.notifier.emit(&DrainEvent::Timeout { node: node.clone(), left });
            self.finished.insert(node, (NodeOutcome::TimedOut, elapsed));
        }
    }

    /// Send what the budget view lets through, up to the concurrency bound.
    fn dispatch(&mut self) {
        if !self.wait.ready_to_evict() || !self.budgets_current {
            return;
        }
        let in_flight = self.targets.iter().filter(|t| t.state == State::InFlight).count();
        let slots = self.config.concurrency.max(1).saturating_sub(in_flight);
        let waiting: Vec<usize> =
            (0..self.targets.len()).filter(|i| self.targets[*i].state == State::Waiting).collect();
        if waiting.is_empty() {
            return;
        }
        let candidates: Vec<Candidate> = waiting
            .iter()
            .map(|i| {
                let t = &self.targets[*i];
                Candidate { pdbs: t.pdbs.clone(), health: t.health, due_ms: t.due_ms }
            })
            .collect();
        let now = self.now_ms();
        let decision = pick(&candidates, &mut self.view, slots, now, self.config.retry.budget_interval);
        for (j, hold) in decision.held {
            let i = waiting[j];
            let key = (Some(hold.pdb.clone()), Some(hold.needs), Some(hold.has));
            self.note_hold(i, key, self.config.retry.budget_interval, false);
        }
        for j in decision.send {
            let i = waiting[j];
            self.send(i);
        }
    }

    fn send(&mut self, i: usize) {
        let t = &mut self.targets[i];
        t.state = State::InFlight;
        t.attempts += 1;
        let event =
            DrainEvent::Evicting { node: t.node.clone(), pod: t.pod.key(), attempt: t.attempts, removal: t.removal };
        let (client, ns, name, uid) =
            (self.client.clone(), t.pod.namespace.clone(), t.pod.name.clone(), t.pod.uid.clone());
        let grace = self.config.grace_period;
        let removal = t.removal;
        let tx = self.tx.clone();
        self.requests.spawn(async move {
            let outcome = match removal {
                Removal::Eviction => api::evict(&client, &ns, &name, &uid, grace).await,
                Removal::Delete => api::delete(&client, &ns, &name, &uid, grace).await,
            };
            let _ = tx.send(Msg::Answer { target: i, outcome });
        });
        self.notifier.emit(&event);
    }

    /// Report a budget hold: on change, and again every few intervals so a long wait is never
    /// silent.
    /// A refusal from the server is always reported (one per retry interval, as kubectl does);
    /// a hold by the budget view only when it changes or has been quiet for a while.
    fn note_hold(&mut self, i: usize, hold: HeldBy, retry_in: Duration, refused: bool) {
        let now = self.now_ms();
        let heartbeat = self.config.retry.budget_interval.as_millis() as u64 * 6;
        let interval = self.config.retry.budget_interval.as_millis() as u64;
        let t = &mut self.targets[i];
        let since = t.hold_emitted_ms.map(|at| now.saturating_sub(at));
        // A new budget or requirement is news at once; the healthy count flickers while the
        // server and its disruption controller catch up, so its changes wait an interval.
        let new_budget = t.hold.as_ref().is_none_or(|h| h.0 != hold.0 || h.1 != hold.1);
        let new_count = t.hold.as_ref() != Some(&hold) && since.is_none_or(|s| s >= interval);
        let stale = since.is_none_or(|s| s >= heartbeat);
        t.hold = Some(hold.clone());
        if refused || new_budget || new_count || stale {
            t.hold_emitted_ms = Some(now);
            let event = DrainEvent::Blocked {
                node: t.node.clone(),
                pod: t.pod.key(),
                pdb: budget_label(&hold.0),
                needs: hold.1,
                has: hold.2,
                retry_in_ms: retry_in.as_millis() as u64,
            };
            self.notifier.emit(&event);
        }
    }

    fn handle(&mut self, msg: Msg) {
        let progress = match msg {
            Msg::BudgetsListed(list) => {
                self.view = BudgetView::default();
                for b in list {
                    self.view.update(b.live);
                }
                self.budgets_current = true;
                Vec::new()
            }
            Msg::Budget(b) => {
                self.view.update(b);
                Vec::new()
            }
            Msg::BudgetGone(key) => {
                self.view.remove(&key);
                Vec::new()
            }
            Msg::PodsListed(ns, pods) => self.wait.relist(&ns, pods),
            Msg::PodApplied(p) => self.wait.apply(p),
            Msg::PodDeleted(uid) => self.wait.delete(&uid),
            Msg::WatchFailed(e) => {
                tracing::warn!("watch: {e}");
                Vec::new()
            }
            Msg::Answer { target, outcome } => self.answer(target, outcome),
        };
        self.progress(progress);
    }

    fn answer(&mut self, i: usize, outcome: EvictionOutcome) -> Vec<Progress> {
        let now = self.now_ms();
        tracing::debug!(pod = %self.targets[i].pod.key(), ?outcome, "eviction answer");
        let accepted = outcome == EvictionOutcome::Accepted;
        let (pdbs, health) = (self.targets[i].pdbs.clone(), self.targets[i].health);
        self.view.settle(&pdbs, accepted, health, now);
        let t = &mut self.targets[i];
        if matches!(outcome, EvictionOutcome::ServerError { .. }) {
            t.server_errors_in_a_row += 1;
        } else {
            t.server_errors_in_a_row = 0;
        }
        let attempt = match outcome {
            EvictionOutcome::Throttled { .. } if t.throttled => t.attempts,
            EvictionOutcome::ServerError { .. } => t.server_errors_in_a_row,
            _ => 1,
        };
        let next = self.config.retry.after(&outcome, attempt);
        match (&outcome, next) {
            (EvictionOutcome::Accepted, _) => {
                t.state = State::Accepted;
                t.hold = None;
                let event = DrainEvent::Evicted { node: t.node.clone(), pod: t.pod.key(), removal: t.removal };
                self.notifier.emit(&event);
                Vec::new()
            }
            (EvictionOutcome::Gone, _) => {
                t.state = State::Accepted;
                t.hold = None;
                let uid = t.pod.uid.clone();
                self.wait.forget(&uid)
            }
            (_, Next::RetryAfter(delay)) => {
                t.state = State::Waiting;
                t.due_ms = now + delay.as_millis() as u64;
                t.throttled = matches!(outcome, EvictionOutcome::Throttled { .. });
                match &outcome {
                    EvictionOutcome::BudgetBlocked(refusal) => {
                        let key = if refusal.pdb.is_empty() {
                            pdbs.first().cloned()
                        } else {
                            Some(ObjectKey::new(&t.pod.namespace, &refusal.pdb))
                        };
                        self.note_hold(i, (key, refusal.needs, refusal.has), delay, true);
                    }
                    EvictionOutcome::Throttled { .. } => {
                        let event = DrainEvent::Throttled {
                            node: t.node.clone(),
                            pod: t.pod.key(),
                            retry_in_ms: delay.as_millis() as u64,
                        };
                        self.notifier.emit(&event);
                    }
                    EvictionOutcome::ServerError { code, .. } => {
                        t.server_errors_retried += 1;
                        let event = DrainEvent::ServerError {
                            node: t.node.clone(),
                            pod: t.pod.key(),
                            code: *code,
                            in_a_row: t.server_errors_in_a_row,
                            cap: self.config.retry.server_error_attempts,
                            retry_in_ms: delay.as_millis() as u64,
                        };
                        self.notifier.emit(&event);
                    }
                    EvictionOutcome::NamespaceTerminating if t.attempts == 1 => {
                        let event = DrainEvent::Warning {
                            node: Some(t.node.clone()),
                            message: format!(
                                "{}: its namespace is being deleted; waiting for the pod to go with it",
                                t.pod.key()
                            ),
                        };
                        self.notifier.emit(&event);
                    }
                    _ => {}
                }
                Vec::new()
            }
            (_, _) => {
                let message = match &outcome {
                    EvictionOutcome::MultipleBudgets { message } => format!(
                        "{message} Budgets selecting it: {}. Fix: make exactly one PodDisruptionBudget select the pod",
                        object_key::join(&pdbs, ", ")
                    ),
                    EvictionOutcome::Failed { code, message } => format!("the API server answered {code}: {message}"),
                    EvictionOutcome::ServerError { code, message } => format!(
                        "the API server answered {code} to {} evictions in a row, the last: {message}. Fix: check the API server and etcd (`kubectl get --raw /readyz?verbose`), then drain again",
                        t.server_errors_in_a_row
                    ),
                    other => format!("{other:?}"),
                };
                t.state = State::Failed(message.clone());
                let event = DrainEvent::Failed { node: t.node.clone(), pod: t.pod.key(), message };
                self.notifier.emit(&event);
                Vec::new()
            }
        }
    }

    fn progress(&mut self, progress: Vec<Progress>) {
        for p in progress {
            match p {
                Progress::Gone { node, pod } => self.notifier.emit(&DrainEvent::Gone { node, pod }),
                Progress::ReplacementReady { nodes, controller, ready, target } => {
                    for node in nodes {
                        let event =
                            DrainEvent::ReplacementReady { node, controller: controller.clone(), ready, target };
                        self.notifier.emit(&event);
                    }
                }
            }
        }
    }

    fn check_nodes(&mut self) {
        let now = self.now_ms();
        let open: Vec<String> = self.plans.keys().filter(|n| !self.finished.contains_key(*n)).cloned().collect();
        for node in open {
            let mine = || self.targets.iter().filter(|t| t.node == node);
            if mine().any(|t| matches!(t.state, State::Waiting | State::InFlight)) {
                continue;
            }
            let failed = mine().any(|t| matches!(t.state, State::Failed(_)));
            // Failed pods are never gone; the node is finished once everything else settled.
            let settled = if failed {
                mine()
                    .filter(|t| t.state == State::Accepted)
                    .all(|t| !self.wait.remaining_on(&node).contains(&t.pod.key()))
            } else {
                self.wait.node_done(&node, self.config.wait_replacements)
            };
            if !settled {
                continue;
            }
            if failed {
                let reason = "some pods cannot be evicted as configured".to_string();
                self.notifier.emit(&DrainEvent::Stopped { node: node.clone(), reason });
                self.finished.insert(node, (NodeOutcome::Failed, now));
            } else {
                self.notifier.emit(&DrainEvent::Drained { node: node.clone(), elapsed_ms: now });
                self.finished.insert(node, (NodeOutcome::Drained, now));
            }
        }
    }

    fn next_wake(&self) -> Instant {
        let now = self.now_ms();
        let mut wake = now + 60_000;
        for t in self.targets.iter().filter(|t| t.state == State::Waiting) {
            let at = if t.due_ms > now {
                t.due_ms
            } else {
                // Held by the view: look again when a probe is due (watch updates wake us sooner).
                now + self.config.retry.budget_interval.as_millis() as u64
            };
            wake = wake.min(at);
        }
        self.start + Duration::from_millis(wake)
    }

    /// Pods still on `node` and why.
    fn left_on(&self, node: &str) -> Vec<LeftPod> {
        let remaining: BTreeSet<ObjectKey> = self.wait.remaining_on(node).into_iter().collect();
        let mut left = Vec::new();
        for t in self.targets.iter().filter(|t| t.node == node && remaining.contains(&t.pod.key())) {
            let reason = match (&t.state, &t.hold) {
                (State::Failed(m), _) => m.clone(),
                (State::Accepted, _) => match t.pod.termination_grace_seconds.or(self.config.grace_period) {
                    Some(g) => format!("evicted, still terminating (grace period {g}s)"),
                    None => "evicted, still terminating".to_string(),
                },
                (State::InFlight, _) => "eviction sent, no answer yet".to_string(),
                (State::Waiting, Some((pdb, needs, has))) => match (needs, has) {
                    (Some(n), Some(h)) => format!(
                        "blocked by PodDisruptionBudget {}: needs {n} healthy pods and has {h}",
                        budget_label(pdb)
                    ),
                    _ => format!("blocked by PodDisruptionBudget {}", budget_label(pdb)),
                },
                (State::Waiting, None) if t.throttled => "the API server kept throttling its eviction".to_string(),
                (State::Waiting, None) => "not evicted yet".to_string(),
            };
            left.push(LeftPod { pod: t.pod.key(), reason });
        }
        left
    }

    fn into_reports(self) -> Vec<NodeReport> {
        let mut out = Vec::new();
        for (node, plan) in &self.plans {
            let (outcome, elapsed_ms) = self.finished.get(node).cloned().unwrap_or((NodeOutcome::TimedOut, 0));
            let mine: Vec<&Target> = self.targets.iter().filter(|t| &t.node == node).collect();
            let evicted = mine.iter().filter(|t| t.state == State::Accepted).map(|t| t.pod.key()).collect();
            let left = if outcome == NodeOutcome::Drained { Vec::new() } else { self.left_on(node) };
            let mut held: BTreeMap<ObjectKey, Vec<&Target>> = BTreeMap::new();
            if outcome != NodeOutcome::Drained {
                for t in mine.iter().filter(|t| t.state == State::Waiting) {
                    if let Some((Some(pdb), _, _)) = &t.hold {
                        held.entry(pdb.clone()).or_default().push(t);
                    }
                }
            }
            let budgets = held
                .into_iter()
                .filter_map(|(key, pods)| {
                    let budget = self.view.get(&key)?.clone();
                    let scale = ScaleTarget::of(self.inventory, &pods[0].pod);
                    Some(BlockingBudget {
                        fix: budget_fix(&budget, scale.as_ref()),
                        budget,
                        pods: pods.iter().map(|t| t.pod.key()).collect(),
                    })
                })
                .collect();
            let replacements = if outcome == NodeOutcome::Drained || !self.config.wait_replacements {
                Vec::new()
            } else {
                self.wait
                    .pending_replacements(node)
                    .into_iter()
                    .map(|(controller, ready, target)| PendingReplacement { controller, ready, target })
                    .collect()
            };
            out.push(NodeReport {
                node: node.clone(),
                outcome,
                cordoned: true,
                server_errors_retried: mine.iter().map(|t| t.server_errors_retried).sum(),
                evicted,
                skipped: plan.skipped.clone(),
                blockers: Vec::new(),
                left,
                budgets,
                replacements,
                elapsed_ms,
            });
        }
        out
    }
}

/// The controller whose Ready replicas must come back, keyed by the UID the pods carry in their
/// owner reference, labelled by the object a user would scale.
fn replacement_goal(inventory: &Inventory, pod: &Pod) -> Option<(String, String)> {
    let owner = pod.owner.as_ref()?;
    let kind = WorkloadKind::from_kind(&owner.kind)?;
    if !matches!(kind, WorkloadKind::ReplicaSet | WorkloadKind::StatefulSet | WorkloadKind::ReplicationController)
        || owner.uid.is_empty()
    {
        return None;
    }
    let label = match inventory.top_controller(pod) {
        Some(w) => format!("{}/{}/{}", w.kind.short(), w.namespace, w.name),
        None => format!("{}/{}/{}", kind.short(), pod.namespace, owner.name),
    };
    Some((owner.uid.clone(), label))
}
