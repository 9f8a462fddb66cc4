//! Gathering sightings from every source into one [`Scan`]: manifest files, cluster objects (live
//! or from a snapshot: managedFields, last-applied annotations, Helm release records, the
//! kubeadm-config ConfigMap) and apiserver metrics text.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::data::RemovedApis;
use crate::manifest::{self, ManifestError, ManifestScan};
use crate::metrics::{self, MetricsError};
use crate::sighting::{Sighting, SourceKind, Suppressed, Used, object_label};
use crate::{helm, kubeadm, managed};

/// Sightings from all sources, not yet judged against a path.
#[derive(Debug)]
pub struct Scan<'a> {
    pub data: &'a RemovedApis,
    pub sightings: Vec<Sighting>,
    pub suppressed: Vec<Suppressed>,
    /// Things the operator should know about the inputs (unreadable files, releases without a
    /// deployed revision, sources the cluster did not let us read).
    pub notes: Vec<String>,
    /// How much of each source was read: `manifest files`, `objects`, `helm releases`, ...
    pub counts: BTreeMap<String, usize>,
}

impl<'a> Scan<'a> {
    pub fn new(data: &'a RemovedApis) -> Scan<'a> {
        Scan { data, sightings: Vec::new(), suppressed: Vec::new(), notes: Vec::new(), counts: BTreeMap::new() }
    }

    fn count(&mut self, what: &str, n: usize) {
        if n == 0 {
            return;
        }
        *self.counts.entry(what.to_string()).or_default() += n;
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Scan a manifest file or directory.
    pub fn add_manifest_path(&mut self, path: &Path) -> Result<(), ManifestError> {
        let scan = manifest::scan_path(path)?;
        self.add_manifest_scan(scan);
        Ok(())
    }

    /// Scan manifest text held in memory (`origin` names it in locations).
    pub fn add_manifest_text(&mut self, origin: &str, text: &str) {
        self.add_manifest_scan(manifest::scan_text(origin, text));
    }

    fn add_manifest_scan(&mut self, scan: ManifestScan) {
        self.count("manifest files", scan.files);
        self.count("manifest documents", scan.docs.len());
        for doc in scan.docs {
            let mut s = Sighting::new(
                SourceKind::Manifest,
                Used::api(&doc.api_version, &doc.kind),
                format!("{}:{}", doc.file, doc.line),
            )
            .object(object_label(&doc.kind, doc.namespace.as_deref(), doc.name.as_deref()));
            if let Some(t) = doc.template {
                s = s.detail(format!("rendered from {t}"));
            }
            self.sightings.push(s);
        }
        for flag in scan.flags {
            self.sightings.push(Sighting::new(
                SourceKind::KubeletFlag,
                Used::KubeletFlag { flag: flag.flag },
                format!("{}:{}", flag.file, flag.line),
            ));
        }
        self.notes.extend(scan.problems);
    }

    /// Cluster objects, live or from a snapshot: every object's managedFields and last-applied
    /// annotation, Helm release records (newest deployed revision of each release) and the
    /// kubeadm-config ConfigMap.
    pub fn add_objects(&mut self, origin: &str, objects: &[Value]) {
        let mut releases = Vec::new();
        let mut records = 0;
        for obj in objects {
            if helm::is_release_object(obj) {
                records += 1;
                match helm::release_from_object(obj) {
                    Ok(r) => releases.push(r),
                    Err(e) => self.notes.push(format!("{origin}: {e}")),
                }
                continue;
            }
            if kubeadm::is_kubeadm_config(obj) {
                self.sightings.extend(kubeadm::sightings(origin, obj));
            }
            let (sightings, suppressed) = managed::analyze_object(self.data, origin, obj);
            self.sightings.extend(sightings);
            self.suppressed.extend(suppressed);
        }
        self.count("objects", objects.len() - records);
        self.count("helm release records", records);
        let (deployed, notes) = helm::newest_deployed(releases);
        self.notes.extend(notes);
        self.count("helm releases", deployed.len());
        for release in deployed {
            let label = release.label();
            for doc in manifest::scan_text("manifest", &release.manifest).docs {
                let mut detail = format!("chart {}", release.chart);
                if let Some(t) = &doc.template {
                    detail.push_str(&format!(", template {t}"));
                }
                detail.push_str(&format!(", line {} of the stored manifest", doc.line));
                self.sightings.push(
                    Sighting::new(SourceKind::Helm, Used::api(&doc.api_version, &doc.kind), &label)
                        .object(object_label(&doc.kind, doc.namespace.as_deref(), doc.name.as_deref()))
                        .detail(detail),
                );
            }
        }
    }

    /// Prometheus text from the apiserver's `/metrics` (or a saved copy). `origin` is a file name
    /// (locations get `:line`) or a description such as `apiserver /metrics`.
    pub fn add_metrics_text(&mut self, origin: &str, text: &str, with_lines: bool) -> Result<(), MetricsError> {
        let series = metrics::parse(origin, text)?;
        self.count("deprecated API series", series.len());
        for s in series {
            let location = if with_lines { format!("{origin}:{}", s.line) } else { origin.to_string() };
            self.sightings.push(
                Sighting::new(
                    SourceKind::Metrics,
                    Used::Resource {
                        group: s.group,
                        version: s.version,
                        resource: s.resource,
                        subresource: s.subresource,
                        removed_release: s.removed_release,
                    },
                    location,
                )
                .detail("requested by some client since this apiserver started"),
            );
        }
        Ok(())
    }
}
