//! The native backend, parent side: prepares everything the child needs (so the child
//! never allocates), including the run's cgroup files it joins through, clones it into
//! fresh user, mount, pid, net, ipc and uts namespaces, writes its id maps, confirms its
//! posture from /proc before letting the tool start, then feeds and drains its stdio until
//! it ends or times out, and kills and reaps everything. The child's side, and the order of
//! the dangerous steps, is in `init`.

mod init;
pub(crate) mod mounts;

use super::cgroup::{CgroupLimits, Layout, RunCgroup};
use super::outcome::{Outcome, Posture, Termination};
use super::output::{Pump, Wake};
use super::plan::Plan;
use super::policy::SandboxPolicy;
use super::posture::{self, Expected};
use super::state::Run;
use super::{Launch, SandboxError, sys};
use init::{InitPlan, Step};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::resource::Resource;
use nix::unistd::{Pid, getegid, geteuid};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::time::{Duration, Instant};

/// How long the child may take to set up before the runner gives up on it.
const SETUP_DEADLINE: Duration = Duration::from_secs(30);
/// How long output may keep arriving after the sandbox is gone (it cannot: every writer
/// is dead; this only bounds a kernel surprise).
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

const NAMESPACES: &[&str] = &["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"];

fn io_err(what: &str) -> impl FnOnce(io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        what: what.to_owned(),
        source,
    }
}

fn errno_err(what: &str) -> impl FnOnce(Errno) -> SandboxError + '_ {
    move |e| SandboxError::Io {
        what: what.to_owned(),
        source: e.into(),
    }
}

/// A pipe whose child end is moved to descriptor 10 or above (so `init` can move it to its
/// final number without overwriting another source).
fn pipe_high() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(errno_err("create a pipe"))?;
    let hi = |fd: OwnedFd| {
        sys::dup_above(fd.as_raw_fd(), 10)
            .map(sys::owned)
            .map_err(errno_err("move a pipe descriptor"))
    };
    Ok((hi(r)?, hi(w)?))
}

fn cstrings<I: IntoIterator<Item = String>>(
    items: I,
    what: &str,
) -> Result<Vec<CString>, SandboxError> {
    items
        .into_iter()
        .map(|s| {
            CString::new(s).map_err(|_| SandboxError::InvalidLaunch {
                message: format!("{what} contains a NUL byte"),
            })
        })
        .collect()
}

