//! Golden and property tests of the rendered documents, from a hand-written plan and fleet in
//! `tests/fixtures/` (a mixed Ubuntu/Rocky fleet of three hardware generations, two hops).

mod common;

use common::{assert_blocks_parse, fixture_inventory, fixture_plan};
use stepstone_core::plan::Plan;
use stepstone_runbook::{
    Distro, DistroChoice, RunbookOptions, Templates, html_report, rollback_markdown, staging_design, staging_markdown,
    upgrade_markdown,
};

fn opts(distro: DistroChoice) -> RunbookOptions {
    RunbookOptions { distro, ..RunbookOptions::default() }
}

fn assert_safe_drains(name: &str, markdown: &str) {
    let drains: Vec<&str> = markdown.lines().filter(|l| l.contains("kubectl drain ")).collect();
    assert!(!drains.is_empty(), "{name} drains nothing");
    for l in drains {
        assert!(l.contains("--ignore-daemonsets") && l.contains("--timeout="), "{name}: {l}");
        assert!(!l.contains("--force") && !l.contains("--disable-eviction"), "{name}: unsafe drain {l}");
    }
}

#[test]
fn upgrade_runbook_mixed_fleet_auto() {
    let md = upgrade_markdown(
        &fixture_plan(),
        Some(&fixture_inventory()),
        &opts(DistroChoice::Auto),
        &Templates::embedded(),
    )
    .unwrap();
    // The Rocky nodes get dnf commands, the Ubuntu nodes apt.
    assert!(md.contains("# on epyc-01, as root\ncat > /etc/yum.repos.d/kubernetes.repo"), "epyc-01 uses dnf");
    assert!(md.contains("dnf install -y --disableexcludes=kubernetes kubeadm-'1.35.3-*'"));
    assert!(md.contains("apt-get install -y kubeadm='1.34.6-*'"));
    assert_blocks_parse("upgrade (auto)", &md);
    assert_safe_drains("upgrade (auto)", &md);
    insta::assert_snapshot!("fixture_upgrade_auto", md);
}

#[test]
fn upgrade_runbook_apt_and_dnf() {
    for (distro, name) in [(Distro::Apt, "fixture_upgrade_apt"), (Distro::Dnf, "fixture_upgrade_dnf")] {
        let md = upgrade_markdown(&fixture_plan(), None, &opts(DistroChoice::Fixed(distro)), &Templates::embedded())
            .unwrap();
        assert_blocks_parse(name, &md);
        assert_safe_drains(name, &md);
        insta::assert_snapshot!(name, md);
    }
}

