//! The lab's shared state: the store, the clock, timings, faults, per-node kubelet
//! state and request counters, behind one `Arc` that the HTTP server, the controllers and the
//! node-operation API all hold.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::faults::FaultConfig;
use crate::store::Store;

/// What the simulated kubelet of a node is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum KubeletState {
    Running,
    /// Restarting; back at `until` (RFC 3339 with its sub-second part), or never when `until` is
    /// `None`.
    Restarting {
        until: Option<String>,
        version: String,
    },
    /// The machine is rebooting; the kubelet starts again at `until` (RFC 3339 with its
    /// sub-second part), or never when `until` is `None`.
    Rebooting {
        until: Option<String>,
        version: String,
    },
    /// Exited and stays down (the cgroup v1 refusal).
    Failed {
        reason: String,
    },
}

/// Lab durations, in lab seconds: each lasts `1 / speed` of its length in wall-clock time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Timing {
    /// From binding to `Running` (image pull, container start).
    pub pod_start_seconds: f64,
    /// From `Running` to `Ready` (readiness probe passing).
    pub pod_ready_seconds: f64,
    /// How long a kubelet restart keeps the node `NotReady`.
    pub kubelet_restart_seconds: f64,
    /// How long a control-plane static pod takes to come back after `kubeadm upgrade`.
    pub static_pod_restart_seconds: f64,
    /// How long a reboot keeps the kubelet silent (shutdown, firmware, boot).
    pub reboot_seconds: f64,
    /// Node lease renewal period (`nodeLeaseDurationSeconds` is four times this).
    pub lease_renew_seconds: f64,
    /// A crash-looping container's back-off between restarts.
    pub crash_backoff_seconds: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            pod_start_seconds: 2.0,
            pod_ready_seconds: 5.0,
            kubelet_restart_seconds: 20.0,
            static_pod_restart_seconds: 15.0,
            reboot_seconds: 90.0,
            lease_renew_seconds: 10.0,
            crash_backoff_seconds: 10.0,
        }
    }
}

/// API request counts, for benchmarks that compare clients by the requests they make.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub by_verb: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn count(&self, verb: &str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *lock(&self.by_verb).entry(verb.to_string()).or_default() += 1;
    }

    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts { total: self.requests.load(Ordering::Relaxed), by_verb: lock(&self.by_verb).clone() }
    }
}

/// Requests served so far, by verb (`get`, `list`, `watch`, `create`, `update`, `patch`,
/// `delete`, `eviction`, ...).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestCounts {
    pub total: u64,
    pub by_verb: BTreeMap<String, u64>,
}

pub struct Shared {
    pub store: Mutex<Store>,
    pub clock: Clock,
    pub timing: Timing,
    pub faults: Mutex<FaultConfig>,
    pub fault_rng: Mutex<stepstone_core::dice::Dice>,
    /// Wakes the controllers after a write.
    pub wake: Notify,
    pub stats: Stats,
    pub kubelets: Mutex<BTreeMap<String, KubeletState>>,
    /// Per node, the lines `journalctl -u kubelet` shows (the simulated kubelet's and systemd's).
    pub journal: Mutex<BTreeMap<String, Vec<String>>>,
    /// What `/metrics` shows; node operations reset it when kube-apiserver restarts.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The controllers' passes, for callers that step a manual clock and wait for the lab to act.
    pub passes: tokio::sync::watch::Sender<Passes>,
}

/// How many controller passes began and ended, and whether the last one left nothing due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passes {
    pub started: u64,
    pub finished: u64,
    /// The last finished pass left no deadline that had already fallen due.
    pub settled: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("clock", &self.clock).finish_non_exhaustive()
    }
}

/// For the modules that hold the state anyway; the policy lives in [`crate::sync`].
pub use crate::sync::lock;

impl Shared {
    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// When a lab duration of `lab_seconds` that began at `t` ends (see [`Clock::after`]).
    pub fn after(&self, t: jiff::Timestamp, lab_seconds: f64) -> jiff::Timestamp {
        self.clock.after(t, lab_seconds)
    }
}
