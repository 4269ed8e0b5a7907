//! The sandbox's raw system calls: the only `unsafe` code in the crate outside wasmtime's
//! deserialization. Each wrapper is thin, allocation-free (the native backend calls several
//! of them between `clone3` and `execveat`, where the heap of a multi-threaded parent must
//! not be touched) and returns `Errno` on failure. Policy lives in the callers; nothing here
//! decides what to call or in which order.
#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::unistd::Pid;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::c_char;

pub(crate) type SysResult<T> = Result<T, Errno>;

fn check(rc: libc::c_long) -> SysResult<libc::c_long> {
    if rc < 0 { Err(Errno::last()) } else { Ok(rc) }
}

/// `struct clone_args` of `<linux/sched.h>` (version 2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A child made by [`clone_child`], seen from the parent.
#[derive(Debug)]
pub(crate) struct Cloned {
    pub pid: Pid,
    /// A pidfd for the child: signals and polling through it cannot hit a recycled pid.
    pub pidfd: OwnedFd,
}

/// Creates a child process, fork-like (copy of the address space, same stack position), in
/// the namespaces named by `flags` (`CLONE_NEW*`), with a pidfd, and (with `cgroup`, an
/// open cgroup v2 directory) born in that cgroup (`CLONE_INTO_CGROUP`, Linux 5.7+). In the
/// child, runs `entry(arg)` and `_exit`s with its return value; it never returns there.
///
/// `entry` runs in a copy of a possibly multi-threaded process: it must not allocate, lock,
/// or panic. The native backend's `init` module is written to that rule.
pub(crate) fn clone_child<T>(
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    entry: fn(&T) -> i32,
    arg: &T,
) -> SysResult<Cloned> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64 | cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size we pass; `pidfd` outlives the call.
    // With no CLONE_VM and stack 0 the child gets a private copy of this thread's stack and
    // continues here, like fork(2); it only runs `entry`, which the caller guarantees is
    // async-signal-safe, and then `_exit`s without unwinding or running destructors.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if rc == 0 {
        let code = entry(arg);
        // SAFETY: _exit is async-signal-safe and ends the child without touching the
        // parent's state (no atexit handlers, no stdio flush).
        unsafe { libc::_exit(code) }
    }
    let pid = check(rc)?;
    // SAFETY: the kernel stored a fresh pidfd owned by no one else (CLONE_PIDFD succeeded).
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Cloned {
        pid: Pid::from_raw(pid as libc::pid_t),
        pidfd,
    })
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: executes the open file itself, never a
/// path. Returns only on failure. `argv` and `envp` must be NULL-terminated arrays of
/// pointers to NUL-terminated strings that outlive the call.
pub(crate) fn execveat_fd(fd: RawFd, argv: &[*const c_char], envp: &[*const c_char]) -> Errno {
    if argv.last().is_none_or(|p| !p.is_null()) || envp.last().is_none_or(|p| !p.is_null()) {
        return Errno::EINVAL;
    }
    // SAFETY: both arrays are NULL-terminated (checked above) and their strings are owned
    // by the caller's plan, alive for the duration of the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Errno::last()
}

/// Sleeps `millis` milliseconds (raw `nanosleep`; allocation-free, usable after clone).
pub(crate) fn sleep_ms(millis: u32) {
    let ts = libc::timespec {
        tv_sec: (millis / 1000) as libc::time_t,
        tv_nsec: ((millis % 1000) as libc::c_long) * 1_000_000,
    };
    // SAFETY: a valid timespec; the remainder pointer may be null.
    unsafe {
        libc::syscall(
            libc::SYS_nanosleep,
            &ts as *const libc::timespec,
            std::ptr::null_mut::<libc::timespec>(),
        );
    }
}

/// Closes every descriptor from `first` up.
pub(crate) fn close_from(first: u32) -> SysResult<()> {
    // SAFETY: close_range only closes descriptors; callers own none above `first` that they
    // still use.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) }).map(drop)
}

