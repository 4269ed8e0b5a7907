//! One pass over a tool's bytes: SHA-256 of every byte read, optionally written to a copy
//! at the same time, bounded in size, keeping the first bytes for the format check. And
//! the one way blobs are opened (no symlinks, no blocking on FIFOs). No policy here.

use super::MAX_SHEBANG_LEN;
use crate::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

const CHUNK: usize = 256 * 1024;

/// The outcome of hashing a stream.
pub(crate) struct Hashed {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    /// The first [`MAX_SHEBANG_LEN`] bytes (fewer only if the stream was shorter).
    pub(crate) head: Vec<u8>,
}

pub(crate) enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
    TooLarge,
}

/// Reads `src` to its end (at most `limit` bytes), hashing every byte and writing it to
/// `dst` if given. The digest describes exactly the bytes written.
pub(crate) fn hash_copy(
    src: &mut dyn Read,
    mut dst: Option<&mut dyn Write>,
    limit: u64,
) -> Result<Hashed, CopyError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    let mut head = Vec::with_capacity(MAX_SHEBANG_LEN);
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        let chunk = &buf[..n];
        size += n as u64;
        if size > limit {
            return Err(CopyError::TooLarge);
        }
        if head.len() < MAX_SHEBANG_LEN {
            let take = (MAX_SHEBANG_LEN - head.len()).min(n);
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(chunk);
        if let Some(d) = dst.as_mut() {
            d.write_all(chunk).map_err(CopyError::Write)?;
        }
    }
    Ok(Hashed {
        digest: Digest::from_hasher(hasher),
        size,
        head,
    })
}

/// Opens a blob for reading without following a symlink or blocking on a FIFO.
pub(crate) fn open_blob(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}
