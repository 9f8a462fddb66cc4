//! The upgrade runbook and the rollback runbook: view models built from a Plan (and the
//! Inventory, when known) and rendered through `upgrade.md` / `rollback.md`.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use stepstone_core::addons::HopSupport;
use stepstone_core::findings::Finding;
use stepstone_core::inventory::Inventory;
use stepstone_core::plan::{ControlPlaneAction, Plan, ScheduleEntryKind, Wave, WaveKind, WorkerStrategy};
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::KubeVersion;

use crate::package_index::PackageIndex;
use crate::packages::{self, Distro, DistroChoice, PackageCommands};
use crate::templates::Templates;
use crate::{RunbookError, time};

/// Choices the operator makes when writing the runbook (the Plan fixes everything else).
#[derive(Debug, Clone)]
pub struct RunbookOptions {
    pub distro: DistroChoice,
    /// `kubectl drain --timeout` value, e.g. `15m`.
    pub drain_timeout: String,
    /// Where etcd snapshots are written and looked for.
    pub backup_dir: String,
    /// Image for the network and DNS probe pods (busybox: `httpd`, `wget`, `nslookup`).
    pub probe_image: String,
    /// Share of pods in CrashLoopBackOff that triggers a rollback, in percent.
    pub crashloop_percent: u32,
    /// The repositories' own package indexes: builds to pin exactly (else `'1.x.y-*'`).
    pub package_index: PackageIndex,
}

