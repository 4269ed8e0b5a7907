//! The wasmtime side of edge-runner: one engine, plugin loading (embedded defaults or
//! digest-pinned files), the compile cache, and typed calls into verifier and
//! event-mapper components.
//!
//! Flow, top to bottom: `engine::build` -> `PluginHost::load_*` (read, pin check,
//! compile or deserialize, link, `InstancePre`, `info()`) -> a fresh `Store` per call
//! with fuel and a memory cap -> typed call -> any trap, exhausted budget or malformed
//! return becomes a [`PluginFault`], which callers turn into a refusal. This module must
//! not decide whether a task is acceptable; it only reports what the plugin said.

mod bindings;
pub mod cache;
pub mod contract;
pub mod embedded;
mod engine;
pub mod mapper;
mod store;
pub mod verifier;

pub use cache::CompileCache;
pub use engine::{PluginLimits, Residency};
pub use mapper::MapperPlugin;
pub use verifier::{
    AlgorithmInfo, CatalogueRow, VerifierChoice, VerifierPlugin, Verifiers, VerifyFailure,
};

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Trap};

/// The WIT package version this host implements (it also loads the previous one, adapted:
/// see [`contract`]).
pub const WIT_PACKAGE: &str = "edge-runner:plugin@0.2.0";

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in the binary.
    Builtin,
    /// Loaded from a file pinned by sha256 in the configuration.
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin => f.write_str("builtin"),
            Origin::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// A plugin file named in the configuration, with its required sha256 pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedFile {
    /// The plugin file.
    pub path: PathBuf,
    /// `sha256:<64 lowercase hex>`.
    pub sha256: String,
}

/// A plugin could not be loaded. These are configuration errors: the runner refuses to
/// start rather than run with a plugin it cannot trust.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The wasmtime engine could not be built or configured.
    #[error("failed to set up the WebAssembly engine")]
    Engine(#[source] wasmtime::Error),
    /// The plugin file could not be read.
    #[error("failed to read plugin {path}")]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The plugin file is over the size cap.
    #[error("plugin {path} is larger than {limit} bytes")]
    TooLarge {
        /// The plugin file.
        path: PathBuf,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The plugin file does not hash to its configured pin.
    #[error(
        "plugin {path} does not match its pin: the configuration expects {expected}, \
         the file hashes to {actual}; update the pin only if you trust the new file"
    )]
    DigestMismatch {
        /// The plugin file.
        path: PathBuf,
        /// The pinned digest (`sha256:<hex>`).
        expected: String,
        /// The file's digest (`sha256:<hex>`).
        actual: String,
    },
    /// The bytes are not a component wasmtime can compile (or load from the cache).
    #[error(
        "failed to compile plugin {label}: it is not a valid WebAssembly component (or the \
         host refused executable memory, e.g. under MemoryDenyWriteExecute)"
    )]
    Compile {
        /// The plugin: `builtin:<name>` or its file's path.
        label: String,
        /// The compiler's error.
        #[source]
        source: wasmtime::Error,
    },
    /// The component imports something outside the deny-all WASI surface plugins get.
    #[error(
        "plugin {label} imports an interface plugins are not granted (only the deny-all \
         wasi:cli and wasi:io surface is linked; no filesystem, network, clocks or random)"
    )]
    Ungranted {
        /// The plugin: `builtin:<name>` or its file's path.
        label: String,
        /// The linker's error.
        #[source]
        source: wasmtime::Error,
    },
    /// The component does not implement the world it was loaded as.
    #[error(
        "plugin {label} does not implement world `{world}` of {WIT_PACKAGE}; rebuild it \
         against this version of wit/"
    )]
    WrongWorld {
        /// The plugin: `builtin:<name>` or its file's path.
        label: String,
        /// The expected world (`verifier-plugin` or `event-mapper-plugin`).
        world: &'static str,
        /// wasmtime's error for the missing exports.
        #[source]
        source: wasmtime::Error,
    },
    /// The component exports a contract interface under a version this host does not load.
    #[error("plugin {label} was built for another version of the plugin contract: {found}")]
    UnsupportedContract {
        /// The plugin: `builtin:<name>` or its file's path.
        label: String,
        /// What it exports.
        found: contract::Unsupported,
    },
    /// An unpinned file examined by `plugin check` implements neither plugin world.
    #[error(
        "plugin {label} implements neither world `verifier-plugin` nor \
         `event-mapper-plugin` of {WIT_PACKAGE}; rebuild it against this version of wit/"
    )]
    NoWorld {
        /// The plugin file's path.
        label: String,
        /// wasmtime's error for the event-mapper world.
        #[source]
        source: wasmtime::Error,
    },
    /// The plugin's `info()` call faulted.
    #[error("plugin {label} failed while describing itself: {fault}")]
    Info {
        /// The plugin: `builtin:<name>` or its file's path.
        label: String,
        /// How the call faulted.
        fault: PluginFault,
    },
    /// The plugin's `info()` answer breaks a rule (a name or list out of bounds, ...).
    #[error("plugin {label} describes itself incorrectly: {problem}")]
    BadInfo {
        /// The plugin: `builtin:<name>` or its file's path.
        label: String,
        /// What is wrong with the answer.
        problem: String,
    },
    /// The configured choice of verifier plugins is inconsistent.
    #[error(transparent)]
    Selection(#[from] verifier::SelectError),
    /// A pinned verifier file is configured for an algorithm it does not implement.
    #[error("plugin {path} is configured for {alg} but implements only: {implemented}")]
    AlgorithmNotImplemented {
        /// The plugin file.
        path: PathBuf,
        /// The configured algorithm (JWS `alg`).
        alg: String,
        /// The algorithms the plugin says it implements, comma-separated.
        implemented: String,
    },
}

