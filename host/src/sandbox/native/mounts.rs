//! The native sandbox's filesystem, planned in the parent (where allocating is fine) as a
//! list of mount operations with every path already a `CString`, and executed by `init` in
//! the child without allocating. The view: a recursive read-only clone of the root
//! filesystem; a fresh `/proc` with the kernel's sensitive files masked or read-only; an
//! empty read-only `/sys`; a minimal `/dev` (null, zero, full, random, urandom, fd links);
//! a private size-capped `/tmp`; a read-only `/run` holding only the tool at
//! `/run/edge-runner/tool`; and every masked path covered.

use super::super::SandboxError;
use nix::mount::MsFlags;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

/// Where the tool appears inside both backends.
pub const TOOL_PATH: &str = "/run/edge-runner/tool";

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

/// A path hidden in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mask {
    /// The path inside the sandbox.
    pub path: PathBuf,
    pub dir: bool,
}

fn cstring(p: impl AsRef<Path>) -> Result<CString, SandboxError> {
    CString::new(p.as_ref().as_os_str().as_bytes()).map_err(|_| SandboxError::InvalidLaunch {
        message: format!("path {} contains a NUL byte", p.as_ref().display()),
    })
}

fn under(root: &Path, inside: &Path) -> PathBuf {
    root.join(inside.strip_prefix("/").unwrap_or(inside))
}

/// Mounts the sandbox always replaces; masks under them are moot.
const REPLACED: &[&str] = &["/proc", "/sys", "/dev", "/tmp", "/run"];

/// Resolves masked paths against `rootfs`: follows symlinks (staying inside the rootfs),
/// drops missing paths, paths under a replaced mount or under another masked directory.
pub(crate) fn resolve_masks(rootfs: &Path, paths: &[PathBuf]) -> Vec<Mask> {
    let mut masks: Vec<Mask> = Vec::new();
    for p in paths {
        let outside = under(rootfs, p);
        let Ok(real) = std::fs::canonicalize(&outside) else {
            continue;
        };
        let Ok(inside) = real.strip_prefix(rootfs) else {
            continue;
        };
        let inside = Path::new("/").join(inside);
        if inside == Path::new("/") {
            continue;
        }
        let dir = real.is_dir();
        masks.push(Mask { path: inside, dir });
    }
    masks.sort_by(|a, b| a.path.cmp(&b.path));
    masks.dedup();
    let mut kept: Vec<Mask> = Vec::new();
    for m in masks {
        let replaced = REPLACED.iter().any(|r| m.path.starts_with(r));
        let covered = kept.iter().any(|k| k.dir && m.path.starts_with(&k.path));
        if !replaced && !covered {
            kept.push(m);
        }
    }
    kept
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
    let at = |inside: &str| cstring(under(staging, Path::new(inside)));
    let fixed = |flags| MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | flags;
    let ro = MsFlags::MS_RDONLY;
    let tmpfs = |target, flags, data: String| -> Result<Op, SandboxError> {
        Ok(Op::Mount {
            fstype: c"tmpfs".to_owned(),
            target,
            flags,
            data: cstring(data)?,
        })
    };
    let mut ops = vec![
        Op::MakePrivate,
        Op::CloneReadOnly {
            source: cstring(rootfs)?,
            target: cstring(staging)?,
            attr: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
        },
        Op::Mount {
            fstype: c"proc".to_owned(),
            target: at("/proc")?,
            flags: fixed(MsFlags::empty()),
            data: CString::default(),
        },
    ];
    let null = c"/dev/null";
    for f in PROC_MASKED_FILES {
        ops.push(Op::Bind {
            source: null.to_owned(),
            target: at(&format!("/proc/{f}"))?,
            attr: ATTR_LOCKED_DOWN,
            optional: true,
        });
    }
    for d in PROC_MASKED_DIRS {
        if Path::new("/proc").join(d).is_dir() {
            ops.push(tmpfs(
                at(&format!("/proc/{d}"))?,
                fixed(ro),
                "size=4k,nr_inodes=1,mode=555".into(),
            )?);
        }
    }
    for d in PROC_READ_ONLY {
        let target = at(&format!("/proc/{d}"))?;
        ops.push(Op::Bind {
            source: target.clone(),
            target,
            attr: ATTR_LOCKED_DOWN,
            optional: true,
        });
    }
    ops.push(tmpfs(
        at("/sys")?,
        fixed(ro),
        "size=4k,nr_inodes=1,mode=555".into(),
    )?);

    ops.push(tmpfs(
        at("/dev")?,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "size=64k,nr_inodes=64,mode=755".into(),
    )?);
    for d in DEVICES {
        let target = at(&format!("/dev/{d}"))?;
        ops.push(Op::Touch {
            path: target.clone(),
        });
        ops.push(Op::Bind {
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
        ops.push(Op::Symlink {
            target: cstring(target)?,
            link: at(&format!("/dev/{link}"))?,
        });
    }
    ops.push(Op::Remount {
        target: at("/dev")?,
        attr: ATTR_LOCKED_DOWN,
    });

    ops.push(tmpfs(
        at("/tmp")?,
        fixed(MsFlags::empty()),
        format!(
            "size={tmp_bytes},nr_inodes={},mode=700,uid={uid},gid={gid}",
            (tmp_bytes / 4096).clamp(64, 1 << 20)
        ),
    )?);

    ops.push(tmpfs(
        at("/run")?,
        fixed(MsFlags::empty()),
        "size=16k,nr_inodes=8,mode=755".into(),
    )?);
    ops.push(Op::Mkdir {
        path: at("/run/edge-runner")?,
    });
    let tool_target = at(TOOL_PATH)?;
    ops.push(Op::Touch {
        path: tool_target.clone(),
    });
    // Read-only, so the tool cannot change (or chmod) the verified copy through
    // /proc/self/exe or /dev/fd/3, even where its uid owns the file.
    ops.push(Op::AttachTool {
        source: cstring(tool.0)?,
        dev: tool.1,
        ino: tool.2,
        target: tool_target,
        attr: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
    });
    ops.push(Op::Remount {
        target: at("/run")?,
        attr: ATTR_LOCKED_DOWN,
    });

    for m in masks {
        let target = cstring(under(staging, &m.path))?;
        if m.dir {
            ops.push(tmpfs(
                target,
                fixed(ro),
                "size=4k,nr_inodes=1,mode=000".into(),
            )?);
        } else {
            // nodev makes the stand-in /dev/null impossible to open at all.
            ops.push(Op::Bind {
                source: null.to_owned(),
                target,
                attr: ATTR_LOCKED_DOWN,
                optional: false,
            });
        }
    }
    Ok(MountPlan {
        staging: cstring(staging)?,
        ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_resolve_dedupe_and_skip_replaced_mounts() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in ["etc/er", "var/lib/er/armory", "tmp/x", "real"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/er/keys.json"), "{}").unwrap();
        std::os::unix::fs::symlink(r.join("real"), r.join("link")).unwrap();
        let masks = resolve_masks(
            &std::fs::canonicalize(r).unwrap(),
            &[
                "/etc/er/keys.json".into(),
                "/var/lib/er".into(),
                "/var/lib/er/armory".into(),
                "/tmp/x".into(),
                "/missing".into(),
                "/link".into(),
            ],
        );
        assert_eq!(
            masks,
            vec![
                Mask {
                    path: "/etc/er/keys.json".into(),
                    dir: false
                },
                Mask {
                    path: "/real".into(),
                    dir: true
                },
                Mask {
                    path: "/var/lib/er".into(),
                    dir: true
                },
            ]
        );
    }

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
