//! Durable file writes, shared by every store the runner keeps (armory index, event spool,
//! plugin compile cache, key files): one routine to replace a file atomically, one to
//! create a new private file, and the directory `fsync` that makes a name durable. Each
//! creates its file exclusively (`O_EXCL`), never follows a symlink, and fsyncs the file
//! and then its directory, so after a crash a reader finds the old content or the new,
//! never a torn file or a missing name. Callers wrap the `io::Error` in their own error
//! type; this module decides nothing about what is written.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Prefix of the temporary files [`replace`] leaves behind only if the process dies
/// between creating and renaming one; directory scanners skip names that start with it.
pub const TMP_PREFIX: &str = ".tmp-";

/// `fsync` of a directory: makes the names created, renamed or removed in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)?
        .sync_all()
}

/// Replaces `path` with `bytes` atomically and durably: a temporary file with `mode` in the
/// same directory, written and fsynced, renamed over `path`, then the directory fsynced.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent(path);
    replace_via(&dir, path, bytes, mode)
}

/// [`replace`], with the temporary file in `tmp_dir` (same filesystem as `path`), for
/// stores that keep their temporary files apart from their content.
pub fn replace_via(tmp_dir: &Path, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = tmp_dir.join(format!(
        "{TMP_PREFIX}{}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry")
    ));
    let result = write_new(&tmp, bytes, mode)
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| sync_dir(&parent(path)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `path`, which must not exist, holding `bytes` with `mode` (0600 for secrets),
/// durably: the file and then its directory are fsynced. Refuses to replace anything.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_new(path, bytes, mode)?;
    sync_dir(&parent(path))
}

/// Exclusive create, write, fsync of the file itself.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn replace_swaps_content_and_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("index.json");
        replace(&p, b"one", 0o600).unwrap();
        replace(&p, b"two", 0o640).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn create_new_refuses_to_replace_and_to_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.json");
        create_new(&p, b"secret", 0o600).unwrap();
        assert!(create_new(&p, b"other", 0o600).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"secret");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(create_new(&link, b"x", 0o600).is_err());
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn a_failed_replace_leaves_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing-dir").join("f");
        assert!(replace(&p, b"x", 0o600).is_err());
    }
}
