//! The lifecycle of labs on this machine, like kind's clusters: where a named lab keeps its state
//! (`$XDG_RUNTIME_DIR/stepstone/labs/NAME`, else `~/.local/state/stepstone/labs/NAME`), the
//! record a serving lab writes there once it is ready and removes when it stops, `lab up -d`
//! (the same command re-run detached, waited on until ready), `lab status` and `lab down`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::output::{OutputArgs, emit};

/// The name of a lab started without `--name`.
pub const DEFAULT_NAME: &str = "lab";

/// What a serving lab records about itself in its state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabRecord {
    pub name: String,
    pub pid: u32,
    pub url: String,
    pub port: u16,
    pub kubeconfig: PathBuf,
    pub nodes: usize,
    pub speed: f64,
    pub fleet: String,
}

/// A lab name: a DNS label, since it names a directory and appears in commands people copy.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(crate::exit::usage(format!(
            "--name {name:?}: a lab name is 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. --name staging)"
        )))
    }
}

/// Where every lab's state directory lives.
pub fn labs_dir() -> anyhow::Result<PathBuf> {
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(run).join("stepstone/labs"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/stepstone/labs")),
        None => Err(crate::exit::usage(
            "neither XDG_RUNTIME_DIR nor HOME is set: set one so labs have a place for their state".to_string(),
        )),
    }
}

pub fn state_dir(name: &str) -> anyhow::Result<PathBuf> {
    Ok(labs_dir()?.join(name))
}

fn record_path(dir: &Path) -> PathBuf {
    dir.join("lab.json")
}

pub fn read_record(dir: &Path) -> Option<LabRecord> {
    serde_json::from_slice(&std::fs::read(record_path(dir)).ok()?).ok()
}

/// Record a lab that is ready to serve (written whole, then renamed, so a reader never sees half).
pub fn write_record(dir: &Path, record: &LabRecord) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create the lab state directory {}: {e}", dir.display()))?;
    let tmp = dir.join("lab.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(record)?)?;
    std::fs::rename(&tmp, record_path(dir))?;
    Ok(())
}

/// Forget a stopped lab's record (its kubeconfig and log stay until `lab down`).
pub fn remove_record(dir: &Path, pid: u32) {
    if read_record(dir).is_some_and(|r| r.pid == pid) {
        let _ = std::fs::remove_file(record_path(dir));
    }
}

