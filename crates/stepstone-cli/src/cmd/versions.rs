//! `stepstone versions`: the release calendar with each minor's support status on a given day,
//! and how far a cluster is behind.

use std::process::ExitCode;

use anyhow::Context;
use jiff::civil::Date;
use serde::Serialize;
use stepstone_core::releases::{Release, ReleaseData, SupportStatus};
use stepstone_core::version::{KubeVersion, Minor};

use crate::output::{OutputArgs, Table, emit};
use crate::source::SourceArgs;

/// Show the Kubernetes release calendar and, for a cluster, how far behind it is.
///
/// The table lists every minor in the release data (data/releases.toml, with sources): release,
/// maintenance-mode and end-of-life dates, latest known patch, the etcd kubeadm ships, the
/// kubelet skew window, and the support status on --today (default: the current date). Given a
/// cluster (--snapshot, --kubeconfig or --example), it also says how many minors the control
/// plane is behind the newest release and how many days remain until its minor's end of life.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone versions
  stepstone versions --snapshot cluster.json
  stepstone versions --example three-generations --today 2026-11-25 -o json")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,

    /// The day to judge support status on (YYYY-MM-DD); default: today.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub today: Option<Date>,

    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_date(s: &str) -> Result<Date, String> {
    s.parse::<Date>().map_err(|e| format!("'{s}' is not a date such as 2026-11-25: {e}"))
}

/// A release as the data has it, with its status on the report's day.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRow {
    #[serde(flatten)]
    pub release: Release,
    /// `unreleased` before the release date, else supported / maintenance / end-of-life.
    pub status: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    pub cluster: String,
    pub control_plane: KubeVersion,
    pub minor: Minor,
    /// `None` when the minor is not in the release data.
    pub status: Option<String>,
    pub newest_released: Option<Minor>,
    /// Minors between the control plane and the newest released minor.
    pub minors_behind: Option<i64>,
    pub eol: Option<Date>,
    /// Days from `today` until end of life; negative once it has passed.
    pub days_to_eol: Option<i64>,
    pub latest_patch: Option<KubeVersion>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionsReport {
    pub today: Date,
    /// When the release data was last updated: newer releases are unknown to this build.
    pub data_updated: Date,
    pub releases: Vec<ReleaseRow>,
    pub cluster: Option<ClusterStatus>,
}

fn status_word(data: &ReleaseData, minor: Minor, today: Date) -> Option<String> {
    let r = data.get(minor)?;
    if today < r.released {
        return Some("unreleased".to_string());
    }
    Some(
        match data.status(minor, today)? {
            SupportStatus::Supported => "supported",
            SupportStatus::Maintenance => "maintenance",
            SupportStatus::EndOfLife => "end-of-life",
        }
        .to_string(),
    )
}

fn days_between(from: Date, to: Date) -> i64 {
    from.until(to).map(|s| i64::from(s.get_days())).unwrap_or(0)
}

/// Build the report for `today`. Pure: the day is passed in.
pub fn report(data: &ReleaseData, today: Date, cluster: Option<(String, KubeVersion)>) -> VersionsReport {
    let releases = data
        .all()
        .map(|r| ReleaseRow { release: r.clone(), status: status_word(data, r.minor, today).unwrap_or_default() })
        .collect();
    let cluster = cluster.map(|(name, version)| {
        let minor = version.minor();
        let release = data.get(minor);
        let newest_released = data.newest_released(today);
        ClusterStatus {
            cluster: name,
            control_plane: version,
            minor,
            status: status_word(data, minor, today),
            newest_released,
            minors_behind: newest_released.map(|n| n.minus(minor).max(0)),
            eol: release.map(|r| r.eol),
            days_to_eol: release.map(|r| days_between(today, r.eol)),
            latest_patch: release.map(|r| r.latest.clone()),
        }
    });
    VersionsReport { today, data_updated: data.updated, releases, cluster }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The only clock read: core and the report take the day as a value.
    let today = args.today.unwrap_or_else(|| jiff::Zoned::now().date());
    let explicit =
        !args.source.snapshot.is_empty() || args.source.kubeconfig.is_some() || args.source.example.is_some();
    let cluster = if explicit {
        let inv = args.source.load()?;
        let cp = inv
            .control_plane_version()
            .with_context(|| {
                format!("{}: no kube-apiserver version found (no kube-system static pods, no /version)", inv.source)
            })
            .map_err(|e| crate::exit::usage(format!("{e:#}")))?;
        Some((inv.source.clone(), cp))
    } else {
        None
    };
    let report = report(ReleaseData::embedded(), today, cluster);
    emit(args.output.output, "Versions", &report, || render(&report))?;
    Ok(ExitCode::SUCCESS)
}

