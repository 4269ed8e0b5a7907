//! The native backend's preparation, in the parent: everything the child will touch,
//! built before `clone3` so the child never allocates. The filesystem view's mount plan,
//! argv and envp as C strings, the five pipes (stdio and the two sync pipes, each child
//! end numbered 10 or above), the rlimits, the AppArmor request and the compiled seccomp
//! filter, gathered into an [`InitPlan`]; the parent keeps the other ends. It starts
//! nothing.

use super::super::context::RunContext;
use super::super::error::{SandboxError, errno_err, io_err};
use super::super::launch::Launch;
use super::super::view::{self, TOOL_PATH};
use super::super::{seccomp, state, sys};
use super::init::InitPlan;
use super::mounts;
use nix::fcntl::OFlag;
use nix::sys::resource::Resource;
use nix::unistd::geteuid;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt as _;

/// The child's ends of its pipes (and, once the cgroup exists, of its join files): the
/// parent closes them right after `clone3`. They are only held, never read: the child
/// reaches them by number through the [`InitPlan`].
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) struct ChildEnds {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub sync_in: OwnedFd,
    pub sync_out: OwnedFd,
    pub cgroup_join: Vec<OwnedFd>,
    pub landlock: Option<OwnedFd>,
}

/// The parent's ends.
#[derive(Debug)]
pub(crate) struct ParentEnds {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Parent to child: "set up", "go".
    pub sync_in: OwnedFd,
    /// Child to parent: progress, errors, and the tool's wait status at the end.
    pub sync_out: OwnedFd,
}

/// A pipe whose child end is moved to descriptor 10 or above (so `init` can move it to its
/// final number without overwriting another source).
fn pipe_high() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(errno_err("create a pipe"))?;
    Ok((high(r)?, high(w)?))
}

/// `fd` moved to 10 or above.
pub(crate) fn high(fd: OwnedFd) -> Result<OwnedFd, SandboxError> {
    sys::dup_above(fd.as_raw_fd(), 10)
        .map(sys::owned)
        .map_err(errno_err("move a descriptor above 10"))
}

pub(crate) fn cstrings<I: IntoIterator<Item = String>>(
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

/// Plans the child's whole setup for `launch`.
pub(crate) fn prepare(
    ctx: &RunContext<'_>,
    launch: &Launch,
) -> Result<(InitPlan, ChildEnds, ParentEnds), SandboxError> {
    let policy = ctx.policy;
    let staging = state::sandbox_dir(ctx.state_dir).join("newroot");
    state::private_dir(&staging).map_err(io_err("prepare the staging mount point"))?;
    let masks = view::resolve_masks(&policy.rootfs, &policy.all_masked_paths());
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

    let mut strings = cstrings(
        std::iter::once(TOOL_PATH.to_owned()).chain(launch.args.iter().cloned()),
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

    let landlock = match ctx.plan.landlock {
        Some(abi) => {
            let prepared = super::landlock::prepare(
                abi,
                &policy.rootfs,
                &launch.executable.file,
                &policy.landlock_exec,
            )
            .map_err(|e| SandboxError::Io {
                what: "prepare the Landlock ruleset".into(),
                source: std::io::Error::other(crate::reason::chain(&e)),
            })?;
            Some((high(prepared.ruleset)?, prepared.tmp_access))
        }
        None => None,
    };
    let limits = &launch.limits;
    let plan = InitPlan {
        mounts: mount_plan,
        script: launch.executable.is_script(),
        stdin: stdin_r.as_raw_fd(),
        stdout: stdout_w.as_raw_fd(),
        stderr: stderr_w.as_raw_fd(),
        sync_in: sync_in_r.as_raw_fd(),
        sync_out: sync_out_w.as_raw_fd(),
        rlimits: vec![
            (Resource::RLIMIT_CPU, limits.cpu_seconds()),
            (Resource::RLIMIT_AS, limits.address_space_bytes),
            (Resource::RLIMIT_NOFILE, limits.open_files),
            // The tool's processes plus init.
            (
                Resource::RLIMIT_NPROC,
                limits.max_processes.saturating_add(1),
            ),
            (Resource::RLIMIT_FSIZE, limits.file_size_bytes),
            (Resource::RLIMIT_CORE, 0),
        ],
        hostname: "sandbox",
        uid: policy.uid,
        gid: policy.gid,
        drop_groups: geteuid().is_root(),
        apparmor: match &ctx.plan.apparmor_profile {
            Some(p) => Some(cstrings([format!("exec {p}")], "the AppArmor profile")?.remove(0)),
            None => None,
        },
        seccomp: if ctx.plan.seccomp {
            let extra = policy.seccomp_extra(launch.executable.digest());
            Some(seccomp::programs(&extra).map_err(|e| SandboxError::Io {
                what: "compile the seccomp filter".into(),
                source: std::io::Error::other(e),
            })?)
        } else {
            None
        },
        cgroup_join: Vec::new(),
        landlock: landlock
            .as_ref()
            .map(|(fd, access)| (fd.as_raw_fd(), *access)),
        argv,
        envp,
        strings,
    };
    let child = ChildEnds {
        stdin: stdin_r,
        stdout: stdout_w,
        stderr: stderr_w,
        sync_in: sync_in_r,
        sync_out: sync_out_w,
        cgroup_join: Vec::new(),
        landlock: landlock.map(|(fd, _)| fd),
    };
    let parent = ParentEnds {
        stdin: stdin_w,
        stdout: stdout_r,
        stderr: stderr_r,
        sync_in: sync_in_w,
        sync_out: sync_out_r,
    };
    Ok((plan, child, parent))
}