/// Is `pid` a live stepstone process (not a stranger that reused the id)?
pub fn alive(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    if rustix::process::test_kill_process(p).is_err() {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains("stepstone"),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Re-run this `lab up` detached (its own process group, output to the state directory's
/// `lab.log`), wait until it records itself ready, and say how to use and stop it.
pub fn detach(name: &str, output: &OutputArgs) -> anyhow::Result<ExitCode> {
    let dir = state_dir(name)?;
    if let Some(r) = read_record(&dir).filter(|r| alive(r.pid)) {
        return Err(crate::exit::usage(format!(
            "a lab named {name} is already running (pid {}, {}); stop it with `stepstone lab down --name {name}`, or start this one with another --name",
            r.pid, r.url
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create the lab state directory {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(record_path(&dir));
    let log_path = dir.join("lab.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| anyhow::anyhow!("cannot write the lab log {}: {e}", log_path.display()))?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).filter(|a| a != "-d" && a != "--detach").collect();
    let exe =
        std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find the stepstone binary to re-run: {e}"))?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(exe)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start the lab in the background: {e}"))?
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let record = loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let code = status.code().unwrap_or(1);
            eprint!("{log}");
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
        if let Some(r) = read_record(&dir).filter(|r| r.pid == child.id()) {
            break r;
        }
        if Instant::now() > deadline {
            return Err(anyhow::anyhow!(
                "the lab started in the background (pid {}) is not ready after 5 minutes; see {}",
                child.id(),
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    emit(output.output, "LabRunning", &record, || {
        format!(
            "lab {name} is running in the background (pid {}) at {} ({} nodes, speed x{})\n\
             kubeconfig: {}\n  kubectl --kubeconfig {} get nodes\n\
             log: {}\nstop it with: stepstone lab down --name {name}\n",
            record.pid,
            record.url,
            record.nodes,
            record.speed,
            record.kubeconfig.display(),
            stepstone_runbook::shell::quote(&record.kubeconfig.display().to_string()),
            log_path.display(),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// List the labs started on this machine.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab status
  stepstone lab status -o json")]
pub struct StatusArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LabStatus {
    #[serde(flatten)]
    record: LabRecord,
    /// `running`, or `stale` when its process is gone without cleaning up (`lab down` removes it).
    status: &'static str,
}

pub fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let base = labs_dir()?;
    let mut labs: Vec<LabStatus> = std::fs::read_dir(&base)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| read_record(&e.path()))
        .map(|record| {
            let status = if alive(record.pid) { "running" } else { "stale" };
            LabStatus { record, status }
        })
        .collect();
    labs.sort_by(|a, b| a.record.name.cmp(&b.record.name));
    #[derive(Serialize)]
    struct LabList<'a> {
        labs: &'a [LabStatus],
    }
    emit(a.output.output, "LabList", &LabList { labs: &labs }, || {
        if labs.is_empty() {
            return "no labs running (start one with `stepstone lab up -d --fleet FILE`)\n".to_string();
        }
        let mut rows =
            vec![["NAME", "STATUS", "PORT", "PID", "NODES", "SPEED", "KUBECONFIG"].map(String::from).to_vec()];
        for l in &labs {
            let r = &l.record;
            rows.push(vec![
                r.name.clone(),
                l.status.to_string(),
                r.port.to_string(),
                r.pid.to_string(),
                r.nodes.to_string(),
                format!("x{}", r.speed),
                r.kubeconfig.display().to_string(),
            ]);
        }
        let widths: Vec<usize> =
            (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
        rows.iter()
            .map(|r| {
                let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
                cells.join("   ").trim_end().to_string() + "\n"
            })
            .collect()
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Stop a lab started on this machine and remove its kubeconfig and state.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab down
  stepstone lab down --name staging")]
pub struct DownArgs {
    /// The lab to stop (`lab status` lists them).
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
}

pub fn down(a: DownArgs) -> anyhow::Result<ExitCode> {
    check_name(&a.name)?;
    let dir = state_dir(&a.name)?;
    let Some(record) = read_record(&dir) else {
        return Err(crate::exit::usage(format!(
            "no lab named {} on this machine (`stepstone lab status` lists them; `--name` picks one)",
            a.name
        )));
    };
    let was_running = alive(record.pid);
    if was_running {
        let pid = i32::try_from(record.pid).ok().and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                .map_err(|e| anyhow::anyhow!("cannot stop lab {} (pid {}): {e}", a.name, record.pid))?;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while alive(record.pid) {
            if Instant::now() > deadline {
                return Err(anyhow::anyhow!(
                    "lab {} (pid {}) did not stop within a minute of SIGTERM; see {}",
                    a.name,
                    record.pid,
                    dir.join("lab.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Only a lab's own kubeconfig goes: never a file someone has since pointed elsewhere.
    let kubeconfig_removed = std::fs::read_to_string(&record.kubeconfig)
        .is_ok_and(|t| t.contains("current-context: stepstone-lab") && t.contains(&record.url))
        && std::fs::remove_file(&record.kubeconfig).is_ok();
    std::fs::remove_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", dir.display()))?;
    let what = if was_running { format!("stopped (pid {})", record.pid) } else { "was no longer running".into() };
    print!("lab {} {what}; removed its state", a.name);
    if kubeconfig_removed {
        print!(" and {}", record.kubeconfig.display());
    }
    println!();
    Ok(ExitCode::SUCCESS)
}
