//! The batch's shared view of its PodDisruptionBudgets: the server's last reported status (kept
//! fresh by a watch) minus the evictions this drain has in flight, so several nodes drained at
//! once never fire an eviction the budget must refuse, and pods whose budgets allow go first.
//!
//! Pure: the engine feeds status updates and eviction answers; [`pick`] decides what to send.
//! The API server stays the final judge: a refused eviction only costs a retry.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;
use stepstone_core::inventory::{IntOrPercent, Pod, PodPhase};
use stepstone_core::object_key::ObjectKey;

/// One budget as the server last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveBudget {
    pub namespace: String,
    pub name: String,
    #[serde(serialize_with = "int_or_percent", skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrPercent>,
    #[serde(serialize_with = "int_or_percent", skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrPercent>,
    /// `AlwaysAllow` lets unready pods go without consuming the budget.
    #[serde(skip)]
    pub always_allow_unhealthy: bool,
    pub current_healthy: i64,
    pub desired_healthy: i64,
    pub expected_pods: i64,
    pub disruptions_allowed: i64,
    /// False while the disruption controller has not processed the latest spec (the server
    /// refuses every eviction until it has).
    #[serde(skip)]
    pub observed: bool,
}

impl LiveBudget {
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(&self.namespace, &self.name)
    }

    /// `minAvailable 2` / `maxUnavailable 25%` / `no minimum`.
    pub fn rule(&self) -> String {
        match (self.min_available, self.max_unavailable) {
            (Some(m), _) => format!("minAvailable {m}"),
            (None, Some(m)) => format!("maxUnavailable {m}"),
            (None, None) => "no minimum".to_string(),
        }
    }
}

/// As the PDB spec writes it: `2` or `"50%"`.
fn int_or_percent<S: serde::Serializer>(value: &Option<IntOrPercent>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(IntOrPercent::Int(i)) => s.serialize_i64(*i),
        Some(IntOrPercent::Percent(p)) => s.serialize_str(&format!("{p}%")),
        None => s.serialize_none(),
    }
}

/// How a pod counts for its budgets (upstream eviction rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodHealth {
    /// Running and Ready: always guarded by the budget.
    Ready,
    /// Running, not Ready: free under `AlwaysAllow`, or under the default policy while the budget
    /// is whole (`currentHealthy >= desiredHealthy > 0`).
    Unready,
    /// Pending, Succeeded, Failed or already terminating: the budget is not consulted.
    Unguarded,
}

impl PodHealth {
    /// How `pod` counts for its budgets now.
    pub fn of(pod: &Pod) -> PodHealth {
        if pod.is_terminating() || pod.phase != PodPhase::Running {
            PodHealth::Unguarded
        } else if pod.ready {
            PodHealth::Ready
        } else {
            PodHealth::Unready
        }
    }
}

/// Why the view holds a pod back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub pdb: ObjectKey,
    pub needs: i64,
    pub has: i64,
}

#[derive(Debug, Default, Clone)]
pub struct BudgetView {
    budgets: BTreeMap<ObjectKey, LiveBudget>,
    /// Evictions sent and not yet answered, per budget.
    in_flight: BTreeMap<ObjectKey, i64>,
    /// When the server last answered an eviction under each budget (ms since the start).
    last_answer_ms: BTreeMap<ObjectKey, u64>,
}

impl BudgetView {
    pub fn update(&mut self, budget: LiveBudget) {
        self.budgets.insert(budget.key(), budget);
    }

    pub fn remove(&mut self, key: &ObjectKey) {
        self.budgets.remove(key);
    }

    pub fn get(&self, key: &ObjectKey) -> Option<&LiveBudget> {
        self.budgets.get(key)
    }

    /// Budgets (by key) that select a pod, as known at classification.
    pub fn known(&self) -> impl Iterator<Item = &LiveBudget> {
        self.budgets.values()
    }

