//! The parent's half of the conversation with the native sandbox's init over the two sync
//! pipes: write the child's id maps, say "set up", wait (bounded) for "ready" or the step
//! that failed, confirm the posture from /proc, say "go", wait for "executed"; and at the
//! end read the tool's wait status that init reports. The child's half is `init`.

use super::super::error::{SandboxError, errno_err, io_err};
use super::super::outcome::Termination;
use super::super::policy::SandboxPolicy;
use super::super::posture::{self, Expected};
use super::super::sys;
use super::child::ParentEnds;
use super::init::{self, InitPlan, Step};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{Pid, getegid, geteuid};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long the child may take to set up before the runner gives up on it.
const SETUP_DEADLINE: Duration = Duration::from_secs(30);

/// The namespaces the posture check must find new (kernel names).
const NAMESPACES: &[&str] = &["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"];

/// The ids the tool has as seen from the runner: a rootless runner maps its own.
fn outer_ids(policy: &SandboxPolicy) -> (u32, u32) {
    if geteuid().is_root() {
        (policy.uid, policy.gid)
    } else {
        (geteuid().as_raw(), getegid().as_raw())
    }
}

/// Writes the child's uid and gid maps.
fn map_ids(pid: Pid, policy: &SandboxPolicy) -> Result<(), SandboxError> {
    let rootless = !geteuid().is_root();
    let (outer_uid, outer_gid) = outer_ids(policy);
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
        .map_err(io_err("write the sandbox's gid map"))
}

/// Maps ids, lets the child join its cgroup and set up, confirms its posture and lets the
/// tool start. Returns the namespaces confirmed and the moment the tool was let go.
pub(crate) fn start(
    pid: Pid,
    pidfd: BorrowedFd<'_>,
    policy: &SandboxPolicy,
    seccomp: bool,
    ends: &ParentEnds,
    plan: &InitPlan,
) -> Result<(Vec<String>, Instant), SandboxError> {
    map_ids(pid, policy)?;
    sys::write_all(ends.sync_in.as_raw_fd(), &[init::MSG_SETUP])
        .map_err(errno_err("signal the sandbox"))?;
    let deadline = Instant::now() + SETUP_DEADLINE;
    let sync_out = ends.sync_out.as_fd();
    match read_message(sync_out, pidfd, deadline)? {
        Message::Ready => {}
        other => return Err(other.into_error("set up the sandbox", plan)),
    }
    let (uid, gid) = outer_ids(policy);
    let expected = Expected {
        uid,
        gid,
        seccomp: if seccomp { 2 } else { 0 },
        namespaces: NAMESPACES,
    };
    let namespaces = posture::confirm(pid, &expected).map_err(SandboxError::Refused)?;
    let started = Instant::now();
    sys::write_all(ends.sync_in.as_raw_fd(), &[init::MSG_GO])
        .map_err(errno_err("start the tool"))?;
    match read_message(sync_out, pidfd, deadline)? {
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

/// How the tool ended, from the status init reported before exiting; an init that did not
/// report was killed, and the tool with it.
pub(crate) fn tool_termination(sync_out: &OwnedFd) -> Termination {
    let mut buf = [0u8; 5];
    let mut got = 0;
    // Init has exited: whatever it wrote is in the pipe and the pipe is at end of file.
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        match sys::read_some(sync_out.as_raw_fd(), rest) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    if got == 5 && buf[0] == init::MSG_TOOL_ENDED {
        decode(i32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]))
    } else {
        Termination::Signaled(libc::SIGKILL)
    }
}

fn decode(status: i32) -> Termination {
    if libc::WIFSIGNALED(status) {
        Termination::Signaled(libc::WTERMSIG(status))
    } else {
        Termination::Exited(libc::WEXITSTATUS(status))
    }
}
