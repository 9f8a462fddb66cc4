//! The one way stepstone reaches a cluster: which kubeconfig (the file given, else `KUBECONFIG`,
//! `~/.kube/config` or in-cluster), which context, and the clients every adapter is handed:
//! one with kube's own retries for writes and watches, one without for callers that retry on
//! their own terms (reads through [`crate::read`], the drain's evictions), and the read retry policy.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read kubeconfig {path}: {source}; check the path given to --kubeconfig or KUBECONFIG")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "kubeconfig {path}: {source}; list the contexts with `kubectl config get-contexts --kubeconfig {path}` and pass one with --context"
    )]
    Context {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig given and none found ({source}); pass --kubeconfig FILE or set KUBECONFIG")]
    Infer {
        #[source]
        source: kube::config::InferConfigError,
    },
    #[error("cannot build a Kubernetes client for {server}: {source}")]
    Client {
        server: String,
        #[source]
        source: kube::Error,
    },
}

/// The clients for one cluster plus the words errors and the inventory use for where they point.
#[derive(Clone)]
pub struct Connection {
    /// For writes and watches: kube's own retries of 429, 503 and 504 stay on.
    pub client: Client,
    /// kube's retries off, for callers with a bound of their own: reads through [`crate::read`]
    /// (kube's retries would otherwise stack under them, up to 15 per request, minutes of
    /// waiting) and the drain, whose budget 429s must reach its own loop, which logs them and
    /// retries at its own pace.
    pub unretried: Client,
    /// How reads are retried.
    pub retry: crate::read::Retry,
    /// The API server URL.
    pub server: String,
    /// `cluster <server> (context <name>)`, for `Inventory::source`.
    pub label: String,
}

/// Connect with a kubeconfig file and context (the current context when `None`); with no file,
/// the usual lookup (`KUBECONFIG`, `~/.kube/config`, in-cluster).
pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Connection, ConnectError> {
    let options = KubeConfigOptions { context: context.map(str::to_string), ..Default::default() };
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|source| ConnectError::Kubeconfig { path: path.to_path_buf(), source })?;
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|source| ConnectError::Context { path: path.to_path_buf(), source })?
        }
        None => Config::infer().await.map_err(|source| ConnectError::Infer { source })?,
    };
    let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
    let label = match context {
        Some(c) => format!("cluster {server} (context {c})"),
        None => format!("cluster {server}"),
    };
    let mut unretried_config = config.clone();
    unretried_config.default_retry = false;
    let client = Client::try_from(config).map_err(|source| ConnectError::Client { server: server.clone(), source })?;
    let unretried =
        Client::try_from(unretried_config).map_err(|source| ConnectError::Client { server: server.clone(), source })?;
    Ok(Connection { client, unretried, retry: crate::read::Retry::default(), server, label })
}