/// `dup2(old, new)`; clears close-on-exec on `new`, also when `old == new`.
pub(crate) fn dup_to(old: RawFd, new: RawFd) -> SysResult<()> {
    if old == new {
        return set_cloexec(new, false);
    }
    // SAFETY: dup2 only changes the descriptor table.
    check(unsafe { libc::dup2(old, new) } as libc::c_long).map(drop)
}

/// Sets or clears `FD_CLOEXEC` on a raw descriptor.
pub(crate) fn set_cloexec(fd: RawFd, on: bool) -> SysResult<()> {
    let flag = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: fcntl(F_SETFD) only changes descriptor flags.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flag) } as libc::c_long).map(drop)
}

/// Writes all of `buf` to a raw descriptor.
pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: the pointer and length describe `buf`.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        match check(n as libc::c_long) {
            Ok(n) => buf = buf.get(n as usize..).unwrap_or_default(),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads into `buf` from a raw descriptor, retrying on EINTR; 0 means end of file.
pub(crate) fn read_some(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    loop {
        // SAFETY: the pointer and length describe `buf`.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match check(n as libc::c_long) {
            Ok(n) => return Ok(n as usize),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

fn prctl(option: libc::c_int, a2: libc::c_ulong, a3: libc::c_ulong) -> SysResult<libc::c_int> {
    // SAFETY: the prctl options used here take integer arguments only.
    let rc = unsafe { libc::prctl(option, a2, a3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    check(rc as libc::c_long).map(|r| r as libc::c_int)
}

/// Drops every capability from the bounding set (needs CAP_SETPCAP).
pub(crate) fn drop_bounding_set() -> SysResult<()> {
    for cap in 0..64 {
        match prctl(libc::PR_CAPBSET_DROP, cap, 0) {
            Ok(_) => {}
            // Past CAP_LAST_CAP of this kernel.
            Err(Errno::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Empties the ambient set.
pub(crate) fn clear_ambient() -> SysResult<()> {
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    )
    .map(drop)
}

/// Sets the securebits (`<linux/securebits.h>`).
pub(crate) fn set_securebits(bits: u64) -> SysResult<()> {
    prctl(libc::PR_SET_SECUREBITS, bits as libc::c_ulong, 0).map(drop)
}

/// Sets no_new_privs.
pub(crate) fn set_no_new_privs() -> SysResult<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map(drop)
}

// The identity changes of the native sandbox's init run in a copy of a multi-threaded
// runner (`serve` runs tasks on a thread pool). glibc's `setgroups`, `setresgid` and
// `setresuid` go through `__nptl_setxid`, which applies the change to every thread in
// glibc's thread list: in the copy that list still names the runner's other threads, and
// when one of them was being created or was exiting at the moment of `clone3`, the copy
// waits on a futex for a thread that does not exist, for ever (seen under load: a `serve`
// task refused "no answer from the sandbox within 30 s", init parked in
// `setxid_mark_thread`). The kernel's calls change only the calling thread, which in the
// copy is the only one, so the raw system calls below are both correct and safe.

/// `setgroups(0, NULL)` as the raw system call: empties the supplementary groups.
pub(crate) fn clear_groups() -> SysResult<()> {
    // SAFETY: a zero-length list with a null pointer is a valid `setgroups` argument.
    check(unsafe { libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) })
        .map(drop)
}

/// `setresgid(gid, gid, gid)` as the raw system call (this thread only; see above).
pub(crate) fn set_all_gids(gid: u32) -> SysResult<()> {
    // SAFETY: three integer arguments, no memory is passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_setresgid,
            gid as libc::c_ulong,
            gid as libc::c_ulong,
            gid as libc::c_ulong,
        )
    })
    .map(drop)
}

/// `setresuid(uid, uid, uid)` as the raw system call (this thread only; see above).
pub(crate) fn set_all_uids(uid: u32) -> SysResult<()> {
    // SAFETY: three integer arguments, no memory is passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_setresuid,
            uid as libc::c_ulong,
            uid as libc::c_ulong,
            uid as libc::c_ulong,
        )
    })
    .map(drop)
}

