//! Live drain: cordon, classify with the plan's rule chain, evict through `policy/v1` with our
//! own retry loop, wait (by watching) for pods to be gone and replaced by Ready pods elsewhere,
//! and report precisely what is left when it stops short.
//!
//! The decisions live in pure submodules ([`eviction`], [`retry`], [`budget`], [`watch`],
//! [`event`], [`report`], [`plan`]); [`engine`] is the thin layer that talks to the API server.

mod api;
pub mod budget;
pub mod engine;
pub mod event;
pub mod eviction;
mod feed;
mod fetch;
mod notify;
pub mod plan;
pub mod report;
pub mod retry;
pub mod watch;

pub use engine::{DrainConfig, drain, uncordon};
pub use event::{DrainEvent, EventSink};
pub use plan::RuleOptions;
pub use report::{DrainReport, NodeOutcome, NodeReport};
pub use retry::RetryPolicy;

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    Connect(#[from] crate::connect::ConnectError),
    #[error("node {node} not found; list the nodes with `kubectl get nodes` (nothing was cordoned)")]
    NodeNotFound { node: String },
    #[error("{action}: {source}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading the cluster for the drain rules: {message}")]
    Inventory { message: String },
    #[error("{what}; check that the API server answers watches (`kubectl get pdb -A --watch`)")]
    Stalled { what: String },
}
