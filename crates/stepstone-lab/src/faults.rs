//! Fault injection for reliability tests: random 5xx answers and 429 throttling on a share of
//! API requests, added latency, watches dropped mid-stream, nodes whose kubelet never comes back
//! from a restart, and pods
//! that crash-loop after their node's kubelet restarts, and pods whose volumes never mount (they
//! stay in ContainerCreating). Changed whole (`PUT /lab/v1/faults`) or
//! field by field (`PATCH`, a [`FaultsChange`]), so that two people changing different faults do
//! not undo each other. A refused change says what was wrong as a [`FaultsError`].

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::patch::{self, PatchType};
use crate::resources;
use crate::status::ApiError;
use crate::store::{self, Store};

/// The fault settings a [`FaultsError`] can be about, named as in [`FaultConfig`]'s JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultField {
    ErrorRate,
    ThrottleRate,
    DropWatchRate,
    NeverReturn,
    CrashLoop,
    StuckCreating,
}

impl FaultField {
    /// The JSON field name (`errorRate`).
    pub fn json_name(self) -> &'static str {
        match self {
            FaultField::ErrorRate => "errorRate",
            FaultField::ThrottleRate => "throttleRate",
            FaultField::DropWatchRate => "dropWatchRate",
            FaultField::NeverReturn => "neverReturn",
            FaultField::CrashLoop => "crashLoop",
            FaultField::StuckCreating => "stuckCreating",
        }
    }
}

/// Why the lab refused a fault configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum FaultsError {
    #[error("{} {rate} is not between 0.0 and 1.0", field.json_name())]
    RateOutOfRange { field: FaultField, rate: f64 },
    #[error("errorRate + throttleRate must not exceed 1.0")]
    RatesAboveOne,
    #[error("unknown field \"{field}\"; the faults are {known}")]
    UnknownField { field: String, known: String },
    #[error("invalid faults: {message}")]
    Invalid { message: String },
    #[error("{}: node \"{node}\" not found; the lab's nodes are {nodes}", field.json_name())]
    UnknownNode { field: FaultField, node: String, nodes: String },
}

impl FaultsError {
    /// The message with the settings named by `name` (a command line's flags, say) instead of
    /// their JSON names.
    pub fn message_with(&self, name: impl Fn(FaultField) -> &'static str) -> String {
        match self {
            FaultsError::RateOutOfRange { field, rate } => {
                format!("{} {rate} is not between 0.0 and 1.0", name(*field))
            }
            FaultsError::RatesAboveOne => {
                format!("{} + {} must not exceed 1.0", name(FaultField::ErrorRate), name(FaultField::ThrottleRate))
            }
            FaultsError::UnknownNode { field, node, nodes } => {
                format!("{}: node \"{node}\" not found; the lab's nodes are {nodes}", name(*field))
            }
            other => other.to_string(),
        }
    }
}