/// Asks for `signal` when the parent thread exits.
pub(crate) fn set_parent_death_signal(signal: libc::c_int) -> SysResult<()> {
    prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0).map(drop)
}

/// Makes the calling process a child subreaper: orphaned descendants are reparented to it
/// instead of the host's init.
pub(crate) fn set_child_subreaper() -> SysResult<()> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0).map(drop)
}

/// Ends the calling process the way a child with wait status `status` ended: `_exit` with
/// its code, or death by its signal (with core dumps off and the signal's default action
/// restored first). Never returns.
pub(crate) fn exit_like(status: libc::c_int) -> ! {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit, signal, sigprocmask and kill are async-signal-safe; the sets
        // and the limit are valid for the calls. A signal that does not kill (it cannot
        // happen for a status the kernel reported as a death by it) falls through to _exit.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
        }
        exit_now(128 + signal)
    }
    exit_now(libc::WEXITSTATUS(status))
}

/// `_exit(code)`: ends the process without unwinding, running destructors or atexit
/// handlers (the state of a forked copy of a multi-threaded process is not to be touched).
pub(crate) fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: _exit is async-signal-safe and does not return.
    unsafe { libc::_exit(code) }
}

/// The calling thread's seccomp mode (0 off, 2 filter).
pub(crate) fn seccomp_mode() -> SysResult<i32> {
    prctl(libc::PR_GET_SECCOMP, 0, 0)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Empties the effective, permitted and inheritable sets of the calling thread.
pub(crate) fn clear_capabilities() -> SysResult<()> {
    let header = CapHeader {
        // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: header and data are valid version-3 capset arguments.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) })
        .map(drop)
}

/// `open_tree(2)`.
pub(crate) fn open_tree(dirfd: RawFd, path: &CStr, flags: u32) -> SysResult<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; the returned descriptor is new and ours.
    let fd = check(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) })?;
    // SAFETY: open_tree returned a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` on `fd` itself (`AT_EMPTY_PATH`), optionally recursive.
pub(crate) fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
) -> SysResult<()> {
    let attr = MountAttr {
        attr_set,
        attr_clr,
        propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `attr` is a valid mount_attr of the size passed; the path is empty.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// `move_mount(2)` of the mount behind `from` onto `to` (relative to the working directory
/// when not absolute).
pub(crate) fn move_mount_to(from: BorrowedFd<'_>, to: &CStr) -> SysResult<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    // SAFETY: both paths are NUL-terminated; the call only changes the mount tree.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// `pidfd_open(2)`.
pub(crate) fn pidfd_open(pid: Pid) -> SysResult<OwnedFd> {
    // SAFETY: pidfd_open takes plain integers and returns a new descriptor.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0u32) })?;
    // SAFETY: the descriptor is fresh and ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(2)`.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> SysResult<()> {
    // SAFETY: no siginfo is passed; the pidfd is valid for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    })
    .map(drop)
}

/// Status and resource use of a reaped child.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reaped {
    /// The raw wait status.
    pub status: libc::c_int,
    pub user_us: u64,
    pub system_us: u64,
    pub max_rss_bytes: u64,
}

/// `wait4(pid, ..., 0)`: blocks until `pid` ends and reaps it.
pub(crate) fn wait4(pid: Pid) -> SysResult<Reaped> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zero is a valid initial value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both out-pointers are valid for the call.
        let rc = unsafe { libc::wait4(pid.as_raw(), &mut status, 0, &mut ru) };
        match check(rc as libc::c_long) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    let us = |t: libc::timeval| (t.tv_sec.max(0) as u64) * 1_000_000 + t.tv_usec.max(0) as u64;
    Ok(Reaped {
        status,
        user_us: us(ru.ru_utime),
        system_us: us(ru.ru_stime),
        max_rss_bytes: (ru.ru_maxrss.max(0) as u64) * 1024,
    })
}

/// Registers `hook` to run in the child of `cmd` between fork and exec. The hook must be
/// async-signal-safe (no allocation, no locks): it only calls the wrappers in this module.
pub(crate) fn before_exec<F>(cmd: &mut std::process::Command, hook: F)
where
    F: FnMut() -> std::io::Result<()> + Send + Sync + 'static,
{
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the callers' hooks only write to pre-opened descriptors and call prctl,
    // which are async-signal-safe; they allocate nothing.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// The Landlock ABI version the kernel implements
/// (`landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`).
pub(crate) fn landlock_abi_version() -> SysResult<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: with a NULL attribute pointer and size 0 the call only returns a number.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    })
    .map(|v| v as i32)
}

