//! The runsc (gVisor) backend. A run reads as its steps: write the run's OCI bundle
//! (`bundle`), create the run's cgroup, start `runsc run` with a private state root
//! (`<state_dir>/sandbox/runsc`), no network, the bundle's seccomp rules loaded inside
//! gVisor, runsc's own log in the run directory, the whole runsc process tree in the run's
//! cgroup, under the AppArmor runsc profile when AppArmor is in force and with SIGKILL on
//! the runner's death, and under a per-run reaper that collects every process of runsc's
//! tree (`reaper`); supervise it (`supervise`: on timeout the tool gets SIGTERM, which
//! runsc forwards, then everything in the cgroup SIGKILL); reap, collect, read how it
//! ended, account, delete the container. [`delete_container`] also serves the sweep of a
//! crashed runner's leftovers.

pub(crate) mod bundle;
mod reaper;

use super::cgroup::{CgroupLimits, RunCgroup};
use super::context::RunContext;
use super::error::{SandboxError, errno_err, io_err};
use super::launch::Launch;
use super::outcome::{Outcome, Termination};
use super::output::Pump;
use super::supervise::{self, Ending, Supervised};
use super::{state, sys, view};
use crate::timing::StageClock;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn runsc_root(state_dir: &Path) -> PathBuf {
    state::sandbox_dir(state_dir).join("runsc")
}

/// Runs `launch` with runsc.
pub(crate) fn run(
    ctx: &RunContext<'_>,
    binary: &Path,
    launch: Launch,
    clock: &mut StageClock,
) -> Result<Outcome, SandboxError> {
    let bundle_dir = write_bundle(ctx, &launch)?;
    clock.lap("plan");
    let cgroup = ctx.cgroup(CgroupLimits::runsc(
        &launch.limits,
        ctx.policy.runsc_overhead_bytes,
    ))?;
    let guard = Guard {
        binary: binary.to_owned(),
        state_dir: ctx.state_dir.to_owned(),
        id: ctx.run.id.clone(),
        cgroup,
    };
    clock.lap("cgroup");
    let log = ctx.run.dir.join("runsc.log");
    let (container, stdio) = Container::spawn(ctx, guard, &bundle_dir, &log)?;
    let started = Instant::now();
    clock.lap("clone");
    let [stdin, stdout, stderr] = stdio;
    let mut pump = Pump::new(
        stdin,
        launch.stdin,
        stdout,
        stderr,
        launch.limits.output_bytes,
    )
    .map_err(io_err("prepare the tool's standard streams"))?;
    let ending = supervise::until_exit(&container, &mut pump, started, &launch.limits)?;
    clock.lap("tool");
    let (status, reaped, guard) = container.reap()?;
    let wall_ms = started.elapsed().as_millis() as u64;
    let (stdout, stderr) = supervise::collect(pump)?;
    let termination = termination(status, ending, &log)?;
    let mut guard = guard;
    let usage = supervise::usage(guard.cgroup.take(), &reaped)?;
    drop(guard); // deletes the container
    clock.lap("teardown");
    Ok(Outcome {
        termination,
        timed_out: ending.timed_out(),
        stdout,
        stderr,
        wall_ms,
        cpu_ms: usage.cpu_ms,
        peak_memory_bytes: usage.peak_memory_bytes,
        // --network=none leaves gVisor's own loopback up; nothing leaves the sandbox.
        posture: ctx.posture(
            "runsc",
            bundle::NAMESPACES
                .iter()
                .map(|(_, n)| (*n).to_owned())
                .collect(),
            "loopback-only",
        ),
    })
}

/// Writes `<run>/bundle/config.json` (and the stand-in for masked files); returns the
/// bundle directory.
fn write_bundle(ctx: &RunContext<'_>, launch: &Launch) -> Result<PathBuf, SandboxError> {
    let root = runsc_root(ctx.state_dir);
    state::private_dir(&root).map_err(io_err("prepare runsc's state directory"))?;
    let bundle_dir = ctx.run.dir.join("bundle");
    std::fs::create_dir(&bundle_dir).map_err(io_err("create the bundle directory"))?;
    let masked_file = ctx.run.dir.join("masked");
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o000)
            .open(&masked_file)
            .map_err(io_err("create the stand-in for masked files"))?;
    }
    let masks = view::resolve_masks(&ctx.policy.rootfs, &ctx.policy.all_masked_paths());
    let oci = |what: &str| {
        let what = what.to_owned();
        move |e: bundle::BundleError| SandboxError::Io {
            what,
            source: std::io::Error::other(e),
        }
    };
    let spec = bundle::build(&bundle::BundleInput {
        policy: ctx.policy,
        plan: ctx.plan,
        tool: launch.executable.path(),
        args: &launch.args,
        env: &launch.env,
        limits: &launch.limits,
        masks: &masks,
        masked_file: &masked_file,
    })
    .map_err(oci("build the OCI bundle"))?;
    spec.save(bundle_dir.join("config.json"))
        .map_err(|e| oci("write the OCI bundle")(e.into()))?;
    Ok(bundle_dir)
}