fn render(r: &VersionsReport) -> String {
    let mut t =
        Table::new(["MINOR", "RELEASED", "MAINTENANCE", "END OF LIFE", "LATEST", "ETCD", "KUBELET SKEW", "STATUS"]);
    for ReleaseRow { release, status } in &r.releases {
        t.row([
            release.minor.to_string(),
            release.released.to_string(),
            release.maintenance.to_string(),
            release.eol.to_string(),
            release.latest.to_string(),
            release.etcd.clone(),
            format!("n-{}", release.kubelet_skew),
            status.clone(),
        ]);
    }
    let mut out = format!("Status on {} (release data updated {})\n\n", r.today, r.data_updated);
    out.push_str(&t.render());
    if let Some(c) = &r.cluster {
        out.push_str(&format!("\nCluster: {}\nControl plane: {} (minor {})\n", c.cluster, c.control_plane, c.minor));
        match (c.newest_released, c.minors_behind) {
            (Some(n), Some(0)) => out.push_str(&format!("On the newest released minor ({n}).\n")),
            (Some(n), Some(b)) => out.push_str(&format!(
                "{b} minor{} behind the newest released minor ({n}).\n",
                if b == 1 { "" } else { "s" }
            )),
            _ => {}
        }
        match (c.eol, c.days_to_eol) {
            (Some(eol), Some(d)) if d >= 0 => {
                out.push_str(&format!("{} reaches end of life on {eol}: {d} days from {}.\n", c.minor, r.today))
            }
            (Some(eol), Some(d)) => out.push_str(&format!(
                "{} reached end of life on {eol}, {} days before {}: it gets no more patches.\n",
                c.minor, -d, r.today
            )),
            _ => out.push_str(&format!("{} is not in the release data.\n", c.minor)),
        }
        if let Some(latest) = &c.latest_patch
            && *latest > c.control_plane
        {
            out.push_str(&format!("Latest {} patch: {latest}.\n", c.minor));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn a_1_33_cluster_on_2026_11_25() {
        let r = report(ReleaseData::embedded(), day("2026-11-25"), Some(("c".into(), "v1.33.4".parse().unwrap())));
        let c = r.cluster.unwrap();
        assert_eq!(c.status.as_deref(), Some("end-of-life"));
        assert_eq!(c.newest_released, Some(Minor::new(1, 37)));
        assert_eq!(c.minors_behind, Some(4));
        assert_eq!(c.eol, Some(day("2026-06-28")));
        assert_eq!(c.days_to_eol, Some(-150));
        let row = r.releases.iter().find(|x| x.release.minor == Minor::new(1, 35)).unwrap();
        assert_eq!(row.status, "supported");
    }

    #[test]
    fn before_a_release_it_is_unreleased_and_days_count_down() {
        let r = report(ReleaseData::embedded(), day("2026-05-01"), Some(("c".into(), "v1.35.1".parse().unwrap())));
        let row = r.releases.iter().find(|x| x.release.minor == Minor::new(1, 37)).unwrap();
        assert_eq!(row.status, "unreleased");
        let c = r.cluster.unwrap();
        assert_eq!(c.newest_released, Some(Minor::new(1, 36)));
        assert_eq!(c.minors_behind, Some(1));
        assert_eq!(c.days_to_eol, Some(days_between(day("2026-05-01"), day("2027-02-28"))));
        assert!(c.days_to_eol.unwrap() > 0);
    }
}
