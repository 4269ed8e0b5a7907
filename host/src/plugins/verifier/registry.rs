//! The verifier for each algorithm, loaded: the plan of `select` (embedded defaults and
//! the configured choices) turned into loaded plugins, each embedded one checked against
//! its row in `plugins/shipped.toml`. An algorithm with no entry is not accepted.

use super::select::{self, Planned, VerifierChoice};
use super::{VerifierPlugin, VerifyFailure};
use crate::plugins::{Origin, PinnedFile, PluginError, PluginHost, embedded};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// The loaded verifiers, by algorithm.
pub struct Verifiers {
    host: PluginHost,
    by_alg: BTreeMap<String, Arc<VerifierPlugin>>,
    /// Algorithms whose embedded backend [`Verifiers::load_for`] skipped, with its name.
    not_loaded: BTreeMap<String, &'static str>,
}

impl fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.by_alg.iter().map(|(k, v)| (k, &v.name)))
            .finish()
    }
}

/// One row of `edge-runner plugins`: a backend that can serve an algorithm.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CatalogueRow {
    /// The JWS `alg` it serves.
    pub algorithm: String,
    /// The backend name (embedded) or the plugin's own name (a file).
    pub backend: String,
    /// The plugin's version, when it was loaded.
    pub version: Option<String>,
    /// The plugin contract version it was built against (embedded backends: the current).
    pub contract: &'static str,
    /// `builtin` or `file:<path>`.
    pub origin: String,
    /// The component's digest (`sha256:<hex>`).
    pub sha256: String,
    /// The backend serving this algorithm.
    pub active: bool,
    /// The backend that serves it when the configuration names none.
    pub default: bool,
}

impl Verifiers {
    /// Loads the verifier of every algorithm: embedded defaults and the configured choices
    /// (`alg` -> a backend name or a pinned file).
    pub fn load(
        host: PluginHost,
        choices: &BTreeMap<String, VerifierChoice>,
    ) -> Result<Self, PluginError> {
        Self::load_filtered(host, choices, |_| true)
    }

    /// Like [`Verifiers::load`], but of the embedded backends only those serving one of
    /// `algorithms` (the key set's): each one skipped saves a process its loading.
    /// Configured files are always loaded, so a broken pin fails every command; a
    /// configured backend name is always checked.
    pub fn load_for(
        host: PluginHost,
        choices: &BTreeMap<String, VerifierChoice>,
        algorithms: &BTreeSet<&str>,
    ) -> Result<Self, PluginError> {
        Self::load_filtered(host, choices, |alg| algorithms.contains(alg))
    }

    fn load_filtered(
        host: PluginHost,
        choices: &BTreeMap<String, VerifierChoice>,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Self, PluginError> {
        let plan = select::plan(embedded::VERIFIERS, choices)?;
        let mut by_alg = BTreeMap::new();
        let mut not_loaded = BTreeMap::new();
        // An embedded backend serving several algorithms loads once.
        let mut builtins: BTreeMap<&str, Arc<VerifierPlugin>> = BTreeMap::new();
        for (alg, planned) in plan {
            let plugin = match planned {
                Planned::Builtin(backend) => {
                    if !wanted(&alg) {
                        not_loaded.insert(alg, backend.name);
                        continue;
                    }
                    match builtins.get(backend.name) {
                        Some(p) => Arc::clone(p),
                        None => {
                            let p = Arc::new(load_builtin(&host, backend)?);
                            builtins.insert(backend.name, Arc::clone(&p));
                            p
                        }
                    }
                }
                Planned::File(file) => Arc::new(load_file(&host, &alg, file)?),
            };
            by_alg.insert(alg, plugin);
        }
        Ok(Self {
            host,
            by_alg,
            not_loaded,
        })
    }

    /// Every algorithm this runner can verify: loaded, or embedded and not needed yet.
    pub fn available(&self) -> Vec<&str> {
        let mut all: BTreeSet<&str> = self.by_alg.keys().map(String::as_str).collect();
        all.extend(self.not_loaded.keys().map(String::as_str));
        all.into_iter().collect()
    }

    /// The plugin that verifies `alg`, if any.
    pub fn get(&self, alg: &str) -> Option<&VerifierPlugin> {
        self.by_alg.get(alg).map(|p| p.as_ref())
    }

    /// Every (algorithm, plugin) pair, sorted by algorithm.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &VerifierPlugin)> {
        self.by_alg.iter().map(|(a, p)| (a.as_str(), p.as_ref()))
    }