/// How the tool ended, from `runsc run`'s wait status: runsc exits with the container's
/// status, or 128 + the signal that killed it. A runsc that failed itself (its log says
/// why) is the runner's failure, not the tool's.
fn termination(status: i32, ending: Ending, log: &Path) -> Result<Termination, SandboxError> {
    let timed_out = ending.timed_out();
    if libc::WIFSIGNALED(status) {
        if !timed_out {
            return Err(SandboxError::Runsc {
                message: format!("runsc was killed by signal {}", libc::WTERMSIG(status)),
            });
        }
        return Ok(Termination::Signaled(libc::SIGKILL));
    }
    let code = libc::WEXITSTATUS(status);
    if (code == 128 || !timed_out && code > 128)
        && let Some(message) = read_log_error(log)
    {
        return Err(SandboxError::Runsc { message });
    }
    Ok(match code {
        129..=192 => Termination::Signaled(code - 128),
        c => Termination::Exited(c),
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

/// What a run leaves to clean whether or not runsc started: dropping it kills everything
/// in the run's cgroup, removes the cgroup and deletes the container.
struct Guard {
    binary: PathBuf,
    state_dir: PathBuf,
    id: String,
    cgroup: Option<RunCgroup>,
}

impl Guard {
    fn kill_all(&self) {
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
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.cgroup.take() {
            let _ = c.remove();
        }
        delete_container(&self.binary, &self.state_dir, &self.id);
    }
}

/// A started `runsc run` and its reaper, until the reaper is reaped: dropping it early
/// kills the run and reaps the reaper.
struct Container {
    guard: Option<Guard>,
    /// runsc itself: watched and signalled through its pidfd, reaped by the reaper.
    runsc: OwnedFd,
    /// The runner's child, whose wait status is runsc's.
    reaper: nix::unistd::Pid,
    reaper_fd: OwnedFd,
}

impl Container {
    /// Starts `runsc run` for the bundle; returns it and the parent's ends of the tool's
    /// stdin, stdout and stderr.
    fn spawn(
        ctx: &RunContext<'_>,
        guard: Guard,
        bundle_dir: &Path,
        log: &Path,
    ) -> Result<(Container, [OwnedFd; 3]), SandboxError> {
        let mut cmd = Command::new(&guard.binary);
        cmd.arg(format!("--root={}", runsc_root(ctx.state_dir).display()))
            .arg("--network=none")
            .arg("--ignore-cgroups")
            .arg(format!("--log={}", log.display()))
            .arg("--log-format=json");
        if ctx.plan.seccomp {
            cmd.arg("--oci-seccomp");
        }
        cmd.arg("run")
            .arg(format!("--bundle={}", bundle_dir.display()))
            .arg(&ctx.run.id)
            .env_clear()
            .current_dir(&ctx.run.dir);
        let (stdin_r, stdin_w) = pipe()?;
        let (stdout_r, stdout_w) = pipe()?;
        let (stderr_r, stderr_w) = pipe()?;
        cmd.stdin(Stdio::from(stdin_r))
            .stdout(Stdio::from(stdout_w))
            .stderr(Stdio::from(stderr_w));
        let join: Vec<OwnedFd> = match &guard.cgroup {
            Some(c) => c
                .join_files()
                .map_err(io_err("open the cgroup"))?
                .into_iter()
                .map(OwnedFd::from)
                .collect(),
            None => Vec::new(),
        };
        let apparmor = match &ctx.plan.apparmor_profile {
            Some(p) => Some(CString::new(format!("exec {p}")).map_err(|_| {
                SandboxError::InvalidPolicy {
                    message: "the AppArmor profile name contains a NUL byte".into(),
                }
            })?),
            None => None,
        };
        let pid_pipe = reaper::PidPipe::new().map_err(errno_err("create a pipe"))?;
        before_exec(
            &mut cmd,
            pid_pipe.write_fd(),
            join.iter().map(|f| f.as_raw_fd()).collect(),
            apparmor,
        );
        let child = cmd.spawn().map_err(io_err("start runsc"))?;
        drop((join, cmd));
        let reaper = nix::unistd::Pid::from_raw(child.id() as i32);
        // The reaper's pidfd, runsc's pid from the reaper, and a pidfd for runsc (runsc is
        // the reaper's child and is not reaped before it exits, so its pid cannot be
        // recycled under this pidfd).
        let watched = sys::pidfd_open(reaper)
            .map_err(errno_err("watch runsc's reaper"))
            .and_then(|reaper_fd| {
                let pid = pid_pipe.read_pid().map_err(io_err("start runsc"))?;
                let runsc_fd = sys::pidfd_open(pid).map_err(errno_err("watch runsc"))?;
                Ok((reaper_fd, pid, runsc_fd))
            });
        let (reaper_fd, runsc, runsc_fd) = match watched {
            Ok(w) => w,
            Err(e) => {
                // Nothing to watch it through: kill the run now, reap the reaper by pid.
                guard.kill_all();
                let _ = nix::sys::signal::kill(reaper, nix::sys::signal::Signal::SIGKILL);
                let _ = sys::wait4(reaper);
                return Err(e);
            }
        };
        // From here on, dropping the container kills the run and reaps the reaper.
        let container = Container {
            guard: Some(guard),
            runsc: runsc_fd,
            reaper,
            reaper_fd,
        };
        // runsc has exec'd (spawn returns after the exec): confirm from the kernel that it
        // runs under its profile (issue 12), so `enforced:<profile>` is the kernel's word.
        // /proc/<pid> stays until runsc is reaped, so an unreadable label refuses too.
        if let Some(p) = &ctx.plan.apparmor_profile
            && let Err(e) = super::apparmor::confirm_current(runsc.as_raw(), p)
        {
            return Err(SandboxError::Refused(crate::reason::Refusal::new(
                crate::reason::Reason::PostureMismatch,
                format!("runsc came up with {e}; the task was not started"),
            )));
        }
        Ok((container, [stdin_w, stdout_r, stderr_r]))
    }

    /// Waits (bounded) for the reaper to finish collecting runsc's tree, killing it if it
    /// does not, and reaps it.
    fn reap_reaper(&self) -> Result<sys::Reaped, SandboxError> {
        let fd = self.reaper_fd.as_fd();
        if !wait_readable(fd, supervise::HARD_WAIT) {
            tracing::warn!("runsc's tree outlived runsc by {:?}", supervise::HARD_WAIT);
            let _ = sys::pidfd_send_signal(fd, libc::SIGKILL);
        }
        sys::wait4(self.reaper).map_err(errno_err("reap runsc"))
    }

    /// After runsc exited: kills what its sandbox may have left, waits for the reaper to
    /// collect the whole tree and reaps it; returns runsc's wait status, the tree's rusage
    /// and the guard, which still owns the cgroup.
    fn reap(mut self) -> Result<(i32, sys::Reaped, Guard), SandboxError> {
        let guard = self.guard.take().ok_or_else(|| SandboxError::Runsc {
            message: "the run's guard was already taken".into(),
        })?;
        // A runsc killed by the cgroup leaves the sandbox's processes to die with it.
        if let Some(c) = &guard.cgroup {
            c.kill_all();
        }
        let reaped = self.reap_reaper()?;
        Ok((reaped.status, reaped, guard))
    }
}

impl Supervised for Container {
    fn pidfd(&self) -> BorrowedFd<'_> {
        self.runsc.as_fd()
    }

    /// runsc forwards SIGTERM to the container's init.
    fn terminate(&self) {
        let _ = sys::pidfd_send_signal(self.runsc.as_fd(), libc::SIGTERM);
    }

    fn kill(&self) {
        if let Some(g) = &self.guard {
            g.kill_all();
        }
        let _ = sys::pidfd_send_signal(self.runsc.as_fd(), libc::SIGKILL);
    }

    fn describe(&self) -> &'static str {
        "runsc"
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.guard.is_some() {
            self.kill();
            let _ = self.reap_reaper();
        }
    }
}

/// Whether `fd` (a pidfd) turns readable within `limit`.
fn wait_readable(fd: BorrowedFd<'_>, limit: std::time::Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], ms) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Between fork and exec of runsc: fork the run's reaper (`reaper`; runsc is its child),
/// then, in runsc only (one thread: see `cgroup::JOIN_FILE_V1`), join the cgroup, die with
/// the reaper, enter the profile. Allocation-free.
fn before_exec(cmd: &mut Command, pid_w: i32, join: Vec<i32>, apparmor: Option<CString>) {
    sys::before_exec(cmd, move || {
        reaper::fork_reaper(pid_w)?;
        for fd in &join {
            sys::write_all(*fd, b"0")?;
        }
        sys::set_parent_death_signal(libc::SIGKILL)?;
        if let Some(request) = &apparmor {
            super::apparmor::exec_transition(request)?;
        }
        Ok(())
    });
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(errno_err("create a pipe"))
}
