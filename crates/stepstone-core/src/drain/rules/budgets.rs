//! The last rule: everything still undecided is evicted under the budgets that select it. A pod
//! under more than one PodDisruptionBudget is a blocker, since the eviction API refuses it.

use crate::drain::{BlockerKind, Disposition, Outcome, PodContext, Rule};
use crate::object_key::{self, ObjectKey};

pub struct Budgets;

impl Rule for Budgets {
    fn name(&self) -> &'static str {
        "budgets"
    }

    fn check(&self, ctx: &PodContext<'_>) -> Outcome {
        let keys: Vec<ObjectKey> = ctx.pdbs.iter().map(|p| p.key()).collect();
        if keys.len() > 1 {
            let names: Vec<&str> = ctx.pdbs.iter().map(|p| p.name.as_str()).collect();
            return Outcome::Decided(Disposition::Block(ctx.blocker(
                BlockerKind::SeveralBudgets,
                format!(
                    "selected by {} PodDisruptionBudgets ({}): the eviction API refuses pods under more than one PodDisruptionBudget (HTTP 500)",
                    names.len(),
                    object_key::join(&keys, ", ")
                ),
                format!(
                    "make the selectors of {} in {} disjoint so exactly one budget selects the pod",
                    names.join(" and "),
                    ctx.pod.namespace
                ),
            )));
        }
        Outcome::Decided(Disposition::Evict { pdbs: keys, overrides: Vec::new() })
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
        let inv = Inventory {
            pdbs: vec![pdb("web", "app=web"), pdb("frontends", "app in (web,shop)"), pdb("api", "app=api")],
            ..Default::default()
        };
        let mut elsewhere = pod("api");
        elsewhere.namespace = "staging".into();
        let cases = [
            (pod("web"), "block:several-budgets"),
            (pod("shop"), "evict"),
            (pod("api"), "evict"),
            (pod("batch"), "evict"),
            (elsewhere, "evict"),
        ];
        for (p, want) in cases {
            assert_eq!(outcome(&Budgets, &p, &inv, &DrainOptions::default()), want, "{}", p.key());
        }
        let api = pod("api");
        let ctx =
            PodContext { pod: &api, inv: &inv, opts: &DrainOptions::default(), pdbs: inv.pdbs_for(&api).collect() };
        assert_eq!(
            Budgets.check(&ctx),
            Outcome::Decided(Disposition::Evict { pdbs: vec![ObjectKey::new("prod", "api")], overrides: vec![] })
        );
        let web = pod("web");
        let ctx =
            PodContext { pod: &web, inv: &inv, opts: &DrainOptions::default(), pdbs: inv.pdbs_for(&web).collect() };
        let Outcome::Decided(Disposition::Block(b)) = Budgets.check(&ctx) else { panic!("not blocked") };
        assert!(b.reason.contains("(HTTP 500)") && b.fix.contains("web and frontends"), "{b:?}");
    }
}
