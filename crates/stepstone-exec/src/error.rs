//! Why a rollout run stopped with an error rather than a halt: the lock, the cluster or the
//! journal.

use crate::cluster::ClusterError;
use crate::journal::JournalError;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(
        "another rollout holds the lock: {holder} (Lease kube-system/stepstone-rollout, renewed {renewed}, expires {expires} unless renewed). Wait for it, look with `stepstone rollout status`, or stop it with `stepstone rollout pause|abort`"
    )]
    Locked { holder: String, renewed: String, expires: String },
    #[error("the rollout lock was taken by {holder} while this run held it; stopping without touching anything more")]
    LockLost { holder: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}
