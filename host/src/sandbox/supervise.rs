//! Supervision of one running sandbox, the same for both backends: pump the tool's stdio
//! while waiting for the sandbox's top process (native init, or `runsc`) to exit; at the
//! wall-clock deadline ask the tool to stop (SIGTERM), wait the grace period, kill
//! everything (SIGKILL), and wait a bounded time more; then drain what the pipes still
//! hold, and read the run cgroup's figures before removing it. What "ask the tool to stop"
//! and "kill everything" mean is the backend's (see [`Supervised`]); this module never
//! picks a signal target itself, and never reaps: the backend reaps its own child.

use super::cgroup::RunCgroup;
use super::error::{SandboxError, io_err};
use super::outcome::Captured;
use super::output::{Pump, Wake};
use super::policy::RunLimits;
use super::sys::Reaped;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// How long a sandbox may survive SIGKILL before the runner gives up on it (it cannot,
/// short of a kernel bug: this only bounds the wait).
pub(crate) const HARD_WAIT: Duration = Duration::from_secs(10);
/// How long output may keep arriving after the sandbox is gone (every writer is dead;
/// this only bounds a kernel surprise).
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// A running sandbox, as the supervisor sees it.
pub(crate) trait Supervised {
    /// Turns readable when the sandbox's top process has exited.
    fn pidfd(&self) -> BorrowedFd<'_>;
    /// Asks the tool to stop: SIGTERM to the tool, so it can clean up.
    fn terminate(&self);
    /// Kills every process of the run.
    fn kill(&self);
    /// The top process, for the error when it survives SIGKILL ("its init", "runsc").
    fn describe(&self) -> &'static str;
}

/// How the wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The sandbox exited before the deadline.
    Exited,
    /// The deadline passed: the tool was sent SIGTERM and the sandbox ended within the
    /// grace period (`killed: false`), or it had to be killed (`killed: true`).
    TimedOut { killed: bool },
}

impl Ending {
    pub(crate) fn timed_out(self) -> bool {
        matches!(self, Ending::TimedOut { .. })
    }
}

fn wait(
    pump: &mut Pump,
    target: &impl Supervised,
    deadline: Instant,
) -> Result<Wake, SandboxError> {
    pump.run(target.pidfd(), deadline)
        .map_err(io_err("relay the tool's output"))
}

/// Moves the tool's stdio until the sandbox exits, enforcing `limits.timeout_ms` from
/// `started` with SIGTERM, `limits.kill_grace_ms`, then SIGKILL.
pub(crate) fn until_exit(
    target: &impl Supervised,
    pump: &mut Pump,
    started: Instant,
    limits: &RunLimits,
) -> Result<Ending, SandboxError> {
    let deadline = started + Duration::from_millis(limits.timeout_ms);
    if wait(pump, target, deadline)? == Wake::Exited {
        return Ok(Ending::Exited);
    }
    target.terminate();
    let grace = Instant::now() + Duration::from_millis(limits.kill_grace_ms);
    if wait(pump, target, grace)? == Wake::Exited {
        return Ok(Ending::TimedOut { killed: false });
    }
    target.kill();
    if wait(pump, target, Instant::now() + HARD_WAIT)? == Wake::Exited {
        return Ok(Ending::TimedOut { killed: true });
    }
    Err(SandboxError::Io {
        what: "kill the sandbox".into(),
        source: io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{} survived SIGKILL for {} s",
                target.describe(),
                HARD_WAIT.as_secs()
            ),
        ),
    })
}

/// After the sandbox is gone and reaped: what is left in the pipes, then the two streams.
pub(crate) fn collect(mut pump: Pump) -> Result<(Captured, Captured), SandboxError> {
    pump.drain(Instant::now() + DRAIN_DEADLINE)
        .map_err(io_err("drain the tool's output"))?;
    Ok(pump.finish())
}

/// CPU time and peak memory of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub cpu_ms: u64,
    pub peak_memory_bytes: u64,
}

/// The run cgroup's figures where it has them, else the reaped top process's rusage;
/// then the cgroup is removed (killing anything left in it).
pub(crate) fn usage(cgroup: Option<RunCgroup>, reaped: &Reaped) -> Result<Usage, SandboxError> {
    let (cpu_ns, peak) = match &cgroup {
        Some(c) => (c.cpu_ns(), c.peak_memory()),
        None => (None, None),
    };
    if let Some(c) = cgroup {
        c.remove().map_err(io_err("remove the run's cgroup"))?;
    }
    Ok(Usage {
        cpu_ms: cpu_ns.map_or((reaped.user_us + reaped.system_us) / 1000, |ns| {
            ns / 1_000_000
        }),
        peak_memory_bytes: peak.unwrap_or(reaped.max_rss_bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::os::fd::{AsFd, OwnedFd};

    /// A stand-in for a sandbox: its "pidfd" is a pipe that turns readable when the
    /// test decides the process exited (after SIGTERM, after SIGKILL, or never).
    struct Fake {
        exit_r: OwnedFd,
        exit_w: Cell<Option<OwnedFd>>,
        exits_on: &'static str,
        log: std::cell::RefCell<Vec<&'static str>>,
    }

    impl Fake {
        fn new(exits_on: &'static str) -> Fake {
            let (r, w) = nix::unistd::pipe().unwrap();
            Fake {
                exit_r: r,
                exit_w: Cell::new(Some(w)),
                exits_on,
                log: Default::default(),
            }
        }
        fn event(&self, what: &'static str) {
            self.log.borrow_mut().push(what);
            if what == self.exits_on {
                // Closing the write end makes the read end readable (end of file).
                drop(self.exit_w.take());
            }
        }
    }

    impl Supervised for Fake {
        fn pidfd(&self) -> BorrowedFd<'_> {
            self.exit_r.as_fd()
        }
        fn terminate(&self) {
            self.event("term");
        }
        fn kill(&self) {
            self.event("kill");
        }
        fn describe(&self) -> &'static str {
            "the fake"
        }
    }

    fn pump() -> (Pump, OwnedFd, OwnedFd) {
        let (in_r, in_w) = nix::unistd::pipe().unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let (err_r, err_w) = nix::unistd::pipe().unwrap();
        drop(in_r);
        (
            Pump::new(in_w, Vec::new(), out_r, err_r, 16).unwrap(),
            out_w,
            err_w,
        )
    }

    fn limits() -> RunLimits {
        RunLimits {
            timeout_ms: 20,
            kill_grace_ms: 20,
            ..RunLimits::default()
        }
    }

    #[test]
    fn sigterm_comes_first_and_sigkill_only_after_the_grace() {
        let fake = Fake::new("term");
        let (mut p, _o, _e) = pump();
        let ending = until_exit(&fake, &mut p, Instant::now(), &limits()).unwrap();
        assert_eq!(ending, Ending::TimedOut { killed: false });
        assert_eq!(*fake.log.borrow(), ["term"]);

        let fake = Fake::new("kill");
        let (mut p, _o, _e) = pump();
        let ending = until_exit(&fake, &mut p, Instant::now(), &limits()).unwrap();
        assert_eq!(ending, Ending::TimedOut { killed: true });
        assert_eq!(*fake.log.borrow(), ["term", "kill"]);
    }

    #[test]
    fn an_exit_before_the_deadline_sends_nothing() {
        let fake = Fake::new("none");
        drop(fake.exit_w.take());
        let (mut p, _o, _e) = pump();
        let ending = until_exit(&fake, &mut p, Instant::now(), &limits()).unwrap();
        assert_eq!(ending, Ending::Exited);
        assert!(fake.log.borrow().is_empty());
    }
}
