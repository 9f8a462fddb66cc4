//! What can go wrong talking to a lab: finding it (the kubeconfig, a server that is not a lab),
//! reaching it, and its refusals, kept apart so a caller can tell bad input (an unknown node, a
//! package version that does not exist) from an operation the node refused as the real tool
//! would (kubeadm's preflight, a skipped minor).

use std::path::PathBuf;

use crate::faults::FaultsError;

#[derive(Debug, thiserror::Error)]
pub enum LabClientError {
    #[error("cannot read the kubeconfig {path}: no such file; `stepstone lab up --kubeconfig {path}` writes it")]
    KubeconfigMissing { path: PathBuf },
    #[error("{path} is not a kubeconfig ({reason}); pass the file `stepstone lab up` wrote")]
    KubeconfigInvalid { path: PathBuf, reason: String },
    #[error("{path} has no current-context; name the lab's context")]
    NoCurrentContext { path: PathBuf },
    #[error("{path} has no context \"{context}\" (it has: {known})")]
    UnknownContext { path: PathBuf, context: String, known: String },
    #[error("{path}: context \"{context}\" names cluster \"{cluster}\", which the file does not define with a server")]
    NoServer { path: PathBuf, context: String, cluster: String },
    /// The server is not a lab: labs serve plain HTTP on loopback only.
    #[error("server {url} {why}; only a lab started with `stepstone lab up` serves the node API")]
    NotALab { url: String, why: &'static str },
    #[error(
        "cannot reach the lab at {url}: {source}; is `stepstone lab up` still running? Each start writes a new kubeconfig"
    )]
    Unreachable {
        url: String,
        #[source]
        source: kube::Error,
    },
    #[error("{method} {url}{path}: no answer from the lab within {seconds} s")]
    Timeout { method: String, url: String, path: String, seconds: u64 },
    /// 400 or 404 with the lab's message: the request named something that does not exist or
    /// is malformed (an unknown node or package, a bad version, a fault rate out of range).
    #[error("{message}")]
    BadRequest {
        status: u16,
        message: String,
        /// What was wrong with a refused fault change.
        faults: Option<FaultsError>,
    },
    /// 409: the node refused the operation, as the real tool refuses it (kubeadm's messages).
    #[error("{message}")]
    Refused { message: String },
    #[error("{url} does not serve {path}; is it a lab started by this version of `stepstone lab up`?")]
    NotServed { url: String, path: String },
    #[error("{method} {url}{path}: the lab answered {status}: {message}")]
    Unexpected { method: String, url: String, path: String, status: u16, message: String },
    #[error("{method} {url}{path}: unexpected answer from the lab ({source}): {body}")]
    Decode {
        method: String,
        url: String,
        path: String,
        body: String,
        #[source]
        source: serde_json::Error,
    },
}

impl LabClientError {
    /// Whether the caller's input was wrong (exit 2), rather than the lab refusing or failing.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            LabClientError::KubeconfigMissing { .. }
                | LabClientError::KubeconfigInvalid { .. }
                | LabClientError::NoCurrentContext { .. }
                | LabClientError::UnknownContext { .. }
                | LabClientError::NoServer { .. }
                | LabClientError::NotALab { .. }
                | LabClientError::BadRequest { .. }
                | LabClientError::NotServed { .. }
        )
    }
}
