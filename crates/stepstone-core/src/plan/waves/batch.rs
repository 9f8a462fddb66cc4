//! One batch: grown node by node while the capacity model can place every pod it evicts (and,
//! under a default limit, while its budget rounds stay short), then its evictions run.

use std::collections::BTreeSet;

use crate::capacity::{NodeIdx, PodSlot, Unschedulable};
use crate::fasthash::FastMap;

use super::{Limit, NOWHERE, Planner, Stop, TraceEvent};

impl Planner<'_> {
    /// Grow a batch from `candidates` while it stays safe, then run its evictions. `Err` when
    /// even the first node cannot be drained. Under the operator's limit (or a single node) the
    /// batch takes the candidates in order; under a default limit it chooses them by their
    /// budgets ([`Self::grow_by_budget`]).
    pub(super) fn batch_limited(&mut self, candidates: &[u32], limit: Limit) -> Result<Done, Unschedulable> {
        let mut nodes: Vec<u32> = Vec::new();
        let mut moves: Vec<(u32, u32, u32)> = Vec::new();
        let stop = if limit.budget_rounds > 0 {
            self.grow_by_budget(candidates, limit, &mut nodes, &mut moves)?
        } else {
            let mut stop = Stop::EndOfGeneration;
            for &c in candidates {
                if nodes.len() == limit.size {
                    stop = Stop::Limit(limit.bound);
                    break;
                }
                match self.drain_into_model(c) {
                    Ok(m) => {
                        nodes.push(c);
                        moves.extend(m);
                    }
                    Err(why) => {
                        if nodes.is_empty() {
                            return Err(why);
                        }
                        stop = Stop::Capacity { size: nodes.len() + 1, why };
                        break;
                    }
                }
            }
            stop
        };
        // A pod placed on a node that later joined the batch moved twice in the simulation; in
        // the real drain every batch node is cordoned first, so it is one eviction from its
        // original node to its final one.
        let mut first_from: FastMap<u32, u32> = FastMap::default();
        let mut evicted: Vec<u32> = Vec::new();
        for &(pod, from, _) in &moves {
            if let std::collections::hash_map::Entry::Vacant(e) = first_from.entry(pod) {
                e.insert(from);
                evicted.push(pod);
            }
        }
        if self.trace.is_some() {
            let names: Vec<String> = nodes.iter().map(|&n| self.node(n).name.clone()).collect();
            self.record(TraceEvent::WaveStart { hop: self.hop, nodes: names });
            for &pod in &evicted {
                let (from, to) = (first_from[&pod], self.pod_node[pod as usize]);
                self.record(TraceEvent::Move {
                    pod: pod as usize,
                    from: self.node(from).name.clone(),
                    to: self.node(to).name.clone(),
                });
            }
        }
        let (rounds, waited_on) = self.evict_in_rounds(&evicted);
        for &n in &nodes {
            self.model.set_unschedulable(NodeIdx(n), false);
        }
        self.record(TraceEvent::WaveEnd);
        Ok(Done { nodes, pods_moved: evicted.len() as u64, rounds, waited_on, stop })
    }

    /// Fill a batch of up to `limit.size` nodes whose evictions need as few budget rounds as
    /// the generation allows. Each eviction round takes one disruption from every budget at
    /// once, so a batch costs the rounds of its most crowded budget: nodes whose pods share no
    /// budget go together, their waits overlap. The batch takes, in candidate order, the nodes
    /// that keep its rounds fewest; only when that leaves it short does it accept the next
    /// fewest, and so on up to the generation's fair share (every budget's pods on the
    /// candidates spread evenly over the batches still to come) plus `limit.budget_rounds` (the
    /// rounds one more batch costs: beyond that, waiting is slower than another batch). A node
    /// passed over costs a look at its pods, not a simulated drain.
    fn grow_by_budget(
        &mut self,
        candidates: &[u32],
        limit: Limit,
        nodes: &mut Vec<u32>,
        moves: &mut Vec<(u32, u32, u32)>,
    ) -> Result<Stop, Unschedulable> {
        let budget_count = self.budgets.budgets().len();
        let allowed: Vec<u64> = (0..budget_count).map(|b| self.budgets.allowed_at(b).max(1) as u64).collect();
        let mut waiting = vec![0u64; budget_count];
        // Each candidate's own pods per budget, `(budget, pods)` from `own[start[i]..start[i + 1]]`:
        // they stay put until the node joins the batch, and pods moved onto it by the batch are
        // already counted in `per_budget`, so these counts hold for the whole batch.
        let mut own: Vec<(u32, u32)> = Vec::new();
        let mut start: Vec<usize> = Vec::with_capacity(candidates.len() + 1);
        for &c in candidates {
            start.push(own.len());
            let first = own.len();
            for &p in &self.on_node[c as usize] {
                let b = self.consumes[p as usize];
                if b != NOWHERE {
                    waiting[b as usize] += 1;
                    match own[first..].iter_mut().find(|(x, _)| *x == b) {
                        Some((_, n)) => *n += 1,
                        None => own.push((b, 1)),
                    }
                }
            }
        }
        start.push(own.len());
        let rounds_with = |i: usize, per_budget: &[u32]| -> u32 {
            own[start[i]..start[i + 1]]
                .iter()
                .map(|&(b, n)| u64::from(per_budget[b as usize] + n).div_ceil(allowed[b as usize]) as u32)
                .max()
                .unwrap_or(0)
        };
        let batches_left = candidates.len().div_ceil(limit.size.max(1)).max(1) as u64;
        let fair = waiting.iter().zip(&allowed).map(|(&w, &a)| w.div_ceil(batches_left).div_ceil(a)).max().unwrap_or(1);
        let fair = u32::try_from(fair).unwrap_or(u32::MAX).max(1);
        let cap = fair.saturating_add(limit.budget_rounds);
        // The passes start from the fewest rounds any node needs, not from the fair share: at
        // the fair share the batch fills with the first nodes under it in candidate order, and
        // the nodes it passes over, the most crowded, pile up in the generation's last batch.
        let mut threshold = 1;
        // Healthy pods of each budget this batch evicts, and the pods already counted (a pod
        // placed on a node that later joins the batch is still one eviction).
        let mut per_budget = vec![0u32; budget_count];
        let mut counted = vec![false; self.inv.pods.len()];
        let mut taken = vec![false; candidates.len()];
        // Each candidate's rounds when last looked at. A node's rounds only grow while the batch
        // does (its own pods stay, the budgets' counts rise), so a node last seen at or above
        // the fewest rounds already found over the threshold in this pass cannot lower them and
        // is passed over without a second look: the same batch, fewer looks.
        let mut seen = vec![0u32; candidates.len()];
        loop {
            // The fewest rounds among the nodes left out at this threshold.
            let mut over: Option<u32> = None;
            for (i, &c) in candidates.iter().enumerate() {
                if taken[i] {
                    continue;
                }
                if nodes.len() == limit.size {
                    return Ok(Stop::Limit(limit.bound));
                }
                if !nodes.is_empty() && seen[i] > threshold && over.is_some_and(|o| seen[i] >= o) {
                    continue;
                }
                let rounds = rounds_with(i, &per_budget);
                seen[i] = rounds;
                if rounds > threshold && !nodes.is_empty() {
                    over = Some(over.map_or(rounds, |r| r.min(rounds)));
                    continue;
                }
                match self.drain_into_model(c) {
                    Ok(m) => {
                        for &(p, _, _) in &m {
                            if !std::mem::replace(&mut counted[p as usize], true) {
                                let b = self.consumes[p as usize];
                                if b != NOWHERE {
                                    per_budget[b as usize] += 1;
                                }
                            }
                        }
                        taken[i] = true;
                        nodes.push(c);
                        moves.extend(m);
                    }
                    Err(why) => {
                        if nodes.is_empty() {
                            return Err(why);
                        }
                        return Ok(Stop::Capacity { size: nodes.len() + 1, why });
                    }
                }
            }
            // Every candidate taken: the generation ends here, whether or not the batch also
            // reached its limit.
            if taken.iter().all(|&t| t) {
                return Ok(Stop::EndOfGeneration);
            }
            if nodes.len() == limit.size {
                return Ok(Stop::Limit(limit.bound));
            }
            match over {
                None => return Ok(Stop::EndOfGeneration),
                Some(rounds) if rounds > cap => return Ok(Stop::Budget { rounds, fair }),
                // Every node left needs more rounds than this pass allowed: the fewest of them.
                Some(rounds) => threshold = rounds,
            }
        }
    }

    /// Cordon `node` and place every pod that moves off it. On failure everything is undone.
    fn drain_into_model(&mut self, node: u32) -> Result<Vec<(u32, u32, u32)>, Unschedulable> {
        self.model.set_unschedulable(NodeIdx(node), true);
        let leaving: Vec<u32> =
            self.on_node[node as usize].iter().copied().filter(|&p| self.moves[p as usize]).collect();
        let mut done: Vec<(u32, u32, u32)> = Vec::with_capacity(leaving.len());
        for p in leaving {
            let pod = self.pod(p);
            let slot = self.slot(p);
            self.model.unbind(slot);
            match self.model.pick(slot, None) {
                Some(NodeIdx(t)) => {
                    self.model.bind(slot, NodeIdx(t));
                    self.relocate(p, node, t);
                    done.push((p, node, t));
                }
                None => {
                    let why = self.model.explain(pod, None);
                    self.model.bind(slot, NodeIdx(node));
                    for &(q, from, to) in done.iter().rev() {
                        self.model.bind(self.slot(q), NodeIdx(from));
                        self.relocate(q, to, from);
                    }
                    self.model.set_unschedulable(NodeIdx(node), false);
                    return Err(why);
                }
            }
        }
        Ok(done)
    }

    /// The model's handle of a pod that moves (every such pod got one in [`Planner::new`]).
    fn slot(&self, pod: u32) -> PodSlot {
        self.slots[pod as usize].expect("pods that move have a slot")
    }

    fn relocate(&mut self, pod: u32, from: u32, to: u32) {
        let list = &mut self.on_node[from as usize];
        if let Some(pos) = list.iter().position(|&p| p == pod) {
            list.swap_remove(pos);
        }
        self.on_node[to as usize].push(pod);
        self.pod_node[pod as usize] = to;
    }
}

/// A simulated batch that went through.
pub(super) struct Done {
    pub(super) nodes: Vec<u32>,
    pub(super) pods_moved: u64,
    rounds: u32,
    waited_on: BTreeSet<String>,
    pub(super) stop: Stop,
}

impl Done {
    pub(super) fn pdb_wait_minutes(&self, pod_start: u32) -> u32 {
        self.rounds.saturating_sub(1) * pod_start
    }

    pub(super) fn budget_note(&self, pod_start: u32) -> String {
        if self.waited_on.is_empty() {
            return String::new();
        }
        let list: Vec<&str> = self.waited_on.iter().map(String::as_str).take(3).collect();
        let more =
            if self.waited_on.len() > 3 { format!(" and {} more", self.waited_on.len() - 3) } else { String::new() };
        format!(
            "; evictions wait on {}{more} ({} rounds, +{}m)",
            list.join(", "),
            self.rounds,
            self.pdb_wait_minutes(pod_start)
        )
    }
}
