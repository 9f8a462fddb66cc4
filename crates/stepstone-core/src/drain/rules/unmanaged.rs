//! Pods without a controller: evicted, nothing recreates them. A blocker unless the caller
//! named `delete_unmanaged` (`--delete-unmanaged-pods`, kubectl's `--force`).

use crate::drain::{BlockerKind, Outcome, PodContext, Rule};

pub struct Unmanaged;

impl Rule for Unmanaged {
    fn name(&self) -> &'static str {
        "unmanaged"
    }

    fn check(&self, ctx: &PodContext<'_>) -> Outcome {
        if ctx.pod.owner.is_some() {
            return Outcome::Undecided;
        }
        let pod = ctx.pod;
        let blocker = ctx.blocker(
            BlockerKind::Unmanaged,
            "no controller owns it: once evicted nothing recreates it, so it is gone for good",
            format!(
                "add a controller (run it from a Deployment or StatefulSet) or delete the pod yourself \
                 (kubectl delete pod -n {} {}); --delete-unmanaged-pods evicts it anyway",
                pod.namespace, pod.name
            ),
        );
        Outcome::block_unless(ctx.opts.delete_unmanaged, blocker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::DrainOptions;
    use crate::drain::testing::*;
    use crate::inventory::Inventory;

    #[test]
    fn table() {
        let mut bare = pod("debug-shell");
        bare.owner = None;
        let allow = DrainOptions { delete_unmanaged: true, ..Default::default() };
        let cases = [
            (bare.clone(), DrainOptions::default(), "block:unmanaged"),
            (bare.clone(), allow.clone(), "accept:unmanaged"),
            // Consent to other losses does not cover this one.
            (
                bare,
                DrainOptions { delete_emptydir_data: true, allow_local_storage_loss: true, ..Default::default() },
                "block:unmanaged",
            ),
            (pod("web"), DrainOptions::default(), "undecided"),
            (owned_by(pod("kafka-0"), "StatefulSet", "kafka"), allow, "undecided"),
        ];
        for (p, opts, want) in cases {
            assert_eq!(outcome(&Unmanaged, &p, &Inventory::default(), &opts), want, "{} {opts:?}", p.name);
        }
    }
}
