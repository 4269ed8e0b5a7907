//! The native sandbox's first process, from `clone3` to the tool's exit. It runs in a copy
//! of the (multi-threaded) runner, so it allocates nothing, takes no locks and never
//! panics: every value it needs was prepared by the parent in an [`InitPlan`], and it only
//! calls the allocation-free wrappers of `sys` and `nix`.
//!
//! The order of the steps is the security argument; it is written here and nowhere else:
//!
//! 1. (clone3 already made the user, mount, pid, net, ipc and uts namespaces.)
//!    Wait for the parent: it writes our uid/gid maps. Then join the run's cgroup by
//!    writing "0" to the files the parent opened (we are single-threaded, so moving this
//!    thread moves the process; see `cgroup::JOIN_FILE_V1`), and close them.
//! 2. Enter a new cgroup namespace, rooted at that cgroup.
//! 3. `setsid`: a new session with no controlling terminal, so no terminal to inject into;
//!    umask 022, whatever the runner's, so the view's modes are the planned ones.
//! 4. Build the filesystem view (see `mounts`), all read-only but `/tmp`.
//! 5. `pivot_root` into it and detach the old root entirely.
//! 6. Set the hostname of the new uts namespace.
//! 7. Ask for the AppArmor exec transition through a procfs handle checked to be procfs
//!    (before no_new_privs: under no_new_privs the kernel allows only transitions to a
//!    profile that is a subset of the current confinement, so ordering it first keeps the
//!    pinned profile's rules in force whatever they are).
//!    Then Landlock (when planned): add the private `/tmp` (which exists only now) to the
//!    ruleset the parent built, and `landlock_restrict_self`. Still uid 0 of the user
//!    namespace with its capabilities, so no_new_privs is not needed yet; every later step
//!    and the tool inherit the domain. After the mounts, so the view is complete; before
//!    the descriptors are closed, which would close the ruleset.
//! 8. Resource limits (CPU, AS, NOFILE, NPROC, FSIZE, CORE=0).
//! 9. Descriptors: stdio to 0-2, the tool to 3, the two sync pipes to 4-5 (close-on-exec);
//!    every other inherited descriptor closed.
//! 10. Capabilities: lock the securebits, empty the bounding and ambient sets.
//! 11. No supplementary groups, then the unprivileged gid and uid, then empty the effective,
//!     permitted and inheritable sets.
//! 12. Parent-death signal SIGKILL (after the credential change, which resets it).
//! 13. no_new_privs.
//! 14. The seccomp filter, last: nothing after it needs a refused call.
//! 15. Report ready, and wait while the parent confirms the posture from /proc.
//! 16. Fork the tool (pid 2) and `execveat` the verified descriptor, never a path; stay as
//!     pid 1 to reap orphans and report the tool's wait status. When we exit, the kernel
//!     kills whatever is left in the pid namespace.

use super::super::seccomp::Programs;
use super::super::sys;
use super::mounts::{MountPlan, Op};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use nix::sys::stat::Mode;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd as _, AsRawFd as _, RawFd};
use std::os::raw::c_char;

/// Descriptor numbers inside the sandbox.
pub(crate) const TOOL_FD: RawFd = 3;
const SYNC_IN_FD: RawFd = 4;
const SYNC_OUT_FD: RawFd = 5;

/// Parent to child: maps written, cgroup joined: set up.
pub(crate) const MSG_SETUP: u8 = b'S';
/// Parent to child: posture confirmed: run the tool.
pub(crate) const MSG_GO: u8 = b'G';
/// Child to parent: set up, waiting for the posture check.
pub(crate) const MSG_READY: u8 = b'R';
/// Child to parent: the tool was executed.
pub(crate) const MSG_EXECUTED: u8 = b'X';
/// Child to parent: a step failed; followed by the step, a little-endian errno (i32) and
/// a little-endian detail (u16: the index of the mount operation that failed).
pub(crate) const MSG_ERROR: u8 = b'E';
/// Child to parent: the tool ended; followed by its little-endian raw wait status (i32).
pub(crate) const MSG_TOOL_ENDED: u8 = b'T';

