//! Resolution: an authorized digest in, a [`ResolvedTool`] out: a private copy of the
//! blob, made while hashing it, handed out only if the hash matches.
//!
//! The order matters: the digest is already parsed (it cannot name another path); the
//! index is read from a trusted descriptor; the blob is opened once, without following
//! symlinks, and checked through that descriptor (type, owner, mode, size); its bytes are
//! hashed as they are written to the copy; the copy is sealed 0555 and reopened read-only,
//! and the reopened file is checked to be the one written (device and inode). Nothing
//! re-opens the armory path afterwards. This module must not execute anything.

use super::hashing::{CopyError, hash_copy, open_blob};
use super::index::Index;
use super::{Armory, ArmoryError, check_executable};
use crate::digest::Digest;
use crate::fsperm;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

/// Where private tool copies live under a runner's state directory.
pub fn scratch_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("tools")
}

/// The name of the copy inside its private directory.
const COPY_NAME: &str = "tool";

/// A tool ready to hand to the sandbox: a private, read-only copy whose bytes hashed to
/// the authorized digest. The copy and its directory are removed on drop.
#[derive(Debug)]
pub struct ResolvedTool {
    digest: Digest,
    name: String,
    size: u64,
    path: PathBuf,
    file: File,
    dir: PathBuf,
    /// Held (flock) while the copy is in use, so a cleanup by another runner process
    /// leaves it alone.
    _dir_lock: File,
}

impl ResolvedTool {
    /// `sha256:<hex>` of the bytes in [`ResolvedTool::file`].
    pub fn digest(&self) -> &str {
        self.digest.as_str()
    }
    /// The same digest, typed.
    pub fn typed_digest(&self) -> &Digest {
        &self.digest
    }
    /// The name the operator gave the tool when adding it.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The private copy (mode 0555, in a runner-owned 0700 directory).
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The copy, opened read-only. No writable descriptor to it remains open in this
    /// process, so it can be executed; a child forked by another thread while the copy was
    /// being written can still hold one (O_CLOEXEC closes it only at that child's exec), so
    /// a launcher should treat ETXTBSY as transient and retry briefly.
    pub fn file(&self) -> &File {
        &self.file
    }
    /// The tool's size, in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for ResolvedTool {
    fn drop(&mut self) {
        for result in [
            std::fs::remove_file(&self.path),
            std::fs::remove_dir(&self.dir),
        ] {
            if let Err(e) = result {
                tracing::warn!(dir = %self.dir.display(), error = %e, "failed to remove a private tool copy");
            }
        }
    }
}

impl Armory {
    /// Resolves `digest` to a private copy under `scratch` (created 0700 if missing; see
    /// [`scratch_dir`]).
    pub fn resolve(&self, digest: &Digest, scratch: &Path) -> Result<ResolvedTool, ArmoryError> {
        self.resolve_with(digest, scratch, true)
    }

    /// [`Armory::resolve`] for signed authorization: the caller has established that a
    /// verified statement authorizes `digest`, so the index's local `authorized` mark is
    /// not needed; a local revocation still refuses it (an operator's brake is stricter
    /// than any statement), and the bytes are checked exactly as always.
    pub fn resolve_signed(
        &self,
        digest: &Digest,
        scratch: &Path,
    ) -> Result<ResolvedTool, ArmoryError> {
        self.resolve_with(digest, scratch, false)
    }

    fn resolve_with(
        &self,
        digest: &Digest,
        scratch: &Path,
        local_authorization: bool,
    ) -> Result<ResolvedTool, ArmoryError> {
        self.check_dirs()?;
        let index = Index::read(&self.layout)?;
        let Some(entry) = index.tools.get(digest) else {
            return Err(ArmoryError::Unknown {
                digest: digest.to_string(),
            });
        };
        if let Some(r) = &entry.revoked {
            return Err(ArmoryError::Unauthorized {
                digest: digest.to_string(),
                state: format!("was revoked at {} by {}", r.at, r.by),
            });
        }
        if local_authorization && entry.authorized.is_none() {
            return Err(ArmoryError::Unauthorized {
                digest: digest.to_string(),
                state: format!(
                    "\"{}\" is in the armory but not authorized; authorize it with \
                     `edge-runner armory authorize {digest}`",
                    entry.name
                ),
            });
        }

        let blob_path = self.layout.blob(digest);
        let mut blob = self.open_trusted_blob(digest, &blob_path, entry.size)?;

        let (dir, dir_lock) = private_dir(scratch)?;
        let path = dir.join(COPY_NAME);
        let result = copy_and_check(&mut blob, digest, &blob_path, entry.size, &path);
        let (file, size) = match result {
            Ok(ok) => ok,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir(&dir);
                return Err(e);
            }
        };
        Ok(ResolvedTool {
            digest: digest.clone(),
            name: entry.name.clone(),
            size,
            path,
            file,
            dir,
            _dir_lock: dir_lock,
        })
    }

    /// Opens the blob once and checks it through the descriptor.
    fn open_trusted_blob(
        &self,
        digest: &Digest,
        path: &Path,
        size: u64,
    ) -> Result<File, ArmoryError> {
        let blob = open_blob(path).map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => ArmoryError::NotABlob {
                digest: digest.to_string(),
                path: path.to_owned(),
                kind: "a symbolic link",
            },
            Some(libc::ENOENT) => ArmoryError::Mismatch {
                digest: digest.to_string(),
                path: path.to_owned(),
                problem: "is missing".into(),
            },
            _ => ArmoryError::Store {
                action: "open the blob",
                path: path.to_owned(),
                source,
            },
        })?;
        let meta = blob.metadata().map_err(|source| ArmoryError::Store {
            action: "inspect the blob",
            path: path.to_owned(),
            source,
        })?;
        if !meta.is_file() {
            return Err(ArmoryError::NotABlob {
                digest: digest.to_string(),
                path: path.to_owned(),
                kind: if meta.is_dir() {
                    "a directory"
                } else {
                    "a special file"
                },
            });
        }
        fsperm::check_metadata(&meta, path, "armory blob")
            .map_err(|source| ArmoryError::Untrusted { source })?;
        if meta.len() != size {
            return Err(ArmoryError::Mismatch {
                digest: digest.to_string(),
                path: path.to_owned(),
                problem: format!("is {} bytes, the index says {size}", meta.len()),
            });
        }
        Ok(blob)
    }
}