/// Runs `launch` under `plan` with the native backend.
pub(crate) fn run(
    policy: &SandboxPolicy,
    plan: &Plan,
    launch: Launch,
    run: &Run,
    cgroups: Option<&Layout>,
    state_dir: &std::path::Path,
    clock: &mut crate::timing::StageClock,
) -> Result<Outcome, SandboxError> {
    let limits = launch.limits.clone();
    let rootless = !geteuid().is_root();

    // Everything the child will touch, prepared now.
    let staging = super::state::sandbox_dir(state_dir).join("newroot");
    super::state::private_dir(&staging).map_err(io_err("prepare the staging mount point"))?;
    let masks = mounts::resolve_masks(&policy.rootfs, &policy.all_masked_paths());
    let meta = launch
        .executable
        .file
        .metadata()
        .map_err(io_err("inspect the executable"))?;
    let mount_plan = mounts::plan(
        &policy.rootfs,
        &staging,
        (launch.executable.path(), meta.dev(), meta.ino()),
        &masks,
        policy.tmp_bytes,
        policy.uid,
        policy.gid,
    )?;

    let mut head = [0u8; 2];
    let script = launch
        .executable
        .file
        .read_at(&mut head, 0)
        .is_ok_and(|n| n == 2 && head == *b"#!");

    let mut strings = cstrings(
        std::iter::once(mounts::TOOL_PATH.to_owned()).chain(launch.args.iter().cloned()),
        "an argument",
    )?;
    let argc = strings.len();
    strings.extend(cstrings(
        launch.env.iter().map(|(k, v)| format!("{k}={v}")),
        "an environment variable",
    )?);
    let ptrs = |s: &[CString]| {
        s.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let (argv, envp) = (ptrs(&strings[..argc]), ptrs(&strings[argc..]));

    let (stdin_r, stdin_w) = pipe_high()?;
    let (stdout_r, stdout_w) = pipe_high()?;
    let (stderr_r, stderr_w) = pipe_high()?;
    let (sync_in_r, sync_in_w) = pipe_high()?;
    let (sync_out_r, sync_out_w) = pipe_high()?;

    let processes = limits.max_processes.saturating_add(1); // + init
    let mut init_plan = InitPlan {
        mounts: mount_plan,
        script,
        stdin: stdin_r.as_raw_fd(),
        stdout: stdout_w.as_raw_fd(),
        stderr: stderr_w.as_raw_fd(),
        sync_in: sync_in_r.as_raw_fd(),
        sync_out: sync_out_w.as_raw_fd(),
        rlimits: vec![
            (Resource::RLIMIT_CPU, limits.cpu_seconds()),
            (Resource::RLIMIT_AS, limits.address_space_bytes),
            (Resource::RLIMIT_NOFILE, limits.open_files),
            (Resource::RLIMIT_NPROC, processes),
            (Resource::RLIMIT_FSIZE, limits.file_size_bytes),
            (Resource::RLIMIT_CORE, 0),
        ],
        hostname: "sandbox",
        uid: policy.uid,
        gid: policy.gid,
        drop_groups: !rootless,
        apparmor: match &plan.apparmor_profile {
            Some(p) => Some(cstrings([format!("exec {p}")], "the AppArmor profile")?.remove(0)),
            None => None,
        },
        seccomp: if plan.seccomp {
            Some(super::seccomp::programs().map_err(|e| SandboxError::Io {
                what: "compile the seccomp filter".into(),
                source: io::Error::other(e),
            })?)
        } else {
            None
        },
        cgroup_join: Vec::new(),
        argv,
        envp,
        strings,
    };

    clock.lap("plan");
    let cgroup = match cgroups {
        Some(layout) => Some(
            RunCgroup::create(
                layout,
                &policy.cgroup_parent,
                &run.id,
                CgroupLimits {
                    memory_bytes: limits.memory_bytes,
                    pids: processes,
                },
            )
            .map_err(io_err("create the run's cgroup"))?,
        ),
        None => None,
    };

    // The child joins the cgroup itself (see `cgroup::JOIN_FILE_V1` for why not the
    // parent), through descriptors numbered 10 or above like every other it inherits.
    let join_files = match cgroup.as_ref().map(open_join_files).transpose() {
        Ok(files) => files.unwrap_or_default(),
        Err(e) => {
            if let Some(cg) = cgroup {
                let _ = cg.remove();
            }
            return Err(e);
        }
    };
    init_plan.cgroup_join = join_files.iter().map(AsRawFd::as_raw_fd).collect();

    clock.lap("cgroup");
    let flags = (libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS) as u64;
    let child = sys::clone_child(flags, init::init, &init_plan);
    // The child's ends belong to the child now.
    drop((
        stdin_r, stdout_w, stderr_w, sync_in_r, sync_out_w, join_files,
    ));
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            if let Some(cg) = cgroup {
                let _ = cg.remove();
            }
            return Err(errno_err("create the sandbox process")(e));
        }
    };
    let mut guard = Guard {
        pid: child.pid,
        pidfd: child.pidfd,
        cgroup,
        reaped: false,
    };

    let expected = Expected {
        uid: if rootless {
            geteuid().as_raw()
        } else {
            policy.uid
        },
        gid: if rootless {
            getegid().as_raw()
        } else {
            policy.gid
        },
        seccomp: if plan.seccomp { 2 } else { 0 },
        namespaces: NAMESPACES,
    };
    clock.lap("clone");
    let (namespaces, started) = start(
        &mut guard,
        policy,
        rootless,
        &sync_in_w,
        &sync_out_r,
        &expected,
        &init_plan,
    )?;

    clock.lap("setup");
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
    let pidfd = guard.pidfd.as_fd();
    if pump
        .run(pidfd, deadline)
        .map_err(io_err("relay the tool's output"))?
        == Wake::Deadline
    {
        timed_out = true;
        guard.terminate_tool();
        let grace = Instant::now() + Duration::from_millis(limits.kill_grace_ms);
        if pump
            .run(guard.pidfd.as_fd(), grace)
            .map_err(io_err("relay the tool's output"))?
            == Wake::Deadline
        {
            guard.kill();
            let hard = Instant::now() + Duration::from_secs(10);
            if pump
                .run(guard.pidfd.as_fd(), hard)
                .map_err(io_err("relay the tool's output"))?
                == Wake::Deadline
            {
                return Err(SandboxError::Io {
                    what: "kill the sandbox".into(),
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        "its init survived SIGKILL for 10 s",
                    ),
                });
            }
        }
    }
    clock.lap("tool");
    let reaped = sys::wait4(guard.pid).map_err(errno_err("reap the sandbox"))?;
    guard.reaped = true;
    let wall_ms = started.elapsed().as_millis() as u64;
    pump.drain(Instant::now() + DRAIN_DEADLINE)
        .map_err(io_err("drain the tool's output"))?;
    let (stdout, stderr) = pump.finish();

    let termination = match read_tool_status(&sync_out_r) {
        Some(status) => decode(status),
        // Init did not report: it was killed, and the tool with it.
        None => Termination::Signaled(libc::SIGKILL),
    };
    let cg = guard.cgroup.take();
    let (cpu_ms, peak) = match &cg {
        Some(c) => (c.cpu_ns().map(|ns| ns / 1_000_000), c.peak_memory()),
        None => (None, None),
    };
    if let Some(c) = cg {
        c.remove().map_err(io_err("remove the run's cgroup"))?;
    }
    clock.lap("teardown");
    Ok(Outcome {
        termination,
        timed_out,
        stdout,
        stderr,
        wall_ms,
        cpu_ms: cpu_ms.unwrap_or((reaped.user_us + reaped.system_us) / 1000),
        peak_memory_bytes: peak.unwrap_or(reaped.max_rss_bytes),
        posture: Posture {
            backend: "native".into(),
            namespaces,
            capabilities: Vec::new(),
            seccomp: plan.seccomp_posture().into(),
            apparmor: plan.apparmor_posture(),
            network: "none".into(),
            uid: policy.uid,
            gid: policy.gid,
            no_new_privs: true,
            read_only_root: true,
        },
    })
}

