//! The drain's voice: every event goes to the caller's sink, and the milestones are also posted
//! as Kubernetes Events on their node, in the background and once per (node, reason, budget), so
//! retries do not flood `kubectl describe node`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::Client;
use tokio::task::JoinSet;

use super::api;
use super::event::{DrainEvent, EventSink};

/// Emits to the sink and posts the milestone events on the nodes, in the background, once per
/// (node, reason, budget) so retries do not flood `kubectl describe node`.
pub(super) struct Notifier<'a> {
    client: Client,
    post: bool,
    sink: &'a dyn EventSink,
    uids: std::sync::Mutex<BTreeMap<String, Option<String>>>,
    posted: std::sync::Mutex<BTreeSet<String>>,
    posts: std::sync::Mutex<JoinSet<()>>,
}

impl<'a> Notifier<'a> {
    pub(super) fn new(client: Client, post: bool, sink: &'a dyn EventSink) -> Self {
        Notifier { client, post, sink, uids: Default::default(), posted: Default::default(), posts: Default::default() }
    }

    pub(super) fn node_uid(&self, node: &str, uid: Option<String>) {
        self.uids.lock().expect("not poisoned").insert(node.to_string(), uid);
    }

    pub(super) fn emit(&self, event: &DrainEvent) {
        self.sink.emit(event);
        if !self.post {
            return;
        }
        let Some(node_event) = event.node_event() else { return };
        let dedupe = match event {
            DrainEvent::Blocked { node, pdb, .. } => format!("{node}/{}/{pdb}", node_event.reason),
            _ => format!("{}/{}/{}", node_event.node, node_event.reason, node_event.message),
        };
        if !self.posted.lock().expect("not poisoned").insert(dedupe) {
            return;
        }
        let uid = self.uids.lock().expect("not poisoned").get(&node_event.node).cloned().flatten();
        let client = self.client.clone();
        self.posts.lock().expect("not poisoned").spawn(async move {
            if let Err(e) = api::post_node_event(&client, &node_event, uid.as_deref()).await {
                // Events are a courtesy to other operators; the drain does not depend on them.
                tracing::warn!("posting event {} on node {}: {e}", node_event.reason, node_event.node);
            }
        });
    }

    /// Wait (briefly) for the posted events to land.
    pub(super) async fn flush(&self) {
        let mut posts = std::mem::take(&mut *self.posts.lock().expect("not poisoned"));
        let _ =
            tokio::time::timeout(Duration::from_secs(5), async { while posts.join_next().await.is_some() {} }).await;
    }
}
