//! Fault injection for reliability tests: random 5xx answers and 429 throttling on a share of
//! API requests, added latency, nodes whose kubelet never comes back from a restart, and pods
//! that crash-loop after their node's kubelet restarts.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::status::ApiError;

/// What to break. Rates are probabilities per API request, 0.0 to 1.0.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultConfig {
    /// Share of API requests answered `500 InternalError`.
    pub error_rate: f64,
    /// Share of API requests answered `429 TooManyRequests` (priority-and-fairness style
    /// throttling, with `Retry-After: 1` and no `DisruptionBudget` cause).
    pub throttle_rate: f64,
    /// Added to every API request, in real milliseconds.
    pub latency_ms: u64,
    /// Nodes whose kubelet never returns from a restart.
    pub never_return: BTreeSet<String>,
    /// Pods (`namespace/name`), or every pod of a node (`node:NAME`), that crash-loop after the
    /// next kubelet restart.
    pub crash_loop: BTreeSet<String>,
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [("errorRate", self.error_rate), ("throttleRate", self.throttle_rate)] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} {rate} is not between 0.0 and 1.0"));
            }
        }
        if self.error_rate + self.throttle_rate > 1.0 {
            return Err("errorRate + throttleRate must not exceed 1.0".into());
        }
        Ok(())
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    /// Does the pod crash-loop after a restart of its node's kubelet?
    pub fn crash_loops(&self, namespace: &str, name: &str, node: &str) -> bool {
        self.crash_loop.contains(&format!("{namespace}/{name}")) || self.crash_loop.contains(&format!("node:{node}"))
    }
}

/// Roll the dice for one request: `Some(error)` when a fault hits it.
pub fn injected(cfg: &FaultConfig, roll: f64) -> Option<ApiError> {
    if roll < cfg.error_rate {
        return Some(ApiError::internal("injected fault: etcdserver: request timed out"));
    }
    if roll < cfg.error_rate + cfg.throttle_rate {
        return Some(ApiError::too_many_requests("Too many requests, please try again later.", 1));
    }
    None
}

/// A uniform number in [0, 1) from a splitmix64 state.
pub fn next_unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_split_the_unit_interval() {
        let cfg = FaultConfig { error_rate: 0.1, throttle_rate: 0.2, ..Default::default() };
        assert_eq!(injected(&cfg, 0.05).unwrap().code, 500);
        assert_eq!(injected(&cfg, 0.25).unwrap().code, 429);
        assert!(injected(&cfg, 0.5).is_none());
        let mut s = 7;
        let hits = (0..10_000).filter(|_| injected(&cfg, next_unit(&mut s)).is_some()).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
    }

    #[test]
    fn bad_rates_are_refused() {
        assert!(FaultConfig { error_rate: 1.5, ..Default::default() }.validate().is_err());
        assert!(FaultConfig { error_rate: 0.6, throttle_rate: 0.6, ..Default::default() }.validate().is_err());
    }
}
