//! Writing and auditing the armory: `authorize`, `revoke`, `list` and `verify` (re-hash
//! every blob); `add` is in `add.rs`.
//! Writers hold the armory lock for their whole read-modify-write; crash safety comes from
//! ordering: a blob is complete and durable before the index names it, and the index is
//! replaced atomically. This module must not hand out tool bytes (that is `resolve`).

use super::hashing::{CopyError, hash_copy, open_blob};
use super::index::{Entry, Index, Stamp};
use super::{Armory, ArmoryError, check_label};
use crate::digest::Digest;
use crate::fsperm;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// What `add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The tool's digest.
    pub digest: Digest,
    pub(crate) size: u64,
    /// False when the armory already held this digest (its state is unchanged).
    pub new: bool,
}

/// What `verify` found wrong with one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "problem")]
pub enum BlobProblem {
    /// The index lists the digest but its blob is absent.
    Missing,
    /// The blob's path is not a regular file.
    NotARegularFile,
    /// The blob fails the ownership and permission checks.
    Untrusted {
        /// What the check found.
        detail: String,
    },
    /// The blob's size differs from the size recorded in the index.
    SizeMismatch {
        /// The recorded size, in bytes.
        expected: u64,
        /// The blob's size, in bytes.
        actual: u64,
    },
    /// The blob's contents do not hash to its digest.
    DigestMismatch {
        /// The digest the contents hash to.
        actual: String,
    },
    /// The blob could not be opened or read.
    Unreadable {
        /// The I/O error, as text.
        detail: String,
    },
    /// In `blobs/sha256` but not in the index (left by an interrupted `add`; harmless).
    Orphan,
}

/// One blob `verify` found a problem with.
#[derive(Debug, Clone, Serialize)]
pub struct BlobReport {
    /// The blob's digest.
    pub digest: String,
    /// What is wrong with it.
    #[serde(flatten)]
    pub problem: BlobProblem,
}

/// The result of `verify`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// How many indexed tools were checked.
    pub checked: usize,
    /// The blobs with problems, orphans included.
    pub problems: Vec<BlobReport>,
}

impl VerifyReport {
    /// True when an indexed blob is damaged (orphans alone are not corruption).
    pub fn corrupt(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.problem != BlobProblem::Orphan)
    }
}

