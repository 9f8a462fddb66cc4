//! The version skew policy as data: which component versions may run together, checked on the
//! cluster as it is or on a hypothetical control-plane version.
//!
//! Every rule of <https://kubernetes.io/releases/version-skew-policy/> is one row of [`RULES`].
//! A row names the component it judges, the versions it is compared with, the allowed window and
//! the finding code it raises, so adding or changing a rule never touches the evaluator.
//!
//! Which kube-apiserver a component talks to matters. kubeadm (since 1.19,
//! kubernetes/kubernetes#94398) points each control-plane node's kube-controller-manager and
//! kube-scheduler at the apiserver on the same node, and since KEP-4471 (kubeadm 1.31 alpha,
//! 1.33 beta) the control-plane kubelet as well; workers and kube-proxy reach the apiservers
//! through the control-plane endpoint, so the oldest apiserver bounds them. [`Topology`] makes
//! this a setting.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::findings::{self, Finding, Severity};
use crate::inventory::{Component, Inventory};
use crate::releases::ReleaseData;
use crate::version::{KubeVersion, Minor};

/// Which kube-apiserver the control-plane components reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// kubeadm's layout: controller-manager, scheduler (and, with KEP-4471, the kubelet) of a
    /// control-plane node use the apiserver on the same node; everything else goes through the
    /// control-plane endpoint.
    #[default]
    Kubeadm,
    /// Every component reaches the apiservers through a load balancer, so the oldest apiserver
    /// bounds all of them.
    LoadBalanced,
}

/// The parts of a cluster whose versions the policy constrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    KubeApiserver,
    KubeControllerManager,
    KubeScheduler,
    Kubelet,
    KubeProxy,
    Kubectl,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::KubeApiserver => "kube-apiserver",
            Part::KubeControllerManager => "kube-controller-manager",
            Part::KubeScheduler => "kube-scheduler",
            Part::Kubelet => "kubelet",
            Part::KubeProxy => "kube-proxy",
            Part::Kubectl => "kubectl",
        }
    }

    /// Parts that `kubeadm upgrade apply|node` moves on a control-plane node.
    pub fn is_control_plane(self) -> bool {
        matches!(self, Part::KubeApiserver | Part::KubeControllerManager | Part::KubeScheduler)
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One running thing with a version: a static pod, a kubelet, a kube-proxy pod, the kubectl
/// client (node empty).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub part: Part,
    pub node: String,
    pub version: KubeVersion,
}

impl Instance {
    pub fn new(part: Part, node: impl Into<String>, version: KubeVersion) -> Self {
        Instance { part, node: node.into(), version }
    }

    /// How findings name this instance: the node for a kubelet (the node is what gets upgraded),
    /// `part/node` for the others, `kubectl` for the client.
    pub fn subject(&self) -> String {
        match self.part {
            Part::Kubelet => self.node.clone(),
            Part::Kubectl => "kubectl".to_string(),
            p if self.node.is_empty() => p.as_str().to_string(),
            p => format!("{}/{}", p.as_str(), self.node),
        }
    }

    fn describe(&self) -> String {
        if self.node.is_empty() || self.part == Part::Kubectl {
            format!("{} {}", self.part, self.version)
        } else {
            format!("{} {} on {}", self.part, self.version, self.node)
        }
    }
}

/// The versions the checker judges: every instance, plus which nodes are control-plane nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionState {
    pub instances: Vec<Instance>,
    pub control_plane_nodes: BTreeSet<String>,
}

impl VersionState {
    /// Read the versions from an inventory: static pods for the control plane (or `/version`
    /// when the snapshot has no kube-system pods), node kubelets, kube-proxy pods.
    pub fn from_inventory(inv: &Inventory) -> Self {
        let mut instances = Vec::new();
        for c in &inv.components {
            let part = match c.component {
                Component::KubeApiserver => Part::KubeApiserver,
                Component::KubeControllerManager => Part::KubeControllerManager,
                Component::KubeScheduler => Part::KubeScheduler,
                Component::KubeProxy => Part::KubeProxy,
                Component::Etcd => continue,
            };
            if let Some(v) = c.version() {
                instances.push(Instance::new(part, c.node.clone(), v));
            }
        }
        if !instances.iter().any(|i| i.part == Part::KubeApiserver)
            && let Some(v) = &inv.server_version
        {
            instances.push(Instance::new(Part::KubeApiserver, "", v.clone()));
        }
        for n in &inv.nodes {
            instances.push(Instance::new(Part::Kubelet, n.name.clone(), n.kubelet_version.clone()));
        }
        let control_plane_nodes = inv.control_plane_nodes().map(|n| n.name.clone()).collect();
        let mut state = VersionState { instances, control_plane_nodes };
        state.instances.sort();
        state
    }