macro_rules! steps {
    ($($variant:ident = $n:literal, $what:literal;)*) => {
        /// A step of the child's setup, reported on failure.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum Step { $($variant = $n,)* }
        impl Step {
            /// "failed to <this>".
            pub fn describe(self) -> &'static str {
                match self { $(Step::$variant => $what,)* }
            }
            pub fn from_u8(n: u8) -> Option<Step> {
                match n { $($n => Some(Step::$variant),)* _ => None }
            }
        }
    };
}

steps! {
    Wait = 1, "wait for the runner";
    CgroupNamespace = 2, "enter a new cgroup namespace";
    Session = 3, "start a new session";
    Mounts = 4, "build the read-only filesystem view";
    PivotRoot = 5, "pivot into the new root";
    Hostname = 6, "set the sandbox hostname";
    AppArmor = 7, "request the AppArmor exec transition";
    Rlimits = 8, "set the resource limits";
    Descriptors = 9, "close inherited descriptors";
    Capabilities = 10, "drop the bounding and ambient capabilities";
    Identity = 11, "switch to the unprivileged uid and gid";
    ParentDeath = 12, "arm the parent-death signal";
    NoNewPrivs = 13, "set no_new_privs";
    Seccomp = 14, "install the seccomp filter";
    Handshake = 15, "hand over to the runner";
    Fork = 16, "start the tool process";
    Exec = 17, "execute the tool";
    Cgroup = 18, "join the run's cgroup";
    Landlock = 19, "apply the Landlock ruleset";
}

/// Everything the child needs, prepared by the parent.
#[derive(Debug)]
pub(crate) struct InitPlan {
    pub mounts: MountPlan,
    /// Every descriptor below is close-on-exec and numbered 10 or above.
    /// The executable starts with `#!`: the kernel hands `/dev/fd/3` to the interpreter,
    /// so descriptor 3 must survive the exec.
    pub script: bool,
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    pub sync_in: RawFd,
    pub sync_out: RawFd,
    pub rlimits: Vec<(Resource, u64)>,
    pub hostname: &'static str,
    pub uid: u32,
    pub gid: u32,
    /// Call setgroups([]) (not allowed, and not needed, in a rootless user namespace).
    pub drop_groups: bool,
    /// `exec <profile>`, written to the AppArmor exec attribute.
    pub apparmor: Option<CString>,
    pub seccomp: Option<std::sync::Arc<Programs>>,
    /// The Landlock ruleset (descriptor 10 or above) and the rights to grant beneath `/tmp`.
    pub landlock: Option<(RawFd, u64)>,
    /// The run cgroup's join files (one per hierarchy), open for writing.
    pub cgroup_join: Vec<RawFd>,
    /// NULL-terminated pointer arrays into `strings`.
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
    /// Owns the strings `argv` and `envp` point into.
    #[allow(dead_code)]
    pub strings: Vec<CString>,
}

type StepResult<T> = Result<T, (Step, Errno, u16)>;

trait At<T> {
    fn at(self, step: Step) -> StepResult<T>;
}

impl<T> At<T> for Result<T, Errno> {
    fn at(self, step: Step) -> StepResult<T> {
        self.map_err(|e| (step, e, 0))
    }
}

fn report_error(fd: RawFd, step: Step, errno: Errno, detail: u16) {
    let e = (errno as i32).to_le_bytes();
    let d = detail.to_le_bytes();
    let _ = sys::write_all(
        fd,
        &[MSG_ERROR, step as u8, e[0], e[1], e[2], e[3], d[0], d[1]],
    );
}

fn expect(fd: RawFd, want: u8) -> Result<(), Errno> {
    let mut b = [0u8; 1];
    match sys::read_some(fd, &mut b)? {
        1 if b[0] == want => Ok(()),
        // The parent closed the pipe (it died or gave up): stop here.
        _ => Err(Errno::ECONNABORTED),
    }
}