pub(crate) fn stamp(by: &str, now: DateTime<Utc>) -> Stamp {
    Stamp {
        by: by.to_owned(),
        at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

impl Armory {
    /// True when the index names `digest` and its blob is sound.
    pub fn holds(&self, digest: &Digest) -> Result<bool, ArmoryError> {
        let index = Index::read(&self.layout)?;
        Ok(index
            .tools
            .get(digest)
            .is_some_and(|e| self.blob_problem(digest, e.size).is_none()))
    }

    /// Authorizes a tool to run. Its blob is re-hashed first: authorizing vouches for the
    /// bytes in the store, so they must be the ones that were added.
    pub fn authorize(
        &self,
        digest: &Digest,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Entry, ArmoryError> {
        check_label("--by", by)?;
        let _lock = self.lock()?;
        let mut index = Index::read(&self.layout)?;
        let entry = index
            .tools
            .get_mut(digest)
            .ok_or_else(|| ArmoryError::Unknown {
                digest: digest.to_string(),
            })?;
        if let Some(r) = &entry.revoked {
            return Err(ArmoryError::Revoked {
                digest: digest.to_string(),
                at: r.at.clone(),
                by: r.by.clone(),
            });
        }
        if let Some(problem) = self.blob_problem(digest, entry.size) {
            return Err(ArmoryError::Mismatch {
                digest: digest.to_string(),
                path: self.layout.blob(digest),
                problem: describe(&problem),
            });
        }
        if entry.authorized.is_none() {
            entry.authorized = Some(stamp(by, now));
            let out = entry.clone();
            index.write(&self.layout)?;
            return Ok(out);
        }
        Ok(entry.clone())
    }

    /// Revokes a tool, permanently.
    pub fn revoke(
        &self,
        digest: &Digest,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Entry, ArmoryError> {
        check_label("--by", by)?;
        let _lock = self.lock()?;
        let mut index = Index::read(&self.layout)?;
        let entry = index
            .tools
            .get_mut(digest)
            .ok_or_else(|| ArmoryError::Unknown {
                digest: digest.to_string(),
            })?;
        if entry.revoked.is_none() {
            entry.revoked = Some(stamp(by, now));
            let out = entry.clone();
            index.write(&self.layout)?;
            return Ok(out);
        }
        Ok(entry.clone())
    }

    /// Every tool, by digest.
    pub fn list(&self) -> Result<Vec<(Digest, Entry)>, ArmoryError> {
        Ok(Index::read(&self.layout)?.tools.into_iter().collect())
    }

    /// Re-hashes every indexed blob and looks for blobs the index does not name.
    pub fn verify(&self) -> Result<VerifyReport, ArmoryError> {
        let index = Index::read(&self.layout)?;
        let mut report = VerifyReport::default();
        for (digest, entry) in &index.tools {
            report.checked += 1;
            if let Some(problem) = self.blob_problem(digest, entry.size) {
                report.problems.push(BlobReport {
                    digest: digest.to_string(),
                    problem,
                });
            }
        }
        let blobs = self.layout.blobs();
        if let Ok(dir) = std::fs::read_dir(&blobs) {
            for item in dir.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                let known = Digest::parse(&format!("sha256:{name}"))
                    .is_ok_and(|d| index.tools.contains_key(&d));
                if !known {
                    report.problems.push(BlobReport {
                        digest: format!("sha256:{}", crate::text::printable(&name)),
                        problem: BlobProblem::Orphan,
                    });
                }
            }
        }
        Ok(report)
    }

    /// Checks one blob in place: present, a trusted regular file, the right size, the right
    /// hash. `None` when it is sound.
    pub(super) fn blob_problem(&self, digest: &Digest, size: u64) -> Option<BlobProblem> {
        let path = self.layout.blob(digest);
        let file = match open_blob(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(BlobProblem::Missing);
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Some(BlobProblem::NotARegularFile);
            }
            Err(e) => {
                return Some(BlobProblem::Unreadable {
                    detail: e.to_string(),
                });
            }
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => {
                return Some(BlobProblem::Unreadable {
                    detail: e.to_string(),
                });
            }
        };
        if !meta.is_file() {
            return Some(BlobProblem::NotARegularFile);
        }
        if let Err(e) = fsperm::check_metadata(&meta, &path, "armory blob") {
            return Some(BlobProblem::Untrusted {
                detail: e.to_string(),
            });
        }
        if meta.len() != size {
            return Some(BlobProblem::SizeMismatch {
                expected: size,
                actual: meta.len(),
            });
        }
        let mut file = file;
        match hash_copy(&mut file, None, size) {
            Ok(h) if h.digest == *digest => None,
            Ok(h) => Some(BlobProblem::DigestMismatch {
                actual: h.digest.to_string(),
            }),
            Err(CopyError::TooLarge) => Some(BlobProblem::SizeMismatch {
                expected: size,
                actual: size + 1,
            }),
            Err(CopyError::Read(e) | CopyError::Write(e)) => Some(BlobProblem::Unreadable {
                detail: e.to_string(),
            }),
        }
    }

    /// Removes staging files left by writers that died. Call with the lock held: every
    /// live writer holds it while its staging file exists.
    pub(super) fn clean_staging(&self) -> Result<(), ArmoryError> {
        let tmp = self.layout.tmp();
        let dir = std::fs::read_dir(&tmp).map_err(|source| ArmoryError::Store {
            action: "list",
            path: tmp.clone(),
            source,
        })?;
        for item in dir.flatten() {
            let path = item.path();
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "failed to remove a stale staging file");
            }
        }
        Ok(())
    }
}

/// One line for a person.
pub fn describe(problem: &BlobProblem) -> String {
    match problem {
        BlobProblem::Missing => "is missing".into(),
        BlobProblem::NotARegularFile => {
            "is not a regular file (a symlink, directory or device)".into()
        }
        BlobProblem::Untrusted { detail } => format!("is not trusted: {detail}"),
        BlobProblem::SizeMismatch { expected, actual } => {
            format!("is {actual} bytes, the index says {expected}")
        }
        BlobProblem::DigestMismatch { actual } => format!("hashes to {actual}"),
        BlobProblem::Unreadable { detail } => format!("cannot be read: {detail}"),
        BlobProblem::Orphan => "is not in the index (left by an interrupted add)".into(),
    }
}
