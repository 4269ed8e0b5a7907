//! The runsc (gVisor) backend: writes the run's OCI bundle, starts `runsc run` with a
//! private state root (`<state_dir>/sandbox/runsc`), no network, the bundle's seccomp rules
//! loaded inside gVisor, runsc's own log in the run directory, and the whole runsc process
//! tree in the run's cgroup, under the AppArmor runsc profile when AppArmor is in force and
//! with SIGKILL on the runner's death. On timeout the tool gets SIGTERM (runsc forwards
//! it), then everything in the cgroup SIGKILL. Every container is deleted after its run;
//! [`delete_container`] also serves the sweep of a crashed runner's leftovers.

pub(crate) mod bundle;

use super::cgroup::{CgroupLimits, Layout, RunCgroup};
use super::native::mounts;
use super::outcome::{Outcome, Posture, Termination};
use super::output::{Pump, Wake};
use super::plan::Plan;
use super::policy::SandboxPolicy;
use super::state::Run;
use super::{Launch, SandboxError, sys};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Host tasks gVisor needs: the sentry's and gofer's threads plus, on the ptrace platform,
/// stub processes and threads for every process of the tool (measured: a 32-process fork
/// bomb peaks near 1,500 host tasks). The tool's own process count is enforced inside
/// gVisor (RLIMIT_NPROC); this host cap only bounds gVisor itself.
const RUNSC_PIDS_BASE: u64 = 1024;
const RUNSC_PIDS_PER_PROCESS: u64 = 64;

fn runsc_root(state_dir: &Path) -> PathBuf {
    super::state::sandbox_dir(state_dir).join("runsc")
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        what: what.to_owned(),
        source,
    }
}

