//! The armory: a local content-addressed store of tools, and the only way a task gets one.
//!
//! ```text
//! <armory>/index.json             per-digest metadata and authorization (0600, atomic replace)
//! <armory>/authorization.jws      the installed signed authorization statement (0600; `policy`)
//! <armory>/lock                   writers (add, authorize, revoke) hold an exclusive flock
//! <armory>/blobs/sha256/<hex>     the tool bytes, named by their SHA-256 (0444)
//! <armory>/tmp/                   staging for blobs and index replacements (same filesystem)
//! ```
//!
//! Every directory is 0700 and, like every file, must be owned by the runner (or root) and
//! not writable by group or others (`fsperm`), or the armory is refused. Resolution
//! ([`Armory::resolve`]) never trusts the store's bytes: it copies the blob into a private
//! directory while hashing it and hands out that copy only if the hash matches, so what
//! runs is what was hashed (docs/threat-model.md: the executed bytes are the verified
//! bytes). Readers take no lock: the index is replaced by rename, and blobs are immutable
//! once named.
//!
//! A tool is an ELF executable or a `#!` script whose interpreter is an absolute path; the
//! interpreter must exist inside the sandbox's root filesystem, since only the tool itself
//! comes from the armory. This module must not run anything.

mod add;
mod error;
mod hashing;
mod index;
pub mod policy;
pub mod registry;
mod resolve;
mod store;

pub use error::ArmoryError;
pub use index::{Entry, Stamp};
pub use resolve::{ResolvedTool, scratch_dir};
pub use store::{Added, BlobProblem, BlobReport, VerifyReport, describe};

use crate::fsperm;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Largest tool accepted, bytes.
pub const MAX_TOOL_BYTES: u64 = 1024 * 1024 * 1024;
/// Longest `#!` line the kernel reads (BINPRM_BUF_SIZE since Linux 5.1).
pub const MAX_SHEBANG_LEN: usize = 256;
/// Longest tool name or actor name.
pub const MAX_LABEL_LEN: usize = 128;

/// Where everything lives under the armory root.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) root: PathBuf,
}

impl Layout {
    pub(crate) fn index(&self) -> PathBuf {
        self.root.join("index.json")
    }
    pub(crate) fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }
    pub(crate) fn blobs(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }
    /// The blob path of a digest. Safe: a [`crate::digest::Digest`]'s hex is 64 hex digits.
    pub(crate) fn blob(&self, digest: &crate::digest::Digest) -> PathBuf {
        self.blobs().join(digest.hex())
    }
    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

/// An armory directory whose root, blob directories and staging directory passed the trust
/// checks when it was opened.
#[derive(Debug, Clone)]
pub struct Armory {
    layout: Layout,
    /// Largest tool `add` and `pull` accept (`armory.max_tool_bytes`).
    max_tool_bytes: u64,
}

