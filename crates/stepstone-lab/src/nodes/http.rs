//! The node-operation API over HTTP, under `/lab/v1/`: the same operations as [`LabNodes`], for
//! other processes (`stepstone lab node ...`, [`crate::LabClient`]). Requests and answers are the
//! types of [`super::wire`]; a refusal is an [`ErrorBody`] with the status [`NodeOpError`] maps to.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::wire::{
    ClockInfo, ErrorBody, EtcdSnapshotRequest, InstallRequest, LogsQuery, RepositoryRequest, UpgradeApplyRequest,
    UpgradePlanQuery,
};
use super::{LabNodes, NodeOpError, OsRefresh, Package, UpgradeOptions};
use crate::clock;
use crate::state::Shared;

fn op_error(e: NodeOpError) -> Response {
    (e.http_code(), axum::Json(ErrorBody::new(e.to_string()))).into_response()
}

fn answer<T: serde::Serialize>(result: Result<T, NodeOpError>) -> Response {
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => op_error(e),
    }
}

fn nodes(shared: &Arc<Shared>) -> LabNodes {
    LabNodes::new(shared.clone())
}

async fn list_nodes(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(nodes(&shared).list()).into_response()
}

async fn get_node(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    answer(nodes(&shared).facts(&name))
}

async fn install(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    axum::Json(b): axum::Json<InstallRequest>,
) -> Response {
    answer(b.package.parse::<Package>().and_then(|p| nodes(&shared).install_package(&name, p, &b.version)))
}

async fn repository(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    axum::Json(b): axum::Json<RepositoryRequest>,
) -> Response {
    answer(nodes(&shared).configure_repository(&name, &b.repository))
}

async fn upgrade_apply(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    axum::Json(b): axum::Json<UpgradeApplyRequest>,
) -> Response {
    answer(nodes(&shared).kubeadm_upgrade_apply(&name, &b.version, &b.options()))
}

async fn upgrade_node(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Option<axum::Json<UpgradeOptions>>,
) -> Response {
    let opts = body.map(|b| b.0).unwrap_or_default();
    answer(nodes(&shared).kubeadm_upgrade_node(&name, &opts))
}

/// `GET|POST .../kubeadm/upgrade-plan[?version=vX]`; a POST may carry `{"version": "vX"}` instead.
async fn upgrade_plan(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<UpgradePlanQuery>,
    body: Option<axum::Json<UpgradePlanQuery>>,
) -> Response {
    let version = query.version.or_else(|| body.and_then(|b| b.0.version));
    answer(nodes(&shared).kubeadm_upgrade_plan(&name, version.as_deref()))
}

async fn restart(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    answer(nodes(&shared).restart_kubelet(&name))
}

async fn etcd_snapshot(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    axum::Json(b): axum::Json<EtcdSnapshotRequest>,
) -> Response {
    answer(nodes(&shared).etcd_snapshot(&name, &b.dir, b.label.as_deref()))
}

async fn reboot(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    answer(nodes(&shared).reboot(&name))
}

async fn os_refresh(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    axum::Json(b): axum::Json<OsRefresh>,
) -> Response {
    answer(nodes(&shared).os_refresh(&name, &b))
}

async fn kubelet_logs(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Response {
    answer(nodes(&shared).kubelet_logs(&name, q.tail))
}

async fn kubeadm_version(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    answer(nodes(&shared).kubeadm_version(&name))
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.stats.snapshot()).into_response()
}

async fn clock_info(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(ClockInfo { now: clock::format(shared.now()), speed: shared.clock.speed() }).into_response()
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/lab/v1/nodes", get(list_nodes))
        .route("/lab/v1/nodes/{name}", get(get_node))
        .route("/lab/v1/nodes/{name}/packages", post(install))
        .route("/lab/v1/nodes/{name}/repository", post(repository))
        .route("/lab/v1/nodes/{name}/kubeadm/upgrade-plan", get(upgrade_plan).post(upgrade_plan))
        .route("/lab/v1/nodes/{name}/kubeadm/upgrade-apply", post(upgrade_apply))
        .route("/lab/v1/nodes/{name}/kubeadm/upgrade-node", post(upgrade_node))
        .route("/lab/v1/nodes/{name}/kubelet/restart", post(restart))
        .route("/lab/v1/nodes/{name}/etcd/snapshot", post(etcd_snapshot))
        .route("/lab/v1/nodes/{name}/reboot", post(reboot))
        .route("/lab/v1/nodes/{name}/os/refresh", post(os_refresh))
        .route("/lab/v1/nodes/{name}/logs/kubelet", get(kubelet_logs))
        .route("/lab/v1/nodes/{name}/kubeadm/version", get(kubeadm_version))
        .route("/lab/v1/stats", get(stats))
        .route("/lab/v1/clock", get(clock_info))
}