    /// The state right after the control plane moved to `target` with the nodes as they are:
    /// apiservers, controller-managers and schedulers run `target`, and so does kube-proxy,
    /// which kubeadm runs as an add-on DaemonSet and upgrades together with the control plane.
    /// Kubelets keep their versions.
    pub fn with_control_plane_at(&self, target: &KubeVersion) -> Self {
        let mut out = self.clone();
        for i in &mut out.instances {
            if i.part.is_control_plane() || i.part == Part::KubeProxy {
                i.version = target.clone();
            }
        }
        if !out.instances.iter().any(|i| i.part == Part::KubeApiserver) {
            out.instances.push(Instance::new(Part::KubeApiserver, "", target.clone()));
        }
        out.instances.sort();
        out
    }

    pub fn with_kubectl(&self, kubectl: &KubeVersion) -> Self {
        let mut out = self.clone();
        out.instances.retain(|i| i.part != Part::Kubectl);
        out.instances.push(Instance::new(Part::Kubectl, "", kubectl.clone()));
        out.instances.sort();
        out
    }

    pub fn of(&self, part: Part) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(move |i| i.part == part)
    }

    /// The apiserver on `node`, if the node runs one.
    fn local_apiserver(&self, node: &str) -> Option<&Instance> {
        if node.is_empty() {
            return None;
        }
        self.of(Part::KubeApiserver).find(|a| a.node == node)
    }

    /// The oldest apiserver: what the cluster "runs".
    pub fn control_plane_version(&self) -> Option<&KubeVersion> {
        self.of(Part::KubeApiserver).map(|i| &i.version).min()
    }
}

/// Which apiservers a component can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The apiserver on the component's own node; when the node runs none (a worker), every
    /// apiserver behind the control-plane endpoint.
    SameNode,
    /// Every apiserver, through the control-plane endpoint or a load balancer.
    Endpoint,
}

/// What a rule compares an instance with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// The apiservers the instance reaches, per topology.
    Apiservers { kubeadm: Reach, load_balanced: Reach },
    /// The other apiservers of an HA control plane.
    OtherApiservers,
    /// The kubelet on the same node.
    KubeletOnSameNode,
}

/// How many minors of distance a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Minors(u32),
    /// The kubelet window from the release data: n-3 for 1.28+ control planes, n-2 before,
    /// n-2 for kubelets (and kube-proxies) older than 1.25.
    KubeletSkew,
    /// One minor less than [`Window::KubeletSkew`]: the oldest version that still survives the
    /// next control-plane upgrade.
    KubeletSkewLessOne,
}

impl Window {
    fn minors(self, data: &ReleaseData, newer: Minor, older: Minor) -> i64 {
        match self {
            Window::Minors(n) => i64::from(n),
            Window::KubeletSkew => i64::from(data.kubelet_skew_window(newer, older)),
            Window::KubeletSkewLessOne => i64::from(data.kubelet_skew_window(newer, older)) - 1,
        }
    }
}

/// The constraint a rule puts on an instance's minor relative to the reference versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Not newer than the oldest reference.
    NotNewer,
    /// At most this many minors older than the newest reference.
    OlderAtMost(Window),
    /// Within this many minors of every reference, in both directions.
    Within(Window),
}

/// One rule of the skew policy.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The finding code, e.g. `skew.kubelet-too-old`.
    pub code: &'static str,
    pub part: Part,
    pub against: Against,
    pub limit: Limit,
    pub severity: Severity,
    /// The rule in the policy's words, quoted in every finding.
    pub policy: &'static str,
    /// What to do; `{node}`, `{subject}`, `{version}` (the instance's) and `{allowed}` (the
    /// nearest allowed minor) are filled in.
    pub hint: &'static str,
    /// Skip this rule for an instance that already broke the named rule (an edge warning is
    /// pointless once the instance is out of the window).
    pub unless: Option<&'static str>,
}

const ENDPOINT: Against = Against::Apiservers { kubeadm: Reach::Endpoint, load_balanced: Reach::Endpoint };
const LOCAL_IN_KUBEADM: Against = Against::Apiservers { kubeadm: Reach::SameNode, load_balanced: Reach::Endpoint };

