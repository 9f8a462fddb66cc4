//! Bounds on what any plan can do: the most nodes a batch can hold by aggregate capacity alone
//! (the default batch limits start from it), and the relaxed plan whose working time is the
//! plan's lower bound, and the budget waits no plan avoids in the first hop.

use std::collections::HashSet;

use crate::fasthash::FastMap;

use super::super::model::{Durations, Hop, Wave, WaveBound, WaveKind};
use super::{Fate, Planner};

impl Planner<'_> {
    /// An upper bound on the number of nodes any safe batch can hold, from aggregate capacity
    /// alone: whatever the batch, every pod that moves must end up on the other nodes within
    /// the headroom. Per resource, each node offers at most `max(limit, load now) - load that
    /// never moves`; removing the nodes offering least must leave room for all movable load.
    /// Bin packing, selectors, anti-affinity and budgets can only make batches smaller.
    pub fn capacity_batch_bound(&self) -> usize {
        let headroom = self.policy.headroom;
        let count = self.to_inv.len();
        let mut offer: [Vec<i128>; 3] =
            [Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count)];
        let mut movable = [0i128; 3];
        for n in 0..count as u32 {
            let node = self.node(n);
            let a = node.allocatable;
            let mut load = [0i128; 3];
            let mut stay = [0i128; 3];
            for &p in &self.on_node[n as usize] {
                let r = self.pod(p).requests;
                let v = [i128::from(r.cpu_millis), i128::from(r.memory_bytes), 1];
                for k in 0..3 {
                    load[k] += v[k];
                    if self.fates[p as usize] == Fate::Moves {
                        movable[k] += v[k];
                    } else {
                        stay[k] += v[k];
                    }
                }
            }
            let limit = [
                i128::from(a.cpu_millis) * i128::from(headroom.as_percent()) / 100,
                i128::from(a.memory_bytes) * i128::from(headroom.as_percent()) / 100,
                i128::from(a.pods),
            ];
            for k in 0..3 {
                offer[k].push(limit[k].max(load[k]) - stay[k]);
            }
        }
        let mut bound = count;
        for k in 0..3 {
            offer[k].sort_unstable();
            let mut remaining: i128 = offer[k].iter().sum();
            let mut removable = 0;
            for o in &offer[k] {
                if remaining - o < movable[k] {
                    break;
                }
                remaining -= o;
                removable += 1;
            }
            bound = bound.min(removable);
        }
        bound.max(1)
    }
}

/// The plan's hops with every generation's batches re-cut to `batch_size(generation)` nodes (or
/// the plan's largest batch of that generation, if larger) and no time lost to budgets: the
/// lower bound's shape. Canaries, soaks, waits and control-plane steps stay.
pub fn relaxed(hops: &[Hop], batch_size: impl Fn(&str) -> usize, batch_wait_minutes: u32) -> Vec<Hop> {
    let recut = |waves: &[Wave]| -> Vec<Wave> {
        let mut out: Vec<Wave> = Vec::new();
        let mut i = 0;
        while i < waves.len() {
            let w = &waves[i];
            if w.kind == WaveKind::Canary {
                out.push(Wave { pdb_wait_minutes: 0, ..w.clone() });
                i += 1;
                continue;
            }
            let run: Vec<&Wave> =
                waves[i..].iter().take_while(|x| x.kind == WaveKind::Batch && x.generation == w.generation).collect();
            i += run.len();
            let largest = run.iter().map(|x| x.nodes.len()).max().unwrap_or(1);
            let nodes: Vec<String> = run.iter().flat_map(|x| x.nodes.iter().cloned()).collect();
            for chunk in nodes.chunks(batch_size(&w.generation).max(largest).max(1)) {
                out.push(Wave {
                    kind: WaveKind::Batch,
                    generation: w.generation.clone(),
                    nodes: chunk.to_vec(),
                    reason: "lower-bound batch".to_string(),
                    wait_after_minutes: batch_wait_minutes,
                    pods_moved: 0,
                    pdb_wait_minutes: 0,
                    blockers: vec![],
                    bound: None,
                });
            }
        }
        out
    };
    let mut out: Vec<Hop> = hops
        .iter()
        .map(|h| Hop { before_control_plane: recut(&h.before_control_plane), waves: recut(&h.waves), ..h.clone() })
        .collect();
    if let Some(last) = out.iter_mut().rev().find_map(|h| h.waves.last_mut()) {
        last.wait_after_minutes = 0;
    }
    out
}

