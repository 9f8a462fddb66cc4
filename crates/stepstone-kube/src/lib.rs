//! stepstone-kube: the Kubernetes API adapter (kube-rs): collect inventory, cordon, evict, watch.

pub mod apis;
pub mod collect;
pub mod connect;
pub mod drain;
pub mod read;

pub use connect::{ConnectError, Connection, connect};
