//! Trust checks on files and directories the runner relies on (key set, configuration,
//! armory, plugin files and cache, state), in the spirit of OpenSSH's `StrictModes`: a
//! path that another user owns, or that group or others can write, could have been
//! swapped under us, so it is refused with a message that says how to fix it.
//!
//! Checking the final component is not enough: a user who owns any directory above a
//! root-owned key set can rename a forged one into its place between the check and the
//! read. So every check here walks the path from `/` one component at a time through
//! descriptors (`openat` with `O_NOFOLLOW`, never a second lookup by name), and refuses
//! the path unless every directory on the way is owned by root or the runner and not
//! writable by group or others (a sticky directory such as `/tmp` is accepted as an
//! ancestor, since other users cannot rename what they do not own in it; what lies below
//! it is still checked). Symbolic links above the final component are followed only when
//! they sit in a directory that passed the check; a symbolic link as the final component
//! is refused. [`open_file`] returns the descriptor it checked, so the caller reads
//! exactly what was checked. This module never changes permissions.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

/// Symbolic links followed in one walk before giving up (the kernel's own limit).
const MAX_LINK_HOPS: usize = 40;

/// Why a path is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum PermError {
    /// Reading metadata or opening a component on the way failed.
    #[error("failed to inspect {what} {path}")]
    Inspect {
        /// What the path is, as messages name it (`configuration`, `armory index`, ...).
        what: &'static str,
        /// The path checked.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The path is owned by neither the runner nor root.
    #[error(
        "{what} {path} is owned by uid {owner}, not by the runner (uid {runner}); \
         fix with: chown {runner} {path}"
    )]
    Owner {
        /// What the path is, as messages name it (`configuration`, `armory index`, ...).
        what: &'static str,
        /// The path checked.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// The runner's effective uid.
        runner: u32,
    },
    /// The path is writable by group or others.
    #[error(
        "{what} {path} is writable by group or others (mode {mode:04o}); \
         fix with: chmod go-w {path}"
    )]
    Writable {
        /// What the path is, as messages name it (`configuration`, `armory index`, ...).
        what: &'static str,
        /// The path checked.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory above the path is owned by neither root nor the runner.
    #[error(
        "the directory {dir} above {what} {path} is owned by uid {owner}, neither root nor \
         the runner (uid {runner}), so its owner could swap {path}; move the file to a \
         directory owned by root, or fix with: chown root {dir}"
    )]
    AncestorOwner {
        /// What the path is, as messages name it (`configuration`, `armory index`, ...).
        what: &'static str,
        /// The path checked.
        path: PathBuf,
        /// The directory.
        dir: PathBuf,
        /// The directory owner's uid.
        owner: u32,
        /// The runner's effective uid.
        runner: u32,
    },
    /// A directory above the path is writable by group or others (and not sticky).
    #[error(
        "the directory {dir} above {what} {path} is writable by group or others (mode \
         {mode:04o}), so they could swap {path}; fix with: chmod go-w {dir}"
    )]
    AncestorWritable {
        /// What the path is, as messages name it (`configuration`, `armory index`, ...).
        what: &'static str,
        /// The path checked.
        path: PathBuf,
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The final component is a symbolic link.
    #[error("{what} {path} is a symbolic link; point the configuration at the real path")]
    Symlink {
        /// What the path is, as messages name it (`configuration`, `armory index`, ...).
        what: &'static str,
        /// The path checked.
        path: PathBuf,
    },
    /// The final component is not the kind of file expected.
    #[error("{what} {path} is {kind}, not a {expected}; point the configuration at a {expected}")]
    Kind {
        /// What the path is, as messages name it (`configuration`, `armory index`, ...).
        what: &'static str,
        /// The path checked.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
        /// What it had to be (`regular file`, `directory`).
        expected: &'static str,
    },
    /// The walk followed more than 40 symbolic links.
    #[error("{what} {path}: more than {MAX_LINK_HOPS} symbolic links on the way")]
    TooManyLinks {
        /// What the path is, as messages name it (`configuration`, `armory index`, ...).
        what: &'static str,
        /// The path checked.
        path: PathBuf,
    },
}

/// What the final component must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    File,
    Dir,
    Any,
}

/// Refuses `path` unless it and every directory above it can be trusted (see the module
/// documentation). The final component may be a file or a directory, never a symlink.
pub fn check_trusted(path: &Path, what: &'static str) -> Result<std::fs::Metadata, PermError> {
    walk(path, what, Expect::Any).map(|(_, meta)| meta)
}

/// Opens the regular file at `path` for reading through a walk that checks it and every
/// directory above it, and returns the descriptor that was checked with its metadata.
/// A FIFO, device or directory is refused (opening never blocks).
pub fn open_file(path: &Path, what: &'static str) -> Result<(File, std::fs::Metadata), PermError> {
    walk(path, what, Expect::File)
}

/// [`check_trusted`] for a directory (a symlink or a file there is refused).
pub fn check_dir(path: &Path, what: &'static str) -> Result<(), PermError> {
    walk(path, what, Expect::Dir).map(drop)
}

