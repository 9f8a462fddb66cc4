//! Pods already being deleted: nothing to evict, the drain waits for them to go.

use crate::drain::{Disposition, Outcome, PodContext, Rule};

pub struct Terminating;

impl Rule for Terminating {
    fn name(&self) -> &'static str {
        "terminating"
    }

    fn check(&self, ctx: &PodContext<'_>) -> Outcome {
        if ctx.pod.is_terminating() { Outcome::Decided(Disposition::Wait) } else { Outcome::Undecided }
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
        let mut going = pod("web-1");
        going.deletion_timestamp = Some("2026-11-20T08:00:00Z".parse().unwrap());
        let mut going_bare = going.clone();
        going_bare.owner = None;
        let cases = [(going, "wait"), (going_bare, "wait"), (pod("web-2"), "undecided")];
        for (p, want) in cases {
            assert_eq!(outcome(&Terminating, &p, &Inventory::default(), &DrainOptions::default()), want, "{}", p.name);
        }
    }
}
