//! Golden runbooks of the bundled example fleets (`examples/small.json`,
//! `examples/three-generations.json`) in apt and dnf forms, and their rollback runbooks.
//!
//! The plan is laid out here by a deliberately simple rule (control plane one by one, then per
//! generation one canary and batches of three), so these goldens pin the document writer, not
//! the planner's choices.

mod common;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use stepstone_core::inventory::Inventory;
use stepstone_core::plan::Plan;
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::KubeVersion;
use stepstone_runbook::{Distro, DistroChoice, RunbookOptions, Templates, rollback_markdown, upgrade_markdown};

fn example(name: &str) -> Inventory {
    let path = format!("{}/../../examples/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    stepstone_core::snapshot::load_str(&format!("examples/{name}.json"), &text, &Default::default()).unwrap()
}

struct Clock {
    t: Timestamp,
    entries: Vec<Value>,
}

impl Clock {
    fn push(&mut self, hop: usize, kind: &str, nodes: &[String], minutes: i64, wave: Option<usize>) {
        let end = self.t.checked_add(SignedDuration::from_mins(minutes)).unwrap();
        self.entries.push(json!({"hop": hop, "kind": kind, "label": format!("{kind} {}", nodes.join(", ")),
            "nodes": nodes, "start": self.t, "end": end, "wave": wave}));
        self.t = end;
    }
}

fn canary_and_batches(generation: &str, nodes: &[String], reason: &str) -> Vec<Value> {
    let Some((canary, rest)) = nodes.split_first() else { return vec![] };
    let mut waves = vec![json!({"kind": "canary", "generation": generation, "nodes": [canary],
        "reason": format!("first node of {generation}, then a soak ({reason})"), "waitAfterMinutes": 30})];
    for batch in rest.chunks(3) {
        waves.push(json!({"kind": "batch", "generation": generation, "nodes": batch,
            "reason": format!("batches of three ({reason})"), "waitAfterMinutes": 5}));
    }
    waves
}

/// One hop per minor from the control plane's version to `to`, laid out by the simple rule;
/// kubelets more than a minor behind catch up to the hop's `from` before its control plane moves.
fn simple_plan(inv: &Inventory, to: &str) -> Plan {
    let data = ReleaseData::embedded();
    let from = inv.control_plane_version().expect("the example has apiservers");
    let to: KubeVersion = to.parse().unwrap();
    let mut versions = vec![from.clone()];
    let mut minor = from.minor().next();
    while minor < to.minor() {
        versions.push(data.latest_patch(minor).unwrap().clone());
        minor = minor.next();
    }
    versions.push(to.clone());

    let start: Timestamp = "2026-12-01T08:00:00Z".parse().unwrap();
    let mut clock = Clock { t: start, entries: Vec::new() };
    let mut hops = Vec::new();
    for (h, pair) in versions.windows(2).enumerate() {
        let mut cps: Vec<_> = inv.control_plane_nodes().collect();
        cps.sort_by(|a, b| a.name.cmp(&b.name));
        let mut before = Vec::new();
        if h == 0 {
            for (generation, nodes) in inv.generations() {
                let mut behind: Vec<String> = nodes
                    .iter()
                    .filter(|n| !n.is_control_plane() && n.kubelet_version.minor() < pair[0].minor())
                    .map(|n| n.name.clone())
                    .collect();
                behind.sort();
                before.extend(canary_and_batches(generation, &behind, "behind the control plane"));
            }
        }
        for w in &before {
            let nodes: Vec<String> = serde_json::from_value(w["nodes"].clone()).unwrap();
            clock.push(h, w["kind"].as_str().unwrap(), &nodes, 25, None);
            let wait = if w["kind"] == "canary" { ("soak", 30) } else { ("wait", 5) };
            clock.push(h, wait.0, &[], wait.1, None);
        }
        let control_plane: Vec<Value> = cps
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"node": n.name, "action": if i == 0 { "apply" } else { "node" }, "generation": n.generation}))
            .collect();
        for n in &cps {
            clock.push(h, "control-plane", std::slice::from_ref(&n.name), 30, None);
        }
        let mut waves = Vec::new();
        for (generation, nodes) in inv.generations() {
            let mut workers: Vec<String> =
                nodes.iter().filter(|n| !n.is_control_plane()).map(|n| n.name.clone()).collect();
            workers.sort();
            waves.extend(canary_and_batches(generation, &workers, "lockstep"));
        }
        for (i, w) in waves.iter().enumerate() {
            let nodes: Vec<String> = serde_json::from_value(w["nodes"].clone()).unwrap();
            clock.push(h, w["kind"].as_str().unwrap(), &nodes, 25, Some(i));
            let wait = if w["kind"] == "canary" { ("soak", 30) } else { ("wait", 5) };
            clock.push(h, wait.0, &[], wait.1, Some(i));
        }
        hops.push(json!({"from": pair[0], "to": pair[1], "etcd": data.etcd_for(&pair[1]),
            "kubeletsFirst": [], "beforeControlPlane": before, "controlPlane": control_plane, "waves": waves}));
    }
    let makespan = clock.t.duration_since(start).as_secs() / 60;
    serde_json::from_value(json!({
        "cluster": inv.source, "from": from, "to": to,
        "policy": {"maxUnavailable": 3, "headroomPercent": 85, "canarySoakMinutes": 30, "batchWaitMinutes": 5,
                   "strategy": "lockstep"},
        "hops": hops, "blockers": [], "findings": [],
        "schedule": {"start": start, "finish": clock.t, "timeZone": "UTC", "entries": clock.entries,
                     "makespanMinutes": makespan, "lowerBoundMinutes": makespan, "warnings": []}
    }))
    .expect("the laid-out plan matches the Plan model")
}

