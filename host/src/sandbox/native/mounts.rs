//! The native sandbox's filesystem, planned in the parent (where allocating is fine) as a
//! list of mount operations with every path already a `CString`, and executed by `init` in
//! the child without allocating. The view: a recursive read-only clone of the root
//! filesystem; a fresh `/proc` with the kernel's sensitive files masked or read-only; an
//! empty read-only `/sys`; a minimal `/dev` (null, zero, full, random, urandom, fd links);
//! a private size-capped `/tmp`; a read-only `/run` holding only the tool at
//! `/run/edge-runner/tool`; and every masked path covered.

use super::super::error::SandboxError;
use super::super::view::{Mask, REPLACED, TOOL_PATH, under};
use nix::mount::MsFlags;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// One step of the plan.
#[derive(Debug)]
pub(crate) enum Op {
    /// Stop mount events propagating back to the host.
    MakePrivate,
    /// Clone `source` recursively, set `attr` (`MOUNT_ATTR_*`) on every mount in the
    /// clone, and attach it at `target`.
    CloneReadOnly {
        source: CString,
        target: CString,
        attr: u64,
    },
    /// A new filesystem.
    Mount {
        fstype: CString,
        target: CString,
        flags: MsFlags,
        data: CString,
    },
    /// A bind mount made as a detached clone, given `attr` before it is attached, so it is
    /// never visible writable. `optional` skips a source or target that does not exist.
    Bind {
        source: CString,
        target: CString,
        attr: u64,
        optional: bool,
    },
    Mkdir {
        path: CString,
    },
    /// An empty file to mount over.
    Touch {
        path: CString,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// Add `attr` to an existing mount (to make a populated tmpfs read-only).
    Remount {
        target: CString,
        attr: u64,
    },
    /// Attach a clone of the mount holding the verified executable, with `attr`, at
    /// `target`. The clone is taken through `source` (a descriptor's mount cannot be cloned
    /// from another mount namespace) and refused unless it is the very inode the runner
    /// holds open (`dev`, `ino`): the bytes executed are the bytes verified.
    AttachTool {
        source: CString,
        dev: u64,
        ino: u64,
        target: CString,
        attr: u64,
    },
}

/// `MOUNT_ATTR_*` of `<linux/mount.h>`: per-mount flags set with `mount_setattr(2)`, which
/// leaves the flags it is not given alone (a remount would have to restate locked ones).
pub(crate) const ATTR_RDONLY: u64 = 0x1;
pub(crate) const ATTR_NOSUID: u64 = 0x2;
pub(crate) const ATTR_NODEV: u64 = 0x4;
pub(crate) const ATTR_NOEXEC: u64 = 0x8;
const ATTR_LOCKED_DOWN: u64 = ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC;

impl Op {
    /// What the operation does, for error messages.
    pub fn describe(&self) -> String {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            Op::MakePrivate => "make / private".into(),
            Op::CloneReadOnly { source, target, .. } => {
                format!("clone {} read-only onto {}", s(source), s(target))
            }
            Op::Mount { fstype, target, .. } => format!("mount {} on {}", s(fstype), s(target)),
            Op::Bind { source, target, .. } => format!("bind {} onto {}", s(source), s(target)),
            Op::Mkdir { path } => format!("create directory {}", s(path)),
            Op::Touch { path } => format!("create mount point {}", s(path)),
            Op::Symlink { link, .. } => format!("create symlink {}", s(link)),
            Op::Remount { target, .. } => format!("make {} read-only", s(target)),
            Op::AttachTool { target, .. } => format!("attach the tool at {}", s(target)),
        }
    }
}

fn cstring(p: impl AsRef<Path>) -> Result<CString, SandboxError> {
    CString::new(p.as_ref().as_os_str().as_bytes()).map_err(|_| SandboxError::InvalidLaunch {
        message: format!("path {} contains a NUL byte", p.as_ref().display()),
    })
}