/// The version skew policy, one row per rule.
pub const RULES: &[Rule] = &[
    Rule {
        code: "skew.ha-apiservers",
        part: Part::KubeApiserver,
        against: Against::OtherApiservers,
        limit: Limit::OlderAtMost(Window::Minors(1)),
        severity: Severity::Error,
        policy: "in an HA control plane the newest and oldest kube-apiserver must be within 1 minor",
        hint: "upgrade {subject} to {allowed} (one minor at a time, `kubeadm upgrade node`) before any other control-plane change",
        unless: None,
    },
    Rule {
        code: "skew.controller-manager-newer",
        part: Part::KubeControllerManager,
        against: LOCAL_IN_KUBEADM,
        limit: Limit::NotNewer,
        severity: Severity::Error,
        policy: "kube-controller-manager must not be newer than the kube-apiserver it talks to",
        hint: "upgrade the kube-apiserver it talks to first, or roll the controller-manager back to {allowed}",
        unless: None,
    },
    Rule {
        code: "skew.controller-manager-too-old",
        part: Part::KubeControllerManager,
        against: LOCAL_IN_KUBEADM,
        limit: Limit::OlderAtMost(Window::Minors(1)),
        severity: Severity::Error,
        policy: "kube-controller-manager may be at most 1 minor older than the kube-apiserver it talks to",
        hint: "run `kubeadm upgrade node` on {node} to bring its static pods to {allowed} or newer",
        unless: None,
    },
    Rule {
        code: "skew.scheduler-newer",
        part: Part::KubeScheduler,
        against: LOCAL_IN_KUBEADM,
        limit: Limit::NotNewer,
        severity: Severity::Error,
        policy: "kube-scheduler must not be newer than the kube-apiserver it talks to",
        hint: "upgrade the kube-apiserver it talks to first, or roll the scheduler back to {allowed}",
        unless: None,
    },
    Rule {
        code: "skew.scheduler-too-old",
        part: Part::KubeScheduler,
        against: LOCAL_IN_KUBEADM,
        limit: Limit::OlderAtMost(Window::Minors(1)),
        severity: Severity::Error,
        policy: "kube-scheduler may be at most 1 minor older than the kube-apiserver it talks to",
        hint: "run `kubeadm upgrade node` on {node} to bring its static pods to {allowed} or newer",
        unless: None,
    },
    Rule {
        code: "skew.kubelet-newer-than-apiserver",
        part: Part::Kubelet,
        against: LOCAL_IN_KUBEADM,
        limit: Limit::NotNewer,
        severity: Severity::Error,
        policy: "the kubelet must not be newer than the kube-apiserver it talks to",
        hint: "finish the control-plane upgrade first, or downgrade the kubelet on {node} to {allowed}",
        unless: None,
    },
    Rule {
        code: "skew.kubelet-too-old",
        part: Part::Kubelet,
        against: ENDPOINT,
        limit: Limit::OlderAtMost(Window::KubeletSkew),
        severity: Severity::Error,
        policy: "the kubelet may be at most 3 minors older than kube-apiserver (2 before control plane 1.28, and for kubelets older than 1.25)",
        hint: "drain {node} and upgrade its kubelet to {allowed} or newer, one minor at a time, before the control plane moves",
        unless: None,
    },
    Rule {
        code: "skew.kubelet-at-window-edge",
        part: Part::Kubelet,
        against: ENDPOINT,
        limit: Limit::OlderAtMost(Window::KubeletSkewLessOne),
        severity: Severity::Warning,
        policy: "a kubelet at the oldest allowed minor blocks the next control-plane upgrade",
        hint: "upgrade the kubelet on {node} to {allowed} or newer before the next control-plane upgrade",
        unless: Some("skew.kubelet-too-old"),
    },
    Rule {
        code: "skew.kube-proxy-newer-than-apiserver",
        part: Part::KubeProxy,
        against: ENDPOINT,
        limit: Limit::NotNewer,
        severity: Severity::Error,
        policy: "kube-proxy must not be newer than kube-apiserver",
        hint: "set the kube-proxy DaemonSet image back to {allowed} until every apiserver is upgraded",
        unless: None,
    },
    Rule {
        code: "skew.kube-proxy-too-old",
        part: Part::KubeProxy,
        against: ENDPOINT,
        limit: Limit::OlderAtMost(Window::KubeletSkew),
        severity: Severity::Error,
        policy: "kube-proxy may be at most 3 minors older than kube-apiserver (2 for kube-proxy older than 1.25)",
        hint: "upgrade the kube-proxy DaemonSet image to {allowed} or newer",
        unless: None,
    },
    Rule {
        code: "skew.kube-proxy-vs-kubelet",
        part: Part::KubeProxy,
        against: Against::KubeletOnSameNode,
        limit: Limit::Within(Window::KubeletSkew),
        severity: Severity::Error,
        policy: "kube-proxy may be at most 3 minors older or newer than the kubelet on its node (2 for versions older than 1.25)",
        hint: "upgrade the kubelet on {node} (drain it first) so that kube-proxy {version} is within the window; the nearest kube-proxy minor the kubelet allows is {allowed}",
        unless: None,
    },
    Rule {
        code: "skew.kubectl",
        part: Part::Kubectl,
        against: ENDPOINT,
        limit: Limit::Within(Window::Minors(1)),
        severity: Severity::Warning,
        policy: "kubectl is supported within 1 minor (older or newer) of every kube-apiserver",
        hint: "use a kubectl within one minor of every kube-apiserver, the nearest being {allowed} (pkgs.k8s.io has one repository per minor)",
        unless: None,
    },
];

