//! Trust checks on files and directories the runner relies on (key set, armory, plugin
//! cache, state), in the spirit of OpenSSH's `StrictModes`: a path that another user owns,
//! or that group or others can write, could have been swapped under us, so it is refused
//! with a message that says how to fix it. This module only inspects metadata; it never
//! changes permissions and never follows a symlink for the final component.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Why a path is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum PermError {
    #[error("failed to inspect {what} {path}")]
    Inspect {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{what} {path} is owned by uid {owner}, not by the runner (uid {runner}); \
         fix with: chown {runner} {path}"
    )]
    Owner {
        what: &'static str,
        path: PathBuf,
        owner: u32,
        runner: u32,
    },
    #[error(
        "{what} {path} is writable by group or others (mode {mode:04o}); \
         fix with: chmod go-w {path}"
    )]
    Writable {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("{what} {path} is a symbolic link; point the configuration at the real path")]
    Symlink { what: &'static str, path: PathBuf },
}

/// Refuses `path` unless it is owned by the effective uid (or root) and not writable by
/// group or others. A symlink as the final component is refused.
pub fn check_trusted(path: &Path, what: &'static str) -> Result<std::fs::Metadata, PermError> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| PermError::Inspect {
        what,
        path: path.to_owned(),
        source,
    })?;
    check_metadata(&meta, path, what)?;
    Ok(meta)
}

/// The same checks on metadata already obtained (for example from an open descriptor,
/// which avoids a check-then-open race).
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
    check_trusted(dir, what)?;
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_modes_are_refused_with_a_fix() {
        let dir = tempfile::tempdir().unwrap();
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
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("real");
        std::fs::write(&f, "x").unwrap();
        let l = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(matches!(
            check_trusted(&l, "key set"),
            Err(PermError::Symlink { .. })
        ));
    }
}