    /// Every backend that can serve each algorithm: the embedded ones, and the configured
    /// file where there is one, with which one is active. Sorted by algorithm, then the
    /// active one first.
    pub fn catalogue(&self) -> Vec<CatalogueRow> {
        let mut algorithms: BTreeSet<&str> = self.by_alg.keys().map(String::as_str).collect();
        algorithms.extend(
            embedded::VERIFIERS
                .iter()
                .flat_map(|b| b.algorithms.iter().copied()),
        );
        let mut rows = Vec::new();
        for alg in algorithms {
            let active = self.by_alg.get(alg);
            let active_name = active
                .filter(|p| p.origin == Origin::Builtin)
                .map(|p| p.name.as_str())
                .or_else(|| self.not_loaded.get(alg).copied());
            let mut for_alg = Vec::new();
            if let Some(p) = active.filter(|p| p.origin != Origin::Builtin) {
                for_alg.push(CatalogueRow {
                    algorithm: alg.to_owned(),
                    backend: p.name.clone(),
                    version: Some(p.version.clone()),
                    contract: p.contract().version(),
                    origin: p.origin.to_string(),
                    sha256: p.sha256.clone(),
                    active: true,
                    default: false,
                });
            }
            for b in embedded::VERIFIERS
                .iter()
                .filter(|b| b.algorithms.contains(&alg))
            {
                let is_active = active_name == Some(b.name);
                for_alg.push(CatalogueRow {
                    algorithm: alg.to_owned(),
                    backend: b.name.to_owned(),
                    version: active
                        .filter(|p| is_active && p.origin == Origin::Builtin)
                        .map(|p| p.version.clone()),
                    contract: super::super::contract::CURRENT,
                    origin: Origin::Builtin.to_string(),
                    sha256: b.sha256.to_owned(),
                    active: is_active,
                    default: b.default_for.contains(&alg),
                });
            }
            for_alg.sort_by_key(|r| !r.active);
            rows.extend(for_alg);
        }
        rows
    }

    /// The plugin host the verifiers run on.
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// See [`PluginHost::validate_key`].
    pub fn validate_key(
        &self,
        plugin: &VerifierPlugin,
        alg: &str,
        members: &[(String, String)],
    ) -> Result<(), VerifyFailure> {
        self.host.validate_key(plugin, alg, members)
    }

    /// See [`PluginHost::verify`].
    pub fn verify(
        &self,
        plugin: &VerifierPlugin,
        alg: &str,
        members: &[(String, String)],
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyFailure> {
        self.host
            .verify(plugin, alg, members, signing_input, signature)
    }
}

/// Loads an embedded backend and checks that it is what `plugins/shipped.toml` says: its
/// name and exactly its algorithms (which `load_for` relies on to skip it).
fn load_builtin(
    host: &PluginHost,
    backend: &embedded::Builtin,
) -> Result<VerifierPlugin, PluginError> {
    let plugin = host.load_verifier_bytes(PluginHost::builtin_bytes(backend))?;
    let declared: BTreeSet<&str> = plugin.algorithms.iter().map(|a| a.name.as_str()).collect();
    let listed: BTreeSet<&str> = backend.algorithms.iter().copied().collect();
    if declared != listed || plugin.name != backend.name {
        return Err(PluginError::BadInfo {
            label: format!("builtin:{}", backend.name),
            problem: format!(
                "it calls itself \"{}\" and declares {declared:?}, but plugins/shipped.toml \
                 lists \"{}\" with {listed:?}",
                plugin.name, backend.name
            ),
        });
    }
    Ok(plugin)
}

/// Loads a pinned file configured for `alg`; it must declare `alg`.
fn load_file(
    host: &PluginHost,
    alg: &str,
    file: &PinnedFile,
) -> Result<VerifierPlugin, PluginError> {
    let plugin = host.load_verifier_bytes(host.pinned_bytes(file)?)?;
    if !plugin.algorithms.iter().any(|a| a.name == alg) {
        return Err(PluginError::AlgorithmNotImplemented {
            path: file.path.clone(),
            alg: alg.to_owned(),
            implemented: plugin
                .algorithms
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(plugin)
}