/// What to check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkewOptions {
    pub topology: Topology,
    /// Judge the state after the control plane moved to this version (nodes as they are).
    pub target: Option<KubeVersion>,
    pub kubectl: Option<KubeVersion>,
}

/// The result of a skew check: the versions judged and what is wrong with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkewReport {
    /// Where the inventory came from.
    pub cluster: String,
    pub topology: Topology,
    /// The hypothetical control-plane version, when one was asked for.
    pub target: Option<KubeVersion>,
    /// The oldest kube-apiserver in the judged state.
    pub control_plane: Option<KubeVersion>,
    /// Every judged instance, sorted by part then node.
    pub instances: Vec<Instance>,
    pub findings: Vec<Finding>,
}

/// Check an inventory, or the state it would reach with `opts.target`, against [`RULES`].
pub fn check(inv: &Inventory, opts: &SkewOptions, data: &ReleaseData) -> SkewReport {
    let current = VersionState::from_inventory(inv);
    let mut findings = Vec::new();
    let mut state = current.clone();
    if let Some(target) = &opts.target {
        state = state.with_control_plane_at(target);
        if let Some(from) = current.control_plane_version() {
            let hops = target.minor().minus(from.minor());
            if hops > 1 {
                findings.push(Finding::new(
                    Severity::Info,
                    "upgrade.hops",
                    "control-plane",
                    format!(
                        "reaching {target} from {from} takes {hops} control-plane upgrades: kubeadm moves one minor at a time"
                    ),
                    format!("`stepstone path --to {target}` lists the hops and the kubelets each one needs first"),
                ));
            }
        }
    }
    if let Some(k) = &opts.kubectl {
        state = state.with_kubectl(k);
    }
    findings.extend(check_state(&state, opts.topology, data));
    if state.control_plane_version().is_none() {
        findings.push(Finding::new(
            Severity::Warning,
            "skew.control-plane-unknown",
            "control-plane",
            "no kube-apiserver version found: the snapshot has no kube-system static pods and no /version",
            "include kube-system pods (`kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json`) or read the cluster with --kubeconfig",
        ));
    }
    findings::sort(&mut findings);
    SkewReport {
        cluster: inv.source.clone(),
        topology: opts.topology,
        target: opts.target.clone(),
        control_plane: state.control_plane_version().cloned(),
        instances: state.instances,
        findings,
    }
}

/// Apply every rule, then recognise a control-plane upgrade in progress. Findings are sorted.
pub fn check_state(state: &VersionState, topology: Topology, data: &ReleaseData) -> Vec<Finding> {
    let mut findings = Vec::new();
    // (code, subject) pairs already raised, for `Rule::unless`.
    let mut raised: BTreeSet<(&'static str, String)> = BTreeSet::new();
    for rule in RULES {
        for inst in state.of(rule.part) {
            if rule.unless.is_some_and(|u| raised.contains(&(u, inst.subject()))) {
                continue;
            }
            let refs = references(state, rule.against, topology, inst);
            if let Some(f) = judge(rule, inst, &refs, data) {
                raised.insert((rule.code, inst.subject()));
                findings.push(f);
            }
        }
    }
    findings.extend(upgrade_in_progress(state, topology));
    findings::sort(&mut findings);
    findings
}

fn references<'a>(state: &'a VersionState, against: Against, topology: Topology, inst: &Instance) -> Vec<&'a Instance> {
    match against {
        Against::Apiservers { kubeadm, load_balanced } => {
            let reach = match topology {
                Topology::Kubeadm => kubeadm,
                Topology::LoadBalanced => load_balanced,
            };
            match (reach, state.local_apiserver(&inst.node)) {
                (Reach::SameNode, Some(local)) => vec![local],
                _ => state.of(Part::KubeApiserver).collect(),
            }
        }
        Against::OtherApiservers => state.of(Part::KubeApiserver).filter(|a| a.node != inst.node).collect(),
        Against::KubeletOnSameNode => state.of(Part::Kubelet).filter(|k| k.node == inst.node).collect(),
    }
}

fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn judge(rule: &Rule, inst: &Instance, refs: &[&Instance], data: &ReleaseData) -> Option<Finding> {
    let oldest = refs.iter().min_by(|a, b| a.version.cmp(&b.version).then(a.node.cmp(&b.node)))?;
    let newest = refs.iter().max_by(|a, b| a.version.cmp(&b.version).then(b.node.cmp(&a.node)))?;
    let m = inst.version.minor();
    let too_new = |reference: &Instance, window: i64| m.minus(reference.version.minor()) > window;
    let too_old = |reference: &Instance, window: i64| reference.version.minor().minus(m) > window;
    let (broken, detail, allowed) = match rule.limit {
        Limit::NotNewer if too_new(oldest, 0) => {
            (true, format!("is newer than {}", oldest.describe()), format!("v{}", oldest.version.minor()))
        }
        Limit::OlderAtMost(w) => {
            let win = w.minors(data, newest.version.minor(), m);
            let behind = newest.version.minor().minus(m);
            let floor = minor_floor(newest.version.minor(), win);
            let detail = if w == Window::KubeletSkewLessOne {
                format!(
                    "is {behind} minor{} older than {}, the most the policy allows",
                    plural(behind),
                    newest.describe()
                )
            } else {
                format!("is {behind} minor{} older than {}; at most {win} allowed", plural(behind), newest.describe())
            };
            (too_old(newest, win), detail, format!("v{floor}"))
        }
        Limit::Within(w) => {
            let win_old = w.minors(data, newest.version.minor().max(m), newest.version.minor().min(m));
            let win_new = w.minors(data, oldest.version.minor().max(m), oldest.version.minor().min(m));
            if too_old(newest, win_old) {
                let behind = newest.version.minor().minus(m);
                (
                    true,
                    format!(
                        "is {behind} minor{} older than {}; at most {win_old} allowed",
                        plural(behind),
                        newest.describe()
                    ),
                    format!("v{}", minor_floor(newest.version.minor(), win_old)),
                )
            } else if too_new(oldest, win_new) {
                let ahead = m.minus(oldest.version.minor());
                (
                    true,
                    format!(
                        "is {ahead} minor{} newer than {}; at most {win_new} allowed",
                        plural(ahead),
                        oldest.describe()
                    ),
                    format!("v{}", minor_ceiling(oldest.version.minor(), win_new)),
                )
            } else {
                (false, String::new(), String::new())
            }
        }
        Limit::NotNewer => (false, String::new(), String::new()),
    };
    if !broken {
        return None;
    }
    let subject = inst.subject();
    let hint = rule
        .hint
        .replace("{node}", &inst.node)
        .replace("{subject}", &subject)
        .replace("{version}", &inst.version.to_string())
        .replace("{allowed}", &allowed);
    Some(Finding::new(
        rule.severity,
        rule.code,
        subject,
        format!("{} {detail} (policy: {})", inst.describe(), rule.policy),
        hint,
    ))
}

fn minor_floor(newest: Minor, window: i64) -> Minor {
    let minor = i64::from(newest.minor) - window.max(0);
    Minor::new(newest.major, u32::try_from(minor.max(0)).unwrap_or(0))
}

fn minor_ceiling(oldest: Minor, window: i64) -> Minor {
    let minor = i64::from(oldest.minor) + window.max(0);
    Minor::new(oldest.major, u32::try_from(minor).unwrap_or(u32::MAX))
}

