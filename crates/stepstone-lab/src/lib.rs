//! stepstone lab: a virtual bare-metal cluster that speaks the Kubernetes API on loopback.
//!
//! [`Lab::start`] loads a fleet (a `kubectl get … -o json` List, as `examples/*.json` or
//! `stepstone_fleet::generate` produce), serves it over HTTP on 127.0.0.1 so that real
//! `kubectl` and kube-rs clients can drive it, and runs simulated kubelets and controllers on a
//! clock that can run many times faster than real time. Node operations (package installs,
//! `kubeadm upgrade`, kubelet restarts) go through [`LabNodes`] in the same process and
//! [`LabClient`] from another; faults through [`FaultConfig`].
//!
//! ```no_run
//! # async fn demo(fleet: serde_json::Value) -> Result<(), stepstone_lab::LabError> {
//! let lab = stepstone_lab::Lab::start(fleet, stepstone_lab::LabOptions { speed: 60.0, ..Default::default() }).await?;
//! println!("{}", lab.url());
//! lab.nodes().restart_kubelet("worker-1").ok();
//! lab.shutdown().await;
//! # Ok(()) }
//! ```

pub(crate) mod access;
pub(crate) mod admission;
pub(crate) mod api;
pub(crate) mod apply;
mod client;
pub(crate) mod clock;
mod compact;
pub(crate) mod controllers;
pub(crate) mod decode;
pub(crate) mod faults;
mod faults_forbid;
mod faults_http;
mod load;
pub(crate) mod metrics;
pub(crate) mod nodes;
pub(crate) mod object;
pub(crate) mod openapi;
pub(crate) mod patch;
pub(crate) mod pod_facts;
mod protobuf;
mod query;
pub(crate) mod resources;
pub(crate) mod schemas;
pub(crate) mod select;
mod serve;
pub(crate) mod server;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod store;
pub(crate) mod sync;
pub(crate) mod table;
pub(crate) mod watch_stream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use client::{LabClient, LabClientError};
pub use faults::{FaultConfig, FaultField, FaultsChange, FaultsError};
pub(crate) use faults_http::router as faults_router;
pub use load::{Fleet, load_fleet};
pub use nodes::repo::{REPOSITORY_ANNOTATION, repository_name};
pub use nodes::wire::{
    ClockInfo, ErrorBody, EtcdSnapshotRequest, InstallRequest, LogsQuery, RepositoryRequest, UpgradeApplyRequest,
    UpgradePlanQuery,
};
pub use nodes::{
    ComponentConfigState, EtcdSnapshotReport, KubeadmVersion, KubeletLogs, KubeletState, LabNodes, NodeFacts,
    NodeOpError, OsRefresh, Package, PlanRow, SnapshotMetadata, UpgradeOptions, UpgradePlan, UpgradeReport,
};
pub use state::{RequestCounts, Timing};

use state::{Shared, Stats, lock};
use store::Store;