/// A plain fork through the raw system call: unlike glibc's `fork`, it runs no `atfork`
/// handlers, which could block on locks held by threads that do not exist in this copy.
/// `Ok(None)` in the child.
pub(crate) fn fork_raw() -> SysResult<Option<Pid>> {
    // SAFETY: clone with only SIGCHLD and no stack is fork(2); both sides continue here and
    // the callers only use async-signal-safe wrappers afterwards.
    let rc = check(unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    })?;
    Ok((rc != 0).then(|| Pid::from_raw(rc as libc::pid_t)))
}

/// `waitpid(-1, &status, 0)`: reaps any child; returns its pid and raw status.
pub(crate) fn wait_any() -> SysResult<(Pid, libc::c_int)> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: the status pointer is valid for the call.
        let rc = unsafe { libc::waitpid(-1, &mut status, 0) };
        match check(rc as libc::c_long) {
            Ok(pid) => return Ok((Pid::from_raw(pid as libc::pid_t), status)),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Duplicates `fd` to the lowest free number at or above `min`, close-on-exec.
pub(crate) fn dup_above(fd: RawFd, min: RawFd) -> SysResult<RawFd> {
    // SAFETY: F_DUPFD_CLOEXEC only adds a descriptor.
    check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) } as libc::c_long)
        .map(|f| f as RawFd)
}

/// Takes ownership of a raw descriptor returned by [`dup_above`].
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass descriptors they just created and own exclusively.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `struct landlock_path_beneath_attr` of `<linux/landlock.h>` (packed: 12 bytes).
#[repr(C, packed)]
struct LandlockPathBeneath {
    allowed_access: u64,
    parent_fd: i32,
}

/// `landlock_add_rule(ruleset, LANDLOCK_RULE_PATH_BENEATH, {access, parent}, 0)`: lets the
/// domain do `access` beneath the directory (or on the file) `parent` refers to. Used by
/// the native init for the one path that only exists in the child (its private `/tmp`).
pub(crate) fn landlock_allow_beneath(ruleset: RawFd, parent: RawFd, access: u64) -> SysResult<()> {
    const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
    let attr = LandlockPathBeneath {
        allowed_access: access,
        parent_fd: parent,
    };
    // SAFETY: `attr` is a valid, packed landlock_path_beneath_attr that outlives the call;
    // the call only reads it.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const LandlockPathBeneath,
            0u32,
        )
    })
    .map(drop)
}

/// `landlock_restrict_self(ruleset, 0)`: the calling thread (the native init, which has one)
/// enters the ruleset's domain for good; its children inherit it.
pub(crate) fn landlock_restrict_self(ruleset: RawFd) -> SysResult<()> {
    // SAFETY: plain integer arguments; the call only changes this thread's credentials.
    check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) }).map(drop)
}

/// True when extended attribute `name` of `path` holds exactly `want` (false when it is
/// missing or unreadable).
pub(crate) fn xattr_is(path: &std::path::Path, name: &str, want: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(path.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    let mut buf = [0u8; 16];
    // SAFETY: both strings are NUL-terminated; the buffer pointer and length describe `buf`.
    let n = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).is_ok_and(|n| buf.get(..n) == Some(want))
}