/// `/proc` entries hidden (as in the OCI runtime defaults): kernel memory, keys, timers,
/// scheduler internals.
const PROC_MASKED_FILES: &[&str] = &[
    "kcore",
    "keys",
    "timer_list",
    "sched_debug",
    "latency_stats",
    "kallsyms",
    "kpagecount",
    "kpageflags",
    "sysrq-trigger",
];
const PROC_MASKED_DIRS: &[&str] = &["acpi", "scsi"];
/// `/proc` entries kept but read-only.
const PROC_READ_ONLY: &[&str] = &["bus", "fs", "irq", "sys"];
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

/// Everything `init` needs to build the view, rooted at `staging`.
#[derive(Debug)]
pub(crate) struct MountPlan {
    pub staging: CString,
    pub ops: Vec<Op>,
}

/// Plans the view. `uid`/`gid` own the private `/tmp`.
pub(crate) fn plan(
    rootfs: &Path,
    staging: &Path,
    tool: (&Path, u64, u64),
    masks: &[Mask],
    tmp_bytes: u64,
    uid: u32,
    gid: u32,
) -> Result<MountPlan, SandboxError> {
    for dir in REPLACED {
        if !under(rootfs, Path::new(dir)).is_dir() {
            return Err(SandboxError::InvalidLaunch {
                message: format!(
                    "the sandbox root filesystem {} has no {dir} directory to mount over",
                    rootfs.display()
                ),
            });
        }
    }
    let mut p = Planner {
        staging,
        ops: vec![
            Op::MakePrivate,
            Op::CloneReadOnly {
                source: cstring(rootfs)?,
                target: cstring(staging)?,
                attr: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
            },
        ],
    };
    p.proc()?;
    p.tmpfs(
        "/sys",
        fixed(MsFlags::MS_RDONLY),
        "size=4k,nr_inodes=1,mode=555".into(),
    )?;
    p.dev()?;
    p.tmpfs(
        "/tmp",
        fixed(MsFlags::empty()),
        format!(
            "size={tmp_bytes},nr_inodes={},mode=700,uid={uid},gid={gid}",
            (tmp_bytes / 4096).clamp(64, 1 << 20)
        ),
    )?;
    p.run(tool)?;
    p.masks(masks)?;
    Ok(MountPlan {
        staging: cstring(staging)?,
        ops: p.ops,
    })
}

/// `nosuid,nodev,noexec` plus `flags`.
fn fixed(flags: MsFlags) -> MsFlags {
    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | flags
}

/// Builds the operation list, paths relative to the staging root.
struct Planner<'a> {
    staging: &'a Path,
    ops: Vec<Op>,
}