impl Armory {
    /// Opens an existing armory, refusing an untrusted one.
    pub fn open(root: &Path) -> Result<Self, ArmoryError> {
        let layout = Layout {
            root: root.to_owned(),
        };
        match std::fs::symlink_metadata(root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ArmoryError::Missing {
                    path: root.to_owned(),
                });
            }
            _ => {}
        }
        let armory = Self {
            layout,
            max_tool_bytes: MAX_TOOL_BYTES,
        };
        armory.check_dirs()?;
        Ok(armory)
    }

    /// The trust checks on the directories, run at open and again before every
    /// resolution (a long-lived runner must notice permissions loosened after it started).
    pub(crate) fn check_dirs(&self) -> Result<(), ArmoryError> {
        let layout = &self.layout;
        for (dir, what) in [
            (layout.root.clone(), "armory directory"),
            (layout.root.join("blobs"), "armory blob directory"),
            (layout.blobs(), "armory blob directory"),
        ] {
            match std::fs::symlink_metadata(&dir) {
                // A fresh armory may not have blob directories yet; `add` creates them.
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound && what != "armory directory" => {}
                _ => {
                    let meta = fsperm::check_trusted(&dir, what)
                        .map_err(|source| ArmoryError::Untrusted { source })?;
                    if !meta.is_dir() {
                        return Err(ArmoryError::Store {
                            action: "use the directory",
                            path: dir,
                            source: std::io::Error::other("not a directory"),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens the armory at `root`, creating it (mode 0700) if it does not exist.
    pub fn create(root: &Path) -> Result<Self, ArmoryError> {
        let layout = Layout {
            root: root.to_owned(),
        };
        for (dir, what) in [
            (layout.root.clone(), "armory directory"),
            (layout.root.join("blobs"), "armory blob directory"),
            (layout.blobs(), "armory blob directory"),
            (layout.tmp(), "armory staging directory"),
        ] {
            fsperm::ensure_private_dir(&dir, what)
                .map_err(|source| ArmoryError::Untrusted { source })?;
        }
        Self::open(root)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.layout.root
    }

    /// The same armory with another tool size limit (at most [`MAX_TOOL_BYTES`]).
    pub fn with_max_tool_bytes(mut self, limit: u64) -> Self {
        self.max_tool_bytes = limit.min(MAX_TOOL_BYTES);
        self
    }

    /// The largest tool accepted.
    pub fn max_tool_bytes(&self) -> u64 {
        self.max_tool_bytes
    }

    /// Takes the writers' lock (blocking: writers are operator commands, and the kernel
    /// releases the lock if the holder dies).
    fn lock(&self) -> Result<File, ArmoryError> {
        let path = self.layout.lock();
        let io = |action| {
            let path = path.clone();
            move |source| ArmoryError::Store {
                action,
                path,
                source,
            }
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io("open the lock"))?;
        let meta = file.metadata().map_err(io("inspect the lock"))?;
        fsperm::check_metadata(&meta, &path, "armory lock")
            .map_err(|source| ArmoryError::Untrusted { source })?;
        file.lock().map_err(io("lock"))?;
        Ok(file)
    }
}

/// fsyncs a directory so a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ArmoryError> {
    crate::durable::sync_dir(dir).map_err(|source| ArmoryError::Store {
        action: "sync the directory",
        path: dir.to_owned(),
        source,
    })
}

/// Checks the first bytes of a tool: ELF, or `#!` followed by an absolute interpreter path
/// and a newline within [`MAX_SHEBANG_LEN`] bytes.
pub(crate) fn check_executable(head: &[u8], what: &str) -> Result<(), ArmoryError> {
    let refuse = |problem| ArmoryError::NotExecutable {
        what: what.to_owned(),
        problem,
    };
    if head.starts_with(b"\x7fELF") {
        return Ok(());
    }
    let Some(rest) = head.strip_prefix(b"#!") else {
        return Err(refuse(
            "it is neither an ELF executable nor a script starting with #!",
        ));
    };
    // `head` is the first MAX_SHEBANG_LEN bytes, or the whole file if shorter, in which
    // case the end of the file ends the line.
    let whole_file = head.len() < MAX_SHEBANG_LEN;
    let Some(line_end) = rest
        .iter()
        .position(|&b| b == b'\n')
        .or(whole_file.then_some(rest.len()))
    else {
        return Err(refuse(
            "its #! line is longer than the kernel reads (256 bytes)",
        ));
    };
    let line = &rest[..line_end];
    let interpreter = line
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .map(|start| &line[start..]);
    match interpreter {
        Some(i) if i.first() == Some(&b'/') => Ok(()),
        _ => Err(refuse(
            "its #! line does not name an absolute interpreter path (like #!/bin/sh)",
        )),
    }
}

/// The interpreter a `#!` script names (the first word after `#!`), if `head` is one.
pub fn interpreter(head: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt as _;
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    let word = line
        .split(|&b| b == b' ' || b == b'\t')
        .find(|w| !w.is_empty())?;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(word)))
}

/// A tool or actor name: 1 to 128 bytes, no control characters.
pub(crate) fn check_label(field: &'static str, value: &str) -> Result<(), ArmoryError> {
    let problem = if value.is_empty() || value.len() > MAX_LABEL_LEN {
        Some("it must be 1 to 128 bytes long")
    } else if value.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ArmoryError::Label {
            field,
            value: crate::text::printable(value),
            problem,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