#[test]
fn upgrade_runbook_order_follows_the_plan() {
    let plan = fixture_plan();
    let md = upgrade_markdown(&plan, None, &opts(DistroChoice::Fixed(Distro::Apt)), &Templates::embedded()).unwrap();
    // Every node's drain appears once per hop, in plan order.
    let mut expected = Vec::new();
    for hop in &plan.hops {
        expected.extend(hop.control_plane.iter().map(|s| s.node.clone()));
        for w in &hop.waves {
            expected.extend(w.nodes.iter().cloned());
        }
    }
    let drained: Vec<String> = md
        .lines()
        .filter_map(|l| l.strip_prefix("kubectl drain "))
        .map(|rest| rest.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(drained, expected);
    assert_eq!(md.matches("kubeadm upgrade apply v").count(), plan.hops.len());
    assert!(md.contains("sleep 1800") && md.contains("sleep 300"), "soak and wait from the plan");
    for blocker in &plan.blockers {
        assert!(md.contains(&blocker.hint), "blocker fix listed: {}", blocker.hint);
    }
}

#[test]
fn auto_without_the_inventory_names_the_fix() {
    let err = upgrade_markdown(&fixture_plan(), None, &opts(DistroChoice::Auto), &Templates::embedded()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("cp-1") && text.contains("--distro apt"), "{text}");
}

#[test]
fn rollback_runbook() {
    let md = rollback_markdown(
        &fixture_plan(),
        Some(&fixture_inventory()),
        &opts(DistroChoice::Auto),
        &Templates::embedded(),
    )
    .unwrap();
    assert!(md.contains("/etc/kubernetes/tmp/kubeadm-backup-manifests-"));
    assert!(md.contains("mv /etc/kubernetes/manifests/*.yaml /etc/kubernetes/manifests-stopped/"));
    // Hop 1 restores an etcd 3.5 snapshot (etcdctl), hop 2 an etcd 3.6 one (etcdutl).
    assert!(md.contains("ETCDCTL_API=3 etcdctl snapshot restore"));
    assert!(md.contains("etcdutl snapshot restore"));
    assert!(md.contains(
        "--initial-cluster cp-1=https://10.0.0.11:2380,cp-2=https://10.0.0.12:2380,cp-3=https://10.0.0.13:2380"
    ));
    assert!(
        md.contains("apt-get install -y --allow-downgrades kubeadm='1.33.4-*' kubelet='1.33.4-*' kubectl='1.33.4-*'")
    );
    assert!(md.contains("dnf downgrade -y --disableexcludes=kubernetes kubeadm-'1.34.6-*'"));
    assert!(md.contains("What is lost"));
    assert_blocks_parse("rollback", &md);
    assert_safe_drains("rollback", &md);
    insta::assert_snapshot!("fixture_rollback_auto", md);
}

#[test]
fn staging_design_from_the_fleet() {
    let inv = fixture_inventory();
    let design = staging_design(&inv, &"v1.34.6".parse().unwrap());
    assert_eq!(design.control_plane.count, 3);
    assert_eq!(design.control_plane.node.generation, "dell-r650");
    let gens: Vec<&str> = design.workers.iter().map(|w| w.generation.as_str()).collect();
    assert_eq!(gens, ["amd-epyc-9354", "dell-r640", "dell-r650"]);
    assert_eq!(design.workers[1].name, "stg-dell-r640-k5.4-containerd-1.6");
    assert_eq!(design.workers[1].variants.len(), 1, "r640-03 runs another kernel");
    let roles: Vec<(&str, &str)> = design.addons.iter().map(|a| (a.role.as_str(), a.name.as_str())).collect();
    for want in [
        ("cni", "calico-node"),
        ("csi", "csi-rbdplugin"),
        ("ingress", "ingress-nginx-controller"),
        ("dns", "coredns"),
        ("device-plugin", "nvidia-device-plugin-daemonset"),
        ("monitoring", "prometheus-k8s"),
    ] {
        assert!(roles.contains(&want), "{want:?} in {roles:?}");
    }
    assert!(!design.addons.iter().any(|a| a.name == "kube-proxy" || a.namespace == "shop"));
    let ids: Vec<&str> = design.tests.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["upgrade", "scheduling", "network", "storage", "ingress", "dns", "devices", "monitoring"]);
    let md = staging_markdown(&design, &Templates::embedded()).unwrap();
    assert_blocks_parse("staging", &md);
    insta::assert_snapshot!("fixture_staging", md);
}

#[test]
fn html_report_is_self_contained_with_one_bar_per_wave() {
    let plan = fixture_plan();
    let html = html_report(&plan, Some(&fixture_inventory()), &Templates::embedded()).unwrap();
    let waves: usize = plan.hops.iter().map(|h| h.waves.len() + h.before_control_plane.len()).sum();
    assert_eq!(html.matches("<rect class=\"bar wave\"").count(), waves);
    assert_eq!(html.matches("<rect class=\"bar cp\"").count(), 6);
    assert!(html.contains("<rect class=\"off\""), "time outside the windows is shaded");
    for forbidden in ["<script", " src=", "href=", "@import", "url("] {
        assert!(!html.contains(forbidden), "the report must not fetch anything: found {forbidden}");
    }
    assert!(html.contains("@media print"));
    assert!(html.contains("in shop to 5 for the duration"), "blocker fix shown");
    // Deterministic: the same input renders the same bytes.
    assert_eq!(html, html_report(&plan, Some(&fixture_inventory()), &Templates::embedded()).unwrap());
}

#[test]
fn a_team_replaces_the_notification_hooks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooks.md"),
        "{% macro notify_start(r) %}- [ ] Page #ops-{{ r.cluster | length }} via the bridge{% endmacro %}\n\
         {% macro before_hop(r, hop) %}- [ ] Open change ticket for hop {{ hop.number }}{% endmacro %}\n\
         {% macro notify_finish(r) %}- [ ] Close the change{% endmacro %}\n",
    )
    .unwrap();
    let t = Templates::with_dir(dir.path()).unwrap();
    let md = upgrade_markdown(&fixture_plan(), None, &opts(DistroChoice::Fixed(Distro::Apt)), &t).unwrap();
    assert!(md.contains("- [ ] Open change ticket for hop 2"));
    assert!(md.contains("- [ ] Close the change"));
    assert!(!md.contains("Stakeholders notified"));
}