/// Every node a fault names (`neverReturn`, and `crashLoop` or `stuckCreating` entries
/// `node:NAME`) must be one of
/// the lab's nodes: a typo would otherwise arm a fault that never fires.
pub fn check_nodes(store: &Store, cfg: &FaultConfig) -> Result<(), FaultsError> {
    let named = cfg
        .never_return
        .iter()
        .map(|n| (FaultField::NeverReturn, n.as_str()))
        .chain(cfg.crash_loop.iter().filter_map(|c| c.strip_prefix("node:").map(|n| (FaultField::CrashLoop, n))))
        .chain(
            cfg.stuck_creating.iter().filter_map(|c| c.strip_prefix("node:").map(|n| (FaultField::StuckCreating, n))),
        );
    for (field, node) in named {
        if store.get(resources::NODES, "", node).is_none() {
            let total = store.len(resources::NODES);
            let some: Vec<String> =
                store.iter(resources::NODES, None, None).take(8).map(|n| store::name_of(&n).to_string()).collect();
            let more = if total > some.len() { format!(" and {} more", total - some.len()) } else { String::new() };
            return Err(FaultsError::UnknownNode {
                field,
                node: node.to_string(),
                nodes: format!("{}{more}", some.join(", ")),
            });
        }
    }
    Ok(())
}

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
    /// Share of watches the lab drops: the connection is cut at a random moment within a second
    /// (real time) of the watch starting, without the stream's last chunk, as when an apiserver
    /// restarts or a load balancer resets the stream. Clients must list and watch again.
    pub drop_watch_rate: f64,
    /// Nodes whose kubelet never returns from a restart.
    pub never_return: BTreeSet<String>,
    /// Pods (`namespace/name`), or every pod of a node (`node:NAME`), that crash-loop after the
    /// next kubelet restart.
    pub crash_loop: BTreeSet<String>,
    /// Pods (`namespace/name`), or every pod of a node (`node:NAME`), whose volumes never mount
    /// (a storage driver the new kubelet cannot talk to): when they next start, as new pods or
    /// after a kubelet restart, they stay in ContainerCreating.
    pub stuck_creating: BTreeSet<String>,
    /// Resources (by plural, `persistentvolumes`) whose get, list and watch are answered
    /// `403 Forbidden`, as for credentials whose role lacks them ([`crate::faults_forbid`]).
    pub forbidden: BTreeSet<String>,
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), FaultsError> {
        for (field, rate) in [
            (FaultField::ErrorRate, self.error_rate),
            (FaultField::ThrottleRate, self.throttle_rate),
            (FaultField::DropWatchRate, self.drop_watch_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FaultsError::RateOutOfRange { field, rate });
            }
        }
        if self.error_rate + self.throttle_rate > 1.0 {
            return Err(FaultsError::RatesAboveOne);
        }
        crate::faults_forbid::check(&self.forbidden).map_err(|message| FaultsError::Invalid { message })
    }

    /// This configuration with a patch applied: a JSON merge patch (RFC 7386: only the fields
    /// it names change, `null` resets one) or a JSON patch (RFC 6902, whose `add` to
    /// `/neverReturn/-` adds one node without restating the others). The result is validated
    /// as a whole; unknown fields are refused rather than ignored, so a typo cannot pass as a
    /// change.
    pub fn patched(&self, kind: PatchType, body: &[u8]) -> Result<FaultConfig, FaultsError> {
        let invalid = |message: String| FaultsError::Invalid { message };
        let current = serde_json::to_value(self).map_err(|e| invalid(e.to_string()))?;
        let next = patch::apply(kind, &current, body).map_err(|e| invalid(e.message))?;
        if let Some(fields) = next.as_object() {
            let known = current.as_object().map(|c| c.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
            if let Some(unknown) = fields.keys().find(|k| !known.contains(k)) {
                return Err(FaultsError::UnknownField { field: unknown.clone(), known: known.join(", ") });
            }
        }
        // A field reset with `null` goes back to its default.
        let cfg: FaultConfig = serde_json::from_value(next).map_err(|e| invalid(e.to_string()))?;
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

    /// Does the pod stay in ContainerCreating when it next starts on `node`?
    pub fn stuck_creating(&self, namespace: &str, name: &str, node: &str) -> bool {
        self.stuck_creating.contains(&format!("{namespace}/{name}"))
            || self.stuck_creating.contains(&format!("node:{node}"))
    }
}

/// A change of some faults, made by the lab under one lock (`PATCH /lab/v1/faults`): only the
/// settings given change, and nodes and pods are added to the fault lists rather than replacing
/// them, so nobody else's additions are lost. `clear` starts from no faults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultsChange {
    pub clear: bool,
    pub error_rate: Option<f64>,
    pub throttle_rate: Option<f64>,
    pub latency_ms: Option<u64>,
    pub drop_watch_rate: Option<f64>,
    /// Nodes to add to [`FaultConfig::never_return`].
    pub add_never_return: Vec<String>,
    /// Pods or `node:NAME` to add to [`FaultConfig::crash_loop`].
    pub add_crash_loop: Vec<String>,
    /// Pods or `node:NAME` to add to [`FaultConfig::stuck_creating`].
    pub add_stuck_creating: Vec<String>,
}