/// The same checks on metadata already obtained (for example from an open descriptor,
/// which avoids a check-then-open race). Ancestors are not checked.
pub fn check_metadata(
    meta: &std::fs::Metadata,
    path: &Path,
    what: &'static str,
) -> Result<(), PermError> {
    if meta.file_type().is_symlink() {
        return Err(PermError::Symlink {
            what,
            path: path.to_owned(),
        });
    }
    let runner = nix::unistd::geteuid().as_raw();
    if meta.uid() != runner && meta.uid() != 0 {
        return Err(PermError::Owner {
            what,
            path: path.to_owned(),
            owner: meta.uid(),
            runner,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    // A sticky directory that others can write (like /tmp) still lets them create
    // entries; refuse it as well.
    if mode & 0o022 != 0 {
        return Err(PermError::Writable {
            what,
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// An ancestor directory may be sticky and world-writable (`/tmp`): others cannot rename
/// or remove entries they do not own there, and what lies below is checked in turn.
fn check_ancestor(
    meta: &std::fs::Metadata,
    dir: &Path,
    path: &Path,
    what: &'static str,
) -> Result<(), PermError> {
    let runner = nix::unistd::geteuid().as_raw();
    if meta.uid() != runner && meta.uid() != 0 {
        return Err(PermError::AncestorOwner {
            what,
            path: path.to_owned(),
            dir: dir.to_owned(),
            owner: meta.uid(),
            runner,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(PermError::AncestorWritable {
            what,
            path: path.to_owned(),
            dir: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "a regular file"
    }
}

/// The walk: from `/`, through checked descriptors only, to the final component.
fn walk(
    path: &Path,
    what: &'static str,
    expect: Expect,
) -> Result<(File, std::fs::Metadata), PermError> {
    let inspect = |source: std::io::Error| PermError::Inspect {
        what,
        path: path.to_owned(),
        source,
    };
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().map_err(inspect)?.join(path)
    };
    let mut queue: VecDeque<OsString> = components(&absolute);
    let Some(last) = queue.pop_back() else {
        // The path is `/` itself.
        let (dir, meta) = open_root().map_err(inspect)?;
        check_metadata(&meta, path, what)?;
        return Ok((dir, meta));
    };
    let (mut dir, mut meta) = open_root().map_err(inspect)?;
    let mut at = PathBuf::from("/");
    let mut hops = 0usize;
    check_ancestor(&meta, &at, path, what)?;
    while let Some(name) = queue.pop_front() {
        if name == ".." {
            let parent = openat(&dir, OsStr::new(".."), OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(inspect)?;
            meta = parent.metadata().map_err(inspect)?;
            dir = parent;
            at.pop();
            check_ancestor(&meta, &at, path, what)?;
            continue;
        }
        let lstat = nix::sys::stat::fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| inspect(e.into()))?;
        if lstat.st_mode & libc::S_IFMT == libc::S_IFLNK {
            // A link inside a checked directory: its target is walked in turn.
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return Err(PermError::TooManyLinks {
                    what,
                    path: path.to_owned(),
                });
            }
            let target =
                nix::fcntl::readlinkat(&dir, name.as_os_str()).map_err(|e| inspect(e.into()))?;
            let target = PathBuf::from(target);
            let mut parts = components(&target);
            while let Some(p) = parts.pop_back() {
                queue.push_front(p);
            }
            if target.is_absolute() {
                (dir, meta) = open_root().map_err(inspect)?;
                at = PathBuf::from("/");
                check_ancestor(&meta, &at, path, what)?;
            }
            continue;
        }
        let next = openat(
            &dir,
            &name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        )
        .map_err(inspect)?;
        meta = next.metadata().map_err(inspect)?;
        dir = next;
        at.push(&name);
        check_ancestor(&meta, &at, path, what)?;
    }
    // The final component: never a symlink, and the expected kind.
    let lstat = nix::sys::stat::fstatat(&dir, last.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| inspect(e.into()))?;
    if lstat.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(PermError::Symlink {
            what,
            path: path.to_owned(),
        });
    }
    let flags = match expect {
        // O_NONBLOCK: opening a FIFO for reading must not wait for a writer; it is refused
        // below anyway.
        Expect::File => OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
        Expect::Dir => OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        Expect::Any => OFlag::O_PATH | OFlag::O_NOFOLLOW,
    };
    let file = openat(&dir, &last, flags).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => PermError::Symlink {
            what,
            path: path.to_owned(),
        },
        Some(libc::ENOTDIR) => PermError::Kind {
            what,
            path: path.to_owned(),
            kind: "not a directory",
            expected: "directory",
        },
        _ => inspect(e),
    })?;
    let meta = file.metadata().map_err(inspect)?;
    let t = meta.file_type();
    match expect {
        Expect::File if !t.is_file() => {
            return Err(PermError::Kind {
                what,
                path: path.to_owned(),
                kind: kind_name(t),
                expected: "regular file",
            });
        }
        Expect::Dir if !t.is_dir() => {
            return Err(PermError::Kind {
                what,
                path: path.to_owned(),
                kind: kind_name(t),
                expected: "directory",
            });
        }
        _ => {}
    }
    check_metadata(&meta, path, what)?;
    if expect == Expect::File {
        // Reads block normally from here on.
        let fd = std::os::fd::AsFd::as_fd(&file);
        let fl =
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| inspect(e.into()))?;
        let fl = OFlag::from_bits_truncate(fl) & !OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(fl)).map_err(|e| inspect(e.into()))?;
    }
    Ok((file, meta))
}

fn open_root() -> std::io::Result<(File, std::fs::Metadata)> {
    let root = File::from(nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?);
    let meta = root.metadata()?;
    Ok((root, meta))
}

fn openat(dir: &File, name: &OsStr, flags: OFlag) -> std::io::Result<File> {
    let fd: OwnedFd = nix::fcntl::openat(dir, name, flags | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e: Errno| std::io::Error::from(e))?;
    Ok(File::from(fd))
}

/// The names of `path` after its root, `.` dropped and trailing slashes ignored (so
/// `DIR/` names `DIR` itself: a symlink there is refused like `DIR`).
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .filter(|n| !n.as_bytes().is_empty())
        .collect()
}

/// Creates `dir` (and parents) with mode 0700 if missing, then checks it is trusted.
pub fn ensure_private_dir(dir: &Path, what: &'static str) -> Result<(), PermError> {
    ensure_private_dir_created(dir, what).map(drop)
}

/// [`ensure_private_dir`], saying whether it created `dir`: a caller that needs the new
/// name durable then syncs the parent.
pub fn ensure_private_dir_created(dir: &Path, what: &'static str) -> Result<bool, PermError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let missing = std::fs::symlink_metadata(dir).is_err();
    if missing {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| PermError::Inspect {
                what,
                path: dir.to_owned(),
                source,
            })?;
    }
    check_dir(dir, what)?;
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    #[test]
    fn loose_modes_are_refused_with_a_fix() {
        let dir = private_dir();
        let f = dir.path().join("keys.json");
        std::fs::write(&f, "{}").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_trusted(&f, "key set").is_ok());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = check_trusted(&f, "key set").unwrap_err().to_string();
        assert!(e.contains("chmod go-w"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o620)).unwrap();
        assert!(check_trusted(&f, "key set").is_err());
    }

    #[test]
    fn symlinks_are_refused() {
        let dir = private_dir();
        let f = dir.path().join("real");
        std::fs::write(&f, "x").unwrap();
        let l = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(matches!(
            check_trusted(&l, "key set"),
            Err(PermError::Symlink { .. })
        ));
    }

    /// Issue 17 item 8: `DIR/` used to resolve the link before the check.
    #[test]
    fn a_trailing_slash_does_not_hide_a_symlink() {
        let dir = private_dir();
        let real = dir.path().join("armory-real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("armory");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let slash = PathBuf::from(format!("{}/", link.display()));
        for p in [&link, &slash] {
            assert!(
                matches!(check_dir(p, "armory"), Err(PermError::Symlink { .. })),
                "{} accepted",
                p.display()
            );
        }
        assert!(check_dir(&real, "armory").is_ok());
        assert!(check_dir(&PathBuf::from(format!("{}/", real.display())), "armory").is_ok());
    }

    /// Issue 17 item 1: a directory above the file that group or others can write lets
    /// them swap the file; refused even though the file itself is root's 0600.
    #[test]
    fn a_writable_ancestor_is_refused() {
        let dir = private_dir();
        let parent = dir.path().join("etc");
        std::fs::create_dir(&parent).unwrap();
        let f = parent.join("keys.json");
        std::fs::write(&f, "{}").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(open_file(&f, "key set").is_ok());
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = open_file(&f, "key set").unwrap_err();
        assert!(matches!(e, PermError::AncestorWritable { .. }), "{e}");
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        // Sticky and world-writable (like /tmp): others cannot rename our entries.
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(open_file(&f, "key set").is_ok());
    }

    #[test]
    fn an_ancestor_owned_by_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            return; // chown needs root; CI is root.
        }
        let dir = private_dir();
        let parent = dir.path().join("home");
        std::fs::create_dir(&parent).unwrap();
        let f = parent.join("keys.json");
        std::fs::write(&f, "{}").unwrap();
        std::os::unix::fs::chown(&parent, Some(65534), Some(65534)).unwrap();
        let e = open_file(&f, "key set").unwrap_err();
        assert!(
            matches!(e, PermError::AncestorOwner { owner: 65534, .. }),
            "{e}"
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = private_dir();
        let p = dir.path().join("plugin.wasm");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = open_file(&p, "plugin").unwrap_err();
        assert!(matches!(e, PermError::Kind { kind: "a FIFO", .. }), "{e}");
    }

    #[test]
    fn links_in_trusted_ancestors_are_followed_and_checked() {
        let dir = private_dir();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("f"), "x").unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("via")).unwrap();
        let (mut file, _) = open_file(&dir.path().join("via").join("f"), "file").unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut file, &mut s).unwrap();
        assert_eq!(s, "x");
        // The link's target is checked like any directory.
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(open_file(&dir.path().join("via").join("f"), "file").is_err());
    }
}
