//! Bounded, concurrent I/O with a sandboxed process: one `poll(2)` loop writes the tool's
//! stdin and reads its stdout and stderr at the same time (so neither side can deadlock on
//! a full pipe), keeps at most `cap` bytes of each stream, counts every byte, and wakes up
//! when the process exits (its pidfd turns readable) or the deadline passes. Memory use is
//! fixed: bytes past the cap are read into one scratch buffer and dropped. This module
//! never signals or reaps anything; the backends do.

use super::outcome::Captured;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

const SCRATCH: usize = 64 * 1024;

#[derive(Debug)]
struct Stream {
    fd: Option<OwnedFd>,
    kept: Vec<u8>,
    cap: usize,
    total: u64,
}

impl Stream {
    fn new(fd: OwnedFd, cap: usize) -> io::Result<Self> {
        set_nonblocking(&fd)?;
        Ok(Self {
            fd: Some(fd),
            kept: Vec::new(),
            cap,
            total: 0,
        })
    }

    /// Reads what is available now. Returns false at end of file.
    fn read_available(&mut self, scratch: &mut [u8]) -> io::Result<()> {
        let Some(fd) = self.fd.as_ref() else {
            return Ok(());
        };
        loop {
            match nix::unistd::read(fd, scratch) {
                Ok(0) => {
                    self.fd = None;
                    return Ok(());
                }
                Ok(n) => {
                    self.total += n as u64;
                    let room = self.cap.saturating_sub(self.kept.len());
                    let take = room.min(n);
                    if let Some(bytes) = scratch.get(..take) {
                        self.kept.extend_from_slice(bytes);
                    }
                }
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn captured(self) -> Captured {
        Captured {
            truncated: self.total > self.kept.len() as u64,
            total_bytes: self.total,
            bytes: self.kept,
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Why [`Pump::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The process has exited (it may not be reaped yet).
    Exited,
    /// The deadline passed first.
    Deadline,
}

/// The parent's ends of the tool's three standard streams.
#[derive(Debug)]
pub(crate) struct Pump {
    stdin: Option<OwnedFd>,
    input: Vec<u8>,
    written: usize,
    out: Stream,
    err: Stream,
    scratch: Vec<u8>,
}

impl Pump {
    /// `cap` bytes are kept per stream.
    pub fn new(
        stdin: OwnedFd,
        input: Vec<u8>,
        stdout: OwnedFd,
        stderr: OwnedFd,
        cap: u64,
    ) -> io::Result<Self> {
        set_nonblocking(&stdin)?;
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        let mut pump = Self {
            stdin: Some(stdin),
            input,
            written: 0,
            out: Stream::new(stdout, cap)?,
            err: Stream::new(stderr, cap)?,
            scratch: vec![0; SCRATCH],
        };
        if pump.input.is_empty() {
            pump.stdin = None;
        }
        Ok(pump)
    }

    fn write_input(&mut self) -> io::Result<()> {
        let Some(fd) = self.stdin.as_ref() else {
            return Ok(());
        };
        loop {
            let rest = self.input.get(self.written..).unwrap_or_default();
            if rest.is_empty() {
                self.stdin = None;
                return Ok(());
            }
            match nix::unistd::write(fd, rest) {
                Ok(n) => self.written += n,
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EINTR) => {}
                // The tool closed its stdin: what it did not read is not our problem.
                Err(Errno::EPIPE) => {
                    self.stdin = None;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Moves bytes until the process behind `pidfd` exits or `deadline` passes.
    pub fn run(&mut self, pidfd: BorrowedFd<'_>, deadline: Instant) -> io::Result<Wake> {
        self.write_input()?;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Wake::Deadline);
            }
            let wait = deadline
                .saturating_duration_since(now)
                .as_millis()
                .min(60_000);
            let timeout = PollTimeout::try_from(wait as u64).unwrap_or(PollTimeout::MAX);
            let (exited, out_ready, err_ready, in_ready) = {
                let mut fds = Vec::with_capacity(4);
                fds.push(PollFd::new(pidfd, PollFlags::POLLIN));
                let out_i = self.out.fd.as_ref().map(|fd| {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let err_i = self.err.fd.as_ref().map(|fd| {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let in_i = self.stdin.as_ref().map(|fd| {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                    fds.len() - 1
                });
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
                let ready = |i: Option<usize>| {
                    i.and_then(|i| fds.get(i))
                        .and_then(|f| f.revents())
                        .is_some_and(|r| !r.is_empty())
                };
                (ready(Some(0)), ready(out_i), ready(err_i), ready(in_i))
            };
            if out_ready {
                self.out.read_available(&mut self.scratch)?;
            }
            if err_ready {
                self.err.read_available(&mut self.scratch)?;
            }
            if in_ready {
                self.write_input()?;
            }
            if exited {
                // Take what is already in the pipes before reporting the exit.
                self.out.read_available(&mut self.scratch)?;
                self.err.read_available(&mut self.scratch)?;
                return Ok(Wake::Exited);
            }
        }
    }

    /// After the sandbox is gone: reads until both streams reach end of file or `deadline`.
    pub fn drain(&mut self, deadline: Instant) -> io::Result<()> {
        self.stdin = None;
        while self.out.fd.is_some() || self.err.fd.is_some() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wait = deadline
                .saturating_duration_since(now)
                .as_millis()
                .min(60_000);
            let timeout = PollTimeout::try_from(wait as u64).unwrap_or(PollTimeout::MAX);
            {
                let mut fds: Vec<PollFd<'_>> = [self.out.fd.as_ref(), self.err.fd.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
                    .collect();
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.out.read_available(&mut self.scratch)?;
            self.err.read_available(&mut self.scratch)?;
        }
        Ok(())
    }

    /// The captured streams.
    pub fn finish(self) -> (Captured, Captured) {
        (self.out.captured(), self.err.captured())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn caps_each_stream_and_counts_every_byte() {
        let (in_r, in_w) = nix::unistd::pipe().unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let (err_r, err_w) = nix::unistd::pipe().unwrap();
        // A "process" that copies stdin to stdout three times and writes to stderr.
        let worker = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut input = Vec::new();
            std::fs::File::from(in_r).read_to_end(&mut input).unwrap();
            let mut out = std::fs::File::from(out_w);
            for _ in 0..3 {
                out.write_all(&input).unwrap();
            }
            std::fs::File::from(err_w).write_all(b"warn").unwrap();
        });
        let input = vec![7u8; 300_000];
        let mut pump = Pump::new(in_w, input, out_r, err_r, 100_000).unwrap();
        // No process to wait for: use an eventfd-like never-ready fd (the read end of a pipe
        // nobody writes).
        let (never, _keep) = nix::unistd::pipe().unwrap();
        let wake = pump
            .run(never.as_fd(), Instant::now() + Duration::from_millis(300))
            .unwrap();
        assert_eq!(wake, Wake::Deadline);
        worker.join().unwrap();
        pump.drain(Instant::now() + Duration::from_secs(5)).unwrap();
        let (out, err) = pump.finish();
        assert_eq!(out.total_bytes, 900_000);
        assert_eq!(out.bytes.len(), 100_000);
        assert!(out.truncated);
        assert_eq!(err.bytes, b"warn");
        assert!(!err.truncated);
    }
}
