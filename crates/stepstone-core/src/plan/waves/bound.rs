//! Bounds on what any plan can do: the most nodes a batch can hold by aggregate capacity alone
//! (the default batch limits start from it), and the relaxed plan whose working time is the
//! plan's lower bound.

use super::super::model::{Hop, Wave, WaveKind};
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