/// How a plugin call went wrong (as opposed to the plugin answering "no").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// The call used its whole fuel budget (a loop, or far too much work).
    OutOfFuel { budget: u64 },
    /// The plugin tried to grow its memory beyond the cap.
    MemoryLimit { limit: usize, attempted: usize },
    /// The plugin trapped (a panic, unreachable, out-of-bounds access, stack overflow).
    Trap(String),
    /// The plugin returned a value the host cannot accept (malformed canonical ABI data,
    /// out-of-range fields).
    BadReturn(String),
    /// The plugin could not be instantiated for the call.
    Instantiate(String),
}

/// A plugin call that faulted. Always a refusal, never an acceptance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin} {kind}")]
pub struct PluginFault {
    pub(crate) plugin: String,
    pub(crate) kind: FaultKind,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::OutOfFuel { budget } => {
                write!(
                    f,
                    "exhausted its fuel budget ({budget} units) and was stopped"
                )
            }
            FaultKind::MemoryLimit { limit, attempted } => write!(
                f,
                "tried to grow its memory to {attempted} bytes, beyond the limit of {limit}"
            ),
            FaultKind::Trap(t) => write!(f, "trapped: {t}"),
            FaultKind::BadReturn(m) => write!(f, "returned a malformed value: {m}"),
            FaultKind::Instantiate(m) => write!(f, "could not be instantiated: {m}"),
        }
    }
}

/// The engine, limits, cache and linkers shared by every plugin. Cloning is cheap (the
/// engine and linker are reference-counted) and shares the instance pool.
#[derive(Clone)]
pub struct PluginHost {
    engine: Engine,
    limits: PluginLimits,
    cache: CompileCache,
    linker: Linker<store::PluginState>,
}

impl fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHost")
            .field("limits", &self.limits)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// Plugin bytes ready to compile, with their identity.
struct LoadedBytes<'a> {
    bytes: std::borrow::Cow<'a, [u8]>,
    sha256: String,
    origin: Origin,
    label: String,
}

impl PluginHost {
    /// A host for a command that makes a few calls and exits ([`Residency::OneShot`]).
    pub fn new(limits: PluginLimits, cache: CompileCache) -> Result<Self, PluginError> {
        Self::with_residency(limits, cache, Residency::OneShot)
    }

    /// A host whose process makes many calls: pooled instances ([`Residency::LongLived`]).
    pub fn long_lived(limits: PluginLimits, cache: CompileCache) -> Result<Self, PluginError> {
        Self::with_residency(limits, cache, Residency::LongLived)
    }

    fn with_residency(
        limits: PluginLimits,
        cache: CompileCache,
        residency: Residency,
    ) -> Result<Self, PluginError> {
        let engine = engine::build(&limits, residency).map_err(PluginError::Engine)?;
        let mut linker = Linker::new(&engine);
        store::add_deny_all_wasi(&mut linker).map_err(PluginError::Engine)?;
        Ok(Self {
            engine,
            limits,
            cache,
            linker,
        })
    }