/// The run cgroup's join files, opened by the runner for the child.
fn open_join_files(cgroup: &RunCgroup) -> Result<Vec<OwnedFd>, SandboxError> {
    cgroup
        .join_files()
        .map_err(io_err("open the run's cgroup"))?
        .into_iter()
        .map(|f| {
            sys::dup_above(f.as_raw_fd(), 10)
                .map(sys::owned)
                .map_err(errno_err("move a cgroup descriptor"))
        })
        .collect()
}

/// Owns the sandbox's init until it is reaped: dropping the guard early kills and reaps
/// it and removes its cgroup, so no error path leaves anything running.
struct Guard {
    pid: Pid,
    pidfd: OwnedFd,
    cgroup: Option<RunCgroup>,
    reaped: bool,
}

impl Guard {
    fn kill(&self) {
        let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        if let Some(c) = &self.cgroup {
            c.kill_all();
        }
    }

    /// SIGTERM to every process of the sandbox but init (which, as pid 1, would ignore
    /// it), so the tool can clean up before the SIGKILL.
    fn terminate_tool(&self) {
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
}

impl Drop for Guard {
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

/// Maps ids, lets the child join its cgroup and set up, confirms its posture and lets the
/// tool start. Returns the namespaces confirmed.
fn start(
    guard: &mut Guard,
    policy: &SandboxPolicy,
    rootless: bool,
    sync_in: &OwnedFd,
    sync_out: &OwnedFd,
    expected: &Expected,
    plan: &InitPlan,
) -> Result<(Vec<String>, Instant), SandboxError> {
    let pid = guard.pid;
    let (outer_uid, outer_gid) = if rootless {
        (geteuid().as_raw(), getegid().as_raw())
    } else {
        (policy.uid, policy.gid)
    };
    if rootless {
        // Required before an unprivileged gid_map; it also stops the tool from ever
        // dropping a group to get around a "deny" ACL.
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
            .map_err(io_err("deny setgroups in the sandbox"))?;
    }
    // Rootless: the runner's own ids become the tool's. Root: the tool's ids map to
    // themselves, and root to root so that the setup steps (still uid 0 until step 11)
    // can create the mount points of the sandbox's own /dev and /run; the tool can never
    // get back to uid 0 (no capabilities, no_new_privs, SECBIT_NOROOT locked).
    let map = |inner: u32, outer: u32| {
        if rootless {
            format!("{inner} {outer} 1\n")
        } else {
            format!("0 0 1\n{inner} {outer} 1\n")
        }
    };
    std::fs::write(format!("/proc/{pid}/uid_map"), map(policy.uid, outer_uid))
        .map_err(io_err("write the sandbox's uid map"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), map(policy.gid, outer_gid))
        .map_err(io_err("write the sandbox's gid map"))?;
    sys::write_all(sync_in.as_raw_fd(), &[init::MSG_SETUP])
        .map_err(errno_err("signal the sandbox"))?;
    let deadline = Instant::now() + SETUP_DEADLINE;
    match read_message(sync_out.as_fd(), guard.pidfd.as_fd(), deadline)? {
        Message::Ready => {}
        other => return Err(other.into_error("set up the sandbox", plan)),
    }
    let namespaces = posture::confirm(pid, expected).map_err(SandboxError::Refused)?;
    let started = Instant::now();
    sys::write_all(sync_in.as_raw_fd(), &[init::MSG_GO]).map_err(errno_err("start the tool"))?;
    match read_message(sync_out.as_fd(), guard.pidfd.as_fd(), deadline)? {
        Message::Executed => Ok((namespaces, started)),
        other => Err(other.into_error("start the tool", plan)),
    }
}

#[derive(Debug)]
enum Message {
    Ready,
    Executed,
    Failed(Step, Errno, u16),
    Gone,
}

impl Message {
    fn into_error(self, what: &str, plan: &InitPlan) -> SandboxError {
        match self {
            Message::Failed(Step::Exec, errno, _) => SandboxError::Exec { errno },
            Message::Failed(Step::Mounts, errno, i) => SandboxError::Child {
                step: format!(
                    "{} ({})",
                    Step::Mounts.describe(),
                    plan.mounts
                        .ops
                        .get(i as usize)
                        .map_or_else(|| "no tool attached".into(), |o| o.describe())
                ),
                errno,
            },
            Message::Failed(step, errno, _) => SandboxError::Child {
                step: step.describe().to_owned(),
                errno,
            },
            _ => SandboxError::Io {
                what: what.to_owned(),
                source: io::Error::other("the sandbox process ended before reporting"),
            },
        }
    }
}

fn read_exact_deadline(
    fd: BorrowedFd<'_>,
    pidfd: BorrowedFd<'_>,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<bool, SandboxError> {
    let mut got = 0;
    while got < buf.len() {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Err(SandboxError::Io {
                what: "set up the sandbox".into(),
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no answer from the sandbox within 30 s",
                ),
            });
        }
        let timeout =
            PollTimeout::try_from(wait.as_millis().min(60_000) as u64).unwrap_or(PollTimeout::MAX);
        let mut fds = [
            PollFd::new(fd, PollFlags::POLLIN),
            PollFd::new(pidfd, PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(errno_err("wait for the sandbox")(e)),
        }
        let readable = fds[0].revents().is_some_and(|r| !r.is_empty());
        let exited = fds[1].revents().is_some_and(|r| !r.is_empty());
        if readable || exited {
            let rest = buf.get_mut(got..).unwrap_or_default();
            match sys::read_some(fd.as_raw_fd(), rest) {
                Ok(0) => return Ok(false),
                Ok(n) => got += n,
                Err(e) => return Err(errno_err("read from the sandbox")(e)),
            }
        }
    }
    Ok(true)
}

fn read_message(
    fd: BorrowedFd<'_>,
    pidfd: BorrowedFd<'_>,
    deadline: Instant,
) -> Result<Message, SandboxError> {
    let mut tag = [0u8; 1];
    if !read_exact_deadline(fd, pidfd, &mut tag, deadline)? {
        return Ok(Message::Gone);
    }
    match tag[0] {
        init::MSG_READY => Ok(Message::Ready),
        init::MSG_EXECUTED => Ok(Message::Executed),
        init::MSG_ERROR => {
            let mut rest = [0u8; 7];
            if !read_exact_deadline(fd, pidfd, &mut rest, deadline)? {
                return Ok(Message::Gone);
            }
            let step = Step::from_u8(rest[0]).unwrap_or(Step::Handshake);
            let errno = Errno::from_raw(i32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]));
            Ok(Message::Failed(
                step,
                errno,
                u16::from_le_bytes([rest[5], rest[6]]),
            ))
        }
        _ => Ok(Message::Gone),
    }
}

/// The tool's wait status, if init reported one before exiting.
fn read_tool_status(sync_out: &OwnedFd) -> Option<i32> {
    let mut buf = [0u8; 5];
    let mut got = 0;
    // Init has exited: whatever it wrote is in the pipe and the pipe is at end of file.
    while got < buf.len() {
        match sys::read_some(sync_out.as_raw_fd(), buf.get_mut(got..)?) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    (got == 5 && buf[0] == init::MSG_TOOL_ENDED)
        .then(|| i32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]))
}

pub(crate) fn decode(status: i32) -> Termination {
    if libc::WIFSIGNALED(status) {
        Termination::Signaled(libc::WTERMSIG(status))
    } else {
        Termination::Exited(libc::WEXITSTATUS(status))
    }
}