#[test]
fn the_bash_check_catches_a_broken_block() {
    let broken = "text\n\n```bash\nif [ -f x ]; then echo unterminated\n```\n";
    assert_eq!(common::shell_blocks(broken).len(), 1);
    let caught = std::panic::catch_unwind(|| assert_blocks_parse("broken", broken));
    assert!(caught.is_err(), "bash -n must refuse an unterminated if");
}

#[test]
fn each_hop_is_rolled_back_with_its_own_snapshot() {
    let plan = fixture_plan();
    assert!(plan.hops.len() >= 2, "the fixture has two hops");
    let inv = fixture_inventory();
    let t = Templates::embedded();
    let up = upgrade_markdown(&plan, Some(&inv), &opts(DistroChoice::Auto), &t).unwrap();
    let back = rollback_markdown(&plan, Some(&inv), &opts(DistroChoice::Auto), &t).unwrap();
    for doc in [&up, &back] {
        assert!(!doc.contains("ls -t") && !doc.contains("head -n 1"), "the newest file is not the hop's snapshot");
    }
    for n in 1..=plan.hops.len() {
        let label = format!("before-hop{n}");
        assert!(up.contains(&format!("--label {label}\n")), "hop {n} takes a labelled snapshot");
        // The rollback of hop n, from its heading to the next hop's, restores snapshot n only.
        let start = back.find(&format!("## Hop {n}:")).unwrap();
        let end = back[start + 1..].find("## Hop ").map_or(back.len(), |e| start + 1 + e);
        let section = &back[start..end];
        assert!(section.contains(&format!("etcd-*-{label}-*.db")), "hop {n}: {section}");
        assert!(section.contains(&format!("stepstone etcd verify \"$SNAPSHOT\" --any-age --label {label}")));
        assert!(section.contains("sha256sum -c -"), "each node checks its copy");
        for other in (1..=plan.hops.len()).filter(|o| *o != n) {
            assert!(!section.contains(&format!("before-hop{other}")), "hop {n} names hop {other}'s snapshot");
        }
    }
}

#[test]
fn the_etcd_minor_crossing_is_gated_and_its_way_back_is_not_a_binary_swap() {
    let plan = fixture_plan();
    let inv = fixture_inventory();
    let t = Templates::embedded();
    let up = upgrade_markdown(&plan, Some(&inv), &opts(DistroChoice::Auto), &t).unwrap();
    assert_eq!(up.matches("**Gate: etcd 3.5 to 3.6.**").count(), 1, "one hop crosses, and only that one is gated");
    assert!(up.contains("every 3.5 member runs\n  **3.5.32 or later**") || up.contains("**3.5.32 or later**"));
    assert!(up.contains("awk -v min=3.5.32"), "the image check compares against the minimum patch");
    assert!(up.contains("etcdutl check v2store --data-dir /var/lib/etcd"));
    let back = rollback_markdown(&plan, Some(&inv), &opts(DistroChoice::Auto), &t).unwrap();
    assert!(back.contains("**Never swap the etcd binary or image back** from 3.6 to 3.5"), "{back}");
    assert!(back.contains("`etcdctl downgrade enable 3.5`"));
}

#[test]
fn an_external_etcd_is_snapshotted_over_its_api_and_never_restored_onto_the_control_plane() {
    use stepstone_core::inventory::Component;
    let plan = fixture_plan();
    let stacked = fixture_inventory();
    assert!(!stepstone_runbook::upgrade::external_etcd(Some(&stacked)), "etcd static pods: stacked");
    let mut inv = fixture_inventory();
    inv.components.retain(|c| c.component != Component::Etcd);
    assert!(stepstone_runbook::upgrade::external_etcd(Some(&inv)));
    let t = Templates::embedded();
    let up = upgrade_markdown(&plan, Some(&inv), &opts(DistroChoice::Auto), &t).unwrap();
    assert_blocks_parse("upgrade (external etcd)", &up);
    assert!(!up.contains("--via-ssh"), "no etcdctl on a control-plane node: it is not a member");
    assert!(!up.contains("exec etcd-"), "no etcd pod to exec into");
    assert!(up.contains("stepstone etcd backup --endpoint \"$ETCD_ENDPOINT\""));
    assert!(up.contains("--etcd-servers="), "the endpoint comes from the apiserver's flag");
    assert!(up.contains("it does not upgrade an external etcd"));
    assert!(!up.contains("**Gate: etcd 3.5 to 3.6.**"), "kubeadm does not move an external etcd");
    let back = rollback_markdown(&plan, Some(&inv), &opts(DistroChoice::Auto), &t).unwrap();
    assert_blocks_parse("rollback (external etcd)", &back);
    assert!(!back.contains("snapshot restore"), "the control-plane nodes are not restored as etcd members");
    assert!(back.contains("stepstone etcd restore-plan \"$SNAPSHOT\" --member"));
    let stacked_back = rollback_markdown(&plan, Some(&stacked), &opts(DistroChoice::Auto), &t).unwrap();
    assert!(stacked_back.contains("snapshot restore"));
    assert!(stacked_back.contains("systemctl restart kubelet") && stacked_back.contains("kubeadm-backup-etcd-"));
}