/// Budget time that no plan under the same batch limits avoids in `hop`, per hardware generation
/// (in the hop's order), given where the pods are when the hop starts: `consuming` holds, for
/// every healthy pod whose eviction takes a disruption from exactly one budget, its node at the
/// hop's start and that budget (a view index into `allowed`, the disruptions each budget allows
/// with its pods as they are). `relaxed` is the same hop from [`relaxed`].
///
/// Why no plan pays less. A generation's workers are drained by its canary and its batches, and
/// nothing else moves a pod off them before (pods on the hop's catch-up workers, drained before
/// the control plane, are left out of the count). An eviction round takes at most `allowed`
/// healthy pods of a budget (replacements only give back what the round took), so a budget with
/// `c` pods on those workers needs `c / allowed` rounds, whatever the cut. The canary may hold up
/// to one node's worth; the rest need `R` rounds over the generation's batches. A batch of `r`
/// rounds waits `r − 1` pod starts, so `m` batches wait at least `R − m` of them; every plan
/// under the same limits has at least the `K` batches the relaxed plan charges, and each batch
/// beyond them costs a worker's move and the wait after it. The least any plan pays beyond the
/// relaxed plan is then `(R − K) × min(pod start, batch)`. Pods not Ready, pods under two
/// budgets (never evicted) and budgets that allow nothing (the plan reports those as hangs) count
/// for nothing, and callers leave out the pods of nodes that cannot be drained until fixed, so
/// the floor stays below what any plan pays. One assumption: the other plan drains the same
/// workers. A plan that finds no room for a node's pods when it gets there leaves the node in a
/// wave of its own and never evicts its pods; that wave costs a batch, more than the rounds it
/// saves unless the node alone holds more than a batch's time in rounds of one budget (the
/// property tests compare plans under every smaller limit and have not met one).
///
/// Nodes are whatever `node_of` makes of a wave's node names (the planner's indices, or the names
/// themselves), so that the per-pod work is a lookup of a small key.
pub fn hop_budget_floor<N: Copy + Ord + std::hash::Hash>(
    hop: &Hop,
    relaxed: &Hop,
    node_of: impl Fn(&str) -> Option<N>,
    consuming: impl IntoIterator<Item = (N, usize)>,
    allowed: &[i64],
    durations: &Durations,
    batch_wait_minutes: u32,
) -> Vec<(String, u64)> {
    let caught_up: HashSet<&str> =
        hop.before_control_plane.iter().flat_map(|w| w.nodes.iter().map(String::as_str)).collect();
    let mut generations: Vec<&str> = Vec::new();
    let mut slot_of: FastMap<N, u32> = FastMap::default();
    for w in &hop.waves {
        let g = match generations.iter().position(|x| *x == w.generation) {
            Some(g) => g,
            None => {
                generations.push(&w.generation);
                generations.len() - 1
            }
        };
        if w.bound == Some(WaveBound::Blocked) {
            continue;
        }
        for n in w.nodes.iter().filter(|n| !caught_up.contains(n.as_str())) {
            if let Some(n) = node_of(n) {
                slot_of.insert(n, g as u32);
            }
        }
    }
    // (generation, budget, node) of every counted pod; sorted, so each (generation, budget) is
    // one run, and each node's pods one run within it.
    let mut counted: Vec<(u32, u32, N)> = Vec::new();
    for (node, budget) in consuming {
        let Some(&g) = slot_of.get(&node) else { continue };
        if allowed.get(budget).is_none_or(|&a| a <= 0) {
            continue;
        }
        counted.push((g, budget as u32, node));
    }
    counted.sort_unstable();
    let mut rounds = vec![0u64; generations.len()];
    for run in counted.chunk_by(|x, y| (x.0, x.1) == (y.0, y.1)) {
        let (g, b, _) = run[0];
        let busiest = run.chunk_by(|x, y| x.2 == y.2).map(<[_]>::len).max().unwrap_or(0);
        let needed = ((run.len() - busiest) as u64).div_ceil(allowed[b as usize] as u64);
        rounds[g as usize] = rounds[g as usize].max(needed);
    }
    let per_round = u64::from(durations.pod_start_minutes)
        .min(u64::from(durations.worker_minutes()) + u64::from(batch_wait_minutes));
    generations
        .iter()
        .zip(rounds)
        .map(|(g, r)| {
            let batches =
                relaxed.waves.iter().filter(|w| w.kind == WaveKind::Batch && w.generation == *g).count() as u64;
            (g.to_string(), r.saturating_sub(batches) * per_round)
        })
        .collect()
}
