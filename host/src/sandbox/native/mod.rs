//! The native backend, parent side. A run reads as its steps: plan everything the child
//! needs (`child`, so the child never allocates), create the run's cgroup, clone the child
//! into fresh user, mount, pid, net, ipc and uts namespaces, map its ids and confirm its
//! posture from /proc before the tool starts (`handshake`), supervise it to the end
//! (`supervise`), then reap, collect and account. The child's side, and the order of the
//! dangerous steps, is in `init`; the view it builds is planned in `mounts`.

mod child;
mod handshake;
mod init;
mod landlock;
mod mounts;

use super::cgroup::{CgroupLimits, RunCgroup};
use super::context::RunContext;
use super::error::{SandboxError, errno_err, io_err};
use super::launch::Launch;
use super::outcome::{Outcome, Posture};
use super::output::Pump;
use super::supervise::{self, Supervised};
use super::sys;
use crate::timing::StageClock;
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Runs `launch` with the native backend.
pub(crate) fn run(
    ctx: &RunContext<'_>,
    launch: Launch,
    clock: &mut StageClock,
) -> Result<Outcome, SandboxError> {
    let seccomp_extra = if ctx.plan.seccomp {
        ctx.policy.seccomp_extra(launch.executable.digest())
    } else {
        Vec::new()
    };
    let (mut init_plan, mut child_ends, parent) = child::prepare(ctx, &launch)?;
    clock.lap("plan");
    let cgroup = ctx.cgroup(CgroupLimits::native(&launch.limits))?;
    // cgroup v2: init is born in the run cgroup (clone3 CLONE_INTO_CGROUP); v1: it joins
    // by writing "0" to the files opened here (see `cgroup::JOIN_FILE_V1`).
    let v2_dir = match cgroup.as_ref().and_then(RunCgroup::v2_dir).transpose() {
        Ok(dir) => dir,
        Err(e) => {
            if let Some(cg) = cgroup {
                let _ = cg.remove();
            }
            return Err(io_err("open the run's cgroup")(e));
        }
    };
    let joins = cgroup.as_ref().filter(|_| v2_dir.is_none());
    child_ends.cgroup_join = match joins.map(open_join_files).transpose() {
        Ok(files) => files.unwrap_or_default(),
        Err(e) => {
            if let Some(cg) = cgroup {
                let _ = cg.remove();
            }
            return Err(e);
        }
    };
    init_plan.cgroup_join = child_ends
        .cgroup_join
        .iter()
        .map(|f| f.as_raw_fd())
        .collect();
    clock.lap("cgroup");
    let sandbox = Sandbox::spawn(&init_plan, child_ends, cgroup, v2_dir.as_ref())?;
    drop(v2_dir);
    clock.lap("clone");
    let (namespaces, started) = handshake::start(
        sandbox.pid,
        sandbox.pidfd.as_fd(),
        ctx.policy,
        ctx.plan.seccomp,
        &parent,
        &init_plan,
    )?;
    clock.lap("setup");
    let mut pump = Pump::new(
        parent.stdin,
        launch.stdin,
        parent.stdout,
        parent.stderr,
        launch.limits.output_bytes,
    )
    .map_err(io_err("prepare the tool's standard streams"))?;
    let ending = supervise::until_exit(&sandbox, &mut pump, started, &launch.limits)?;
    clock.lap("tool");
    let (reaped, cgroup) = sandbox.reap()?;
    let wall_ms = started.elapsed().as_millis() as u64;
    let (stdout, stderr) = supervise::collect(pump)?;
    let termination = handshake::tool_termination(&parent.sync_out);
    let usage = supervise::usage(cgroup, &reaped)?;
    clock.lap("teardown");
    Ok(Outcome {
        termination,
        timed_out: ending.timed_out(),
        stdout,
        stderr,
        wall_ms,
        cpu_ms: usage.cpu_ms,
        peak_memory_bytes: usage.peak_memory_bytes,
        posture: Posture {
            seccomp_extra,
            ..ctx.posture("native", namespaces, "none")
        },
    })
}

/// The run cgroup's join files, opened by the runner for the child (see
/// `cgroup::JOIN_FILE_V1` for why the child joins, not the parent).
fn open_join_files(cgroup: &RunCgroup) -> Result<Vec<OwnedFd>, SandboxError> {
    cgroup
        .join_files()
        .map_err(io_err("open the run's cgroup"))?
        .into_iter()
        .map(|f| child::high(f.into()))
        .collect()
}

/// The sandbox's init until it is reaped: dropping it early kills and reaps it and
/// removes its cgroup, so no error path leaves anything running.
struct Sandbox {
    pid: Pid,
    pidfd: OwnedFd,
    cgroup: Option<RunCgroup>,
    reaped: bool,
}

impl Sandbox {
    /// Clones init into its namespaces; the child's ends are closed here, on both paths.
    fn spawn(
        plan: &init::InitPlan,
        child_ends: child::ChildEnds,
        cgroup: Option<RunCgroup>,
        v2_dir: Option<&std::fs::File>,
    ) -> Result<Sandbox, SandboxError> {
        let flags = (libc::CLONE_NEWUSER
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS) as u64;
        let cloned = sys::clone_child(flags, v2_dir.map(|d| d.as_fd()), init::init, plan);
        drop(child_ends);
        match cloned {
            Ok(c) => Ok(Sandbox {
                pid: c.pid,
                pidfd: c.pidfd,
                cgroup,
                reaped: false,
            }),
            Err(e) => {
                if let Some(cg) = cgroup {
                    let _ = cg.remove();
                }
                Err(errno_err("create the sandbox process")(e))
            }
        }
    }

    /// Reaps init (which has exited) and hands over the cgroup for accounting.
    fn reap(mut self) -> Result<(sys::Reaped, Option<RunCgroup>), SandboxError> {
        let reaped = sys::wait4(self.pid).map_err(errno_err("reap the sandbox"))?;
        self.reaped = true;
        Ok((reaped, self.cgroup.take()))
    }
}

impl Supervised for Sandbox {
    fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// SIGTERM to every process of the sandbox but init (which, as pid 1, would ignore
    /// it), so the tool can clean up before the SIGKILL.
    fn terminate(&self) {
        let pids: Vec<Pid> = match &self.cgroup {
            Some(c) => c.pids().into_iter().filter(|p| *p != self.pid).collect(),
            None => std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .map(Pid::from_raw)
                .collect(),
        };
        for p in pids {
            let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM);
        }
    }

    fn kill(&self) {
        let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        if let Some(c) = &self.cgroup {
            c.kill_all();
        }
    }

    fn describe(&self) -> &'static str {
        "its init"
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = sys::wait4(self.pid);
        }
        if let Some(c) = self.cgroup.take() {
            let _ = c.remove();
        }
    }
}
