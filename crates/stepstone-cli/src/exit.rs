//! Exit codes: 0 ok, 1 findings of severity error (or an operation that stopped short),
//! 2 bad input or usage, 3 the cluster's API server kept failing (5xx, 429 or dropped
//! connections through every retry).

use std::process::ExitCode;

use stepstone_core::findings::{Finding, Severity};
use stepstone_exec::ExecError;
use stepstone_exec::cluster::ClusterError;

/// An error the user caused (bad flag value, unreadable file): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

pub const OK: u8 = 0;
pub const FINDINGS: u8 = 1;
pub const BAD_INPUT: u8 = 2;
/// The API server kept failing a read: not the user's input, and no answer about the cluster.
pub const SERVER_ERROR: u8 = 3;

/// The exit code of a command that failed with `e`.
pub fn for_error(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<Failure>().is_some() {
        FINDINGS
    } else if e.chain().any(|c| {
        c.is::<stepstone_kube::read::ServerError>()
            || matches!(c.downcast_ref::<ClusterError>(), Some(ClusterError::Unavailable { .. }))
            || matches!(c.downcast_ref::<ExecError>(), Some(ExecError::Cluster(ClusterError::Unavailable { .. })))
    }) {
        SERVER_ERROR
    } else {
        BAD_INPUT
    }
}

/// 1 when any finding is an error, else 0.
pub fn for_findings(findings: &[Finding]) -> ExitCode {
    if findings.iter().any(|f| f.severity == Severity::Error) { ExitCode::from(FINDINGS) } else { ExitCode::from(OK) }
}

/// An operation that ran but stopped short (a drain that timed out, a gate that failed):
/// exit code 1, with the message printed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// Run a future to completion on a fresh multi-threaded runtime (commands are sync at the top).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime starts")
        .block_on(f)
}