/// How to run a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Lab seconds per wall-clock second: durations (grace periods, start-up delays, restarts,
    /// reboots) last `1 / speed` of their length; timestamps stay on the wall clock.
    pub speed: f64,
    /// Stand the clock still: it moves only by [`LabHandle::advance`], so that a test steps
    /// time instead of sleeping.
    pub manual_clock: bool,
    /// Where to write a kubeconfig for the lab, if anywhere.
    pub kubeconfig: Option<PathBuf>,
    pub timing: Timing,
    pub faults: FaultConfig,
    /// Seed for generated names and UIDs and for fault dice.
    pub seed: u64,
    /// How long a connection may take to send a complete request head, counted from when it
    /// opens or its previous response ends (so also how long an idle keep-alive connection
    /// stays open). The apiserver's `ReadHeaderTimeout` is 32 seconds.
    pub header_timeout: std::time::Duration,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            port: 0,
            speed: 1.0,
            manual_clock: false,
            kubeconfig: None,
            timing: Timing::default(),
            faults: FaultConfig::default(),
            seed: 0x5eed,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "the fleet is not a kubectl List: expected {{\"kind\": \"List\", \"items\": [...]}} (as `kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json` prints) or a single object"
    )]
    NotAList,
    #[error("cannot read the fleet {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "not JSON ({0}); write one with `kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json` or `stepstone lab generate`"
    )]
    NotJson(#[source] serde_json::Error),
    #[error("the fleet has no Node objects; a lab needs at least one node")]
    NoNodes,
    #[error("fleet item {index} ({kind} {name}): {reason}")]
    BadItem { index: usize, kind: String, name: String, reason: String },
    #[error("fleet item {index}: {found} in \"items\", where a Kubernetes object was expected; remove it")]
    NotAnObject { index: usize, found: &'static str },
    #[error("cannot listen on 127.0.0.1:{port}: {source}; pick another port with --port (0 picks a free one)")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid fault configuration: {0}")]
    Faults(#[from] FaultsError),
    #[error("speed {0} is outside {min} to {max} lab seconds per wall-clock second; pick a --speed in that range", min = SPEED_RANGE.start(), max = SPEED_RANGE.end())]
    Speed(f64),
    #[error("cannot start the lab's runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// What loading a fleet did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Objects loaded per kind.
    pub loaded: std::collections::BTreeMap<String, usize>,
    /// Kinds the lab does not serve, skipped, with counts.
    pub skipped: std::collections::BTreeMap<String, usize>,
}

/// The entry point.
#[derive(Debug)]
pub struct Lab;

/// A running lab. Dropping it stops the server and the controllers.
pub struct LabHandle {
    pub addr: SocketAddr,
    pub load: LoadReport,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    kubeconfig_path: Option<PathBuf>,
    /// Set by [`Lab::start_blocking`]: the runtime the lab runs on.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for LabHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabHandle").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// A kubeconfig for a lab at `url`.
pub fn kubeconfig_for(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: stepstone-lab\n  cluster:\n    server: {url}\ncontexts:\n- name: stepstone-lab\n  context:\n    cluster: stepstone-lab\n    user: stepstone-lab\n    namespace: default\ncurrent-context: stepstone-lab\nusers:\n- name: stepstone-lab\n  user: {{}}\npreferences: {{}}\n"
    )
}

/// The apiserver's `ReadHeaderTimeout`.
pub const DEFAULT_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(32);

/// The speeds the lab runs at: slower than a hundredth of real time nothing moves in a session,
/// faster than ten thousand times every lab timeout is over within a controller's tick.
pub const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.01..=10_000.0;

impl Lab {
    /// Load `fleet` (a parsed List, or a [`Fleet::File`] read item by item) and serve it on
    /// 127.0.0.1 (on the current tokio runtime, which must be multi-threaded if the caller blocks
    /// on anything, such as a `kubectl` child process).
    pub async fn start(fleet: impl Into<Fleet>, opts: LabOptions) -> Result<LabHandle, LabError> {
        let fleet = fleet.into();
        opts.faults.validate()?;
        if !SPEED_RANGE.contains(&opts.speed) {
            return Err(LabError::Speed(opts.speed));
        }
        let survey = fleet.survey()?;
        let clock = if opts.manual_clock {
            let start = survey.newest.map_or(Timestamp::now(), |t| t.max(Timestamp::now()));
            clock::Clock::manual(Timestamp::from_second(start.as_second()).unwrap_or(start), opts.speed)
        } else {
            clock::Clock::wall(opts.speed)
        };
        let mut store = Store::new(opts.seed);
        let load = fleet.load(&mut store, survey, clock.now())?;
        faults::check_nodes(&store, &opts.faults)?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            clock,
            timing: opts.timing.clone(),
            faults: Mutex::new(opts.faults.clone()),
            fault_rng: Mutex::new(faults::fault_dice(opts.seed)),
            wake: Notify::new(),
            stats: Stats::default(),
            kubelets: Mutex::new(Default::default()),
            journal: Mutex::new(Default::default()),
            metrics: Default::default(),
            passes: watch::Sender::new(Default::default()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
            .await
            .map_err(|source| LabError::Bind { port: opts.port, source })?;
        let addr = listener.local_addr().map_err(|source| LabError::Bind { port: opts.port, source })?;
        let (tx, rx) = watch::channel(false);
        let app = server::router(shared.clone());
        let server = tokio::spawn(serve::serve(listener, app, opts.header_timeout, rx.clone()));
        let controllers = tokio::spawn(controllers::run(shared.clone(), rx));
        let handle = LabHandle {
            addr,
            load,
            shared,
            shutdown: tx,
            tasks: vec![server, controllers],
            kubeconfig_path: opts.kubeconfig.clone(),
            runtime: None,
        };
        if let Some(path) = &opts.kubeconfig {
            handle.write_kubeconfig(path)?;
        }
        Ok(handle)
    }

    /// [`start`](Self::start) on a runtime of its own, for synchronous callers and tests that
    /// block (running `kubectl`, say). The runtime lives as long as the handle.
    pub fn start_blocking(fleet: impl Into<Fleet>, opts: LabOptions) -> Result<LabHandle, LabError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stepstone-lab")
            .enable_all()
            .build()
            .map_err(LabError::Runtime)?;
        let mut handle = runtime.block_on(Self::start(fleet, opts))?;
        handle.runtime = Some(runtime);
        Ok(handle)
    }
}

impl LabHandle {
    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The kubeconfig text for this lab.
    pub fn kubeconfig(&self) -> String {
        kubeconfig_for(&self.url())
    }

    /// Where [`LabOptions::kubeconfig`] wrote the kubeconfig.
    pub fn kubeconfig_path(&self) -> Option<&Path> {
        self.kubeconfig_path.as_deref()
    }

    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), LabError> {
        std::fs::write(path, self.kubeconfig())
            .map_err(|source| LabError::Kubeconfig { path: path.to_path_buf(), source })
    }

    /// The node-operation API, in this process ([`LabClient`] is the same over HTTP).
    pub fn nodes(&self) -> LabNodes {
        LabNodes::new(self.shared.clone())
    }

    pub fn faults(&self) -> FaultConfig {
        lock(&self.shared.faults).clone()
    }

    pub fn set_faults(&self, cfg: FaultConfig) -> Result<(), LabError> {
        cfg.validate()?;
        faults::check_nodes(&self.shared.store(), &cfg)?;
        *lock(&self.shared.faults) = cfg;
        Ok(())
    }

    /// API requests served so far.
    pub fn requests(&self) -> RequestCounts {
        self.shared.stats.snapshot()
    }

    /// The lab's time now: the wall clock, or where [`advance`](Self::advance) left a manual
    /// clock.
    pub fn now(&self) -> Timestamp {
        self.shared.now()
    }

    /// When a lab duration of `lab_seconds` that began at `t` ends: `lab_seconds / speed` of
    /// clock time later.
    pub fn after(&self, t: Timestamp, lab_seconds: f64) -> Timestamp {
        self.shared.after(t, lab_seconds)
    }

    /// Move a manual clock (see [`LabOptions::manual_clock`]) forward by `by` of clock time, a
    /// lab duration of `by * speed`, and wait until the controllers have acted on it and on what
    /// they wrote in turn (a pod started in a pass turns Ready in the next), giving up after a
    /// minute. Returns the new time, or `None` on a lab that runs on the wall clock.
    pub async fn advance(&self, by: std::time::Duration) -> Option<Timestamp> {
        let now = self.shared.clock.advance(by)?;
        self.settle().await;
        Some(now)
    }

    /// [`advance`](Self::advance) for callers outside an async runtime, on a lab from
    /// [`Lab::start_blocking`] (`None` for any other lab, and on the wall clock).
    pub fn advance_blocking(&self, by: std::time::Duration) -> Option<Timestamp> {
        self.runtime.as_ref()?.block_on(self.advance(by))
    }

    /// [`settle`](Self::settle) for callers outside an async runtime, on a lab from
    /// [`Lab::start_blocking`] (does nothing on any other lab).
    pub fn settle_blocking(&self) {
        if let Some(rt) = &self.runtime {
            rt.block_on(self.settle());
        }
    }

    /// Wait until a controller pass that began now has run and left nothing due (a minute at
    /// most), so that what a write or a step of the clock causes has happened.
    pub async fn settle(&self) {
        let mut passes = self.shared.passes.subscribe();
        let target = passes.borrow().started + 1;
        self.shared.wake.notify_one();
        let done = passes.wait_for(|p| p.finished >= target && p.settled);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(60), done).await;
    }

    pub fn speed(&self) -> f64 {
        self.shared.clock.speed()
    }

    /// The stored object (`plural` as in URLs: `pods`, `deployments`, ...), without going
    /// through HTTP. `namespace` is ignored for cluster-scoped resources.
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = resources::by_plural(plural)?;
        let ns = if res.def().namespaced { namespace } else { "" };
        self.shared.store().get(res, ns, name).map(Arc::unwrap_or_clone)
    }

    /// Every stored object of a resource, optionally in one namespace.
    pub fn list(&self, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(res) = resources::by_plural(plural) else { return Vec::new() };
        self.shared.store().iter(res, namespace, None).map(Arc::unwrap_or_clone).collect()
    }

    /// Stop serving and wait for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for LabHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}