fn render(name: &str, to: &str, distro: Distro) -> String {
    let inv = example(name);
    let plan = simple_plan(&inv, to);
    let opts = RunbookOptions { distro: DistroChoice::Fixed(distro), ..RunbookOptions::default() };
    upgrade_markdown(&plan, Some(&inv), &opts, &Templates::embedded()).unwrap()
}

#[test]
fn small_fleet_apt_and_dnf() {
    for (distro, golden) in [(Distro::Apt, "small_upgrade_apt"), (Distro::Dnf, "small_upgrade_dnf")] {
        let md = render("small", "v1.35.3", distro);
        common::assert_blocks_parse(golden, &md);
        insta::assert_snapshot!(golden, md);
    }
}

#[test]
fn three_generations_apt_and_dnf() {
    for (distro, golden) in
        [(Distro::Apt, "three_generations_upgrade_apt"), (Distro::Dnf, "three_generations_upgrade_dnf")]
    {
        let md = render("three-generations", "v1.35.3", distro);
        common::assert_blocks_parse(golden, &md);
        insta::assert_snapshot!(golden, md);
    }
}

#[test]
fn example_rollbacks() {
    for (name, golden) in [("small", "small_rollback"), ("three-generations", "three_generations_rollback")] {
        let inv = example(name);
        let plan = simple_plan(&inv, "v1.35.3");
        let md = rollback_markdown(&plan, Some(&inv), &RunbookOptions::default(), &Templates::embedded()).unwrap();
        common::assert_blocks_parse(golden, &md);
        insta::assert_snapshot!(golden, md);
    }
}

/// The names listed after each `Stop: cgroup v1 on` of a document part.
fn cgroup_stops(part: &str) -> std::collections::BTreeSet<String> {
    part.split("**Stop: cgroup v1 on ")
        .skip(1)
        .flat_map(|rest| rest.split(".**").next().unwrap_or("").split(", ").map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn every_cgroup_v1_node_stops_for_the_choice_before_kubeadm_1_35_touches_it() {
    use stepstone_core::inventory::CgroupVersion;
    let inv = example("three-generations");
    let v1: std::collections::BTreeSet<String> =
        inv.nodes.iter().filter(|n| n.cgroup == Some(CgroupVersion::V1)).map(|n| n.name.clone()).collect();
    assert!(!v1.is_empty(), "the example fleet has cgroup v1 nodes");
    let md = render("three-generations", "v1.35.3", Distro::Apt);
    let hops: Vec<&str> = md.split("\n## ").filter(|s| s.contains(". Hop ")).collect();
    assert!(hops.len() >= 2, "a path through 1.34 to 1.35");
    for hop in &hops {
        let title = hop.lines().next().unwrap_or("");
        if title.ends_with("to v1.35.3") {
            assert_eq!(cgroup_stops(hop), v1, "{title}: every cgroup v1 node, and only those, stops");
        } else {
            assert!(cgroup_stops(hop).is_empty(), "{title}: kubeadm before 1.35 accepts cgroup v1");
        }
    }
    // Each stop names both ways on and comes before the node's kubeadm step; the kubelet's journal
    // is checked after its restart.
    let hop = hops.iter().find(|h| h.lines().next().unwrap_or("").ends_with("to v1.35.3")).unwrap();
    for node in &v1 {
        let stop = hop.find(&format!("**Stop: cgroup v1 on {node}")).or_else(|| {
            hop.match_indices("**Stop: cgroup v1 on ")
                .map(|(i, _)| i)
                .find(|i| hop[*i..].split(".**").next().unwrap_or("").split(", ").any(|n| n.ends_with(node.as_str())))
        });
        let stop = stop.unwrap_or_else(|| panic!("no stop for {node}"));
        let kubeadm = hop[stop..].find("apt-get install -y kubeadm='1.35.3-*'").expect("its kubeadm step follows");
        let text = &hop[stop..stop + kubeadm];
        for want in [
            "Move the OS to cgroup v2",
            "failCgroupV1: false",
            "--ignore-preflight-errors=SystemVerification",
            "stat -fc %T /sys/fs/cgroup",
        ] {
            assert!(text.contains(want), "the stop for {node} lacks {want:?}:\n{text}");
        }
        assert!(hop[stop..].contains("journalctl -u kubelet"), "{node}: the journal check follows");
    }
}
