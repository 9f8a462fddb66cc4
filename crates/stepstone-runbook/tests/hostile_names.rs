//! Hostile node names, addresses and label values through every document generator: each shell
//! block still parses, and running the documents with a marker program on PATH never runs it.

mod common;

use common::{
    PAYLOADS, PWNED, assert_blocks_parse, fixture_inventory, fixture_plan, run_script_with_stubs, run_with_stubs,
};
use proptest::prelude::*;
use stepstone_core::inventory::Inventory;
use stepstone_core::plan::Plan;
use stepstone_runbook::{
    DistroChoice, RunbookError, RunbookOptions, Templates, rollback_markdown, staging_design, staging_markdown,
    upgrade_markdown,
};

/// Replace every JSON string equal to a key of `names` by its value.
fn rename(value: &mut serde_json::Value, names: &std::collections::BTreeMap<String, String>) {
    match value {
        serde_json::Value::String(s) => {
            if let Some(n) = names.get(s.as_str()) {
                *s = n.clone();
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| rename(v, names)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| rename(v, names)),
        _ => {}
    }
}

/// The fixture plan and fleet with every node renamed, every address and generation made hostile.
fn hostile(picks: &[(usize, String)]) -> (Plan, Inventory) {
    let mut inv = fixture_inventory();
    let mut names = std::collections::BTreeMap::new();
    for (i, node) in inv.nodes.iter_mut().enumerate() {
        let (payload, junk) = &picks[i % picks.len()];
        let new = format!("{}{}{}", node.name, PAYLOADS[*payload], junk);
        names.insert(node.name.clone(), new.clone());
        node.name = new;
        node.internal_ip = Some(format!("10.0.0.{i}{}", PAYLOADS[(*payload + 1) % PAYLOADS.len()]));
    }
    for pod in &mut inv.pods {
        if let Some(n) = pod.node_name.as_ref().and_then(|n| names.get(n)) {
            pod.node_name = Some(n.clone());
        }
    }
    let mut plan = serde_json::to_value(fixture_plan()).unwrap();
    rename(&mut plan, &names);
    (serde_json::from_value(plan).unwrap(), inv)
}

fn check(name: &str, markdown: &str) {
    assert_blocks_parse(name, markdown);
    assert_eq!(run_with_stubs(markdown), 0, "{name}: a hostile name was executed");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn hostile_names_never_run(picks in proptest::collection::vec((0..PAYLOADS.len(), "[ -~]{0,6}"), 1..8)) {
        let (plan, inv) = hostile(&picks);
        let opts = RunbookOptions { distro: DistroChoice::Auto, ..RunbookOptions::default() };
        let t = Templates::embedded();
        check("upgrade", &upgrade_markdown(&plan, Some(&inv), &opts, &t).unwrap());
        check("rollback", &rollback_markdown(&plan, Some(&inv), &opts, &t).unwrap());
        let mut inv = inv;
        for n in &mut inv.nodes {
            let g = format!("{}{}", n.generation, PAYLOADS[picks[0].0]);
            n.labels.insert("stepstone.io/hardware-generation".into(), g.clone());
            n.generation = g;
        }
        check("staging", &staging_markdown(&staging_design(&inv, &plan.to), &t).unwrap());
    }
}

#[test]
fn the_stub_harness_sees_an_injection() {
    // Without this, a harness that never runs anything would pass every case above.
    assert_eq!(run_script_with_stubs(&format!("echo hi; {PWNED}\nx=$({PWNED})\n")), 2);
    assert_eq!(run_script_with_stubs("echo unquoted > /tmp/should-not-exist-stepstone; echo ok"), 0);
    assert!(!std::path::Path::new("/tmp/should-not-exist-stepstone").exists(), "restricted bash must refuse >");
    let md = format!("```bash\nkubectl drain n1;{PWNED} --ignore-daemonsets\n```\n");
    assert_eq!(run_with_stubs(&md), 1);
}

#[test]
fn a_newline_in_a_name_is_refused_with_its_name() {
    let picks = [(0, String::new())];
    let (mut plan, inv) = hostile(&picks);
    let first = plan.hops[0].control_plane[0].node.clone();
    plan.hops[0].control_plane[0].node = format!("{first}\n```\n{PWNED}");
    let opts = RunbookOptions { distro: DistroChoice::Auto, ..RunbookOptions::default() };
    let err = upgrade_markdown(&plan, Some(&inv), &opts, &Templates::embedded()).unwrap_err();
    assert!(matches!(err, RunbookError::ControlCharacter { .. }), "{err}");
    assert!(err.to_string().contains("node name") && err.to_string().contains("\\n```\\n"), "{err}");
    let err = rollback_markdown(&plan, Some(&inv), &opts, &Templates::embedded()).unwrap_err();
    assert!(matches!(err, RunbookError::ControlCharacter { .. }), "{err}");
}