#[test]
fn the_runbook_uses_the_tools_own_checks_and_kubeadms_safeguards() {
    let plan = fixture_plan();
    let inv = fixture_inventory();
    let up = upgrade_markdown(&plan, Some(&inv), &opts(DistroChoice::Auto), &Templates::embedded()).unwrap();
    for want in [
        "stepstone preflight --snapshot cluster.json --to v1.35.3",
        "stepstone drift --snapshot cluster.json",
        "stepstone apis --snapshot cluster.json --to v1.35.3",
        "kubeadm certs check-expiration",
        "`MANUAL UPGRADE REQUIRED`",
        "kubeadm config images pull --kubernetes-version v1.35.3",
        "--dry-run --yes",
        "kind: UpgradeConfiguration",
        "kubeadm upgrade apply --config /root/upgrade-v1.35.3.yaml",
        "renews the\n  certificates it manages",
        "kubectl version --client",
    ] {
        assert!(up.contains(want), "the runbook lacks {want:?}");
    }
    for hop in &plan.hops {
        assert!(up.contains(&format!("stepstone preflight --snapshot cluster.json --to {}", hop.to)), "hop {}", hop.to);
    }
}

#[test]
fn printed_drain_lines_carry_only_the_consents_the_plan_was_made_with() {
    let drain_lines = |md: &str| -> Vec<String> {
        md.lines().filter(|l| l.starts_with("kubectl drain ")).map(str::to_string).collect()
    };
    let render = |plan: &Plan| {
        let opts = opts(DistroChoice::Auto);
        let inv = fixture_inventory();
        let upgrade = upgrade_markdown(plan, Some(&inv), &opts, &Templates::embedded()).unwrap();
        let rollback = rollback_markdown(plan, Some(&inv), &opts, &Templates::embedded()).unwrap();
        (upgrade, rollback)
    };

    // No consent: kubectl drain must stop on emptyDir pods exactly as the plan's blockers say.
    let without = fixture_plan();
    assert!(!without.policy.drain.delete_emptydir_data);
    let (upgrade, rollback) = render(&without);
    for md in [&upgrade, &rollback] {
        let lines = drain_lines(md);
        assert!(!lines.is_empty());
        for l in lines {
            assert!(!l.contains("--delete-emptydir-data"), "a drain line gives consent the plan did not: {l}");
            assert!(l.contains(" --ignore-daemonsets --timeout="), "{l}");
        }
    }
    assert!(upgrade.contains("(no `--delete-emptydir-data`: a pod with emptyDir data stops the drain"));

    // Consent given when planning: every printed line carries it, and says what it costs.
    let mut with = fixture_plan();
    with.policy.drain.delete_emptydir_data = true;
    with.policy.drain.delete_unmanaged = true;
    let (upgrade, rollback) = render(&with);
    for md in [&upgrade, &rollback] {
        for l in drain_lines(md) {
            assert!(l.contains(" --ignore-daemonsets --delete-emptydir-data --timeout="), "{l}");
            assert!(!l.contains("--force"), "{l}");
        }
    }
    assert!(upgrade.contains("(emptyDir data of evicted pods is lost)"));
    // kubectl drain cannot delete unmanaged pods without --force: the runbook says what to do instead.
    assert!(upgrade.contains("`stepstone drain --delete-unmanaged-pods`"));
    assert_blocks_parse("upgrade with consents", &upgrade);
    assert_blocks_parse("rollback with consents", &rollback);
}