/// The states kubeadm's documented procedure passes through: some control-plane nodes already
/// on N+1 while others are on N, or control-plane static pods on N+1 while the kubelets of
/// control-plane nodes are still on N. They are warnings saying what comes next, not errors.
fn upgrade_in_progress(state: &VersionState, topology: Topology) -> Vec<Finding> {
    let mut out = Vec::new();
    // Per node, the minors of its control-plane static pods.
    let mut per_node: BTreeMap<&str, BTreeSet<Minor>> = BTreeMap::new();
    for i in state.instances.iter().filter(|i| i.part.is_control_plane()) {
        per_node.entry(i.node.as_str()).or_default().insert(i.version.minor());
    }
    let minors: BTreeSet<Minor> = per_node.values().flatten().copied().collect();
    let (Some(low), Some(high)) = (minors.first().copied(), minors.last().copied()) else { return out };
    let next_node_step = |node: &str| {
        if topology == Topology::Kubeadm {
            format!("`kubeadm upgrade node` on {node}")
        } else {
            format!("upgrade the control-plane components on {node}")
        }
    };
    if high.minus(low) == 1 {
        let done: Vec<&str> = per_node.iter().filter(|(_, m)| m.iter().all(|m| *m == high)).map(|(n, _)| *n).collect();
        let pending: Vec<&str> = per_node.iter().filter(|(_, m)| m.contains(&low)).map(|(n, _)| *n).collect();
        let upgraded = if done.is_empty() { "none fully".to_string() } else { done.join(", ") };
        let steps: Vec<String> = pending.iter().map(|n| next_node_step(n)).collect();
        out.push(Finding::new(
            Severity::Warning,
            "upgrade.in-progress",
            "control-plane",
            format!(
                "the control plane is between v{low} and v{high}: upgraded {upgraded}; still on v{low}: {}",
                pending.join(", ")
            ),
            format!(
                "next: {}, one node at a time, each followed by its kubelet (drain, upgrade kubelet, uncordon); then the workers",
                steps.join(", then ")
            ),
        ));
        return out;
    }
    if high != low {
        // A spread of two minors or more is outside the procedure; skew.ha-apiservers reports it.
        return out;
    }
    let lagging: Vec<&Instance> = state
        .of(Part::Kubelet)
        .filter(|k| state.control_plane_nodes.contains(&k.node) && high.minus(k.version.minor()) == 1)
        .collect();
    if !lagging.is_empty() {
        let nodes: Vec<&str> = lagging.iter().map(|k| k.node.as_str()).collect();
        out.push(Finding::new(
            Severity::Warning,
            "upgrade.in-progress",
            "control-plane",
            format!(
                "control-plane static pods run v{high} but the kubelet on {} is still on v{}",
                nodes.join(", "),
                lagging[0].version.minor()
            ),
            format!(
                "next: on {} in turn, drain, upgrade kubelet and kubectl to v{high}, restart the kubelet, uncordon; then the workers",
                nodes.join(", ")
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    fn data() -> &'static ReleaseData {
        ReleaseData::embedded()
    }

    /// Three control-plane nodes at `cp` (apiserver, controller-manager, scheduler, kubelet)
    /// plus the given workers.
    fn cluster(cp: &[&str], workers: &[(&str, &str)]) -> VersionState {
        let mut s = VersionState::default();
        for (i, ver) in cp.iter().enumerate() {
            let node = format!("cp-{}", i + 1);
            for part in [Part::KubeApiserver, Part::KubeControllerManager, Part::KubeScheduler, Part::Kubelet] {
                s.instances.push(Instance::new(part, node.clone(), v(ver)));
            }
            s.control_plane_nodes.insert(node);
        }
        for (name, ver) in workers {
            s.instances.push(Instance::new(Part::Kubelet, *name, v(ver)));
        }
        s.instances.sort();
        s
    }

    fn codes(findings: &[Finding]) -> Vec<(&str, Severity, &str)> {
        findings.iter().map(|f| (f.code.as_str(), f.severity, f.subject.as_str())).collect()
    }

    #[test]
    fn apiserver_1_35_allows_kubelet_1_32_and_refuses_1_31() {
        let ok = check_state(&cluster(&["v1.35.3"], &[("w-1", "v1.32.9")]), Topology::Kubeadm, data());
        assert!(ok.iter().all(|f| f.severity != Severity::Error), "{ok:?}");
        // 1.32 is the oldest allowed kubelet: warned that the next upgrade needs it moved.
        assert_eq!(codes(&ok), vec![("skew.kubelet-at-window-edge", Severity::Warning, "w-1")]);

        let bad = check_state(&cluster(&["v1.35.3"], &[("w-1", "v1.31.14")]), Topology::Kubeadm, data());
        assert_eq!(codes(&bad), vec![("skew.kubelet-too-old", Severity::Error, "w-1")]);
        assert!(bad[0].message.contains("4 minors older than kube-apiserver v1.35.3 on cp-1"), "{}", bad[0].message);
        assert!(bad[0].hint.contains("v1.32"), "{}", bad[0].hint);
    }

    #[test]
    fn old_kubelets_keep_the_n_minus_2_window() {
        // Control plane 1.27: n-2.
        let s = cluster(&["v1.27.16"], &[("w-1", "v1.24.17"), ("w-2", "v1.25.16")]);
        assert_eq!(
            codes(&check_state(&s, Topology::Kubeadm, data()))[0],
            ("skew.kubelet-too-old", Severity::Error, "w-1")
        );
        // Control plane 1.28 with a 1.25 kubelet: n-3 applies. A 1.24 kubelet stays at n-2.
        let s = cluster(&["v1.28.15"], &[("w-1", "v1.25.16"), ("w-2", "v1.24.17")]);
        let f = check_state(&s, Topology::Kubeadm, data());
        assert!(f.iter().any(|f| f.subject == "w-2" && f.code == "skew.kubelet-too-old"), "{f:?}");
        assert!(!f.iter().any(|f| f.subject == "w-1" && f.severity == Severity::Error), "{f:?}");
    }

    #[test]
    fn ha_apiservers_within_one_minor() {
        let fine = check_state(&cluster(&["v1.34.11", "v1.35.3", "v1.35.3"], &[]), Topology::Kubeadm, data());
        assert!(fine.iter().all(|f| f.severity != Severity::Error), "{fine:?}");
        let bad = check_state(&cluster(&["v1.33.13", "v1.35.3"], &[]), Topology::Kubeadm, data());
        let errors: Vec<_> = codes(&bad).into_iter().filter(|c| c.1 == Severity::Error).collect();
        assert_eq!(errors, vec![("skew.ha-apiservers", Severity::Error, "kube-apiserver/cp-1")]);
    }

    #[test]
    fn first_control_plane_node_upgraded_is_in_progress_not_an_error() {
        let s = cluster(&["v1.34.11", "v1.33.13", "v1.33.13"], &[("w-1", "v1.33.13"), ("w-2", "v1.32.13")]);
        let f = check_state(&s, Topology::Kubeadm, data());
        assert!(f.iter().all(|f| f.severity != Severity::Error), "{f:?}");
        let p = f.iter().find(|f| f.code == "upgrade.in-progress").expect("in progress");
        assert_eq!(p.severity, Severity::Warning);
        assert!(p.message.contains("upgraded cp-1; still on v1.33: cp-2, cp-3"), "{}", p.message);
        assert!(p.hint.contains("`kubeadm upgrade node` on cp-2, then `kubeadm upgrade node` on cp-3"), "{}", p.hint);
        // Behind a load balancer the new controller-manager may reach an old apiserver.
        let lb = check_state(&s, Topology::LoadBalanced, data());
        let errs: Vec<_> = lb.iter().filter(|f| f.severity == Severity::Error).map(|f| f.code.as_str()).collect();
        assert!(errs.contains(&"skew.controller-manager-newer"), "{lb:?}");
        assert!(errs.contains(&"skew.scheduler-newer"), "{lb:?}");
        assert!(errs.contains(&"skew.kubelet-newer-than-apiserver"), "{lb:?}");
    }

    #[test]
    fn controller_manager_newer_than_its_apiserver_is_refused() {
        let mut s = cluster(&["v1.34.11", "v1.34.11"], &[]);
        for i in &mut s.instances {
            if i.part == Part::KubeControllerManager && i.node == "cp-2" {
                i.version = v("v1.35.3");
            }
        }
        let f = check_state(&s, Topology::Kubeadm, data());
        let e = f.iter().find(|f| f.code == "skew.controller-manager-newer").expect("refused");
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.subject, "kube-controller-manager/cp-2");
        assert!(e.message.contains("newer than kube-apiserver v1.34.11 on cp-2"), "{}", e.message);
    }

    #[test]
    fn scheduler_two_minors_older_is_refused() {
        let mut s = cluster(&["v1.35.3"], &[]);
        for i in &mut s.instances {
            if i.part == Part::KubeScheduler {
                i.version = v("v1.33.13");
            }
        }
        let f = check_state(&s, Topology::Kubeadm, data());
        assert!(f.iter().any(|f| f.code == "skew.scheduler-too-old" && f.severity == Severity::Error), "{f:?}");
    }

    #[test]
    fn kubectl_two_minors_off_is_warned() {
        let s = cluster(&["v1.35.3"], &[]).with_kubectl(&v("v1.33.2"));
        let f = check_state(&s, Topology::Kubeadm, data());
        assert_eq!(codes(&f), vec![("skew.kubectl", Severity::Warning, "kubectl")]);
        for ok in ["v1.34.0", "v1.35.1", "v1.36.0"] {
            let s = cluster(&["v1.35.3"], &[]).with_kubectl(&v(ok));
            assert!(check_state(&s, Topology::Kubeadm, data()).is_empty(), "{ok}");
        }
        // HA narrows it: with 1.34 and 1.35 apiservers, kubectl 1.36 is too new for the 1.34 one.
        let s = cluster(&["v1.34.11", "v1.35.3"], &[]).with_kubectl(&v("v1.36.0"));
        assert!(check_state(&s, Topology::Kubeadm, data()).iter().any(|f| f.code == "skew.kubectl"));
    }

    #[test]
    fn kube_proxy_rules() {
        let mut s = cluster(&["v1.35.3"], &[("w-1", "v1.31.14")]);
        s.instances.push(Instance::new(Part::KubeProxy, "w-1", v("v1.35.3")));
        s.instances.push(Instance::new(Part::KubeProxy, "cp-1", v("v1.36.0")));
        let f = check_state(&s, Topology::Kubeadm, data());
        let c = codes(&f);
        assert!(c.contains(&("skew.kube-proxy-vs-kubelet", Severity::Error, "kube-proxy/w-1")), "{c:?}");
        assert!(c.contains(&("skew.kube-proxy-newer-than-apiserver", Severity::Error, "kube-proxy/cp-1")), "{c:?}");
    }

    #[test]
    fn target_moves_the_control_plane_and_kube_proxy_only() {
        let mut s = cluster(&["v1.33.13", "v1.33.13", "v1.33.13"], &[("w-1", "v1.32.13"), ("w-2", "v1.33.13")]);
        s.instances.push(Instance::new(Part::KubeProxy, "w-1", v("v1.33.13")));
        let moved = s.with_control_plane_at(&v("v1.36.4"));
        assert!(moved.of(Part::KubeApiserver).all(|a| a.version == v("v1.36.4")));
        assert!(moved.of(Part::KubeProxy).all(|a| a.version == v("v1.36.4")));
        assert_eq!(moved.of(Part::Kubelet).find(|k| k.node == "w-1").unwrap().version, v("v1.32.13"));
        let f = check_state(&moved, Topology::Kubeadm, data());
        let c = codes(&f);
        assert!(c.contains(&("skew.kubelet-too-old", Severity::Error, "w-1")), "{c:?}");
        assert!(c.contains(&("skew.kube-proxy-vs-kubelet", Severity::Error, "kube-proxy/w-1")), "{c:?}");
        // Control-plane kubelets left on 1.33 are at the edge of the window under 1.36.
        assert!(c.contains(&("skew.kubelet-at-window-edge", Severity::Warning, "cp-1")), "{c:?}");
    }

    #[test]
    fn control_plane_kubelets_behind_their_static_pods_is_in_progress() {
        let mut s = cluster(&["v1.34.11", "v1.34.11"], &[]);
        for i in &mut s.instances {
            if i.part == Part::Kubelet && i.node == "cp-2" {
                i.version = v("v1.33.13");
            }
        }
        let f = check_state(&s, Topology::Kubeadm, data());
        assert_eq!(codes(&f), vec![("upgrade.in-progress", Severity::Warning, "control-plane")]);
        assert!(f[0].message.contains("kubelet on cp-2 is still on v1.33"), "{}", f[0].message);
    }

    #[test]
    fn every_rule_has_a_distinct_code_and_documented_hint() {
        let mut seen = BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.code), "duplicate {}", r.code);
            assert!(r.code.starts_with("skew."));
            assert!(!r.hint.is_empty() && !r.policy.is_empty());
            if let Some(u) = r.unless {
                assert!(RULES.iter().any(|o| o.code == u), "{} names unknown rule {u}", r.code);
            }
        }
    }

    proptest! {
        /// The kubelet rule, stated independently: not newer than the apiserver minor, at most
        /// 3 older from control plane 1.28 on (2 before, and for kubelets older than 1.25).
        #[test]
        fn kubelet_window_matches_the_policy(cp in 24u32..=37, lag in -2i64..=6, patch in 0u32..20) {
            let k = i64::from(cp) - lag;
            prop_assume!(k >= 20);
            let s = cluster(&[&format!("v1.{cp}.3")], &[("w", &format!("v1.{k}.{patch}"))]);
            let f = check_state(&s, Topology::Kubeadm, data());
            let window = if cp >= 28 && k >= 25 { 3 } else { 2 };
            let newer = f.iter().any(|f| f.code == "skew.kubelet-newer-than-apiserver" && f.subject == "w");
            let old = f.iter().any(|f| f.code == "skew.kubelet-too-old" && f.subject == "w");
            prop_assert_eq!(newer, lag < 0);
            prop_assert_eq!(old, lag > window);
        }

        /// HA apiservers: an error exactly when the spread exceeds one minor.
        #[test]
        fn ha_spread(a in 28u32..=37, b in 28u32..=37) {
            let s = cluster(&[&format!("v1.{a}.0"), &format!("v1.{b}.0")], &[]);
            let f = check_state(&s, Topology::Kubeadm, data());
            let ha = f.iter().any(|f| f.code == "skew.ha-apiservers");
            prop_assert_eq!(ha, a.abs_diff(b) > 1);
            prop_assert_eq!(f.iter().any(|f| f.code == "upgrade.in-progress"), a.abs_diff(b) == 1);
        }

        /// Moving a kubelet toward the apiserver's minor never adds a finding.
        #[test]
        fn upgrading_a_kubelet_never_makes_things_worse(cp in 28u32..=37, lag in 0u32..=6) {
            prop_assume!(cp >= lag + 20);
            let before = cluster(&[&format!("v1.{cp}.1")], &[("w", &format!("v1.{}.0", cp - lag))]);
            let after = cluster(&[&format!("v1.{cp}.1")], &[("w", &format!("v1.{}.0", cp - lag.saturating_sub(1)))]);
            let nb = check_state(&before, Topology::Kubeadm, data()).len();
            let na = check_state(&after, Topology::Kubeadm, data()).len();
            prop_assert!(na <= nb);
        }

        /// kubectl: a warning exactly when more than one minor away.
        #[test]
        fn kubectl_window(cp in 28u32..=37, k in 25u32..=40) {
            let s = cluster(&[&format!("v1.{cp}.0")], &[]).with_kubectl(&format!("v1.{k}.0").parse().unwrap());
            let f = check_state(&s, Topology::Kubeadm, data());
            prop_assert_eq!(f.iter().any(|f| f.code == "skew.kubectl"), cp.abs_diff(k) > 1);
            prop_assert!(f.iter().all(|f| f.severity != Severity::Error));
        }
    }
}