    /// `None` when an eviction of a pod under `pdbs` would be accepted as far as we know.
    pub fn hold(&self, pdbs: &[ObjectKey], health: PodHealth) -> Option<Hold> {
        if health == PodHealth::Unguarded {
            return None;
        }
        for key in pdbs {
            let Some(b) = self.budgets.get(key) else { continue };
            if health == PodHealth::Unready
                && b.observed
                && (b.always_allow_unhealthy || (b.current_healthy >= b.desired_healthy && b.desired_healthy > 0))
            {
                continue;
            }
            let in_flight = self.in_flight.get(key).copied().unwrap_or(0);
            if !b.observed || b.disruptions_allowed - in_flight <= 0 {
                // Our own unanswered evictions already count against the healthy pods.
                let has = (b.current_healthy - in_flight).max(0);
                return Some(Hold { pdb: key.clone(), needs: b.desired_healthy, has });
            }
        }
        None
    }

    /// An eviction is on its way.
    pub fn reserve(&mut self, pdbs: &[ObjectKey]) {
        for key in pdbs {
            *self.in_flight.entry(key.clone()).or_insert(0) += 1;
        }
    }

    /// The answer came back; `accepted` means the server spent one disruption per budget, which
    /// the next status from the watch will also show.
    pub fn settle(&mut self, pdbs: &[ObjectKey], accepted: bool, health: PodHealth, now_ms: u64) {
        for key in pdbs {
            self.last_answer_ms.insert(key.clone(), now_ms);
            if let Some(n) = self.in_flight.get_mut(key) {
                *n = (*n - 1).max(0);
            }
            if accepted
                && health == PodHealth::Ready
                && let Some(b) = self.budgets.get_mut(key)
            {
                b.disruptions_allowed = (b.disruptions_allowed - 1).max(0);
                b.current_healthy = (b.current_healthy - 1).max(0);
            }
        }
    }
}

/// A pod waiting to be evicted, as the dispatcher sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub pdbs: Vec<ObjectKey>,
    pub health: PodHealth,
    /// Not before this time (ms since the drain started): retry intervals after a refusal.
    pub due_ms: u64,
}

/// What to send now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dispatch {
    /// Indexes into the candidate list, in sending order.
    pub send: Vec<usize>,
    /// Candidates held back by the view, with the budget that holds them.
    pub held: Vec<(usize, Hold)>,
}

