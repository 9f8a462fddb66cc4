//! Fault injection for reliability tests: random 5xx answers and 429 throttling on a share of
//! API requests, added latency, nodes whose kubelet never comes back from a restart, and pods
//! that crash-loop after their node's kubelet restarts. Changed whole (`PUT /lab/v1/faults`) or
//! field by field (`PATCH`), so that two people changing different faults do not undo each other.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::patch::{self, PatchType};
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

    /// This configuration with a patch applied: a JSON merge patch (RFC 7386: only the fields
    /// it names change, `null` resets one) or a JSON patch (RFC 6902, whose `add` to
    /// `/neverReturn/-` adds one node without restating the others). The result is validated
    /// as a whole; unknown fields are refused rather than ignored, so a typo cannot pass as a
    /// change.
    pub fn patched(&self, kind: PatchType, body: &[u8]) -> Result<FaultConfig, String> {
        let current = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let next = patch::apply(kind, &current, body).map_err(|e| e.message)?;
        if let Some(fields) = next.as_object() {
            let known = current.as_object().map(|c| c.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
            if let Some(unknown) = fields.keys().find(|k| !known.contains(k)) {
                return Err(format!("unknown field \"{unknown}\"; the faults are {}", known.join(", ")));
            }
        }
        // A field reset with `null` goes back to its default.
        let cfg: FaultConfig = serde_json::from_value(next).map_err(|e| format!("invalid faults: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
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
    fn patches_change_only_what_they_name() {
        let base = FaultConfig { error_rate: 0.1, latency_ms: 5, ..Default::default() };
        let merged = base.patched(PatchType::Merge, br#"{"throttleRate": 0.2, "neverReturn": ["r650-01"]}"#).unwrap();
        assert_eq!((merged.error_rate, merged.throttle_rate, merged.latency_ms), (0.1, 0.2, 5));
        assert!(merged.never_return.contains("r650-01"));
        let reset = merged.patched(PatchType::Merge, br#"{"latencyMs": null}"#).unwrap();
        assert_eq!(reset.latency_ms, 0);
        let added = merged
            .patched(PatchType::Json, br#"[{"op": "add", "path": "/neverReturn/-", "value": "r650-02"}]"#)
            .unwrap();
        assert_eq!(added.never_return.iter().map(String::as_str).collect::<Vec<_>>(), ["r650-01", "r650-02"]);

        let err = base.patched(PatchType::Merge, br#"{"errorRate": 0.6, "throttleRate": 0.6}"#).unwrap_err();
        assert!(err.contains("must not exceed 1.0"), "{err}");
        let err = base.patched(PatchType::Merge, br#"{"eror_rate": 0.5}"#).unwrap_err();
        assert!(err.contains("unknown field \"eror_rate\"") && err.contains("errorRate"), "{err}");
        let err = base.patched(PatchType::Merge, br#"{"latencyMs": "slow"}"#).unwrap_err();
        assert!(err.contains("invalid faults"), "{err}");
        assert!(base.patched(PatchType::Merge, b"[1]").is_err());
    }

    #[test]
    fn bad_rates_are_refused() {
        assert!(FaultConfig { error_rate: 1.5, ..Default::default() }.validate().is_err());
        assert!(FaultConfig { error_rate: 0.6, throttle_rate: 0.6, ..Default::default() }.validate().is_err());
    }
}