/// The child's entry point. Returns the exit code of whichever process returns.
pub(crate) fn init(plan: &InitPlan) -> i32 {
    let mut out = plan.sync_out;
    if let Err((step, errno, detail)) = setup(plan, &mut out) {
        report_error(out, step, errno, detail);
        return 126;
    }
    supervise(plan)
}

fn setup(plan: &InitPlan, out: &mut RawFd) -> StepResult<()> {
    expect(plan.sync_in, MSG_SETUP).at(Step::Wait)?;
    for fd in &plan.cgroup_join {
        sys::write_all(*fd, b"0").at(Step::Cgroup)?;
        nix::unistd::close(*fd).at(Step::Cgroup)?;
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).at(Step::CgroupNamespace)?;
    nix::unistd::setsid().map(drop).at(Step::Session)?;
    // The runner's umask (077 under a hardened systemd unit) must not leak into the mount
    // points and files of the view: the tool could not reach its own path. 022 also
    // becomes the tool's umask, the conventional one.
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    let tool = build_view(&plan.mounts).map_err(|(i, e)| (Step::Mounts, e, i))?;
    pivot(&plan.mounts.staging).at(Step::PivotRoot)?;
    nix::unistd::sethostname(plan.hostname).at(Step::Hostname)?;
    if let Some(request) = &plan.apparmor {
        super::super::apparmor::exec_transition(request).at(Step::AppArmor)?;
    }
    if let Some((ruleset, tmp_access)) = plan.landlock {
        landlock(ruleset, tmp_access).at(Step::Landlock)?;
    }
    for (resource, limit) in &plan.rlimits {
        nix::sys::resource::setrlimit(*resource, *limit, *limit).at(Step::Rlimits)?;
    }
    descriptors(plan, tool).at(Step::Descriptors)?;
    *out = SYNC_OUT_FD;
    // Lock root's special treatment off for good, then empty the sets only CAP_SETPCAP
    // can empty; the uid change below empties the rest.
    //
    // Why `sys`'s raw prctl/capset and not the `caps` crate here (issue 12 item 5): this
    // runs in a copy of a multi-threaded runner, where an allocation can deadlock on a heap
    // lock held by a thread that does not exist in the copy. caps 0.5 allocates on these
    // paths: `caps::clear(None, CapSet::Bounding)` iterates `caps::all()`, a `HashSet`, and
    // every `CapsError` is a `format!`ed `String`, so a failing call would allocate exactly
    // when the step must report cleanly. The raw calls are three allocation-free syscalls.
    // The parent side uses `caps` where allocating is fine: the posture check names the
    // capabilities a child still holds with `caps::all()` (`posture`).
    const SECBITS: u64 = 0x01 | 0x02 | 0x08 | 0x20 | 0x40 | 0x80;
    sys::set_securebits(SECBITS).at(Step::Capabilities)?;
    sys::drop_bounding_set().at(Step::Capabilities)?;
    sys::clear_ambient().at(Step::Capabilities)?;
    // Raw calls, not glibc's: its id changes wait for the runner's other threads, which
    // do not exist in this copy (see `sys::clear_groups`).
    if plan.drop_groups {
        sys::clear_groups().at(Step::Identity)?;
    }
    sys::set_all_gids(plan.gid).at(Step::Identity)?;
    sys::set_all_uids(plan.uid).at(Step::Identity)?;
    sys::clear_capabilities().at(Step::Identity)?;
    sys::set_parent_death_signal(libc::SIGKILL).at(Step::ParentDeath)?;
    sys::set_no_new_privs().at(Step::NoNewPrivs)?;
    if let Some(programs) = &plan.seccomp {
        for p in &programs.0 {
            seccompiler::apply_filter(p).map_err(|_| (Step::Seccomp, Errno::last(), 0))?;
        }
    }
    sys::write_all(SYNC_OUT_FD, &[MSG_READY]).at(Step::Handshake)?;
    expect(SYNC_IN_FD, MSG_GO).at(Step::Handshake)
}

