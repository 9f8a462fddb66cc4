//! The model's limits and answers: the headroom ceiling, a node's usage, and the explanation
//! of a pod that fits nowhere in kube-scheduler's wording.

use crate::object_key::ObjectKey;
use crate::quantity::Resources;

/// A ceiling on requested CPU and memory per node, in percent of allocatable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Headroom {
    percent: u32,
}

/// Why a headroom value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("headroom '{input}' is not a percentage between 1% and 100% (examples: 85%, 90)")]
pub struct HeadroomError {
    pub input: String,
}

impl Headroom {
    /// The planner's default: no node above 85% of allocatable requested after a move.
    pub const DEFAULT_PERCENT: u32 = 85;

    /// A ceiling of `percent` (clamped to 1..=100).
    pub fn percent(percent: u32) -> Self {
        Headroom { percent: percent.clamp(1, 100) }
    }

    /// No ceiling beyond allocatable itself: what the real scheduler does.
    pub fn none() -> Self {
        Headroom { percent: 100 }
    }

    pub fn as_percent(self) -> u32 {
        self.percent
    }

    /// `85%` or `85`.
    pub fn parse(input: &str) -> Result<Self, HeadroomError> {
        let err = || HeadroomError { input: input.to_string() };
        let s = input.trim();
        let digits = s.strip_suffix('%').unwrap_or(s).trim();
        let p: u32 = digits.parse().map_err(|_| err())?;
        if !(1..=100).contains(&p) {
            return Err(err());
        }
        Ok(Headroom { percent: p })
    }

    pub(super) fn limit(self, allocatable: u64) -> u64 {
        if self.percent >= 100 {
            allocatable
        } else {
            (u128::from(allocatable) * u128::from(self.percent) / 100) as u64
        }
    }
}

impl Default for Headroom {
    fn default() -> Self {
        Headroom::percent(Self::DEFAULT_PERCENT)
    }
}

impl std::fmt::Display for Headroom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.percent)
    }
}

/// The two resources the headroom applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeadroomResource {
    Cpu,
    Memory,
}

impl std::fmt::Display for HeadroomResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeadroomResource::Cpu => "CPU",
            HeadroomResource::Memory => "memory",
        })
    }
}

/// The node that came closest to taking a pod but would have gone above the headroom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflow {
    pub node: String,
    pub resource: HeadroomResource,
    /// Share of allocatable requested on `node` had the pod been placed there, rounded up.
    pub percent_after: u32,
    pub headroom_percent: u32,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}% {} (headroom {}%)", self.node, self.percent_after, self.resource, self.headroom_percent)
    }
}

/// No node can take the pod. The message counts nodes per reason, like kube-scheduler's
/// `0/47 nodes are available: 30 Insufficient cpu, 12 node(s) didn't match Pod's node
/// affinity/selector, 5 node(s) were unschedulable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pod}: 0/{nodes} nodes are available: {}", summary(.reasons))]
pub struct Unschedulable {
    pub pod: ObjectKey,
    /// Nodes known to the model.
    pub nodes: usize,
    /// Node count per reason, most common first. A node short of several resources counts once
    /// per resource, as in kube-scheduler's message.
    pub reasons: Vec<(String, usize)>,
    /// The least allocated node that failed on the headroom alone, if any.
    pub closest: Option<Overflow>,
}

fn summary(reasons: &[(String, usize)]) -> String {
    if reasons.is_empty() {
        return "no nodes in the model".to_string();
    }
    reasons.iter().map(|(r, n)| format!("{n} {r}")).collect::<Vec<_>>().join(", ")
}

/// How allocated a node is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeUsage {
    pub allocatable: Resources,
    pub requested: Resources,
    pub unschedulable: bool,
}

impl NodeUsage {
    /// Requested CPU in percent of allocatable, rounded up (100 when nothing is allocatable).
    pub fn cpu_percent(&self) -> u32 {
        percent_ceil(self.requested.cpu_millis, self.allocatable.cpu_millis)
    }

    pub fn memory_percent(&self) -> u32 {
        percent_ceil(self.requested.memory_bytes, self.allocatable.memory_bytes)
    }
}

pub(super) fn percent_ceil(part: u64, whole: u64) -> u32 {
    if whole == 0 {
        return if part == 0 { 0 } else { 100 };
    }
    (u128::from(part) * 100).div_ceil(u128::from(whole)).min(u128::from(u32::MAX)) as u32
}

/// Share requested, in parts per million: the least-allocated order.
pub(super) fn ppm(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 1_000_000;
    }
    (u128::from(part) * 1_000_000 / u128::from(whole)).min(u128::from(u64::MAX)) as u64
}
