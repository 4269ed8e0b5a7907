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
use std::io::Write as _;
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
        let meta = std::fs::symlink_metadata(path).ok()?;
        if let Err(e) = fsperm::check_metadata(&meta, path, "compiled plugin") {
            tracing::warn!(error = %e, "ignoring untrusted compiled plugin");
            return None;
        }
        if !meta.is_file() {
            return None;
        }
        #[allow(unsafe_code)]
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output. The file
        // lives in a 0700 directory owned by the runner (checked when the cache was
        // opened), is itself owned by the runner and not group/world writable (checked
        // above), and was written by `write_atomically` from `Component::serialize`.
        // wasmtime additionally checks the header and engine compatibility and fails
        // cleanly on a mismatch.
        let result = unsafe { Component::deserialize_file(engine, path) };
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

fn write_atomically(path: &Path, component: &Component) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry")
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let result = f
        .write_all(&bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
