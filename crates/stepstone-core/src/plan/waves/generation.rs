//! The waves of one stretch of workers: grouped by hardware generation, one canary per
//! generation, then batches under the generation's limit, with the nodes that cannot move now
//! retried once and the blocked ones listed last.

use std::collections::{BTreeMap, HashSet};

use crate::capacity::Unschedulable;

use super::super::limits::LimitSource;
use super::super::model::{Wave, WaveBound, WaveKind};
use super::batch::Done;
use super::{Limit, Planner, Stop, TraceEvent};

impl Planner<'_> {
    fn by_generation(&self, names: &[String]) -> Vec<(String, Vec<u32>)> {
        let mut groups: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for name in names {
            if let Some(idx) = self.model.node(name).map(|n| n.0) {
                groups.entry(self.node(idx).generation.as_str()).or_default().push(idx);
            }
        }
        for g in groups.values_mut() {
            g.sort_by(|a, b| self.node(*a).name.cmp(&self.node(*b).name));
        }
        let rank = |g: &str| self.policy.generation_order.iter().position(|x| x == g).unwrap_or(usize::MAX);
        let mut out: Vec<(String, Vec<u32>)> = groups.into_iter().map(|(g, n)| (g.to_string(), n)).collect();
        out.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
        out
    }

    pub(super) fn worker_waves(&mut self, names: &[String], canaries: bool) -> Vec<Wave> {
        let mut waves = Vec::new();
        let generations = self.by_generation(names);
        let mut queues: Vec<(String, Vec<u32>, Vec<u32>)> = Vec::new();
        for (generation, nodes) in generations {
            let (blocked, free): (Vec<u32>, Vec<u32>) =
                nodes.into_iter().partition(|&n| !self.static_blocks[n as usize].is_empty());
            queues.push((generation, free, blocked));
        }
        if canaries {
            for (generation, free, _) in &mut queues {
                let mut chosen = None;
                let mut i = 0;
                while i < free.len() {
                    let candidate = free[i];
                    match self.batch_limited(&[candidate], Limit::single(WaveBound::Canary)) {
                        Ok(done) => {
                            chosen = Some((candidate, done));
                            free.remove(i);
                            break;
                        }
                        Err(_) => {
                            // No room for it now; it is retried after the generation's batches.
                            i += 1;
                        }
                    }
                }
                if let Some((node, done)) = chosen {
                    let mut reason = format!(
                        "canary: first {generation} node to move, then a {}m soak before the next wave",
                        self.policy.canary_soak_minutes
                    );
                    reason.push_str(&done.budget_note(self.policy.pod_start_minutes));
                    waves.push(Wave {
                        kind: WaveKind::Canary,
                        generation: generation.clone(),
                        nodes: vec![self.node(node).name.clone()],
                        reason,
                        wait_after_minutes: self.policy.canary_soak_minutes,
                        pods_moved: done.pods_moved,
                        pdb_wait_minutes: done.pdb_wait_minutes(self.policy.pod_start_minutes),
                        blockers: vec![],
                        bound: Some(WaveBound::Canary),
                    });
                }
            }
        }
        for (generation, free, mut blocked) in queues {
            let limit = self.limit_of(&generation);
            let mut pending: std::collections::VecDeque<u32> = strided(&free, limit.size).into();
            let mut deferred: Vec<u32> = Vec::new();
            let mut retried = false;
            loop {
                // Nodes that cannot be drained until their blockers are fixed join the
                // generation's last batch when it has room for them: the rollout stops at that
                // batch's drain until the fix, as it would at a wave of their own, and the
                // batch then moves them with the others instead of costing one more move.
                if !retried && deferred.is_empty() && !pending.is_empty() && pending.len() + blocked.len() <= limit.size
                {
                    pending.extend(blocked.drain(..));
                }
                if pending.is_empty() {
                    if retried || deferred.is_empty() {
                        break;
                    }
                    retried = true;
                    pending = std::mem::take(&mut deferred).into();
                }
                let candidates: Vec<u32> = pending.iter().copied().collect();
                match self.batch_limited(&candidates, limit) {
                    Ok(done) => {
                        let taken: HashSet<u32> = done.nodes.iter().copied().collect();
                        pending.retain(|n| !taken.contains(n));
                        let size = done.nodes.len();
                        let mut reason = match &done.stop {
                            Stop::Limit(_) => self.limit_reason(&generation, limit),
                            Stop::Budget { rounds, fair } => format!(
                                "budget: one more node would make its evictions wait {rounds} rounds (+{}m), {} more than the generation's fair share, longer than one more batch",
                                rounds.saturating_sub(1) * self.policy.pod_start_minutes,
                                rounds.saturating_sub(*fair)
                            ),
                            Stop::EndOfGeneration if !blocked.is_empty() || !deferred.is_empty() => {
                                format!("last {generation} nodes that can be drained now: {size}")
                            }
                            Stop::EndOfGeneration if size == 1 => format!("rest of {generation}: 1 node left"),
                            Stop::EndOfGeneration => format!("rest of {generation}: {size} nodes left"),
                            Stop::Capacity { size: tried, why } => capacity_reason(*tried, why),
                        };
                        reason.push_str(&done.budget_note(self.policy.pod_start_minutes));
                        let held: Vec<u32> = done
                            .nodes
                            .iter()
                            .copied()
                            .filter(|&n| !self.static_blocks[n as usize].is_empty())
                            .collect();
                        let blockers = if held.is_empty() { vec![] } else { self.blocker_refs(&held) };
                        if !blockers.is_empty() {
                            let held = held.len();
                            reason.push_str(&format!(
                                "; {held} of its nodes cannot be drained until fixed: {}",
                                blockers.join("; ")
                            ));
                        }
                        let bound = match &done.stop {
                            Stop::Limit(b) => *b,
                            Stop::EndOfGeneration => WaveBound::RestOfGeneration,
                            Stop::Capacity { .. } => WaveBound::Capacity,
                            Stop::Budget { .. } => WaveBound::Budget,
                        };
                        waves.push(Wave {
                            kind: WaveKind::Batch,
                            generation: generation.clone(),
                            nodes: done.nodes.iter().map(|&n| self.node(n).name.clone()).collect(),
                            reason,
                            wait_after_minutes: self.policy.batch_wait_minutes,
                            pods_moved: done.pods_moved,
                            pdb_wait_minutes: done.pdb_wait_minutes(self.policy.pod_start_minutes),
                            blockers,
                            bound: Some(bound),
                        });
                    }
                    Err(why) => {
                        let n = pending.pop_front().expect("not empty");
                        if retried {
                            self.record_nowhere(n, &why);
                            self.push_blocked(&mut waves, &generation, &[n]);
                        } else {
                            deferred.push(n);
                        }
                    }
                }
            }
            for chunk in blocked.chunks(limit.size.clamp(1, 1 << 20)) {
                self.push_blocked(&mut waves, &generation, chunk);
            }
        }
        waves
    }

    /// The references of the blockers holding up any of `nodes`, sorted.
    fn blocker_refs(&self, nodes: &[u32]) -> Vec<String> {
        let mut refs: Vec<String> = Vec::new();
        for &n in nodes {
            refs.extend(self.static_blocks[n as usize].iter().cloned());
            let name = &self.node(n).name;
            refs.extend(self.found.values().filter(|b| b.nodes.contains(name)).map(|b| b.reference()));
        }
        refs.sort();
        refs.dedup();
        refs
    }

    fn push_blocked(&mut self, waves: &mut Vec<Wave>, generation: &str, nodes: &[u32]) {
        let refs = self.blocker_refs(nodes);
        self.record(TraceEvent::WaveStart {
            hop: self.hop,
            nodes: nodes.iter().map(|&n| self.node(n).name.clone()).collect(),
        });
        self.record(TraceEvent::WaveEnd);
        waves.push(Wave {
            kind: WaveKind::Batch,
            generation: generation.to_string(),
            nodes: nodes.iter().map(|&n| self.node(n).name.clone()).collect(),
            reason: format!("blocked: cannot be drained until fixed: {}", refs.join("; ")),
            wait_after_minutes: self.policy.batch_wait_minutes,
            pods_moved: 0,
            pdb_wait_minutes: 0,
            blockers: refs,
            bound: Some(WaveBound::Blocked),
        });
    }

    /// The batch limit of `generation`.
    fn limit_of(&self, generation: &str) -> Limit {
        match self.policy.limits.get(generation) {
            Some(l) => Limit {
                size: l.limit.max(1) as usize,
                bound: match l.source {
                    LimitSource::Operator | LimitSource::OperatorDefault => WaveBound::Operator,
                    LimitSource::GenerationShare => WaveBound::GenerationShare,
                    LimitSource::Capacity => WaveBound::Capacity,
                },
                // The operator's number is taken as given: budgets then cost time only.
                budget_rounds: if l.source.is_operator() { 0 } else { self.policy.max_budget_rounds },
            },
            None => {
                Limit { size: self.policy.fallback_limit.max(1) as usize, bound: WaveBound::Operator, budget_rounds: 0 }
            }
        }
    }

    fn limit_reason(&self, generation: &str, limit: Limit) -> String {
        let workers = self.policy.limits.get(generation).map_or(0, |l| l.workers);
        let oldest = self.policy.generation_order.first().is_some_and(|g| g == generation);
        match limit.bound {
            WaveBound::GenerationShare => format!(
                "generation share: {} of the {workers} {generation} workers at once ({})",
                limit.size,
                if oldest { "1/8 of the oldest generation" } else { "1/5 of a later generation" }
            ),
            WaveBound::Capacity => {
                format!("capacity: no batch of more than {} nodes fits the other nodes' headroom", limit.size)
            }
            _ => format!("operator: --max-unavailable {}", limit.size),
        }
    }

    /// Drain a control-plane node on its own. On failure the node's blockers, recorded.
    pub(super) fn control_plane_drain(&mut self, idx: u32) -> Result<Done, Vec<String>> {
        if !self.static_blocks[idx as usize].is_empty() {
            return Err(self.static_blocks[idx as usize].clone());
        }
        self.batch_limited(&[idx], Limit::single(WaveBound::Canary)).map_err(|why| {
            self.record_nowhere(idx, &why);
            let name = &self.node(idx).name;
            self.found.values().filter(|b| b.nodes.contains(name)).map(|b| b.reference()).collect()
        })
    }
}

/// `nodes` reordered so that each run of `batch` consecutive entries is spread evenly over the
/// whole list (every k-th node, k = len / batch): replicas of a workload sit on neighbouring
/// nodes (placed one after another, or moved together by an earlier batch), so a batch of
/// neighbours would evict many pods under one budget one at a time, while a spread batch holds
/// a few pods of many budgets, whose waits overlap.
fn strided(nodes: &[u32], batch: usize) -> Vec<u32> {
    let step = nodes.len().div_ceil(batch.max(1)).max(1);
    (0..step).flat_map(|start| nodes.iter().skip(start).step_by(step).copied()).collect()
}

fn capacity_reason(tried: usize, why: &Unschedulable) -> String {
    match &why.closest {
        Some(overflow) => format!("capacity: {tried} nodes at once would put {overflow}"),
        None => format!("capacity: with {tried} nodes at once, {why}"),
    }
}
