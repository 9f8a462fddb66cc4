//! Succeeded and Failed pods hold no running work: deleting them is harmless, they need no room
//! elsewhere and no budget. This runs before the DaemonSet rule, so a finished DaemonSet pod is
//! deletable too (as in kubectl).

use crate::drain::{Disposition, Outcome, PodContext, Rule};

pub struct Finished;

impl Rule for Finished {
    fn name(&self) -> &'static str {
        "finished"
    }

    fn check(&self, ctx: &PodContext<'_>) -> Outcome {
        if ctx.pod.phase.is_finished() { Outcome::Decided(Disposition::Finished) } else { Outcome::Undecided }
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
        let with_phase = |phase| {
            let mut p = pod("job-1");
            p.phase = phase;
            p.ready = false;
            p
        };
        let mut bare_failed = with_phase(PodPhase::Failed);
        bare_failed.owner = None;
        let cases = [
            (with_phase(PodPhase::Succeeded), "finished"),
            (with_phase(PodPhase::Failed), "finished"),
            (bare_failed, "finished"),
            (owned_by(with_phase(PodPhase::Succeeded), "DaemonSet", "agent"), "finished"),
            (with_phase(PodPhase::Running), "undecided"),
            (with_phase(PodPhase::Pending), "undecided"),
            (with_phase(PodPhase::Unknown), "undecided"),
        ];
        for (p, want) in cases {
            assert_eq!(outcome(&Finished, &p, &Inventory::default(), &DrainOptions::default()), want, "{:?}", p.phase);
        }
    }
}
