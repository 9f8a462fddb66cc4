//! stepstone-apis: finds removed and deprecated Kubernetes APIs where they really are — manifest
//! files, Helm release secrets, the `managedFields` of live objects, the apiserver's
//! `apiserver_requested_deprecated_apis` metric and the kubeadm configuration — and sorts what it
//! finds into the hops of an upgrade path. Pure logic: no network, no clock.

pub mod data;
pub mod helm;
pub mod kubeadm;
pub mod managed;
pub mod manifest;
pub mod metrics;
pub mod report;
pub mod scan;
pub mod sighting;

pub use data::RemovedApis;
pub use report::{ApiReport, evaluate};
pub use scan::Scan;
pub use sighting::{Sighting, SourceKind, Used};
