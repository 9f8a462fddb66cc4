//! The lab's `GET /metrics`: kube-apiserver's `apiserver_request_total` counter and
//! `apiserver_requested_deprecated_apis` gauge, with the upstream names, labels, help texts and
//! verb spelling, in the Prometheus text exposition format. Like an apiserver's, they count since
//! kube-apiserver last started: `kubeadm upgrade` restarting it ([`Metrics::reset`]) starts them
//! again from zero.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::sync::lock;

/// `Content-Type` of the Prometheus text format, as the apiserver sends it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const REQUEST_TOTAL: &str = "apiserver_request_total";
const REQUEST_TOTAL_HELP: &str = "[STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.";
const DEPRECATED: &str = "apiserver_requested_deprecated_apis";
const DEPRECATED_HELP: &str = "[STABLE] Gauge of deprecated APIs that have been requested, broken out by API group, version, resource, subresource, and removed_release.";

/// The labels of one `apiserver_request_total` series except `code`. Field order is the
/// alphabetical label order, so the derived ordering sorts series the way the Prometheus client
/// prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestLabels {
    /// `apiserver` for API requests, empty for health checks.
    pub component: &'static str,
    /// `All`, empty, or `invalid`.
    pub dry_run: &'static str,
    pub group: String,
    pub resource: String,
    /// `resource` (one named object, or a create), `namespace`, `cluster`, or empty for
    /// non-resource paths.
    pub scope: &'static str,
    /// The subresource, or the path of a non-resource request (`/healthz`).
    pub subresource: String,
    /// Upper case, as the apiserver reports it: GET, LIST, WATCH, POST, PUT, PATCH, APPLY, DELETE.
    pub verb: &'static str,
    pub version: String,
}

impl RequestLabels {
    /// A non-resource request such as `GET /healthz`.
    pub fn non_resource(path: &str) -> Self {
        RequestLabels { verb: "GET", subresource: path.to_string(), ..Default::default() }
    }
}

/// The apiserver's `dry_run` label for a `dryRun` query value.
pub fn dry_run_label(value: Option<&str>) -> &'static str {
    match value {
        None => "",
        Some("All") => "All",
        Some(_) => "invalid",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DeprecatedSeries {
    group: String,
    removed_release: String,
    resource: String,
    subresource: String,
    version: String,
}

/// Counters since the lab's kube-apiserver last started.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, RequestLabels), u64>>,
    deprecated: Mutex<BTreeSet<DeprecatedSeries>>,
}

impl Metrics {
    /// kube-apiserver restarted: every counter and the deprecated-API gauge start again empty, so
    /// `/metrics` shows only what was requested since (what `stepstone` reads after an upgrade).
    pub fn reset(&self) {
        lock(&self.requests).clear();
        lock(&self.deprecated).clear();
    }

    /// Count one served request with its HTTP status code. A watch is counted when its stream
    /// starts (the apiserver counts it when the stream ends).
    pub fn record(&self, labels: RequestLabels, code: u16) {
        *lock(&self.requests).entry((code.to_string(), labels)).or_default() += 1;
    }

    /// Set the deprecated-API gauge for a group/version/resource (it stays 1 from then on).
    pub fn mark_deprecated(&self, group: &str, version: &str, resource: &str, subresource: &str, removed: &str) {
        lock(&self.deprecated).insert(DeprecatedSeries {
            group: group.to_string(),
            removed_release: removed.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            version: version.to_string(),
        });
    }