/// Copies `blob` to `path` while hashing, compares, seals the copy and reopens it
/// read-only.
fn copy_and_check(
    blob: &mut File,
    digest: &Digest,
    blob_path: &Path,
    size: u64,
    path: &Path,
) -> Result<(File, u64), ArmoryError> {
    let scratch = |action: &'static str| {
        let path = path.to_owned();
        move |source| ArmoryError::Scratch {
            action,
            path,
            source,
        }
    };
    let mut copy = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(scratch("create"))?;
    let mismatch = |problem: String| ArmoryError::Mismatch {
        digest: digest.to_string(),
        path: blob_path.to_owned(),
        problem,
    };
    // Reading one byte past the indexed size detects a blob that grew after the fstat.
    let hashed = match hash_copy(blob, Some(&mut copy), size) {
        Ok(h) => h,
        Err(CopyError::TooLarge) => return Err(mismatch("grew while it was read".into())),
        Err(CopyError::Read(source)) => {
            return Err(ArmoryError::Store {
                action: "read the blob",
                path: blob_path.to_owned(),
                source,
            });
        }
        Err(CopyError::Write(source)) => return Err(scratch("write")(source)),
    };
    if hashed.size != size {
        return Err(mismatch(format!(
            "is {} bytes, the index says {size}",
            hashed.size
        )));
    }
    if hashed.digest != *digest {
        return Err(mismatch(format!("hashes to {}", hashed.digest)));
    }
    check_executable(&hashed.head, digest.as_str())?;
    copy.flush().map_err(scratch("write"))?;
    copy.set_permissions(std::fs::Permissions::from_mode(0o555))
        .map_err(scratch("seal"))?;
    let written = copy.metadata().map_err(scratch("inspect"))?;
    // Close the only writable descriptor before anyone can exec the copy (ETXTBSY).
    drop(copy);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(scratch("reopen"))?;
    let reopened = file.metadata().map_err(scratch("inspect"))?;
    if (reopened.dev(), reopened.ino(), reopened.len()) != (written.dev(), written.ino(), size) {
        return Err(ArmoryError::Scratch {
            action: "reopen",
            path: path.to_owned(),
            source: std::io::Error::other("the copy was replaced while it was being sealed"),
        });
    }
    Ok((file, size))
}

/// Makes a fresh 0700 directory under `scratch` and locks it; removes directories left by
/// runners that died (their lock is free).
fn private_dir(scratch: &Path) -> Result<(PathBuf, File), ArmoryError> {
    fsperm::ensure_private_dir(scratch, "tool scratch directory")
        .map_err(|source| ArmoryError::Untrusted { source })?;
    remove_stale(scratch);
    // Made and locked under a dot-name that `remove_stale` skips, then renamed into view:
    // another runner's cleanup never sees it unlocked. (The flock follows the inode.)
    let id = uuid::Uuid::new_v4().to_string();
    let fresh = scratch.join(format!(".new-{id}"));
    let dir = scratch.join(&id);
    let fail = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| ArmoryError::Scratch {
            action,
            path,
            source,
        }
    };
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&fresh)
        .map_err(fail("create", &fresh))?;
    let lock = File::open(&fresh)
        .and_then(|d| d.try_lock().map_err(std::io::Error::from).map(|()| d))
        .map_err(fail("lock", &fresh))?;
    std::fs::rename(&fresh, &dir).map_err(fail("rename", &fresh))?;
    Ok((dir, lock))
}

fn remove_stale(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return;
    };
    for item in entries.flatten() {
        let path = item.path();
        let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || item.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(handle) = File::open(&path) else {
            continue;
        };
        // Locked: a live ResolvedTool owns it. Free: its owner died.
        if handle.try_lock().is_ok()
            && let Err(e) = std::fs::remove_dir_all(&path)
        {
            tracing::warn!(dir = %path.display(), error = %e, "failed to remove a stale tool copy");
        }
    }
}