impl Default for RunbookOptions {
    fn default() -> Self {
        RunbookOptions {
            distro: DistroChoice::Auto,
            drain_timeout: "15m".to_string(),
            backup_dir: "/var/backups/stepstone".to_string(),
            probe_image: "busybox:1.36".to_string(),
            crashloop_percent: 5,
            package_index: PackageIndex::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingView {
    pub severity: String,
    pub code: String,
    pub subject: String,
    pub message: String,
    pub hint: String,
}

impl From<&Finding> for FindingView {
    fn from(f: &Finding) -> Self {
        FindingView {
            severity: f.severity.to_string(),
            code: f.code.clone(),
            subject: f.subject.clone(),
            message: f.message.clone(),
            hint: f.hint.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowView {
    pub start: String,
    pub finish: String,
    pub time_zone: String,
    pub makespan: String,
    pub lower_bound: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DistroUse {
    pub distro: Distro,
    pub nodes: Vec<String>,
    /// The installed-versions command of this family (for the record-versions step).
    pub installed: String,
}

/// One node's part of a hop, with its package commands filled for the hop's target.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub name: String,
    pub generation: String,
    pub control_plane: bool,
    /// `apply` on the first control-plane node of the hop, `node` everywhere else.
    pub action: String,
    pub pkg: PackageCommands,
    /// cgroup v1 under a kubelet that refuses it: the steps stop for the operator's choice.
    pub cgroup_v1_stop: bool,
}

/// Nodes of one wave that share a package family: one block of node-local commands for all.
#[derive(Debug, Clone, Serialize)]
pub struct NodeGroup {
    pub nodes: Vec<String>,
    pub pkg: PackageCommands,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaveView {
    pub number: usize,
    pub kind: String,
    pub generation: String,
    pub nodes: Vec<NodeView>,
    pub node_names: Vec<String>,
    /// The wave's nodes by package family, in plan order of first appearance.
    pub groups: Vec<NodeGroup>,
    pub reason: String,
    /// Plan blockers this wave waits on (their fixes are in the preparation checklist).
    pub blockers: Vec<String>,
    pub pods_moved: u64,
    pub wait_after_minutes: u32,
    pub wait_seconds: u64,
    /// `soak` after a canary, `wait` after a batch.
    pub wait_kind: String,
    pub start: Option<String>,
    pub end: Option<String>,
    /// An upgraded node outside this wave for the pod-to-pod check.
    pub peer: String,
    /// The wave's nodes whose steps stop for the cgroup v1 choice.
    pub cgroup_v1_stop: Vec<String>,
}

/// A hop whose kubeadm moves etcd to its next minor (1.34: 3.5 to 3.6; 1.37: 3.6 to 3.7).
#[derive(Debug, Clone, Serialize)]
pub struct EtcdCrossing {
    pub from: String,
    pub to: String,
    pub from_minor: String,
    pub to_minor: String,
    /// The lowest patch of `from_minor` every member must run before any member moves on.
    pub minimum: String,
}

/// etcd's upgrade guide: the patch every member of the older minor must run first, and what
/// else must hold. Sources: https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/ (3.5.32 or later as
/// of August 2026; raised from 3.5.20, 3.5.24 and 3.5.26 over time) and
/// https://etcd.io/docs/v3.7/upgrades/upgrade_3_7/ (3.6.11 or later).
const ETCD_MINIMUM_BEFORE_NEXT_MINOR: &[((u32, u32), &str)] = &[((3, 5), "3.5.32"), ((3, 6), "3.6.11")];

fn etcd_crossing(from: Option<&str>, to: Option<&str>) -> Option<EtcdCrossing> {
    let (a, b) = (etcd_minor(from?)?, etcd_minor(to?)?);
    if a == b {
        return None;
    }
    let minimum = ETCD_MINIMUM_BEFORE_NEXT_MINOR.iter().find(|(m, _)| *m == a).map(|(_, v)| v.to_string())?;
    Some(EtcdCrossing {
        from: from?.to_string(),
        to: to?.to_string(),
        from_minor: format!("{}.{}", a.0, a.1),
        to_minor: format!("{}.{}", b.0, b.1),
        minimum,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct HopView {
    pub number: usize,
    pub from: String,
    pub to: String,
    pub minor: String,
    pub from_minor: String,
    pub etcd: Option<String>,
    /// Set when this hop moves etcd to its next minor: the gate and the way back differ.
    pub etcd_crossing: Option<EtcdCrossing>,
    /// kubeadm of this minor reads a v1beta4 `UpgradeConfiguration` (1.31 and later).
    pub upgrade_configuration: bool,
    pub start: Option<String>,
    pub end: Option<String>,
    pub kubelets_first: Vec<String>,
    pub first_control_plane: Option<String>,
    /// Kubelets brought to `from` before the control plane moves (they are behind the skew).
    pub before_control_plane: Vec<WaveView>,
    pub control_plane: Vec<NodeView>,
    pub waves: Vec<WaveView>,
    /// One availability check per package family and version used in this hop.
    pub available: Vec<PackageCommands>,
    /// Add-ons that do not support this hop's minor: upgraded in Preparation, checked again here.
    pub addons_blocking: Vec<AddonStep>,
}

/// An add-on to upgrade before a hop, from the plan's add-on check.
#[derive(Debug, Clone, Serialize)]
pub struct AddonStep {
    pub name: String,
    pub version: String,
    pub supports: String,
    pub hop: usize,
    pub to: String,
    /// The first release that supports the hop (empty when the table knows none).
    pub upgrade_to: String,
}

/// One add-on step per add-on version and hop it blocks, in hop order.
fn addon_steps(plan: &Plan) -> Vec<AddonStep> {
    let mut steps: Vec<AddonStep> = plan
        .addons
        .iter()
        .flat_map(|a| {
            a.blocked().map(|h| AddonStep {
                name: a.name.clone(),
                version: a.version.clone(),
                supports: a.supports.clone().unwrap_or_default(),
                hop: h.hop,
                to: h.to.to_string(),
                upgrade_to: h.upgrade_to.clone().unwrap_or_default(),
            })
        })
        .collect();
    steps.sort_by(|a, b| (a.hop, &a.name, &a.version).cmp(&(b.hop, &b.name, &b.version)));
    steps
}

/// Everything `upgrade.md` reads.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeView {
    pub cluster: String,
    /// etcd runs outside the control-plane nodes: snapshots and restores go to its own members.
    pub external_etcd: bool,
    pub from: String,
    pub to: String,
    pub strategy: String,
    pub skip_minors: bool,
    pub distros: Vec<DistroUse>,
    pub window: WindowView,
    pub blockers: Vec<FindingView>,
    pub findings: Vec<FindingView>,
    /// Add-ons to upgrade before the hop they block.
    pub addon_steps: Vec<AddonStep>,
    /// Add-ons whose support for the path is unknown, with why.
    pub addons_unknown: Vec<String>,
    pub control_plane_nodes: Vec<String>,
    pub first_control_plane: Option<String>,
    pub hops: Vec<HopView>,
    pub drain_timeout: String,
    /// The printed `kubectl drain` lines' flags, from the plan's drain consents and no others.
    pub drain_flags: String,
    /// What those lines cannot do that the consents allow, with what to run instead.
    pub drain_caveats: Vec<String>,
    pub backup_dir: String,
    pub probe_image: String,
    pub crashloop_percent: u32,
    pub policy: PolicyView,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    pub max_unavailable: u32,
    pub headroom_percent: u32,
    pub canary_soak_minutes: u32,
    pub batch_wait_minutes: u32,
}

/// Where in the schedule a step sits: `(hop, kind, wave index, sorted nodes) -> (start, end)`.
/// Entries of the hop's waves carry the wave index; catch-up waves and older plans do not.
type StepKey = (usize, &'static str, Option<usize>, Vec<String>);

struct ScheduleIndex {
    spans: BTreeMap<StepKey, (Timestamp, Timestamp)>,
    hops: BTreeMap<usize, (Timestamp, Timestamp)>,
}

fn kind_key(kind: ScheduleEntryKind) -> &'static str {
    match kind {
        ScheduleEntryKind::ControlPlane => "control-plane",
        ScheduleEntryKind::Canary => "canary",
        ScheduleEntryKind::Batch => "batch",
        ScheduleEntryKind::Soak => "soak",
        ScheduleEntryKind::Wait => "wait",
        ScheduleEntryKind::OutsideWindow => "outside-window",
    }
}

impl ScheduleIndex {
    fn new(plan: &Plan) -> Self {
        let mut spans: BTreeMap<_, (Timestamp, Timestamp)> = BTreeMap::new();
        let mut hops: BTreeMap<usize, (Timestamp, Timestamp)> = BTreeMap::new();
        for e in &plan.schedule.entries {
            if e.kind == ScheduleEntryKind::OutsideWindow {
                continue;
            }
            let mut nodes = e.nodes.clone();
            nodes.sort();
            let span = spans.entry((e.hop, kind_key(e.kind), e.wave, nodes)).or_insert((e.start, e.end));
            span.0 = span.0.min(e.start);
            span.1 = span.1.max(e.end);
            let hop = hops.entry(e.hop).or_insert((e.start, e.end));
            hop.0 = hop.0.min(e.start);
            hop.1 = hop.1.max(e.end);
        }
        ScheduleIndex { spans, hops }
    }

    fn span(
        &self,
        hop: usize,
        kind: &'static str,
        wave: Option<usize>,
        nodes: &[String],
    ) -> Option<(Timestamp, Timestamp)> {
        let mut nodes = nodes.to_vec();
        nodes.sort();
        let indexed = wave.and_then(|w| self.spans.get(&(hop, kind, Some(w), nodes.clone())));
        indexed.or_else(|| self.spans.get(&(hop, kind, None, nodes))).copied()
    }
}

/// Resolves each node's package family once.
struct Families<'a> {
    inventory: Option<&'a Inventory>,
    choice: DistroChoice,
}

impl Families<'_> {
    fn of(&self, node: &str) -> Result<Distro, RunbookError> {
        match self.choice {
            DistroChoice::Fixed(d) => Ok(d),
            DistroChoice::Auto => {
                let n = self
                    .inventory
                    .and_then(|inv| inv.node(node))
                    .ok_or_else(|| RunbookError::NodeNotInInventory { node: node.to_string() })?;
                Ok(packages::distro_for(n, DistroChoice::Auto)?)
            }
        }
    }
}

fn opt_minute(span: Option<(Timestamp, Timestamp)>, tz: &TimeZone, end: bool) -> Option<String> {
    span.map(|(s, e)| time::minute(if end { e } else { s }, tz))
}

fn wave_kind(kind: WaveKind) -> &'static str {
    match kind {
        WaveKind::Canary => "canary",
        WaveKind::Batch => "batch",
    }
}

/// Refuse a value with a control character: every other character is quoted where it reaches a
/// shell line, but a newline would end a `#` comment or a Markdown code block around it.
fn no_control(what: &str, value: &str) -> Result<(), RunbookError> {
    if value.chars().any(char::is_control) {
        return Err(RunbookError::ControlCharacter { what: what.to_string(), value: value.to_string() });
    }
    Ok(())
}

/// Every name the documents print, from the plan, the inventory and the options.
fn check_inputs(plan: &Plan, inventory: Option<&Inventory>, opts: &RunbookOptions) -> Result<(), RunbookError> {
    for hop in &plan.hops {
        let waves = hop.before_control_plane.iter().chain(&hop.waves);
        for name in waves
            .flat_map(|w| w.nodes.iter())
            .chain(hop.control_plane.iter().map(|s| &s.node))
            .chain(&hop.kubelets_first)
        {
            no_control("node name", name)?;
        }
        for g in hop.before_control_plane.iter().chain(&hop.waves).map(|w| &w.generation) {
            no_control("hardware generation", g)?;
        }
    }
    if let Some(inv) = inventory {
        for n in &inv.nodes {
            no_control("node name", &n.name)?;
            if let Some(ip) = &n.internal_ip {
                no_control(&format!("InternalIP of node {}", n.name), ip)?;
            }
        }
    }
    no_control("--backup-dir", &opts.backup_dir)?;
    no_control("--drain-timeout", &opts.drain_timeout)?;
    no_control("--probe-image", &opts.probe_image)
}

/// kubeadm's two topologies: stacked (an etcd static pod on every control-plane node) or
/// external (kube-apiserver static pods, no etcd pod). Without an inventory, or without static
/// pods in it, the cluster is taken as stacked, kubeadm's default.
pub fn external_etcd(inventory: Option<&Inventory>) -> bool {
    use stepstone_core::inventory::Component;
    inventory.is_some_and(|inv| {
        inv.components_of(Component::KubeApiserver).next().is_some()
            && inv.components_of(Component::Etcd).next().is_none()
    })
}

/// Every node: the inventory's (control plane first), else the plan's.
fn all_nodes(plan: &Plan, inventory: Option<&Inventory>) -> Vec<String> {
    let mut names: Vec<String> = match inventory {
        Some(inv) => {
            let mut nodes: Vec<_> = inv.nodes.iter().collect();
            nodes.sort_by_key(|n| (!n.is_control_plane(), n.name.clone()));
            nodes.into_iter().map(|n| n.name.clone()).collect()
        }
        None => Vec::new(),
    };
    if names.is_empty() {
        for hop in &plan.hops {
            let waves = hop.before_control_plane.iter().chain(&hop.waves);
            for n in hop.control_plane.iter().map(|s| &s.node).chain(waves.flat_map(|w| w.nodes.iter())) {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
    }
    names
}

/// kubeadm reads `kind: UpgradeConfiguration` (kubeadm.k8s.io/v1beta4) from 1.31 on:
/// https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/
const V1BETA4_UPGRADE_CONFIGURATION: stepstone_core::version::Minor = stepstone_core::version::Minor::new(1, 31);

/// Build the view `upgrade.md` renders.
pub fn upgrade_view(
    plan: &Plan,
    inventory: Option<&Inventory>,
    opts: &RunbookOptions,
) -> Result<UpgradeView, RunbookError> {
    check_inputs(plan, inventory, opts)?;
    let tz = time::zone(&plan.schedule.time_zone)?;
    let index = ScheduleIndex::new(plan);
    let families = Families { inventory, choice: opts.distro };
    let mut used: BTreeMap<Distro, BTreeSet<String>> = BTreeMap::new();

    let mut hops = Vec::new();
    for (h, hop) in plan.hops.iter().enumerate() {
        let mut node_view = |name: &str, generation: &str, cp: bool, action: &str, version: &KubeVersion| {
            let distro = families.of(name)?;
            used.entry(distro).or_default().insert(name.to_string());
            Ok::<_, RunbookError>(NodeView {
                name: name.to_string(),
                generation: generation.to_string(),
                control_plane: cp,
                action: action.to_string(),
                pkg: PackageCommands::indexed(distro, version, &opts.package_index),
                cgroup_v1_stop: crate::cgroup_gate::stops(inventory, name, version),
            })
        };
        let mut control_plane = Vec::new();
        for step in &hop.control_plane {
            let action = match step.action {
                ControlPlaneAction::Apply => "apply",
                ControlPlaneAction::Node => "node",
            };
            control_plane.push(node_view(&step.node, &step.generation, true, action, &hop.to)?);
        }
        let cp_names: Vec<String> = hop.control_plane.iter().map(|s| s.node.clone()).collect();
        let all_nodes: Vec<&String> = hop
            .before_control_plane
            .iter()
            .flat_map(|w| w.nodes.iter())
            .chain(cp_names.iter())
            .chain(hop.waves.iter().flat_map(|w| w.nodes.iter()))
            .collect();
        let mut wave_views =
            |waves: &[Wave], indexed: bool, version: &KubeVersion| -> Result<Vec<WaveView>, RunbookError> {
                let mut out = Vec::new();
                for (w, wave) in waves.iter().enumerate() {
                    let nodes = wave
                        .nodes
                        .iter()
                        .map(|n| node_view(n, &wave.generation, false, "node", version))
                        .collect::<Result<Vec<_>, _>>()?;
                    let span = index.span(h, wave_kind(wave.kind), indexed.then_some(w), &wave.nodes);
                    // An upgraded node outside the wave for the pod-to-pod check: the control plane
                    // first (it moved before any worker), then the other waves.
                    let peer = cp_names
                        .iter()
                        .chain(all_nodes.iter().copied())
                        .find(|n| !wave.nodes.contains(n))
                        .or(wave.nodes.first())
                        .cloned()
                        .unwrap_or_default();
                    let mut groups: Vec<NodeGroup> = Vec::new();
                    for n in &nodes {
                        match groups.iter_mut().find(|g| g.pkg.distro == n.pkg.distro) {
                            Some(g) => g.nodes.push(n.name.clone()),
                            None => groups.push(NodeGroup { nodes: vec![n.name.clone()], pkg: n.pkg.clone() }),
                        }
                    }
                    let cgroup_v1_stop = nodes.iter().filter(|n| n.cgroup_v1_stop).map(|n| n.name.clone()).collect();
                    out.push(WaveView {
                        cgroup_v1_stop,
                        number: w + 1,
                        groups,
                        kind: wave_kind(wave.kind).to_string(),
                        generation: wave.generation.clone(),
                        nodes,
                        node_names: wave.nodes.clone(),
                        reason: wave.reason.clone(),
                        blockers: wave.blockers.clone(),
                        pods_moved: wave.pods_moved,
                        wait_after_minutes: wave.wait_after_minutes,
                        wait_seconds: u64::from(wave.wait_after_minutes) * 60,
                        wait_kind: if wave.kind == WaveKind::Canary { "soak" } else { "wait" }.to_string(),
                        start: opt_minute(span, &tz, false),
                        end: opt_minute(span, &tz, true),
                        peer,
                    });
                }
                Ok(out)
            };
        let before_control_plane = wave_views(&hop.before_control_plane, false, &hop.from)?;
        let waves = wave_views(&hop.waves, true, &hop.to)?;
        let mut hop_families: BTreeSet<Distro> = BTreeSet::new();
        for n in cp_names.iter().chain(hop.waves.iter().flat_map(|w| w.nodes.iter())) {
            hop_families.insert(families.of(n)?);
        }
        let mut catch_up_families: BTreeSet<Distro> = BTreeSet::new();
        for n in hop.before_control_plane.iter().flat_map(|w| w.nodes.iter()) {
            catch_up_families.insert(families.of(n)?);
        }
        hops.push(HopView {
            number: h + 1,
            from: hop.from.to_string(),
            to: hop.to.to_string(),
            minor: hop.to.minor().to_string(),
            from_minor: hop.from.minor().to_string(),
            etcd: hop.etcd.clone(),
            etcd_crossing: etcd_crossing(etcd_before(plan, h, inventory).as_deref(), hop.etcd.as_deref()),
            upgrade_configuration: hop.to.minor() >= V1BETA4_UPGRADE_CONFIGURATION,
            start: opt_minute(index.hops.get(&h).copied(), &tz, false),
            end: opt_minute(index.hops.get(&h).copied(), &tz, true),
            kubelets_first: hop.kubelets_first.clone(),
            first_control_plane: cp_names.first().cloned(),
            before_control_plane,
            control_plane,
            waves,
            available: catch_up_families
                .into_iter()
                .map(|d| PackageCommands::indexed(d, &hop.from, &opts.package_index))
                .chain(hop_families.into_iter().map(|d| PackageCommands::indexed(d, &hop.to, &opts.package_index)))
                .collect(),
            addons_blocking: addon_steps(plan).into_iter().filter(|a| a.hop == h + 1).collect(),
        });
    }

    let control_plane_nodes: Vec<String> = match inventory {
        Some(inv) => inv.control_plane_nodes().map(|n| n.name.clone()).collect(),
        None => plan.hops.first().map(|h| h.control_plane.iter().map(|s| s.node.clone()).collect()).unwrap_or_default(),
    };
    let first_control_plane = plan
        .hops
        .first()
        .and_then(|h| h.control_plane.first().map(|s| s.node.clone()))
        .or_else(|| control_plane_nodes.first().cloned());
    let s = &plan.schedule;
    Ok(UpgradeView {
        cluster: plan.cluster.clone(),
        external_etcd: external_etcd(inventory),
        from: plan.from.to_string(),
        to: plan.to.to_string(),
        strategy: match plan.policy.strategy {
            WorkerStrategy::Lockstep => "lockstep",
            WorkerStrategy::SkipMinors => "skip-minors",
        }
        .to_string(),
        skip_minors: plan.policy.strategy == WorkerStrategy::SkipMinors,
        distros: used
            .into_iter()
            .map(|(d, nodes)| DistroUse {
                distro: d,
                nodes: nodes.into_iter().collect(),
                installed: packages::forms(d).installed.clone(),
            })
            .collect(),
        window: WindowView {
            start: time::minute(s.start, &tz),
            finish: time::minute(s.finish, &tz),
            time_zone: s.time_zone.clone(),
            makespan: time::duration(s.makespan_minutes),
            lower_bound: time::duration(s.lower_bound_minutes),
            warnings: s.warnings.clone(),
        },
        blockers: plan.blockers.iter().map(FindingView::from).collect(),
        // Add-on findings have their own checklist items in Preparation.
        findings: plan.findings.iter().filter(|f| !f.code.starts_with("addons.")).map(FindingView::from).collect(),
        addon_steps: addon_steps(plan),
        addons_unknown: plan
            .addons
            .iter()
            .filter(|a| a.blocked().next().is_none() && a.hops.iter().any(|h| h.support == HopSupport::Unknown))
            .map(|a| format!("{} {}: {}", a.name, a.version, a.source))
            .collect(),
        control_plane_nodes,
        first_control_plane,
        hops,
        drain_timeout: opts.drain_timeout.clone(),
        drain_flags: plan.policy.drain.kubectl_drain_flags().join(" "),
        drain_caveats: plan.policy.drain.kubectl_drain_caveats(),
        backup_dir: opts.backup_dir.clone(),
        probe_image: opts.probe_image.clone(),
        crashloop_percent: opts.crashloop_percent,
        policy: PolicyView {
            max_unavailable: plan.policy.max_unavailable,
            headroom_percent: plan.policy.headroom_percent,
            canary_soak_minutes: plan.policy.canary_soak_minutes,
            batch_wait_minutes: plan.policy.batch_wait_minutes,
        },
    })
}

/// The upgrade runbook in Markdown.
pub fn upgrade_markdown(
    plan: &Plan,
    inventory: Option<&Inventory>,
    opts: &RunbookOptions,
    templates: &Templates,
) -> Result<String, RunbookError> {
    templates.render("upgrade.md", &upgrade_view(plan, inventory, opts)?)
}

// ---------------------------------------------------------------------------------------------
// Rollback

/// A control-plane node as the etcd restore needs it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub name: String,
    /// Peer address: the node's InternalIP when the inventory has it, else its name.
    pub address: String,
    pub pkg: PackageCommands,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackHopView {
    pub number: usize,
    pub from: String,
    pub to: String,
    pub from_minor: String,
    pub etcd_from: Option<String>,
    pub etcd_to: Option<String>,
    /// The hop moves etcd to another minor: binaries alone cannot take it back.
    pub etcd_minor_changes: bool,
    pub etcd_crossing: Option<EtcdCrossing>,
    /// `etcdutl` for etcd 3.6 and later (etcdctl lost `snapshot restore`), else `etcdctl`.
    pub restore_tool: String,
    pub members: Vec<MemberView>,
    pub initial_cluster: String,
    pub workers: Vec<String>,
    /// Every node of the cluster (control plane first): all kubelets restart after a restore.
    pub all_nodes: Vec<String>,
    pub example_worker: Option<String>,
    /// The previous version's package commands, one per family the workers use.
    pub worker_pkgs: Vec<PackageCommands>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackView {
    pub cluster: String,
    /// etcd runs outside the control-plane nodes: snapshots and restores go to its own members.
    pub external_etcd: bool,
    pub from: String,
    pub to: String,
    pub hops: Vec<RollbackHopView>,
    pub backup_dir: String,
    pub drain_timeout: String,
    /// The printed `kubectl drain` lines' flags, from the plan's drain consents and no others.
    pub drain_flags: String,
    pub drain_caveats: Vec<String>,
    pub crashloop_percent: u32,
}

fn etcd_minor(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim_start_matches('v').split(['.', '-']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The etcd version the control plane ran before the hop: the previous hop's, else the
/// inventory's etcd image tag, else what kubeadm of the source patch deploys.
fn etcd_before(plan: &Plan, h: usize, inventory: Option<&Inventory>) -> Option<String> {
    if h > 0
        && let Some(e) = &plan.hops[h - 1].etcd
    {
        return Some(e.clone());
    }
    if h == 0
        && let Some(inv) = inventory
        && let Some(c) = inv.components_of(stepstone_core::inventory::Component::Etcd).map(|c| c.tag.clone()).min()
    {
        return Some(c.split('-').next().unwrap_or(&c).to_string());
    }
    ReleaseData::embedded().etcd_for(&plan.hops[h].from).map(str::to_string)
}

pub fn rollback_view(
    plan: &Plan,
    inventory: Option<&Inventory>,
    opts: &RunbookOptions,
) -> Result<RollbackView, RunbookError> {
    check_inputs(plan, inventory, opts)?;
    let families = Families { inventory, choice: opts.distro };
    let mut hops = Vec::new();
    for (h, hop) in plan.hops.iter().enumerate() {
        let previous: &KubeVersion = &hop.from;
        let members = hop
            .control_plane
            .iter()
            .map(|s| {
                let address = inventory
                    .and_then(|inv| inv.node(&s.node))
                    .and_then(|n| n.internal_ip.clone())
                    .map(|ip| if ip.contains(':') { format!("[{ip}]") } else { ip })
                    .unwrap_or_else(|| s.node.clone());
                Ok(MemberView {
                    name: s.node.clone(),
                    address,
                    pkg: PackageCommands::indexed(families.of(&s.node)?, previous, &opts.package_index),
                })
            })
            .collect::<Result<Vec<_>, RunbookError>>()?;
        let initial_cluster =
            members.iter().map(|m| format!("{}=https://{}:2380", m.name, m.address)).collect::<Vec<_>>().join(",");
        let workers: Vec<String> = hop.waves.iter().flat_map(|w| w.nodes.iter().cloned()).collect();
        let mut worker_families = BTreeSet::new();
        for w in &workers {
            worker_families.insert(families.of(w)?);
        }
        let etcd_from = etcd_before(plan, h, inventory);
        let etcd_to = hop.etcd.clone();
        let etcd_minor_changes =
            match (etcd_from.as_deref().and_then(etcd_minor), etcd_to.as_deref().and_then(etcd_minor)) {
                (Some(a), Some(b)) => a != b,
                _ => false,
            };
        let crossing = etcd_crossing(etcd_from.as_deref(), etcd_to.as_deref());
        let restore_tool = match etcd_from.as_deref().and_then(etcd_minor) {
            Some((major, minor)) if (major, minor) < (3, 6) => "etcdctl",
            _ => "etcdutl",
        };
        hops.push(RollbackHopView {
            number: h + 1,
            from: hop.from.to_string(),
            to: hop.to.to_string(),
            from_minor: hop.from.minor().to_string(),
            etcd_from,
            etcd_to,
            etcd_minor_changes,
            etcd_crossing: crossing,
            restore_tool: restore_tool.to_string(),
            members,
            initial_cluster,
            all_nodes: all_nodes(plan, inventory),
            example_worker: workers.first().cloned(),
            workers,
            worker_pkgs: worker_families
                .into_iter()
                .map(|d| PackageCommands::indexed(d, previous, &opts.package_index))
                .collect(),
        });
    }
    Ok(RollbackView {
        cluster: plan.cluster.clone(),
        external_etcd: external_etcd(inventory),
        from: plan.from.to_string(),
        to: plan.to.to_string(),
        hops,
        backup_dir: opts.backup_dir.clone(),
        drain_timeout: opts.drain_timeout.clone(),
        drain_flags: plan.policy.drain.kubectl_drain_flags().join(" "),
        drain_caveats: plan.policy.drain.kubectl_drain_caveats(),
        crashloop_percent: opts.crashloop_percent,
    })
}

/// The rollback runbook in Markdown.
pub fn rollback_markdown(
    plan: &Plan,
    inventory: Option<&Inventory>,
    opts: &RunbookOptions,
    templates: &Templates,
) -> Result<String, RunbookError> {
    templates.render("rollback.md", &rollback_view(plan, inventory, opts)?)
}