/// Runs `launch` under `plan` with runsc.
pub(crate) fn run(
    policy: &SandboxPolicy,
    plan: &Plan,
    binary: &Path,
    launch: Launch,
    run: &Run,
    cgroups: Option<&Layout>,
    state_dir: &Path,
) -> Result<Outcome, SandboxError> {
    let limits = launch.limits.clone();
    let root = runsc_root(state_dir);
    super::state::private_dir(&root).map_err(io_err("prepare runsc's state directory"))?;

    let bundle_dir = run.dir.join("bundle");
    std::fs::create_dir(&bundle_dir).map_err(io_err("create the bundle directory"))?;
    let masked_file = run.dir.join("masked");
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o000)
            .open(&masked_file)
            .map_err(io_err("create the stand-in for masked files"))?;
    }
    let masks = mounts::resolve_masks(&policy.rootfs, &policy.all_masked_paths());
    let spec = bundle::build(&bundle::BundleInput {
        policy,
        plan,
        tool: launch.executable.path(),
        args: &launch.args,
        env: &launch.env,
        limits: &limits,
        masks: &masks,
        masked_file: &masked_file,
    })
    .map_err(|e| SandboxError::Io {
        what: "build the OCI bundle".into(),
        source: io::Error::other(e),
    })?;
    spec.save(bundle_dir.join("config.json"))
        .map_err(|e| SandboxError::Io {
            what: "write the OCI bundle".into(),
            source: io::Error::other(e),
        })?;

    let cgroup = match cgroups {
        Some(layout) => Some(
            RunCgroup::create(
                layout,
                &policy.cgroup_parent,
                &run.id,
                CgroupLimits {
                    memory_bytes: limits
                        .memory_bytes
                        .saturating_add(policy.runsc_overhead_bytes),
                    pids: limits
                        .max_processes
                        .saturating_mul(RUNSC_PIDS_PER_PROCESS)
                        .saturating_add(RUNSC_PIDS_BASE),
                },
            )
            .map_err(io_err("create the run's cgroup"))?,
        ),
        None => None,
    };
    let mut guard = Guard {
        binary: binary.to_owned(),
        state_dir: state_dir.to_owned(),
        id: run.id.clone(),
        cgroup,
        child: None,
    };

    let log = run.dir.join("runsc.log");
    let mut cmd = Command::new(binary);
    cmd.arg(format!("--root={}", root.display()))
        .arg("--network=none")
        .arg("--ignore-cgroups")
        .arg(format!("--log={}", log.display()))
        .arg("--log-format=json");
    if plan.seccomp {
        cmd.arg("--oci-seccomp");
    }
    cmd.arg("run")
        .arg(format!("--bundle={}", bundle_dir.display()))
        .arg(&run.id)
        .env_clear()
        .current_dir(&run.dir);
    let (stdin_r, stdin_w) = pipe()?;
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    cmd.stdin(Stdio::from(stdin_r))
        .stdout(Stdio::from(stdout_w))
        .stderr(Stdio::from(stderr_w));

    // Between fork and exec (one thread: see `cgroup::JOIN_FILE_V1`): join the cgroup,
    // die with the runner, enter the profile.
    let procs: Vec<OwnedFd> = match &guard.cgroup {
        Some(c) => c
            .join_files()
            .map_err(io_err("open the cgroup"))?
            .into_iter()
            .map(OwnedFd::from)
            .collect(),
        None => Vec::new(),
    };
    let apparmor =
        match &plan.apparmor_profile {
            Some(p) => Some(CString::new(format!("exec {p}")).map_err(|_| {
                SandboxError::InvalidPolicy {
                    message: "the AppArmor profile name contains a NUL byte".into(),
                }
            })?),
            None => None,
        };
    let procs_raw: Vec<i32> = procs.iter().map(|f| f.as_raw_fd()).collect();
    sys::before_exec(&mut cmd, move |/* child */| {
        for fd in &procs_raw {
            sys::write_all(*fd, b"0")?;
        }
        sys::set_parent_death_signal(libc::SIGKILL)?;
        if let Some(request) = &apparmor {
            super::apparmor::exec_transition(request)?;
        }
        Ok(())
    });
    let started = Instant::now();
    let child = cmd.spawn().map_err(io_err("start runsc"))?;
    drop(procs);
    drop(cmd);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let pidfd = sys::pidfd_open(pid).map_err(|e| SandboxError::Io {
        what: "watch runsc".into(),
        source: e.into(),
    })?;
    let watch = pidfd.try_clone().map_err(io_err("watch runsc"))?;
    guard.child = Some((pid, pidfd));

    let mut pump = Pump::new(
        stdin_w,
        launch.stdin,
        stdout_r,
        stderr_r,
        limits.output_bytes,
    )
    .map_err(io_err("prepare the tool's standard streams"))?;
    let deadline = started + Duration::from_millis(limits.timeout_ms);
    let mut timed_out = false;
    if pump
        .run(watch.as_fd(), deadline)
        .map_err(io_err("relay the tool's output"))?
        == Wake::Deadline
    {
        timed_out = true;
        // runsc forwards SIGTERM to the container's init.
        let _ = sys::pidfd_send_signal(watch.as_fd(), libc::SIGTERM);
        let grace = Instant::now() + Duration::from_millis(limits.kill_grace_ms);
        if pump
            .run(watch.as_fd(), grace)
            .map_err(io_err("relay the tool's output"))?
            == Wake::Deadline
        {
            guard.kill();
            let hard = Instant::now() + Duration::from_secs(10);
            if pump
                .run(watch.as_fd(), hard)
                .map_err(io_err("relay the tool's output"))?
                == Wake::Deadline
            {
                return Err(SandboxError::Io {
                    what: "kill the sandbox".into(),
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        "runsc survived SIGKILL for 10 s",
                    ),
                });
            }
        }
    }
    let reaped = sys::wait4(pid).map_err(|e| SandboxError::Io {
        what: "reap runsc".into(),
        source: e.into(),
    })?;
    guard.child = None;
    let wall_ms = started.elapsed().as_millis() as u64;
    // A runsc killed by the cgroup leaves the sandbox's processes to die with it.
    if let Some(c) = &guard.cgroup {
        c.kill_all();
    }
    pump.drain(Instant::now() + Duration::from_secs(2))
        .map_err(io_err("drain the tool's output"))?;
    let (stdout, stderr) = pump.finish();

    let runsc_error = read_log_error(&log);
    let termination = if libc::WIFSIGNALED(reaped.status) {
        if !timed_out {
            return Err(SandboxError::Runsc {
                message: format!(
                    "runsc was killed by signal {}",
                    libc::WTERMSIG(reaped.status)
                ),
            });
        }
        Termination::Signaled(libc::SIGKILL)
    } else {
        let code = libc::WEXITSTATUS(reaped.status);
        if let Some(message) = runsc_error.filter(|_| code == 128 || !timed_out && code > 128) {
            return Err(SandboxError::Runsc { message });
        }
        // `runsc run` exits with the container's status, or 128 + the signal that killed it.
        match code {
            129..=192 => Termination::Signaled(code - 128),
            c => Termination::Exited(c),
        }
    };

    let cg = guard.cgroup.take();
    let (cpu_ms, peak) = match &cg {
        Some(c) => (c.cpu_ns().map(|ns| ns / 1_000_000), c.peak_memory()),
        None => (None, None),
    };
    if let Some(c) = cg {
        c.remove().map_err(io_err("remove the run's cgroup"))?;
    }
    delete_container(binary, state_dir, &run.id);
    Ok(Outcome {
        termination,
        timed_out,
        stdout,
        stderr,
        wall_ms,
        cpu_ms: cpu_ms.unwrap_or((reaped.user_us + reaped.system_us) / 1000),
        peak_memory_bytes: peak.unwrap_or(reaped.max_rss_bytes),
        posture: Posture {
            backend: "runsc".into(),
            namespaces: bundle::NAMESPACES
                .iter()
                .map(|(_, n)| (*n).to_owned())
                .collect(),
            capabilities: Vec::new(),
            seccomp: plan.seccomp_posture().into(),
            apparmor: plan.apparmor_posture(),
            // --network=none leaves gVisor's own loopback up; nothing leaves the sandbox.
            network: "loopback-only".into(),
            uid: policy.uid,
            gid: policy.gid,
            no_new_privs: true,
            read_only_root: true,
        },
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SandboxError::Io {
        what: "create a pipe".into(),
        source: e.into(),
    })
}