impl FaultsChange {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == FaultsChange::default()
    }

    /// The one request that makes the change: a merge patch naming only the changed fields, or,
    /// when nodes or pods are added to a fault list, a JSON patch that appends them. `clear`
    /// sends every field. Returns the content type and the body.
    pub fn to_patch(&self) -> (&'static str, Value) {
        let mut fields = match self.clear {
            true => serde_json::to_value(FaultConfig::default())
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default(),
            false => serde_json::Map::new(),
        };
        if let Some(r) = self.error_rate {
            fields.insert(FaultField::ErrorRate.json_name().into(), json!(r));
        }
        if let Some(r) = self.throttle_rate {
            fields.insert(FaultField::ThrottleRate.json_name().into(), json!(r));
        }
        if let Some(ms) = self.latency_ms {
            fields.insert("latencyMs".into(), json!(ms));
        }
        if let Some(r) = self.drop_watch_rate {
            fields.insert(FaultField::DropWatchRate.json_name().into(), json!(r));
        }
        let lists = [
            ("neverReturn", &self.add_never_return),
            ("crashLoop", &self.add_crash_loop),
            ("stuckCreating", &self.add_stuck_creating),
        ];
        if self.clear || lists.iter().all(|(_, added)| added.is_empty()) {
            for (key, added) in lists {
                if !added.is_empty() {
                    fields.insert(key.into(), json!(added));
                }
            }
            return ("application/merge-patch+json", Value::Object(fields));
        }
        let mut ops: Vec<Value> =
            fields.into_iter().map(|(k, v)| json!({"op": "replace", "path": format!("/{k}"), "value": v})).collect();
        for (key, added) in lists {
            ops.extend(added.iter().map(|v| json!({"op": "add", "path": format!("/{key}/-"), "value": v})));
        }
        ("application/json-patch+json", Value::Array(ops))
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

/// Roll the dice for one watch: `Some(after)` when the fault drops it that long after it starts.
pub fn watch_drop(cfg: &FaultConfig, rolls: [f64; 2]) -> Option<Duration> {
    (rolls[0] < cfg.drop_watch_rate).then(|| Duration::from_secs_f64(rolls[1]))
}

/// The dice the lab rolls for request faults and watch drops: a lab started with the same seed
/// rolls the same numbers, so a seeded fault run repeats.
pub fn fault_dice(seed: u64) -> stepstone_core::dice::Dice {
    stepstone_core::dice::Dice::new(seed ^ 0xfa17)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepstone_core::dice::Dice;

    #[test]
    fn a_seed_rolls_the_numbers_it_always_rolled() {
        // The lab's default seed, as splitmix64 from seed ^ 0xfa17 gives them.
        let mut dice = fault_dice(0x5eed);
        assert_eq!(
            [dice.unit(), dice.unit(), dice.unit()],
            [0.1706584976872222, 0.17834477083122313, 0.388286451019073]
        );
    }

    #[test]
    fn rates_split_the_unit_interval() {
        let cfg = FaultConfig { error_rate: 0.1, throttle_rate: 0.2, ..Default::default() };
        assert_eq!(injected(&cfg, 0.05).unwrap().code, 500);
        assert_eq!(injected(&cfg, 0.25).unwrap().code, 429);
        assert!(injected(&cfg, 0.5).is_none());
        let mut s = Dice::new(7);
        let hits = (0..10_000).filter(|_| injected(&cfg, s.unit()).is_some()).count();
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
        assert!(err.to_string().contains("must not exceed 1.0"), "{err}");
        let err = base.patched(PatchType::Merge, br#"{"eror_rate": 0.5}"#).unwrap_err();
        let err = err.to_string();
        assert!(err.contains("unknown field \"eror_rate\"") && err.contains("errorRate"), "{err}");
        let err = base.patched(PatchType::Merge, br#"{"latencyMs": "slow"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid faults"), "{err}");
        assert!(base.patched(PatchType::Merge, b"[1]").is_err());
    }

    #[test]
    fn a_share_of_watches_is_dropped_within_a_second() {
        let cfg = FaultConfig { drop_watch_rate: 0.25, ..Default::default() };
        let mut s = Dice::new(11);
        let drops: Vec<Duration> = (0..10_000).filter_map(|_| watch_drop(&cfg, [s.unit(), s.unit()])).collect();
        assert!((2_200..2_800).contains(&drops.len()), "{}", drops.len());
        assert!(drops.iter().all(|d| *d < Duration::from_secs(1)));
        assert!(watch_drop(&FaultConfig::default(), [0.0, 0.5]).is_none(), "no drops without the fault");
        let patched = cfg.patched(PatchType::Merge, br#"{"dropWatchRate": 1.0}"#).unwrap();
        assert_eq!(patched.drop_watch_rate, 1.0);
        let err = cfg.patched(PatchType::Merge, br#"{"dropWatchRate": 2}"#).unwrap_err();
        assert_eq!(err, FaultsError::RateOutOfRange { field: FaultField::DropWatchRate, rate: 2.0 });
        let change = FaultsChange { drop_watch_rate: Some(0.5), ..Default::default() };
        assert_eq!(change.to_patch().1, json!({"dropWatchRate": 0.5}));
    }

    #[test]
    fn bad_rates_are_refused() {
        assert!(FaultConfig { error_rate: 1.5, ..Default::default() }.validate().is_err());
        assert!(FaultConfig { error_rate: 0.6, throttle_rate: 0.6, ..Default::default() }.validate().is_err());
    }
}
