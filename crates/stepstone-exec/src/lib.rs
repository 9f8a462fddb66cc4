//! stepstone-exec: the rollout engine. It executes a `stepstone_core` Plan step by step,
//! level-triggered from the cluster's real state, through one trait per outside system: the
//! Kubernetes API ([`cluster::ClusterApi`]), node operations ([`backend::NodeBackend`]: lab, ssh,
//! manual), the clock and the notifier ([`events`]). The decisions are pure: the step sequence
//! ([`steps`]), what is done and what comes next ([`observe`]), rollback triggers
//! ([`triggers`]) and the lock ([`lease`]); the journal ([`journal`]) makes every run resumable.

pub mod backend;
pub mod cluster;
pub mod engine;
pub mod error;
pub mod etcd_access;
pub mod events;
pub mod journal;
pub mod lab;
pub mod lease;
pub mod observe;
pub mod report;
pub mod steps;
pub mod triggers;

pub use engine::{Engine, EngineConfig, ExecError, Outcome};
pub use journal::{Journal, JournalFile, RolloutState};
