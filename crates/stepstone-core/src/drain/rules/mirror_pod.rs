//! Static pods' API mirrors: the kubelet owns them and the API cannot delete them.

use crate::drain::{Disposition, Outcome, PodContext, Rule, SkipReason};

pub struct MirrorPod;

impl Rule for MirrorPod {
    fn name(&self) -> &'static str {
        "mirror-pod"
    }

    fn check(&self, ctx: &PodContext<'_>) -> Outcome {
        if ctx.pod.is_mirror() {
            Outcome::Decided(Disposition::Skip { reason: SkipReason::MirrorPod })
        } else {
            Outcome::Undecided
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::DrainOptions;
    use crate::drain::testing::*;
    use crate::inventory::{Inventory, MIRROR_ANNOTATION, PodPhase};

    #[test]
    fn table() {
        let mut finished_mirror = annotated(pod("etcd-cp-01"), MIRROR_ANNOTATION, "abc");
        finished_mirror.phase = PodPhase::Failed;
        let cases = [
            (annotated(pod("kube-apiserver-cp-01"), MIRROR_ANNOTATION, "abc"), "skip:mirror-pod"),
            (finished_mirror, "skip:mirror-pod"),
            (annotated(pod("web"), "kubernetes.io/config.hash", "abc"), "undecided"),
            (pod("web"), "undecided"),
        ];
        for (p, want) in cases {
            assert_eq!(outcome(&MirrorPod, &p, &Inventory::default(), &DrainOptions::default()), want, "{}", p.name);
        }
    }
}