/// The first error runsc logged (its own failures, not the tool's).
fn read_log_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        matches!(v.get("level")?.as_str()?, "error" | "fatal" | "panic").then(|| {
            v.get("msg")
                .and_then(|m| m.as_str())
                .unwrap_or(line)
                .to_owned()
        })
    })
}

/// Kills and deletes container `id` if runsc still knows it. Quiet: used on every path.
pub(crate) fn delete_container(binary: &Path, state_dir: &Path, id: &str) {
    let root = runsc_root(state_dir);
    let known = std::fs::read_dir(&root)
        .map(|entries| {
            entries.flatten().any(|e| {
                e.file_name()
                    .as_bytes()
                    .windows(id.len())
                    .any(|w| w == id.as_bytes())
            })
        })
        .unwrap_or(false);
    if !known {
        return;
    }
    let status = Command::new(binary)
        .arg(format!("--root={}", root.display()))
        .args(["delete", "--force", id])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        tracing::warn!(container = id, "runsc delete --force failed");
    }
    // runsc leaves its lock files behind after a forced delete.
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.as_bytes();
            if name.starts_with(id.as_bytes()) && name.ends_with(b".lock") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Owns the runsc process tree until it is reaped: dropping it kills everything in the
/// run's cgroup (or the runsc process), reaps, deletes the container and the cgroup.
struct Guard {
    binary: PathBuf,
    state_dir: PathBuf,
    id: String,
    cgroup: Option<RunCgroup>,
    child: Option<(nix::unistd::Pid, OwnedFd)>,
}

impl Guard {
    fn kill(&self) {
        if let Some(c) = &self.cgroup {
            c.kill_all();
        } else {
            let root = runsc_root(&self.state_dir);
            let _ = Command::new(&self.binary)
                .arg(format!("--root={}", root.display()))
                .args(["kill", "--all", &self.id, "KILL"])
                .env_clear()
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some((_, fd)) = &self.child {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some((pid, _)) = &self.child {
            let pid = *pid;
            self.kill();
            let _ = sys::wait4(pid);
            self.child = None;
        }
        if let Some(c) = self.cgroup.take() {
            let _ = c.remove();
        }
        delete_container(&self.binary, &self.state_dir, &self.id);
    }
}
