//! One module per `stepstone` subcommand: each turns its flags into library calls and output.

pub mod addons;
pub mod apis;
pub mod blockers;
pub mod completions;
pub mod demo;
pub mod drain;
pub mod drift;
pub mod etcd;
pub mod inventory;
pub mod lab;
pub mod lab_life;
pub mod lab_node;
pub mod path;
pub mod plan;
pub mod preflight;
pub mod rollout;
pub mod runbook;
pub mod skew;
pub mod snapshot;
pub mod staging;
pub mod versions;
