//! Evictions in rounds of one pod start time under the shared budgets, and the blockers the
//! simulation finds on the way (pods with nowhere to go, budgets that never recover).

use std::collections::BTreeSet;

use crate::capacity::Unschedulable;
use crate::findings::{Finding, Severity};
use crate::pdb::EvictionAt;

use super::super::blockers::nowhere_hint;
use super::{NOWHERE, PlanBlocker, Planner, TraceEvent};

impl Planner<'_> {
    /// Evict in rounds of one pod start time; returns the number of rounds and the budgets that
    /// made pods wait.
    pub(super) fn evict_in_rounds(&mut self, evicted: &[u32]) -> (u32, BTreeSet<String>) {
        if !self.policy.serialise_budgets || evicted.is_empty() {
            if !evicted.is_empty() {
                self.record(TraceEvent::Round { evicted: evicted.iter().map(|&p| p as usize).collect() });
            }
            return (u32::from(!evicted.is_empty()), BTreeSet::new());
        }
        // Budgets by view index while the rounds run; named once at the end.
        let mut waited_on: BTreeSet<usize> = BTreeSet::new();
        let mut pending: Vec<u32> = evicted.to_vec();
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            let mut now = Vec::new();
            let mut free = Vec::new();
            let mut later = Vec::new();
            for p in pending {
                let covering = &self.covering[self.covering_of(p)];
                let (alone, ready) = self.evict_flags[p as usize];
                match self.budgets.evict_known(alone, ready, covering) {
                    EvictionAt::Consumed(_) => now.push(p),
                    EvictionAt::Free | EvictionAt::Unhealthy(_) => free.push(p),
                    EvictionAt::Refused(b) => {
                        waited_on.insert(b);
                        later.push(p);
                    }
                }
            }
            if now.is_empty() && free.is_empty() {
                // Nothing moved in a whole round: these budgets never recover. The pods were
                // placed already; report the hang instead of looping.
                for p in &later {
                    self.record_budget_hang(*p);
                }
                break;
            }
            if self.trace.is_some() {
                self.record(TraceEvent::Round { evicted: now.iter().chain(&free).map(|&p| p as usize).collect() });
            }
            for &p in &now {
                let range = self.covering_of(p);
                self.budgets.replacement_ready_covered(&self.covering[range]);
            }
            pending = later;
        }
        let names = waited_on.into_iter().map(|b| self.budgets.budgets()[b].key().to_string()).collect();
        (rounds, names)
    }

    pub(super) fn record_nowhere(&mut self, node: u32, why: &Unschedulable) {
        let name = self.node(node).name.clone();
        let subject = why.pod.clone();
        let key = format!("blocker.nowhere-to-go {subject}");
        let entry = self.found.entry(key).or_insert_with(|| PlanBlocker {
            finding: Finding::new(
                Severity::Error,
                "blocker.nowhere-to-go",
                subject,
                format!("during the plan, draining {name} leaves this pod with nowhere to go: {why}"),
                nowhere_hint(why, self.policy.headroom),
            ),
            nodes: BTreeSet::new(),
        });
        entry.nodes.insert(name);
    }

    fn record_budget_hang(&mut self, pod: u32) {
        let p = self.pod(pod);
        let node = self.pod_node[pod as usize];
        let subject = p.key();
        let key = format!("blocker.pdb-hang {subject}");
        let name = if node == NOWHERE { String::new() } else { self.node(node).name.clone() };
        let entry = self.found.entry(key).or_insert_with(|| PlanBlocker {
            finding: Finding::new(
                Severity::Error,
                "blocker.pdb-hang",
                subject,
                "during the plan this pod's disruption budget reaches 0 allowed disruptions and does not recover: the drain would hang".to_string(),
                "scale the workload up by one for the duration, or relax the budget (minAvailable/maxUnavailable)".to_string(),
            ),
            nodes: BTreeSet::new(),
        });
        if !name.is_empty() {
            entry.nodes.insert(name);
        }
    }
}
