//! `GET`, `PUT` and `PATCH /lab/v1/faults`: the HTTP face of [`crate::faults`]. Kept apart from
//! the fault settings, so the shared state can hold those without depending on the server side.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::faults::{FaultConfig, FaultsError, check_nodes};
use crate::nodes::wire::ErrorBody;
use crate::patch::PatchType;
use crate::state::Shared;
use crate::sync::lock;

fn refused(e: FaultsError) -> Response {
    let body = ErrorBody { error: e.to_string(), faults: Some(e) };
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(lock(&shared.faults).clone()).into_response()
}

async fn put_faults(State(shared): State<Arc<Shared>>, axum::Json(cfg): axum::Json<FaultConfig>) -> Response {
    if let Err(e) = cfg.validate().and_then(|()| check_nodes(&shared.store(), &cfg)) {
        return refused(e);
    }
    *lock(&shared.faults) = cfg.clone();
    axum::Json(cfg).into_response()
}

/// `PATCH /lab/v1/faults`: a JSON merge patch (`application/merge-patch+json`, or plain
/// `application/json`) or a JSON patch (`application/json-patch+json`). Read, patch and write
/// happen under one lock, so concurrent patches of different fields all land.
async fn patch_faults(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let content_type =
        headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let kind = match content_type.split(';').next().unwrap_or("").trim() {
        "application/json" => PatchType::Merge,
        other => match PatchType::from_content_type(other) {
            Ok(kind) => kind,
            Err(_) => {
                let error = format!(
                    "PATCH /lab/v1/faults takes application/merge-patch+json or application/json-patch+json (got \"{content_type}\")"
                );
                return (StatusCode::UNSUPPORTED_MEDIA_TYPE, axum::Json(ErrorBody::new(error))).into_response();
            }
        },
    };
    // The simulated kubelets read the faults while they hold the store: take the two locks in
    // the same order here, or a patch and a controller pass wait for each other for ever.
    let store = shared.store();
    let mut faults = lock(&shared.faults);
    match faults.patched(kind, &body).and_then(|next| check_nodes(&store, &next).map(|()| next)) {
        Ok(next) => {
            *faults = next.clone();
            axum::Json(next).into_response()
        }
        Err(e) => refused(e),
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new().route("/lab/v1/faults", get(get_faults).put(put_faults).patch(patch_faults))
}
