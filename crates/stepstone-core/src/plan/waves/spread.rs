//! Budgets whose replicas crowd one hardware generation, and what spreading them would save.
//!
//! Every worker of a generation is drained in that generation's waves, and an eviction round
//! takes at most a budget's allowed disruptions, so a generation needs at least as many rounds
//! as its most crowded budget has pods there over what that budget allows, whichever nodes its
//! batches take. Evicted pods land on the emptiest nodes, which during a generation's batches
//! are that generation's nodes drained just before, so the crowding lasts into every hop. The
//! plan cannot change where replicas run; the operator can, before the upgrade. This module
//! counts, from the inventory's placement and the plan's first hop, the budget waits a hop pays
//! and what it would pay with every budget's replicas spread over the generations in proportion
//! to their workers.

use std::collections::BTreeMap;

use crate::fasthash::FastMap;
use crate::findings::{Finding, Severity};
use crate::inventory::DEFAULT_GENERATION_LABELS;
use crate::object_key::ObjectKey;

use super::super::model::{Hop, WaveBound};
use super::{NOWHERE, Planner};

/// Budget minutes per hop as placed now and as spread, and the budgets that set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crowding {
    /// Budget waits one hop cannot avoid with the replicas where they are.
    pub minutes_now: u64,
    /// The same with every budget's replicas spread over the generations.
    pub minutes_spread: u64,
    /// Budgets holding a generation above its spread level, most crowded first.
    pub crowded: Vec<CrowdedBudget>,
}

/// One budget with more of its replicas in one generation than spreading would leave there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrowdedBudget {
    pub budget: ObjectKey,
    pub generation: String,
    /// The budget's pods that move, in that generation.
    pub pods_there: u64,
    /// The budget's pods that move, on all workers.
    pub pods_on_workers: u64,
}

impl Planner<'_> {
    /// The budget waits of one hop from the inventory's placement against the same with the
    /// replicas spread, given the plan's `hops` (their first hop's waves per generation).
    pub fn crowding(&self, hops: &[Hop]) -> Crowding {
        let Some(first) = hops.first() else {
            return Crowding { minutes_now: 0, minutes_spread: 0, crowded: vec![] };
        };
        let pod_start = u64::from(self.policy.pod_start_minutes.max(1));
        // Waves per generation in the first hop: each gets one round within its own move.
        let mut waves: BTreeMap<&str, u64> = BTreeMap::new();
        for w in first.before_control_plane.iter().chain(&first.waves) {
            if w.bound != Some(WaveBound::Blocked) {
                *waves.entry(w.generation.as_str()).or_default() += 1;
            }
        }
        let mut workers: BTreeMap<&str, u64> = BTreeMap::new();
        let mut generation_of: FastMap<&str, &str> = FastMap::default();
        for n in self.inv.nodes.iter().filter(|n| !n.is_control_plane()) {
            *workers.entry(n.generation.as_str()).or_default() += 1;
            generation_of.insert(n.name.as_str(), n.generation.as_str());
        }
        let all_workers: u64 = workers.values().sum();
        // Per budget, its healthy pods that move, per generation, where the inventory has them.
        let mut pods: BTreeMap<u32, BTreeMap<&str, u64>> = BTreeMap::new();
        for (i, pod) in self.inv.pods.iter().enumerate() {
            let b = self.consumes[i];
            if b == NOWHERE {
                continue;
            }
            if let Some(g) = pod.node_name.as_deref().and_then(|n| generation_of.get(n)) {
                *pods.entry(b).or_default().entry(g).or_default() += 1;
            }
        }
        let allowed = |b: u32| self.budgets.allowed_at(b as usize).max(1) as u64;
        let spread_share =
            |total: u64, g: &str| (total * workers.get(g).copied().unwrap_or(0)).div_ceil(all_workers.max(1));
        let mut rounds_now: BTreeMap<&str, u64> = BTreeMap::new();
        let mut rounds_spread: BTreeMap<&str, u64> = BTreeMap::new();
        for (&b, per) in &pods {
            let total: u64 = per.values().sum();
            for (&g, &c) in per {
                let now = rounds_now.entry(g).or_default();
                *now = (*now).max(c.div_ceil(allowed(b)));
            }
            for &g in workers.keys() {
                let spread = rounds_spread.entry(g).or_default();
                *spread = (*spread).max(spread_share(total, g).div_ceil(allowed(b)));
            }
        }
        let paid = |rounds: &BTreeMap<&str, u64>| -> u64 {
            rounds.iter().map(|(g, &r)| r.saturating_sub(waves.get(g).copied().unwrap_or(1)) * pod_start).sum()
        };
        let mut crowded: Vec<CrowdedBudget> = Vec::new();
        for (&b, per) in &pods {
            let total: u64 = per.values().sum();
            for (&g, &c) in per {
                let level = rounds_spread.get(g).copied().unwrap_or(0).max(waves.get(g).copied().unwrap_or(1));
                if c.div_ceil(allowed(b)) > level {
                    crowded.push(CrowdedBudget {
                        budget: self.budgets.budgets()[b as usize].key(),
                        generation: g.to_string(),
                        pods_there: c,
                        pods_on_workers: total,
                    });
                }
            }
        }
        crowded.sort_by(|a, b| {
            b.pods_there
                .cmp(&a.pods_there)
                .then_with(|| a.budget.cmp(&b.budget))
                .then_with(|| a.generation.cmp(&b.generation))
        });
        Crowding { minutes_now: paid(&rounds_now), minutes_spread: paid(&rounds_spread), crowded }
    }

    /// The finding that tells the operator which budgets to spread and what it would save over
    /// the plan's `hops`, when that is at least one batch's time (a worker's move and the wait
    /// after it) per hop. The saving is an upper estimate: it counts every hop as crowded as the
    /// first, and later hops start from pods the plan has moved.
    pub fn crowding_finding(&self, hops: &[Hop], worker_minutes: u32) -> Option<Finding> {
        let c = self.crowding(hops);
        let per_hop = c.minutes_now.saturating_sub(c.minutes_spread);
        let saved = per_hop * hops.len() as u64;
        if c.crowded.is_empty() || per_hop < u64::from(worker_minutes + self.policy.batch_wait_minutes) {
            return None;
        }
        let label = self
            .inv
            .nodes
            .iter()
            .find(|n| !n.is_control_plane())
            .and_then(|n| DEFAULT_GENERATION_LABELS.iter().find(|k| n.labels.get(**k) == Some(&n.generation)))
            .copied()
            .unwrap_or(DEFAULT_GENERATION_LABELS[0]);
        let named: Vec<String> = c
            .crowded
            .iter()
            .take(3)
            .map(|b| format!("{}: {} of its {} pods on {}", b.budget, b.pods_there, b.pods_on_workers, b.generation))
            .collect();
        let more = if c.crowded.len() > 3 { format!(" and {} more", c.crowded.len() - 3) } else { String::new() };
        Some(Finding::new(
            Severity::Info,
            "plan.crowded-budgets",
            c.crowded[0].budget.to_string(),
            format!(
                "disruption budgets keep their replicas in one hardware generation ({}{more}): each eviction round takes only what a budget allows, so the first hop waits {} min on them",
                named.join(", "),
                c.minutes_now
            ),
            format!(
                "spread these workloads' replicas over the generations before the upgrade (a topologySpreadConstraints entry with topologyKey {label} and whenUnsatisfiable: ScheduleAnyway, then a rollout restart): about {} min instead of {} in the first hop, up to {saved} min less over the plan's {} hops",
                c.minutes_spread,
                c.minutes_now,
                hops.len()
            ),
        ))
    }
}
