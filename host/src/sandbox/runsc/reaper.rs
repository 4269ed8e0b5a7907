//! The run's reaper: a small process between the runner and `runsc run` that reaps every
//! process of runsc's tree, so nothing a run started is left as a zombie for the host's
//! init (issue 12).
//!
//! ```text
//! runner ── fork ──> reaper (child subreaper, never execs) ── fork ──> runsc run ──> gofer, sandbox, ...
//! ```
//!
//! runsc starts helper processes (the gofer, the sandbox) that outlive the process that
//! made them; orphans go to the nearest subreaper. The runner itself is not one: in a
//! long-lived multi-threaded `serve` every run's orphans would come to the same process,
//! and a generic `waitpid(-1)` there would steal another run's exit status. The reaper is
//! per run and single-threaded: it is the child that `Command` forks, it makes itself a
//! subreaper, forks runsc (which `Command` then execs with the stdio, directory and
//! environment it set up), reports runsc's pid to the runner, closes every descriptor it
//! holds and waits for children until none is left. It then ends the way runsc ended
//! (exit code or signal), so its wait status is runsc's and its rusage covers the whole
//! tree.
//!
//! The reaper stays out of the run's cgroup (runsc joins it after the fork), so the
//! cgroup's kill takes runsc's tree and leaves the reaper to collect the bodies. It dies
//! with the runner's thread (parent death signal), and runsc dies with it.
//!
//! Everything here runs in a forked copy of a possibly multi-threaded process: only the
//! allocation-free wrappers of `sys`.
//!
//! Cost: one fork more per runsc run (runsc's own start takes far longer). The reaper
//! shares the runner's memory copy-on-write and never writes to it, but it keeps the
//! pages the runner changes or frees during the run alive until the run ends: at most
//! the runner's resident size at launch, per concurrent runsc run of a `serve`. A reaper
//! that execs a small program instead would not pin them; that belongs with a runsc warm
//! pool, where the reaper would outlive single runs.

use crate::sandbox::sys;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// In the child `Command` forked (before any other pre-exec step): becomes the reaper and
/// never returns there, or returns `Ok` in its own child, which goes on to exec runsc.
/// `pid_w` is the write end of the pipe that carries runsc's pid to the runner.
pub(super) fn fork_reaper(pid_w: RawFd) -> std::io::Result<()> {
    sys::set_parent_death_signal(libc::SIGKILL)?;
    sys::set_child_subreaper()?;
    match sys::fork_raw()? {
        None => Ok(()),
        Some(runsc) => reap(runsc, pid_w),
    }
}

fn reap(runsc: Pid, pid_w: RawFd) -> ! {
    let _ = sys::write_all(pid_w, &runsc.as_raw().to_le_bytes());
    // The tool's pipes, runsc's descriptors and `Command`'s exec-status pipe: the runner
    // must see each of them close when runsc's side does, not when the reaper ends.
    let _ = sys::close_from(0);
    // A status the kernel never reports: runsc vanished without being reaped here.
    let mut ended = 127 << 8;
    loop {
        match sys::wait_any() {
            Ok((pid, status)) if pid == runsc => ended = status,
            Ok(_) => {}      // a helper of runsc's, reparented here
            Err(_) => break, // ECHILD: every process of the tree is reaped
        }
    }
    sys::exit_like(ended)
}

/// The pipe that carries runsc's pid from the reaper to the runner (both ends close on
/// exec, so runsc does not inherit it).
pub(super) struct PidPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl PidPipe {
    pub(super) fn new() -> nix::Result<PidPipe> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        Ok(PidPipe { read, write })
    }

    /// The raw write end, for the pre-exec hook.
    pub(super) fn write_fd(&self) -> RawFd {
        self.write.as_raw_fd()
    }

    /// After `Command::spawn` returned (runsc has exec'd): runsc's pid.
    pub(super) fn read_pid(self) -> std::io::Result<Pid> {
        drop(self.write);
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < buf.len() {
            match sys::read_some(self.read.as_raw_fd(), &mut buf[got..]) {
                Ok(0) => {
                    return Err(std::io::Error::other(
                        "the run's reaper ended before it reported runsc's pid",
                    ));
                }
                Ok(n) => got += n,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Pid::from_raw(i32::from_le_bytes(buf)))
    }
}
