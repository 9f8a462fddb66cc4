//! DaemonSet pods stay: the controller would recreate them on the node at once, and they
//! tolerate the cordon (`kubectl drain --ignore-daemonsets`).

use crate::drain::{Disposition, Outcome, PodContext, Rule, SkipReason};

pub struct DaemonSet;

impl Rule for DaemonSet {
    fn name(&self) -> &'static str {
        "daemonset"
    }

    fn check(&self, ctx: &PodContext<'_>) -> Outcome {
        match &ctx.pod.owner {
            Some(o) if o.kind == "DaemonSet" => Outcome::Decided(Disposition::Skip { reason: SkipReason::DaemonSet }),
            _ => Outcome::Undecided,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::DrainOptions;
    use crate::drain::testing::*;
    use crate::inventory::{Inventory, VolumeSource};

    #[test]
    fn table() {
        let host_path = VolumeSource::HostPath { path: "/var/lib/calico".into() };
        let cases = [
            (owned_by(pod("calico-node-x"), "DaemonSet", "calico-node"), "skip:daemonset"),
            // DaemonSet pods are pinned and use hostPath; neither matters: they are skipped.
            (
                pinned(
                    owned_by(with_volume(pod("node-exporter-y"), host_path), "DaemonSet", "n"),
                    "metadata.name",
                    "w1",
                ),
                "skip:daemonset",
            ),
            (owned_by(pod("web"), "ReplicaSet", "web-abc"), "undecided"),
            (owned_by(pod("kafka-0"), "StatefulSet", "kafka"), "undecided"),
        ];
        for (p, want) in cases {
            assert_eq!(outcome(&DaemonSet, &p, &Inventory::default(), &DrainOptions::default()), want, "{}", p.name);
        }
    }
}
