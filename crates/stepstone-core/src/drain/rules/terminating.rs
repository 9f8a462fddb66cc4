//! Pods already being deleted: nothing to evict, the drain waits for them to go; unless the
//! pod is past its grace period and only its finalizers keep it, when the wait never ends.

use crate::drain::{BlockerKind, Disposition, Outcome, PodContext, Rule};

pub struct Terminating;

impl Rule for Terminating {
    fn name(&self) -> &'static str {
        "terminating"
    }

    fn check(&self, ctx: &PodContext<'_>) -> Outcome {
        let pod = ctx.pod;
        if !pod.is_terminating() {
            return Outcome::Undecided;
        }
        if !pod.stuck_on_finalizers() {
            return Outcome::Decided(Disposition::Wait);
        }
        let since = pod.deletion_timestamp.map(|t| t.to_string()).unwrap_or_default();
        let names = pod.finalizers.join(", ");
        let reason = format!(
            "deleted (deadline {since}) and stopped on its node, kept only by its finalizers: {names}; \
             a drain waits for it forever"
        );
        let fix = format!(
            "make the controller that owns each finalizer finish its cleanup and remove it ({}); \
             remove a finalizer by hand (kubectl patch pod -n {} {} --type=json -p '[{{\"op\":\"remove\",\"path\":\"/metadata/finalizers/0\"}}]') \
             only after checking that what it guards is done or not needed, never blindly",
            pod.finalizers.iter().map(|f| finalizer_owner(f)).collect::<Vec<_>>().join("; "),
            pod.namespace,
            pod.name,
        );
        Outcome::Decided(Disposition::Block(ctx.blocker(BlockerKind::StuckFinalizers, reason, fix)))
    }
}

/// Who removes a finalizer: the well-known in-tree ones by name, any other by its domain.
fn finalizer_owner(finalizer: &str) -> String {
    match finalizer {
        "foregroundDeletion" => {
            "foregroundDeletion: the garbage collector, once the pod's dependents are deleted".to_string()
        }
        "orphan" => "orphan: the garbage collector, once the dependents are orphaned".to_string(),
        "batch.kubernetes.io/job-tracking" => {
            "batch.kubernetes.io/job-tracking: the Job controller in kube-controller-manager, once it has counted the pod; check that kube-controller-manager runs".to_string()
        }
        other => match other.split_once('/') {
            Some((domain, _)) => format!("{other}: the controller or operator of {domain}; check that it runs and reaches the API"),
            None => format!("{other}: the controller that added it; check that it runs and reaches the API"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::DrainOptions;
    use crate::drain::testing::*;
    use crate::inventory::{Inventory, PodPhase};

    #[test]
    fn table() {
        let mut going = pod("web-1");
        going.deletion_timestamp = Some("2026-11-20T08:00:00Z".parse().unwrap());
        let mut going_bare = going.clone();
        going_bare.owner = None;
        // Finalizers while the kubelet still stops it: the drain waits as for any terminating pod.
        let mut held = going.clone();
        held.finalizers = vec!["example.com/cleanup".into()];
        // The kubelet is done (final phase, past the grace period): only the finalizer keeps it.
        let mut stuck = held.clone();
        stuck.phase = PodPhase::Failed;
        let cases = [
            (going, "wait"),
            (going_bare, "wait"),
            (pod("web-2"), "undecided"),
            (held, "wait"),
            (stuck, "block:stuck-finalizers"),
        ];
        for (p, want) in cases {
            assert_eq!(outcome(&Terminating, &p, &Inventory::default(), &DrainOptions::default()), want, "{}", p.name);
        }
    }

    #[test]
    fn the_blocker_names_each_finalizer_and_who_removes_it() {
        let mut p = pod("web-1");
        p.deletion_timestamp = Some("2026-11-20T08:00:00Z".parse().unwrap());
        p.finalizers = vec!["foregroundDeletion".into(), "storage.example.io/detach".into()];
        p.phase = PodPhase::Succeeded;
        let d = crate::drain::classify(&p, &Inventory::default(), &DrainOptions::default());
        let b = d.blocker().expect("blocked");
        assert_eq!(b.kind, BlockerKind::StuckFinalizers);
        assert!(b.reason.contains("foregroundDeletion, storage.example.io/detach"), "{}", b.reason);
        assert!(b.fix.contains("the garbage collector"), "{}", b.fix);
        assert!(b.fix.contains("the controller or operator of storage.example.io"), "{}", b.fix);
        assert!(b.fix.contains("never blindly"), "{}", b.fix);
    }
}