impl Planner<'_> {
    fn at(&self, inside: &str) -> Result<CString, SandboxError> {
        cstring(under(self.staging, Path::new(inside)))
    }

    fn tmpfs(&mut self, inside: &str, flags: MsFlags, data: String) -> Result<(), SandboxError> {
        let target = self.at(inside)?;
        self.tmpfs_at(target, flags, data)
    }

    fn tmpfs_at(
        &mut self,
        target: CString,
        flags: MsFlags,
        data: String,
    ) -> Result<(), SandboxError> {
        self.ops.push(Op::Mount {
            fstype: c"tmpfs".to_owned(),
            target,
            flags,
            data: cstring(data)?,
        });
        Ok(())
    }

    /// A fresh procfs with the kernel's sensitive files masked and some read-only.
    fn proc(&mut self) -> Result<(), SandboxError> {
        self.ops.push(Op::Mount {
            fstype: c"proc".to_owned(),
            target: self.at("/proc")?,
            flags: fixed(MsFlags::empty()),
            data: CString::default(),
        });
        for f in PROC_MASKED_FILES {
            self.ops.push(Op::Bind {
                source: c"/dev/null".to_owned(),
                target: self.at(&format!("/proc/{f}"))?,
                attr: ATTR_LOCKED_DOWN,
                optional: true,
            });
        }
        for d in PROC_MASKED_DIRS {
            if Path::new("/proc").join(d).is_dir() {
                self.tmpfs(
                    &format!("/proc/{d}"),
                    fixed(MsFlags::MS_RDONLY),
                    "size=4k,nr_inodes=1,mode=555".into(),
                )?;
            }
        }
        for d in PROC_READ_ONLY {
            let target = self.at(&format!("/proc/{d}"))?;
            self.ops.push(Op::Bind {
                source: target.clone(),
                target,
                attr: ATTR_LOCKED_DOWN,
                optional: true,
            });
        }
        Ok(())
    }

    /// A minimal `/dev`: the harmless devices and the fd links, then read-only.
    fn dev(&mut self) -> Result<(), SandboxError> {
        self.tmpfs(
            "/dev",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            "size=64k,nr_inodes=64,mode=755".into(),
        )?;
        for d in DEVICES {
            let target = self.at(&format!("/dev/{d}"))?;
            self.ops.push(Op::Touch {
                path: target.clone(),
            });
            self.ops.push(Op::Bind {
                source: cstring(format!("/dev/{d}"))?,
                target,
                attr: ATTR_NOSUID | ATTR_NOEXEC,
                optional: false,
            });
        }
        for (link, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            self.ops.push(Op::Symlink {
                target: cstring(target)?,
                link: self.at(&format!("/dev/{link}"))?,
            });
        }
        self.ops.push(Op::Remount {
            target: self.at("/dev")?,
            attr: ATTR_LOCKED_DOWN,
        });
        Ok(())
    }

    /// A read-only `/run` holding only the verified tool at [`TOOL_PATH`].
    fn run(&mut self, tool: (&Path, u64, u64)) -> Result<(), SandboxError> {
        self.tmpfs(
            "/run",
            fixed(MsFlags::empty()),
            "size=16k,nr_inodes=8,mode=755".into(),
        )?;
        self.ops.push(Op::Mkdir {
            path: self.at("/run/edge-runner")?,
        });
        let tool_target = self.at(TOOL_PATH)?;
        self.ops.push(Op::Touch {
            path: tool_target.clone(),
        });
        // Read-only, so the tool cannot change (or chmod) the verified copy through
        // /proc/self/exe or /dev/fd/3, even where its uid owns the file.
        self.ops.push(Op::AttachTool {
            source: cstring(tool.0)?,
            dev: tool.1,
            ino: tool.2,
            target: tool_target,
            attr: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
        });
        self.ops.push(Op::Remount {
            target: self.at("/run")?,
            attr: ATTR_LOCKED_DOWN,
        });
        Ok(())
    }

    /// An empty read-only directory or an unopenable file over each masked path.
    fn masks(&mut self, masks: &[Mask]) -> Result<(), SandboxError> {
        for m in masks {
            let target = cstring(under(self.staging, &m.path))?;
            if m.dir {
                self.tmpfs_at(
                    target,
                    fixed(MsFlags::MS_RDONLY),
                    "size=4k,nr_inodes=1,mode=000".into(),
                )?;
            } else {
                // nodev makes the stand-in /dev/null impossible to open at all.
                self.ops.push(Op::Bind {
                    source: c"/dev/null".to_owned(),
                    target,
                    attr: ATTR_LOCKED_DOWN,
                    optional: false,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_starts_read_only_and_ends_with_masks() {
        let masks = [Mask {
            path: "/etc/er/keys.json".into(),
            dir: false,
        }];
        let p = plan(
            Path::new("/"),
            Path::new("/stage"),
            (Path::new("/a/tool"), 1, 2),
            &masks,
            1 << 20,
            65534,
            65534,
        )
        .unwrap();
        assert!(matches!(p.ops[0], Op::MakePrivate));
        assert!(
            matches!(&p.ops[1], Op::CloneReadOnly { target, .. } if target.as_bytes() == b"/stage")
        );
        assert!(
            p.ops
                .iter()
                .any(|o| matches!(o, Op::Mount { target, data, .. }
            if target.as_bytes() == b"/stage/tmp" && data.to_bytes().starts_with(b"size=1048576")))
        );
        assert!(matches!(p.ops.last(), Some(Op::Bind { target, attr, .. })
            if target.as_bytes() == b"/stage/etc/er/keys.json" && attr & (ATTR_NODEV | ATTR_RDONLY) == ATTR_NODEV | ATTR_RDONLY));
    }
}
