//! stepstone-host: what runs on a node. The [`node::NodeOps`] trait (SSH through the system
//! OpenSSH client, or a print-only backend), pre-flight checks over parsed command output,
//! configuration drift per hardware generation, and verified etcd snapshots.

pub mod drift;
pub mod etcd;
pub mod node;
pub mod preflight;
pub mod print;
pub mod private;
pub mod ssh;

pub use node::{CommandOutput, NodeError, NodeOps, NodeTarget, RemoteCommand};
