//! The running lab that the `stepstone lab node` tests drive: `examples/small.json` with an edit,
//! started in the test process, and the `stepstone` binary pointed at its kubeconfig.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use stepstone_lab::{Lab, LabHandle, LabOptions};

pub struct Running {
    pub lab: LabHandle,
    pub kubeconfig: PathBuf,
    /// Holds the kubeconfig and whatever a test writes beside it for as long as the lab runs.
    #[allow(dead_code, reason = "not every test binary writes files beside the kubeconfig")]
    pub dir: tempfile::TempDir,
}

/// examples/small.json (3 control-plane nodes, 12 workers, all v1.34.6) with `edit` applied.
pub fn start(edit: impl FnOnce(&mut Value)) -> Running {
    let mut fleet: Value = serde_json::from_str(include_str!("../../../../examples/small.json")).unwrap();
    edit(&mut fleet);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let lab = Lab::start_blocking(
        fleet,
        LabOptions { kubeconfig: Some(kubeconfig.clone()), speed: 100.0, ..LabOptions::default() },
    )
    .expect("the lab starts");
    Running { lab, kubeconfig, dir }
}

pub fn stepstone(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepstone")).args(args).arg("--kubeconfig").arg(kubeconfig).output().unwrap()
}
