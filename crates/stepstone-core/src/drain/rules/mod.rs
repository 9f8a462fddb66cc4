//! The drainability rules, one per file, in the order they run. Each file holds its own table
//! test.

mod budgets;
mod daemonset;
mod emptydir;
mod finished;
mod local_storage;
mod mirror_pod;
mod safe_to_evict;
mod terminating;
mod unmanaged;

use super::Rule;

/// Pods the drain must leave alone come first (mirror, terminating, finished, DaemonSet), then
/// the owner's explicit word, then what would lose a pod or its data, then the budgets.
pub(super) const CHAIN: &[&dyn Rule] = &[
    &mirror_pod::MirrorPod,
    &terminating::Terminating,
    &finished::Finished,
    &daemonset::DaemonSet,
    &safe_to_evict::SafeToEvict,
    &unmanaged::Unmanaged,
    &local_storage::LocalStorage,
    &emptydir::EmptyDir,
    &budgets::Budgets,
];