    /// The fuel and memory budgets every plugin call gets.
    pub fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    fn builtin_bytes(b: &embedded::Builtin) -> LoadedBytes<'static> {
        LoadedBytes {
            bytes: std::borrow::Cow::Borrowed(b.bytes),
            sha256: b.sha256.to_owned(),
            origin: Origin::Builtin,
            label: format!("builtin:{}", b.name),
        }
    }

    /// Reads a plugin file, bounded, and checks it against its pin before anything
    /// parses it.
    fn pinned_bytes(&self, file: &PinnedFile) -> Result<LoadedBytes<'static>, PluginError> {
        let read = |source| PluginError::Read {
            path: file.path.clone(),
            source,
        };
        // Opened once through a walk that checks the file and every directory above it
        // (a FIFO, a world-writable file or a swappable parent is refused), then read
        // through that descriptor only.
        let (f, _) = crate::fsperm::open_file(&file.path, "plugin file")
            .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::PermissionDenied, e)))?;
        let limit = self.limits.max_component_bytes;
        let mut bytes = Vec::new();
        f.take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() > limit {
            return Err(PluginError::TooLarge {
                path: file.path.clone(),
                limit,
            });
        }
        let actual = crate::digest::sha256_id(&bytes);
        if actual != file.sha256 {
            return Err(PluginError::DigestMismatch {
                path: file.path.clone(),
                expected: file.sha256.clone(),
                actual,
            });
        }
        Ok(LoadedBytes {
            bytes: std::borrow::Cow::Owned(bytes),
            sha256: actual,
            origin: Origin::File(file.path.clone()),
            label: file.path.display().to_string(),
        })
    }

    fn component(&self, loaded: &LoadedBytes<'_>) -> Result<Component, PluginError> {
        let hex = loaded.sha256.trim_start_matches("sha256:");
        self.cache
            .load(&self.engine, &loaded.bytes, hex, &loaded.label)
            .map_err(|source| PluginError::Compile {
                label: loaded.label.clone(),
                source,
            })
    }

    /// Turns a failed call into a fault description, using what the store recorded.
    fn classify(
        &self,
        plugin: &str,
        error: wasmtime::Error,
        store: &wasmtime::Store<store::PluginState>,
    ) -> PluginFault {
        let kind = if let Some(attempted) = store::memory_denied(store) {
            FaultKind::MemoryLimit {
                limit: self.limits.memory_bytes,
                attempted,
            }
        } else if let Some(trap) = error.downcast_ref::<Trap>() {
            match trap {
                Trap::OutOfFuel => {
                    FUEL_EXHAUSTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    FaultKind::OutOfFuel {
                        budget: self.limits.fuel,
                    }
                }
                other => FaultKind::Trap(other.to_string()),
            }
        } else {
            // Not a trap: the canonical ABI refused what the plugin returned (invalid
            // UTF-8, an out-of-bounds pointer, a bad discriminant).
            FaultKind::BadReturn(format!("{error:#}"))
        };
        PluginFault {
            plugin: plugin.to_owned(),
            kind,
        }
    }
}

/// A plugin file examined before it is pinned (`edge-runner plugin check`): the world it
/// implements decides the kind.
#[derive(Debug)]
pub enum Inspected {
    /// The file implements the verifier world.
    Verifier(VerifierPlugin),
    /// The file implements the event-mapper world.
    Mapper(MapperPlugin),
}

impl PluginHost {
    /// Loads a plugin file that has no pin yet, as a verifier or else as a mapper. The
    /// file is read bounded; its digest is computed here (to be pinned once it passes).
    pub fn inspect(&self, path: &Path) -> Result<Inspected, PluginError> {
        let read = |source| PluginError::Read {
            path: path.to_owned(),
            source,
        };
        let limit = self.limits.max_component_bytes;
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(read)?
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() > limit {
            return Err(PluginError::TooLarge {
                path: path.to_owned(),
                limit,
            });
        }
        let sha256 = crate::digest::sha256_id(&bytes);
        let loaded = |bytes: &[u8]| LoadedBytes {
            bytes: std::borrow::Cow::Owned(bytes.to_vec()),
            sha256: sha256.clone(),
            origin: Origin::File(path.to_owned()),
            label: path.display().to_string(),
        };
        match self.load_verifier_bytes(loaded(&bytes)) {
            Err(PluginError::WrongWorld { .. }) => {}
            other => return other.map(Inspected::Verifier),
        }
        match self.load_mapper_bytes(loaded(&bytes)) {
            Err(PluginError::WrongWorld { label, source, .. }) => {
                Err(PluginError::NoWorld { label, source })
            }
            other => other.map(Inspected::Mapper),
        }
    }
}

/// Plugin calls of this process that ran out of fuel (a metric of `serve`).
static FUEL_EXHAUSTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many plugin calls of this process ran out of fuel so far.
pub fn fuel_exhaustions() -> u64 {
    FUEL_EXHAUSTIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Bounds and sanitizes text a plugin returned before it reaches logs or events.
pub(crate) fn plugin_text(s: &str) -> String {
    crate::text::printable(s)
}

/// The default directory for the compile cache under a state directory.
pub fn cache_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("plugin-cache")
}
