//! The owner's explicit word: `cluster-autoscaler.kubernetes.io/safe-to-evict: "false"` stops
//! the drain. (`"true"` is read by the local-storage rule, which it overrides; it never stands
//! in for `--delete-emptydir-data`, as `kubectl drain` does not either.)

use crate::drain::{BlockerKind, Disposition, Outcome, PodContext, Rule, SAFE_TO_EVICT_ANNOTATION};

pub struct SafeToEvict;

impl Rule for SafeToEvict {
    fn name(&self) -> &'static str {
        "safe-to-evict"
    }

    fn check(&self, ctx: &PodContext<'_>) -> Outcome {
        if ctx.safe_to_evict() != Some(false) {
            return Outcome::Undecided;
        }
        let pod = ctx.pod;
        let owner = ctx
            .inv
            .top_controller(pod)
            .map(|w| format!("{}/{} in {}", w.kind.short(), w.name, w.namespace))
            .unwrap_or_else(|| format!("pod/{} in {}", pod.name, pod.namespace));
        Outcome::Decided(Disposition::Block(ctx.blocker(
            BlockerKind::NotSafeToEvict,
            format!("annotated {SAFE_TO_EVICT_ANNOTATION}: \"false\": its owners asked that it never be evicted"),
            format!(
                "ask the owners of {owner} to move it or to remove the annotation \
                 (kubectl annotate pod -n {} {} {SAFE_TO_EVICT_ANNOTATION}-) before the drain",
                pod.namespace, pod.name
            ),
        )))
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
        let cases = [
            (annotated(pod("batch"), SAFE_TO_EVICT_ANNOTATION, "false"), "block:not-safe-to-evict"),
            (annotated(pod("batch"), SAFE_TO_EVICT_ANNOTATION, " false "), "block:not-safe-to-evict"),
            (annotated(pod("cache"), SAFE_TO_EVICT_ANNOTATION, "true"), "undecided"),
            (annotated(pod("odd"), SAFE_TO_EVICT_ANNOTATION, "no"), "undecided"),
            (pod("web"), "undecided"),
        ];
        // No override accepts it: even every named option leaves it blocked.
        let all = DrainOptions {
            delete_emptydir_data: true,
            delete_unmanaged: true,
            allow_local_storage_loss: true,
            ..Default::default()
        };
        for (p, want) in cases {
            assert_eq!(outcome(&SafeToEvict, &p, &Inventory::default(), &all), want, "{:?}", p.annotations);
        }
    }

    #[test]
    fn the_fix_names_the_owner() {
        let p = annotated(pod("batch"), SAFE_TO_EVICT_ANNOTATION, "false");
        let ctx = PodContext { pod: &p, inv: &Inventory::default(), opts: &DrainOptions::default(), pdbs: vec![] };
        let Outcome::Decided(Disposition::Block(b)) = SafeToEvict.check(&ctx) else { panic!("not blocked") };
        assert!(
            b.fix.contains("kubectl annotate pod -n prod batch cluster-autoscaler.kubernetes.io/safe-to-evict-"),
            "{}",
            b.fix
        );
    }
}
