//! The armory index (`index.json`): per-digest metadata and authorization state, read
//! strictly from a trusted descriptor and replaced atomically (temp file, fsync, rename,
//! fsync of the directory), so a reader sees the old index or the new one, never a mix.
//! This module must not touch blobs.

use super::{ArmoryError, Layout};
use crate::digest::Digest;
use crate::fsperm;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;

/// Largest index accepted (tens of thousands of tools).
const MAX_INDEX_BYTES: u64 = 16 * 1024 * 1024;
const INDEX_VERSION: u32 = 1;

/// Who did something, and when (RFC 3339, UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// Who did it (`--by`, or the user who ran the command).
    pub by: String,
    /// The time (RFC 3339, UTC, whole seconds).
    pub at: String,
}

/// One tool's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The name the operator gave the tool.
    pub name: String,
    /// The tool's size, in bytes.
    pub size: u64,
    /// Who added the tool, and when.
    pub added: Stamp,
    /// Set by `armory authorize`; a tool without it never runs.
    pub authorized: Option<Stamp>,
    /// Set by `armory revoke`; permanent, and wins over `authorized`.
    pub revoked: Option<Stamp>,
}

impl Entry {
    /// Whether a task may run this tool.
    pub fn runnable(&self) -> bool {
        self.authorized.is_some() && self.revoked.is_none()
    }

    /// `authorized`, `pending` or `revoked`.
    pub fn status(&self) -> &'static str {
        match (&self.authorized, &self.revoked) {
            (_, Some(_)) => "revoked",
            (Some(_), None) => "authorized",
            (None, None) => "pending",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    tools: BTreeMap<String, Entry>,
}

/// The parsed index, keyed by digest.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub(crate) tools: BTreeMap<Digest, Entry>,
}

impl Index {
    /// Reads the index; a missing file is an empty armory.
    pub(crate) fn read(layout: &Layout) -> Result<Self, ArmoryError> {
        let path = layout.index();
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ArmoryError::Store {
                    action: "open the index",
                    path,
                    source,
                });
            }
        };
        let meta = file.metadata().map_err(|source| ArmoryError::Store {
            action: "inspect the index",
            path: path.clone(),
            source,
        })?;
        fsperm::check_metadata(&meta, &path, "armory index")
            .map_err(|source| ArmoryError::Untrusted { source })?;
        let problem = |problem: String| ArmoryError::Index {
            path: path.clone(),
            problem,
        };
        if !meta.is_file() {
            return Err(problem("it is not a regular file".into()));
        }
        if meta.len() > MAX_INDEX_BYTES {
            return Err(problem(format!(
                "it is larger than {MAX_INDEX_BYTES} bytes"
            )));
        }
        let mut bytes = Vec::new();
        file.take(MAX_INDEX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| ArmoryError::Store {
                action: "read the index",
                path: path.clone(),
                source,
            })?;
        let value = crate::json::parse_strict(&bytes, 8).map_err(|e| problem(e.to_string()))?;
        let parsed: File = serde_json::from_value(value).map_err(|e| problem(e.to_string()))?;
        if parsed.version != INDEX_VERSION {
            return Err(problem(format!(
                "version {} is not supported (this runner reads {INDEX_VERSION})",
                parsed.version
            )));
        }
        let mut tools = BTreeMap::new();
        for (k, v) in parsed.tools {
            let d = Digest::parse(&k).map_err(|e| problem(e.to_string()))?;
            tools.insert(d, v);
        }
        Ok(Self { tools })
    }

    /// Replaces the index atomically. Call with the armory lock held.
    pub(crate) fn write(&self, layout: &Layout) -> Result<(), ArmoryError> {
        let file = File {
            version: INDEX_VERSION,
            tools: self
                .tools
                .iter()
                .map(|(d, e)| (d.as_str().to_owned(), e.clone()))
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| ArmoryError::Index {
            path: layout.index(),
            problem: e.to_string(),
        })?;
        bytes.push(b'\n');
        let index = layout.index();
        crate::durable::replace_via(&layout.tmp(), &index, &bytes, 0o600).map_err(|source| {
            ArmoryError::Store {
                action: "replace",
                path: index.clone(),
                source,
            }
        })
    }
}
