//! `add`: a tool's bytes into the store, hashed while they are staged (temp file, fsync,
//! rename into `blobs/sha256`, directory fsync), then recorded in the index. With an
//! expectation (a registry pull) the bytes must be exactly the announced size and digest,
//! or nothing is stored. A staging file never outlives a failed writer for long: the next
//! writer removes it under the lock. This module must not authorize or hand out tools.

use super::hashing::{CopyError, hash_copy};
use super::index::{Entry, Index};
use super::store::{Added, stamp};
use super::{Armory, ArmoryError, check_executable, check_label};
use crate::digest::Digest;
use chrono::{DateTime, Utc};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Why staging a new blob failed.
#[derive(Debug)]
pub(crate) enum StageError {
    /// The source could not be read (for a pull: the transfer broke off).
    Read(std::io::Error),
    /// The bytes are not the ones expected (size or digest); nothing was stored.
    Unexpected {
        problem: String,
    },
    Armory(ArmoryError),
}

impl From<ArmoryError> for StageError {
    fn from(e: ArmoryError) -> Self {
        StageError::Armory(e)
    }
}

impl Armory {
    /// Adds the bytes of `src` under their digest, named `name`, not yet authorized.
    /// Adding a digest that is already there changes nothing (and repairs its blob if it
    /// was damaged).
    pub fn add(
        &self,
        src: &mut dyn Read,
        name: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Added, ArmoryError> {
        self.add_expecting(src, None, name, by, now)
            .map_err(|e| match e {
                StageError::Armory(a) => a,
                StageError::Read(source) => ArmoryError::Store {
                    action: "read the new tool",
                    path: PathBuf::from(name),
                    source,
                },
                // Unreachable without an expectation; fail closed all the same.
                StageError::Unexpected { problem } => ArmoryError::Index {
                    path: PathBuf::from(name),
                    problem,
                },
            })
    }

    /// [`Armory::add`], refusing (and storing nothing) unless the bytes are exactly
    /// `expect`'s size and digest when given: the read stops one byte past the expected
    /// size, so a stream longer than announced is never stored or buffered.
    pub(crate) fn add_expecting(
        &self,
        src: &mut dyn Read,
        expect: Option<(&Digest, u64)>,
        name: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Added, StageError> {
        check_label("--name", name)?;
        check_label("--by", by)?;
        let _lock = self.lock()?;
        let layout = &self.layout;
        self.clean_staging()?;
        let tmp = layout.tmp().join(format!("blob.{}", uuid::Uuid::new_v4()));
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| ArmoryError::Store {
                action,
                path,
                source,
            }
        };
        let mut staged = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        let limit = expect.map_or(self.max_tool_bytes, |(_, size)| size);
        let result = hash_copy(src, Some(&mut staged), limit);
        let discard = |staged: std::fs::File| {
            drop(staged);
            let _ = std::fs::remove_file(&tmp);
        };
        let hashed = match result {
            Ok(h) => h,
            Err(e) => {
                discard(staged);
                return Err(match e {
                    CopyError::Read(source) => StageError::Read(source),
                    CopyError::Write(source) => StageError::Armory(ArmoryError::Store {
                        action: "write",
                        path: tmp.clone(),
                        source,
                    }),
                    CopyError::TooLarge if expect.is_some() => StageError::Unexpected {
                        problem: format!("it sent more than the {limit} bytes announced"),
                    },
                    CopyError::TooLarge => StageError::Armory(ArmoryError::TooLarge {
                        what: name.to_owned(),
                        limit,
                    }),
                });
            }
        };
        if let Some((digest, size)) = expect {
            let problem = if hashed.size != size {
                Some(format!(
                    "it ended after {} of the {size} bytes announced (truncated)",
                    hashed.size
                ))
            } else if hashed.digest != *digest {
                Some(format!("its bytes hash to {}, not {digest}", hashed.digest))
            } else {
                None
            };
            if let Some(problem) = problem {
                discard(staged);
                return Err(StageError::Unexpected { problem });
            }
        }
        if let Err(e) = check_executable(&hashed.head, name) {
            discard(staged);
            return Err(e.into());
        }
        staged
            .set_permissions(std::fs::Permissions::from_mode(0o444))
            .map_err(io("set the mode of", &tmp))?;
        staged.sync_all().map_err(io("sync", &tmp))?;
        drop(staged);

        let blob = layout.blob(&hashed.digest);
        if self.blob_problem(&hashed.digest, hashed.size).is_none() {
            std::fs::remove_file(&tmp).map_err(io("remove", &tmp))?;
        } else {
            // Absent or damaged: the staged copy (already durable) takes its place.
            std::fs::rename(&tmp, &blob).map_err(io("move the new blob to", &blob))?;
            super::sync_dir(&layout.blobs())?;
        }

        let mut index = Index::read(layout)?;
        let new = !index.tools.contains_key(&hashed.digest);
        if new {
            index.tools.insert(
                hashed.digest.clone(),
                Entry {
                    name: name.to_owned(),
                    size: hashed.size,
                    added: stamp(by, now),
                    authorized: None,
                    revoked: None,
                },
            );
            index.write(layout)?;
        }
        Ok(Added {
            digest: hashed.digest,
            size: hashed.size,
            new,
        })
    }
}
