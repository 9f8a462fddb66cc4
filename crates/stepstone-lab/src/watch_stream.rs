//! Watches as newline-delimited JSON streams: the changes of one resource (in a namespace or
//! all), filtered by label and field selectors, as objects or Tables, with bookmarks, from a
//! resource version or from now, until the client's timeout or the lab's watch deadline.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::faults;
use crate::query::{query_bool, query_int, query_resource_version};
use crate::resources::{self, RESOURCES, ResId};
use crate::select::Filter;
use crate::state::{Shared, lock};
use crate::status::ApiError;
use crate::store::{self, Change, ChangeKind, Stored};
use crate::table;

struct WatchState {
    res: ResId,
    ns: Option<String>,
    filter: Filter,
    table: bool,
    pending: VecDeque<Bytes>,
    rx: Option<broadcast::Receiver<Arc<Change>>>,
    deadline: tokio::time::Instant,
    /// When the drop-watch fault cuts this watch's connection.
    drop_at: Option<tokio::time::Instant>,
    bookmarks: bool,
    shared: Arc<Shared>,
    done: bool,
}

pub(crate) fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).expect("serialises");
    v.push(b'\n');
    Bytes::from(v)
}

impl WatchState {
    /// One event's line: the object as stored, or its Table.
    fn event(&self, kind: &str, obj: &Arc<Stored>) -> Bytes {
        if self.table {
            let now = self.shared.now();
            event_line(kind, &table::table(self.res, std::slice::from_ref(obj), now, 0, None, "Metadata"))
        } else {
            let mut line = Vec::with_capacity(obj.json().len() + 32);
            line.extend_from_slice(b"{\"type\":");
            serde_json::to_writer(&mut line, kind).expect("a string serialises");
            line.extend_from_slice(b",\"object\":");
            line.extend_from_slice(obj.json());
            line.extend_from_slice(b"}\n");
            Bytes::from(line)
        }
    }

    /// In the watched namespace, read from a pod's facts without parsing it.
    fn in_scope(&self, obj: &Stored) -> bool {
        match (self.ns.as_deref(), obj.pod_facts()) {
            (None, _) => true,
            (Some(n), Some(facts)) => &*facts.namespace == n,
            (Some(n), None) => store::namespace_of(&obj.value()) == n,
        }
    }

    fn classify(&self, c: &Change) -> Option<(&'static str, Arc<Stored>)> {
        if resources::storage_of(self.res) != c.res {
            return None;
        }
        if !self.in_scope(&c.object) {
            return None;
        }
        let now_matches = self.filter.matches_stored(&c.object);
        match c.kind {
            ChangeKind::Added => now_matches.then(|| ("ADDED", c.object.clone())),
            ChangeKind::Deleted => now_matches.then(|| ("DELETED", c.object.clone())),
            ChangeKind::Modified => {
                let before = c.prev.as_ref().is_none_or(|p| self.filter.matches_stored(p));
                match (before, now_matches) {
                    (true, true) => Some(("MODIFIED", c.object.clone())),
                    (false, true) => Some(("ADDED", c.object.clone())),
                    (true, false) => Some(("DELETED", c.object.clone())),
                    (false, false) => None,
                }
            }
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let def = &RESOURCES[self.res];
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        event_line("BOOKMARK", &json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": metadata}))
    }
}

/// The longest watch the lab keeps open (a year), so any `timeoutSeconds` makes a deadline.
const MAX_WATCH_SECONDS: u64 = 365 * 24 * 3600;

pub(crate) fn watch_response(
    shared: &Arc<Shared>,
    res: ResId,
    ns: Option<String>,
    query: &HashMap<String, String>,
    accept: &str,
) -> Result<Response, ApiError> {
    let filter = Filter::from_query(res, query)?;
    // Upstream's default is a random 30 to 60 minutes; zero or less means the default too.
    let timeout = match query_int(query, "timeoutSeconds")? {
        Some(t) if t > 0 => t.unsigned_abs().min(MAX_WATCH_SECONDS),
        _ => 1800,
    };
    let bookmarks = query.get("allowWatchBookmarks").is_some_and(|b| query_bool(b));
    let send_initial = query.get("sendInitialEvents").is_some_and(|b| query_bool(b));
    let start_rv = query_resource_version(query)?;
    let drop_after = {
        let cfg = lock(&shared.faults);
        let mut rng = lock(&shared.fault_rng);
        faults::watch_drop(&cfg, [rng.unit(), rng.unit()])
    };
    let mut state = WatchState {
        res,
        ns,
        filter,
        table: table::wants_table(accept),
        pending: VecDeque::new(),
        rx: None,
        deadline: tokio::time::Instant::now() + Duration::from_secs(timeout),
        drop_at: drop_after.map(|d| tokio::time::Instant::now() + d),
        bookmarks,
        shared: shared.clone(),
        done: false,
    };
    {
        let store = shared.store();
        let current = store.resource_version();
        let from = if start_rv.is_none() || send_initial {
            // Start at the current state: every matching object as ADDED, then changes.
            let objects: Vec<Arc<Stored>> = store
                .iter_stored(res, state.ns.as_deref(), None)
                .filter(|(_, o)| state.filter.matches_stored(o))
                .map(|(_, o)| o.clone())
                .collect();
            for o in &objects {
                let line = state.event("ADDED", o);
                state.pending.push_back(line);
            }
            if send_initial {
                state.pending.push_back(state.bookmark(current, true));
            }
            current
        } else {
            start_rv.unwrap_or(current)
        };
        match store.changes_since(from) {
            Some((past, rx)) => {
                for c in past {
                    if let Some((kind, obj)) = state.classify(&c) {
                        let line = state.event(kind, &obj);
                        state.pending.push_back(line);
                    }
                }
                state.rx = Some(rx);
            }
            None => {
                let e = ApiError::gone(format!("too old resource version: {from} ({})", store.oldest_history_rv()));
                state.pending.push_back(event_line("ERROR", &e.to_status()));
                state.done = true;
            }
        }
    }
    let stream = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(b) = st.pending.pop_front() {
                return Some((Ok::<Bytes, std::io::Error>(b), st));
            }
            if st.done {
                return None;
            }
            let drop_at = st.drop_at;
            let rx = st.rx.as_mut()?;
            let tick = tokio::time::sleep(Duration::from_secs(5));
            tokio::select! {
                _ = tokio::time::sleep_until(st.deadline) => return None,
                // An error ends the body without its last chunk: the client sees the connection
                // cut mid-stream, not a watch that timed out.
                _ = tokio::time::sleep_until(drop_at.unwrap_or(st.deadline)), if drop_at.is_some() => {
                    st.done = true;
                    let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected fault: watch dropped");
                    return Some((Err(cut), st));
                }
                _ = tick, if st.bookmarks => {
                    let rv = st.shared.store().resource_version();
                    let b = st.bookmark(rv, false);
                    st.pending.push_back(b);
                }
                msg = rx.recv() => match msg {
                    Ok(c) => {
                        if let Some((kind, obj)) = st.classify(&c) {
                            let line = st.event(kind, &obj);
                            st.pending.push_back(line);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::gone("too old resource version: the watch fell behind; list again");
                        st.pending.push_back(event_line("ERROR", &e.to_status()));
                        st.done = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    Ok(r.into_response())
}