    /// The exposition text. A metric with no series is left out, as the Prometheus client does.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let requests = lock(&self.requests);
        if !requests.is_empty() {
            out.push_str(&format!("# HELP {REQUEST_TOTAL} {REQUEST_TOTAL_HELP}\n# TYPE {REQUEST_TOTAL} counter\n"));
            for ((code, l), n) in requests.iter() {
                let labels = [
                    ("code", code.as_str()),
                    ("component", l.component),
                    ("dry_run", l.dry_run),
                    ("group", &l.group),
                    ("resource", &l.resource),
                    ("scope", l.scope),
                    ("subresource", &l.subresource),
                    ("verb", l.verb),
                    ("version", &l.version),
                ];
                out.push_str(&format!("{REQUEST_TOTAL}{{{}}} {n}\n", label_set(&labels)));
            }
        }
        drop(requests);
        let deprecated = lock(&self.deprecated);
        if !deprecated.is_empty() {
            out.push_str(&format!("# HELP {DEPRECATED} {DEPRECATED_HELP}\n# TYPE {DEPRECATED} gauge\n"));
            for d in deprecated.iter() {
                let labels = [
                    ("group", d.group.as_str()),
                    ("removed_release", &d.removed_release),
                    ("resource", &d.resource),
                    ("subresource", &d.subresource),
                    ("version", &d.version),
                ];
                out.push_str(&format!("{DEPRECATED}{{{}}} 1\n", label_set(&labels)));
            }
        }
        out
    }
}

/// `a="x",b="y"` with the text format's escapes (backslash, double quote, newline).
fn label_set(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_pods() -> RequestLabels {
        RequestLabels {
            component: "apiserver",
            resource: "pods".into(),
            scope: "namespace",
            verb: "LIST",
            version: "v1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn counters_render_in_label_order_and_add_up() {
        let m = Metrics::default();
        assert_eq!(m.render(), "", "no series, no families");
        m.record(list_pods(), 200);
        m.record(list_pods(), 200);
        m.record(RequestLabels { verb: "GET", scope: "resource", ..list_pods() }, 404);
        m.record(RequestLabels::non_resource("/healthz"), 200);
        let text = m.render();
        assert!(text.starts_with("# HELP apiserver_request_total [STABLE] Counter of apiserver requests"), "{text}");
        assert!(text.contains("# TYPE apiserver_request_total counter\n"), "{text}");
        assert!(
            text.contains("apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"pods\",scope=\"namespace\",subresource=\"\",verb=\"LIST\",version=\"v1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("apiserver_request_total{code=\"200\",component=\"\",dry_run=\"\",group=\"\",resource=\"\",scope=\"\",subresource=\"/healthz\",verb=\"GET\",version=\"\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("code=\"404\""), "{text}");
        assert!(!text.contains(DEPRECATED), "{text}");
    }

    #[test]
    fn the_deprecated_gauge_reads_back_with_the_apis_parser() {
        let m = Metrics::default();
        m.mark_deprecated("policy", "v1beta1", "poddisruptionbudgets", "", "1.25");
        m.mark_deprecated("policy", "v1beta1", "poddisruptionbudgets", "", "1.25");
        let text = m.render();
        assert!(text.contains("# TYPE apiserver_requested_deprecated_apis gauge\n"), "{text}");
        let series = stepstone_apis::metrics::parse("lab", &text).unwrap();
        assert_eq!(series.len(), 1, "{text}");
        assert_eq!(
            (series[0].group.as_str(), series[0].version.as_str(), series[0].resource.as_str()),
            ("policy", "v1beta1", "poddisruptionbudgets")
        );
        assert_eq!(series[0].removed_release, "1.25");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_set(&[("a", "x\"y\\z\n")]), "a=\"x\\\"y\\\\z\\n\"");
        assert_eq!(dry_run_label(Some("All")), "All");
        assert_eq!(dry_run_label(Some("Bogus")), "invalid");
        assert_eq!(dry_run_label(None), "");
    }

    #[test]
    fn a_reset_empties_counters_and_the_gauge() {
        let m = Metrics::default();
        m.record(list_pods(), 200);
        m.mark_deprecated("policy", "v1beta1", "poddisruptionbudgets", "", "1.25");
        m.reset();
        assert_eq!(m.render(), "");
        m.record(list_pods(), 200);
        let text = m.render();
        assert!(text.contains("verb=\"LIST\",version=\"v1\"} 1\n"), "{text}");
        assert!(!text.contains(DEPRECATED), "{text}");
    }
}