fn landlock(ruleset: RawFd, tmp_access: u64) -> Result<(), Errno> {
    let tmp = nix::fcntl::open(
        c"/tmp",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    sys::landlock_allow_beneath(ruleset, tmp.as_raw_fd(), tmp_access)?;
    drop(tmp);
    sys::landlock_restrict_self(ruleset)?;
    nix::unistd::close(ruleset)
}

fn build_view(plan: &MountPlan) -> Result<RawFd, (u16, Errno)> {
    let mut tool: RawFd = -1;
    for (i, op) in plan.ops.iter().enumerate() {
        tool = mount_op(op, tool).map_err(|e| (i as u16, e))?;
    }
    if tool < 0 {
        return Err((u16::MAX, Errno::EBADF));
    }
    Ok(tool)
}

/// Performs one operation; returns the tool's descriptor once it is attached.
fn mount_op(op: &Op, mut tool: RawFd) -> Result<RawFd, Errno> {
    const OPEN_TREE_CLONE: u32 = 1;
    const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
    const AT_RECURSIVE: u32 = libc::AT_RECURSIVE as u32;
    let none: Option<&CStr> = None;
    {
        match op {
            Op::MakePrivate => nix::mount::mount(
                none,
                c"/",
                none,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                none,
            )?,
            Op::CloneReadOnly {
                source,
                target,
                attr,
            } => {
                let tree = sys::open_tree(
                    libc::AT_FDCWD,
                    source,
                    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
                )?;
                sys::mount_setattr(tree.as_fd(), true, *attr, 0, libc::MS_PRIVATE)?;
                sys::move_mount_to(tree.as_fd(), target)?;
            }
            Op::Mount {
                fstype,
                target,
                flags,
                data,
            } => nix::mount::mount(
                Some(fstype.as_c_str()),
                target.as_c_str(),
                Some(fstype.as_c_str()),
                *flags,
                Some(data.as_c_str()),
            )?,
            Op::Bind {
                source,
                target,
                attr,
                optional,
            } => {
                let tree = match sys::open_tree(
                    libc::AT_FDCWD,
                    source,
                    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
                ) {
                    Err(Errno::ENOENT) if *optional => return Ok(tool),
                    r => r?,
                };
                sys::mount_setattr(tree.as_fd(), false, *attr, 0, 0)?;
                match sys::move_mount_to(tree.as_fd(), target) {
                    Err(Errno::ENOENT) if *optional => return Ok(tool),
                    r => r?,
                }
            }
            Op::Mkdir { path } => {
                nix::unistd::mkdir(path.as_c_str(), Mode::from_bits_truncate(0o755))?
            }
            Op::Touch { path } => {
                let fd = nix::fcntl::open(
                    path.as_c_str(),
                    OFlag::O_CREAT
                        | OFlag::O_WRONLY
                        | OFlag::O_CLOEXEC
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_EXCL,
                    Mode::from_bits_truncate(0o444),
                )?;
                drop(fd);
            }
            Op::Symlink { target, link } => {
                nix::unistd::symlinkat(target.as_c_str(), nix::fcntl::AT_FDCWD, link.as_c_str())?
            }
            Op::Remount { target, attr } => {
                let tree = sys::open_tree(libc::AT_FDCWD, target, OPEN_TREE_CLOEXEC)?;
                sys::mount_setattr(tree.as_fd(), false, *attr, 0, 0)?;
            }
            Op::AttachTool {
                source,
                dev,
                ino,
                target,
                attr,
            } => {
                const AT_SYMLINK_NOFOLLOW: u32 = libc::AT_SYMLINK_NOFOLLOW as u32;
                let file = sys::open_tree(
                    libc::AT_FDCWD,
                    source,
                    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW,
                )?;
                let st = nix::sys::stat::fstat(&file)?;
                if st.st_dev as u64 != *dev || st.st_ino as u64 != *ino {
                    return Err(Errno::ESTALE);
                }
                sys::mount_setattr(file.as_fd(), false, *attr, 0, 0)?;
                sys::move_mount_to(file.as_fd(), target)?;
                tool = sys::dup_above(file.as_raw_fd(), 10)?;
            }
        }
    }
    Ok(tool)
}

fn pivot(staging: &CStr) -> Result<(), Errno> {
    nix::unistd::chdir(staging)?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then
    // drops the old root (and with it every host mount) from this namespace.
    nix::unistd::pivot_root(c".", c".")?;
    nix::mount::umount2(c".", MntFlags::MNT_DETACH)?;
    nix::unistd::chdir(c"/")
}

fn descriptors(plan: &InitPlan, tool: RawFd) -> Result<(), Errno> {
    // Every source is 10 or above, so no move overwrites a source not yet moved.
    sys::dup_to(plan.stdin, 0)?;
    sys::dup_to(plan.stdout, 1)?;
    sys::dup_to(plan.stderr, 2)?;
    sys::dup_to(tool, TOOL_FD)?;
    sys::dup_to(plan.sync_in, SYNC_IN_FD)?;
    sys::dup_to(plan.sync_out, SYNC_OUT_FD)?;
    sys::set_cloexec(TOOL_FD, !plan.script)?;
    sys::set_cloexec(SYNC_IN_FD, true)?;
    sys::set_cloexec(SYNC_OUT_FD, true)?;
    sys::close_from(6)
}

/// Pid 1: starts the tool, reaps everything, reports the tool's end.
fn supervise(plan: &InitPlan) -> i32 {
    let (status_r, status_w) = match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            report_error(SYNC_OUT_FD, Step::Fork, e, 0);
            return 126;
        }
    };
    let tool = match sys::fork_raw() {
        Err(e) => {
            report_error(SYNC_OUT_FD, Step::Fork, e, 0);
            return 126;
        }
        Ok(None) => {
            drop(status_r);
            let mut e = sys::execveat_fd(TOOL_FD, &plan.argv, &plan.envp);
            // ETXTBSY: in a multi-threaded runner (`serve`), a sandbox being cloned for
            // another task at the moment this task's private copy was still open for
            // writing holds a copy of that descriptor until its own setup closes it (a
            // few milliseconds), and the kernel refuses to execute a file open for
            // writing. The bytes are sealed and verified; only the stray descriptor has
            // to go away. Bounded: 100 tries, 5 ms apart.
            let mut tries = 0;
            while e == Errno::ETXTBSY && tries < 100 {
                sys::sleep_ms(5);
                e = sys::execveat_fd(TOOL_FD, &plan.argv, &plan.envp);
                tries += 1;
            }
            let _ = sys::write_all(status_w.as_raw_fd(), &(e as i32).to_le_bytes());
            return 127;
        }
        Ok(Some(pid)) => pid,
    };
    drop(status_w);
    let mut buf = [0u8; 4];
    match sys::read_some(status_r.as_raw_fd(), &mut buf) {
        Ok(0) => {
            let _ = sys::write_all(SYNC_OUT_FD, &[MSG_EXECUTED]);
        }
        Ok(_) => {
            report_error(
                SYNC_OUT_FD,
                Step::Exec,
                Errno::from_raw(i32::from_le_bytes(buf)),
                0,
            );
            let _ = sys::wait_any();
            return 126;
        }
        Err(e) => {
            report_error(SYNC_OUT_FD, Step::Exec, e, 0);
            return 126;
        }
    }
    drop(status_r);
    loop {
        match sys::wait_any() {
            Ok((pid, status)) if pid == tool => {
                let s = status.to_le_bytes();
                let _ = sys::write_all(SYNC_OUT_FD, &[MSG_TOOL_ENDED, s[0], s[1], s[2], s[3]]);
                return 0;
            }
            // An orphan reparented to us.
            Ok(_) => {}
            Err(_) => return 126,
        }
    }
}
