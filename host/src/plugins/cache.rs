//! The on-disk cache of compiled components, so a second process deserializes (about
//! 0.1 ms) instead of recompiling (about 100 ms).
//!
//! Entries are keyed by the component's sha256 and the engine fingerprint, written
//! atomically (temporary file, fsync, rename) with mode 0600 in a runner-owned 0700
//! directory. Loading compiled code is running native code, so the directory and each
//! entry must pass the ownership and mode checks of `fsperm`; anything suspicious is
//! ignored and the component is compiled afresh. The cache is an optimisation only: it
//! can never make a plugin load that would not load without it.

use crate::fsperm;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components are kept, if anywhere.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

impl CompileCache {
    /// A cache in `dir`, created 0700 if missing. An untrusted or uncreatable directory
    /// disables the cache with a warning; it never fails the runner.
    pub fn at(dir: &Path) -> Self {
        match fsperm::ensure_private_dir(dir, "plugin cache directory") {
            Ok(()) => Self {
                dir: Some(dir.to_owned()),
            },
            Err(e) => {
                tracing::warn!(error = %e, "plugin compile cache disabled; plugins are compiled in memory");
                Self { dir: None }
            }
        }
    }

    /// No cache: every load compiles.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// Returns the compiled component for `bytes`, from the cache when a trusted entry
    /// exists, otherwise by compiling (and then storing the result).
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256_hex: &str,
        label: &str,
    ) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else {
            return compile(engine, bytes, label);
        };
        let path = dir.join(format!(
            "{sha256_hex}-{}.cwasm",
            super::engine::fingerprint(engine)
        ));
        if let Some(component) = self.read(engine, &path) {
            return Ok(component);
        }
        let component = compile(engine, bytes, label)?;
        if let Err(e) = write_atomically(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "failed to store compiled plugin");
        }
        Ok(component)
    }

    fn read(&self, engine: &Engine, path: &Path) -> Option<Component> {
        if std::fs::symlink_metadata(path).is_err() {
            return None;
        }
        // Checked on the descriptor reached by a walk from `/` (the entry and every
        // directory above it), and deserialized from that same descriptor.
        let file = match fsperm::open_file(path, "compiled plugin") {
            Ok((file, _)) => file,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring untrusted compiled plugin");
                return None;
            }
        };
        let by_fd = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&file)
        ));
        #[allow(unsafe_code)]
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output. The file
        // is the descriptor checked above: owned by the runner, not group/world writable,
        // in directories nobody else can write, and written by `write_atomically` from
        // `Component::serialize`. `/proc/self/fd/N` names that open file, not a path that
        // could be swapped. wasmtime additionally checks the header and engine
        // compatibility and fails cleanly on a mismatch.
        let result = unsafe { Component::deserialize_file(engine, &by_fd) };
        drop(file);
        match result {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "stale compiled plugin; recompiling");
                None
            }
        }
    }
}

fn compile(engine: &Engine, bytes: &[u8], label: &str) -> wasmtime::Result<Component> {
    let started = std::time::Instant::now();
    tracing::info!(
        plugin = label,
        "compiling plugin (first run; cached afterwards)"
    );
    let c = Component::new(engine, bytes)?;
    tracing::debug!(
        plugin = label,
        ms = started.elapsed().as_millis() as u64,
        "compiled plugin"
    );
    Ok(c)
}

/// The cache's one write: the shared atomic replace, which also fsyncs the directory.
fn write_atomically(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    crate::durable::replace(path, &bytes, 0o600)
}