/// Choose up to `slots` candidates to send at `now_ms`: first those the view lets through
/// (in list order), reserving budget as it goes; then, for each budget that holds pods back
/// and has had no answer from the server within `probe_every`, one pod as a probe, so a stale
/// view never stalls the drain (a refusal costs one request per budget per interval).
pub fn pick(
    candidates: &[Candidate],
    view: &mut BudgetView,
    slots: usize,
    now_ms: u64,
    probe_every: Duration,
) -> Dispatch {
    let mut out = Dispatch::default();
    let mut held_by: BTreeMap<ObjectKey, Vec<usize>> = BTreeMap::new();
    for (i, c) in candidates.iter().enumerate() {
        if c.due_ms > now_ms {
            continue;
        }
        match view.hold(&c.pdbs, c.health) {
            None if out.send.len() < slots => {
                view.reserve(&c.pdbs);
                out.send.push(i);
            }
            None => {}
            Some(hold) => {
                held_by.entry(hold.pdb.clone()).or_default().push(i);
                out.held.push((i, hold));
            }
        }
    }
    let probe_ms = probe_every.as_millis() as u64;
    let mut probed = BTreeSet::new();
    for (pdb, idxs) in held_by {
        if out.send.len() >= slots {
            break;
        }
        // While our own evictions are unanswered the hold is ours, not the server's: no probe.
        let ours = view.in_flight.get(&pdb).copied().unwrap_or(0) > 0;
        let due = !ours && view.last_answer_ms.get(&pdb).is_none_or(|t| now_ms >= t + probe_ms);
        if due && let Some(&i) = idxs.first() {
            // The view says no; ask the server once in a while anyway.
            if probed.insert(i) {
                view.reserve(&candidates[i].pdbs);
                out.send.push(i);
                out.held.retain(|(j, _)| *j != i);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(name: &str, allowed: i64, healthy: i64, desired: i64) -> LiveBudget {
        LiveBudget {
            namespace: "prod".into(),
            name: name.into(),
            min_available: Some(IntOrPercent::Int(desired)),
            max_unavailable: None,
            always_allow_unhealthy: false,
            current_healthy: healthy,
            desired_healthy: desired,
            expected_pods: healthy,
            disruptions_allowed: allowed,
            observed: true,
        }
    }

    fn cand(pdb: &str) -> Candidate {
        Candidate { pdbs: vec![ObjectKey::new("prod", pdb)], health: PodHealth::Ready, due_ms: 0 }
    }

    #[test]
    fn a_batch_never_spends_more_than_the_budget_allows() {
        let mut view = BudgetView::default();
        view.update(budget("web", 1, 3, 2));
        // Two nodes each hold one web pod: only one eviction may go.
        let cands = vec![cand("web"), cand("web")];
        let d = pick(&cands, &mut view, 10, 0, Duration::from_secs(5));
        assert_eq!(d.send, vec![0]);
        // The other one is held, and not probed while the first eviction is unanswered.
        assert_eq!(d.held, vec![(1, Hold { pdb: ObjectKey::new("prod", "web"), needs: 2, has: 2 })]);
        view.settle(&cands[0].pdbs, true, PodHealth::Ready, 100);
        // The server just answered for this budget: no probe until the interval has passed.
        let d = pick(&cands[1..], &mut view, 10, 200, Duration::from_secs(5));
        assert!(d.send.is_empty(), "{d:?}");
        let d = pick(&cands[1..], &mut view, 10, 5_100, Duration::from_secs(5));
        assert_eq!(d.send, vec![0]);
    }

    #[test]
    fn pods_whose_budgets_allow_go_first_and_blocked_ones_are_probed_once_per_interval() {
        let mut view = BudgetView::default();
        view.update(budget("redis", 0, 2, 2));
        view.update(budget("web", 2, 4, 2));
        let cands = vec![cand("redis"), cand("redis"), cand("web"), cand("web"), cand("web")];
        let d = pick(&cands, &mut view, 10, 0, Duration::from_secs(5));
        assert_eq!(d.send, vec![2, 3, 0]);
        assert_eq!(d.held, vec![(1, Hold { pdb: ObjectKey::new("prod", "redis"), needs: 2, has: 2 }), (4, hold_web())]);
        for i in d.send.iter() {
            view.settle(&cands[*i].pdbs, *i != 0, PodHealth::Ready, 0);
        }
        // Within the interval, no second probe of redis.
        let rest = vec![cand("redis")];
        let d = pick(&rest, &mut view, 10, 4_000, Duration::from_secs(5));
        assert!(d.send.is_empty());
        let d = pick(&rest, &mut view, 10, 5_000, Duration::from_secs(5));
        assert_eq!(d.send, vec![0]);
    }

    fn hold_web() -> Hold {
        Hold { pdb: ObjectKey::new("prod", "web"), needs: 2, has: 2 }
    }

    #[test]
    fn slots_bound_the_batch() {
        let mut view = BudgetView::default();
        let cands = vec![cand("none"), cand("none"), cand("none")];
        let d = pick(&cands, &mut view, 2, 0, Duration::from_secs(5));
        assert_eq!(d.send, vec![0, 1]);
    }

    #[test]
    fn unready_and_pending_pods_follow_the_upstream_rules() {
        let mut view = BudgetView::default();
        view.update(budget("web", 0, 2, 2));
        let pdbs = vec![ObjectKey::new("prod", "web")];
        assert!(view.hold(&pdbs, PodHealth::Unguarded).is_none());
        // currentHealthy >= desiredHealthy > 0: an unready pod may go under the default policy.
        assert!(view.hold(&pdbs, PodHealth::Unready).is_none());
        view.update(budget("web", 0, 1, 2));
        assert!(view.hold(&pdbs, PodHealth::Unready).is_some());
        let mut always = budget("web", 0, 1, 2);
        always.always_allow_unhealthy = true;
        view.update(always);
        assert!(view.hold(&pdbs, PodHealth::Unready).is_none());
        assert!(view.hold(&pdbs, PodHealth::Ready).is_some());
    }
}
