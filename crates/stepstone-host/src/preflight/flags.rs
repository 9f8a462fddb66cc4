//! The kubelet's command-line flags on a node, read from the files kubeadm and packages use
//! (`/var/lib/kubelet/kubeadm-flags.env`, `/etc/default/kubelet`, `/etc/sysconfig/kubelet`), and
//! judged against `data/kubelet-flags.toml`: flags the target kubelet rejects, flags on their
//! way out, and a `--cgroup-driver` that contradicts the kubelet's config file.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use stepstone_core::version::Minor;

const FLAGS_TOML: &str = include_str!("../../../../data/kubelet-flags.toml");

/// One row of the flag table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagRule {
    pub name: String,
    pub removed: Option<Minor>,
    pub deprecated: Option<Minor>,
    pub fix: String,
    pub source: String,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    flag: Vec<FlagRule>,
}

/// The embedded table; a row with neither `removed` nor `deprecated` is a build defect.
pub fn rules() -> &'static [FlagRule] {
    static DATA: OnceLock<Vec<FlagRule>> = OnceLock::new();
    DATA.get_or_init(|| {
        let raw: RawFile = toml::from_str(FLAGS_TOML).expect("data/kubelet-flags.toml is valid");
        for r in &raw.flag {
            assert!(r.removed.is_some() || r.deprecated.is_some(), "data/kubelet-flags.toml: {} says nothing", r.name);
        }
        raw.flag
    })
}

/// One flag as a file sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetFlag {
    pub file: String,
    pub value: Option<String>,
}

/// What the flags section printed: `file PATH` then the file, for each file that exists.
/// Returns flag name → where it is set (the last file read wins, as the kubelet unit's order
/// puts the user's `KUBELET_EXTRA_ARGS` after kubeadm's).
pub fn parse_flag_files(out: &str) -> BTreeMap<String, SetFlag> {
    let mut flags = BTreeMap::new();
    let mut file = String::new();
    for line in out.lines() {
        if let Some(path) = line.strip_prefix("file ") {
            file = path.trim().to_string();
            continue;
        }
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((_, value)) = line.split_once('=') else { continue };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        let words: Vec<&str> = value.split_whitespace().collect();
        for (i, word) in words.iter().enumerate() {
            let Some(flag) = word.strip_prefix("--") else { continue };
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, words.get(i + 1).filter(|w| !w.starts_with("--")).map(|w| w.to_string())),
            };
            if !name.is_empty() {
                flags.insert(name.to_string(), SetFlag { file: file.clone(), value });
            }
        }
    }
    flags
}

/// A flag judged at the target minor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagProblem {
    pub flag: String,
    pub file: String,
    /// The kubelet of the target rejects it.
    pub removed: bool,
    pub since: Minor,
    pub fix: String,
    pub source: String,
}

/// The flags in `set` that the table lists for `target`, removed ones first.
pub fn judge(set: &BTreeMap<String, SetFlag>, target: Minor, table: &[FlagRule]) -> Vec<FlagProblem> {
    let mut problems: Vec<FlagProblem> = table
        .iter()
        .filter_map(|rule| {
            let at = set.get(&rule.name)?;
            let (removed, since) = match (rule.removed, rule.deprecated) {
                (Some(r), _) if target >= r => (true, r),
                (_, Some(d)) if target >= d => (false, d),
                _ => return None,
            };
            Some(FlagProblem {
                flag: rule.name.clone(),
                file: at.file.clone(),
                removed,
                since,
                fix: rule.fix.clone(),
                source: rule.source.clone(),
            })
        })
        .collect();
    problems.sort_by(|a, b| (!a.removed, &a.flag).cmp(&(!b.removed, &b.flag)));
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILES: &str = "file /var/lib/kubelet/kubeadm-flags.env\n\
        KUBELET_KUBEADM_ARGS=\"--container-runtime=remote --container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9\"\n\n\
        file /etc/default/kubelet\n\
        # local settings\n\
        KUBELET_EXTRA_ARGS=--node-ip 10.0.0.5 --cgroup-driver=cgroupfs\n";

    fn m(s: &str) -> Minor {
        s.parse().unwrap()
    }

    #[test]
    fn flags_are_read_from_every_file_with_their_values() {
        let f = parse_flag_files(FILES);
        assert_eq!(f["container-runtime"].value.as_deref(), Some("remote"));
        assert_eq!(f["container-runtime"].file, "/var/lib/kubelet/kubeadm-flags.env");
        assert_eq!(f["node-ip"].value.as_deref(), Some("10.0.0.5"), "a value after a space");
        assert_eq!(f["cgroup-driver"].file, "/etc/default/kubelet");
        assert!(!f.contains_key("local"), "comments are skipped");
        assert!(parse_flag_files("").is_empty());
    }

    #[test]
    fn the_target_decides_which_flags_are_problems() {
        let set = parse_flag_files(FILES);
        struct Case {
            name: &'static str,
            target: &'static str,
            want: Vec<(&'static str, bool)>,
        }
        for case in [
            Case { name: "1.26 still takes --container-runtime", target: "1.26", want: vec![] },
            Case { name: "1.27 rejects it", target: "1.27", want: vec![("container-runtime", true)] },
            Case {
                name: "1.35 also rejects the pause image flag",
                target: "1.35",
                want: vec![("container-runtime", true), ("pod-infra-container-image", true)],
            },
        ] {
            let got: Vec<(String, bool)> =
                judge(&set, m(case.target), rules()).into_iter().map(|p| (p.flag, p.removed)).collect();
            let want: Vec<(String, bool)> = case.want.iter().map(|(f, r)| (f.to_string(), *r)).collect();
            assert_eq!(got, want, "{}", case.name);
        }
    }

    #[test]
    fn a_flag_on_its_way_out_is_a_warning_after_the_removed_ones() {
        let set = parse_flag_files(FILES);
        let rule = |name: &str, removed: Option<&str>, deprecated: Option<&str>| FlagRule {
            name: name.into(),
            removed: removed.map(m),
            deprecated: deprecated.map(m),
            fix: "f".into(),
            source: "s".into(),
        };
        let table = [rule("node-ip", None, Some("1.34")), rule("cgroup-driver", Some("1.36"), Some("1.34"))];
        let got: Vec<(String, bool)> =
            judge(&set, m("1.34"), &table).into_iter().map(|p| (p.flag, p.removed)).collect();
        assert_eq!(got, [("cgroup-driver".to_string(), false), ("node-ip".to_string(), false)]);
        let got: Vec<(String, bool)> =
            judge(&set, m("1.36"), &table).into_iter().map(|p| (p.flag, p.removed)).collect();
        assert_eq!(got, [("cgroup-driver".to_string(), true), ("node-ip".to_string(), false)]);
    }

    #[test]
    fn every_row_names_a_source_and_a_fix() {
        for r in rules() {
            assert!(!r.source.is_empty() && !r.fix.is_empty(), "{}", r.name);
        }
    }
}
